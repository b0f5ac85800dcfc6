#include "host/io/bam_output.hpp"

#include <fcntl.h>
#include <htslib/faidx.h>
#include <htslib/hts.h>
#include <htslib/sam.h>
#include <htslib/thread_pool.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <queue>
#include <system_error>

#include "host/common/durable_file.hpp"
#include "host/common/error.hpp"
#include "host/io/hts_handles.hpp"
#include "omicsd_version.hpp"

namespace omicsd {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------------
// Header
// ---------------------------------------------------------------------------------------------------

namespace {

struct ReadGroup {
  std::string line;  // with real tabs, no trailing newline; empty when none
  std::string id;
};

// Parses a bwa -R style line: "\t" (backslash, t) or a real tab separates fields.
ReadGroup parse_read_group(const std::string& given) {
  ReadGroup rg;
  if (given.empty()) return rg;
  if (given.find('\n') != std::string::npos || given.find('\r') != std::string::npos)
    throw InputError("read group line must be a single line: '" + given + "'");
  std::string& line = rg.line;
  line.reserve(given.size());
  for (size_t i = 0; i < given.size(); ++i) {
    if (given[i] == '\\' && i + 1 < given.size() && given[i + 1] == 't') {
      line.push_back('\t');
      ++i;
    } else {
      line.push_back(given[i]);
    }
  }
  if (line.rfind("@RG\t", 0) != 0)
    throw InputError("read group line must start with @RG followed by a tab: '" + given + "'");
  bool have_id = false;
  size_t start = 4;
  while (start <= line.size()) {
    size_t end = line.find('\t', start);
    if (end == std::string::npos) end = line.size();
    const std::string_view field(line.data() + start, end - start);
    if (field.size() < 3 || !std::isalpha(static_cast<unsigned char>(field[0])) ||
        !std::isalnum(static_cast<unsigned char>(field[1])) || field[2] != ':')
      throw InputError("read group line has a malformed field '" + std::string(field) +
                       "' (expected TAG:value): '" + given + "'");
    if (field.substr(0, 2) == "ID") {
      if (have_id) throw InputError("read group line has more than one ID field: '" + given + "'");
      have_id = true;
      rg.id = std::string(field.substr(3));
      if (rg.id.empty()) throw InputError("read group line has an empty ID: '" + given + "'");
    }
    start = end + 1;
  }
  if (!have_id) throw InputError("read group line has no ID field: '" + given + "'");
  return rg;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

std::string read_group_id(const std::string& read_group_line) { return parse_read_group(read_group_line).id; }

sam_hdr_t* build_bam_header(const Reference& ref, const std::string& read_group_line,
                            const std::string& command_line, const std::string& reference_uri) {
  std::vector<std::string> lines;
  if (!read_group_line.empty()) lines.push_back(read_group_line);
  return build_bam_header(ref, lines, command_line, reference_uri);
}

sam_hdr_t* build_bam_header(const Reference& ref, const std::vector<std::string>& read_group_lines,
                            const std::string& command_line, const std::string& reference_uri) {
  std::vector<ReadGroup> groups;
  for (const std::string& line : read_group_lines) {
    groups.push_back(parse_read_group(line));
    for (size_t i = 0; i + 1 < groups.size(); ++i)
      if (groups[i].id == groups.back().id)
        throw InputError("read group ID '" + groups.back().id + "' is declared twice");
  }

  std::error_code ec;
  fs::path abs = fs::absolute(ref.path(), ec);
  const std::string ur = !reference_uri.empty() ? reference_uri
                         : ec                   ? ref.path()
                                                : abs.lexically_normal().string();

  std::string text = "@HD\tVN:1.6\tSO:coordinate\n";
  for (const Contig& c : ref.contigs()) {
    text += "@SQ\tSN:";
    text += c.name;
    text += "\tLN:";
    text += std::to_string(c.length);
    if (!c.md5.empty()) {
      text += "\tM5:";
      text += c.md5;
    }
    if (!ur.empty()) {
      text += "\tUR:";
      text += ur;
    }
    text += '\n';
  }

  SamHeaderPtr h(sam_hdr_init());
  if (!h) throw Error("cannot allocate a BAM header");
  if (sam_hdr_add_lines(h.get(), text.data(), text.size()) < 0) {
    throw Error("cannot build the BAM header for reference " + ref.path());
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    const std::string rg_text = groups[i].line + "\n";
    if (sam_hdr_add_lines(h.get(), rg_text.data(), rg_text.size()) < 0) {
      throw InputError("htslib rejected the read group line '" + read_group_lines[i] + "'");
    }
  }
  const std::string cl = one_line(command_line);
  int rc = cl.empty()
               ? sam_hdr_add_line(h.get(), "PG", "ID", "omicsd", "PN", "omicsd", "VN", kVersion, nullptr)
               : sam_hdr_add_line(h.get(), "PG", "ID", "omicsd", "PN", "omicsd", "VN", kVersion, "CL",
                                  cl.c_str(), nullptr);
  if (rc < 0) {
    throw Error("cannot add the @PG line to the BAM header");
  }
  return h.release();
}

// ---------------------------------------------------------------------------------------------------
// Sorted writer
// ---------------------------------------------------------------------------------------------------

namespace {

// samtools sort's coordinate order: tid as unsigned (unmapped -1 last), then pos+1 (so -1 first),
// then reverse after forward; the insertion sequence number breaks the remaining ties.
inline uint32_t tid_key(const bam1_core_t& c) { return static_cast<uint32_t>(c.tid); }
inline uint64_t pos_key(const bam1_core_t& c) {
  return (static_cast<uint64_t>(c.pos + 1) << 1) | ((c.flag & BAM_FREVERSE) ? 1u : 0u);
}

struct SortEntry {
  uint64_t pos_key;
  uint64_t seq;     // insertion number: makes the order total, so output never depends on sort details
  uint64_t offset;  // record start in the arena
  uint32_t tid_key;
};

inline bool entry_less(const SortEntry& a, const SortEntry& b) {
  if (a.tid_key != b.tid_key) return a.tid_key < b.tid_key;
  if (a.pos_key != b.pos_key) return a.pos_key < b.pos_key;
  return a.seq < b.seq;
}

// Arena record layout: bam1_core_t, uint32 l_data, padding to 8, data bytes, padding to 8.
constexpr size_t kAlign = 8;
constexpr size_t round_up(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }
constexpr size_t kRecordHeader = round_up(sizeof(bam1_core_t) + sizeof(uint32_t));

// How many runs are merged at once: bounded by the descriptor limit so a huge sort never runs out of
// file descriptors (each open run is one descriptor).
size_t merge_fan_in() {
  struct rlimit rl;
  size_t limit = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limit = size_t(rl.rlim_cur);
  return std::clamp<size_t>(limit / 4, 2, 512);
}

}  // namespace

struct SortedBamWriter::Impl {
  BamOutputOptions opt;
  SamHeaderPtr hdr;
  HtsThreadPoolPtr pool_owner;     // declared before every file the pool is attached to
  htsThreadPool pool{nullptr, 0};  // what hts_set_opt takes: the pool and its queue size

  std::string out_tmp;       // <path>.tmp.<pid>
  std::string idx_final;     // <path>.bai / <path>.crai
  std::string idx_tmp;       // <path>.bai.tmp.<pid>
  std::string spill_prefix;  // <dir>/<basename>.tmp.<pid>.
  HtsFilePtr out;

  // Buffered records.
  std::unique_ptr<uint8_t[]> arena;
  size_t arena_size = 0;
  size_t arena_cap = 0;
  std::vector<SortEntry> entries;
  uint64_t next_seq = 0;

  std::vector<std::string> runs;      // spilled runs in insertion order, not yet merged
  std::vector<std::string> all_temp;  // every spill file ever created (removed on destruction)

  bool finished = false;
  bool failed = false;
  size_t written = 0;

  void attach_pool(htsFile* fp) {
    if (pool.pool) hts_set_opt(fp, HTS_OPT_THREAD_POOL, &pool);
  }

  uint8_t* alloc(size_t n) {
    if (arena_size + n > arena_cap) {
      size_t want = std::max<size_t>(arena_cap * 2, size_t(1) << 16);
      want = std::min(want, opt.sort_memory_bytes + (size_t(1) << 16));
      want = std::max(want, arena_size + n);
      std::unique_ptr<uint8_t[]> bigger(new uint8_t[want]);
      if (arena_size) std::memcpy(bigger.get(), arena.get(), arena_size);
      arena = std::move(bigger);
      arena_cap = want;
    }
    uint8_t* p = arena.get() + arena_size;
    arena_size += n;
    return p;
  }

  // A bam1_t that points into the arena (no copy; htslib must not free it).
  bam1_t view(uint64_t offset) const {
    const uint8_t* p = arena.get() + offset;
    bam1_t b;
    std::memset(&b, 0, sizeof(b));
    std::memcpy(&b.core, p, sizeof(bam1_core_t));
    uint32_t l_data;
    std::memcpy(&l_data, p + sizeof(bam1_core_t), sizeof(l_data));
    b.data = const_cast<uint8_t*>(p + kRecordHeader);
    b.l_data = int(l_data);
    b.m_data = l_data;
    bam_set_mempolicy(&b, BAM_USER_OWNS_STRUCT | BAM_USER_OWNS_DATA);
    return b;
  }

  size_t buffered_bytes() const { return arena_size + entries.size() * sizeof(SortEntry); }

  void add(const bam1_t* b) {
    if (finished || failed) throw Error("SortedBamWriter::add after finish for " + opt.path);
    const uint32_t l_data = uint32_t(std::max(b->l_data, 0));
    const uint64_t offset = arena_size;
    uint8_t* p = alloc(kRecordHeader + round_up(l_data));
    std::memcpy(p, &b->core, sizeof(bam1_core_t));
    std::memcpy(p + sizeof(bam1_core_t), &l_data, sizeof(l_data));
    if (l_data) std::memcpy(p + kRecordHeader, b->data, l_data);
    entries.push_back(SortEntry{pos_key(b->core), next_seq++, offset, tid_key(b->core)});
    if (buffered_bytes() > opt.sort_memory_bytes) spill();
  }

  // <n> is process-wide, so writers sharing a spill directory and an output basename (two jobs in one
  // daemon) never collide.
  std::string next_spill_path() {
    static std::atomic<uint64_t> counter{0};
    return spill_prefix + std::to_string(counter.fetch_add(1, std::memory_order_relaxed)) + ".bam";
  }

  HtsFilePtr open_spill_for_write(const std::string& path) {
    all_temp.push_back(path);
    errno = 0;
    HtsFilePtr fp(hts_open(path.c_str(), "wb1"));
    if (!fp) fail_io("create", path, errno);
    attach_pool(fp.get());
    errno = 0;
    if (sam_hdr_write(fp.get(), hdr.get()) < 0) fail_io("write", path, errno);
    return fp;
  }

  static void close_checked(HtsFilePtr& fp, const std::string& path) {
    errno = 0;
    int rc = hts_close(fp.release());
    if (rc < 0) fail_io("write", path, errno);
  }

  void write_sorted_buffer(htsFile* fp, const std::string& path, bool final_output = false) {
    std::sort(entries.begin(), entries.end(), entry_less);
    for (const SortEntry& e : entries) {
      bam1_t b = view(e.offset);
      write_record(fp, path, &b, final_output);
    }
  }

  // Spills are written as they are; the final output goes through the final pass when there is one.
  void write_record(htsFile* fp, const std::string& path, bam1_t* b, bool final_output) {
    if (final_output && opt.final_pass) {
      opt.final_pass->push(b, [&](bam1_t* r) { write_record(fp, path, r, false); });
      return;
    }
    errno = 0;
    if (sam_write1(fp, hdr.get(), b) < 0) fail_io("write", path, errno);
  }
  void flush_final_pass(htsFile* fp, const std::string& path) {
    if (opt.final_pass) opt.final_pass->flush([&](bam1_t* r) { write_record(fp, path, r, false); });
  }

  void spill() {
    if (entries.empty()) return;
    const std::string path = next_spill_path();
    HtsFilePtr fp = open_spill_for_write(path);
    write_sorted_buffer(fp.get(), path);
    close_checked(fp, path);
    runs.push_back(path);
    entries.clear();
    arena_size = 0;
  }

  // K-way merge of consecutive runs into `dst`. Runs hold consecutive insertion ranges, each sorted by
  // (key, seq), so ordering ties by run index then by position within the run is exactly ordering by
  // the insertion sequence number: the output equals an in-memory stable sort.
  size_t merge_into(const std::vector<std::string>& inputs, htsFile* dst, const std::string& dst_path,
                    bool final_output = false) {
    struct Source {
      HtsFilePtr fp;
      SamHeaderPtr h;
      BamRecordPtr b;
      const std::string* path = nullptr;
    };
    std::vector<std::unique_ptr<Source>> src;
    src.reserve(inputs.size());
    auto read_next = [](Source& s) -> bool {
      int r = sam_read1(s.fp.get(), s.h.get(), s.b.get());
      if (r >= 0) return true;
      if (r == -1) return false;
      fail_io("read", *s.path, errno == 0 ? EIO : errno);
    };
    auto greater = [&src](uint32_t a, uint32_t b) {
      const bam1_core_t& ca = src[a]->b->core;
      const bam1_core_t& cb = src[b]->b->core;
      const uint32_t ta = tid_key(ca), tb = tid_key(cb);
      if (ta != tb) return ta > tb;
      const uint64_t pa = pos_key(ca), pb = pos_key(cb);
      if (pa != pb) return pa > pb;
      return a > b;
    };
    std::priority_queue<uint32_t, std::vector<uint32_t>, decltype(greater)> heap(greater);
    for (const std::string& path : inputs) {
      auto s = std::make_unique<Source>();
      s->path = &path;
      errno = 0;
      s->fp.reset(hts_open(path.c_str(), "rb"));
      if (!s->fp) fail_io("open", path, errno);
      attach_pool(s->fp.get());
      s->h.reset(sam_hdr_read(s->fp.get()));
      if (!s->h) fail_io("read the header of", path, errno == 0 ? EIO : errno);
      s->b.reset(bam_init1());
      if (!s->b) throw Error("out of memory merging " + path);
      src.push_back(std::move(s));
      if (read_next(*src.back())) heap.push(uint32_t(src.size() - 1));
    }
    size_t n = 0;
    while (!heap.empty()) {
      const uint32_t i = heap.top();
      heap.pop();
      write_record(dst, dst_path, src[i]->b.get(), final_output);
      ++n;
      if (read_next(*src[i])) heap.push(i);
    }
    return n;
  }

  void remove_files(const std::vector<std::string>& paths) {
    for (const std::string& p : paths) ::unlink(p.c_str());
  }

  void finish() {
    if (finished) return;
    if (failed) throw Error("SortedBamWriter::finish called again after a failure for " + opt.path);
    failed = true;  // cleared at the end; any throw leaves the writer failed (destructor cleans up)

    errno = 0;
    if (sam_hdr_write(out.get(), hdr.get()) < 0) fail_io("write", out_tmp, errno);
    size_t n = 0;
    if (runs.empty()) {
      n = entries.size();
      write_sorted_buffer(out.get(), out_tmp, true);
      entries.clear();
      arena_size = 0;
    } else {
      spill();
      arena.reset();
      arena_cap = 0;
      entries = std::vector<SortEntry>();
      // Keep the number of simultaneously open runs bounded: merge consecutive groups first.
      const size_t fan_in = merge_fan_in();
      while (runs.size() > fan_in) {
        std::vector<std::string> next;
        for (size_t i = 0; i < runs.size(); i += fan_in) {
          std::vector<std::string> group(runs.begin() + i, runs.begin() + std::min(runs.size(), i + fan_in));
          if (group.size() == 1) {
            next.push_back(group[0]);
            continue;
          }
          const std::string path = next_spill_path();
          HtsFilePtr fp = open_spill_for_write(path);
          merge_into(group, fp.get(), path);
          close_checked(fp, path);
          remove_files(group);
          next.push_back(path);
        }
        runs = std::move(next);
      }
      n = merge_into(runs, out.get(), out_tmp, true);
    }
    flush_final_pass(out.get(), out_tmp);
    close_checked(out, out_tmp);
    remove_files(runs);
    runs.clear();
    fsync_path(out_tmp, false);

    if (opt.write_index) {
      errno = 0;
      int rc = sam_index_build3(out_tmp.c_str(), idx_tmp.c_str(), 0, std::max(1, opt.threads));
      if (rc < 0) fail_io("index", out_tmp, errno);
      fsync_path(idx_tmp, false);
      if (::rename(idx_tmp.c_str(), idx_final.c_str()) != 0)
        fail_io("rename " + idx_tmp + " to", idx_final, errno);
    } else if (::unlink(idx_final.c_str()) != 0 && errno != ENOENT) {
      fail_io("remove the stale index", idx_final, errno);
    }
    if (::rename(out_tmp.c_str(), opt.path.c_str()) != 0) {
      const int err = errno;
      if (opt.write_index) ::unlink(idx_final.c_str());  // never leave a new index beside old data
      fail_io("rename " + out_tmp + " to", opt.path, err);
    }
    std::string dir = fs::path(opt.path).parent_path().string();
    fsync_path(dir.empty() ? "." : dir, true);

    written = n;
    finished = true;
    failed = false;
  }

  ~Impl() {
    out.reset();  // closes (result ignored) before the temp name is removed
    if (!finished) {
      ::unlink(out_tmp.c_str());
      ::unlink(idx_tmp.c_str());
    }
    remove_files(all_temp);
  }
};

SortedBamWriter::SortedBamWriter(const BamOutputOptions& options, const sam_hdr_t* header)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opt = options;
  if (m.opt.path.empty()) throw Error("SortedBamWriter: empty output path");
  if (m.opt.cram && m.opt.reference_fasta.empty())
    throw Error("CRAM output " + m.opt.path + " needs a reference FASTA");
  m.hdr.reset(sam_hdr_dup(header));
  if (!m.hdr) throw Error("cannot copy the BAM header for " + m.opt.path);

  const std::string pid = std::to_string(::getpid());
  m.out_tmp = m.opt.path + ".tmp." + pid;
  m.idx_final = m.opt.path + (m.opt.cram ? ".crai" : ".bai");
  m.idx_tmp = m.idx_final + ".tmp." + pid;
  const fs::path out_path(m.opt.path);
  fs::path spill_dir = m.opt.tmp_dir.empty() ? out_path.parent_path() : fs::path(m.opt.tmp_dir);
  const std::string base = out_path.filename().string() + ".tmp." + pid + ".";
  m.spill_prefix = spill_dir.empty() ? base : (spill_dir / base).string();

  if (m.opt.threads > 1) {
    m.pool_owner.reset(hts_tpool_init(m.opt.threads));
    m.pool.pool = m.pool_owner.get();
    if (!m.pool.pool) throw Error("cannot start " + std::to_string(m.opt.threads) + " compression threads");
  }

  // Open the output now so an unwritable destination fails before any work is done.
  errno = 0;
  m.out.reset(hts_open(m.out_tmp.c_str(), m.opt.cram ? "wc" : "wb"));
  if (!m.out) fail_io("create", m.out_tmp, errno);
  if (m.opt.cram) {
    const std::string fai = m.opt.reference_fasta + ".fai";
    if (::access(fai.c_str(), R_OK) != 0) {
      errno = 0;
      if (fai_build(m.opt.reference_fasta.c_str()) != 0)
        fail_io("index the reference", m.opt.reference_fasta, errno);
    }
    errno = 0;
    if (hts_set_fai_filename(m.out.get(), m.opt.reference_fasta.c_str()) != 0)
      fail_io("load the CRAM reference", m.opt.reference_fasta, errno);
  }
  m.attach_pool(m.out.get());
}

SortedBamWriter::~SortedBamWriter() = default;

void SortedBamWriter::add(const bam1_t* record) { impl_->add(record); }

void SortedBamWriter::finish() { impl_->finish(); }

size_t SortedBamWriter::records_written() const { return impl_->written; }

}  // namespace omicsd
