// The GPU fault rule (host/common/gpu_health.hpp), without a GPU: a backend that throws GpuFaultError
// (what the CUDA backends throw for sticky CUDA errors) is abandoned for the rest of the process, the
// batch in hand and every later one run on the CPU backend with the same results, the failure is
// recorded once; other errors are not swallowed.
#include <gtest/gtest.h>

#include "backends/align_backend_select.hpp"
#include "backends/genotype_backend_select.hpp"
#include "host/common/gpu_health.hpp"
#include "tests/support/kernel_cases.hpp"

namespace omicsd {
namespace {

// Stands in for a CUDA backend: fails with a sticky fault (or another error) on chosen calls.
class FaultyAlignBackend final : public AlignBackend {
 public:
  explicit FaultyAlignBackend(int* calls, bool sticky) : calls_(calls), sticky_(sticky) {}
  std::string name() const override { return "cuda"; }
  void align(const AlignTaskBatch&, const ScoringParams&, AlignResultBatch&) override {
    ++*calls_;
    if (sticky_)
      throw GpuFaultError(3, "CUDA error: kernel at x.cu:1: cudaErrorIllegalAddress (illegal address)");
    throw Error("CUDA error: cudaMalloc: cudaErrorInvalidValue");
  }

 private:
  int* calls_;
  bool sticky_;
};

class FaultyGenotypeBackend final : public GenotypeBackend {
 public:
  explicit FaultyGenotypeBackend(int* calls) : calls_(calls) {}
  std::string name() const override { return "cuda"; }
  void compute(const HmmTaskBatch&, const PairHmmParams&, HmmResultBatch&) override {
    ++*calls_;
    throw GpuFaultError(5, "CUDA error: cudaStreamSynchronize: cudaErrorLaunchFailure");
  }

 private:
  int* calls_;
};

TEST(GpuFailover, StickyFaultMovesEveryLaterBatchToTheCpu) {
  reset_gpu_failures_for_tests();
  int calls = 0;
  auto backend = with_cpu_failover(std::make_unique<FaultyAlignBackend>(&calls, true), 3, 2);
  EXPECT_EQ(backend->name(), "cuda");
  const AlignTaskBatch tasks = test::random_align_tasks(3, 300, {100, 150});
  AlignResultBatch expected, got;
  make_cpu_align_backend(2)->align(tasks, ScoringParams{}, expected);
  backend->align(tasks, ScoringParams{}, got);
  test::expect_same_alignments(tasks, expected, got, "after the fault");
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(gpu_failed(3));
  EXPECT_FALSE(gpu_failed(0));
  EXPECT_EQ(backend->name(), "cpu");
  ASSERT_EQ(gpu_failures().size(), 1u);
  EXPECT_NE(gpu_failures()[0].find("GPU 3: align backend: "), std::string::npos) << gpu_failures()[0];
  // The device is not tried again.
  backend->align(tasks, ScoringParams{}, got);
  test::expect_same_alignments(tasks, expected, got, "second batch");
  EXPECT_EQ(calls, 1);
  // The genotype stage on the same process: its own device fails once, recorded once.
  int hmm_calls = 0;
  auto hmm = with_cpu_failover(std::make_unique<FaultyGenotypeBackend>(&hmm_calls), 5, 2);
  const HmmTaskBatch pairs = test::random_hmm_tasks(4, 50, 5, true);
  HmmResultBatch e, g;
  make_cpu_genotype_backend(2)->compute(pairs, PairHmmParams{}, e);
  hmm->compute(pairs, PairHmmParams{}, g);
  hmm->compute(pairs, PairHmmParams{}, g);
  test::expect_same_likelihoods(e, g, "genotype after the fault");
  EXPECT_EQ(hmm_calls, 1);
  EXPECT_EQ(gpu_failures().size(), 2u);
  reset_gpu_failures_for_tests();
}

TEST(GpuFailover, OtherErrorsPropagate) {
  reset_gpu_failures_for_tests();
  int calls = 0;
  auto backend = with_cpu_failover(std::make_unique<FaultyAlignBackend>(&calls, false), 0, 1);
  const AlignTaskBatch tasks = test::random_align_tasks(3, 10, {50});
  AlignResultBatch out;
  EXPECT_THROW(backend->align(tasks, ScoringParams{}, out), Error);
  EXPECT_FALSE(gpu_failed(0));
  EXPECT_TRUE(gpu_failures().empty());
}

}  // namespace
}  // namespace omicsd
