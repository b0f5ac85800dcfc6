#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "host/call/call_options.hpp"
#include "host/io/hts_handles.hpp"
#include "host/io/reference.hpp"

namespace omicsd {

// One aligned read that passed the filters, as the caller needs it.
struct EvidenceRead {
  int64_t pos = 0, end = 0;     // reference interval covered by the alignment (0-based, half-open)
  std::vector<uint32_t> cigar;  // BAM-encoded
  std::vector<uint8_t> bases;   // codes 0..4, alignment orientation
  std::vector<uint8_t> quals;   // Phred
  uint8_t mapq = 0;
  uint64_t pair_key = 0;  // hash of the read name: mates share it
  bool reverse = false;   // aligned to the reverse strand (0x10): strand-bias statistics
};

// A coordinate-sorted, indexed BAM/CRAM opened for region queries; one per thread (htslib file
// handles are not shared). The constructor validates the input against the reference: sorted
// (@HD SO:coordinate), indexed (.bai/.csi/.crai), and every @SQ matching the reference contig of the
// same name in length (and M5 when both have one). Each failure throws InputError naming the file.
class AlignmentFile {
 public:
  AlignmentFile(const std::string& path, const Reference& ref);
  AlignmentFile(const AlignmentFile&) = delete;
  AlignmentFile& operator=(const AlignmentFile&) = delete;

  // Appends the reads overlapping [begin, end) of reference contig `contig` that pass the filters.
  // Reads are returned in file order. Throws InputError on a decoding error.
  void fetch(int contig, int64_t begin, int64_t end, const CallParams& params,
             std::vector<EvidenceRead>& out);
  // SM of the first @RG line, or empty.
  std::string sample_name() const;
  // The distinct SM values of all @RG lines, in header order.
  std::vector<std::string> sample_names() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  // Released in reverse order: record, index, header, file.
  HtsFilePtr fp_;
  SamHeaderPtr hdr_;
  HtsIndexPtr idx_;
  BamRecordPtr b_;
  std::vector<int> tid_of_contig_;  // reference contig -> BAM tid (-1: absent from the BAM)
};

}  // namespace omicsd
