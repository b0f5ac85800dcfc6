#include "host/io/fastq_reader.hpp"

#include <htslib/bgzf.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "host/common/error.hpp"

namespace omicsd {
namespace {

constexpr size_t kInitialBuffer = size_t(1) << 20;  // 1 MiB, grows for longer lines
constexpr size_t kReadChunk = size_t(1) << 16;      // one BGZF block
constexpr size_t kMaxLineLength = size_t(1) << 28;  // 256 MiB: beyond that it is not FASTQ

// Sequence byte -> output base, 0 for anything that is not a letter or '.', '-', '*'.
constexpr std::array<char, 256> make_seq_map() {
  std::array<char, 256> m{};
  for (int c = 'A'; c <= 'Z'; ++c) m[c] = char(c);
  for (int c = 'a'; c <= 'z'; ++c) m[c] = char(c - 'a' + 'A');
  m['.'] = 'N';
  m['-'] = 'N';
  m['*'] = 'N';
  return m;
}
constexpr std::array<char, 256> kSeqMap = make_seq_map();

inline bool non_printable(unsigned char c) { return (c < 0x20 && c != '\t') || c >= 0x7f; }

std::string hex_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", c);
  return buf;
}

}  // namespace

std::string fastq_quote(std::string_view s, size_t max_len) {
  std::string out = "'";
  size_t n = std::min(s.size(), max_len);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\t') {
      out += "\\t";
    } else if (c == '\\' || c == '\'') {
      out += '\\';
      out += char(c);
    } else if (non_printable(c)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  if (n < s.size()) out += "...";
  out += "'";
  return out;
}

FastqReader::FastqReader(std::string path, BGZF* fp) : path_(std::move(path)), fp_(fp) {
  buf_.resize(kInitialBuffer);
}

void FastqReader::fail(uint64_t line, const std::string& what) const {
  throw InputError(path_ + ": record " + std::to_string(records_) + " (line " + std::to_string(line) +
                   "): " + what);
}

void FastqReader::fail_read() {
  if (!in_record_) ++records_;  // the record being read when the input broke
  fail(line_no_ + 1, "read error: truncated or corrupt compressed data" +
                         (read_error_reason_.empty() ? std::string() : " (" + read_error_reason_ + ")"));
}

bool FastqReader::refill() {
  // Keep the unconsumed tail, make room, read more. Returns false at EOF.
  if (pos_ > 0) {
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (end_ == buf_.size()) {
    if (buf_.size() >= kMaxLineLength) {
      if (!in_record_) ++records_;
      fail(line_no_ + 1, "line longer than " + std::to_string(kMaxLineLength) + " bytes: not a FASTQ file");
    }
    buf_.resize(buf_.size() * 2);
  }
  // Read in block-sized pieces so that, when the input breaks, everything decoded before the
  // break is still parsed and the error names the record where the data actually stops.
  if (read_error_) fail_read();
  size_t got = 0;
  while (end_ < buf_.size()) {
    errno = 0;
    ssize_t n = bgzf_read(fp_.get(), buf_.data() + end_, std::min(buf_.size() - end_, kReadChunk));
    if (n < 0 || (n == 0 && fp_->errcode)) {
      read_error_ = true;
      if ((fp_->errcode & BGZF_ERR_IO) && errno) read_error_reason_ = std::strerror(errno);
      if (got > 0) return true;  // parse what came before the break first
      fail_read();
    }
    if (n == 0) {
      if (got == 0) eof_ = true;
      return got > 0;
    }
    end_ += size_t(n);
    got += size_t(n);
  }
  return true;
}

bool FastqReader::get_line(std::string_view& line) {
  size_t scanned = pos_;
  for (;;) {
    const char* base = buf_.data();
    const void* nl = std::memchr(base + scanned, '\n', end_ - scanned);
    size_t line_end;
    size_t next;
    if (nl) {
      line_end = size_t(static_cast<const char*>(nl) - base);
      next = line_end + 1;
    } else if (eof_) {
      if (pos_ == end_) return false;
      line_end = end_;  // last line without '\n'
      next = end_;
    } else {
      size_t tail = end_ - pos_;
      refill();  // moves data to the front: pos_ becomes 0
      scanned = tail;
      continue;
    }
    line = std::string_view(base + pos_, line_end - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = next;
    ++line_no_;
    return true;
  }
}

void FastqReader::check_printable(std::string_view line, uint64_t line_no) const {
  for (size_t i = 0; i < line.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (non_printable(c))
      fail(line_no, "non-printable byte " + hex_byte(c) + " at column " + std::to_string(i + 1) +
                        " (binary data, not FASTQ text)");
  }
}

bool FastqReader::next(std::string& names, std::string& bases, std::string& quals) {
  std::string_view line;
  if (!get_line(line)) return false;
  if (line.empty()) {
    // Empty lines are tolerated only at the very end of the file.
    uint64_t blank = line_no_;
    while (get_line(line)) {
      if (!line.empty()) {
        ++records_;
        fail(blank, "empty line where a header line starting with '@' was expected");
      }
    }
    return false;
  }
  ++records_;
  in_record_ = true;
  header_line_ = line_no_;

  // Header.
  check_printable(line, line_no_);
  if (line[0] != '@')
    fail(line_no_, "header line does not start with '@' (found " + fastq_quote(line, 40) + ")");
  {
    std::string_view rest = line.substr(1);
    size_t k = 0;
    while (k < rest.size() && rest[k] != ' ' && rest[k] != '\t') ++k;
    std::string_view name = fastq_strip_mate_suffix(rest.substr(0, k));
    if (name.empty()) fail(line_no_, "empty read name after '@'");
    names.append(name);
  }

  // Sequence.
  if (!get_line(line))
    fail(line_no_ + 1, "truncated record at end of file (only the header line is present)");
  const size_t seq_len = line.size();
  {
    const size_t off = bases.size();
    bases.resize(off + seq_len);
    char* out = bases.data() + off;
    const unsigned char* in = reinterpret_cast<const unsigned char*>(line.data());
    bool bad = false;
    for (size_t i = 0; i < seq_len; ++i) {
      char m = kSeqMap[in[i]];
      out[i] = m;
      bad |= (m == 0);
    }
    if (bad) {
      for (size_t i = 0; i < seq_len; ++i) {
        if (kSeqMap[in[i]] != 0) continue;
        if (non_printable(in[i]))
          fail(line_no_, "non-printable byte " + hex_byte(in[i]) + " in sequence at column " +
                             std::to_string(i + 1) + " (binary data, not FASTQ text)");
        fail(line_no_, "invalid character " + fastq_quote(line.substr(i, 1)) + " in sequence at column " +
                           std::to_string(i + 1) + " (expected letters, '.', '-' or '*')");
      }
    }
  }

  // Separator.
  if (!get_line(line))
    fail(line_no_ + 1, "truncated record at end of file (the '+' and quality lines are missing)");
  check_printable(line, line_no_);
  if (line.empty() || line[0] != '+') {
    bool looks_like_sequence = !line.empty();
    for (char c : line) looks_like_sequence &= kSeqMap[static_cast<unsigned char>(c)] != 0;
    fail(line_no_, "missing '+' line after the sequence (found " + fastq_quote(line, 40) + ")" +
                       (looks_like_sequence ? ": multi-line FASTQ is not supported" : ""));
  }

  // Qualities.
  if (!get_line(line)) fail(line_no_ + 1, "truncated record at end of file (the quality line is missing)");
  {
    const unsigned char* in = reinterpret_cast<const unsigned char*>(line.data());
    bool bad = false;
    for (size_t i = 0; i < line.size(); ++i) bad |= static_cast<unsigned char>(in[i] - 33) > 93;
    if (bad) {
      for (size_t i = 0; i < line.size(); ++i) {
        if (static_cast<unsigned char>(in[i] - 33) <= 93) continue;
        if (non_printable(in[i]))
          fail(line_no_, "non-printable byte " + hex_byte(in[i]) + " in quality at column " +
                             std::to_string(i + 1) + " (binary data, not FASTQ text)");
        fail(line_no_, "quality character " + fastq_quote(line.substr(i, 1)) + " at column " +
                           std::to_string(i + 1) + " is outside '!'..'~' (Phred+33)");
      }
    }
    if (line.size() != seq_len) {
      bool at_eof = eof_ && pos_ == end_;
      fail(line_no_, "sequence length " + std::to_string(seq_len) + " but quality length " +
                         std::to_string(line.size()) +
                         (at_eof ? " (the file ends here: truncated record?)" : ""));
    }
    quals.append(line);
  }
  in_record_ = false;
  return true;
}

uint64_t FastqReader::file_offset() const { return uint64_t(bgzf_tell(fp_.get())) >> 16; }

}  // namespace omicsd
