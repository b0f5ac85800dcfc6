#pragma once
#include <cstdint>
#include <string>

namespace omicsd {

struct EditSummary {
  int32_t nm = 0;  // mismatches + inserted + deleted bases (SAM NM)
  std::string md;  // SAM MD string
};

// NM and MD of an alignment: `query` are the read's base codes in alignment orientation (0..4), `ref`
// the reference codes starting at the alignment's first reference base, `cigar` BAM-encoded ops
// (M/I/D/S/=/X). N against anything counts as a mismatch, as samtools calmd does.
EditSummary compute_nm_md(const uint8_t* query, const uint8_t* ref, const uint32_t* cigar, uint32_t n_cigar);

}  // namespace omicsd
