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

// Confidence from a score gap alone: each score point between the best and the other alignment is worth
// ~6 Phred (one mismatch ~ 5 points ~ 30 Phred, bwa's raw_mapq with match score 1).
inline int mapq_score_gap(int32_t best, int32_t other) {
  if (other >= best) return 0;
  return std::clamp(int(6.02 * (best - other) + 0.499), 0, 60);
}

// Pair-level confidence: the gap between the chosen pair and the best alternative, less the same
// discount as a single end's for `near_alternatives` other pairs scoring about as well as that
// alternative (bwa's n_sub: each copy of a paralog is one more way to be wrong).
inline int mapq_pair(int32_t pair_score, int32_t alternative_score, uint32_t near_alternatives = 0) {
  int q = mapq_score_gap(pair_score, alternative_score);
  if (near_alternatives > 0) q -= int(4.343 * std::log(double(near_alternatives + 1)) + 0.499);
  return std::clamp(q, 0, 60);
}

}  // namespace omicsd
