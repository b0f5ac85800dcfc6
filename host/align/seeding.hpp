#pragma once
#include <cstdint>
#include <vector>

#include "host/index/minimizer.hpp"
#include "host/index/minimizer_index.hpp"
#include "host/io/reference.hpp"

namespace omicsd {

struct SeedParams {
  uint32_t max_occurrences = 500;       // minimizers more frequent than this are repeats: skipped
  uint32_t rescue_occurrences = 20000;  // used only when a read has no other seed (MAPQ will be 0)
  int32_t max_diag_gap = 40;            // hits further apart in diagonal start a new chain (indel size)
  uint32_t max_chains = 6;              // chains kept per read and strand-agnostic
  // Paired reads: chains of one end that pair with a chain of its mate (same contig, facing, within
  // pair_reach) are aligned too, up to this many more per end. Among a region's near-identical
  // paralog copies the two ends' top max_chains are different subsets (ties broken by coverage that a
  // mismatch changes), so the copy that pairs as well as the chosen one would otherwise never be aligned.
  uint32_t max_pair_chains = 12;
  // Chains the seeder returns for that pairing (paired reads only). With ~50 diverged copies of a region
  // (the 3.1 Gb test genome) 48 cut off the true copy's chain often enough that 3 points fewer reads
  // kept MAPQ >= 20 (no pair MAPQ when the cut may have hidden the mate); 96 gave them back at no
  // measurable CPU cost.
  uint32_t candidate_chains = 96;
  int64_t pair_reach = 2000;        // largest outer distance of a candidate chain pair
  double min_chain_fraction = 0.3;  // chains covering less than this share of the best are dropped
};

// A set of co-linear seed hits on one strand of one contig: a candidate placement of the read.
// Diagonals are global reference offset minus read offset, in the read's aligned orientation
// (reverse = the reverse complement of the read aligns).
struct Chain {
  uint8_t reverse = 0;
  int32_t contig = -1;
  int64_t diag_min = 0, diag_max = 0;
  uint32_t coverage = 0;  // read bases covered by the chain's k-mers
  uint32_t hits = 0;
};

struct SeedSummary {
  uint32_t minimizers = 0;  // of the read
  uint32_t repetitive = 0;  // skipped for exceeding max_occurrences
};

// Process-wide seeding totals (summed over threads and runs; take differences around a run), for the
// "what bounds mapping" figures in docs/performance.md: index lookups and seed hits drive the random
// reads of the index, chains the number of alignments tried.
struct SeedCounters {
  uint64_t reads = 0;        // find_chains calls (one per read)
  uint64_t minimizers = 0;   // of the reads, each looked up in the index
  uint64_t repetitive = 0;   // minimizers skipped for exceeding max_occurrences
  uint64_t hits = 0;         // seed hits (index positions) collected, rescue included
  uint64_t chains = 0;       // candidate chains formed from the hits
  uint64_t chains_kept = 0;  // chains returned (at most max_chains per read)
};
SeedCounters seed_counters();

// Finds candidate chains for one read (codes 0..4), best first. Deterministic. Uses `mins` and
// `scratch` as reusable buffers.
class Seeder {
 public:
  Seeder(const Reference& ref, const MinimizerIndex& index, const SeedParams& params)
      : ref_(ref), index_(index), params_(params) {}
  ~Seeder();  // adds this seeder's counts to seed_counters()
  Seeder(const Seeder&) = delete;
  Seeder& operator=(const Seeder&) = delete;
  // At most `limit` chains (0: max_chains).
  SeedSummary find_chains(const uint8_t* read, uint32_t len, std::vector<Chain>& chains, uint32_t limit = 0);

 private:
  struct Hit {
    int64_t diag;
    uint64_t rpos;
    uint32_t qpos;
    uint8_t reverse;
  };
  const Reference& ref_;
  const MinimizerIndex& index_;
  SeedParams params_;
  std::vector<Minimizer> mins_;
  std::vector<Hit> hits_;
  SeedCounters counts_;
};

}  // namespace omicsd
