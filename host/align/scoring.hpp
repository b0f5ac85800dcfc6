#pragma once
#include <cstdint>

#include "host/common/hd.hpp"

namespace omicsd {

// Affine-gap scoring, bwa-mem compatible defaults: a gap of length L costs gap_open + L * gap_extend.
// Soft-clipping the 5' or 3' end of the read costs clip5 / clip3 (so an alignment runs to the read end
// unless clipping gains more than that).
struct ScoringParams {
  int32_t match = 1;
  int32_t mismatch = 4;
  int32_t gap_open = 6;
  int32_t gap_extend = 1;
  int32_t clip5 = 5;
  int32_t clip3 = 5;
  int32_t ambiguous = 1;  // penalty when either base is N
};

OMICSD_HD int32_t substitution_score(uint8_t q, uint8_t t, const ScoringParams& p) {
  if (q > 3 || t > 3) return -p.ambiguous;
  return q == t ? p.match : -p.mismatch;
}

}  // namespace omicsd
