#pragma once
// Duplicate marking (flag 0x400) on the coordinate-sorted output, with samtools markdup's rules
// (samtools 1.16, default template mode) so that counts equal `samtools fixmate -m | sort | markdup`:
// - Primary mapped reads only (secondary, supplementary, unmapped and QC-failed reads are left alone).
// - A read whose mate is mapped is keyed by its pair: reference and unclipped 5' coordinate of itself
//   and of its mate (from the MC tag), orientation and which end is leftmost. Of reads with one key the
//   highest score stays (sum of base qualities >= 15 of the read plus its mate's, the `ms` tag; a tie
//   keeps the smaller read name); the others are duplicates, so both reads of a duplicate pair are.
// - Unpaired reads and reads with an unmapped mate are keyed by reference, unclipped 5' coordinate and
//   strand; one that shares that key with a read of a pair is a duplicate; among themselves the higher
//   score stays (a tie keeps the first).
// - Optical duplicates (optical_distance > 0, off by default as in samtools): a duplicate whose
//   Illumina name (machine:run:flowcell:lane:tile:x:y, or the older 4- and 5-field forms) has the same
//   tile prefix as its original and x and y within the distance; then, as samtools does, the duplicates
//   of one original are compared with each other (sorted by x) and the lower-scoring of two close ones
//   is optical too. Records wait for their original's chain to be checked before they are handed back.
// - Ties between single reads of equal score keep the one samtools' coordinate sort puts first after
//   `samtools sort -n | fixmate`: the smaller position, then the smaller name in natural order.
#include <htslib/sam.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>

#include "host/io/bam_output.hpp"

namespace omicsd {

struct DuplicateStats {
  uint64_t examined = 0;        // primary mapped reads (not QC-failed)
  uint64_t paired = 0;          // of which with a mapped mate
  uint64_t single = 0;          // of which unpaired or with an unmapped mate
  uint64_t duplicate_pair = 0;  // duplicate reads among `paired`
  uint64_t duplicate_single = 0;
  uint64_t duplicate_pair_optical = 0;
  uint64_t duplicate_single_optical = 0;
  uint64_t excluded = 0;  // secondary, supplementary, unmapped or QC-failed
  uint64_t duplicate_total() const { return duplicate_pair + duplicate_single; }
};

struct DuplicateMarkingOptions {
  int64_t max_read_length = 300;  // samtools markdup -l: how far back a key is remembered
  int64_t optical_distance = 0;   // samtools markdup -d: 0 = no optical duplicate classification
};

// Sum of the base qualities >= 15 of a record (samtools' score; fixmate -m writes the mate's as ms:i).
int64_t duplicate_score(const bam1_t* b);

class DuplicateMarker final : public SortedRecordPass {
 public:
  explicit DuplicateMarker(DuplicateMarkingOptions options = {});
  ~DuplicateMarker() override;
  void push(const bam1_t* record, const Emit& emit) override;
  void flush(const Emit& emit) override;
  const DuplicateStats& stats() const { return stats_; }

  struct Key {
    bool single = true;
    int32_t this_ref = 0, other_ref = 0;
    int64_t this_coord = 0, other_coord = 0;
    int32_t leftmost = 0, orientation = 0;
    bool operator==(const Key& o) const;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };

 private:
  struct Held {
    bam1_t* b = nullptr;
    int64_t pos = 0;  // the unclipped 5' coordinate once keyed (samtools' window position)
    bool owns_pair_key = false, owns_single_key = false;
    int64_t next_duplicate = -1;  // sequence number of the next duplicate in the chain (optical checks)
    bool chain_checked = false;
    Key pair_key, single_key;
  };
  void mark(Held& original, Held& duplicate, bool pair);
  void release(const Emit& emit, int32_t tid, int64_t pos);
  bool releasable(const Held& h, int32_t tid, int64_t pos) const;
  void check_chains(bool whole_window, int32_t tid, int64_t pos);
  void check_chain(Held& original);
  void retag_optical(Held& h, bool paired);
  void pop_front(const Emit& emit);
  Held& at(int64_t seq);
  void append_chain(int64_t head, int64_t tail);
  bool chains() const { return opt_.optical_distance > 0; }

  DuplicateMarkingOptions opt_;
  DuplicateStats stats_;
  std::deque<Held> held_;
  uint64_t first_seq_ = 0;  // sequence number of held_.front()
  std::unordered_map<Key, uint64_t, KeyHash> pairs_, singles_;
};

}  // namespace omicsd
