#pragma once
// Private to host/io: reads from a SAM/BAM/CRAM file (aligned or not). Used by read_source.cpp.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "host/io/hts_handles.hpp"
#include "host/io/read_source.hpp"

namespace omicsd {

// Pairing policy: the input is paired when its FIRST primary record carries the paired flag (0x1).
//  - paired: read 1 (0x40) and read 2 (0x80) of a name become one pair, read 1 first. A coordinate-
//    sorted input does not keep mates together, so a read waits in a map keyed by name until its
//    mate arrives (the map only holds reads whose mate is still pending). Reads whose mate never
//    appears (orphans), and primary records without the paired flag or with neither/both of 0x40
//    and 0x80, are not lost: after the last pair they come out as single-end batches (a ReadBatch
//    is all-paired or all-single), in input order, with one log line giving their count. So every
//    primary read of the input is aligned and written, as `samtools fastq -s` keeps singletons.
//  - single: every primary record is one read, whatever its flags.
// Secondary (0x100) and supplementary (0x800) records are skipped. Reverse-strand (0x10) records
// are reverse-complemented (qualities reversed) back into sequencer orientation. A record without
// qualities (QUAL '*', 0xff in BAM) gets all '\xff' quality bytes, as ReadBatch documents.
class BamReadsSource : public ReadSource {
 public:
  // Takes ownership of `fp` (closed by the destructor, also when the constructor throws). Reads the
  // header, checks @SQ lines against spec.reference and peeks at the first primary record.
  BamReadsSource(const ReadInputSpec& spec, htsFile* fp);

  bool next(ReadBatch& batch, size_t max_reads) override;
  bool paired() const override { return paired_; }
  uint64_t bytes_consumed() const override;
  std::string read_group_lines() const override { return rg_lines_; }
  std::vector<std::string> read_group_ids() const override { return rg_ids_; }

 private:
  struct Pending {
    uint64_t record = 0;  // record number, to emit orphans in input order
    bool read1 = false;
    int32_t read_group = -1;
    std::string bases;
    std::string quals;
  };
  using PendingMap = std::unordered_map<std::string, Pending>;

  void setup_cram_reference(const Reference& ref);
  void check_reference(const Reference& ref);
  // Reads the next primary record into b_; false at EOF.
  bool read_primary();
  [[noreturn]] void fail_record(const std::string& what) const;
  void finish();  // at EOF: orphans become singles, "no reads"
  struct Single {
    uint64_t record;
    std::string name, bases, quals;
    int32_t read_group = -1;
  };
  // Index in rg_ids_ of the RG:Z tag of b_ (-1 when absent or not declared in the header).
  int32_t read_group_of_record();
  void push_read_group(ReadBatch& batch, int32_t rg) const {
    if (!rg_ids_.empty()) batch.read_groups.push_back(rg);
  }
  bool next_singles(ReadBatch& batch, size_t max_reads);

  std::string path_;
  HtsFilePtr fp_;  // owned from the constructor on
  SamHeaderPtr hdr_;
  BamRecordPtr b_;
  bool paired_ = false;
  bool have_record_ = false;  // b_ holds a primary record not yet consumed
  bool eof_ = false;
  bool finished_ = false;
  uint64_t records_ = 0;         // records read, all kinds (1-based number of the current one)
  uint64_t emitted_ = 0;         // reads handed out
  uint64_t unpaired_ = 0;        // primary records in paired mode without usable pairing flags
  std::vector<Single> singles_;  // paired mode: reads without a mate, emitted after the pairs
  size_t singles_next_ = 0;
  std::string rg_lines_;
  std::vector<std::string> rg_ids_;                    // IDs of the @RG lines, in order
  std::unordered_map<std::string, int32_t> rg_index_;  // ID -> index in rg_ids_
  uint64_t undeclared_rg_ = 0;                         // records whose RG:Z names no @RG line
  PendingMap pending_;
  std::vector<PendingMap::node_type> spare_nodes_;  // recycled map nodes: no per-record allocation
  std::string name_;                                // scratch
};

}  // namespace omicsd
