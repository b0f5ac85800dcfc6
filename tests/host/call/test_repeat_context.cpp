// The tandem-repeat context model (host/call/repeat_context.hpp): detection against a brute-force
// search over every tract, and the gap-open penalties it implies.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "host/call/repeat_context.hpp"
#include "host/common/dna.hpp"

namespace omicsd {
namespace {

std::vector<uint8_t> codes(const std::string& s) {
  std::vector<uint8_t> c;
  for (char b : s) c.push_back(base_code(b));
  return c;
}

// Every [b, e) containing pos, for every period: the longest p-periodic tract of A/C/G/T with at least
// two copies; ties to the shorter period, then the leftmost tract (the same rule, checked naively).
RepeatContext brute_force(const std::vector<uint8_t>& s, int64_t pos, int max_period) {
  RepeatContext best;
  const int64_t n = int64_t(s.size());
  if (s[size_t(pos)] > 3) return best;
  for (int p = 1; p <= max_period; ++p)
    for (int64_t b = 0; b <= pos; ++b)
      for (int64_t e = pos + 1; e <= n; ++e) {
        if (e - b < 2 * p) continue;
        bool periodic = true;
        for (int64_t i = b; i < e && periodic; ++i) periodic = s[size_t(i)] <= 3;
        for (int64_t i = b; i + p < e && periodic; ++i) periodic = s[size_t(i)] == s[size_t(i + p)];
        if (periodic && e - b > best.length()) best = RepeatContext{p, b, e};
      }
  return best;
}

TEST(RepeatContext, KnownTracts) {
  const auto s = codes("GCATATATATGCAAAAAAGCN");
  //                    0123456789012345678901
  RepeatContext at = find_repeat_context(s.data(), int64_t(s.size()), 4);
  EXPECT_EQ(at, (RepeatContext{2, 2, 10}));  // ATATATAT
  EXPECT_EQ(at.units(), 4);
  EXPECT_EQ(repeat_unit(s.data(), at), "AT");
  EXPECT_EQ(find_repeat_context(s.data(), int64_t(s.size()), 14), (RepeatContext{1, 12, 18}));
  // A homopolymer is period 1, not 2 or 3, although it is periodic with those too.
  EXPECT_EQ(find_repeat_context(s.data(), int64_t(s.size()), 13).period, 1);
  // No tract of two copies: G at 0.
  EXPECT_EQ(find_repeat_context(s.data(), int64_t(s.size()), 0).period, 0);
  // N is never part of a repeat.
  EXPECT_EQ(find_repeat_context(s.data(), int64_t(s.size()), 20).period, 0);
  // An indel anchored on the base before a run (padding base 11, event at 12) gets the run's context;
  // one anchored on its last base (17) too.
  EXPECT_EQ(find_indel_repeat_context(s.data(), int64_t(s.size()), 11).period, 1);
  EXPECT_EQ(find_indel_repeat_context(s.data(), int64_t(s.size()), 17).period, 1);
}

TEST(RepeatContext, MatchesBruteForceOnRandomRepetitiveSequence) {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 300; ++trial) {
    // Low-complexity sequence: random units repeated, point changes, the odd N.
    std::string s;
    while (s.size() < 40) {
      const int p = 1 + int(rng() % 4);
      std::string unit;
      for (int i = 0; i < p; ++i) unit.push_back("ACGT"[rng() % (trial % 2 ? 2 : 4)]);
      const int copies = 1 + int(rng() % 5);
      for (int c = 0; c < copies; ++c) s += unit;
      if (rng() % 7 == 0) s.push_back('N');
      if (rng() % 3 == 0) s[rng() % s.size()] = "ACGT"[rng() % 4];
    }
    const auto c = codes(s);
    for (int64_t pos = 0; pos < int64_t(c.size()); ++pos) {
      const RepeatContext want = brute_force(c, pos, kMaxRepeatPeriod);
      const RepeatContext got = find_repeat_context(c.data(), int64_t(c.size()), pos);
      ASSERT_EQ(got.period, want.period) << s << " at " << pos;
      ASSERT_EQ(got.length(), want.length()) << s << " at " << pos;
      // The same length may be reached by two tracts of one period only if they coincide.
      ASSERT_EQ(got, want) << s << " at " << pos;
    }
  }
}

TEST(RepeatContext, GapOpenFallsWithLongerPurerRepeats) {
  EXPECT_EQ(repeat_gap_open(RepeatContext{}), kUniqueGapOpen);
  EXPECT_EQ(repeat_indel_error(RepeatContext{}), 0.0);
  // Below the threshold: unique-sequence penalty.
  EXPECT_EQ(repeat_gap_open(RepeatContext{1, 0, 3}), kUniqueGapOpen);
  EXPECT_EQ(repeat_gap_open(RepeatContext{2, 0, 4}), kUniqueGapOpen);
  // A longer tract of the same period never has a lower per-read error; while the error still grows the
  // per-position penalty falls, and once it saturates the penalty spreads the same error over more
  // positions. Always the rounded -10 log10(error / length), within bounds.
  for (int p = 1; p <= kMaxRepeatPeriod; ++p) {
    int last_gap = kUniqueGapOpen;
    double last_error = 0;
    for (int units = 2; units <= 60; ++units) {
      const RepeatContext rc{p, 0, int64_t(units) * p};
      const int g = repeat_gap_open(rc);
      const double e = repeat_indel_error(rc);
      EXPECT_GE(e, last_error) << p << " x " << units;
      if (e < kMaxRepeatIndelError) EXPECT_LE(g, last_gap) << p << " x " << units;
      if (e > 0)
        EXPECT_EQ(g, std::clamp(int(std::lround(-10 * std::log10(e / double(rc.length())))),
                                kMinRepeatGapOpen, kUniqueGapOpen));
      EXPECT_GE(g, kMinRepeatGapOpen);
      EXPECT_LE(e, kMaxRepeatIndelError);
      last_gap = g;
      last_error = e;
    }
  }
  // A 14-base homopolymer: error 10^(-4 + 10/6), spread over its 14 positions.
  EXPECT_EQ(repeat_gap_open(RepeatContext{1, 0, 14}), 35);
  // A long dinucleotide tract saturates at 5% per read.
  EXPECT_DOUBLE_EQ(repeat_indel_error(RepeatContext{2, 0, 60}), kMaxRepeatIndelError);
  EXPECT_EQ(repeat_gap_open(RepeatContext{2, 0, 60}), 31);
}

// Brute force: a position is covered when some tract of >= min_tract bases and two copies, of a
// period up to 6, contains it.
TEST(RepeatContext, DensityMatchesBruteForce) {
  std::mt19937 rng(777);
  for (int trial = 0; trial < 100; ++trial) {
    std::string s;
    while (s.size() < 60) {
      const int p = 1 + int(rng() % 3);
      std::string unit;
      for (int i = 0; i < p; ++i) unit.push_back("ACGT"[rng() % 4]);
      const int copies = 1 + int(rng() % 6);
      for (int c = 0; c < copies; ++c) s += unit;
      if (rng() % 9 == 0) s.push_back('N');
    }
    const auto c = codes(s);
    const int64_t n = int64_t(c.size());
    const int64_t b = int64_t(rng() % 20), e = n - int64_t(rng() % 20);
    int covered = 0;
    for (int64_t pos = b; pos < e; ++pos) {
      bool in = false;
      for (int p = 1; p <= kMaxRepeatPeriod && !in; ++p)
        for (int64_t tb = 0; tb <= pos && !in; ++tb)
          for (int64_t te = pos + 1; te <= n && !in; ++te) {
            if (te - tb < std::max<int64_t>(kMinDenseTract, 2 * p)) continue;
            bool periodic = true;
            for (int64_t i = tb; i < te && periodic; ++i) periodic = c[size_t(i)] <= 3;
            for (int64_t i = tb; i + p < te && periodic; ++i) periodic = c[size_t(i)] == c[size_t(i + p)];
            in = periodic;
          }
      covered += in;
    }
    ASSERT_DOUBLE_EQ(tandem_repeat_density(c.data(), n, b, e), double(covered) / double(e - b)) << s;
  }
  const auto plain = codes("ACGTTGCAACGGTACCATGA");
  EXPECT_EQ(tandem_repeat_density(plain.data(), 20, 0, 20), 0.0);
  const auto run = codes("ACGAAAAAAAAAACGT");  // 10 A's of 16
  EXPECT_DOUBLE_EQ(tandem_repeat_density(run.data(), 16, 0, 16), 10.0 / 16);
  EXPECT_EQ(tandem_repeat_density(run.data(), 16, 5, 5), 0.0);
}

}  // namespace
}  // namespace omicsd
