// Mapper tests on a synthetic genome with known read origins: placement, CIGAR, MAPQ separating
// unique from repeated placements, pairing flags, insert size and mate rescue.
#include <gtest/gtest.h>
#include <htslib/sam.h>

#include <algorithm>
#include <random>

#include "host/align/mapper.hpp"
#include "host/common/dna.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

std::string random_dna(std::mt19937& rng, size_t n) {
  static const char* b = "ACGT";
  std::string s(n, 'A');
  for (auto& c : s) c = b[rng() % 4];
  return s;
}

struct Genome {
  test::TempDir dir;
  std::string chr1, chr2;
  std::unique_ptr<Reference> ref;
  std::unique_ptr<MinimizerIndex> index;
  int64_t repeat_a = 0, repeat_b = 0;  // chr1 positions of two identical 2 kb copies
  static constexpr int64_t kRepeatLen = 2000;

  Genome() {
    std::mt19937 rng(7);
    chr1 = random_dna(rng, 60000);
    chr2 = random_dna(rng, 40000);
    repeat_a = 10000;
    repeat_b = 40000;
    chr1.replace(repeat_b, kRepeatLen, chr1.substr(repeat_a, kRepeatLen));
    test::write_file(dir.path / "g.fa", ">chr1 test\n" + chr1 + "\n>chr2\n" + chr2 + "\n");
    ref = std::make_unique<Reference>(Reference::load((dir.path / "g.fa").string()));
    index = std::make_unique<MinimizerIndex>(MinimizerIndex::open_or_build(*ref, IndexParams{}));
  }
};

Genome& genome() {
  static Genome g;
  return g;
}

struct Mapped {
  int32_t tid;
  int64_t pos;
  int64_t unclipped;  // pos less a leading soft clip: where the read's first base would sit
  bool reverse, unmapped, proper;
  int mapq;
  std::string cigar;
  int64_t tlen;
  int32_t nm;
};

Mapped inspect(const bam1_t* b) {
  Mapped m;
  m.tid = b->core.tid;
  m.pos = b->core.pos;
  m.reverse = b->core.flag & BAM_FREVERSE;
  m.unmapped = b->core.flag & BAM_FUNMAP;
  m.proper = b->core.flag & BAM_FPROPER_PAIR;
  m.mapq = b->core.qual;
  m.tlen = b->core.isize;
  for (uint32_t i = 0; i < b->core.n_cigar; ++i)
    m.cigar += std::to_string(bam_cigar_oplen(bam_get_cigar(b)[i])) + bam_cigar_opchr(bam_get_cigar(b)[i]);
  m.unclipped = m.pos;
  if (b->core.n_cigar && bam_cigar_op(bam_get_cigar(b)[0]) == BAM_CSOFT_CLIP)
    m.unclipped -= bam_cigar_oplen(bam_get_cigar(b)[0]);
  const uint8_t* nm = bam_aux_get(b, "NM");
  m.nm = nm ? int32_t(bam_aux2i(nm)) : -1;
  return m;
}

// Adds a read with constant qualities (ReadBatch keeps one quality per base).
void add_read(ReadBatch& batch, const std::string& name, const std::string& seq) {
  batch.add(name, seq, std::string(seq.size(), 'I'));
}

std::string mutate(std::string s, std::mt19937& rng, int subs) {
  std::vector<size_t> done;
  while (int(done.size()) < subs) {
    const size_t p = rng() % s.size();
    if (std::find(done.begin(), done.end(), p) != done.end()) continue;
    done.push_back(p);
    s[p] = "ACGT"[(base_code(s[p]) + 1 + rng() % 3) % 4];
  }
  return s;
}

TEST(Mapper, SingleEndPlacesUniqueReadsWithHighMapq) {
  Genome& g = genome();
  auto backend = make_cpu_align_backend(2);
  MapperOptions opt;
  opt.threads = 2;
  Mapper mapper(*g.ref, *g.index, *backend, opt);
  std::mt19937 rng(11);
  ReadBatch batch;
  std::vector<std::tuple<int, int64_t, bool>> truth;
  for (int i = 0; i < 400; ++i) {
    const bool on2 = i % 3 == 0;
    const std::string& chr = on2 ? g.chr2 : g.chr1;
    int64_t pos;
    auto in_repeat = [&](int64_t p, int64_t start) {
      return p + 150 > start - 10 && p < start + g.kRepeatLen + 10;
    };
    do pos = int64_t(rng() % (chr.size() - 150));
    while (!on2 && (in_repeat(pos, g.repeat_a) || in_repeat(pos, g.repeat_b)));
    std::string seq = mutate(chr.substr(pos, 150), rng, 3);
    const bool rev = rng() % 2;
    if (rev) seq = reverse_complement(seq);
    batch.add("r" + std::to_string(i), seq, std::string(150, 'I'));
    truth.emplace_back(on2 ? 1 : 0, pos, rev);
  }
  const auto& recs = mapper.map_batch(batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    const Mapped m = inspect(recs[i].get());
    ASSERT_FALSE(m.unmapped) << i;
    EXPECT_EQ(m.tid, std::get<0>(truth[i])) << i;
    EXPECT_NEAR(double(m.pos), double(std::get<1>(truth[i])), 0.0) << i << " " << m.cigar;
    EXPECT_EQ(m.reverse, std::get<2>(truth[i])) << i;
    EXPECT_GE(m.mapq, 30) << i;
    EXPECT_EQ(m.cigar, "150M") << i;
    EXPECT_EQ(m.nm, 3) << i;
  }
}

TEST(Mapper, ReadsInsideAnExactRepeatGetMapqZero) {
  Genome& g = genome();
  auto backend = make_cpu_align_backend(1);
  Mapper mapper(*g.ref, *g.index, *backend, MapperOptions{});
  ReadBatch batch;
  for (int i = 0; i < 20; ++i)
    add_read(batch, "rep" + std::to_string(i), g.chr1.substr(g.repeat_a + 100 + i * 80, 150));
  const auto& recs = mapper.map_batch(batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    const Mapped m = inspect(recs[i].get());
    ASSERT_FALSE(m.unmapped);
    EXPECT_TRUE(m.pos == g.repeat_a + 100 + int64_t(i) * 80 || m.pos == g.repeat_b + 100 + int64_t(i) * 80);
    EXPECT_EQ(m.mapq, 0);
  }
}

TEST(Mapper, IndelsAreAlignedWithGaps) {
  Genome& g = genome();
  auto backend = make_cpu_align_backend(1);
  Mapper mapper(*g.ref, *g.index, *backend, MapperOptions{});
  ReadBatch batch;
  const std::string base = g.chr2.substr(5000, 160);
  add_read(batch, "del", base.substr(0, 70) + base.substr(74, 80));            // 4 bp deletion
  add_read(batch, "ins", base.substr(0, 70) + "GATTA" + base.substr(70, 75));  // 5 bp insertion
  const auto& recs = mapper.map_batch(batch);
  const Mapped d = inspect(recs[0].get()), in = inspect(recs[1].get());
  EXPECT_EQ(d.pos, 5000);
  EXPECT_EQ(d.nm, 4);
  EXPECT_NE(d.cigar.find("4D"), std::string::npos) << d.cigar;
  EXPECT_EQ(in.pos, 5000);
  EXPECT_NE(in.cigar.find("5I"), std::string::npos) << in.cigar;
}

TEST(Mapper, PairsAreProperWithInsertSizeAndMateRescue) {
  Genome& g = genome();
  auto backend = make_cpu_align_backend(2);
  MapperOptions opt;
  opt.threads = 2;
  Mapper mapper(*g.ref, *g.index, *backend, opt);
  std::mt19937 rng(5);
  std::normal_distribution<double> insert(400, 30);
  ReadBatch batch;
  batch.paired = true;
  std::vector<int64_t> starts;
  const int kPairs = 300;
  for (int p = 0; p < kPairs; ++p) {
    const int64_t ins = int64_t(insert(rng));
    const int64_t pos = 20000 + int64_t(rng() % 15000);
    const std::string frag = g.chr1.substr(pos, ins);
    std::string r1 = mutate(frag.substr(0, 150), rng, 2);
    std::string r2 = reverse_complement(frag.substr(ins - 150, 150));
    // Every 10th pair: read 2 carries so many mismatches that no minimizer seeds it; only mate
    // rescue (a DP in the window the insert size predicts) can place it.
    if (p % 10 == 0)
      for (size_t i = 5; i < r2.size(); i += 9) r2[i] = r2[i] == 'A' ? 'C' : 'A';
    add_read(batch, "p" + std::to_string(p), r1);
    add_read(batch, "p" + std::to_string(p), r2);
    starts.push_back(pos);
  }
  const auto& recs = mapper.map_batch(batch);
  EXPECT_NEAR(mapper.insert_model().mean, 400, 15);
  int proper = 0, rescued = 0;
  for (int p = 0; p < kPairs; ++p) {
    const Mapped a = inspect(recs[2 * p].get()), b = inspect(recs[2 * p + 1].get());
    ASSERT_FALSE(a.unmapped);
    EXPECT_EQ(a.unclipped, starts[p]) << a.cigar;
    EXPECT_FALSE(a.reverse);
    EXPECT_EQ(recs[2 * p]->core.flag & (BAM_FPAIRED | BAM_FREAD1), BAM_FPAIRED | BAM_FREAD1);
    EXPECT_EQ(recs[2 * p + 1]->core.flag & (BAM_FPAIRED | BAM_FREAD2), BAM_FPAIRED | BAM_FREAD2);
    if (!b.unmapped) {
      EXPECT_TRUE(b.reverse);
      EXPECT_EQ(a.tlen, -b.tlen);
      EXPECT_EQ(recs[2 * p]->core.mpos, b.pos);
      EXPECT_EQ(recs[2 * p + 1]->core.mpos, a.pos);
      if (p % 10 == 0) ++rescued;
    }
    proper += a.proper && b.proper;
  }
  EXPECT_GE(proper, kPairs * 95 / 100);
  EXPECT_GE(rescued, kPairs / 10 * 8 / 10) << "mate rescue placed too few unseedable mates";
}

TEST(Mapper, UnalignableReadsAreUnmappedAndKeepTheirSequence) {
  Genome& g = genome();
  auto backend = make_cpu_align_backend(1);
  Mapper mapper(*g.ref, *g.index, *backend, MapperOptions{});
  std::mt19937 rng(99);
  ReadBatch batch;
  const std::string junk = random_dna(rng, 150);
  batch.add("junk", junk, std::string(150, '5'));
  batch.add("short", "ACGTAC", "IIIIII");
  const auto& recs = mapper.map_batch(batch);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(recs[i]->core.flag & BAM_FUNMAP);
    EXPECT_EQ(recs[i]->core.tid, -1);
  }
  std::string seq(150, 'N');
  for (int i = 0; i < 150; ++i) seq[i] = seq_nt16_str[bam_seqi(bam_get_seq(recs[0]), i)];
  EXPECT_EQ(seq, junk);
  EXPECT_EQ(bam_get_qual(recs[0])[0], '5' - 33);
}

}  // namespace
}  // namespace omicsd
