// Tests of diploid genotype likelihoods, PL / GQ / QUAL and site marginalisation
// (host/call/genotype_likelihoods.hpp) against direct formulas written here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "host/call/genotype_likelihoods.hpp"
#include "host/common/error.hpp"

namespace omicsd {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
const GenotypeLikelihoodParams kNoCap{0.0};

// Brute force: the definition with pow / log10 (fine for moderate values).
std::vector<double> brute_gls(const std::vector<double>& L, size_t R, size_t H, double cap) {
  std::vector<double> out;
  for (size_t k = 0; k < H; ++k)
    for (size_t j = 0; j <= k; ++j) {
      // Appended in VCF order: (0,0), (0,1), (1,1), (0,2), ...
      double s = 0.0;
      for (size_t r = 0; r < R; ++r) {
        double best = kNegInf;
        for (size_t h = 0; h < H; ++h) best = std::max(best, L[r * H + h]);
        const double a = cap > 0 ? std::max(L[r * H + j], best - cap) : L[r * H + j];
        const double b = cap > 0 ? std::max(L[r * H + k], best - cap) : L[r * H + k];
        s += std::log10(0.5 * std::pow(10.0, a) + 0.5 * std::pow(10.0, b));
      }
      out.push_back(s);
    }
  return out;
}

TEST(GenotypeLikelihoods, GenotypeOrder) {
  EXPECT_EQ(genotype_count(1), 1u);
  EXPECT_EQ(genotype_count(2), 3u);
  EXPECT_EQ(genotype_count(3), 6u);
  EXPECT_EQ(genotype_index(0, 0), 0u);
  EXPECT_EQ(genotype_index(0, 1), 1u);
  EXPECT_EQ(genotype_index(1, 1), 2u);
  EXPECT_EQ(genotype_index(0, 2), 3u);
  EXPECT_EQ(genotype_index(2, 1), 4u);
  EXPECT_EQ(genotype_index(2, 2), 5u);
  size_t g = 0;
  for (size_t k = 0; k < 40; ++k)
    for (size_t j = 0; j <= k; ++j, ++g) {
      EXPECT_EQ(genotype_index(j, k), g);
      EXPECT_EQ(genotype_alleles(g), std::make_pair(j, k));
    }
}

TEST(GenotypeLikelihoods, MatchBruteForceOnRandomMatrices) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(-30.0, -0.01);
  for (int t = 0; t < 500; ++t) {
    const size_t R = 1 + rng() % 30, H = 1 + rng() % 6;
    std::vector<double> L(R * H);
    for (double& v : L) v = u(rng);
    for (double cap : {0.0, 4.5, 1.0}) {
      const auto got = diploid_genotype_log10_likelihoods(L, R, H, GenotypeLikelihoodParams{cap});
      const auto want = brute_gls(L, R, H, cap);
      ASSERT_EQ(got.size(), want.size());
      for (size_t g = 0; g < got.size(); ++g)
        ASSERT_NEAR(got[g], want[g], 1e-9 * std::max(1.0, std::fabs(want[g])))
            << t << " " << g << " cap " << cap;
    }
  }
}

TEST(GenotypeLikelihoods, StableForVeryLowLikelihoods) {
  // pow(10, -500) underflows; the log-sum-exp form does not.
  const std::vector<double> L = {-500.0, -510.0, -900.0, -400.0};
  const auto gl = diploid_genotype_log10_likelihoods(L, 2, 2, kNoCap);
  EXPECT_DOUBLE_EQ(gl[0], -1400.0);
  EXPECT_DOUBLE_EQ(gl[2], -910.0);
  const double het = (-500.0 + std::log10(1.0 + 1e-10) - std::log10(2.0)) + (-400.0 - std::log10(2.0));
  EXPECT_NEAR(gl[1], het, 1e-9);
  // -infinity entries: a read impossible under one haplotype.
  const std::vector<double> L2 = {kNegInf, -1.0};
  const auto gl2 = diploid_genotype_log10_likelihoods(L2, 1, 2, kNoCap);
  EXPECT_EQ(gl2[0], kNegInf);
  EXPECT_NEAR(gl2[1], -1.0 - std::log10(2.0), 1e-12);
  EXPECT_EQ(gl2[2], -1.0);
  // With the cap that read only costs hom-ref 4.5.
  const auto gl3 = diploid_genotype_log10_likelihoods(L2, 1, 2);
  EXPECT_DOUBLE_EQ(gl3[0], -5.5);
  // A read impossible under every haplotype is skipped.
  const std::vector<double> L3 = {kNegInf, kNegInf, -1.0, -2.0};
  const auto gl4 = diploid_genotype_log10_likelihoods(L3, 2, 2, kNoCap);
  EXPECT_DOUBLE_EQ(gl4[0], -1.0);
  EXPECT_DOUBLE_EQ(gl4[2], -2.0);
  // No reads: all zero.
  EXPECT_EQ(diploid_genotype_log10_likelihoods(nullptr, 0, 3), std::vector<double>(6, 0.0));
}

// Reads from a pair-HMM-like matrix: each read fits its own haplotype at about -2 and the other at
// about -2 - 4 (one Q40-ish mismatch).
std::vector<double> reads_supporting(const std::vector<int>& hap_of_read, size_t H, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> jitter(-0.5, 0.0);
  std::vector<double> L;
  for (int h : hap_of_read)
    for (size_t k = 0; k < H; ++k) L.push_back(-2.0 + jitter(rng) - (int(k) == h ? 0.0 : 4.0));
  return L;
}

TEST(GenotypeLikelihoods, ClearHetCallsHetWithHighGq) {
  std::mt19937_64 rng(2);
  std::vector<int> support;
  for (int i = 0; i < 30; ++i) support.push_back(i % 2);
  const auto L = reads_supporting(support, 2, rng);
  const auto gl = diploid_genotype_log10_likelihoods(L, support.size(), 2);
  EXPECT_EQ(best_genotype(gl), genotype_index(0, 1));
  const auto pl = pl_from_log10(gl);
  EXPECT_EQ(pl[1], 0);
  EXPECT_GT(pl[0], 99);
  EXPECT_GT(pl[2], 99);
  EXPECT_EQ(gq_from_pl(pl), 99);
  EXPECT_GT(qual_not_hom_ref(gl, 2), 100.0);
}

TEST(GenotypeLikelihoods, AllReferenceReadsCallHomRef) {
  std::mt19937_64 rng(3);
  const std::vector<int> support(25, 0);
  const auto L = reads_supporting(support, 2, rng);
  const auto gl = diploid_genotype_log10_likelihoods(L, support.size(), 2);
  EXPECT_EQ(best_genotype(gl), 0u);
  const auto pl = pl_from_log10(gl);
  EXPECT_EQ(pl[0], 0);
  EXPECT_GE(gq_from_pl(pl), 60);
  EXPECT_LT(qual_not_hom_ref(gl, 2), 1.0);
  // Hom-alt support.
  const std::vector<int> alt(25, 1);
  const auto gl_alt = diploid_genotype_log10_likelihoods(reads_supporting(alt, 2, rng), alt.size(), 2);
  EXPECT_EQ(best_genotype(gl_alt), 2u);
}

TEST(GenotypeLikelihoods, PlNormalisationAndGq) {
  EXPECT_EQ(pl_from_log10({-10.0, -1.0, -5.0}), (std::vector<int>{90, 0, 40}));
  EXPECT_EQ(pl_from_log10({-3.04, -3.0, -3.0}), (std::vector<int>{0, 0, 0}));  // round(0.4) = 0
  EXPECT_EQ(pl_from_log10({-3.06, -3.0, -3.0}), (std::vector<int>{1, 0, 0}));
  EXPECT_EQ(pl_from_log10({-100.0, -2.0, kNegInf}), (std::vector<int>{980, 0, kMaxPl}));
  EXPECT_EQ(pl_from_log10({kNegInf, kNegInf}), (std::vector<int>{0, 0}));
  EXPECT_TRUE(pl_from_log10({}).empty());
  EXPECT_EQ(gq_from_pl({90, 0, 40}), 40);
  EXPECT_EQ(gq_from_pl({0, 0, 40}), 0);
  EXPECT_EQ(gq_from_pl({0, 500, 400}), 99);
  EXPECT_EQ(gq_from_pl({0, 500, 400}, 1000), 400);
  EXPECT_EQ(gq_from_pl({0}), 0);
  // Shifting every GL by a constant changes nothing.
  EXPECT_EQ(pl_from_log10({-110.0, -101.0, -105.0}), pl_from_log10({-10.0, -1.0, -5.0}));
}

TEST(GenotypeLikelihoods, PriorsAndQual) {
  const auto lp = genotype_log10_priors(2);
  ASSERT_EQ(lp.size(), 3u);
  EXPECT_NEAR(std::pow(10.0, lp[0]), 1 - 0.0015, 1e-15);
  EXPECT_NEAR(std::pow(10.0, lp[1]), 0.001, 1e-15);
  EXPECT_NEAR(std::pow(10.0, lp[2]), 0.0005, 1e-15);
  for (size_t A : {1u, 2u, 3u, 4u}) {
    double s = 0;
    for (double v : genotype_log10_priors(A)) s += std::pow(10.0, v);
    EXPECT_NEAR(s, 1.0, 1e-12) << A;
    s = 0;
    for (double v : genotype_log10_priors(A, {0.001, true})) s += std::pow(10.0, v);
    EXPECT_NEAR(s, 1.0, 1e-12) << A;
  }
  const auto lp3 = genotype_log10_priors(3);  // 0/0, 0/1, 1/1, 0/2, 1/2, 2/2
  EXPECT_NEAR(std::pow(10.0, lp3[1]), 0.0005, 1e-15);
  EXPECT_NEAR(std::pow(10.0, lp3[4]), 0.0005 / 3, 1e-15);
  EXPECT_THROW(genotype_log10_priors(2, {0.0, false}), InputError);

  // QUAL against the direct posterior for moderate values.
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> u(-8.0, 0.0);
  for (int t = 0; t < 200; ++t) {
    const size_t A = 2 + rng() % 2;
    std::vector<double> gl(genotype_count(A));
    for (double& v : gl) v = u(rng);
    for (bool flat : {false, true}) {
      const GenotypePriorParams pp{0.001, flat};
      const auto pri = genotype_log10_priors(A, pp);
      double total = 0;
      for (size_t g = 0; g < gl.size(); ++g) total += std::pow(10.0, gl[g] + pri[g]);
      const double p_ref = std::pow(10.0, gl[0] + pri[0]) / total;
      EXPECT_NEAR(qual_not_hom_ref(gl, A, pp), -10.0 * std::log10(p_ref), 1e-9);
      const auto post = genotype_log10_posteriors(gl, A, pp);
      for (size_t g = 0; g < gl.size(); ++g)
        EXPECT_NEAR(post[g], std::log10(std::pow(10.0, gl[g] + pri[g]) / total), 1e-9);
    }
  }
  // Extremes: certain variant (finite, large), impossible hom-ref, single allele.
  EXPECT_NEAR(qual_not_hom_ref({-500.0, 0.0, -400.0}, 2), 10.0 * (500.0 + std::log10(0.001 / 0.9985)), 1e-6);
  EXPECT_EQ(qual_not_hom_ref({kNegInf, -1.0, -2.0}, 2), kMaxQual);
  EXPECT_EQ(qual_not_hom_ref({0.0, kNegInf, kNegInf}, 2), 0.0);
  EXPECT_EQ(qual_not_hom_ref({0.0}, 1), 0.0);
  EXPECT_THROW(qual_not_hom_ref({0.0, 1.0}, 2), InputError);
}

TEST(GenotypeLikelihoods, SiteMarginalisationOverThreeHaplotypes) {
  // Haplotypes: 0 = reference, 1 = carries the SNP at this site, 2 = carries another variant nearby
  // but the reference allele here. Site alleles: 0 = ref, 1 = alt.
  const std::vector<int> hap_allele = {0, 1, 0};
  // Haplotype-pair GLs in VCF order: (0,0) (0,1) (1,1) (0,2) (1,2) (2,2).
  const std::vector<double> hp = {-50.0, -30.0, -60.0, -45.0, -10.0, -40.0};
  const auto site = marginalize_genotype_likelihoods(hp, 3, hap_allele, 2);
  ASSERT_EQ(site.size(), 3u);
  EXPECT_EQ(site[0], -40.0);  // best of (0,0), (0,2), (2,2)
  EXPECT_EQ(site[1], -10.0);  // best of (0,1), (1,2)
  EXPECT_EQ(site[2], -60.0);  // (1,1)
  EXPECT_EQ(pl_from_log10(site), (std::vector<int>{300, 0, 500}));

  // A haplotype that does not inform the site (-1) is skipped; an allele nobody carries is -inf.
  const auto site2 = marginalize_genotype_likelihoods(hp, 3, {0, -1, 0}, 2);
  EXPECT_EQ(site2[0], -40.0);
  EXPECT_EQ(site2[1], kNegInf);
  EXPECT_EQ(site2[2], kNegInf);
  EXPECT_THROW(marginalize_genotype_likelihoods(hp, 3, {0, 2, 0}, 2), InputError);
  EXPECT_THROW(marginalize_genotype_likelihoods(hp, 3, {0, 1}, 2), InputError);

  // End to end from reads: half the reads fit haplotype 2 (ref allele here), half haplotype 1 (alt).
  std::mt19937_64 rng(5);
  std::vector<int> support;
  for (int i = 0; i < 20; ++i) support.push_back(i % 2 ? 1 : 2);
  const auto L = reads_supporting(support, 3, rng);
  const auto gl_haps = diploid_genotype_log10_likelihoods(L, support.size(), 3);
  EXPECT_EQ(best_genotype(gl_haps), genotype_index(1, 2));
  const auto gl_site = marginalize_genotype_likelihoods(gl_haps, 3, hap_allele, 2);
  EXPECT_EQ(best_genotype(gl_site), 1u);  // 0/1 at the site
  EXPECT_EQ(gq_from_pl(pl_from_log10(gl_site)), 99);

  // GATK's per-read marginalisation, then genotype likelihoods over the site's alleles.
  const auto read_alleles = marginalize_read_likelihoods(L.data(), support.size(), 3, hap_allele, 2);
  ASSERT_EQ(read_alleles.size(), support.size() * 2);
  for (size_t r = 0; r < support.size(); ++r) {
    EXPECT_EQ(read_alleles[r * 2 + 0], std::max(L[r * 3 + 0], L[r * 3 + 2]));
    EXPECT_EQ(read_alleles[r * 2 + 1], L[r * 3 + 1]);
  }
  const auto gl_reads = diploid_genotype_log10_likelihoods(read_alleles, support.size(), 2);
  EXPECT_EQ(best_genotype(gl_reads), 1u);
}

}  // namespace
}  // namespace omicsd
