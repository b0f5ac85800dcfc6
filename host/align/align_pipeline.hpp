#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "host/align/align_backend.hpp"
#include "host/align/duplicate_marking.hpp"
#include "host/align/scoring.hpp"
#include "host/index/minimizer_index.hpp"

namespace omicsd {

// Reported after every batch: for progress bars (reads, rate, ETA from the input bytes consumed).
struct AlignProgress {
  uint64_t reads = 0;
  uint64_t bytes_consumed = 0, bytes_total = 0;  // total 0: unknown
  double seconds = 0;
  bool done = false;
};

struct AlignOptions {
  std::string reference;  // FASTA; index <fasta>.omi built on first use
  // What @SQ UR names (empty: the absolute path of `reference`). The daemon opens the FASTA beneath
  // its allowed root and hands the engine a staged link to it; UR still names the client's file.
  std::string reference_uri;
  std::string reads1, reads2;  // FASTQ (1 or 2 files) or one BAM/CRAM
  bool interleaved = false;
  std::string output;  // BAM (or CRAM with `cram`), coordinate-sorted and indexed
  bool cram = false;
  std::string read_group;       // bwa -R style @RG line
  std::string command_line;     // for @PG
  int threads = 0;              // 0: all cores
  size_t batch_reads = 200000;  // reads per batch: bounds memory
  size_t sort_memory_bytes = size_t(768) << 20;
  std::string tmp_dir;
  // The alignment backend (CPU or CUDA, chosen above the engine: backends/align_backend_select.hpp);
  // empty: the CPU backend.
  AlignBackendFactory make_backend;
  IndexParams index;
  ScoringParams scoring;
  int min_score = 30;  // alignments scoring below are reported unmapped (bwa -T)
  // Flag duplicates 0x400 as samtools markdup does (host/align/duplicate_marking.hpp); reads with a
  // mapped mate then carry ms:i (mate score) as after samtools fixmate -m.
  bool mark_duplicates = false;
  int64_t optical_distance = 0;  // samtools markdup -d (0: no optical classification)
  std::function<void(const AlignProgress&)> on_progress;
};

struct AlignStats {
  uint64_t reads = 0, mapped = 0, paired = 0, proper_pairs = 0, mapq_ge_30 = 0;
  double insert_mean = 0, insert_sd = 0;
  double seconds = 0;
  std::string backend;
  bool duplicates_marked = false;
  DuplicateStats duplicates;
};

AlignStats run_align(const AlignOptions& options);

}  // namespace omicsd
