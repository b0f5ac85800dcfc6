// Chimeric reads (bwa mem's supplementary alignments) and multi-mapping reads (XA) on simulated reads
// of known origin from the real E. coli 536 genome: each chimera is 100 bases from one place and 50
// from another (far away, either strand); the primary record must be the 100-base part (soft-clipped),
// a supplementary record (0x800, hard-clipped) the 50-base part, with SA tags pointing at each other.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include "tests/support/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;

const char* kGenome = "/usr/share/doc/bowtie/examples/genomes/NC_008253.fna.gz";

std::string revcomp(std::string s) {
  std::reverse(s.begin(), s.end());
  for (char& c : s) c = c == 'A' ? 'T' : c == 'C' ? 'G' : c == 'G' ? 'C' : c == 'T' ? 'A' : 'N';
  return s;
}

struct Record {
  int flag = 0;
  std::string rname, cigar, sa;
  int64_t pos = 0;
  size_t seq_len = 0;
};

TEST(Supplementary, SimulatedChimerasGetSupplementaryRecordsAndSaTags) {
  if (!fs::exists(kGenome)) GTEST_SKIP() << "bowtie-examples not installed (scripts/setup.sh)";
  TempDir tmp;
  const fs::path ref = tmp.path / "ecoli.fa";
  ASSERT_EQ(run_command("gzip -dc " + std::string(kGenome) + " > " + ref.string()), 0);
  std::string genome, name;
  {
    std::ifstream in(ref);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      if (line[0] == '>') {
        name = line.substr(1, line.find(' ') - 1);
        continue;
      }
      for (char c : line) genome += char(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  ASSERT_GT(genome.size(), 4'000'000u);
  std::mt19937 rng(21);
  struct Truth {
    int64_t a_pos, b_pos;  // 1-based leftmost reference positions of the two parts
    bool b_reverse;
  };
  std::map<std::string, Truth> truth;
  std::ofstream fq(tmp.path / "reads.fq");
  const int kChimeras = 200, kPlain = 200;
  for (int r = 0; r < kChimeras + kPlain; ++r) {
    const size_t a = 1000 + rng() % (genome.size() - 3000);
    std::string read = genome.substr(a, r < kChimeras ? 100 : 150);
    Truth t{int64_t(a) + 1, 0, false};
    if (r < kChimeras) {
      size_t b = 1000 + rng() % (genome.size() - 3000);
      while ((b > a ? b - a : a - b) < 100'000) b = 1000 + rng() % (genome.size() - 3000);
      t.b_pos = int64_t(b) + 1;
      t.b_reverse = rng() % 2 == 1;
      const std::string part = genome.substr(b, 50);
      read += t.b_reverse ? revcomp(part) : part;
    }
    const std::string id = (r < kChimeras ? "chimera" : "plain") + std::to_string(r);
    truth[id] = t;
    fq << "@" << id << "\n" << read << "\n+\n" << std::string(read.size(), 'I') << "\n";
  }
  fq.close();
  const fs::path bam = tmp.path / "out.bam";
  std::string out;
  ASSERT_EQ(run_command(omicsd_binary() + " align -t 2 " + ref.string() + " " +
                            (tmp.path / "reads.fq").string() + " -o " + bam.string() + " 2>&1",
                        &out),
            0)
      << out;
  ASSERT_EQ(run_command("samtools view " + bam.string(), &out), 0);
  std::map<std::string, Record> primary, supplementary;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string qname, rname, mapq, cigar, rnext, pnext, tlen, seq;
    Record rec;
    f >> qname >> rec.flag >> rec.rname >> rec.pos >> mapq >> rec.cigar >> rnext >> pnext >> tlen >> seq;
    rec.seq_len = seq.size();
    const size_t sa = line.find("\tSA:Z:");
    if (sa != std::string::npos) rec.sa = line.substr(sa + 6, line.find('\t', sa + 6) - sa - 6);
    ASSERT_EQ(rec.flag & 0x100, 0) << line;
    ((rec.flag & 0x800) ? supplementary : primary)[qname] = rec;
  }
  int found = 0, placed_right = 0;
  for (const auto& [id, t] : truth) {
    ASSERT_TRUE(primary.count(id)) << id;
    const Record& p = primary[id];
    if (id.rfind("plain", 0) == 0) {
      EXPECT_FALSE(supplementary.count(id)) << id << " is not chimeric";
      EXPECT_TRUE(p.sa.empty()) << id;
      continue;
    }
    if (!supplementary.count(id)) continue;
    const Record& s = supplementary[id];
    ++found;
    // The 100-base part is primary and soft-clipped; the 50-base part hard-clipped, its sequence cut.
    EXPECT_LE(std::abs(p.pos - t.a_pos), 5) << id;
    EXPECT_NE(p.cigar.find('S'), std::string::npos) << id << " " << p.cigar;
    // A 50-base part can fall in a repeat (rRNA operons): it may then be placed on another copy.
    placed_right += std::abs(s.pos - t.b_pos) <= 5 && ((s.flag & 0x10) != 0) == t.b_reverse;
    EXPECT_NE(s.cigar.find('H'), std::string::npos) << id << " " << s.cigar;
    EXPECT_EQ(s.cigar.find('S'), std::string::npos) << id << " " << s.cigar;
    EXPECT_LT(s.seq_len, 150u) << id;
    EXPECT_EQ(p.seq_len, 150u) << id;
    // SA: rname,pos,strand,CIGAR,mapQ,NM; each record names the other.
    EXPECT_EQ(p.sa.rfind(name + "," + std::to_string(s.pos) + "," + ((s.flag & 0x10) ? "-" : "+") + ",", 0),
              0u)
        << id << " " << p.sa;
    EXPECT_EQ(s.sa.rfind(name + "," + std::to_string(p.pos) + ",+,", 0), 0u) << id << " " << s.sa;
    EXPECT_EQ(p.sa.back(), ';');
  }
  EXPECT_GE(found, kChimeras * 9 / 10) << "chimeras with a supplementary record";
  EXPECT_GE(placed_right, found * 95 / 100) << "supplementary records at the true place of their part";
  // bwa mem on the same reads finds about as many (this checks the count, not bwa's exact choices).
  ASSERT_EQ(
      run_command("bwa index " + ref.string() + " > /dev/null 2>&1 && bwa mem -t 2 " + ref.string() + " " +
                      (tmp.path / "reads.fq").string() + " 2>/dev/null | samtools view -c -f 0x800 -",
                  &out),
      0);
  const int bwa = std::stoi(out);
  std::cout << "chimeras with a supplementary record: omicsd " << found << " (" << placed_right
            << " at the true place), bwa mem " << bwa << " of " << kChimeras << "\n";
  EXPECT_GE(found, bwa * 9 / 10) << "omicsd " << found << ", bwa mem " << bwa;
}

// A 3 kb segment of the genome copied once more (as contig "copy", 0.5% substitutions): reads from it
// have an alternative hit, listed in XA as bwa does (rname,[+-]pos,CIGAR,NM;); unique reads have none.
TEST(AlternativeHits, ReadsOfADuplicatedSegmentListTheOtherCopyInXa) {
  if (!fs::exists(kGenome)) GTEST_SKIP() << "bowtie-examples not installed (scripts/setup.sh)";
  TempDir tmp;
  std::string out;
  ASSERT_EQ(
      run_command("gzip -dc " + std::string(kGenome) + " | grep -v '^>' | tr -d '\\n' | tr a-z A-Z", &out),
      0);
  const std::string genome = out;
  ASSERT_GT(genome.size(), 4'000'000u);
  const size_t seg = 2'000'000;
  std::string copy = genome.substr(seg, 3000);
  for (size_t i = 37; i < copy.size(); i += 200) copy[i] = copy[i] == 'A' ? 'C' : 'A';  // 0.5% substitutions
  const fs::path ref = tmp.path / "ref.fa";
  write_file(ref, ">chr\n" + genome + "\n>copy\n" + copy + "\n");
  std::ofstream fq(tmp.path / "reads.fq");
  for (int r = 0; r < 20; ++r) {
    const std::string in_segment = genome.substr(seg + 100 + size_t(r) * 130, 150);
    const std::string unique = genome.substr(100'000 + size_t(r) * 10'000, 150);
    fq << "@seg" << r << "\n" << in_segment << "\n+\n" << std::string(150, 'I') << "\n";
    fq << "@uniq" << r << "\n" << unique << "\n+\n" << std::string(150, 'I') << "\n";
  }
  fq.close();
  const fs::path bam = tmp.path / "out.bam";
  ASSERT_EQ(run_command(omicsd_binary() + " align -t 2 " + ref.string() + " " +
                            (tmp.path / "reads.fq").string() + " -o " + bam.string() + " 2>&1",
                        &out),
            0)
      << out;
  ASSERT_EQ(run_command("samtools view " + bam.string(), &out), 0);
  int with_xa = 0;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    const std::string qname = line.substr(0, line.find('\t'));
    const size_t xa = line.find("\tXA:Z:");
    if (qname.rfind("uniq", 0) == 0) {
      // Unique reads list nothing; reads of the genome's own repeats (rRNA operons, 7 copies: more than
      // bwa's 5) list nothing either.
      EXPECT_EQ(xa, std::string::npos) << line;
      continue;
    }
    if (xa == std::string::npos) continue;
    ++with_xa;
    const std::string tag = line.substr(xa + 6, line.find('\t', xa + 6) - xa - 6);
    std::istringstream f(line);
    std::string name, flag, rname;
    f >> name >> flag >> rname;
    // One entry, on the other copy, forward strand, 150 matched bases, NM of the substitutions.
    const std::string other = rname == "chr" ? "copy" : "chr";
    EXPECT_EQ(tag.rfind(other + ",+", 0), 0u) << tag;
    EXPECT_NE(tag.find(",150M,"), std::string::npos) << tag;
    EXPECT_EQ(std::count(tag.begin(), tag.end(), ';'), 1) << tag;
    const int64_t pos = std::stoll(tag.substr(other.size() + 2));
    EXPECT_EQ(pos, (other == "chr" ? int64_t(seg) : 0) + 100 + 130 * std::stoll(qname.substr(3)) + 1) << tag;
  }
  EXPECT_EQ(with_xa, 20);
}

}  // namespace
}  // namespace omicsd::test
