#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "host/io/reference.hpp"

typedef struct sam_hdr_t sam_hdr_t;
typedef struct bam1_t bam1_t;

namespace omicsd {

// Builds the output header: @HD (SO:coordinate), one @SQ per contig with LN and M5 (and UR:
// `reference_uri`, or the reference's absolute path when that is empty), the @RG line given (bwa -R
// style, literal "\t" accepted as tab; empty: none), and @PG with id/name/version/command line. Throws
// InputError for a malformed @RG line (must start with "@RG" and have an ID field). The caller owns
// the result (sam_hdr_destroy).
sam_hdr_t* build_bam_header(const Reference& ref, const std::string& read_group_line,
                            const std::string& command_line, const std::string& reference_uri = "");

// The same with several @RG lines, each as build_bam_header accepts one (an input's read groups,
// kept through re-alignment). Throws InputError for a malformed line or a repeated ID.
sam_hdr_t* build_bam_header(const Reference& ref, const std::vector<std::string>& read_group_lines,
                            const std::string& command_line, const std::string& reference_uri = "");

// ID of the @RG line (empty when none); used to tag every record with RG:Z.
std::string read_group_id(const std::string& read_group_line);

// A streaming pass over the final output in coordinate order (duplicate marking): it sees every record
// once, may hold some back and change them, and hands each back exactly once through `emit`, in the
// order received; flush() hands back what it still holds. Records passed to push are the writer's and
// valid only during the call (copy what is held).
class SortedRecordPass {
 public:
  using Emit = std::function<void(bam1_t*)>;
  virtual ~SortedRecordPass() = default;
  virtual void push(const bam1_t* record, const Emit& emit) = 0;
  virtual void flush(const Emit& emit) = 0;
};

struct BamOutputOptions {
  std::string path;  // final name; BAM, or CRAM when `cram`
  bool cram = false;
  std::string reference_fasta;                   // required for CRAM
  size_t sort_memory_bytes = size_t(768) << 20;  // records held in memory before a sorted run spills
  std::string tmp_dir;                           // spill directory; empty: next to the output
  int threads = 1;                               // htslib compression threads
  bool write_index = true;                       // .bai (BAM) or .crai (CRAM) next to the output
  std::shared_ptr<SortedRecordPass> final_pass;  // optional pass over the sorted output (not the spills)
};

// Coordinate-sorting BAM/CRAM writer with bounded memory: records are buffered, sorted runs are
// spilled to temporary BAM files when the buffer is full, and finish() merges them into the output.
// The output is written under a temporary name, fsync'ed, indexed, and only then renamed to its final
// name (index first), so a crash or an error never leaves a partial file looking finished. If the
// writer is destroyed without finish(), every temporary file is removed.
class SortedBamWriter {
 public:
  // Takes its own copy of the header.
  SortedBamWriter(const BamOutputOptions& options, const sam_hdr_t* header);
  ~SortedBamWriter();
  SortedBamWriter(const SortedBamWriter&) = delete;
  SortedBamWriter& operator=(const SortedBamWriter&) = delete;

  void add(const bam1_t* record);  // copies the record
  void finish();
  size_t records_written() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace omicsd
