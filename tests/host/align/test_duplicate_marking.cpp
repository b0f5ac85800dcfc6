// Duplicate marking (`omicsd align --mark-duplicates`, on by default in `run`) against samtools markdup
// on the same alignments (samtools sort -n | fixmate -m | sort | markdup): the same reads flagged 0x400
// and the same optical duplicates, on real HG001 reads and on simulated pairs with planted duplicates.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "tests/support/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;

// "name flag" of every record flagged duplicate (0x400), and of those samtools calls optical (dt:Z:SQ).
struct Duplicates {
  std::set<std::string> all, optical;
};
Duplicates duplicates_of(const fs::path& bam) {
  std::string out;
  EXPECT_EQ(run_command("samtools view -f 0x400 " + bam.string(), &out), 0) << out;
  Duplicates d;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string name, flag;
    f >> name >> flag;
    d.all.insert(name + " " + flag);
    if (line.find("\tdt:Z:SQ") != std::string::npos) d.optical.insert(name + " " + flag);
  }
  return d;
}

// The records in one set and not the other, for a readable failure.
std::string difference(const std::set<std::string>& ours, const std::set<std::string>& theirs) {
  std::string out;
  for (const auto& r : ours)
    if (!theirs.count(r)) out += "  only omicsd: " + r + "\n";
  for (const auto& r : theirs)
    if (!ours.count(r)) out += "  only samtools: " + r + "\n";
  return out;
}

struct DuplicateFixture : ::testing::Test {
  TempDir tmp;
  int omicsd(const std::string& args, std::string* out = nullptr) {
    return run_command(omicsd_binary() + " " + args + " 2>&1", out);
  }
  // samtools' duplicates of an unmarked alignment, with optical classification at `distance`.
  Duplicates samtools_markdup(const fs::path& plain, int distance) {
    const fs::path fm = tmp.path / "fixmate.bam", md = tmp.path / "samtools_md.bam";
    std::string log;
    EXPECT_EQ(
        run_command("samtools sort -n -o - " + plain.string() + " 2>/dev/null | samtools fixmate -m - - | " +
                        "samtools sort -o " + fm.string() + " - 2>/dev/null && samtools markdup -d " +
                        std::to_string(distance) + " " + fm.string() + " " + md.string() + " 2>&1",
                    &log),
        0)
        << log;
    return duplicates_of(md);
  }
  void expect_same_as_samtools(const fs::path& ref, const std::string& reads, size_t* n_dups = nullptr) {
    const fs::path plain = tmp.path / "plain.bam", marked = tmp.path / "marked.bam";
    std::string log;
    ASSERT_EQ(omicsd("align -t 2 " + ref.string() + " " + reads + " -o " + plain.string(), &log), 0) << log;
    ASSERT_EQ(omicsd("align -t 2 --mark-duplicates --optical-distance 100 " + ref.string() + " " + reads +
                         " -o " + marked.string(),
                     &log),
              0)
        << log;
    const Duplicates ours = duplicates_of(marked), theirs = samtools_markdup(plain, 100);
    EXPECT_FALSE(ours.all.empty());
    EXPECT_TRUE(ours.all == theirs.all) << difference(ours.all, theirs.all);
    EXPECT_TRUE(ours.optical == theirs.optical) << difference(ours.optical, theirs.optical);
    // Without --mark-duplicates nothing is flagged; the rest of each record is unchanged by marking
    // except the flag, ms:i and dt:Z.
    EXPECT_TRUE(duplicates_of(plain).all.empty());
    std::string a, b;
    run_command("samtools view " + plain.string() + " | cut -f1,3-11 | md5sum", &a);
    run_command("samtools view " + marked.string() + " | cut -f1,3-11 | md5sum", &b);
    EXPECT_EQ(a, b);
    if (n_dups) *n_dups = ours.all.size();
  }
};

TEST_F(DuplicateFixture, RealHg001ReadsMatchSamtoolsMarkdup) {
  const fs::path data = shared_data_dir() / "hg001-chr20-100kb";
  if (!fs::exists(data / "ucsc.hg19.chr20.unittest.fasta.gz")) GTEST_SKIP() << "shared data not found";
  const fs::path ref = tmp.path / "chr20.fa";
  ASSERT_EQ(
      run_command("gzip -dc " + (data / "ucsc.hg19.chr20.unittest.fasta.gz").string() + " > " + ref.string()),
      0);
  std::string log;
  ASSERT_EQ(
      run_command("cd " + tmp.path.string() + " && samtools collate -u -O " +
                      (data / "NA12878_S1.chr20.10_10p1mb.bam").string() +
                      " tmpc | samtools fastq -n -1 r1.fq -2 r2.fq -0 /dev/null -s /dev/null - 2>/dev/null",
                  &log),
      0)
      << log;
  size_t n = 0;
  const std::string reads = (tmp.path / "r1.fq").string() + " " + (tmp.path / "r2.fq").string();
  expect_same_as_samtools(ref, reads, &n);
  EXPECT_GT(n, 100u);  // 240 on this data (196 paired + 44 single reads)
  // The pass runs on the final merge when the sort spills: the same records, byte for byte.
  const fs::path spilled = tmp.path / "spilled.bam";
  std::string a, b;
  ASSERT_EQ(omicsd("align -t 2 --mark-duplicates --optical-distance 100 --sort-memory 1M " + ref.string() +
                       " " + reads + " -o " + spilled.string(),
                   &log),
            0)
      << log;
  run_command("samtools view " + spilled.string() + " | md5sum", &a);
  run_command("samtools view " + (tmp.path / "marked.bam").string() + " | md5sum", &b);
  EXPECT_EQ(a, b);
}

// Simulated pairs from the real chr22 stretch: fragments at distinct positions, each sequenced 1-4
// times with different base qualities (so the best copy must be found), some copies next to each other
// on one tile (optical), some with equal qualities (ties broken by name), and pairs whose mate is random
// sequence that does not map (single reads that duplicate one read of a pair or each other).
TEST_F(DuplicateFixture, PlantedDuplicatesMatchSamtoolsAndTheirCount) {
  const fs::path tiny = shared_data_dir() / "na12878-chr22-tiny" / "q.fa";
  if (!fs::exists(tiny)) GTEST_SKIP() << "shared data not found";
  const fs::path ref = tmp.path / "q.fa";
  fs::copy_file(tiny, ref);
  std::string seq;
  {
    std::ifstream in(ref);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty() && line[0] != '>') seq += line;
  }
  auto revcomp = [](std::string s) {
    std::reverse(s.begin(), s.end());
    for (char& c : s) c = c == 'A' ? 'T' : c == 'C' ? 'G' : c == 'G' ? 'C' : c == 'T' ? 'A' : 'N';
    return s;
  };
  std::mt19937 rng(20261205);  // the engine is fully specified; only raw draws are used
  const int kLen = 100, kFragment = 300, kFragments = 30;
  std::ofstream r1(tmp.path / "r1.fq"), r2(tmp.path / "r2.fq");
  size_t planted_pair_dups = 0, read_id = 0;
  for (int f = 0; f < kFragments; ++f) {
    const size_t start = 200 + size_t(f) * 390;  // distinct, non-overlapping fragment starts
    const std::string a = seq.substr(start, kLen);
    const std::string b = revcomp(seq.substr(start + kFragment - kLen, kLen));
    const int copies = 1 + int(rng() % 4);
    planted_pair_dups += 2 * size_t(copies - 1);
    const bool unmappable_mate = f % 7 == 3;
    for (int c = 0; c < copies; ++c) {
      // Copy c has c * 3 low-quality bases (except odd fragments: all copies equal, a tie on score).
      std::string q(kLen, 'I');
      if (f % 2 == 0)
        for (int k = 0; k < c * 3; ++k) q[size_t(rng() % kLen)] = '#';
      const bool optical = c > 0 && f % 3 == 0;
      const unsigned x = optical ? 10000 + unsigned(c) * 20 : 1000 + unsigned(rng() % 20000);
      const unsigned y = optical ? 20000 + unsigned(c) * 20 : 1000 + unsigned(rng() % 20000);
      const std::string name = "SIM:1:FC1:1:" + std::to_string(1101 + f % 2) + ":" + std::to_string(x) + ":" +
                               std::to_string(y) + ":" + std::to_string(read_id++);
      std::string mate = b;
      if (unmappable_mate)
        for (char& ch : mate) ch = "ACGT"[rng() % 4];
      r1 << "@" << name << "\n" << a << "\n+\n" << q << "\n";
      r2 << "@" << name << "\n" << mate << "\n+\n" << q << "\n";
    }
  }
  r1.close();
  r2.close();
  size_t n = 0;
  expect_same_as_samtools(ref, (tmp.path / "r1.fq").string() + " " + (tmp.path / "r2.fq").string(), &n);
  // Every planted copy is found: both reads of each extra copy of a mapped pair, one read of each
  // extra copy of a pair whose mate is unmappable (fragments f % 7 == 3 contribute only read 1).
  size_t expected = 0;
  {
    std::mt19937 again(20261205);
    for (int f = 0; f < kFragments; ++f) {
      const int copies = 1 + int(again() % 4);
      for (int c = 0; c < copies; ++c) {
        if (f % 2 == 0)
          for (int k = 0; k < c * 3; ++k) again();
        const bool optical = c > 0 && f % 3 == 0;
        if (!optical) again(), again();
        if (f % 7 == 3)
          for (int k = 0; k < kLen; ++k) again();
      }
      expected += size_t(copies - 1) * (f % 7 == 3 ? 1 : 2);
    }
  }
  EXPECT_LE(expected, planted_pair_dups);
  EXPECT_EQ(n, expected);
}

TEST_F(DuplicateFixture, RunMarksByDefaultAndNoMarkDuplicatesTurnsItOff) {
  const fs::path tiny = shared_data_dir() / "na12878-chr22-tiny";
  if (!fs::exists(tiny / "q.fa")) GTEST_SKIP() << "shared data not found";
  const fs::path ref = tmp.path / "q.fa";
  fs::copy_file(tiny / "q.fa", ref);
  const std::string bam = (tiny / "NA12878.chr22.tiny.bam").string();
  std::string log;
  ASSERT_EQ(omicsd("run -t 2 " + ref.string() + " " + bam + " -o " + (tmp.path / "on").string(), &log), 0)
      << log;
  ASSERT_EQ(omicsd("run -t 2 --no-mark-duplicates " + ref.string() + " " + bam + " -o " +
                       (tmp.path / "off").string(),
                   &log),
            0)
      << log;
  const auto find_bam = [](const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".bam") return e.path();
    return fs::path();
  };
  EXPECT_FALSE(duplicates_of(find_bam(tmp.path / "on")).all.empty());
  EXPECT_TRUE(duplicates_of(find_bam(tmp.path / "off")).all.empty());
}

}  // namespace
}  // namespace omicsd::test
