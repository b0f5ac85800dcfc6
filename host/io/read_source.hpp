#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "host/io/read_batch.hpp"
#include "host/io/reference.hpp"

namespace omicsd {

// What to read. Formats are detected from content (htslib), not from the file name:
//  - one FASTQ (plain/gzip/bgzip): single-end, or interleaved pairs with `interleaved`
//  - two FASTQ files: read 1 and read 2, which must agree record by record (names)
//  - one BAM/CRAM, aligned or not: paired when its records carry the paired flag; reverse-strand
//    aligned records are turned back into sequencer orientation; secondary/supplementary skipped.
struct ReadInputSpec {
  std::string path1;
  std::string path2;         // empty unless two FASTQ files
  bool interleaved = false;  // FASTQ only
  // For CRAM decoding, and to check an aligned BAM/CRAM: when its header has @SQ lines, every one
  // must name a contig of this reference with the same length (and M5 when given), otherwise the
  // input was aligned to another reference and InputError says so. May be null (no check).
  const Reference* reference = nullptr;
};

class ReadSource {
 public:
  virtual ~ReadSource() = default;
  // Fills `batch` (cleared first) with up to max_reads reads (a pair counts as two; pairs are never
  // split across batches). Returns false at the end of input. Throws InputError naming the file and
  // record number (1-based) and what is wrong with it.
  // A paired BAM/CRAM input ends with single-end batches (batch.paired false) holding the reads whose
  // mate is not in the file, so no read is lost; FASTQ batches are all paired or all single.
  virtual bool next(ReadBatch& batch, size_t max_reads) = 0;
  virtual bool paired() const = 0;
  // Input bytes consumed so far and the total (file sizes; compressed bytes for compressed input),
  // for progress bars and ETAs. Total 0 when unknown (a stream, or CRAM).
  virtual uint64_t bytes_consumed() const { return 0; }
  uint64_t bytes_total() const { return bytes_total_; }
  void set_bytes_total(uint64_t n) { bytes_total_ = n; }
  // @RG lines found in a BAM/CRAM input header (empty for FASTQ), so re-alignment can keep them.
  virtual std::string read_group_lines() const { return {}; }
  // The IDs of those @RG lines, in header order: ReadBatch::read_groups indexes them.
  virtual std::vector<std::string> read_group_ids() const { return {}; }

 private:
  uint64_t bytes_total_ = 0;
};

std::unique_ptr<ReadSource> open_read_source(const ReadInputSpec& spec);

}  // namespace omicsd
