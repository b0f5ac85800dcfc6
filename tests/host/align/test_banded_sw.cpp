// Tests of the aligner's dynamic programming (host/align/banded_sw.hpp) against references written
// independently here:
//   * an exhaustive enumeration of every alignment (tiny inputs), which is the objective's definition;
//   * a plain full-matrix three-state Gotoh DP (checked against the enumeration, then used for
//     inputs up to 150 x 200);
// plus traceback consistency, hand cases for the tie-breaking rules, and the CPU backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "host/align/align_backend.hpp"
#include "host/align/banded_sw.hpp"
#include "host/align/scoring.hpp"

namespace omicsd {
namespace {

using Seq = std::vector<uint8_t>;

// ---------------------------------------------------------------------------------------------
// Helpers

Seq encode(const std::string& s) {
  Seq out;
  for (char c : s) {
    switch (c) {
      case 'A':
        out.push_back(0);
        break;
      case 'C':
        out.push_back(1);
        break;
      case 'G':
        out.push_back(2);
        break;
      case 'T':
        out.push_back(3);
        break;
      default:
        out.push_back(4);
        break;
    }
  }
  return out;
}

std::string seq_str(const Seq& s) {
  std::string out;
  for (uint8_t b : s) out.push_back("ACGTN"[b > 4 ? 4 : b]);
  return out;
}

std::string cigar_str(const std::vector<uint32_t>& cigar) {
  std::string out;
  for (uint32_t c : cigar) {
    out += std::to_string(c >> 4);
    const uint32_t op = c & 0xf;
    out.push_back(op == kCigarM   ? 'M'
                  : op == kCigarI ? 'I'
                  : op == kCigarD ? 'D'
                  : op == kCigarS ? 'S'
                                  : '?');
  }
  return out;
}

// The reference's own substitution score (deliberately not calling substitution_score()).
int64_t ref_sub(uint8_t a, uint8_t b, const ScoringParams& p) {
  if (a >= 4 || b >= 4) return -int64_t(p.ambiguous);
  return a == b ? p.match : -int64_t(p.mismatch);
}

bool in_band(int64_t i, int64_t j, int lo, int hi) { return j - i >= lo && j - i <= hi; }

struct Banded {
  int32_t objective = kNegInf;
  int32_t bi = 0, bj = 0;
  BandedResult r;
  std::vector<uint32_t> cigar;
};

// Runs the shared recurrence directly, the way the CPU backend does.
Banded run_banded(const Seq& q, const Seq& t, int lo, int hi, const ScoringParams& p) {
  Banded out;
  const int32_t m = int32_t(q.size()), n = int32_t(t.size());
  const int32_t w = band_width(lo, hi);
  if (m == 0 || w <= 0) return out;
  std::vector<int32_t> h(size_t(w) + 1), f(size_t(w) + 1);
  std::vector<uint8_t> dir(size_t(m) * size_t(w));
  out.objective =
      banded_fill(q.data(), m, t.data(), n, lo, hi, p, h.data(), f.data(), dir.data(), &out.bi, &out.bj);
  std::vector<uint32_t> cigar(max_cigar_ops(m), 0xdeadbeefu);
  out.r = banded_traceback(q.data(), m, t.data(), lo, hi, p, dir.data(), out.objective, out.bi, out.bj,
                           cigar.data());
  cigar.resize(out.r.n_cigar);
  out.cigar = cigar;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reference 1: exhaustive enumeration. Every alignment of q[a..b) to t[c..d) that starts and ends
// with an aligned column and whose cells (bases consumed after each column) lie in the band; its
// objective is sum(substitutions) - sum(open + len * extend per gap) - clip5*(a>0) - clip3*(b<m).

constexpr int64_t kRefNeg = -(int64_t(1) << 50);

struct RefResult {
  int64_t objective = kRefNeg;
  int end_i = 0, end_j = 0;  // the end cell the tie rule selects: latest row, then first column
};

// Picks the best end from per-cell best objectives (kRefNeg where no alignment ends there).
RefResult pick_end(const std::vector<std::vector<int64_t>>& end_best, int m, int n) {
  RefResult r;
  for (int i = 1; i <= m; ++i)
    for (int j = 1; j <= n; ++j) r.objective = std::max(r.objective, end_best[i][j]);
  if (r.objective == kRefNeg) return r;
  for (int i = m; i >= 1 && r.end_i == 0; --i)
    for (int j = 1; j <= n; ++j)
      if (end_best[i][j] == r.objective) {
        r.end_i = i;
        r.end_j = j;
        break;
      }
  return r;
}

class Enumerator {
 public:
  Enumerator(const Seq& q, const Seq& t, int lo, int hi, const ScoringParams& p)
      : q_(q),
        t_(t),
        lo_(lo),
        hi_(hi),
        p_(p),
        m_(int(q.size())),
        n_(int(t.size())),
        end_best_(size_t(m_) + 1, std::vector<int64_t>(size_t(n_) + 1, kRefNeg)) {}

  RefResult run() {
    for (int a = 0; a < m_; ++a)
      for (int c = 0; c < n_; ++c)
        if (in_band(a + 1, c + 1, lo_, hi_)) {
          start_ = a;
          dfs(a + 1, c + 1, ref_sub(q_[a], t_[c], p_), 'M');
        }
    return pick_end(end_best_, m_, n_);
  }
  uint64_t alignments() const { return count_; }

 private:
  void dfs(int i, int j, int64_t score, char last) {
    if (last == 'M') {
      ++count_;
      const int64_t obj = score - (start_ > 0 ? p_.clip5 : 0) - (i < m_ ? p_.clip3 : 0);
      end_best_[i][j] = std::max(end_best_[i][j], obj);
    }
    const int64_t open = p_.gap_open + p_.gap_extend;
    if (i < m_ && j < n_ && in_band(i + 1, j + 1, lo_, hi_))
      dfs(i + 1, j + 1, score + ref_sub(q_[i], t_[j], p_), 'M');
    if (i < m_ && in_band(i + 1, j, lo_, hi_))
      dfs(i + 1, j, score - (last == 'I' ? p_.gap_extend : open), 'I');
    if (j < n_ && in_band(i, j + 1, lo_, hi_))
      dfs(i, j + 1, score - (last == 'D' ? p_.gap_extend : open), 'D');
  }

  const Seq& q_;
  const Seq& t_;
  int lo_, hi_;
  const ScoringParams& p_;
  int m_, n_;
  int start_ = 0;
  uint64_t count_ = 0;
  std::vector<std::vector<int64_t>> end_best_;
};

// ---------------------------------------------------------------------------------------------
// Reference 2: full (m+1) x (n+1) three-state Gotoh, no band storage tricks: Mx/Dx/Ix(i,j) = best
// score (clip5 included, clip3 not) of an alignment whose last column is M / D / I and ends at (i,j).

RefResult reference_dp(const Seq& q, const Seq& t, int lo, int hi, const ScoringParams& p) {
  const int m = int(q.size()), n = int(t.size());
  const int64_t open = p.gap_open + p.gap_extend, ext = p.gap_extend;
  std::vector<std::vector<int64_t>> M(m + 1, std::vector<int64_t>(n + 1, kRefNeg)), D = M, I = M,
                                                                                    end_best = M;
  for (int i = 1; i <= m; ++i) {
    for (int j = 1; j <= n; ++j) {
      if (!in_band(i, j, lo, hi)) continue;
      // M: start here (q[i-1] is the first aligned base) or continue from any state at (i-1, j-1).
      int64_t prev = (i - 1 > 0) ? -int64_t(p.clip5) : 0;
      prev = std::max({prev, M[i - 1][j - 1], D[i - 1][j - 1], I[i - 1][j - 1]});
      M[i][j] = prev + ref_sub(q[i - 1], t[j - 1], p);
      // D: consume t[j-1] only; I: consume q[i-1] only. A gap never starts an alignment.
      D[i][j] = std::max({M[i][j - 1] - open, I[i][j - 1] - open, D[i][j - 1] - ext});
      I[i][j] = std::max({M[i - 1][j] - open, D[i - 1][j] - open, I[i - 1][j] - ext});
      D[i][j] = std::max(D[i][j], kRefNeg);
      I[i][j] = std::max(I[i][j], kRefNeg);
      end_best[i][j] = M[i][j] - (i < m ? p.clip3 : 0);
    }
  }
  return pick_end(end_best, m, n);
}

// ---------------------------------------------------------------------------------------------
// Traceback consistency: re-scores the CIGAR independently and checks every structural property.

void check_traceback(const Seq& q, const Seq& t, int lo, int hi, const ScoringParams& p, const Banded& b,
                     const std::string& ctx) {
  SCOPED_TRACE(ctx + " cigar=" + cigar_str(b.cigar));
  const int m = int(q.size()), n = int(t.size());
  if (b.objective == kNegInf) {
    EXPECT_EQ(b.r.score, kNegInf);
    EXPECT_EQ(b.r.n_cigar, 0u);
    return;
  }
  ASSERT_GT(b.r.n_cigar, 0u);
  ASSERT_LE(b.r.n_cigar, max_cigar_ops(m));
  EXPECT_EQ(b.r.objective, b.objective);
  EXPECT_EQ(b.r.qend, b.bi);
  EXPECT_EQ(b.r.tend, b.bj);
  std::vector<uint32_t> ops, lens;
  for (uint32_t c : b.cigar) {
    ops.push_back(c & 0xf);
    lens.push_back(c >> 4);
    ASSERT_GT(c >> 4, 0u) << "zero-length op";
    const uint32_t op = c & 0xf;
    ASSERT_TRUE(op == kCigarM || op == kCigarI || op == kCigarD || op == kCigarS) << "op " << op;
  }
  for (size_t k = 1; k < ops.size(); ++k) EXPECT_NE(ops[k], ops[k - 1]) << "adjacent equal ops at " << k;
  size_t first = 0, last = ops.size();
  uint32_t clip_front = 0, clip_back = 0;
  if (ops[first] == kCigarS) clip_front = lens[first++];
  if (last > first && ops[last - 1] == kCigarS) clip_back = lens[--last];
  ASSERT_LT(first, last) << "CIGAR with only clips";
  EXPECT_EQ(ops[first], kCigarM) << "first op after clip is not M";
  EXPECT_EQ(ops[last - 1], kCigarM) << "last op before clip is not M";
  for (size_t k = first; k < last; ++k) EXPECT_NE(ops[k], kCigarS) << "S in the middle";
  EXPECT_EQ(int(clip_front), b.r.qbeg);
  EXPECT_EQ(m - int(clip_back), b.r.qend);
  ASSERT_GE(b.r.tbeg, 0);
  ASSERT_LE(b.r.tend, n);
  ASSERT_LE(b.r.qbeg, b.r.qend);
  int64_t i = b.r.qbeg, j = b.r.tbeg, raw = 0;
  for (size_t k = first; k < last; ++k) {
    const uint32_t op = ops[k], len = lens[k];
    if (op == kCigarI || op == kCigarD) raw -= int64_t(p.gap_open) + int64_t(len) * p.gap_extend;
    for (uint32_t x = 0; x < len; ++x) {
      if (op == kCigarM) {
        ASSERT_LT(i, m);
        ASSERT_LT(j, n);
        raw += ref_sub(q[size_t(i)], t[size_t(j)], p);
        ++i;
        ++j;
      } else if (op == kCigarI) {
        ++i;
      } else {
        ++j;
      }
      ASSERT_TRUE(i >= 1 && i <= m && j >= 1 && j <= n) << "cell (" << i << "," << j << ") off the matrix";
      ASSERT_TRUE(in_band(i, j, lo, hi))
          << "cell (" << i << "," << j << ") outside band [" << lo << "," << hi << "]";
    }
  }
  EXPECT_EQ(i, b.r.qend);
  EXPECT_EQ(j, b.r.tend);
  EXPECT_EQ(raw, b.r.score) << "re-scored CIGAR differs from score";
  const int64_t clips = (b.r.qbeg > 0 ? p.clip5 : 0) + (b.r.qend < m ? p.clip3 : 0);
  EXPECT_EQ(int64_t(b.r.score) - int64_t(b.r.objective), clips);
}

// ---------------------------------------------------------------------------------------------
// Random inputs

uint8_t random_base(std::mt19937_64& rng, double n_rate) {
  std::uniform_real_distribution<double> u(0, 1);
  if (u(rng) < n_rate) return 4;
  return uint8_t(rng() % 4);
}

Seq random_seq(std::mt19937_64& rng, int len, double n_rate) {
  Seq s(static_cast<size_t>(len));
  for (auto& b : s) b = random_base(rng, n_rate);
  return s;
}

// A read drawn from t (substitutions, small indels, sometimes a random prefix/suffix) or random.
Seq derive_query(std::mt19937_64& rng, const Seq& t, int m, double n_rate) {
  std::uniform_real_distribution<double> u(0, 1);
  if (u(rng) < 0.25 || t.empty()) return random_seq(rng, m, n_rate);
  Seq q;
  size_t pos = rng() % t.size();
  const double sub = u(rng) * 0.2, indel = u(rng) * 0.08;
  if (u(rng) < 0.2) {
    const Seq junk = random_seq(rng, int(rng() % 5), n_rate);
    q.insert(q.end(), junk.begin(), junk.end());
  }
  while (int(q.size()) < m) {
    if (pos >= t.size()) {
      q.push_back(random_base(rng, n_rate));
      continue;
    }
    const double x = u(rng);
    if (x < indel / 2) {
      pos += 1 + rng() % 3;  // deletion
    } else if (x < indel) {
      for (int k = int(1 + rng() % 3); k > 0 && int(q.size()) < m; --k) q.push_back(random_base(rng, n_rate));
    } else if (x < indel + sub) {
      q.push_back(random_base(rng, n_rate));
      ++pos;
    } else {
      q.push_back(t[pos++]);
    }
  }
  return q;
}

void random_band(std::mt19937_64& rng, int m, int n, int* lo, int* hi) {
  const int kind = int(rng() % 6);
  if (kind == 0) {  // everything
    *lo = 1 - m;
    *hi = n - 1;
  } else if (kind == 1) {  // misses the target entirely (right or left of it)
    if (rng() % 2) {
      *lo = n + int(rng() % 4);
      *hi = *lo + int(rng() % 6);
    } else {
      *hi = -m - int(rng() % 4);
      *lo = *hi - int(rng() % 6);
    }
  } else if (kind == 2) {  // narrow
    *lo = int(rng() % uint64_t(m + n + 6)) - m - 3;
    *hi = *lo + int(rng() % 4);
  } else {
    *lo = int(rng() % uint64_t(m + n + 6)) - m - 3;
    *hi = *lo + int(rng() % uint64_t(m + n + 4));
  }
}

ScoringParams random_params(std::mt19937_64& rng) {
  ScoringParams p;
  p.match = 1 + int(rng() % 3);
  p.mismatch = 1 + int(rng() % 6);
  p.gap_open = int(rng() % 8);
  p.gap_extend = 1 + int(rng() % 3);
  p.clip5 = int(rng() % 12);
  p.clip3 = int(rng() % 12);
  p.ambiguous = int(rng() % 3);
  return p;
}

std::string describe(const Seq& q, const Seq& t, int lo, int hi, const ScoringParams& p) {
  std::ostringstream os;
  os << "q=" << seq_str(q) << " t=" << seq_str(t) << " lo=" << lo << " hi=" << hi
     << " params{match=" << p.match << " mismatch=" << p.mismatch << " open=" << p.gap_open
     << " ext=" << p.gap_extend << " clip5=" << p.clip5 << " clip3=" << p.clip3 << " amb=" << p.ambiguous
     << "}";
  return os.str();
}

// Compares the banded aligner with a reference result; returns false (with a failure) on mismatch.
bool compare_with_reference(const Seq& q, const Seq& t, int lo, int hi, const ScoringParams& p,
                            const RefResult& ref, const char* ref_name) {
  const Banded b = run_banded(q, t, lo, hi, p);
  const std::string ctx = describe(q, t, lo, hi, p);
  const int64_t expect_obj = ref.objective == kRefNeg ? int64_t(kNegInf) : ref.objective;
  EXPECT_EQ(int64_t(b.objective), expect_obj) << ref_name << ": " << ctx;
  if (ref.objective != kRefNeg) {
    EXPECT_EQ(b.bi, ref.end_i) << "end row, " << ref_name << ": " << ctx;
    EXPECT_EQ(b.bj, ref.end_j) << "end column, " << ref_name << ": " << ctx;
  }
  check_traceback(q, t, lo, hi, p, b, ctx);
  return !::testing::Test::HasFailure();
}

// ---------------------------------------------------------------------------------------------
// 1. Brute force

// The full-matrix reference agrees with the exhaustive definition (so it can stand in for it on
// bigger inputs), and the banded aligner agrees with both.
TEST(BandedSw, MatchesExhaustiveEnumerationOnTinyInputs) {
  std::mt19937_64 rng(12345);
  int cases = 0, with_alignment = 0;
  uint64_t alignments = 0;
  for (int it = 0; it < 10000; ++it) {
    const int m = 1 + int(rng() % 7), n = 1 + int(rng() % 8);
    const Seq t = random_seq(rng, n, 0.08);
    const Seq q = derive_query(rng, t, m, 0.08);
    int lo, hi;
    random_band(rng, m, n, &lo, &hi);
    const ScoringParams p = (it % 3 == 0) ? random_params(rng) : ScoringParams{};
    Enumerator e(q, t, lo, hi, p);
    const RefResult brute = e.run();
    alignments += e.alignments();
    const RefResult dp = reference_dp(q, t, lo, hi, p);
    ASSERT_EQ(dp.objective, brute.objective) << "reference DP vs enumeration: " << describe(q, t, lo, hi, p);
    ASSERT_EQ(dp.end_i, brute.end_i) << describe(q, t, lo, hi, p);
    ASSERT_EQ(dp.end_j, brute.end_j) << describe(q, t, lo, hi, p);
    ASSERT_TRUE(compare_with_reference(q, t, lo, hi, p, brute, "enumeration"));
    ++cases;
    with_alignment += brute.objective != kRefNeg;
  }
  std::cout << "[ info ] " << cases << " tiny cases (" << with_alignment << " with an alignment, "
            << alignments << " alignments enumerated)\n";
}

TEST(BandedSw, MatchesFullMatrixDpOnSmallRandomInputs) {
  std::mt19937_64 rng(777);
  int cases = 0, with_alignment = 0;
  for (int it = 0; it < 20000; ++it) {
    const int m = 1 + int(rng() % 30), n = 1 + int(rng() % 30);
    const Seq t = random_seq(rng, n, 0.05);
    const Seq q = derive_query(rng, t, m, 0.05);
    int lo, hi;
    random_band(rng, m, n, &lo, &hi);
    const ScoringParams p = (it % 4 == 0) ? random_params(rng) : ScoringParams{};
    const RefResult ref = reference_dp(q, t, lo, hi, p);
    ASSERT_TRUE(compare_with_reference(q, t, lo, hi, p, ref, "full DP"));
    ++cases;
    with_alignment += ref.objective != kRefNeg;
  }
  std::cout << "[ info ] " << cases << " small cases (" << with_alignment << " with an alignment)\n";
}

TEST(BandedSw, MatchesFullMatrixDpOnMediumInputs) {
  std::mt19937_64 rng(4242);
  int cases = 0;
  for (int it = 0; it < 300; ++it) {
    const int m = 150, n = 200;
    const Seq t = random_seq(rng, n, 0.01);
    // A read placed at a known offset with substitutions and indels.
    std::uniform_real_distribution<double> u(0, 1);
    Seq q;
    const int offset = int(rng() % 40);
    size_t pos = size_t(offset);
    while (int(q.size()) < m) {
      const double x = u(rng);
      if (pos >= t.size()) {
        q.push_back(random_base(rng, 0.01));
      } else if (x < 0.01) {
        pos += 1 + rng() % 6;
      } else if (x < 0.02) {
        for (int k = int(1 + rng() % 6); k > 0 && int(q.size()) < m; --k) q.push_back(random_base(rng, 0.01));
      } else if (x < 0.07) {
        q.push_back(uint8_t((t[pos++] + 1 + rng() % 3) % 4));
      } else {
        q.push_back(t[pos++]);
      }
    }
    if (it % 5 == 1) {  // a chimeric tail that should be clipped
      for (int k = 0; k < 30; ++k) q[size_t(m - 1 - k)] = random_base(rng, 0.0);
    }
    int lo, hi;
    switch (it % 4) {
      case 0:
        lo = 1 - m;
        hi = n - 1;
        break;  // everything: plain full Gotoh
      case 1:
        lo = offset - 20;
        hi = offset + 20;
        break;  // typical seeded band
      case 2:
        lo = offset - 3;
        hi = offset + 3;
        break;  // too narrow for some indels
      default:
        random_band(rng, m, n, &lo, &hi);
        break;
    }
    const ScoringParams p = (it % 3 == 2) ? random_params(rng) : ScoringParams{};
    const RefResult ref = reference_dp(q, t, lo, hi, p);
    ASSERT_TRUE(compare_with_reference(q, t, lo, hi, p, ref, "full DP (medium)"));
    ++cases;
  }
  std::cout << "[ info ] " << cases << " medium cases (m=150, n=200)\n";
}

// ---------------------------------------------------------------------------------------------
// 3. Hand cases

struct Fixture {
  Seq t;
  explicit Fixture(uint64_t seed, int n = 400) {
    std::mt19937_64 rng(seed);
    t = random_seq(rng, n, 0.0);
  }
};

Banded align_checked(const Seq& q, const Seq& t, int lo, int hi, const ScoringParams& p = {}) {
  Banded b = run_banded(q, t, lo, hi, p);
  check_traceback(q, t, lo, hi, p, b, describe(q, t, lo, hi, p));
  return b;
}

TEST(BandedSw, ExactMatchScoresLengthWithoutClips) {
  const Fixture f(1);
  const Seq q(f.t.begin() + 100, f.t.begin() + 200);
  const Banded b = align_checked(q, f.t, 95, 105);
  EXPECT_EQ(b.r.score, 100);
  EXPECT_EQ(b.r.objective, 100);
  EXPECT_EQ(cigar_str(b.cigar), "100M");
  EXPECT_EQ(b.r.qbeg, 0);
  EXPECT_EQ(b.r.qend, 100);
  EXPECT_EQ(b.r.tbeg, 100);
  EXPECT_EQ(b.r.tend, 200);
}

TEST(BandedSw, MutatedEndsAreSoftClipped) {
  const Fixture f(2);
  const ScoringParams p;
  Seq q3(f.t.begin() + 100, f.t.begin() + 200);
  for (int k = 90; k < 100; ++k) q3[size_t(k)] = uint8_t(3 - q3[size_t(k)]);  // complement: always a mismatch
  const Banded b3 = align_checked(q3, f.t, 90, 110);
  EXPECT_EQ(cigar_str(b3.cigar), "90M10S");
  EXPECT_EQ(b3.r.score, 90);
  EXPECT_EQ(b3.r.objective, 90 - p.clip3);
  EXPECT_EQ(b3.r.tbeg, 100);
  EXPECT_EQ(b3.r.tend, 190);

  Seq q5(f.t.begin() + 100, f.t.begin() + 200);
  for (int k = 0; k < 10; ++k) q5[size_t(k)] = uint8_t(3 - q5[size_t(k)]);
  const Banded b5 = align_checked(q5, f.t, 90, 110);
  EXPECT_EQ(cigar_str(b5.cigar), "10S90M");
  EXPECT_EQ(b5.r.score, 90);
  EXPECT_EQ(b5.r.objective, 90 - p.clip5);
  EXPECT_EQ(b5.r.qbeg, 10);
  EXPECT_EQ(b5.r.tbeg, 110);
  EXPECT_EQ(b5.r.tend, 200);

  // One mismatch at the end is cheaper than clipping (-4 vs -1-5); two are not (-8 vs -2-5).
  Seq q1(f.t.begin() + 100, f.t.begin() + 200);
  q1[99] = uint8_t(3 - q1[99]);
  EXPECT_EQ(cigar_str(align_checked(q1, f.t, 90, 110).cigar), "100M");
  q1[98] = uint8_t(3 - q1[98]);
  EXPECT_EQ(cigar_str(align_checked(q1, f.t, 90, 110).cigar), "98M2S");
}

// Makes base `b` differ from `avoid1` and `avoid2`.
uint8_t other_base(uint8_t avoid1, uint8_t avoid2) {
  for (uint8_t b = 0; b < 4; ++b)
    if (b != avoid1 && b != avoid2) return b;
  return 0;
}

TEST(BandedSw, DeletionAndInsertionInARead) {
  Fixture f(3);
  Seq& t = f.t;
  const ScoringParams p;
  // Make the 3 bp deletion t[150..153) unambiguous: it cannot slide left (t[149] != t[152]) or right
  // (t[150] != t[153]).
  t[152] = other_base(t[149], t[149]);
  t[153] = other_base(t[150], t[150]);
  Seq qd(t.begin() + 100, t.begin() + 150);
  qd.insert(qd.end(), t.begin() + 153, t.begin() + 203);
  const Banded bd = align_checked(qd, t, 80, 120);
  EXPECT_EQ(cigar_str(bd.cigar), "50M3D50M");
  EXPECT_EQ(bd.r.score, 100 - (p.gap_open + 3 * p.gap_extend));
  EXPECT_EQ(bd.r.objective, bd.r.score);
  EXPECT_EQ(bd.r.tbeg, 100);
  EXPECT_EQ(bd.r.tend, 203);

  // A 2 bp insertion XY after q[49] = t[149]: unambiguous when Y != t[149] and X != t[150].
  Seq qi(t.begin() + 100, t.begin() + 150);
  const uint8_t x = other_base(t[150], t[150]), y = other_base(t[149], x);
  qi.push_back(x);
  qi.push_back(y);
  qi.insert(qi.end(), t.begin() + 150, t.begin() + 200);
  ASSERT_EQ(qi.size(), 102u);
  const Banded bi = align_checked(qi, t, 80, 120);
  EXPECT_EQ(cigar_str(bi.cigar), "50M2I50M");
  EXPECT_EQ(bi.r.score, 100 - (p.gap_open + 2 * p.gap_extend));
  EXPECT_EQ(bi.r.tbeg, 100);
  EXPECT_EQ(bi.r.tend, 200);

  // The same deletion outside a too-narrow band cannot be aligned through: the read is clipped.
  const Banded narrow = align_checked(qd, t, 100, 101);
  EXPECT_EQ(narrow.r.tbeg, 100);
  EXPECT_NE(cigar_str(narrow.cigar), "50M3D50M");
  EXPECT_LT(narrow.r.objective, bd.r.objective);
}

// Header: "M before E before F" in H means the traceback takes the diagonal whenever it ties with a
// gap, so a gap that can slide along a homopolymer ends up at its leftmost position.
TEST(BandedSw, HomopolymerIndelsArePlacedLeftmost) {
  const Seq left = encode("ACGTTCAGCATCGATCGACTTACAGCAT");   // ends in T
  const Seq right = encode("TCAGCTAGCATGCATCGATCAGCTACAC");  // starts with T
  auto cat = [&](int gs) {
    Seq s = left;
    s.insert(s.end(), size_t(gs), uint8_t(2));
    s.insert(s.end(), right.begin(), right.end());
    return s;
  };
  const Seq t = cat(5);
  const int L = int(left.size()), R = int(right.size());
  const ScoringParams p;
  const Banded del = align_checked(cat(4), t, -5, 5);
  EXPECT_EQ(cigar_str(del.cigar), std::to_string(L) + "M1D" + std::to_string(4 + R) + "M");
  EXPECT_EQ(del.r.score, L + 4 + R - (p.gap_open + p.gap_extend));
  const Banded del2 = align_checked(cat(3), t, -5, 5);
  EXPECT_EQ(cigar_str(del2.cigar), std::to_string(L) + "M2D" + std::to_string(3 + R) + "M");
  const Banded ins = align_checked(cat(6), t, -5, 5);
  EXPECT_EQ(cigar_str(ins.cigar), std::to_string(L) + "M1I" + std::to_string(5 + R) + "M");
  EXPECT_EQ(ins.r.score, L + 5 + R - (p.gap_open + p.gap_extend));
  // Dinucleotide repeat: CA CA CA vs CA CA CA CA.
  const Seq tr = encode("GATTACAGGTCTCACACACATTGGCCTAAGTCCGATT");
  const Seq qr = encode("GATTACAGGTCTCACACATTGGCCTAAGTCCGATT");
  const Banded rep = align_checked(qr, tr, -4, 4);
  // Leftmost placement of the 2 bp deletion: right after "GATTACAGGTCT" (12 bases).
  EXPECT_EQ(cigar_str(rep.cigar), "12M2D23M");
}

// Header: among equal end cells the latest row wins (align to the read end rather than clip when it
// ties), then the first column; continuing beats restarting (no 5' clip when it ties).
TEST(BandedSw, EndAndStartTiesFollowTheHeaderRules) {
  // 3' side, last base mismatched: aligning through scores (m-1) - mismatch, clipping it (m-1) - clip3.
  ScoringParams p;
  p.mismatch = 3;
  p.clip3 = 3;
  const Seq t = encode("ACGTTGCAAGGCTTAC");
  Seq q = t;
  q.back() = uint8_t(3 - q.back());
  const int m = int(q.size());
  Banded b = align_checked(q, t, -2, 2, p);
  EXPECT_EQ(b.r.objective, (m - 1) - 3);
  EXPECT_EQ(cigar_str(b.cigar), std::to_string(m) + "M")
      << "tie between 3' clip and mismatch: latest row wins";
  EXPECT_EQ(b.r.score, (m - 1) - 3);

  // 5' side, first base mismatched: M(1,1) = -3, then M(2,2) = max(H(1,1) = -3, S(1) = -clip5 = -3) + 1,
  // a tie between continuing and restarting.
  ScoringParams p5;
  p5.mismatch = 3;
  p5.clip5 = 3;
  Seq q5 = t;
  q5.front() = uint8_t(3 - q5.front());
  b = align_checked(q5, t, -2, 2, p5);
  EXPECT_EQ(b.r.objective, (m - 1) - 3);
  EXPECT_EQ(cigar_str(b.cigar), std::to_string(m) + "M") << "tie between restart and continue: continue wins";
  EXPECT_EQ(b.r.qbeg, 0);

  // First column among equal end cells in the same row: ACGT occurs twice in the target.
  const Seq t2 = encode("ACGTTTACGT");
  const Seq q2 = encode("ACGT");
  b = align_checked(q2, t2, 1 - 4, 10 - 1);
  EXPECT_EQ(cigar_str(b.cigar), "4M");
  EXPECT_EQ(b.r.tbeg, 0);
  EXPECT_EQ(b.r.tend, 4);
}

// Header: "gap open before extend". Both reads below have two optimal alignments that differ only in
// whether a gap cell opens a new gap or extends the one before it; the rule picks the open.
TEST(BandedSw, GapOpenBeatsExtendOnTies) {
  ScoringParams p;
  p.gap_open = 1;
  p.gap_extend = 1;
  p.mismatch = 4;
  // Insertions: 1M2I1M1I2M and 1M1I1M2I2M both score 4 - (1+2) - (1+1) = -1 on t[3..7).
  const Seq q1 = encode("AACCAAC"), t1 = encode("CCCACAC");
  Banded b = align_checked(q1, t1, 1 - 7, 7 - 1, p);
  EXPECT_EQ(b.r.score, -1);
  EXPECT_EQ(cigar_str(b.cigar), "1M2I1M1I2M");
  EXPECT_EQ(b.r.tbeg, 3);
  // Deletions: 3M3D4M from t[0] (7 - (1 + 3*2) = 0) ties with 3M1D4M from t[2] (-3+1+1 - 3 + 4 = 0);
  // at the deletion's cell the open (from the mismatching start) beats extending the longer gap.
  p.gap_extend = 2;
  p.mismatch = 3;
  const Seq q2 = encode("CAACCCA"), t2 = encode("CAAAACCCCA");
  b = align_checked(q2, t2, 1 - 7, 10 - 1, p);
  EXPECT_EQ(b.r.score, 0);
  EXPECT_EQ(cigar_str(b.cigar), "3M1D4M");
  EXPECT_EQ(b.r.tbeg, 2);
}

// Regression: the end is the best M cell even where a gap scores more in that cell. With a large
// clip3, ending on the read's last base through a mismatch beats ending earlier and clipping, although
// H there is an insertion (A aligned, C inserted: 1 - 7 = -6 > M = -5 - 4 = -9). The first version
// of banded_fill only considered cells whose H came from M and returned 1M1S (objective 1 - 20).
TEST(BandedSw, EndCellIsAnMCellEvenWhereAGapScoresMore) {
  ScoringParams p;
  p.clip3 = 20;
  Banded b = align_checked(encode("AC"), encode("A"), -1, 0, p);
  EXPECT_EQ(b.r.objective, -p.clip5 - p.mismatch);
  EXPECT_EQ(cigar_str(b.cigar), "1S1M");
  EXPECT_EQ(b.r.score, -p.mismatch);
  // The same with the end reached by continuing: 2M (-4 - 4) beats 1S1M (-5 - 4) and 1M1S (1 - 10).
  p.clip3 = 10;
  b = align_checked(encode("AG"), encode("CA"), -1, 1, p);
  EXPECT_EQ(b.r.objective, -2 * p.mismatch);
  EXPECT_EQ(cigar_str(b.cigar), "2M");
  EXPECT_EQ(b.r.tbeg, 0);
}

TEST(BandedSw, NoAlignmentWhenTheBandMissesTheTarget) {
  const Seq t = encode("ACGTACGT"), q = encode("ACGT");
  for (auto [lo, hi] : {std::pair{8, 12}, std::pair{-20, -4}, std::pair{3, 2}}) {
    const Banded b = run_banded(q, t, lo, hi, ScoringParams{});
    EXPECT_EQ(b.objective, kNegInf) << lo << "," << hi;
    EXPECT_EQ(b.r.score, kNegInf);
    EXPECT_EQ(b.r.n_cigar, 0u);
  }
  // A band of one diagonal touching only the target's last base.
  const Banded b = align_checked(q, t, 7, 7);
  EXPECT_EQ(cigar_str(b.cigar), "1M3S");
  EXPECT_EQ(b.r.tbeg, 7);
}

// ---------------------------------------------------------------------------------------------
// 4. CPU backend == direct calls

TEST(BandedSw, CpuBackendMatchesDirectCalls) {
  std::mt19937_64 rng(99);
  AlignTaskBatch tasks;
  std::vector<Banded> direct;
  const ScoringParams p;
  for (int it = 0; it < 2000; ++it) {
    const int m = (it % 97 == 0) ? 0 : 1 + int(rng() % 160), n = 1 + int(rng() % 220);
    const Seq t = random_seq(rng, n, 0.02);
    const Seq q = m == 0 ? Seq{} : derive_query(rng, t, m, 0.02);
    int lo, hi;
    if (it % 101 == 0) {
      lo = 5;
      hi = 2;  // empty band
    } else if (m > 0 && it % 3 != 0) {
      random_band(rng, m, n, &lo, &hi);
    } else {
      lo = int(rng() % 60) - 30;
      hi = lo + int(rng() % 40);
    }
    tasks.add(q.data(), uint32_t(q.size()), t.data(), uint32_t(t.size()), lo, hi);
    direct.push_back(run_banded(q, t, lo, hi, p));
  }
  for (int threads : {1, 4}) {
    SCOPED_TRACE("threads=" + std::to_string(threads));
    auto backend = make_cpu_align_backend(threads);
    EXPECT_EQ(backend->name(), "cpu");
    AlignResultBatch out;
    out.score.assign(7, 123);  // stale contents must be replaced
    backend->align(tasks, p, out);
    ASSERT_EQ(out.size(), tasks.size());
    ASSERT_EQ(out.cigar_offset.size(), tasks.size());
    ASSERT_EQ(out.cigar_length.size(), tasks.size());
    std::vector<uint32_t> expect_cigar;
    for (size_t i = 0; i < tasks.size(); ++i) {
      const Banded& d = direct[i];
      ASSERT_EQ(out.score[i], d.r.score) << i;
      ASSERT_EQ(out.objective[i], d.r.objective) << i;
      ASSERT_EQ(out.query_begin[i], d.r.qbeg) << i;
      ASSERT_EQ(out.query_end[i], d.r.qend) << i;
      ASSERT_EQ(out.target_begin[i], d.r.tbeg) << i;
      ASSERT_EQ(out.target_end[i], d.r.tend) << i;
      ASSERT_EQ(out.cigar_offset[i], expect_cigar.size()) << i;
      ASSERT_EQ(out.cigar_length[i], d.cigar.size()) << i;
      expect_cigar.insert(expect_cigar.end(), d.cigar.begin(), d.cigar.end());
    }
    EXPECT_EQ(out.cigar, expect_cigar);
  }
  // And the two thread counts agree bit for bit with each other.
  AlignResultBatch a, b;
  make_cpu_align_backend(1)->align(tasks, p, a);
  make_cpu_align_backend(4)->align(tasks, p, b);
  EXPECT_EQ(a.score, b.score);
  EXPECT_EQ(a.objective, b.objective);
  EXPECT_EQ(a.cigar, b.cigar);
  EXPECT_EQ(a.cigar_offset, b.cigar_offset);
}

}  // namespace
}  // namespace omicsd
