// Candidate discovery and allele normalisation for the caller.
#include <gtest/gtest.h>

#include "host/call/candidates.hpp"
#include "host/call/genotyper.hpp"
#include "host/common/dna.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

struct RefFixture : ::testing::Test {
  test::TempDir tmp;
  std::unique_ptr<Reference> ref;
  //                    0         1         2         3         4
  //                    0123456789012345678901234567890123456789012345
  const std::string seq = "ACGTTGCATGCAAAAAAGTCCGATCGATCGATTACGGCATCAGTCA";
  void SetUp() override {
    test::write_file(tmp.path / "r.fa", ">c\n" + seq + "\n");
    ref = std::make_unique<Reference>(Reference::load((tmp.path / "r.fa").string()));
  }
  // A read aligned at `pos` with `cigar` (BAM ops) and these bases.
  EvidenceRead read(int64_t pos, const std::string& bases, std::vector<uint32_t> cigar, uint64_t pair) {
    EvidenceRead r;
    r.pos = pos;
    r.cigar = std::move(cigar);
    for (char c : bases) r.bases.push_back(base_code(c));
    r.quals.assign(bases.size(), 30);
    r.mapq = 60;
    r.pair_key = pair;
    int64_t rp = pos;
    for (uint32_t c : r.cigar)
      if ((c & 0xf) == 0 || (c & 0xf) == 2) rp += c >> 4;
    r.end = rp;
    return r;
  }
  static uint32_t op(uint32_t len, uint32_t code) { return len << 4 | code; }
};

TEST_F(RefFixture, NormalizeLeftAlignsIndelsInRepeats) {
  // Deleting one A of the A run (positions 11..16) anywhere normalises to the base before the run.
  const Allele a = normalize_allele(*ref, Allele{0, 15, "AA", "A"});
  EXPECT_EQ(a.pos, 10);
  EXPECT_EQ(a.ref, "CA");
  EXPECT_EQ(a.alt, "C");
  // Tandem repeat CGAT CGAT CGAT (positions 20..31): a CGAT inserted after the last copy moves to
  // the base before the first.
  const Allele b = normalize_allele(*ref, Allele{0, 31, "T", "TCGAT"});
  EXPECT_EQ(b.pos, 19);
  EXPECT_EQ(b.ref, "C");
  EXPECT_EQ(b.alt, "CCGAT");
  // Substitutions are trimmed to the changed bases.
  const Allele c = normalize_allele(*ref, Allele{0, 3, "TTG", "TAG"});
  EXPECT_EQ(c.pos, 4);
  EXPECT_EQ(c.ref, "T");
  EXPECT_EQ(c.alt, "A");
}

TEST_F(RefFixture, ConflictsFollowChangedBases) {
  const Allele snv{0, 5, "G", "T"}, del{0, 4, "TGC", "T"}, ins{0, 5, "G", "GA"}, snv_anchor{0, 4, "T", "A"};
  EXPECT_TRUE(alleles_conflict(snv, del));          // the deletion removes the SNV's base
  EXPECT_FALSE(alleles_conflict(snv_anchor, del));  // a change of the deletion's padding base is compatible
  EXPECT_FALSE(alleles_conflict(snv, ins));         // insertion after the SNV's base
  EXPECT_TRUE(alleles_conflict(ins, Allele{0, 5, "G", "GC"}));
}

TEST_F(RefFixture, CandidatesNeedSupportAndOverlappingMatesCountOnce) {
  std::string alt = seq.substr(0, 30);
  alt[8] = 'A';  // T>A at 8
  std::vector<EvidenceRead> reads;
  // One pair whose mates overlap at position 8: one molecule, so one supporting read.
  reads.push_back(read(0, alt, {op(30, 0)}, 1));
  reads.push_back(read(2, alt.substr(2), {op(28, 0)}, 1));
  CallParams p;
  p.min_alt_reads = 2;
  EXPECT_TRUE(find_candidates(*ref, 0, 0, int64_t(seq.size()), reads, p).empty());
  // A second, independent read makes it a candidate with support 2 of depth 2 (reads sorted by start).
  reads.insert(reads.begin() + 1, read(1, alt.substr(1), {op(29, 0)}, 2));
  const auto c = find_candidates(*ref, 0, 0, int64_t(seq.size()), reads, p);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].allele, (Allele{0, 8, "T", "A"}));
  EXPECT_EQ(c[0].support, 2);
  EXPECT_EQ(c[0].depth, 2);
}

TEST_F(RefFixture, IndelCandidatesAreNormalised) {
  // Reads deleting the last A of the run: reported at the base before the run.
  std::vector<EvidenceRead> reads;
  const std::string del = seq.substr(0, 16) + seq.substr(17, 13);  // drop position 16
  for (uint64_t i = 0; i < 3; ++i) reads.push_back(read(0, del, {op(16, 0), op(1, 2), op(13, 0)}, 10 + i));
  CallParams p;
  const auto c = find_candidates(*ref, 0, 0, int64_t(seq.size()), reads, p);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].allele, (Allele{0, 10, "CA", "C"}));
  EXPECT_EQ(c[0].support, 3);
}

TEST_F(RefFixture, WindowsGroupNearbyCandidates) {
  CallParams p;
  p.cluster_distance = 5;
  p.window_pad = 3;
  std::vector<Candidate> cs = {
      {Allele{0, 2, "G", "A"}, 3, 3}, {Allele{0, 6, "C", "T"}, 3, 3}, {Allele{0, 30, "T", "G"}, 3, 3}};
  const auto w = make_windows(*ref, cs, p);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].candidates.size(), 2u);
  EXPECT_EQ(w[0].begin, 0);
  EXPECT_EQ(w[0].end, 10);
  EXPECT_EQ(w[1].begin, 27);
  EXPECT_EQ(w[1].end, 34);
}

}  // namespace
}  // namespace omicsd
