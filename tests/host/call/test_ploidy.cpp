// Genotypes of any ploidy (host/call/ploidy_genotypes.hpp) against brute-force references, haploid and
// triploid PL/GQ/QUAL checked by hand, and the ploidy map: --sex rules and ploidy BED parsing.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <random>

#include "host/call/candidates.hpp"
#include "host/call/evidence_reads.hpp"
#include "host/call/genotype_backend.hpp"
#include "host/call/genotype_likelihoods.hpp"
#include "host/call/genotyper.hpp"
#include "host/call/ploidy_genotypes.hpp"
#include "host/call/ploidy_map.hpp"
#include "host/common/error.hpp"
#include "host/io/reference.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// The VCF 4.3 (section 1.6.2) pseudo-code, literally: for a_P in 0..N-1, for a_{P-1} in 0..a_P, ...,
// for a_1 in 0..a_2: print a_1..a_P.
std::vector<std::vector<int>> vcf_spec_order(int n_alleles, int ploidy) {
  std::vector<std::vector<int>> out;
  std::vector<int> g(size_t(ploidy), 0);
  std::function<void(int, int)> loop = [&](int i, int upper) {  // chooses a_i in 0..upper
    for (int a = 0; a <= upper; ++a) {
      g[size_t(i - 1)] = a;
      if (i == 1)
        out.push_back(g);
      else
        loop(i - 1, a);
    }
  };
  loop(ploidy, n_alleles - 1);
  return out;
}

size_t binomial(size_t n, size_t k) {
  double r = 1;
  for (size_t i = 1; i <= k; ++i) r = r * double(n - k + i) / double(i);
  return size_t(std::llround(r));
}

TEST(PloidyGenotypes, OrderAndCountMatchTheVcfSpecEnumeration) {
  for (int p = 1; p <= 4; ++p)
    for (int n = 2; n <= 4; ++n) {
      SCOPED_TRACE("ploidy " + std::to_string(p) + ", alleles " + std::to_string(n));
      const auto spec = vcf_spec_order(n, p);
      EXPECT_EQ(spec.size(), binomial(size_t(n + p - 1), size_t(p)));
      EXPECT_EQ(genotype_count(size_t(n), p), spec.size());
      EXPECT_EQ(enumerate_genotypes(size_t(n), p), spec);
      for (size_t i = 0; i < spec.size(); ++i) {
        EXPECT_EQ(genotype_index(spec[i]), i);
        std::vector<int> reversed(spec[i].rbegin(), spec[i].rend());
        EXPECT_EQ(genotype_index(reversed), i) << "any allele order";
        EXPECT_EQ(genotype_alleles(i, p), spec[i]);
      }
    }
  // The diploid functions use the same order.
  for (size_t i = 0; i < genotype_count(5u); ++i) {
    const auto [j, k] = genotype_alleles(i);
    EXPECT_EQ(genotype_alleles(i, 2), (std::vector<int>{int(j), int(k)}));
  }
  // Known orders from the VCF specification.
  EXPECT_EQ(enumerate_genotypes(2, 3),
            (std::vector<std::vector<int>>{{0, 0, 0}, {0, 0, 1}, {0, 1, 1}, {1, 1, 1}}));
  EXPECT_EQ(enumerate_genotypes(3, 1), (std::vector<std::vector<int>>{{0}, {1}, {2}}));
}

// Brute force: prod_r (1/P) sum_{i} 10^L[r][g_i], in linear space (values are kept above 1e-6).
double brute_log10_likelihood(const std::vector<double>& L, size_t n_reads, size_t n_alleles,
                              const std::vector<int>& g, double cap) {
  double product = 1.0;
  for (size_t r = 0; r < n_reads; ++r) {
    double best = kNegInf;
    for (size_t a = 0; a < n_alleles; ++a) best = std::max(best, L[r * n_alleles + a]);
    if (best == kNegInf) continue;
    double s = 0;
    for (int a : g) s += std::pow(10.0, std::max(L[r * n_alleles + size_t(a)], best - cap));
    product *= s / double(g.size());
  }
  return std::log10(product);
}

TEST(PloidyGenotypes, LikelihoodEqualsTheBruteForceProductOfSums) {
  std::mt19937 rng(15);
  std::uniform_real_distribution<double> value(-2.5, 0.0);
  for (int trial = 0; trial < 300; ++trial) {
    const int p = 1 + trial % 4;
    const size_t n = 1 + size_t(trial / 4) % 4, reads = 1 + size_t(trial) % 5;
    std::vector<double> L(reads * n);
    for (double& v : L) v = rng() % 7 == 0 ? kNegInf : value(rng);
    const bool capped = trial % 2 == 0;
    GenotypeLikelihoodParams params;
    params.read_cap_log10 = capped ? 1.0 : std::numeric_limits<double>::infinity();
    const std::vector<double> gl = genotype_log10_likelihoods(L.data(), reads, n, p, params);
    const auto genotypes = enumerate_genotypes(n, p);
    ASSERT_EQ(gl.size(), genotypes.size());
    for (size_t g = 0; g < genotypes.size(); ++g) {
      const double want = brute_log10_likelihood(L, reads, n, genotypes[g], capped ? 1.0 : 1e300);
      if (std::isinf(want))
        EXPECT_EQ(gl[g], want) << "trial " << trial << " genotype " << g;
      else
        EXPECT_NEAR(gl[g], want, 1e-9) << "trial " << trial << " genotype " << g;
    }
    if (p == 2) {  // the diploid path is the diploid function itself, bit for bit
      EXPECT_EQ(gl, diploid_genotype_log10_likelihoods(L.data(), reads, n, params));
    }
  }
}

TEST(PloidyGenotypes, HaploidPlGqQualByHand) {
  // Two reads fit the alt allele (log10 -0.1 vs -3), one the reference.
  const std::vector<double> L = {-3, -0.1, -3, -0.1, -0.1, -3};
  const std::vector<double> gl = genotype_log10_likelihoods(L.data(), 3, 2, 1);
  ASSERT_EQ(gl.size(), 2u);
  EXPECT_NEAR(gl[0], -6.1, 1e-12);  // haploid: GL(a) = sum_r L[r][a]
  EXPECT_NEAR(gl[1], -3.2, 1e-12);
  EXPECT_EQ(best_genotype(gl), 1u);
  EXPECT_EQ(genotype_alleles(1, 1), std::vector<int>{1});
  EXPECT_EQ(pl_from_log10(gl), (std::vector<int>{29, 0}));
  EXPECT_EQ(gq_from_pl(pl_from_log10(gl)), 29);
  // Priors 0.999 / 0.001: QUAL = 10 log10(1 + 10^((-3.2 - 3) - (-6.1 + log10 0.999))) = 2.5408.
  EXPECT_NEAR(qual_not_hom_ref(gl, 2, 1), 2.5408, 1e-3);
}

TEST(PloidyGenotypes, TriploidPlByHand) {
  // One read: ref 10^-1, alt 10^-2. 0/0/0: 0.1; 0/0/1: (0.2 + 0.01)/3 = 0.07; 0/1/1: 0.04; 1/1/1: 0.01.
  const std::vector<double> L = {-1, -2};
  const std::vector<double> gl = genotype_log10_likelihoods(L.data(), 1, 2, 3);
  ASSERT_EQ(gl.size(), 4u);
  EXPECT_NEAR(gl[1], std::log10(0.07), 1e-12);
  EXPECT_NEAR(gl[2], std::log10(0.04), 1e-12);
  EXPECT_EQ(pl_from_log10(gl), (std::vector<int>{0, 2, 4, 10}));
  EXPECT_EQ(gq_from_pl(pl_from_log10(gl)), 2);
}

TEST(PloidyGenotypes, PriorsSumToOneAndDiploidIsUnchanged) {
  for (int p = 1; p <= 6; ++p)
    for (size_t n = 1; n <= 4; ++n) {
      const std::vector<double> lp = genotype_log10_priors(n, p);
      ASSERT_EQ(lp.size(), genotype_count(n, p));
      EXPECT_NEAR(log10_sum_exp(lp), 0.0, 1e-12) << "ploidy " << p << " alleles " << n;
      if (p == 2) {
        EXPECT_EQ(lp, genotype_log10_priors(n));
      }
    }
  const std::vector<double> haploid = genotype_log10_priors(2, 1);
  EXPECT_NEAR(haploid[0], std::log10(0.999), 1e-15);
  EXPECT_NEAR(haploid[1], -3.0, 1e-15);
  // Triploid biallelic: 1 - theta (1 + 1/2 + 1/3), theta, theta / 2, theta / 3.
  const std::vector<double> triploid = genotype_log10_priors(2, 3);
  EXPECT_NEAR(triploid[0], std::log10(1 - 0.001 * 11.0 / 6.0), 1e-15);
  EXPECT_NEAR(triploid[3], std::log10(0.001 / 3), 1e-15);
  GenotypePriorParams too_high;
  too_high.theta = 0.6;  // 0.6 * 1.5 < 1 is fine for a diploid, 0.6 * 1.83 is not for a triploid
  EXPECT_NO_THROW(genotype_log10_priors(2, 2, too_high));
  EXPECT_THROW(genotype_log10_priors(2, 3, too_high), InputError);
  EXPECT_THROW(genotype_log10_likelihoods(nullptr, 0, 2, 0), InputError);
  EXPECT_THROW(genotype_log10_likelihoods(nullptr, 0, 2, kMaxPloidy + 1), InputError);
}

std::vector<Contig> human_like(uint32_t x_length) {
  return {{"chr1", 0, 1000, ""}, {"chrX", 0, x_length, ""}, {"chrY", 0, 57227415, ""}};
}

TEST(PloidyMap, MaleGrch37And38ParsStayDiploid) {
  for (const auto& [x_length, par1_end, par2_begin] :
       {std::tuple{155270560u, 2699520, 154931043}, std::tuple{156040895u, 2781479, 155701382}}) {
    const auto contigs = human_like(x_length);
    PloidyMap map(contigs, 2);
    for (const PloidyRegion& r : sex_ploidy_regions(contigs, Sex::kMale)) map.paint(r);
    const auto x = map.split({1, 0, int64_t(x_length)});
    ASSERT_EQ(x.size(), 5u) << x_length;
    EXPECT_EQ(x[0].ploidy, 1);  // before PAR1
    EXPECT_EQ(x[1].ploidy, 2);  // PAR1
    EXPECT_EQ(x[1].end, par1_end);
    EXPECT_EQ(x[2].ploidy, 1);
    EXPECT_EQ(x[3].begin, par2_begin);
    EXPECT_EQ(x[3].ploidy, 2);  // PAR2
    EXPECT_EQ(x[4].ploidy, 1);
    const auto y = map.split({2, 0, 57227415});
    ASSERT_EQ(y.size(), 1u);
    EXPECT_EQ(y[0].ploidy, 1);
    EXPECT_EQ(map.split({0, 0, 1000}).front().ploidy, 2);  // autosomes untouched
  }
}

TEST(PloidyMap, FemaleSkipsYAndUnknownXIsAllHaploidForMales) {
  const auto contigs = human_like(155270560u);
  PloidyMap female(contigs, 2);
  for (const PloidyRegion& r : sex_ploidy_regions(contigs, Sex::kFemale)) female.paint(r);
  EXPECT_EQ(female.split({2, 0, 57227415}).front().ploidy, 0);
  EXPECT_EQ(female.split({1, 0, 155270560}).size(), 1u);
  EXPECT_EQ(female.split({1, 0, 155270560}).front().ploidy, 2);

  const std::vector<Contig> other = {{"X", 0, 5000, ""}};
  PloidyMap male(other, 2);
  for (const PloidyRegion& r : sex_ploidy_regions(other, Sex::kMale)) male.paint(r);
  const auto x = male.split({0, 0, 5000});
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(x[0].ploidy, 1);
  EXPECT_EQ(parse_sex("male"), Sex::kMale);
  EXPECT_THROW(parse_sex("M"), InputError);
}

TEST(PloidyMap, PaintOverridesAndSplitCutsWhereThePloidyChanges) {
  const std::vector<Contig> contigs = {{"a", 0, 100, ""}};
  PloidyMap map(contigs, 2);
  map.paint({0, 10, 20, 1});
  map.paint({0, 15, 30, 0});
  map.paint({0, 30, 40, 2});  // same as the default: merges with what follows
  const auto pieces = map.split({0, 5, 50});
  ASSERT_EQ(pieces.size(), 4u);
  EXPECT_EQ((std::tuple{pieces[0].begin, pieces[0].end, pieces[0].ploidy}), (std::tuple{5L, 10L, 2}));
  EXPECT_EQ((std::tuple{pieces[1].begin, pieces[1].end, pieces[1].ploidy}), (std::tuple{10L, 15L, 1}));
  EXPECT_EQ((std::tuple{pieces[2].begin, pieces[2].end, pieces[2].ploidy}), (std::tuple{15L, 30L, 0}));
  EXPECT_EQ((std::tuple{pieces[3].begin, pieces[3].end, pieces[3].ploidy}), (std::tuple{30L, 50L, 2}));
}

struct PloidyBedFixture : ::testing::Test {
  test::TempDir tmp;
  fs::path fasta;
  void SetUp() override {
    fasta = tmp.path / "r.fa";
    test::write_file(fasta, ">c1\n" + std::string(200, 'A') + "\n>c2\n" + std::string(100, 'C') + "\n");
  }
  // The InputError message for a BED with this content ("" when it parses).
  std::string error_of(const std::string& content) {
    const fs::path bed = tmp.path / "p.bed";
    test::write_file(bed, content);
    try {
      read_ploidy_bed(bed.string(), Reference::load(fasta.string()));
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(PloidyBedFixture, GoodFileAndBuildOrder) {
  const fs::path bed = tmp.path / "good.bed";
  test::write_file(bed, "# comment\ntrack name=x\nc2\t0\t50\t0\nc1 10 20 1 extra\n");
  const Reference ref = Reference::load(fasta.string());
  const auto regions = read_ploidy_bed(bed.string(), ref);
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].contig, 0);  // sorted by reference order
  EXPECT_EQ(regions[0].ploidy, 1);
  EXPECT_EQ(regions[1].ploidy, 0);
  const PloidyMap map = build_ploidy_map(ref, 3, Sex::kUnspecified, bed.string());
  EXPECT_EQ(map.split({0, 0, 200}).size(), 3u);
  EXPECT_EQ(map.split({0, 0, 200})[0].ploidy, 3);
}

TEST_F(PloidyBedFixture, BadLinesNameTheFileAndLine) {
  const std::string where = (tmp.path / "p.bed").string() + ": line 2: ";
  EXPECT_EQ(error_of("c1\t0\t10\t1\nc1\t20\t30\n"), where + "expected 'chrom start end ploidy'");
  EXPECT_EQ(error_of("c1\t0\t10\t1\nc1\t20\t30\ttwo\n"), where + "ploidy 'two' is not an integer");
  EXPECT_EQ(error_of("c1\t0\t10\t1\nc1\t20\t30\t1.5\n"), where + "ploidy '1.5' is not an integer");
  EXPECT_EQ(error_of("c1\t0\t10\t1\nc1\t20\t30\t11\n"), where + "ploidy 11 must be between 0 and 10");
  EXPECT_EQ(error_of("c1\t0\t10\t1\nc1\t20\t30\t-1\n"), where + "ploidy -1 must be between 0 and 10");
  EXPECT_EQ(error_of("c1\t0\t10\t1\nc1\t30\t20\t1\n"), where + "expected 0 <= start < end");
  EXPECT_EQ(error_of("c1\t0\t10\t1\nchrZ\t0\t10\t1\n"),
            where + "contig chrZ is not in reference " + fasta.string());
  EXPECT_EQ(error_of("c1\t0\t10\t1\nc2\t0\t101\t1\n"), where + "c2:0-101 is outside the contig (length 100)");
  EXPECT_EQ(error_of("c1\t0\t10\t1\nc1\t5\t12\t2\n"),
            where + "overlaps line 1 (each position may have one ploidy)");
  EXPECT_EQ(error_of("# nothing\n"), (tmp.path / "p.bed").string() + ": no ploidy intervals");
}

// Genotypes of every ploidy come from host code after the backend, so the cpu backend at 1 and 2
// threads and the lane-vector cpu-simt backend give identical records on real reads.
TEST(PloidyGenotypes, SameRecordsForEveryBackendAndThreadCount) {
  const fs::path tiny = test::shared_data_dir() / "na12878-chr22-tiny";
  if (!fs::exists(tiny / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny;
  const Reference ref = Reference::load((tiny / "q.fa").string());
  AlignmentFile bam((tiny / "NA12878.chr22.tiny.bam").string(), ref);
  const CallParams params;
  std::vector<EvidenceRead> reads;
  const int64_t len = ref.contigs()[0].length;
  bam.fetch(0, 0, len, params, reads);
  const std::vector<CallWindow> windows =
      make_windows(ref, find_candidates(ref, 0, 0, len, reads, params), params);
  ASSERT_GT(windows.size(), 10u);
  auto text = [](const std::vector<VcfRecord>& records) {
    std::string s;
    for (const VcfRecord& r : records) {
      s += std::to_string(r.pos) + " " + r.ref + " " + r.alts[0] + " " + std::to_string(r.qual) + " GT";
      for (int a : r.gt) s += " " + std::to_string(a);
      s += " PL";
      for (int v : r.pl) s += " " + std::to_string(v);
      s += "\n";
    }
    return s;
  };
  for (int ploidy : {1, 2, 3, 4}) {
    std::vector<std::string> outputs;
    for (const auto& [simt, threads] : {std::pair{false, 1}, std::pair{false, 2}, std::pair{true, 2}}) {
      auto backend = simt ? make_simt_cpu_genotype_backend(threads) : make_cpu_genotype_backend(threads);
      WindowGenotyper genotyper(ref, *backend, params, threads);
      std::vector<VcfRecord> records;
      genotyper.genotype(windows, reads, records, {}, ploidy);
      for (const VcfRecord& r : records) {
        ASSERT_EQ(r.gt.size(), size_t(ploidy));
        ASSERT_EQ(r.pl.size(), genotype_count(r.alts.size() + 1, ploidy));
      }
      outputs.push_back(text(records));
    }
    EXPECT_FALSE(outputs[0].empty()) << "ploidy " << ploidy;
    EXPECT_EQ(outputs[1], outputs[0]) << "ploidy " << ploidy << ": 2 threads";
    EXPECT_EQ(outputs[2], outputs[0]) << "ploidy " << ploidy << ": cpu-simt";
  }
}

}  // namespace
}  // namespace omicsd
