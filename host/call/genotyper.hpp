#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "host/call/call_options.hpp"
#include "host/call/candidates.hpp"
#include "host/call/genotype_backend.hpp"
#include "host/call/vcf_writer.hpp"

namespace omicsd {

// Candidates close enough to share reads, genotyped together through haplotypes built from the
// reference window [begin, end) with every compatible combination of the candidate alleles.
struct CallWindow {
  int32_t contig = 0;
  int64_t begin = 0, end = 0;
  std::vector<Candidate> candidates;  // sorted by allele
};

// Groups sorted candidates of one contig: a candidate joins the open group when it starts within
// params.cluster_distance of the group's last changed base; groups are cut at max_cluster_alleles.
std::vector<CallWindow> make_windows(const Reference& ref, const std::vector<Candidate>& sorted,
                                     const CallParams& params);

struct GenotypeCounters {
  uint64_t windows = 0, haplotypes = 0, reads = 0, hmm_pairs = 0, hmm_cells = 0;
  uint64_t hmm_batches = 0;  // backend calls: one per distinct gap-open penalty per genotype() call
};

// Genotypes windows: builds haplotypes and trimmed reads, scores every read against every
// haplotype of its window (one GenotypeBackend batch per gap-open penalty: a window is scored with the
// penalty of its most repetitive candidate's tandem-repeat context, host/call/repeat_context.hpp), then
// computes per-site genotype likelihoods (reads marginalised to the site's alleles, as GATK HaplotypeCaller
// does), GT, GQ, PL, AD, DP and QUAL, the site annotations and FILTERs (host/call/call_filters.hpp), and
// appends the variant records (QUAL >= params.emit_qual, non-reference GT) in window order. Every window is
// genotyped at `ploidy` (ploidy_genotypes.hpp; 2 is the diploid code path).
class WindowGenotyper {
 public:
  WindowGenotyper(const Reference& ref, GenotypeBackend& backend, const CallParams& params, int threads)
      : ref_(ref), backend_(backend), params_(params), threads_(threads) {}
  // mapq_zero_spans: reference spans of the reads with MAPQ 0 around the windows, sorted by start (not
  // scored; they give INFO/MQ0F).
  void genotype(const std::vector<CallWindow>& windows, const std::vector<EvidenceRead>& reads,
                std::vector<VcfRecord>& out,
                const std::vector<std::pair<int64_t, int64_t>>& mapq_zero_spans = {}, int ploidy = 2);
  const GenotypeCounters& counters() const { return counters_; }

 private:
  const Reference& ref_;
  GenotypeBackend& backend_;
  CallParams params_;
  int threads_;
  GenotypeCounters counters_;
};

}  // namespace omicsd
