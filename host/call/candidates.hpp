#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "host/call/call_options.hpp"
#include "host/call/evidence_reads.hpp"
#include "host/io/reference.hpp"

namespace omicsd {

// A variant allele in VCF form: 0-based position of REF's first base; indels carry the padding base
// before the event (REF "AT" ALT "A" deletes T). Normalised: left-aligned and minimal.
struct Allele {
  int32_t contig = 0;
  int64_t pos = 0;
  std::string ref, alt;

  bool is_snv() const { return ref.size() == 1 && alt.size() == 1; }
  bool operator<(const Allele& o) const;
  bool operator==(const Allele& o) const = default;
  // The reference bases the allele changes, [core_begin, core_end); an insertion changes none and
  // sits at the point core_begin (between core_begin - 1 and core_begin).
  int64_t core_begin() const { return pos + (is_snv() ? 0 : 1); }
  int64_t core_end() const { return pos + int64_t(ref.size()); }
};

// Two alleles cannot be on one haplotype when they change the same reference bases (or insert at the
// same point, or one inserts inside the other's deletion).
bool alleles_conflict(const Allele& a, const Allele& b);

// Left-aligns and trims an allele against the reference (the standard normalisation: bcftools norm).
Allele normalize_allele(const Reference& ref, Allele a);

struct Candidate {
  Allele allele;
  int support = 0;  // reads showing it
  int depth = 0;    // reads covering its position
};

// Pileup over `reads` (sorted by position, all on `contig`): the alleles at positions in
// [begin, end) with at least params.min_alt_reads supporting reads and params.min_alt_fraction of
// the depth there, sorted by allele. SNVs count only bases with quality >= params.min_baseq; where
// two mates overlap, the bases are counted once.
std::vector<Candidate> find_candidates(const Reference& ref, int32_t contig, int64_t begin, int64_t end,
                                       const std::vector<EvidenceRead>& reads, const CallParams& params);

}  // namespace omicsd
