// Tests of the pair-HMM (host/call/pair_hmm.hpp) and the CPU genotype backend against references
// written independently here from the model's definition, in double and log space:
//   * an exhaustive enumeration of every path through the HMM (tiny inputs), which is the
//     likelihood's definition;
//   * a plain full-matrix log-space forward DP (checked against the enumeration, then used for
//     thousands of random small cases and for 250 bp reads);
// plus the model's expected behaviour (exact match best, quality, locality, N), the float/double
// fallback rule, and the backend's thread independence. One test prints the single-thread
// throughput (never asserted).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "host/call/genotype_backend.hpp"
#include "host/call/pair_hmm.hpp"

namespace omicsd {
namespace {

using Seq = std::vector<uint8_t>;
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

Seq encode(const std::string& s) {
  Seq out;
  for (char c : s) out.push_back(c == 'A' ? 0 : c == 'C' ? 1 : c == 'G' ? 2 : c == 'T' ? 3 : 4);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reference model, from PairHmmParams only (not the header's tables), in natural-log space.

struct RefModel {
  double l_mm, l_im, l_mi, l_ii, l_md, l_dd;
  explicit RefModel(const PairHmmParams& p) {
    const double g = std::pow(10.0, -p.gap_open / 10.0), c = std::pow(10.0, -p.gap_continuation / 10.0);
    l_mm = std::log(1.0 - 2.0 * g);
    l_im = std::log(1.0 - c);
    l_mi = l_md = std::log(g);
    l_ii = l_dd = std::log(c);
    min_q = p.min_base_qual;
  }
  int min_q = 0;
  double l_prior(uint8_t r, uint8_t h, uint8_t q) const {
    const double e = std::pow(10.0, -double(std::clamp<int>(q, min_q, kPairHmmMaxQual)) / 10.0);
    const bool match = r >= 4 || h >= 4 || r == h;
    return match ? std::log(1.0 - e) : std::log(e / 3.0);
  }
};

double lse(double a, double b) {
  if (a < b) std::swap(a, b);
  if (b == kNegInf) return a;
  return a + std::log1p(std::exp(b - a));
}

// Reference 1: every path. A path starts before haplotype base j0 (0 <= j0 < hlen, prior 1/hlen),
// emits read base 1 in Match at (1, j0+1), then moves M -> M/I/D, I -> M/I, D -> M/D (Match consumes a
// read and a haplotype base, Insertion a read base, Deletion a haplotype base), and ends when the
// last read base is emitted in Match or Insertion.
class Enumerator {
 public:
  Enumerator(const Seq& r, const Seq& q, const Seq& h, const PairHmmParams& p) : r_(r), q_(q), h_(h), m_(p) {}
  double log10_likelihood() {
    total_ = kNegInf;
    const int hl = int(h_.size());
    for (int j0 = 0; j0 < hl; ++j0) {
      const double start = -std::log(double(hl)) + m_.l_im + m_.l_prior(r_[0], h_[j0], q_[0]);
      walk(1, j0 + 1, 0, start);
    }
    return total_ / std::log(10.0);
  }

 private:
  // state 0: M, 1: I, 2: D at (i, j): i read bases and j haplotype bases consumed.
  void walk(int i, int j, int state, double lp) {
    const int rl = int(r_.size()), hl = int(h_.size());
    if (i == rl && state != 2) {
      total_ = lse(total_, lp);
      return;  // a path that continues with deletions can never emit again
    }
    if (i < rl && j < hl)
      walk(i + 1, j + 1, 0, lp + (state == 0 ? m_.l_mm : m_.l_im) + m_.l_prior(r_[i], h_[j], q_[i]));
    if (i < rl && state != 2) walk(i + 1, j, 1, lp + (state == 0 ? m_.l_mi : m_.l_ii));
    if (j < hl && state != 1) walk(i, j + 1, 2, lp + (state == 0 ? m_.l_md : m_.l_dd));
  }
  const Seq &r_, &q_, &h_;
  RefModel m_;
  double total_ = kNegInf;
};

// Reference 2: the forward algorithm over full matrices in log space.
double reference_dp(const Seq& r, const Seq& q, const Seq& h, const PairHmmParams& p) {
  const int rl = int(r.size()), hl = int(h.size());
  if (rl == 0) return 0.0;
  if (hl == 0) return kNegInf;
  const RefModel m(p);
  std::vector<std::vector<double>> M(rl + 1, std::vector<double>(hl + 1, kNegInf)), I = M, D = M;
  for (int j = 0; j <= hl; ++j) D[0][j] = -std::log(double(hl));
  for (int i = 1; i <= rl; ++i)
    for (int j = 1; j <= hl; ++j) {
      M[i][j] = m.l_prior(r[i - 1], h[j - 1], q[i - 1]) +
                lse(M[i - 1][j - 1] + m.l_mm, lse(I[i - 1][j - 1] + m.l_im, D[i - 1][j - 1] + m.l_im));
      I[i][j] = lse(M[i - 1][j] + m.l_mi, I[i - 1][j] + m.l_ii);
      D[i][j] = lse(M[i][j - 1] + m.l_md, D[i][j - 1] + m.l_dd);
    }
  double total = kNegInf;
  for (int j = 1; j <= hl; ++j) total = lse(total, lse(M[rl][j], I[rl][j]));
  return total / std::log(10.0);
}

// ---------------------------------------------------------------------------------------------
// Calls of the header's functions.

struct Hmm {
  explicit Hmm(const PairHmmParams& p = {}) : model(make_pair_hmm_model(p)) {}
  PairHmmModel model;
  std::vector<float> wf;
  std::vector<double> wd;
  void size_for(const Seq& h) {
    wf.assign(pair_hmm_workspace_floats(int32_t(h.size())), -1.0f);  // garbage: must not matter
    wd.assign(pair_hmm_workspace_doubles(int32_t(h.size())), -1.0);
  }
  double combined(const Seq& r, const Seq& q, const Seq& h, PairHmmPass* pass = nullptr) {
    size_for(h);
    return pair_hmm_log10(r.data(), q.data(), int32_t(r.size()), h.data(), int32_t(h.size()), model,
                          PairHmmWorkspace{wf.data(), wd.data()}, pass);
  }
  double float_pass(const Seq& r, const Seq& q, const Seq& h, float* s = nullptr) {
    size_for(h);
    return pair_hmm_log10_float(r.data(), q.data(), int32_t(r.size()), h.data(), int32_t(h.size()), model,
                                wf.data(), s);
  }
  double double_pass(const Seq& r, const Seq& q, const Seq& h) {
    size_for(h);
    return pair_hmm_log10_double(r.data(), q.data(), int32_t(r.size()), h.data(), int32_t(h.size()), model,
                                 wd.data());
  }
};

Seq random_seq(std::mt19937_64& rng, int len, double n_rate = 0.0) {
  Seq s(len);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (auto& b : s) b = u(rng) < n_rate ? 4 : uint8_t(rng() % 4);
  return s;
}
Seq random_quals(std::mt19937_64& rng, int len, int lo, int hi) {
  Seq q(len);
  for (auto& v : q) v = uint8_t(lo + int(rng() % uint64_t(hi - lo + 1)));
  return q;
}
// A copy of `s` with random substitutions, insertions and deletions.
Seq mutate(std::mt19937_64& rng, const Seq& s, double rate) {
  Seq out;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (uint8_t b : s) {
    const double x = u(rng);
    if (x < rate / 3) continue;                                      // deletion
    if (x < 2 * rate / 3) out.push_back(uint8_t(rng() % 4));         // insertion before
    out.push_back(x < rate ? uint8_t((b + 1 + rng() % 3) % 4) : b);  // substitution
  }
  if (out.empty()) out.push_back(uint8_t(rng() % 4));
  return out;
}
// Relative error in log10 space, with an absolute floor for values near 0.
double rel_err(double got, double want) { return std::fabs(got - want) / std::max(1.0, std::fabs(want)); }

// ---------------------------------------------------------------------------------------------

TEST(PairHmm, DeterministicLog10MatchesLibm) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mant(0.5, 1.0);
  for (int t = 0; t < 200000; ++t) {
    const double x = std::ldexp(mant(rng), int(rng() % 2000) - 1000);
    const int shift = int(rng() % 3000) - 1500;
    const double a = std::log10(x), b = double(shift) * std::log10(2.0);
    const double got = pair_hmm_log10_pow2(x, shift);
    // The reference itself rounds both terms: bound by their magnitudes, not the (possibly cancelled) sum.
    ASSERT_LE(std::fabs(got - (a + b)), 4e-16 * (std::fabs(a) + std::fabs(b)) + 1e-15) << x << " " << shift;
  }
  EXPECT_DOUBLE_EQ(pair_hmm_log10_pow2(1.0, 0), 0.0);
  EXPECT_DOUBLE_EQ(pair_hmm_log10_pow2(1000.0, 0), 3.0);
  EXPECT_EQ(pair_hmm_log10_pow2(0.0, 0), -HUGE_VAL);
  // Subnormal input.
  EXPECT_NEAR(pair_hmm_log10_pow2(std::ldexp(1.0, -1060), 0), -1060 * std::log10(2.0), 1e-12);
}

// The build must not fuse multiply-adds in the shared recurrence (the CUDA side compiles it with
// --fmad=false): every product is rounded on its own. Volatile temporaries force that rounding in the
// expected values; a build that contracts (e.g. -march with FMA and GCC's default -ffp-contract=fast
// for C++) fails here.
TEST(PairHmm, NoFusedMultiplyAddInTheCell) {
  const PairHmmModel model = make_pair_hmm_model({});
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int t = 0; t < 100000; ++t) {
    volatile float vin[8];
    for (auto& v : vin) v = u(rng);
    const float prior = vin[0], md = vin[1], id = vin[2], dd = vin[3], mu = vin[4], iu = vin[5], ml = vin[6],
                dl = vin[7];
    float m, i, d;
    pair_hmm_cell<float>(prior, md, id, dd, mu, iu, ml, dl, model.f, &m, &i, &d);
    const PairHmmTables<float>& tf = model.f;
    volatile float a = tf.mm * md;
    volatile float b = id + dd;
    volatile float c = tf.im * b;
    volatile float e = a + c;
    const float want_m = prior * e;
    volatile float p1 = tf.mi * mu, p2 = tf.ii * iu;
    const float want_i = p1 + p2;
    volatile float q1 = tf.md * ml, q2 = tf.dd * dl;
    const float want_d = q1 + q2;
    ASSERT_EQ(std::memcmp(&m, &want_m, sizeof m), 0) << t;
    ASSERT_EQ(std::memcmp(&i, &want_i, sizeof i), 0) << t;
    ASSERT_EQ(std::memcmp(&d, &want_d, sizeof d), 0) << t;
  }
}

TEST(PairHmm, ModelTables) {
  const PairHmmModel m = make_pair_hmm_model({});
  EXPECT_NEAR(m.d.mi, std::pow(10.0, -4.5), 1e-20);
  EXPECT_NEAR(m.d.ii, 0.1, 1e-16);
  EXPECT_NEAR(m.d.mm, 1.0 - 2.0 * std::pow(10.0, -4.5), 1e-16);
  EXPECT_NEAR(m.d.im, 0.9, 1e-16);
  EXPECT_NEAR(m.d.match[30], 0.999, 1e-15);
  EXPECT_NEAR(m.d.mismatch[30], 0.001 / 3, 1e-18);
  EXPECT_EQ(m.f.match[20], float(m.d.match[20]));
  // Qualities below min_base_qual (6 by default) count as it; 0 turns the floor off.
  EXPECT_EQ(m.d.match[0], m.d.match[6]);
  EXPECT_EQ(m.d.mismatch[5], m.d.mismatch[6]);
  EXPECT_NE(m.d.match[6], m.d.match[7]);
  const PairHmmModel raw = make_pair_hmm_model({45.0, 10.0, 0});
  EXPECT_EQ(raw.d.match[0], 0.0);
  EXPECT_NEAR(raw.d.mismatch[0], 1.0 / 3.0, 1e-16);
  EXPECT_THROW(make_pair_hmm_model({45.0, 10.0, -1}), InputError);
  EXPECT_THROW(make_pair_hmm_model({45.0, 10.0, kPairHmmMaxQual + 1}), InputError);
  EXPECT_THROW(make_pair_hmm_model({3.0, 10.0}), InputError);
  EXPECT_THROW(make_pair_hmm_model({45.0, 0.0}), InputError);
  EXPECT_THROW(make_pair_hmm_model({NAN, 10.0}), InputError);
}

TEST(PairHmm, ReferenceDpMatchesExhaustiveEnumeration) {
  std::mt19937_64 rng(1);
  for (int t = 0; t < 300; ++t) {
    const int rl = 1 + int(rng() % 4), hl = 1 + int(rng() % 5);
    const Seq r = random_seq(rng, rl, 0.1), h = random_seq(rng, hl, 0.1), q = random_quals(rng, rl, 0, 40);
    const PairHmmParams p{8.0 + double(rng() % 40), 3.0 + double(rng() % 15), t % 2 ? 0 : 6};
    const double e = Enumerator(r, q, h, p).log10_likelihood();
    const double d = reference_dp(r, q, h, p);
    ASSERT_NEAR(d, e, 1e-12 * std::max(1.0, std::fabs(e))) << "case " << t;
    // The header's double pass against the definition directly, too.
    Hmm hmm(p);
    ASSERT_NEAR(hmm.double_pass(r, q, h), e, 1e-12 * std::max(1.0, std::fabs(e))) << "case " << t;
  }
}

TEST(PairHmm, MatchesReferenceOnRandomSmallCases) {
  std::mt19937_64 rng(2);
  double worst_float = 0.0, worst_double = 0.0, worst_combined = 0.0;
  int n_float = 0, n_double = 0;
  for (int t = 0; t < 4000; ++t) {
    const int rl = 1 + int(rng() % 24), hl = 1 + int(rng() % 40);
    const PairHmmParams p{10.0 + double(rng() % 50), 4.0 + double(rng() % 20), int(rng() % 3) * 5};
    Seq r, h;
    if (t % 2 == 0) {  // related: the read is a mutated piece of the haplotype (high likelihoods)
      h = random_seq(rng, hl, 0.02);
      const int a = int(rng() % uint64_t(hl)), b = a + 1 + int(rng() % uint64_t(hl - a));
      r = mutate(rng, Seq(h.begin() + a, h.begin() + b), 0.1);
      if (int(r.size()) > 30) r.resize(30);
    } else if (t % 4 == 1) {  // unrelated
      r = random_seq(rng, rl, 0.05);
      h = random_seq(rng, hl, 0.05);
    } else {  // unrelated, longer, good qualities: around and below the float threshold (log10 ~ -64)
      r = random_seq(rng, 30 + int(rng() % 50), 0.01);
      h = random_seq(rng, hl, 0.01);
    }
    const Seq q = random_quals(rng, int(r.size()), t % 4 == 3 ? 25 : 2, 60);
    const double want = reference_dp(r, q, h, p);
    ASSERT_TRUE(std::isfinite(want));
    Hmm hmm(p);
    float s = 0;
    const double f = hmm.float_pass(r, q, h, &s);
    const double d = hmm.double_pass(r, q, h);
    PairHmmPass pass = PairHmmPass::kNone;
    const double c = hmm.combined(r, q, h, &pass);
    if (s >= kPairHmmFloatMin) {  // the float pass is only used (and only promised) above the threshold
      ++n_float;
      worst_float = std::max(worst_float, rel_err(f, want));
      ASSERT_LE(rel_err(f, want), 1e-5) << "case " << t << " float " << f << " want " << want;
      ASSERT_EQ(pass, PairHmmPass::kFloat);
      ASSERT_EQ(c, f);
    } else {
      ++n_double;
      ASSERT_EQ(pass, PairHmmPass::kDouble);
      ASSERT_EQ(c, d);
    }
    worst_double = std::max(worst_double, rel_err(d, want));
    worst_combined = std::max(worst_combined, rel_err(c, want));
    ASSERT_LE(rel_err(d, want), 1e-12) << "case " << t << " double " << d << " want " << want;
    ASSERT_LE(rel_err(c, want), 1e-5) << "case " << t;
  }
  std::cout << "  float pass: " << n_float << " cases, worst rel. error " << worst_float << "\n"
            << "  double pass: " << n_double << " fallbacks; worst rel. error of the double pass "
            << worst_double << " (all cases)\n";
  EXPECT_GT(n_float, 2000);  // and both sides of the threshold
  EXPECT_GT(n_double, 50);
}

TEST(PairHmm, EmptyInputs) {
  Hmm hmm;
  const Seq r = encode("ACGT"), q(4, 30), empty;
  EXPECT_EQ(hmm.combined(empty, empty, r), 0.0);
  EXPECT_EQ(hmm.combined(r, q, empty), -HUGE_VAL);
}

TEST(PairHmm, ExactMatchScoresHighest) {
  Hmm hmm;
  std::mt19937_64 rng(3);
  for (int t = 0; t < 50; ++t) {
    const Seq h = random_seq(rng, 100);
    const Seq r = h;
    const Seq q = random_quals(rng, 100, 20, 40);
    const double same = hmm.combined(r, q, h);
    Seq snp = h;
    snp[50] = uint8_t((snp[50] + 1) % 4);
    Seq ins = h;
    ins.insert(ins.begin() + 50, uint8_t(rng() % 4));
    Seq del = h;
    del.erase(del.begin() + 50);
    EXPECT_GT(same, hmm.combined(r, q, snp));
    EXPECT_GT(same, hmm.combined(r, q, ins));
    EXPECT_GT(same, hmm.combined(r, q, del));
    // A read with no error against its own sequence: close to prod(1 - e) * mm^(n-1) * im / hlen.
    double expect = -std::log10(100.0) + std::log10(0.9) + 99 * std::log10(1 - 2 * std::pow(10.0, -4.5));
    for (uint8_t v : q) expect += std::log10(1.0 - std::pow(10.0, -v / 10.0));
    EXPECT_NEAR(same, expect, 1e-3);
  }
}

TEST(PairHmm, HigherQualityAtAMismatchLowersTheLikelihood) {
  Hmm hmm;
  std::mt19937_64 rng(4);
  const Seq h = random_seq(rng, 80);
  Seq r(h.begin() + 10, h.begin() + 70);
  r[30] = uint8_t((r[30] + 2) % 4);
  double prev = 0.0;
  for (int qual = 5; qual <= 60; qual += 5) {
    Seq q(r.size(), 30);
    q[30] = uint8_t(qual);
    const double l = hmm.combined(r, q, h);
    if (qual > 5) {
      EXPECT_LT(l, prev) << qual;
    }
    prev = l;
  }
}

TEST(PairHmm, LocalInTheHaplotype) {
  Hmm hmm;
  std::mt19937_64 rng(5);
  for (int t = 0; t < 20; ++t) {
    const Seq seg = random_seq(rng, 60);
    Seq longer = random_seq(rng, 100);
    longer.insert(longer.end(), seg.begin(), seg.end());
    const Seq tail = random_seq(rng, 140);
    longer.insert(longer.end(), tail.begin(), tail.end());
    const Seq q = random_quals(rng, 60, 25, 40);
    const double a = hmm.combined(seg, q, seg);
    const double b = hmm.combined(seg, q, longer);
    // Same alignment, only the start prior differs: 1/60 against 1/300.
    EXPECT_NEAR(b, a + std::log10(60.0) - std::log10(300.0), 1e-4);
  }
}

TEST(PairHmm, NMatchesAnything) {
  Hmm hmm;
  std::mt19937_64 rng(6);
  const Seq q = random_quals(rng, 30, 10, 40);
  const Seq all_n(30, 4);
  const double a = hmm.combined(all_n, q, random_seq(rng, 50));
  const double b = hmm.combined(all_n, q, random_seq(rng, 50));
  EXPECT_EQ(a, b);
  const Seq hap_n(50, 4);
  EXPECT_EQ(hmm.combined(random_seq(rng, 30), q, hap_n), hmm.combined(random_seq(rng, 30), q, hap_n));
  // Codes above 4 act as N.
  Seq odd(30, 9);
  EXPECT_EQ(hmm.combined(odd, q, random_seq(rng, 50)), a);
}

TEST(PairHmm, UnderflowFallsBackToDoubleAndStaysFinite) {
  std::mt19937_64 rng(8);
  // Default model: a 250 bp read against an unrelated haplotype is far below the float range.
  {
    Hmm hmm;
    for (int t = 0; t < 5; ++t) {
      const Seq r = random_seq(rng, 250), h = random_seq(rng, 300), q = random_quals(rng, 250, 20, 40);
      PairHmmPass pass = PairHmmPass::kNone;
      const double got = hmm.combined(r, q, h, &pass);
      const double want = reference_dp(r, q, h, {});
      EXPECT_EQ(pass, PairHmmPass::kDouble);
      EXPECT_TRUE(std::isfinite(got));
      EXPECT_LT(want, -64.0);
      EXPECT_LE(rel_err(got, want), 1e-12) << got << " vs " << want;
    }
  }
  // Poly-A haplotype, poly-C read, high qualities and expensive gaps: log10 P is far below even
  // double's range at scale 2^1020 (about -615), so the row rescaling must engage.
  {
    const PairHmmParams p{60.0, 40.0};
    Hmm hmm(p);
    const Seq r(250, 1), h(300, 0), q(250, 60);
    PairHmmPass pass = PairHmmPass::kNone;
    const double got = hmm.combined(r, q, h, &pass);
    const double want = reference_dp(r, q, h, p);
    EXPECT_EQ(pass, PairHmmPass::kDouble);
    EXPECT_TRUE(std::isfinite(got));
    EXPECT_LT(want, -700.0);
    EXPECT_LE(rel_err(got, want), 1e-12) << got << " vs " << want;
    // Mixed: random read vs random haplotype under that model.
    for (int t = 0; t < 3; ++t) {
      const Seq r2 = random_seq(rng, 250), h2 = random_seq(rng, 300), q2 = random_quals(rng, 250, 30, 60);
      const double g2 = hmm.combined(r2, q2, h2);
      const double w2 = reference_dp(r2, q2, h2, p);
      EXPECT_TRUE(std::isfinite(g2));
      EXPECT_LE(rel_err(g2, w2), 1e-12) << g2 << " vs " << w2;
    }
  }
}

TEST(PairHmm, LongRelatedReadsUseTheFloatPass) {
  Hmm hmm;
  std::mt19937_64 rng(9);
  for (int t = 0; t < 5; ++t) {
    const Seq h = random_seq(rng, 300);
    const Seq r = mutate(rng, Seq(h.begin() + 60, h.begin() + 210), 0.02);
    const Seq q = random_quals(rng, int(r.size()), 20, 40);
    PairHmmPass pass = PairHmmPass::kNone;
    const double got = hmm.combined(r, q, h, &pass);
    const double want = reference_dp(r, q, h, {});
    EXPECT_EQ(pass, PairHmmPass::kFloat);
    EXPECT_LE(rel_err(got, want), 1e-5) << got << " vs " << want;
  }
}

HmmTaskBatch random_batch(std::mt19937_64& rng, int n_reads, int n_haps) {
  HmmTaskBatch b;
  std::vector<Seq> haps;
  for (int h = 0; h < n_haps; ++h) {
    haps.push_back(random_seq(rng, 50 + int(rng() % 300), 0.01));
    b.add_haplotype(haps.back().data(), uint32_t(haps.back().size()));
  }
  for (int r = 0; r < n_reads; ++r) {
    const Seq& h = haps[rng() % haps.size()];
    const int len = std::min<int>(int(h.size()), 20 + int(rng() % 150));
    const int start = int(rng() % uint64_t(h.size() - len + 1));
    Seq read = mutate(rng, Seq(h.begin() + start, h.begin() + start + len), r % 7 == 0 ? 0.5 : 0.03);
    const Seq q = random_quals(rng, int(read.size()), 2, 45);
    b.add_read(read.data(), q.data(), uint32_t(read.size()));
  }
  b.add_all_pairs();
  return b;
}

TEST(GenotypeBackend, CpuResultsDoNotDependOnThreads) {
  std::mt19937_64 rng(10);
  const HmmTaskBatch b = random_batch(rng, 120, 6);
  HmmResultBatch one, four;
  make_cpu_genotype_backend(1)->compute(b, {}, one);
  const auto backend4 = make_cpu_genotype_backend(4);
  EXPECT_EQ(backend4->name(), "cpu");
  backend4->compute(b, {}, four);
  ASSERT_EQ(one.size(), b.size());
  ASSERT_EQ(four.size(), b.size());
  EXPECT_EQ(
      std::memcmp(one.log10_likelihood.data(), four.log10_likelihood.data(), one.size() * sizeof(double)), 0);
  EXPECT_EQ(one.pass, four.pass);
  // And equal to direct calls, pair by pair.
  Hmm hmm;
  size_t n_double = 0;
  for (size_t p = 0; p < b.size(); ++p) {
    const uint32_t r = b.read_index[p], h = b.hap_index[p];
    const Seq read(b.read_bases.begin() + b.read_offset[r],
                   b.read_bases.begin() + b.read_offset[r] + b.read_length[r]);
    const Seq q(b.read_quals.begin() + b.read_offset[r],
                b.read_quals.begin() + b.read_offset[r] + b.read_length[r]);
    const Seq hap(b.hap_bases.begin() + b.hap_offset[h],
                  b.hap_bases.begin() + b.hap_offset[h] + b.hap_length[h]);
    PairHmmPass pass = PairHmmPass::kNone;
    const double want = hmm.combined(read, q, hap, &pass);
    ASSERT_EQ(std::memcmp(&want, &one.log10_likelihood[p], sizeof(double)), 0) << p;
    ASSERT_EQ(uint8_t(pass), one.pass[p]);
    n_double += pass == PairHmmPass::kDouble;
  }
  EXPECT_GT(n_double, 0u);  // the batch exercises both passes
}

TEST(GenotypeBackend, RejectsMalformedBatches) {
  const auto backend = make_cpu_genotype_backend(1);
  HmmResultBatch out;
  HmmTaskBatch b;
  const Seq r = encode("ACGT"), q(4, 30);
  b.add_read(r.data(), q.data(), 4);
  b.add_haplotype(r.data(), 4);
  b.add_pair(0, 1);
  EXPECT_THROW(backend->compute(b, {}, out), InputError);
  b.hap_index[0] = 0;
  b.read_quals.pop_back();
  EXPECT_THROW(backend->compute(b, {}, out), InputError);
  b.read_quals.push_back(30);
  backend->compute(b, {}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_LT(out.log10_likelihood[0], 0.0);
  EXPECT_THROW(backend->compute(b, {2.0, 10.0}, out), InputError);
  HmmTaskBatch empty;
  backend->compute(empty, {}, out);
  EXPECT_EQ(out.size(), 0u);
}

// Prints the single-thread throughput for 150 bp reads x 300 bp haplotypes (informational only).
TEST(PairHmm, ThroughputSingleThread) {
  std::mt19937_64 rng(11);
  HmmTaskBatch b;
  std::vector<Seq> haps;
  // Candidate haplotypes of one active region: variants of one sequence.
  const Seq ref = random_seq(rng, 300);
  for (int h = 0; h < 4; ++h) {
    Seq hap = h == 0 ? ref : mutate(rng, ref, 0.01);
    hap.resize(300, 0);
    haps.push_back(hap);
    b.add_haplotype(haps.back().data(), 300);
  }
  for (int r = 0; r < 64; ++r) {
    const Seq& h = haps[r % 4];
    const int start = int(rng() % 150);
    const Seq read = mutate(rng, Seq(h.begin() + start, h.begin() + start + 150), 0.01);
    Seq fixed = read;
    fixed.resize(150, 0);
    const Seq q = random_quals(rng, 150, 20, 40);
    b.add_read(fixed.data(), q.data(), 150);
  }
  b.add_all_pairs();
  const auto backend = make_cpu_genotype_backend(1);
  HmmResultBatch out;
  backend->compute(b, {}, out);  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  int reps = 0;
  double secs = 0.0;
  do {
    backend->compute(b, {}, out);
    ++reps;
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (secs < 0.5);
  size_t n_double = 0;
  for (uint8_t p : out.pass) n_double += p == uint8_t(PairHmmPass::kDouble);
  const double cells = double(reps) * double(b.size()) * 150.0 * 300.0;
  std::cout << "  pair-HMM 150 x 300, 1 thread: " << cells / secs / 1e6 << " M cells/s (" << b.size()
            << " pairs x " << reps << " reps, " << n_double << " double fallbacks per batch)\n";
}

}  // namespace
}  // namespace omicsd
