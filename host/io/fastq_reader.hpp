#pragma once
// Private to host/io: a strict, fast 4-line FASTQ parser over htslib's BGZF reader (plain, gzip and
// bgzip input alike). Used by read_source.cpp.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/io/hts_handles.hpp"
#include "host/io/read_batch.hpp"

namespace omicsd {

class FastqReader {
 public:
  // Takes ownership of `fp` (closed with the reader). `path` is used in error messages.
  FastqReader(std::string path, BGZF* fp);
  FastqReader(const FastqReader&) = delete;
  FastqReader& operator=(const FastqReader&) = delete;

  // Parses the next record and APPENDS its name (after '@', up to the first whitespace, "/1" or
  // "/2" removed), its bases (upper-cased, '.', '-' and '*' turned into 'N') and its qualities
  // (Phred+33, as read) to the three strings. Returns false at the end of the input (trailing empty
  // lines are tolerated). Throws InputError naming the file, record and line for anything malformed.
  bool next(std::string& names, std::string& bases, std::string& quals);

  const std::string& path() const { return path_; }
  uint64_t records() const { return records_; }  // records parsed so far
  // Bytes of the file consumed so far (compressed bytes for gzip/bgzip): progress and ETA.
  uint64_t file_offset() const;
  uint64_t header_line() const { return header_line_; }  // line of the last record's header

  // "<path>: record N (line L): <what>", N being the record now being parsed.
  [[noreturn]] void fail(uint64_t line, const std::string& what) const;

 private:
  // Next line without its '\n' (and a trailing '\r'), valid until the next call. False at EOF.
  bool get_line(std::string_view& line);
  bool refill();
  [[noreturn]] void fail_read();
  void check_printable(std::string_view line, uint64_t line_no) const;

  std::string path_;
  BgzfPtr fp_;
  std::vector<char> buf_;
  size_t pos_ = 0;  // start of unconsumed data in buf_
  size_t end_ = 0;  // end of valid data in buf_
  bool eof_ = false;
  bool read_error_ = false;  // the input broke after the data now in buf_
  std::string read_error_reason_;
  uint64_t records_ = 0;
  uint64_t line_no_ = 0;  // lines consumed so far
  uint64_t header_line_ = 0;
  bool in_record_ = false;  // between a header and its quality line
};

// Removes one trailing "/1" or "/2" from a read name.
inline std::string_view fastq_strip_mate_suffix(std::string_view name) {
  if (name.size() >= 2 && name[name.size() - 2] == '/' && (name.back() == '1' || name.back() == '2'))
    name.remove_suffix(2);
  return name;
}

// Offsets in ReadBatch are 32-bit: sources stop filling a batch well before that.
inline constexpr size_t kFastqMaxBatchBytes = size_t(1) << 31;

// Called once a batch holds its first read(s): reserves room for `limit` reads of the same size, so
// a batch is filled without repeated reallocation (on fresh memory every growth step page-faults).
inline void fastq_reserve_batch(ReadBatch& batch, size_t limit) {
  const size_t n = batch.size();
  if (n == 0) return;
  constexpr size_t kMaxReserve = size_t(1) << 28;
  auto want = [&](size_t used) {
    size_t per = used / n + 1;
    size_t w = limit > kMaxReserve / per ? kMaxReserve : limit * per;
    return w + w / 16;
  };
  if (batch.bases.capacity() < want(batch.bases.size())) {
    batch.bases.reserve(want(batch.bases.size()));
    batch.quals.reserve(want(batch.bases.size()));
  }
  if (batch.names.capacity() < want(batch.names.size())) batch.names.reserve(want(batch.names.size()));
  const size_t offsets = std::min(limit, kMaxReserve / 64) + 1;
  if (batch.name_offsets.capacity() < offsets) {
    batch.name_offsets.reserve(offsets);
    batch.base_offsets.reserve(offsets);
  }
}

// Printable, bounded rendering of untrusted text for one-line error messages.
std::string fastq_quote(std::string_view s, size_t max_len = 80);

}  // namespace omicsd
