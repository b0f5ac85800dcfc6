#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "host/common/dna.hpp"
#include "host/common/error.hpp"
#include "host/index/minimizer.hpp"
#include "host/index/minimizer_index.hpp"
#include "host/io/reference.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;

using Key = std::tuple<uint32_t, uint64_t, uint8_t>;  // pos, hash, reverse

std::vector<Key> keys_of(const std::vector<Minimizer>& v) {
  std::vector<Key> out;
  for (const Minimizer& m : v) out.emplace_back(m.pos, m.hash, m.reverse);
  return out;
}

// Straight from the definition: split at Ns, list the non-palindromic k-mers of each segment with
// their canonical hash, and for every window of w consecutive ones keep all k-mers at the minimum.
std::vector<Key> brute_force(const std::vector<uint8_t>& s, int k, int w) {
  std::set<Key> found;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] > 3) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && s[j] <= 3) ++j;
    std::vector<Key> kmers;
    for (size_t p = i; p + k <= j; ++p) {
      uint64_t fwd = 0, rev = 0;
      for (int q = 0; q < k; ++q) {
        fwd = (fwd << 2) | s[p + q];
        rev = (rev << 2) | (3 - s[p + k - 1 - q]);
      }
      if (fwd == rev) continue;
      kmers.emplace_back(uint32_t(p), minimizer_hash(std::min(fwd, rev), k), uint8_t(rev < fwd));
    }
    for (size_t start = 0; start + w <= kmers.size(); ++start) {
      uint64_t mn = ~uint64_t(0);
      for (size_t q = start; q < start + w; ++q) mn = std::min(mn, std::get<1>(kmers[q]));
      for (size_t q = start; q < start + w; ++q) {
        if (std::get<1>(kmers[q]) == mn) found.insert(kmers[q]);
      }
    }
    i = j;
  }
  return std::vector<Key>(found.begin(), found.end());
}

// Random codes with N runs and low-complexity stretches (homopolymers, short tandem repeats) so that
// windows often hold several equal hashes.
std::vector<uint8_t> random_codes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> s;
  while (s.size() < n) {
    const uint64_t r = rng() % 100;
    if (r < 3) {
      s.insert(s.end(), 1 + rng() % 30, kBaseN);
    } else if (r < 8) {
      s.insert(s.end(), 5 + rng() % 60, uint8_t(rng() % 4));
    } else if (r < 14) {
      std::vector<uint8_t> unit(1 + rng() % 6);
      for (auto& u : unit) u = uint8_t(rng() % 4);
      const size_t copies = 2 + rng() % 20;
      for (size_t c = 0; c < copies; ++c) s.insert(s.end(), unit.begin(), unit.end());
    } else {
      const size_t len = 1 + rng() % 200;
      for (size_t c = 0; c < len; ++c) s.push_back(uint8_t(rng() % 4));
    }
  }
  s.resize(n);
  return s;
}

TEST(MinimizerHash, IsABijectionOnTwoKBits) {
  for (int k = 1; k <= 9; ++k) {
    const uint64_t n = uint64_t(1) << (2 * k);
    std::vector<bool> seen(n, false);
    for (uint64_t x = 0; x < n; ++x) {
      const uint64_t h = minimizer_hash(x, k);
      ASSERT_LT(h, n) << "k=" << k;
      ASSERT_FALSE(seen[h]) << "collision k=" << k << " x=" << x;
      seen[h] = true;
    }
  }
  // Bits above 2k are ignored and the hash never leaves 2k bits.
  std::mt19937_64 rng(1);
  for (int k : {15, 19, 28}) {
    for (int i = 0; i < 1000; ++i) {
      const uint64_t x = rng();
      const uint64_t mask = (uint64_t(1) << (2 * k)) - 1;
      EXPECT_EQ(minimizer_hash(x, k), minimizer_hash(x & mask, k));
      EXPECT_LE(minimizer_hash(x, k), mask);
    }
  }
}

TEST(Minimizers, MatchBruteForceOnRandomSequencesWithNs) {
  std::mt19937_64 rng(12345);
  const std::pair<int, int> kw[] = {{1, 1},  {2, 3},   {3, 2},  {4, 4},   {5, 1},   {6, 7},   {8, 5},
                                    {11, 3}, {12, 10}, {15, 5}, {19, 10}, {21, 11}, {27, 64}, {28, 255}};
  std::vector<Minimizer> got;
  for (const auto& [k, w] : kw) {
    for (int trial = 0; trial < 12; ++trial) {
      const size_t n = trial == 0 ? size_t(k + w - 1) : 1 + rng() % 4000;
      const std::vector<uint8_t> s = random_codes(rng, n);
      compute_minimizers(s.data(), uint32_t(s.size()), k, w, got);
      const std::vector<Key> want = brute_force(s, k, w);
      ASSERT_EQ(keys_of(got), want) << "k=" << k << " w=" << w << " n=" << n << " trial=" << trial;
      for (size_t i = 1; i < got.size(); ++i) ASSERT_LT(got[i - 1].pos, got[i].pos);
    }
  }
}

TEST(Minimizers, EdgeCases) {
  std::vector<Minimizer> out{Minimizer{1, 2, 0}};
  const std::vector<uint8_t> acgt = {0, 1, 2, 3, 0, 1, 2, 3, 3, 3};
  compute_minimizers(acgt.data(), 3, 5, 1, out);  // shorter than k
  EXPECT_TRUE(out.empty());
  compute_minimizers(acgt.data(), 0, 5, 1, out);
  EXPECT_TRUE(out.empty());
  const std::vector<uint8_t> ns(100, kBaseN);
  compute_minimizers(ns.data(), uint32_t(ns.size()), 5, 2, out);
  EXPECT_TRUE(out.empty());
  // Fewer valid k-mers than one window: no minimizer (a window needs w k-mers).
  compute_minimizers(acgt.data(), uint32_t(acgt.size()), 5, 7, out);
  EXPECT_TRUE(out.empty());
  // Exactly one window: at least its minimum.
  compute_minimizers(acgt.data(), uint32_t(acgt.size()), 5, 6, out);
  EXPECT_FALSE(out.empty());
  // Poly-A: every k-mer has the same hash, so every one is a minimizer (all ties kept); AAAAA is its
  // own canonical form (forward), and poly-T's canonical form is its reverse complement.
  const std::vector<uint8_t> polya(50, 0);
  compute_minimizers(polya.data(), uint32_t(polya.size()), 5, 10, out);
  ASSERT_EQ(out.size(), 46u);
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].pos, i);
    EXPECT_EQ(out[i].reverse, 0);
  }
  const std::vector<uint8_t> polyt(50, 3);
  compute_minimizers(polyt.data(), uint32_t(polyt.size()), 5, 10, out);
  ASSERT_EQ(out.size(), 46u);
  EXPECT_EQ(out[0].reverse, 1);
  EXPECT_THROW(compute_minimizers(acgt.data(), 10, 0, 1, out), std::invalid_argument);
  EXPECT_THROW(compute_minimizers(acgt.data(), 10, 29, 1, out), std::invalid_argument);
  EXPECT_THROW(compute_minimizers(acgt.data(), 10, 5, 0, out), std::invalid_argument);
  EXPECT_THROW(compute_minimizers(acgt.data(), 10, 5, 256, out), std::invalid_argument);
}

TEST(Minimizers, StrandSymmetric) {
  std::mt19937_64 rng(99);
  std::vector<Minimizer> fwd, rev;
  for (const auto& [k, w] : std::vector<std::pair<int, int>>{{4, 3}, {10, 4}, {15, 10}, {19, 10}, {28, 30}}) {
    for (int trial = 0; trial < 10; ++trial) {
      const std::vector<uint8_t> s = random_codes(rng, 500 + rng() % 5000);
      std::vector<uint8_t> rc(s.rbegin(), s.rend());
      for (auto& c : rc) c = complement_code(c);
      compute_minimizers(s.data(), uint32_t(s.size()), k, w, fwd);
      compute_minimizers(rc.data(), uint32_t(rc.size()), k, w, rev);
      ASSERT_FALSE(fwd.empty());
      // K-mer at p on one strand is the k-mer at n-k-p on the other, same canonical hash, opposite
      // orientation; windows map onto windows, so the sets correspond exactly.
      std::vector<Key> mirrored;
      for (const Minimizer& m : rev) {
        mirrored.emplace_back(uint32_t(s.size() - k - m.pos), m.hash, uint8_t(1 - m.reverse));
      }
      std::sort(mirrored.begin(), mirrored.end());
      ASSERT_EQ(keys_of(fwd), mirrored) << "k=" << k << " w=" << w;
    }
  }
}

// ---- index ----

std::string to_fasta_text(const std::vector<std::pair<std::string, std::vector<uint8_t>>>& contigs) {
  std::string text;
  for (const auto& [name, codes] : contigs) {
    text += ">" + name + "\n";
    for (size_t i = 0; i < codes.size(); ++i) {
      text += kCodeToBase[codes[i]];
      if (i % 70 == 69 || i + 1 == codes.size()) text += '\n';
    }
  }
  return text;
}

// Random multi-contig reference with repeated segments (so keys have several positions) written to
// `path` and loaded.
Reference make_reference(const fs::path& path, uint64_t seed, int contigs = 4) {
  std::mt19937_64 rng(seed);
  std::vector<std::pair<std::string, std::vector<uint8_t>>> cs;
  std::vector<uint8_t> repeat = random_codes(rng, 300);
  for (int c = 0; c < contigs; ++c) {
    std::vector<uint8_t> s = random_codes(rng, 2000 + rng() % 20000);
    for (int r = 0; r < 3; ++r) {
      const size_t at = rng() % s.size();
      s.insert(s.begin() + long(at), repeat.begin(), repeat.end());
    }
    cs.emplace_back("contig" + std::to_string(c), std::move(s));
  }
  cs.emplace_back("tiny", std::vector<uint8_t>{0, 1, 2});  // shorter than k: no minimizers
  test::write_file(path, to_fasta_text(cs));
  return Reference::load(path.string());
}

// hash -> sorted encoded positions, from compute_minimizers per contig (checked against brute force
// above) so the index test checks the file format and lookup.
std::map<uint64_t, std::vector<uint64_t>> expected_entries(const Reference& ref, int k, int w) {
  std::map<uint64_t, std::vector<uint64_t>> m;
  for (const Contig& c : ref.contigs()) {
    std::vector<uint8_t> s(ref.codes() + c.offset, ref.codes() + c.offset + c.length);
    for (const Key& key : brute_force(s, k, w)) {
      const auto [pos, hash, reverse] = key;
      EXPECT_LE(pos + k, c.length);  // never spans contigs
      m[hash].push_back(((c.offset + pos) << 1) | reverse);
    }
  }
  for (auto& [h, v] : m) std::sort(v.begin(), v.end());
  return m;
}

TEST(MinimizerIndex, BuildOpenRoundTrip) {
  test::TempDir dir;
  const Reference ref = make_reference(dir.path / "ref.fa", 5);
  for (const IndexParams params : {IndexParams{15, 5}, IndexParams{11, 3}, IndexParams{19, 10},
                                   IndexParams{5, 4}, IndexParams{28, 10}, IndexParams{2, 3}}) {
    SCOPED_TRACE("k=" + std::to_string(params.k) + " w=" + std::to_string(params.w));
    const std::string path = (dir.path / "ref.omi").string();
    EXPECT_EQ(MinimizerIndex::build(ref, params, path), path);
    const MinimizerIndex idx = MinimizerIndex::open(path, ref);
    EXPECT_EQ(idx.k(), params.k);
    EXPECT_EQ(idx.w(), params.w);

    const auto want = expected_entries(ref, params.k, params.w);
    uint64_t total = 0;
    bool some_repeated = false;
    for (const auto& [hash, positions] : want) {
      const auto got = idx.lookup(hash);
      ASSERT_EQ(std::vector<uint64_t>(got.begin(), got.end()), positions) << "hash " << hash;
      total += positions.size();
      some_repeated |= positions.size() > 1;
    }
    EXPECT_TRUE(some_repeated);
    EXPECT_EQ(idx.num_keys(), want.size());
    EXPECT_EQ(idx.num_positions(), total);

    // Hashes that are not minimizers find nothing, including ones beyond 2k bits.
    std::mt19937_64 rng(1);
    const uint64_t mask = (uint64_t(1) << (2 * params.k)) - 1;
    for (int i = 0; i < 20000; ++i) {
      const uint64_t h = rng() & mask;
      if (!want.count(h)) {
        ASSERT_TRUE(idx.lookup(h).empty()) << h;
      }
    }
    EXPECT_TRUE(idx.lookup(mask + 1).empty());
    EXPECT_TRUE(idx.lookup(~uint64_t(0)).empty());

    const auto hit = MinimizerIndex::decode_hit(want.begin()->second.front());
    EXPECT_EQ((hit.pos << 1) | hit.reverse, want.begin()->second.front());
  }
  // No temporary file is left behind.
  for (const auto& e : fs::directory_iterator(dir.path)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  }
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The 8-byte (partitioned, threaded) build and the 16-byte one write the same bytes, with any thread
// count.
TEST(MinimizerIndex, BuildPathsAndThreadCountsWriteTheSameFile) {
  test::TempDir dir;
  const Reference ref = make_reference(dir.path / "ref.fa", 9, 12);
  for (const IndexParams base :
       {IndexParams{19, 10}, IndexParams{15, 5}, IndexParams{28, 4}, IndexParams{3, 2}}) {
    SCOPED_TRACE("k=" + std::to_string(base.k) + " w=" + std::to_string(base.w));
    const fs::path wide = dir.path / "wide.omi";
    detail::build_index_16_byte(ref, base, wide.string());
    const std::string want = file_bytes(wide);
    ASSERT_GT(want.size(), 128u);
    for (const int threads : {1, 2, 3}) {
      IndexParams p = base;
      p.threads = threads;
      const fs::path packed = dir.path / ("packed" + std::to_string(threads) + ".omi");
      MinimizerIndex::build(ref, p, packed.string());
      EXPECT_TRUE(file_bytes(packed) == want) << "threads " << threads;
    }
  }
}

TEST(MinimizerIndex, MovedAndEmptyIndexes) {
  test::TempDir dir;
  const Reference ref = make_reference(dir.path / "ref.fa", 8, 1);
  const std::string path = (dir.path / "ref.omi").string();
  MinimizerIndex::build(ref, IndexParams{15, 5}, path);
  MinimizerIndex a = MinimizerIndex::open(path, ref);
  const auto want = expected_entries(ref, 15, 5);
  const uint64_t h = want.begin()->first;
  MinimizerIndex b(std::move(a));
  EXPECT_EQ(b.lookup(h).size(), want.begin()->second.size());
  MinimizerIndex c;
  EXPECT_TRUE(c.lookup(h).empty());
  EXPECT_EQ(c.num_keys(), 0u);
  c = std::move(b);
  EXPECT_EQ(c.lookup(h).size(), want.begin()->second.size());
  EXPECT_EQ(c.k(), 15);
}

void expect_open_error(const std::string& path, const Reference& ref, const std::string& what) {
  try {
    MinimizerIndex::open(path, ref);
    ADD_FAILURE() << "no error opening " << path;
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

TEST(MinimizerIndex, CorruptTruncatedOrForeignFilesAreRejected) {
  test::TempDir dir;
  const Reference ref = make_reference(dir.path / "ref.fa", 11);
  const std::string good = (dir.path / "good.omi").string();
  MinimizerIndex::build(ref, IndexParams{15, 5}, good);
  const std::string bytes = test::read_file(good);
  ASSERT_GT(bytes.size(), 4096u);

  auto variant = [&](const std::string& name, const std::string& content) {
    const std::string p = (dir.path / name).string();
    test::write_file(p, content);
    return p;
  };
  expect_open_error((dir.path / "missing.omi").string(), ref, "not found");
  expect_open_error(variant("empty.omi", ""), ref, "corrupt or truncated");
  expect_open_error(variant("short.omi", bytes.substr(0, 100)), ref, "corrupt or truncated");
  expect_open_error(variant("half.omi", bytes.substr(0, bytes.size() / 2)), ref, "corrupt or truncated");
  expect_open_error(variant("less8.omi", bytes.substr(0, bytes.size() - 8)), ref, "corrupt or truncated");
  expect_open_error(variant("longer.omi", bytes + "x"), ref, "corrupt or truncated");
  std::string bad = bytes;
  bad[0] = 'X';
  expect_open_error(variant("magic.omi", bad), ref, "corrupt or truncated");
  expect_open_error(variant("text.omi", std::string(4096, 'A')), ref, "corrupt or truncated");
  bad = bytes;
  bad[8] = 99;  // version
  expect_open_error(variant("version.omi", bad), ref, "format version 99");
  bad = bytes;
  bad[130] ^= 0x10;  // first bucket start must be 0
  expect_open_error(variant("dir.omi", bad), ref, "corrupt or truncated");

  // Built for another reference: same names and lengths, one base changed.
  std::string fasta = test::read_file(dir.path / "ref.fa");
  const size_t at = fasta.find('\n', fasta.find("contig2")) + 10;
  fasta[at] = fasta[at] == 'A' ? 'C' : 'A';
  test::write_file(dir.path / "other.fa", fasta);
  const Reference other = Reference::load((dir.path / "other.fa").string());
  ASSERT_NE(other.digest(), ref.digest());
  expect_open_error(good, other, "built for another reference");
  try {
    MinimizerIndex::open(good, other);
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("omicsd index"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(MinimizerIndex::open(good, ref));
}

TEST(MinimizerIndex, OpenOrBuildReusesFreshAndRebuildsStaleIndexes) {
  test::TempDir dir;
  const fs::path fa = dir.path / "ref.fa";
  const Reference ref = make_reference(fa, 21, 2);
  const std::string path = MinimizerIndex::default_path(fa.string());
  EXPECT_EQ(path, fa.string() + ".omi");
  ASSERT_FALSE(fs::exists(path));

  auto inode = [](const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_ino;
  };
  {
    const MinimizerIndex idx = MinimizerIndex::open_or_build(ref, IndexParams{15, 5});
    EXPECT_EQ(idx.k(), 15);
    EXPECT_TRUE(fs::exists(path));
  }
  const auto first = inode(path);
  {
    const MinimizerIndex idx = MinimizerIndex::open_or_build(ref, IndexParams{15, 5});
    EXPECT_EQ(inode(path), first) << "a fresh index was rebuilt";
  }
  {
    // Other k/w: rebuilt (the file is replaced by rename, so the inode changes).
    const MinimizerIndex idx = MinimizerIndex::open_or_build(ref, IndexParams{17, 6});
    EXPECT_EQ(idx.k(), 17);
    EXPECT_EQ(idx.w(), 6);
    EXPECT_NE(inode(path), first);
  }
  // The FASTA changed under the index: the digest differs, so it is rebuilt.
  const Reference changed = make_reference(fa, 22, 2);
  ASSERT_NE(changed.digest(), ref.digest());
  {
    const MinimizerIndex idx = MinimizerIndex::open_or_build(changed, IndexParams{17, 6});
    const auto want = expected_entries(changed, 17, 6);
    EXPECT_EQ(idx.num_keys(), want.size());
    for (const auto& [hash, positions] : want) ASSERT_EQ(idx.lookup(hash).size(), positions.size());
  }
  EXPECT_NO_THROW(MinimizerIndex::open(path, changed));
  EXPECT_THROW(MinimizerIndex::open(path, ref), InputError);
  // A corrupt file is rebuilt too.
  test::write_file(path, "garbage");
  {
    const MinimizerIndex idx = MinimizerIndex::open_or_build(changed, IndexParams{17, 6});
    EXPECT_GT(idx.num_keys(), 0u);
  }
}

TEST(MinimizerIndex, SharedTinyReference) {
  test::TempDir dir;
  const fs::path src = test::shared_data_dir() / "na12878-chr22-tiny" / "q.fa";
  ASSERT_TRUE(fs::exists(src)) << src;
  const fs::path fa = dir.path / "q.fa";
  fs::copy_file(src, fa);
  const Reference ref = Reference::load(fa.string());
  const MinimizerIndex idx = MinimizerIndex::open_or_build(ref, IndexParams{});
  EXPECT_EQ(idx.k(), 19);
  EXPECT_EQ(idx.w(), 10);
  // Density of (w,k) minimizers is about 2/(w+1) on non-repetitive sequence.
  EXPECT_GT(idx.num_positions(), ref.total_length() / 8);
  EXPECT_LT(idx.num_positions(), ref.total_length() / 3);
  std::vector<Minimizer> mins;
  compute_minimizers(ref.codes() + 5000, 151, 19, 10, mins);  // a "read" from the reference
  ASSERT_FALSE(mins.empty());
  for (const Minimizer& m : mins) {
    bool found = false;
    for (uint64_t v : idx.lookup(m.hash)) {
      const IndexHit hit = MinimizerIndex::decode_hit(v);
      found |= hit.pos == 5000 + m.pos && hit.reverse == m.reverse;
    }
    // Every window of an N-free read is also a window of the reference, so every read minimizer
    // is a reference minimizer at the matching position and strand.
    EXPECT_TRUE(found) << m.pos;
  }
}

}  // namespace
}  // namespace omicsd
