// MAPQ model and insert-size estimation: the numbers users read in column 5 and TLEN.
#include <gtest/gtest.h>

#include <random>

#include "host/align/insert_size.hpp"
#include "host/align/mapq.hpp"

namespace omicsd {
namespace {

TEST(Mapq, UniqueHighScoringAlignmentGets60) { EXPECT_EQ(mapq_single_end(150, 20, 0, 150, 150, 1, 4), 60); }

TEST(Mapq, EqualAlternativeGivesZero) {
  EXPECT_EQ(mapq_single_end(140, 140, 1, 150, 150, 1, 4), 0);
  EXPECT_EQ(mapq_single_end(140, 150, 0, 150, 150, 1, 4), 0);
  EXPECT_EQ(mapq_single_end(0, 20, 0, 150, 150, 1, 4), 0);
}

TEST(Mapq, MonotoneInTheScoreGap) {
  int last = -1;
  for (int sub = 140; sub >= 20; sub -= 5) {
    const int q = mapq_single_end(145, sub, 0, 150, 150, 1, 4);
    EXPECT_GE(q, last) << sub;
    last = q;
  }
  // A close second-best (one mismatch apart: 5 points) is low confidence but not zero.
  const int one_mismatch = mapq_single_end(150, 145, 0, 150, 150, 1, 4);
  EXPECT_GT(one_mismatch, 0);
  EXPECT_LT(one_mismatch, 30);
}

TEST(Mapq, MoreEqualAlternativesLowerIt) {
  EXPECT_GT(mapq_single_end(150, 130, 0, 150, 150, 1, 4), mapq_single_end(150, 130, 5, 150, 150, 1, 4));
}

TEST(Mapq, LowIdentityIsDiscounted) {
  // Same score gap, but the second alignment has many mismatches (identity < 95%).
  EXPECT_LT(mapq_single_end(60, 30, 0, 40, 150, 1, 4), mapq_single_end(150, 75, 0, 150, 150, 1, 4));
}

TEST(Mapq, PairConfidence) {
  EXPECT_EQ(mapq_pair(280, 280), 0);
  EXPECT_EQ(mapq_pair(280, 275), 30);
  EXPECT_EQ(mapq_pair(280, 200), 60);
  // Each further pair about as good as the runner-up (another paralog copy) lowers it, as bwa's n_sub.
  EXPECT_EQ(mapq_pair(280, 275, 1), 27);
  EXPECT_LT(mapq_pair(280, 275, 3), mapq_pair(280, 275, 1));
  EXPECT_EQ(mapq_pair(280, 280, 3), 0);
}

TEST(Mapq, ScoreGapIsSixPhredPerPoint) {
  EXPECT_EQ(mapq_score_gap(150, 150), 0);
  EXPECT_EQ(mapq_score_gap(150, 155), 0);
  EXPECT_EQ(mapq_score_gap(150, 145), 30);
  EXPECT_EQ(mapq_score_gap(150, 100), 60);
}

TEST(InsertSize, EstimatesMeanAndSdIgnoringOutliers) {
  std::mt19937 rng(3);
  std::normal_distribution<double> d(350, 40);
  std::vector<int64_t> v;
  for (int i = 0; i < 5000; ++i) v.push_back(int64_t(d(rng)));
  for (int i = 0; i < 100; ++i) v.push_back(50000 + i);  // chimeras / far pairs
  InsertSizeModel m;
  ASSERT_TRUE(m.estimate(v));
  EXPECT_NEAR(m.mean, 350, 3);
  EXPECT_NEAR(m.sd, 40, 3);
  EXPECT_NEAR(double(m.low), 350 - 4 * 40, 15);
  EXPECT_NEAR(double(m.high), 350 + 4 * 40, 15);
}

TEST(InsertSize, TooFewSamplesKeepThePreviousModel) {
  InsertSizeModel m;
  EXPECT_FALSE(m.estimate({300, 310, 320}));
  EXPECT_FALSE(m.estimated);
  std::vector<int64_t> v(100, 400);
  ASSERT_TRUE(m.estimate(v));
  EXPECT_DOUBLE_EQ(m.mean, 400);
  EXPECT_GE(m.sd, 1.0);  // a zero spread is floored so the proper-pair window is not empty
  EXPECT_FALSE(m.estimate({1, 2}));
  EXPECT_DOUBLE_EQ(m.mean, 400);
}

}  // namespace
}  // namespace omicsd
