#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace omicsd {

// Single-end mapping quality from the best and the best other (non-overlapping) alignment scores.
// The shape follows bwa-mem's model so MAPQ means the same to users: the score gap scaled by how
// much of the read was seeded, discounted for low identity and for several equally good
// alternatives. `sub` is the floor score when no other placement was found.
inline int mapq_single_end(int32_t best, int32_t sub, uint32_t sub_count, uint32_t seed_coverage,
                           int32_t aligned_length, int32_t match, int32_t mismatch) {
  if (best <= 0 || sub >= best) return 0;
  const double l = std::max(aligned_length, 1);
  const double identity = 1.0 - (l * match - best) / double(match + mismatch) / l;
  double q = 30.0 * (1.0 - double(sub) / best) * std::log(double(std::max<uint32_t>(seed_coverage, 1)));
  if (identity < 0.95) q *= identity * identity;
  int mapq = int(q + 0.499);
  if (sub_count > 0) mapq -= int(4.343 * std::log(double(sub_count + 1)) + 0.499);
  return std::clamp(mapq, 0, 60);
}

// Pair-level confidence: each score point between the chosen pair and the best alternative is worth
// ~6 Phred (one mismatch ~ 5 points ~ 30 Phred, as in bwa's paired model).
inline int mapq_pair(int32_t pair_score, int32_t alternative_score) {
  if (alternative_score >= pair_score) return 0;
  return std::clamp(int(6.02 * (pair_score - alternative_score) + 0.499), 0, 60);
}

}  // namespace omicsd
