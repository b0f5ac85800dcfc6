#pragma once
// The byte ranges of a BGZF-compressed BAM or VCF that hold the records of some regions, found
// through the file's index with htslib (hts_itr_query -> BGZF virtual offsets -> whole BGZF
// blocks), for the htsget routes (htsget_routes.hpp). The ranges may also hold records just outside
// the regions (those sharing their BGZF blocks): htsget allows that, clients filter.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace omicsd {

// htsget's error names (InvalidInput, InvalidRange, NotFound, UnsupportedFormat, ...) with the
// message for the client.
class HtsgetError : public std::runtime_error {
 public:
  HtsgetError(std::string name, const std::string& message)
      : std::runtime_error(message), name_(std::move(name)) {}
  const std::string& name() const { return name_; }
  int status() const;  // the spec's HTTP status for the name

 private:
  std::string name_;
};

struct ByteRange {
  uint64_t begin = 0;  // file offsets, end exclusive
  uint64_t end = 0;
};

// One region of an htsget request: a reference name ("*": the unplaced reads of a BAM) and an
// optional 0-based, end-exclusive interval.
struct HtsgetRegion {
  std::string reference_name;
  std::optional<int64_t> start;
  std::optional<int64_t> end;
};

// A piece of the answer: a byte range of the file, or (where a BGZF block holds both the end of
// the header and the first records) a BGZF block recompressed from part of that block, served
// inline as a data: URL.
struct HtsgetPiece {
  ByteRange range;
  std::string inline_bgzf;  // non-empty: this piece is these bytes instead of `range`
};

struct HtsgetSlices {
  std::vector<HtsgetPiece> header;  // the header's BGZF blocks
  std::vector<HtsgetPiece> data;    // the regions' records, in file order, without overlaps
};

enum class HtsgetFileKind { bam, vcf_gz };

// Plans the ranges of `file` (indexed by `index`) for `regions`; no regions: every record.
// Throws HtsgetError for an unknown reference (NotFound), an interval outside its contig or
// start > end (InvalidRange), and Error for a file htslib cannot read.
HtsgetSlices plan_htsget_slices(const std::filesystem::path& file, const std::filesystem::path& index,
                                HtsgetFileKind kind, const std::vector<HtsgetRegion>& regions);

// Sorts and merges ranges that overlap or touch.
std::vector<ByteRange> merge_byte_ranges(std::vector<ByteRange> ranges);

// The 28-byte BGZF end-of-file block.
std::string bgzf_eof_block();

}  // namespace omicsd
