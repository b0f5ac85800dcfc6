#include "host/index/minimizer_index.hpp"

#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "host/common/error.hpp"
#include "host/index/minimizer.hpp"

namespace omicsd {

// On-disk layout (native little-endian, every section 8-byte aligned), version 1:
//
//   FileHeader                   128 bytes
//   uint64 bucket[nb + 1]        nb = 2^bucket_bits; the keys of bucket b are key[bucket[b] ..
//                                bucket[b+1]), where bucket b = hash >> (2k - bucket_bits)
//   KeyEntry key[num_keys]       distinct hashes ascending. A hash with one position (most of them)
//                                stores it inline: key = hash | kSingle, value = the hit. Otherwise
//                                key = hash and value = offset of its list in multi[]
//   uint64 multi[multi_words]    per repeated hash: count, then the hits ascending
//
// A hit is (global_pos << 1) | reverse. Minimizer hashes are a bijection on 2k bits (see
// minimizer_hash), so the top bits of the 2k-bit value spread keys evenly over the buckets. A lookup
// reads one bucket entry, binary-searches the few keys of that bucket and, for a unique minimizer,
// finds the hit in the same cache line as its key; only repeated minimizers touch multi[].
namespace {

constexpr char kMagic[8] = {'O', 'M', 'I', 'C', 'S', 'I', 'D', 'X'};
constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kEndianTag = 0x01020304;

struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t endian;  // kEndianTag as written: a file from a machine of the other byte order fails
  uint32_t k;
  uint32_t w;
  uint32_t bucket_bits;
  uint32_t reserved0;
  char ref_digest[32];  // Reference::digest() as 32 hex characters
  uint64_t num_contigs;
  uint64_t ref_length;
  uint64_t num_keys;
  uint64_t num_positions;  // total hits
  uint64_t multi_words;    // size of multi[]
  uint64_t file_size;      // the whole file: a truncated copy is caught before any section is read
  uint64_t reserved[2];
};
static_assert(sizeof(FileHeader) == 128);

struct KeyEntry {
  uint64_t key;
  uint64_t value;
};
static_assert(sizeof(KeyEntry) == 16);
constexpr uint64_t kSingle = uint64_t(1) << 63;  // hashes use at most 56 bits (k <= 28)

// Byte size of the file for these counts, or 0 when the counts cannot describe a real file.
uint64_t expected_file_size(uint32_t bucket_bits, uint64_t num_keys, uint64_t multi_words) {
  if (bucket_bits > 40 || num_keys > (uint64_t(1) << 58) || multi_words > (uint64_t(1) << 58)) return 0;
  return sizeof(FileHeader) + 8 * ((uint64_t(1) << bucket_bits) + 1) + sizeof(KeyEntry) * num_keys +
         8 * multi_words;
}

uint32_t choose_bucket_bits(uint64_t num_keys, int k) {
  // About one key per bucket: 2^20 for a bacterium, the 2^24 cap for a human genome (16 keys per
  // bucket there, still a 4-step search), and no more bits than the 2k-bit hash has.
  const uint32_t bits = std::clamp<uint32_t>(uint32_t(std::bit_width(num_keys)), 8, 24);
  return std::min<uint32_t>(bits, uint32_t(2 * k));
}

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Buffered writer over a raw fd so that errors (ENOSPC, EIO) are seen and reported.
class FileWriter {
 public:
  FileWriter(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(sys_error("cannot create index", path_));
    buf_.reserve(kBufSize);
  }
  ~FileWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    if (buf_.size() + n > kBufSize) flush();
    if (n >= kBufSize) {
      write_all(p, n);
    } else {
      buf_.insert(buf_.end(), p, p + n);
    }
  }
  template <class T>
  void put(const T& v) {
    write(&v, sizeof v);
  }
  void flush() {
    write_all(buf_.data(), buf_.size());
    buf_.clear();
  }
  void sync_and_close() {
    flush();
    if (::fsync(fd_) != 0) throw Error(sys_error("cannot fsync index", path_));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw Error(sys_error("cannot close index", path_));
  }

 private:
  static constexpr size_t kBufSize = size_t(4) << 20;
  void write_all(const char* p, size_t n) {
    while (n > 0) {
      const ssize_t r = ::write(fd_, p, n);
      if (r < 0) {
        if (errno == EINTR) continue;
        throw Error(sys_error("cannot write index", path_));
      }
      p += r;
      n -= size_t(r);
      written_ += uint64_t(r);
    }
#ifdef __linux__
    // Start writing back every 64 MB as it is written, so that the disk works while the rest is
    // produced and the final fsync waits for the last part only (best effort: errors show at fsync).
    if (written_ - started_ >= kWritebackChunk) {
      (void)::sync_file_range(fd_, off_t(started_), off_t(written_ - started_), SYNC_FILE_RANGE_WRITE);
      started_ = written_;
    }
#endif
  }
  static constexpr uint64_t kWritebackChunk = uint64_t(64) << 20;
  std::string path_;
  int fd_ = -1;
  std::vector<char> buf_;
  uint64_t written_ = 0, started_ = 0;
};

void fsync_parent_dir(const std::string& path) {
  // Makes the rename durable; best effort (some file systems refuse fsync on directories).
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

InputError corrupt(const std::string& path, const std::string& what) {
  return InputError("index " + path + ": corrupt or truncated (" + what +
                    "); rebuild it with `omicsd index`");
}

}  // namespace

struct MinimizerIndex::Impl {
  void* map = nullptr;
  size_t map_size = 0;
  int k = 0, w = 0;
  uint64_t hash_mask = 0;
  int shift = 0;
  uint64_t num_keys = 0, num_positions = 0, multi_words = 0;
  const uint64_t* buckets = nullptr;
  const KeyEntry* keys = nullptr;
  const uint64_t* multi = nullptr;

  ~Impl() {
    if (map) ::munmap(map, map_size);
  }
};

MinimizerIndex::MinimizerIndex() = default;
MinimizerIndex::~MinimizerIndex() = default;
MinimizerIndex::MinimizerIndex(MinimizerIndex&&) noexcept = default;
MinimizerIndex& MinimizerIndex::operator=(MinimizerIndex&&) noexcept = default;

int MinimizerIndex::k() const { return impl_ ? impl_->k : 0; }
int MinimizerIndex::w() const { return impl_ ? impl_->w : 0; }
uint64_t MinimizerIndex::num_keys() const { return impl_ ? impl_->num_keys : 0; }
uint64_t MinimizerIndex::num_positions() const { return impl_ ? impl_->num_positions : 0; }

std::span<const uint64_t> MinimizerIndex::lookup(uint64_t hash) const {
  const Impl* im = impl_.get();
  if (!im || hash > im->hash_mask) return {};
  const uint64_t b = hash >> im->shift;
  // Clamped so that a corrupted directory can give wrong answers but never read outside the map.
  const uint64_t end = std::min(im->buckets[b + 1], im->num_keys);
  uint64_t lo = std::min(im->buckets[b], end), hi = end;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if ((im->keys[mid].key & ~kSingle) < hash) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo >= end) return {};
  const KeyEntry& e = im->keys[lo];
  if (e.key == (hash | kSingle)) return {&e.value, 1};
  if (e.key != hash || e.value >= im->multi_words) return {};
  const uint64_t count = std::min(im->multi[e.value], im->multi_words - e.value - 1);
  return {im->multi + e.value + 1, size_t(count)};
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int build_threads(int requested) {
  if (requested > 0) return requested;
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

// Runs fn(t) on `threads` threads (the caller's being one of them) and rethrows the first exception.
template <class Fn>
void run_threads(int threads, Fn&& fn) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  auto guarded = [&](int t) {
    try {
      fn(t);
    } catch (...) {
      errors[size_t(t)] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(guarded, t);
  guarded(0);
  for (std::thread& th : pool) th.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

// Contigs longest first, so that the last one a thread takes is short and the threads end together.
std::vector<size_t> contigs_longest_first(const Reference& ref) {
  std::vector<size_t> order(ref.contigs().size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ref.contigs()[a].length > ref.contigs()[b].length; });
  return order;
}

// Packed build: a minimizer position is one 64-bit word, (hash's low bits << hit_bits) | hit, kept in
// the partition of the hash's top part_bits. Sorting a partition's words orders it by hash, then by
// hit: the order of the file. Partitions are filled in blocks (no doubling growth), so memory is
// 8 bytes per position plus, per thread, the partition it is sorting.
struct PackedLayout {
  int part_bits = 0;
  int low_bits = 0;  // hash bits kept in the word
  int hit_bits = 0;
};

std::optional<PackedLayout> packed_layout(int k, int w, uint64_t ref_length) {
  const int hash_bits = 2 * k;
  const int hit_bits = std::bit_width(ref_length * 2 + 1);  // hits are < 2 * ref_length
  // 2^12 partitions for a large genome (about 130,000 positions, 1 MB, each for a human one: sorted
  // within the core's cache), 2^8 for a small one.
  const uint64_t expected = ref_length * 2 / uint64_t(w + 1);
  const int wanted = expected >= (uint64_t(1) << 24) ? 12 : 8;
  const int part_bits = std::max(std::min(wanted, hash_bits), hash_bits + hit_bits - 64);
  if (part_bits > 14) return std::nullopt;  // too many partitions: the 16-byte build instead
  return PackedLayout{part_bits, hash_bits - part_bits, hit_bits};
}

struct PackedPositions {
  PackedLayout layout;
  std::vector<std::vector<uint64_t>> parts;  // sorted words per partition
  uint64_t count = 0;
};

PackedPositions collect_packed(const Reference& ref, int k, int w, const PackedLayout& layout, int threads,
                               double& extract_s, double& sort_s) {
  const size_t np = size_t(1) << layout.part_bits;
  const uint64_t low_mask = (uint64_t(1) << layout.low_bits) - 1;
  const int hit_bits = layout.hit_bits;
  const int low_bits = layout.low_bits;
  // Blocks of 1/32 of a partition's expected size (little unused space at the ends; only the pages
  // written are resident), at least 128 KB.
  const uint64_t expected = ref.total_length() * 2 / uint64_t(w + 1);
  const size_t block = size_t(std::clamp<uint64_t>(expected / np / 32, 1 << 14, 1 << 16));

  // Per thread and partition: the blocks filled (all full but the last) and the free part of the last.
  struct Fill {
    uint64_t* cur = nullptr;
    uint64_t* end = nullptr;
  };
  struct ThreadParts {
    std::vector<Fill> fill;
    std::vector<std::vector<std::unique_ptr<uint64_t[]>>> blocks;
    size_t size(size_t p, size_t block) const {
      return blocks[p].empty() ? 0 : blocks[p].size() * block - size_t(fill[p].end - fill[p].cur);
    }
  };
  std::vector<ThreadParts> parts(static_cast<size_t>(threads));
  const std::vector<size_t> order = contigs_longest_first(ref);
  std::atomic<size_t> next{0};
  auto t0 = Clock::now();
  run_threads(threads, [&](int t) {
    ThreadParts& mine = parts[size_t(t)];
    mine.fill.resize(np);
    mine.blocks.resize(np);
    std::vector<Minimizer> mins;
    for (size_t i; (i = next.fetch_add(1)) < order.size();) {
      const Contig& c = ref.contigs()[order[i]];
      compute_minimizers(ref.codes() + c.offset, c.length, k, w, mins);
      for (const Minimizer& m : mins) {
        const size_t p = size_t(m.hash >> low_bits);
        Fill& f = mine.fill[p];
        if (f.cur == f.end) {
          // Not value-initialized: pages of a block are touched only as it fills.
          mine.blocks[p].emplace_back(new uint64_t[block]);
          f.cur = mine.blocks[p].back().get();
          f.end = f.cur + block;
        }
        *f.cur++ = ((m.hash & low_mask) << hit_bits) | ((c.offset + m.pos) << 1) | m.reverse;
      }
    }
  });
  extract_s = seconds_since(t0);

  t0 = Clock::now();
  PackedPositions out;
  out.layout = layout;
  out.parts.resize(np);
  std::atomic<uint64_t> count{0};
  next = 0;
  run_threads(threads, [&](int) {
    for (size_t p; (p = next.fetch_add(1)) < np;) {
      size_t n = 0;
      for (const ThreadParts& tp : parts) n += tp.size(p, block);
      std::vector<uint64_t> v;
      v.reserve(n);
      for (ThreadParts& tp : parts) {
        const size_t size = tp.size(p, block);
        for (size_t b = 0; b < tp.blocks[p].size(); ++b) {
          const uint64_t* data = tp.blocks[p][b].get();
          v.insert(v.end(), data, data + std::min(block, size - b * block));
          tp.blocks[p][b].reset();  // freed as it is copied: memory stays one copy
        }
        std::vector<std::unique_ptr<uint64_t[]>>().swap(tp.blocks[p]);
      }
#ifdef __GLIBC__
      // Blocks that malloc kept in its heap (below its mmap threshold, which grows as mapped chunks
      // are freed) are not returned by free(): without this the sorted copies (mapped) came on top
      // of them, 11.2 GB instead of 8.7 GB for a human genome.
      if ((p + 1) % std::max<size_t>(np / 32, 1) == 0) ::malloc_trim(0);
#endif
      std::sort(v.begin(), v.end());
      count += v.size();
      out.parts[p] = std::move(v);
    }
  });
  out.count = count;
  sort_s = seconds_since(t0);
  return out;
}

// Calls fn(hash, hits, n) for each distinct hash in ascending order with its n hits ascending.
template <class Fn>
void for_each_key(const PackedPositions& pp, Fn&& fn) {
  const uint64_t hit_mask = (uint64_t(1) << pp.layout.hit_bits) - 1;
  std::vector<uint64_t> hits;
  for (size_t p = 0; p < pp.parts.size(); ++p) {
    const std::vector<uint64_t>& v = pp.parts[p];
    const uint64_t high = uint64_t(p) << pp.layout.low_bits;
    for (size_t i = 0, j; i < v.size(); i = j) {
      const uint64_t low = v[i] >> pp.layout.hit_bits;
      for (j = i + 1; j < v.size() && (v[j] >> pp.layout.hit_bits) == low;) ++j;
      hits.clear();
      for (size_t q = i; q < j; ++q) hits.push_back(v[q] & hit_mask);
      fn(high | low, hits.data(), j - i);
    }
  }
}

// The 16-byte build: (hash, hit) pairs sorted whole. Pairs are unique (one entry per k-mer position),
// so sorting them whole orders positions within a hash without the extra buffer a stable sort needs.
using PairPositions = std::vector<std::pair<uint64_t, uint64_t>>;

PairPositions collect_pairs(const Reference& ref, int k, int w, double& extract_s, double& sort_s) {
  auto t0 = Clock::now();
  PairPositions items;
  items.reserve(size_t(ref.total_length() * 2 / uint64_t(w + 1)) + 1024);
  std::vector<Minimizer> mins;
  for (const Contig& c : ref.contigs()) {
    compute_minimizers(ref.codes() + c.offset, c.length, k, w, mins);
    for (const Minimizer& m : mins) items.emplace_back(m.hash, ((c.offset + m.pos) << 1) | m.reverse);
  }
  extract_s = seconds_since(t0);
  t0 = Clock::now();
  std::sort(items.begin(), items.end());
  sort_s = seconds_since(t0);
  return items;
}

template <class Fn>
void for_each_key(const PairPositions& items, Fn&& fn) {
  std::vector<uint64_t> hits;
  for (size_t i = 0, j; i < items.size(); i = j) {
    for (j = i + 1; j < items.size() && items[j].first == items[i].first;) ++j;
    hits.clear();
    for (size_t q = i; q < j; ++q) hits.push_back(items[q].second);
    fn(items[i].first, hits.data(), j - i);
  }
}

// Writes the file (see the layout above) from positions grouped by hash.
template <class Positions>
void write_index(const Reference& ref, int k, int w, uint64_t num_positions, const Positions& positions,
                 const std::string& out_path) {
  uint64_t num_keys = 0, multi_words = 0;
  for_each_key(positions, [&](uint64_t, const uint64_t*, size_t n) {
    ++num_keys;
    if (n > 1) multi_words += 1 + n;
  });
  const uint32_t bucket_bits = choose_bucket_bits(num_keys, k);
  const int shift = 2 * k - int(bucket_bits);
  const uint64_t nb = uint64_t(1) << bucket_bits;

  FileHeader h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kFormatVersion;
  h.endian = kEndianTag;
  h.k = uint32_t(k);
  h.w = uint32_t(w);
  h.bucket_bits = bucket_bits;
  std::memcpy(h.ref_digest, ref.digest().data(), 32);
  h.num_contigs = ref.contigs().size();
  h.ref_length = ref.total_length();
  h.num_keys = num_keys;
  h.num_positions = num_positions;
  h.multi_words = multi_words;
  h.file_size = expected_file_size(bucket_bits, num_keys, multi_words);

  // Bucket b starts at the number of keys whose bucket is < b.
  std::vector<uint64_t> buckets(nb + 1, 0);
  for_each_key(positions, [&](uint64_t hash, const uint64_t*, size_t) { ++buckets[(hash >> shift) + 1]; });
  for (uint64_t b = 0; b < nb; ++b) buckets[b + 1] += buckets[b];

  const std::string tmp = out_path + ".tmp." + std::to_string(::getpid());
  try {
    FileWriter out(tmp);
    out.put(h);
    out.write(buckets.data(), buckets.size() * sizeof(uint64_t));
    uint64_t offset = 0;
    for_each_key(positions, [&](uint64_t hash, const uint64_t* hits, size_t n) {
      if (n == 1) {
        out.put(KeyEntry{hash | kSingle, hits[0]});
      } else {
        out.put(KeyEntry{hash, offset});
        offset += 1 + n;
      }
    });
    for_each_key(positions, [&](uint64_t, const uint64_t* hits, size_t n) {
      if (n == 1) return;
      out.put(uint64_t(n));
      out.write(hits, n * sizeof(uint64_t));
    });
    out.sync_and_close();
    if (::rename(tmp.c_str(), out_path.c_str()) != 0)
      throw Error(sys_error("cannot rename index to", out_path));
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  fsync_parent_dir(out_path);
  spdlog::debug("index {}: {} keys, 2^{} buckets", out_path, num_keys, bucket_bits);
}

}  // namespace

namespace {

std::string build_index(const Reference& ref, const IndexParams& params, const std::string& out_path,
                        bool allow_packed) {
  const int k = params.k, w = params.w;
  if (k < 1 || k > 28 || w < 1 || w > 255) {
    throw InputError("index parameters out of range: k=" + std::to_string(k) +
                     " (1..28), w=" + std::to_string(w) + " (1..255)");
  }
  if (ref.digest().size() != 32) throw Error("reference " + ref.path() + " has no digest");
  const auto t0 = Clock::now();
  // Contigs are sketched separately so no k-mer or window spans a contig boundary.
  double extract_s = 0, sort_s = 0, write_s = 0;
  uint64_t num_positions = 0;
  const char* how = "";
  const auto layout = allow_packed ? packed_layout(k, w, ref.total_length()) : std::nullopt;
  if (layout) {
    const int threads = build_threads(params.threads);
    const PackedPositions pp = collect_packed(ref, k, w, *layout, threads, extract_s, sort_s);
    num_positions = pp.count;
    const auto tw = Clock::now();
    write_index(ref, k, w, num_positions, pp, out_path);
    write_s = seconds_since(tw);
    how = threads > 1 ? "8-byte positions, threaded" : "8-byte positions";
  } else {
    const PairPositions items = collect_pairs(ref, k, w, extract_s, sort_s);
    num_positions = items.size();
    const auto tw = Clock::now();
    write_index(ref, k, w, num_positions, items, out_path);
    write_s = seconds_since(tw);
    how = "16-byte positions";
  }
  spdlog::info(
      "index {}: k={} w={} {} positions ({}): minimizers {:.1f} s, sort {:.1f} s, write {:.1f} s, "
      "total {:.1f} s",
      out_path, k, w, num_positions, how, extract_s, sort_s, write_s, seconds_since(t0));
  return out_path;
}

}  // namespace

std::string MinimizerIndex::build(const Reference& ref, const IndexParams& params,
                                  const std::string& out_path) {
  return build_index(ref, params, out_path, true);
}

std::string detail::build_index_16_byte(const Reference& ref, const IndexParams& params,
                                        const std::string& out_path) {
  return build_index(ref, params, out_path, false);
}

MinimizerIndex MinimizerIndex::open(const std::string& index_path, const Reference& ref) {
  const int fd = ::open(index_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      throw InputError("index " + index_path + ": not found; build it with `omicsd index`");
    throw InputError(sys_error("cannot open index", index_path));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string msg = sys_error("cannot stat index", index_path);
    ::close(fd);
    throw InputError(msg);
  }
  const uint64_t size = uint64_t(st.st_size);
  if (size < sizeof(FileHeader)) {
    ::close(fd);
    throw corrupt(index_path, "file of " + std::to_string(size) + " bytes is shorter than the header");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file open
  if (map == MAP_FAILED) throw InputError(sys_error("cannot map index", index_path));

  MinimizerIndex idx;
  idx.impl_ = std::make_unique<Impl>();
  Impl& im = *idx.impl_;
  im.map = map;
  im.map_size = size;

  FileHeader h;
  std::memcpy(&h, map, sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) throw corrupt(index_path, "not an omicsd index");
  if (h.endian != kEndianTag) throw corrupt(index_path, "written with another byte order");
  if (h.version != kFormatVersion) {
    throw InputError("index " + index_path + ": format version " + std::to_string(h.version) +
                     ", this omicsd reads version " + std::to_string(kFormatVersion) +
                     "; rebuild it with `omicsd index`");
  }
  if (h.k < 1 || h.k > 28 || h.w < 1 || h.w > 255 || h.bucket_bits > 2 * h.k) {
    throw corrupt(index_path, "bad parameters k=" + std::to_string(h.k) + " w=" + std::to_string(h.w));
  }
  const uint64_t expect = expected_file_size(h.bucket_bits, h.num_keys, h.multi_words);
  if (expect == 0 || h.num_keys > h.num_positions || h.multi_words > 2 * h.num_positions ||
      h.file_size != expect || size != expect) {
    throw corrupt(index_path, "file is " + std::to_string(size) + " bytes, header describes " +
                                  std::to_string(h.file_size) + " bytes");
  }
  const char* base = static_cast<const char*>(map);
  const uint64_t nb = uint64_t(1) << h.bucket_bits;
  im.buckets = reinterpret_cast<const uint64_t*>(base + sizeof(FileHeader));
  im.keys = reinterpret_cast<const KeyEntry*>(base + sizeof(FileHeader) + 8 * (nb + 1));
  im.multi = reinterpret_cast<const uint64_t*>(reinterpret_cast<const char*>(im.keys) +
                                               sizeof(KeyEntry) * h.num_keys);
  if (im.buckets[0] != 0 || im.buckets[nb] != h.num_keys) throw corrupt(index_path, "inconsistent directory");

  if (std::string_view(h.ref_digest, 32) != ref.digest() || h.ref_length != ref.total_length() ||
      h.num_contigs != ref.contigs().size()) {
    throw InputError("index " + index_path + " was built for another reference (digest " +
                     std::string(h.ref_digest, 32) + ", " + ref.path() + " has " + ref.digest() +
                     "); rebuild it with `omicsd index " + ref.path() + "`");
  }

  im.k = int(h.k);
  im.w = int(h.w);
  im.hash_mask = (uint64_t(1) << (2 * h.k)) - 1;
  im.shift = int(2 * h.k - h.bucket_bits);
  im.num_keys = h.num_keys;
  im.num_positions = h.num_positions;
  im.multi_words = h.multi_words;
  return idx;
}

MinimizerIndex MinimizerIndex::open_or_build(const Reference& ref, const IndexParams& params) {
  const std::string path = default_path(ref.path());
  std::string reason;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    reason = "no index yet";
  } else {
    // Decide from the header first so the log says why the index is rebuilt.
    FileHeader h{};
    std::ifstream in(path, std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(&h), sizeof h) || std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 ||
        h.version != kFormatVersion) {
      reason = "the existing file is not a readable version " + std::to_string(kFormatVersion) + " index";
    } else if (std::string_view(h.ref_digest, 32) != ref.digest()) {
      reason = "the existing index was built for another reference (the FASTA changed)";
    } else if (int(h.k) != params.k || int(h.w) != params.w) {
      reason = "the existing index has k=" + std::to_string(h.k) + " w=" + std::to_string(h.w);
    } else {
      try {
        return open(path, ref);
      } catch (const InputError& e) {
        reason = e.what();
      }
    }
  }
  spdlog::info("building minimizer index {} (k={} w={}): {}", path, params.k, params.w, reason);
  const auto t0 = std::chrono::steady_clock::now();
  build(ref, params, path);
  MinimizerIndex idx = open(path, ref);
  spdlog::info("index {}: {} minimizers, {} positions, built in {:.1f} s", path, idx.num_keys(),
               idx.num_positions(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return idx;
}

}  // namespace omicsd
