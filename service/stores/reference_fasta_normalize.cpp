// The reference store's import pass (reference_fasta_normalize.hpp): any FASTA in, BGZF FASTA with
// fixed line widths out.
#include "service/stores/reference_fasta_normalize.hpp"

#include <htslib/bgzf.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "host/common/error.hpp"
#include "host/io/hts_handles.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;

std::string printable(unsigned char c) {
  if (c >= 33 && c <= 126) return std::string("'") + char(c) + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", c);
  return buf;
}

bool is_blank(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

void write_normalized_fasta(const fs::path& src, const std::string& shown, const fs::path& dst,
                            const ReferenceStoreOptions& o) {
  auto fail = [&](uint64_t line, const std::string& what) {
    return InputError(shown + ": line " + std::to_string(line) + ": " + what);
  };
  BgzfPtr in(bgzf_open(src.c_str(), "r"));
  if (!in) throw InputError(shown + ": cannot open: " + std::strerror(errno));
  BgzfPtr out(bgzf_open(dst.c_str(), "w"));
  if (!out) throw Error("cannot create " + dst.string() + ": " + std::strerror(errno));
  if (o.compress_threads > 1) bgzf_mt(out.get(), o.compress_threads, 256);

  std::string pending;  // output not yet handed to bgzf_write
  pending.reserve(1 << 20);
  auto flush = [&](bool force) {
    if (pending.empty() || (!force && pending.size() < (1u << 20))) return;
    if (bgzf_write(out.get(), pending.data(), pending.size()) < 0)
      throw Error(dst.string() + ": write failed (disk full?)");
    pending.clear();
  };

  enum class Mode { LineStart, Header, Sequence } mode = Mode::LineStart;
  uint64_t line_no = 1, line_len = 0, total = 0;
  bool seen_header = false;
  std::string header;
  int col = 0;  // bases on the current output line
  auto end_header = [&] {
    while (!header.empty() && is_blank(static_cast<unsigned char>(header.back()))) header.pop_back();
    if (col > 0) pending += '\n', col = 0;
    pending += '>';
    pending += header;
    pending += '\n';
    header.clear();
  };

  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = bgzf_read(in.get(), buf.data(), buf.size());
    if (n < 0 || in->errcode)
      throw fail(line_no, "truncated or corrupt compressed data (gzip/BGZF read error)");
    if (n == 0) break;
    total += uint64_t(n);
    for (ssize_t i = 0; i < n; ++i) {
      const unsigned char c = static_cast<unsigned char>(buf[size_t(i)]);
      if (c == '\n') {
        if (mode == Mode::Header) end_header();
        mode = Mode::LineStart;
        ++line_no;
        line_len = 0;
        continue;
      }
      if (++line_len > o.max_line_bytes)
        throw fail(line_no, "line longer than " + std::to_string(o.max_line_bytes) +
                                " bytes (the limit of this reference store; is this a FASTA file?)");
      if (mode == Mode::LineStart) {
        if (c == '>' && line_len == 1) {
          mode = Mode::Header;
          seen_header = true;
          continue;
        }
        if (is_blank(c)) continue;
        if (!seen_header)
          throw fail(line_no,
                     "not a FASTA file: found " + printable(c) + " where a '>' header line is expected");
        mode = Mode::Sequence;
      }
      if (mode == Mode::Header) {
        if (header.size() >= o.max_header_bytes)
          throw fail(line_no, "header line longer than " + std::to_string(o.max_header_bytes) + " bytes");
        header += char(c);
        continue;
      }
      if (is_blank(c)) continue;
      pending += char(c);
      if (++col == kStoredFastaLineWidth) pending += '\n', col = 0;
    }
    flush(false);
  }
  // Without the empty EOF block a BGZF file was cut at a block boundary, which no read error shows.
  if (bgzf_compression(in.get()) == bgzf && bgzf_check_EOF(in.get()) == 0)
    throw fail(line_no, "truncated BGZF file (EOF marker missing)");
  if (mode == Mode::Header) end_header();
  if (col > 0) pending += '\n';
  if (!seen_header)
    throw fail(1, total == 0 ? "empty file, no FASTA records" : "no FASTA records ('>' headers)");
  flush(true);
  BGZF* raw = out.release();
  if (bgzf_close(raw) != 0) throw Error(dst.string() + ": write failed (disk full?)");
}

}  // namespace omicsd
