#include "host/io/reference.hpp"

#include <htslib/bgzf.h>
#include <htslib/hts.h>
#include <htslib/kstring.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>

#include "host/common/dna.hpp"
#include "host/common/error.hpp"
#include "host/common/parallel.hpp"
#include "host/io/hts_handles.hpp"

namespace omicsd {

namespace {

constexpr uint8_t kInvalid = 0xFF;  // not a nucleotide code: reject the file
constexpr uint8_t kSkip = 0xFE;     // whitespace inside a sequence line (CR of CRLF, trailing blanks)

// Per-byte lookup: base code (0..4), kSkip or kInvalid. One table lookup per base keeps loading a
// 3 Gb genome I/O-bound.
struct CharTable {
  std::array<uint8_t, 256> code;
  // 1 for A, C, G, T, N in either case: the letters whose upper-cased form the base code alone gives
  // back ("ACGTN"[code]), so a contig made of them has its MD5 computed from its codes afterwards.
  std::array<uint8_t, 256> from_code;
  CharTable() {
    code.fill(kInvalid);
    from_code.fill(0);
    for (char c : std::string_view("ACGTNacgtn")) from_code[uint8_t(c)] = 1;
    // IUPAC nucleotide codes (U included), both cases, plus gap '-' and '*' as samtools accepts them.
    for (char c : std::string_view("ACGTURYSWKMBDHVNacgturyswkmbdhvn-*")) code[uint8_t(c)] = base_code(c);
    for (char c : std::string_view(" \t\r\v\f")) code[uint8_t(c)] = kSkip;
  }
};

const CharTable& char_table() {
  static const CharTable table;
  return table;
}

struct Md5 {
  hts_md5_context* ctx = hts_md5_init();
  Md5() {
    if (!ctx) throw Error("cannot allocate an MD5 context");
  }
  ~Md5() { hts_md5_destroy(ctx); }
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void reset() { hts_md5_reset(ctx); }
  void update(const void* data, size_t n) { hts_md5_update(ctx, data, static_cast<unsigned long>(n)); }
  std::string hex() {
    unsigned char digest[16];
    char hex[33];
    hts_md5_final(digest, ctx);
    hts_md5_hex(hex, digest);
    return std::string(hex, 32);
  }
};

struct KString {
  kstring_t s = KS_INITIALIZE;
  ~KString() { ks_free(&s); }
};

std::string printable(unsigned char c) {
  if (c >= 33 && c <= 126) return std::string("'") + char(c) + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", c);
  return buf;
}

// Adds codes[0, n) to md5 as the upper-cased letters "ACGTN"[code].
void md5_update_from_codes(Md5& md5, const uint8_t* codes, uint64_t n) {
  static constexpr char kLetter[5] = {'A', 'C', 'G', 'T', 'N'};
  char buf[1 << 16];
  for (uint64_t i = 0; i < n;) {
    const size_t m = size_t(std::min<uint64_t>(sizeof buf, n - i));
    for (size_t j = 0; j < m; ++j) buf[j] = kLetter[codes[i + j]];
    md5.update(buf, m);
    i += m;
  }
}

}  // namespace

Reference Reference::load(const std::string& fasta_path) {
  namespace fs = std::filesystem;
  auto fail = [&](uint64_t line, const std::string& what) -> InputError {
    return InputError(fasta_path + ": line " + std::to_string(line) + ": " + what);
  };

  std::error_code ec;
  if (!fs::exists(fasta_path, ec)) throw InputError(fasta_path + ": reference FASTA not found");
  if (fs::is_directory(fasta_path, ec)) throw InputError(fasta_path + ": reference FASTA is a directory");
  BgzfPtr fp(bgzf_open(fasta_path.c_str(), "r"));
  if (!fp) {
    throw InputError(fasta_path + ": cannot open reference FASTA: " + std::strerror(errno));
  }

  Reference ref;
  ref.path_ = fasta_path;
  if (bgzf_compression(fp.get()) == no_compression) {
    // Plain text: the file size bounds the sequence length, so one allocation suffices.
    const auto size = fs::file_size(fasta_path, ec);
    if (!ec) ref.codes_.reserve(size);
  }

  const auto& table = char_table().code;
  const auto& from_code = char_table().from_code;
  // A contig's MD5 is computed while it is read only once it holds a letter its codes cannot give
  // back (IUPAC ambiguity codes, U, '-', '*'); the others' MD5s are computed from their codes after
  // the file is read, one contig per thread (the 3.2 GB test genome loads in 11.3 s instead of 13.9
  // on 2 cores).
  Md5 md5;
  bool md5_inline = false;  // the current contig's MD5 is being computed line by line
  std::string upper;        // one line upper-cased for the MD5 (SAM M5 is over the upper-cased sequence)
  KString line;
  uint64_t line_no = 0;
  uint64_t header_line = 0;  // line of the current contig's header
  bool in_contig = false;

  auto finish_contig = [&] {
    Contig& c = ref.contigs_.back();
    const uint64_t len = ref.codes_.size() - c.offset;
    if (len == 0) throw fail(header_line, "contig '" + c.name + "' has no sequence");
    c.length = static_cast<uint32_t>(len);
    if (md5_inline) c.md5 = md5.hex();  // else computed from the codes below
  };

  int r;
  while ((r = bgzf_getline(fp.get(), '\n', &line.s)) >= 0) {
    if (fp->errcode) break;
    ++line_no;
    const char* s = line.s.s;
    size_t n = line.s.l;
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) --n;
    if (n == 0) continue;  // blank lines are tolerated anywhere

    if (s[0] == '>') {
      if (in_contig) finish_contig();
      size_t end = 1;
      while (end < n && !std::isspace(static_cast<unsigned char>(s[end]))) ++end;
      std::string name(s + 1, end - 1);
      if (name.empty()) throw fail(line_no, "FASTA header without a sequence name");
      if (ref.name_index_.count(name)) throw fail(line_no, "duplicate contig name '" + name + "'");
      ref.name_index_.emplace(name, static_cast<int>(ref.contigs_.size()));
      Contig c;
      c.name = std::move(name);
      c.offset = ref.codes_.size();
      ref.contigs_.push_back(std::move(c));
      md5_inline = false;
      header_line = line_no;
      in_contig = true;
      continue;
    }

    if (!in_contig) throw fail(line_no, "sequence line before the first '>' header");
    const size_t before = ref.codes_.size();
    ref.codes_.resize(before + n);
    uint8_t* out = ref.codes_.data() + before;
    size_t m = 0;
    uint8_t letters_from_code = 1;
    for (size_t i = 0; i < n; ++i) {
      const unsigned char ch = static_cast<unsigned char>(s[i]);
      const uint8_t code = table[ch];
      if (code <= kBaseN) {
        letters_from_code &= from_code[ch];
        out[m++] = code;
      } else if (code == kInvalid) {
        throw fail(line_no, "invalid character " + printable(ch) + " at column " + std::to_string(i + 1) +
                                " in contig '" + ref.contigs_.back().name +
                                "' (expected IUPAC nucleotide codes)");
      }
    }
    ref.codes_.resize(before + m);
    if (!md5_inline && !letters_from_code) {
      // From here on line by line; the contig's lines so far are all letters its codes give back.
      md5.reset();
      const Contig& c = ref.contigs_.back();
      md5_update_from_codes(md5, ref.codes_.data() + c.offset, before - c.offset);
      md5_inline = true;
    }
    if (md5_inline) {
      upper.clear();
      for (size_t i = 0; i < n; ++i) {
        const unsigned char ch = static_cast<unsigned char>(s[i]);
        if (table[ch] <= kBaseN) upper += (ch >= 'a' && ch <= 'z') ? char(ch - ('a' - 'A')) : char(ch);
      }
      md5.update(upper.data(), upper.size());
    }
    if (ref.codes_.size() - ref.contigs_.back().offset > std::numeric_limits<uint32_t>::max()) {
      throw fail(line_no, "contig '" + ref.contigs_.back().name + "' is longer than 4 Gb");
    }
  }
  if (r < -1 || fp->errcode) {
    throw fail(line_no + 1, "truncated or corrupt compressed data (gzip/BGZF read error)");
  }
  // A BGZF file written by bgzip/htslib ends with an empty EOF block; without it the file was cut
  // at a block boundary, which no read error reveals.
  if (bgzf_compression(fp.get()) == bgzf && bgzf_check_EOF(fp.get()) == 0) {
    throw fail(line_no, "truncated BGZF file (EOF marker missing)");
  }
  if (!in_contig) {
    throw fail(std::max<uint64_t>(line_no, 1),
               line_no == 0 ? "empty file, no FASTA records" : "no FASTA records ('>' headers)");
  }
  finish_contig();
  // Growth by doubling (compressed input) can leave up to 2x slack; a plain file reserved its size.
  if (ref.codes_.capacity() > ref.codes_.size() + ref.codes_.size() / 8) ref.codes_.shrink_to_fit();

  std::vector<size_t> from_codes;  // contigs whose MD5 is still to compute, longest first
  for (size_t i = 0; i < ref.contigs_.size(); ++i)
    if (ref.contigs_[i].md5.empty()) from_codes.push_back(i);
  std::stable_sort(from_codes.begin(), from_codes.end(),
                   [&](size_t a, size_t b) { return ref.contigs_[a].length > ref.contigs_[b].length; });
  parallel_for(from_codes.size(), std::min(resolve_threads(0), 8), 1, [&](size_t b, size_t e) {
    for (size_t k = b; k < e; ++k) {
      Contig& c = ref.contigs_[from_codes[k]];
      Md5 md5_c;
      md5_update_from_codes(md5_c, ref.codes_.data() + c.offset, c.length);
      c.md5 = md5_c.hex();
    }
  });

  Md5 all;
  for (const Contig& c : ref.contigs_) all.update(c.md5.data(), c.md5.size());
  ref.digest_ = all.hex();
  return ref;
}

int Reference::contig_of(uint64_t global) const {
  auto it = std::upper_bound(contigs_.begin(), contigs_.end(), global,
                             [](uint64_t g, const Contig& c) { return g < c.offset; });
  return static_cast<int>(it - contigs_.begin()) - 1;
}

int Reference::find_contig(std::string_view name) const {
  auto it = name_index_.find(name);
  return it == name_index_.end() ? -1 : it->second;
}

}  // namespace omicsd
