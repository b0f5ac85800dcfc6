// The device algorithms, proven on the CPU: the SIMT lane layer's emulation (host/common/simt.hpp)
// against the CUDA semantics it stands for, and the warp-cooperative kernels that the CUDA backends
// launch (host/align/banded_warp.hpp, host/call/pair_hmm_warp.hpp), run here through that emulation
// by the lane-vector CPU backends, against the scalar recurrences (the CPU backends): scores,
// coordinates, CIGAR words and likelihood bit patterns identical on property tests (random tasks with
// reads up to 1,000 bp, bands up to 256 and beyond, extreme scoring parameters, empty and one-base
// reads) and on the real reads of ../shared/data.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <random>
#include <vector>

#include "host/align/align_backend.hpp"
#include "host/align/banded_warp.hpp"
#include "host/call/genotype_backend.hpp"
#include "host/call/pair_hmm_warp.hpp"
#include "host/common/simt.hpp"
#include "host/io/reference.hpp"
#include "tests/support/kernel_cases.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
using namespace omicsd::test;

// ---------------------------------------------------------------------------------------------
// The lane layer

simt::Lanes<int32_t> iota_lanes(int32_t base) {
  simt::Lanes<int32_t> x;
  for (int l = 0; l < simt::kWarpSize; ++l) x[l] = base + l;
  return x;
}

template <int W>
void check_group_shuffles() {
  const simt::Lanes<int32_t> x = iota_lanes(100);
  const simt::Lanes<int32_t> up = simt::shfl_rotate_up<W>(x);
  for (int l = 0; l < simt::kWarpSize; ++l) {
    const int group = l / W * W, lane = l % W;
    EXPECT_EQ(up[l], 100 + group + (lane + W - 1) % W) << "rotate W=" << W << " lane " << l;
  }
  for (int mask = 1; mask < simt::kWarpSize; mask <<= 1) {
    const simt::Lanes<int32_t> xr = simt::shfl_xor<W>(x, mask);
    for (int l = 0; l < simt::kWarpSize; ++l) {
      // __shfl_xor_sync: a source outside the caller's group of W lanes reads the caller's own value.
      const int src = (l ^ mask) / W == l / W ? (l ^ mask) : l;
      EXPECT_EQ(xr[l], 100 + src) << "xor W=" << W << " mask " << mask << " lane " << l;
    }
  }
  simt::Lanes<int> src;
  for (int l = 0; l < simt::kWarpSize; ++l) src[l] = (l * 7 + 3) % 40;  // some past the width: modulo W
  const simt::Lanes<int32_t> xi = simt::shfl_idx<W>(x, src);
  for (int l = 0; l < simt::kWarpSize; ++l) EXPECT_EQ(xi[l], 100 + l / W * W + src[l] % W) << "idx W=" << W;
}

TEST(SimtLanes, ShufflesFollowCudaSemantics) {
  check_group_shuffles<1>();
  check_group_shuffles<4>();
  check_group_shuffles<8>();
  check_group_shuffles<16>();
  check_group_shuffles<32>();
  simt::Lanes<int32_t> x = iota_lanes(-50);
  x[17] = 999;
  EXPECT_EQ(simt::warp_max(x), 999);
  // each() runs every lane before returning: a later phase sees all lanes' writes.
  simt::Lanes<int32_t> a, b;
  simt::each([&](int l) { a[l] = l * l; });
  simt::each([&](int l) { b[l] = a[(l + 1) % simt::kWarpSize]; });
  for (int l = 0; l < simt::kWarpSize; ++l) EXPECT_EQ(b[l], ((l + 1) % 32) * ((l + 1) % 32));
}

TEST(SimtLanes, DpxEmulationIsExact) {
  // Against the definitions in wider integers: per 16-bit half for the x2 forms, with wrap-around adds.
  std::mt19937_64 rng(7);
  const int32_t extremes[] = {0, 1, -1, 32767, -32768, 32766, INT32_MAX, INT32_MIN, 65535, 65536};
  auto pick = [&](int k) -> int32_t { return k < 10 ? extremes[k] : int32_t(uint32_t(rng())); };
  auto half = [](uint32_t x, int k) { return int32_t(int16_t(uint16_t(x >> (16 * k)))); };
  auto wrap16 = [](int32_t v) { return int32_t(int16_t(uint16_t(uint32_t(v)))); };
  for (int it = 0; it < 200000; ++it) {
    const int32_t a = pick(int(rng() % 14)), b = pick(int(rng() % 14)), c = pick(int(rng() % 14));
    ASSERT_EQ(simt::vimax3_s32(a, b, c), std::max({a, b, c}));
    const int32_t s = int32_t(uint32_t(int64_t(a) + int64_t(b)));
    ASSERT_EQ(simt::viaddmax_s32(a, b, c), std::max(s, c));
    const uint32_t ua = uint32_t(a), ub = uint32_t(b), uc = uint32_t(c);
    const uint32_t m3 = simt::vimax3_s16x2(ua, ub, uc), am = simt::viaddmax_s16x2(ua, ub, uc);
    for (int k = 0; k < 2; ++k) {
      ASSERT_EQ(half(m3, k), std::max({half(ua, k), half(ub, k), half(uc, k)}));
      ASSERT_EQ(half(am, k), std::max(wrap16(half(ua, k) + half(ub, k)), half(uc, k)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Banded alignment: the warp fill through the emulation vs the scalar fill

// Scoring parameters with every field at its extremes (0, 1, 100) or in between.
ScoringParams extreme_params(std::mt19937_64& rng) {
  auto field = [&]() -> int32_t {
    switch (rng() % 4) {
      case 0:
        return 0;
      case 1:
        return 1;
      case 2:
        return 100;
      default:
        return int32_t(rng() % 20);
    }
  };
  ScoringParams p;
  p.match = field();
  p.mismatch = field();
  p.gap_open = field();
  p.gap_extend = field();
  p.clip5 = field();
  p.clip3 = field();
  p.ambiguous = field();
  return p;
}

// Property batch: reads up to 1,000 bp (most of them short, as the aligner's tasks are), bands of
// every width from 1 to 256 around, off and across the true diagonal, empty and one-base reads, N
// bases on both sides, unrelated windows.
AlignTaskBatch property_align_tasks(std::mt19937_64& rng, size_t count) {
  auto uni = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
  AlignTaskBatch t;
  std::vector<uint8_t> q, win;
  for (size_t k = 0; k < count; ++k) {
    const int kind = uni(0, 999);
    const int m = kind < 20    ? uni(0, 1)
                  : kind < 900 ? uni(2, 160)
                  : kind < 990 ? uni(161, 400)
                               : uni(401, 1000);
    // Band widths: mostly the aligner's (9..64), all of 1..256 represented; long reads keep to <= 128.
    const int wmax = m > 400 ? 128 : 256;
    const int w = uni(0, 9) < 7 ? uni(1, 64) : uni(1, wmax);
    q.resize(size_t(m));
    for (auto& b : q) b = uint8_t(uni(0, 99) < 2 ? 4 : uni(0, 3));
    win.clear();
    const int flank = uni(0, w);
    for (int i = 0; i < flank; ++i) win.push_back(uint8_t(uni(0, 3)));
    const bool related = uni(0, 9) < 8;
    for (int i = 0; i < m; ++i) {
      const int r = uni(0, 999);
      if (!related || r < 30) {
        win.push_back(uint8_t(uni(0, 3)));
      } else if (r < 37) {
        for (int j = uni(1, 6); j > 0; --j) win.push_back(uint8_t(uni(0, 3)));
        win.push_back(q[size_t(i)]);
      } else if (r < 44) {
        // read base inserted
      } else if (r < 50) {
        win.push_back(4);
      } else {
        win.push_back(q[size_t(i)]);
      }
    }
    for (int i = uni(0, w); i > 0; --i) win.push_back(uint8_t(uni(0, 3)));
    const int n = int(win.size());
    int lo = flank - uni(0, w - 1);
    if (uni(0, 19) == 0) lo = -uni(0, m + 5);  // starting left of the window
    if (uni(0, 39) == 0) lo = n - uni(-3, 5);  // mostly right of the window
    t.add(q.data(), uint32_t(m), win.data(), uint32_t(n), lo, lo + w - 1);
  }
  return t;
}

TEST(WarpBandedFill, HundredThousandRandomTasksMatchTheScalarFill) {
  auto scalar = make_cpu_align_backend(0);
  auto warp = make_simt_cpu_align_backend(0);
  std::mt19937_64 rng(20261204);
  size_t tasks_done = 0, aligned = 0;
  uint64_t cells = 0;
  for (int round = 0; round < 20; ++round) {
    const ScoringParams p = round < 2 ? ScoringParams{} : extreme_params(rng);
    const AlignTaskBatch tasks = property_align_tasks(rng, 5000);
    AlignResultBatch a, b;
    scalar->align(tasks, p, a);
    warp->align(tasks, p, b);
    expect_same_alignments(tasks, a, b,
                           "round " + std::to_string(round) + " (match " + std::to_string(p.match) +
                               " mismatch " + std::to_string(p.mismatch) + " open " +
                               std::to_string(p.gap_open) + " extend " + std::to_string(p.gap_extend) +
                               " clip5 " + std::to_string(p.clip5) + " clip3 " + std::to_string(p.clip3) +
                               " N " + std::to_string(p.ambiguous) + ")");
    if (HasFailure()) return;
    tasks_done += tasks.size();
    for (size_t i = 0; i < tasks.size(); ++i) {
      aligned += a.cigar_length[i] > 0;
      cells += uint64_t(tasks.query_length[i]) *
               uint64_t(std::max(0, band_width(tasks.diag_lo[i], tasks.diag_hi[i])));
    }
  }
  EXPECT_EQ(tasks_done, 100000u);
  EXPECT_GT(aligned, tasks_done / 2) << "the property batches should mostly align";
  std::cout << "[ info ] " << tasks_done << " random tasks, " << cells << " cells, " << aligned
            << " aligned: warp fill identical with the scalar fill\n";
}

TEST(WarpBandedFill, EveryWarpShapeAndItsEdges) {
  // Band widths at and around every shape boundary (PV = 4 .. 512 and beyond, where the scalar fill takes
  // over), long reads, reads shorter than the lane group, the existing edge-case generator.
  auto scalar = make_cpu_align_backend(0);
  auto warp = make_simt_cpu_align_backend(0);
  std::mt19937_64 rng(99);
  const int widths[] = {1,  2,   3,   7,   8,   9,   15,  16,  17,  31,  32,   33,   63,   64,
                        65, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 1500};
  AlignTaskBatch tasks;
  for (int w : widths)
    for (int m : {1, 2, 5, 31, 150, 1000}) {
      std::vector<uint8_t> q(static_cast<size_t>(m)), win(static_cast<size_t>(m + w + 10));
      for (auto& b : win) b = uint8_t(rng() % 4);
      const int off = int(rng() % uint64_t(w));
      for (int i = 0; i < m; ++i) q[size_t(i)] = rng() % 20 == 0 ? uint8_t(rng() % 4) : win[size_t(off + i)];
      tasks.add(q.data(), uint32_t(m), win.data(), uint32_t(win.size()), off - w / 2, off - w / 2 + w - 1);
    }
  for (const ScoringParams& p : {ScoringParams{}, extreme_params(rng), extreme_params(rng)}) {
    AlignResultBatch a, b;
    scalar->align(tasks, p, a);
    warp->align(tasks, p, b);
    expect_same_alignments(tasks, a, b, "shape edges");
  }
  const std::vector<std::vector<int>> length_sets = {{0, 1, 2, 3, 5, 8}, {100, 150, 250}, {1, 31, 151, 1000}};
  uint64_t seed = 1;
  for (const auto& lengths : length_sets) {
    const AlignTaskBatch more = random_align_tasks(seed++, 1500, lengths);
    AlignResultBatch a, b;
    scalar->align(more, ScoringParams{}, a);
    warp->align(more, ScoringParams{}, b);
    expect_same_alignments(more, a, b, "edge-case batch " + std::to_string(seed - 1));
  }
}

TEST(WarpBandedFill, StepLaneLayoutCoversEveryCell) {
  // The traceback reads (i, k) through StepLaneDir: every band cell maps to a distinct byte inside the
  // words the fill writes.
  for (int32_t w : {1, 5, 8, 33, 64, 65, 200, 1024})
    for (int32_t m : {1, 2, 7, 150}) {
      const int32_t pv = banded_warp_pv(w);
      ASSERT_GT(pv, 0);
      ASSERT_GE(2 * pv, w);
      const uint64_t words = banded_warp_dir_words(m, w, pv);
      std::vector<uint8_t> seen(words * 4, 0);
      for (int32_t i = 1; i <= m; ++i)
        for (int32_t k = 0; k < w; ++k) {
          const int64_t st = 2 * int64_t(i) + k - 2;
          const uint64_t byte = (uint64_t(st >> 2) * pv + uint64_t((i - 1) % pv)) * 4 + uint64_t(st & 3);
          ASSERT_LT(byte, seen.size()) << "w " << w << " m " << m << " cell " << i << "," << k;
          ASSERT_EQ(seen[byte], 0) << "two cells share a byte: w " << w << " m " << m;
          seen[byte] = 1;
        }
    }
  EXPECT_EQ(banded_warp_pv(0), 0);
  EXPECT_EQ(banded_warp_pv(1025), 0);
  EXPECT_EQ(banded_warp_pv(65), 40);   // 8 lanes x 5 slots: 81% busy (a power of two, 64, would be 51%)
  EXPECT_EQ(banded_warp_pv(129), 80);  // 16 x 5
  for (int32_t w = 1; w <= kBandedWarpMaxWidth; ++w) {
    const int32_t shape = banded_warp_shape(w), pv = banded_warp_pv(w);
    ASSERT_GE(2 * pv, w) << "w " << w;
    EXPECT_TRUE(with_banded_warp_shape(shape, [](auto, auto) {}))
        << "shape of w " << w << " is not instantiated";
    if (w >= 17) {
      EXPECT_GE(double(w) / (2.0 * pv), 0.68) << "w " << w;
    }
  }
}

TEST(WarpBandedFill, DirectionBuffersKeepWordAlignment) {
  // Regression (first GPU run, 2026-12-04: cudaErrorMisalignedAddress): a chunk packs the tasks'
  // direction matrices back to back, and a scalar-fill task (m * w bytes) before warp-fill tasks made
  // their 32-bit words misaligned. banded_dir_bytes() rounds every task up to whole words.
  uint64_t off = 0;
  for (int32_t w : {1500, 1025, 3, 65, 7, 129, 1024})
    for (int32_t m : {1, 3, 150, 151}) {
      ASSERT_EQ(off % 4, 0u) << "task after w " << w << " m " << m;
      const uint64_t bytes = banded_dir_bytes(m, w);
      ASSERT_GE(bytes, banded_warp_pv(w) > 0 ? 4 * banded_warp_dir_words(m, w, banded_warp_pv(w))
                                             : uint64_t(m) * uint64_t(w));
      off += bytes;
    }
}

class WarpKernelsRealReads : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path tiny = shared_data_dir() / "na12878-chr22-tiny";
    if (!fs::exists(tiny / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny;
    ref = std::make_unique<Reference>(Reference::load((tiny / "q.fa").string()));
    reads = load_real_reads(tiny / "NA12878.chr22.tiny.bam");
    ASSERT_GT(reads.size(), 1000u);
  }
  std::unique_ptr<Reference> ref;
  std::vector<RealRead> reads;
};

TEST_F(WarpKernelsRealReads, AlignmentsMatchTheScalarFill) {
  const AlignTaskBatch tasks = real_align_tasks(*ref, reads);
  AlignResultBatch a, b;
  make_cpu_align_backend(0)->align(tasks, ScoringParams{}, a);
  make_simt_cpu_align_backend(0)->align(tasks, ScoringParams{}, b);
  expect_same_alignments(tasks, a, b, "real reads");
  std::cout << "[ info ] " << tasks.size() << " real-read alignment tasks identical (warp fill vs scalar)\n";
}

// ---------------------------------------------------------------------------------------------
// Pair-HMM: the warp float pass through the emulation vs the scalar passes

TEST(WarpPairHmm, RandomPairsMatchTheScalarPasses) {
  auto scalar = make_cpu_genotype_backend(0);
  auto warp = make_simt_cpu_genotype_backend(0);
  PairHmmParams other;
  other.gap_open = 30;
  other.gap_continuation = 3;
  other.min_base_qual = 0;
  PairHmmParams tight;
  tight.gap_open = 3.1;  // the smallest that still makes a model
  tight.gap_continuation = 100;
  tight.min_base_qual = kPairHmmMaxQual;
  size_t doubles = 0, floats = 0, pairs = 0;
  uint64_t seed = 11;
  for (const PairHmmParams& p : {PairHmmParams{}, other, tight})
    for (bool all : {true, false}) {
      const HmmTaskBatch tasks = random_hmm_tasks(seed++, 300, 12, all);
      HmmResultBatch a, b;
      scalar->compute(tasks, p, a);
      warp->compute(tasks, p, b);
      expect_same_likelihoods(a, b, "random pair-HMM batch seed " + std::to_string(seed - 1));
      pairs += tasks.size();
      for (uint8_t x : a.pass) {
        doubles += x == uint8_t(PairHmmPass::kDouble);
        floats += x == uint8_t(PairHmmPass::kFloat);
      }
    }
  EXPECT_GT(doubles, 0u);
  EXPECT_GT(floats, 0u);
  std::cout << "[ info ] " << pairs << " pairs (float pass " << floats << ", double " << doubles
            << ") identical (warp vs scalar)\n";
}

TEST(WarpPairHmm, EveryGroupWidthAndItsEdges) {
  // Read and haplotype lengths around each lane-group width (4, 8, 16, 32): the carry row is read
  // hlen - P + 1 steps after it is written, so hlen == P is the tightest case.
  std::mt19937_64 rng(5);
  HmmTaskBatch t;
  const int lens[] = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 150, 301};
  std::vector<uint8_t> base(400);
  for (auto& b : base) b = uint8_t(rng() % 4);
  for (int hl : lens) {
    std::vector<uint8_t> h(base.begin(), base.begin() + hl);
    if (hl > 2) h[size_t(hl / 2)] = 4;
    t.add_haplotype(h.data(), uint32_t(hl));
  }
  for (int rl : lens) {
    std::vector<uint8_t> r(base.begin() + 1, base.begin() + 1 + rl), q(static_cast<size_t>(rl));
    for (auto& x : q) x = uint8_t(rng() % 45);
    if (rl > 3) r[2] = uint8_t((r[2] + 1) % 4);
    t.add_read(r.data(), q.data(), uint32_t(rl));
  }
  t.add_all_pairs();
  HmmResultBatch a, b;
  make_cpu_genotype_backend(0)->compute(t, PairHmmParams{}, a);
  make_simt_cpu_genotype_backend(0)->compute(t, PairHmmParams{}, b);
  expect_same_likelihoods(a, b, "group-width edges");
  EXPECT_EQ(pair_hmm_warp_p(3, 100), 0);
  EXPECT_EQ(pair_hmm_warp_p(100, 17), 16);
  EXPECT_EQ(pair_hmm_warp_p(150, 300), 32);
}

TEST_F(WarpKernelsRealReads, PairHmmMatchesTheScalarPasses) {
  const HmmTaskBatch tasks = real_hmm_tasks(*ref, reads);
  ASSERT_GT(tasks.size(), 1000u);
  HmmResultBatch a, b;
  make_cpu_genotype_backend(0)->compute(tasks, PairHmmParams{}, a);
  make_simt_cpu_genotype_backend(0)->compute(tasks, PairHmmParams{}, b);
  expect_same_likelihoods(a, b, "real reads");
  std::cout << "[ info ] " << tasks.size() << " real-read pair-HMM pairs identical (warp vs scalar)\n";
}

}  // namespace
}  // namespace omicsd
