#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "host/align/align_backend.hpp"
#include "host/align/insert_size.hpp"
#include "host/align/sam_tags.hpp"
#include "host/align/seeding.hpp"
#include "host/io/hts_handles.hpp"
#include "host/io/read_batch.hpp"

typedef struct bam1_t bam1_t;

namespace omicsd {

struct MapperOptions {
  ScoringParams scoring;
  SeedParams seeding;
  int32_t min_score = 30;         // alignments below are not reported (bwa -T)
  int32_t band_margin = 12;       // band extends this far beyond the chain's diagonals
  int32_t unpaired_penalty = 17;  // cost of not pairing two ends properly (bwa -U)
  int32_t max_rescue_window = 2000;
  int threads = 1;
  std::string read_group_id;  // RG:Z tag on every record when non-empty
  // Otherwise each read keeps its input read group: ReadBatch::read_groups indexes these IDs.
  std::vector<std::string> read_group_ids;
  // ms:i on reads with a mapped mate: the mate's sum of base qualities >= 15, as samtools fixmate -m
  // writes it (duplicate marking scores a pair by it).
  bool mate_score_tag = false;
};

// One placement of a read on the reference (contig coordinates, 0-based, half-open).
struct Placement {
  int32_t contig = -1;
  int64_t pos = 0, end = 0;
  uint8_t reverse = 0;
  int32_t score = 0, objective = 0;
  int32_t qbeg = 0, qend = 0;  // in aligned orientation
  uint32_t coverage = 0;       // seed coverage of the chain that produced it (0 for rescued)
  // Best objective of another alignment of the read overlapping this one at a diagonal shifted by a
  // tandem repeat's period (bwa's csub). Dropped as the same locus, it still caps the MAPQ.
  int32_t tandem_sub = 0;
  std::vector<uint32_t> cigar;
};

// Per-read outcome of single-end mapping: placements best first (distinct loci), MAPQ inputs.
struct ReadHits {
  std::vector<Placement> placements;
  int32_t sub_score = 0;   // best score of another locus (0: none)
  uint32_t sub_count = 0;  // other loci of the same read part within one mismatch of the best
  int mapq = 0;
};

struct MapperCounters {
  uint64_t reads = 0, mapped = 0, proper = 0, tasks = 0, rescue_tasks = 0, supplementary = 0;
  uint64_t cells = 0;  // DP cells in the bands of all tasks (the work the backend did)
};

// Maps batches of reads: seed and chain on the CPU, extend every candidate through the
// AlignBackend in one batch, pick placements and MAPQ, pair mates (insert size model, mate
// rescue through a second backend batch), and build BAM records in input order.
class Mapper {
 public:
  Mapper(const Reference& ref, const MinimizerIndex& index, AlignBackend& backend,
         const MapperOptions& options);
  ~Mapper();
  // Records are owned by the mapper and valid until the next call: one primary (or unmapped) record
  // per read, in input order, then one supplementary record per chimeric read (SA tags on both).
  const std::vector<BamRecordPtr>& map_batch(const ReadBatch& batch);
  const InsertSizeModel& insert_model() const { return insert_model_; }
  const MapperCounters& counters() const { return counters_; }

 private:
  void encode(const ReadBatch& batch);
  void seed_and_extend(const ReadBatch& batch);
  void finish_hits(size_t read);
  void pair_and_rescue(const ReadBatch& batch);
  void build_records(const ReadBatch& batch);
  EditSummary edits_of(size_t read, const Placement& p) const;
  int supplementary_mapq(size_t read, int32_t supplementary) const;
  const uint8_t* read_codes(size_t read, bool reverse) const;

  const Reference& ref_;
  const MinimizerIndex& index_;
  AlignBackend& backend_;
  MapperOptions opt_;
  InsertSizeModel insert_model_;
  MapperCounters counters_;

  // Per batch.
  std::vector<uint8_t> fwd_codes_, rev_codes_;
  std::vector<uint32_t> offsets_;
  std::vector<ReadHits> hits_;
  // Per pair: near-best candidate pairs of chains left unaligned, and whether an end left chains as well
  // seeded as its best unaligned.
  struct PairSelection {
    uint32_t unseen_pairs = 0;
    bool unaligned_ties = false;
  };
  std::vector<PairSelection> pair_selection_;
  // Chosen placement per read (-1: unmapped), proper flag, MAPQ.
  std::vector<int32_t> chosen_;
  std::vector<uint8_t> proper_;
  std::vector<int> final_mapq_;
  std::vector<BamRecordPtr> records_;
};

}  // namespace omicsd
