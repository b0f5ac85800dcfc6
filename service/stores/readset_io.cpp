#include "service/stores/readset_io.hpp"

#include <htslib/bgzf.h>
#include <htslib/hts.h>
#include <htslib/sam.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

#include "host/common/dna.hpp"
#include "host/common/durable_file.hpp"
#include "host/common/error.hpp"
#include "host/io/hts_handles.hpp"
#include "omicsd_version.hpp"
#include "service/stores/readset_store.hpp"
#include "service/util/sha256.hpp"

namespace omicsd {
namespace {

// Tags that describe an alignment: meaningless once the read is stored unaligned.
const std::set<std::string> kAlignmentTags = {"NM", "MD", "AS", "XS", "MC", "MQ", "SA", "XA", "ms",
                                              "tp", "cm", "s1", "s2", "de", "rl", "nn", "RG"};

// One read in sequencer orientation.
struct Read {
  std::string name;
  uint16_t mate_flags = 0;  // BAM_FREAD1 / BAM_FREAD2 (with BAM_FPAIRED) or 0
  uint16_t keep_flags = 0;  // QC fail / duplicate marks carried over from a BAM
  std::string seq;          // IUPAC letters, upper case
  std::string qual;         // raw Phred values (0xff when the source had none)
  std::string aux;          // raw BAM aux bytes kept from a BAM/CRAM source
};

// An input file read with htslib, one primary record at a time.
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), b_(bam_init1()) {
    fp_.reset(hts_open(path.c_str(), "r"));
    if (!fp_) throw InputError(path + ": cannot open: " + errno_text(errno));
    const htsFormat* f = hts_get_format(fp_.get());
    switch (f->format) {
      case fastq_format:
        format_ = "FASTQ";
        break;
      case bam:
        format_ = "BAM";
        break;
      case cram:
        format_ = "CRAM";
        break;
      case sam:
        format_ = "SAM";
        break;
      default:
        throw InputError(path + ": not FASTQ, BAM, SAM or CRAM (" +
                         (f->compression == gzip || f->compression == bgzf
                              ? std::string("gzip data that does not decompress to reads")
                              : std::string("unrecognised content")) +
                         ")");
    }
    hdr_.reset(sam_hdr_read(fp_.get()));
    if (!hdr_) throw InputError(path + ": cannot read the " + format_ + " header (corrupt or truncated)");
    if (format_ == "FASTQ") name_suffixes_ = first_name_has_mate_suffix(path);
  }

  const std::string& format() const { return format_; }
  const std::string& path() const { return path_; }
  bool name_suffixes() const { return name_suffixes_; }
  int64_t records() const { return records_; }

  // The next primary read, or false at the end. Throws InputError for a malformed record.
  bool next(Read& r) {
    for (;;) {
      const int rc = sam_read1(fp_.get(), hdr_.get(), b_.get());
      if (rc == -1) return false;
      ++records_;
      if (rc < -1)
        throw InputError(path_ + ": record " + std::to_string(records_) + ": malformed or truncated " +
                         format_ + " data");
      const bam1_t* b = b_.get();
      if (b->core.flag & (BAM_FSECONDARY | BAM_FSUPPLEMENTARY)) continue;
      const int64_t n = b->core.l_qseq;
      if (n > kMaxReadLength)
        throw InputError(path_ + ": record " + std::to_string(records_) + ": read of " + std::to_string(n) +
                         " bases is longer than the " + std::to_string(kMaxReadLength) + " allowed");
      r.name = bam_get_qname(b);
      r.mate_flags = b->core.flag & BAM_FPAIRED ? b->core.flag & (BAM_FPAIRED | BAM_FREAD1 | BAM_FREAD2) : 0;
      r.keep_flags = b->core.flag & (BAM_FQCFAIL | BAM_FDUP);
      r.seq.resize(size_t(n));
      r.qual.resize(size_t(n));
      const uint8_t* s = bam_get_seq(b);
      const uint8_t* q = bam_get_qual(b);
      for (int64_t i = 0; i < n; ++i) {
        r.seq[size_t(i)] = seq_nt16_str[bam_seqi(s, i)];
        r.qual[size_t(i)] = char(q[i]);
      }
      if (b->core.flag & BAM_FREVERSE) {  // back to the orientation the sequencer read
        std::reverse(r.seq.begin(), r.seq.end());
        for (char& c : r.seq) c = complement_base(c);
        std::reverse(r.qual.begin(), r.qual.end());
      }
      r.aux.clear();
      if (format_ != "FASTQ") keep_aux(b, r.aux);
      return true;
    }
  }

 private:
  // Size of one aux field (tag, type and value) at p, or 0 when it runs past end (corrupt).
  static size_t aux_field_size(const uint8_t* p, const uint8_t* end) {
    if (end - p < 3) return 0;
    auto fixed = [](char t) -> size_t {
      switch (t) {
        case 'A':
        case 'c':
        case 'C':
          return 1;
        case 's':
        case 'S':
          return 2;
        case 'i':
        case 'I':
        case 'f':
          return 4;
        case 'd':
          return 8;
        default:
          return 0;
      }
    };
    const char type = char(p[2]);
    size_t n = 3;
    if (const size_t f = fixed(type)) {
      n += f;
    } else if (type == 'Z' || type == 'H') {
      const void* nul = std::memchr(p + 3, 0, size_t(end - p - 3));
      if (!nul) return 0;
      n = size_t(static_cast<const uint8_t*>(nul) - p) + 1;
    } else if (type == 'B') {
      if (end - p < 8) return 0;
      uint32_t count;
      std::memcpy(&count, p + 4, 4);
      const size_t f = fixed(char(p[3]));
      if (!f) return 0;
      n = 8 + size_t(count) * f;
    } else {
      return 0;
    }
    return n <= size_t(end - p) ? n : 0;
  }

  // Copies the aux fields except alignment tags and RG (the read set's read group replaces it).
  void keep_aux(const bam1_t* b, std::string& out) const {
    const uint8_t* p = bam_get_aux(b);
    const uint8_t* end = p + bam_get_l_aux(b);
    while (p < end) {
      const size_t n = aux_field_size(p, end);
      if (n == 0)
        throw InputError(path_ + ": record " + std::to_string(records_) + ": malformed auxiliary data");
      if (!kAlignmentTags.count(std::string(reinterpret_cast<const char*>(p), 2)))
        out.append(reinterpret_cast<const char*>(p), n);
      p += n;
    }
  }

  // htslib strips a /1 or /2 from FASTQ names; the first header line tells whether the file had
  // them, so a FASTQ export can give the names back exactly.
  static bool first_name_has_mate_suffix(const std::string& path) {
    const BgzfPtr fp(bgzf_open(path.c_str(), "r"));
    if (!fp) return false;
    kstring_t line = {0, 0, nullptr};
    bool yes = false;
    if (bgzf_getline(fp.get(), '\n', &line) > 0) {
      std::string first(line.s, line.l);
      first = first.substr(0, first.find_first_of(" \t\r"));
      yes =
          first.size() > 2 && first[first.size() - 2] == '/' && (first.back() == '1' || first.back() == '2');
    }
    free(line.s);
    return yes;
  }

  std::string path_;
  std::string format_;
  HtsFilePtr fp_;
  SamHeaderPtr hdr_;
  BamRecordPtr b_;
  bool name_suffixes_ = false;
  int64_t records_ = 0;
};

// Writes reads as an unaligned CRAM 3.1 with one read group.
class CramWriter {
 public:
  CramWriter(const std::string& path, const nlohmann::json& rg) : path_(path), b_(bam_init1()) {
    fp_.reset(hts_open(path.c_str(), "wc"));
    if (!fp_) fail_io("create", path, errno);
    // CRAM 3.1: the newer codecs (rANS-Nx16, name tokeniser) shrink reads well beyond BAM.
    if (hts_set_opt(fp_.get(), CRAM_OPT_VERSION, "3.1") != 0) throw Error(path + ": cannot select CRAM 3.1");
    rg_id_ = rg.at("ID").get<std::string>();
    std::string text = "@HD\tVN:1.6\tSO:unknown\n@RG\tID:" + rg_id_;
    for (const auto& [k, v] : rg.items())
      if (k != "ID") text += "\t" + k + ":" + v.get<std::string>();
    text += std::string("\n@PG\tID:omicsd-import\tPN:omicsd\tVN:") + kVersion + "\n";
    hdr_.reset(sam_hdr_parse(text.size(), text.c_str()));
    if (!hdr_ || sam_hdr_write(fp_.get(), hdr_.get()) < 0) fail_io("write the header of", path, errno);
  }

  void write(const Read& r) {
    uint16_t flag = BAM_FUNMAP | r.keep_flags | r.mate_flags;
    if (r.mate_flags & BAM_FPAIRED) flag |= BAM_FMUNMAP;
    if (bam_set1(b_.get(), r.name.size(), r.name.c_str(), flag, -1, -1, 0, 0, nullptr, -1, -1, 0,
                 r.seq.size(), r.seq.c_str(), r.qual.c_str(), r.aux.size() + rg_id_.size() + 4) < 0)
      throw Error(path_ + ": cannot encode read '" + r.name + "'");
    if (!r.aux.empty()) {
      // bam_set1 reserved room for the aux data; append the kept fields verbatim.
      bam1_t* b = b_.get();
      std::memcpy(b->data + b->l_data, r.aux.data(), r.aux.size());
      b->l_data += int(r.aux.size());
    }
    if (bam_aux_append(b_.get(), "RG", 'Z', int(rg_id_.size() + 1),
                       reinterpret_cast<const uint8_t*>(rg_id_.c_str())) < 0 ||
        sam_write1(fp_.get(), hdr_.get(), b_.get()) < 0)
      fail_io("write", path_, errno);
  }

  void close() {
    htsFile* f = fp_.release();
    if (hts_close(f) != 0) fail_io("finish", path_, errno);
    fsync_path(path_, false);
  }

 private:
  std::string path_;
  HtsFilePtr fp_;
  SamHeaderPtr hdr_;
  BamRecordPtr b_;
  std::string rg_id_;
};

// The format-neutral checksum of ReadSet::reads_sha256.
void hash_read(Sha256& h, const Read& r) {
  const char mate = r.mate_flags & BAM_FREAD1 ? '1' : r.mate_flags & BAM_FREAD2 ? '2' : '0';
  h.update(r.name);
  h.update("\t", 1);
  h.update(&mate, 1);
  h.update("\t", 1);
  h.update(r.seq);
  h.update("\t", 1);
  h.update(r.qual);
  h.update("\n", 1);
}

void check_cancel(const std::atomic<bool>* cancel) {
  if (cancel && cancel->load(std::memory_order_relaxed)) throw ImportCanceled();
}

}  // namespace

ReadImportStats import_reads_to_cram(const std::vector<std::string>& sources, const std::string& out_cram,
                                     const nlohmann::json& rg, const std::atomic<bool>* cancel) {
  if (sources.empty() || sources.size() > 2) throw InputError("a read set has one or two source files");
  std::vector<std::unique_ptr<Reader>> in;
  for (const std::string& s : sources) in.push_back(std::make_unique<Reader>(s));
  ReadImportStats st;
  st.source_format = in[0]->format();
  st.name_suffixes = in[0]->name_suffixes();
  if (in.size() == 2 && (in[0]->format() != "FASTQ" || in[1]->format() != "FASTQ"))
    throw InputError("two source files must both be FASTQ (read 1 and read 2); got " + in[0]->format() +
                     " and " + in[1]->format());
  CramWriter out(out_cram, rg);
  Sha256 h;
  Read r1, r2;
  auto add = [&](const Read& r) {
    out.write(r);
    hash_read(h, r);
    ++st.read_count;
    st.base_count += int64_t(r.seq.size());
    st.paired = st.paired || (r.mate_flags & BAM_FPAIRED);
  };
  if (in.size() == 1) {
    while (in[0]->next(r1)) {
      if ((st.read_count & 4095) == 0) check_cancel(cancel);
      add(r1);
    }
  } else {
    for (;;) {
      if ((st.read_count & 4095) == 0) check_cancel(cancel);
      const bool a = in[0]->next(r1), b = in[1]->next(r2);
      if (!a && !b) break;
      if (a != b)
        throw InputError((a ? in[1]->path() : in[0]->path()) + ": ends after " +
                         std::to_string((a ? in[1] : in[0])->records()) + " records, before its mate file " +
                         (a ? in[0]->path() : in[1]->path()));
      if (r1.name != r2.name)
        throw InputError(in[1]->path() + ": record " + std::to_string(in[1]->records()) + ": name '" +
                         r2.name + "' does not match read 1 '" + r1.name + "' in " + in[0]->path());
      r1.mate_flags = BAM_FPAIRED | BAM_FREAD1;
      r2.mate_flags = BAM_FPAIRED | BAM_FREAD2;
      add(r1);
      add(r2);
    }
  }
  if (st.read_count == 0) throw InputError(sources[0] + ": no reads");
  out.close();
  st.reads_sha256 = "sha256:" + h.final_hex();
  return st;
}

void export_reads(const std::string& cram, const std::string& format, int mate, bool name_suffixes,
                  const std::string& out_path) {
  Reader in(cram);
  Read r;
  if (format == "bam") {
    HtsFilePtr fp(hts_open(out_path.c_str(), "wb"));
    HtsFilePtr src(hts_open(cram.c_str(), "r"));
    if (!fp || !src) fail_io("create", out_path, errno);
    SamHeaderPtr hdr(sam_hdr_read(src.get()));
    BamRecordPtr b(bam_init1());
    if (!hdr || sam_hdr_write(fp.get(), hdr.get()) < 0) fail_io("write the header of", out_path, errno);
    int rc;
    while ((rc = sam_read1(src.get(), hdr.get(), b.get())) >= 0)
      if (sam_write1(fp.get(), hdr.get(), b.get()) < 0) fail_io("write", out_path, errno);
    if (rc < -1) throw Error(cram + ": stored read set is corrupt");
    if (hts_close(fp.release()) != 0) fail_io("finish", out_path, errno);
    return;
  }
  if (format != "fastq") throw InputError("format must be fastq, bam or cram, not '" + format + "'");
  std::FILE* f = std::fopen(out_path.c_str(), "w");
  if (!f) fail_io("create", out_path, errno);
  std::string rec;
  while (in.next(r)) {
    const int m = r.mate_flags & BAM_FREAD1 ? 1 : r.mate_flags & BAM_FREAD2 ? 2 : 0;
    if (mate != 0 && m != mate) continue;
    rec = "@" + r.name;
    // Interleaved output always marks mates (as samtools does), so it reads back as pairs.
    if (m && (name_suffixes || mate == 0)) rec += m == 1 ? "/1" : "/2";
    rec += "\n" + r.seq + "\n+\n";
    for (char q : r.qual) rec += uint8_t(q) == 0xff ? '"' : char(uint8_t(q) + 33);  // none: Q1, as samtools
    rec += "\n";
    if (std::fwrite(rec.data(), 1, rec.size(), f) != rec.size()) {
      std::fclose(f);
      fail_io("write", out_path, errno);
    }
  }
  if (std::fclose(f) != 0) fail_io("finish", out_path, errno);
}

}  // namespace omicsd
