// The CUDA backends (cuda/) against the CPU backends: identical scores, coordinates, CIGARs and
// likelihoods, bit for bit, on random batches (edge cases included: empty bands, 1-base reads, long
// reads, N bases, reads that need the pair-HMM's double pass), on the real reads of
// ../shared/data/na12878-chr22-tiny, under memory budgets small enough to force chunking and the CPU
// fallback for oversized tasks, and end to end (align + call with --backend cuda vs cpu: the same BAM
// records and VCF records). Every GPU test skips, saying so, on a machine without a usable CUDA
// device; the backend-selection tests run everywhere and check the right behaviour for the machine.
#include <gtest/gtest.h>
#include <htslib/hts.h>
#include <htslib/kstring.h>
#include <htslib/sam.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "backends/align_backend_select.hpp"
#include "backends/backend_choice.hpp"
#include "backends/genotype_backend_select.hpp"
#include "cuda/cuda_backends.hpp"
#include "cuda/device_info.hpp"
#include "host/align/align_backend.hpp"
#include "host/align/align_pipeline.hpp"
#include "host/call/call_options.hpp"
#include "host/call/genotype_backend.hpp"
#include "host/common/dna.hpp"
#include "host/common/error.hpp"
#include "host/io/reference.hpp"
#include "tests/support/kernel_cases.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
using test::shared_data_dir;
using test::TempDir;
using namespace omicsd::test;  // kernel_cases.hpp

fs::path tiny() { return shared_data_dir() / "na12878-chr22-tiny"; }

// Why GPU tests cannot run here ("" when they can).
std::string no_gpu_reason() {
  if (!cuda_backend_compiled()) return "this build has no CUDA backends (OMICSD_CUDA=OFF or no nvcc)";
  std::string why;
  if (list_gpu_devices(&why).empty()) return "no usable CUDA device: " + why;
  return "";
}

#define SKIP_WITHOUT_GPU()                                                          \
  do {                                                                              \
    const std::string why_skip = no_gpu_reason();                                   \
    if (!why_skip.empty()) GTEST_SKIP() << "GPU-vs-CPU test skipped: " << why_skip; \
  } while (0)

// ---------------------------------------------------------------------------------------------
// Alignment

class CudaBackends : public ::testing::Test {
 protected:
  void SetUp() override { SKIP_WITHOUT_GPU(); }
  std::unique_ptr<AlignBackend> cuda_align(size_t budget = 0) {
    CudaBackendOptions o;
    o.memory_budget = budget;
    return make_cuda_align_backend(o);
  }
  std::unique_ptr<GenotypeBackend> cuda_genotype(size_t budget = 0) {
    CudaBackendOptions o;
    o.memory_budget = budget;
    return make_cuda_genotype_backend(o);
  }
};

TEST_F(CudaBackends, AlignRandomBatchesMatchCpu) {
  auto cpu = make_cpu_align_backend(2);
  auto gpu = cuda_align();
  const std::vector<std::vector<int>> length_sets = {{0, 1, 2, 3, 5, 8}, {100, 150, 250}, {1, 31, 151, 1000}};
  ScoringParams big_clip;
  big_clip.clip3 = 100;
  big_clip.clip5 = 0;
  ScoringParams odd;
  odd.match = 2;
  odd.mismatch = 3;
  odd.gap_open = 0;
  odd.gap_extend = 2;
  odd.ambiguous = 0;
  const ScoringParams params[] = {ScoringParams{}, big_clip, odd};
  uint64_t seed = 1;
  for (const auto& lengths : length_sets)
    for (const ScoringParams& p : params) {
      const AlignTaskBatch tasks = random_align_tasks(seed++, 1500, lengths);
      AlignResultBatch a, b;
      cpu->align(tasks, p, a);
      gpu->align(tasks, p, b);
      expect_same_alignments(tasks, a, b, "random batch seed " + std::to_string(seed - 1));
      size_t aligned = 0;
      for (size_t i = 0; i < a.size(); ++i) aligned += a.cigar_length[i] > 0;
      EXPECT_GT(aligned, tasks.size() / 4) << "the batch should mostly align (seed " << seed - 1 << ")";
    }
  // An empty batch.
  AlignTaskBatch none;
  AlignResultBatch a, b;
  cpu->align(none, ScoringParams{}, a);
  gpu->align(none, ScoringParams{}, b);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_TRUE(b.cigar.empty());
}

TEST_F(CudaBackends, AlignEveryWarpShapeMatchesCpu) {
  // Band widths at and around each warp shape (P lanes x V slots: PV = 4 .. 512) and beyond (the
  // scalar fill of the finish kernel), with reads from 1 to 1000 bases, in one batch: several kernel
  // launches per chunk.
  std::mt19937_64 rng(99);
  AlignTaskBatch tasks;
  for (int w : {1, 2, 8, 9, 16, 17, 32, 33, 64, 65, 128, 129, 256, 257, 512, 513, 1024, 1025, 1500})
    for (int m : {1, 5, 31, 150, 1000}) {
      std::vector<uint8_t> q(static_cast<size_t>(m)), win(static_cast<size_t>(m + w + 10));
      for (auto& b : win) b = uint8_t(rng() % 4);
      const int off = int(rng() % uint64_t(w));
      for (int i = 0; i < m; ++i) q[size_t(i)] = rng() % 20 == 0 ? uint8_t(rng() % 4) : win[size_t(off + i)];
      tasks.add(q.data(), uint32_t(m), win.data(), uint32_t(win.size()), off - w / 2, off - w / 2 + w - 1);
    }
  AlignResultBatch a, b;
  make_cpu_align_backend(2)->align(tasks, ScoringParams{}, a);
  cuda_align()->align(tasks, ScoringParams{}, b);
  expect_same_alignments(tasks, a, b, "every warp shape");
}

TEST_F(CudaBackends, AlignCigarLongerThanItsSlotIsRecomputedIdentically) {
  // Reads with a gap every few bases: CIGARs of ~60-100 ops, more than the 42-word copy-back slot of a
  // 150 bp read, so these tasks take the CPU recompute path; the others in the batch do not.
  std::mt19937_64 rng(4);
  AlignTaskBatch tasks = random_align_tasks(8, 200, {150});
  for (int k = 0; k < 50; ++k) {
    std::vector<uint8_t> win, q;
    for (int i = 0; i < 400; ++i) win.push_back(uint8_t(rng() % 4));
    for (int i = 0; q.size() < 150; ++i) {
      q.push_back(win[size_t(20 + i)]);
      if (i % 5 == 4) q.push_back(uint8_t((win[size_t(20 + i)] + 1) % 4));  // inserted base
    }
    tasks.add(q.data(), 150, win.data(), uint32_t(win.size()), 0, 60);
  }
  ScoringParams cheap_gaps;
  cheap_gaps.gap_open = 0;
  cheap_gaps.gap_extend = 1;
  cheap_gaps.mismatch = 8;
  AlignResultBatch a, b;
  make_cpu_align_backend(2)->align(tasks, cheap_gaps, a);
  cuda_align()->align(tasks, cheap_gaps, b);
  expect_same_alignments(tasks, a, b, "long CIGARs");
  size_t long_cigars = 0;
  for (size_t i = 0; i < a.size(); ++i) long_cigars += a.cigar_length[i] > 42;
  EXPECT_GT(long_cigars, 10u) << "the batch should exercise the recompute path";
}

std::vector<std::string> bam_records(const fs::path& p);

TEST(CudaBackendsFault, StickyErrorFinishesOnTheCpuWithTheSameOutput) {
  // OMICSD_CUDA_FAULT makes the kernels write through a null pointer: an illegal address, which
  // poisons the CUDA context for the rest of the process. So this runs the CLI in child processes.
  SKIP_WITHOUT_GPU();
  if (!fs::exists(tiny() / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny();
  TempDir tmp;
  fs::copy_file(tiny() / "q.fa", tmp.path / "q.fa");
  const std::string reads = (tiny() / "NA12878.chr22.tiny.bam").string();
  auto align = [&](const std::string& env, const std::string& backend, const std::string& out,
                   std::string* log) {
    return test::run_command(env + " '" + test::omicsd_binary() + "' align '" + (tmp.path / "q.fa").string() +
                                 "' '" + reads + "' -o '" + (tmp.path / out).string() + "' -t 2 --backend " +
                                 backend,
                             log);
  };
  std::string log_cpu, log_fault;
  ASSERT_EQ(align("", "cpu", "cpu.bam", &log_cpu), 0) << log_cpu;
  ASSERT_EQ(align("OMICSD_CUDA_FAULT=align", "cuda", "fault.bam", &log_fault), 0) << log_fault;
  EXPECT_NE(log_fault.find("GPU 0 failed"), std::string::npos) << log_fault;
  EXPECT_NE(log_fault.find("cudaErrorIllegalAddress"), std::string::npos) << log_fault;
  const auto a = bam_records(tmp.path / "cpu.bam"), b = bam_records(tmp.path / "fault.bam");
  ASSERT_GT(a.size(), 3000u);
  EXPECT_TRUE(a == b) << "the BAM finished on the CPU after the fault differs from the CPU backend's";
}

TEST_F(CudaBackends, AlignSmallMemoryBudgetChunksAndFallsBackIdentically) {
  // 384 KiB over 3 slots: a few dozen 150 bp tasks per chunk, and a 1000 bp read with a wide band
  // (1000 x 201 direction bytes) does not fit a chunk at all and runs on the CPU backend.
  auto cpu = make_cpu_align_backend(2);
  auto gpu = cuda_align(size_t(384) << 10);
  AlignTaskBatch tasks = random_align_tasks(77, 3000, {150, 150, 151, 250, 1000});
  AlignResultBatch a, b;
  cpu->align(tasks, ScoringParams{}, a);
  gpu->align(tasks, ScoringParams{}, b);
  expect_same_alignments(tasks, a, b, "small budget");
  // The same backend again (buffers reused across calls).
  gpu->align(tasks, ScoringParams{}, b);
  expect_same_alignments(tasks, a, b, "small budget, second call");
}

class CudaBackendsRealReads : public CudaBackends {
 protected:
  void SetUp() override {
    CudaBackends::SetUp();
    if (IsSkipped()) return;
    if (!fs::exists(tiny() / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny();
    ref = std::make_unique<Reference>(Reference::load((tiny() / "q.fa").string()));
    reads = load_real_reads(tiny() / "NA12878.chr22.tiny.bam");
    ASSERT_GT(reads.size(), 1000u);
  }
  std::unique_ptr<Reference> ref;
  std::vector<RealRead> reads;
};

TEST_F(CudaBackendsRealReads, AlignMatchesCpu) {
  const AlignTaskBatch tasks = real_align_tasks(*ref, reads);
  auto cpu = make_cpu_align_backend(2);
  auto gpu = cuda_align();
  AlignResultBatch a, b;
  cpu->align(tasks, ScoringParams{}, a);
  gpu->align(tasks, ScoringParams{}, b);
  expect_same_alignments(tasks, a, b, "real reads");
  std::cout << "[ info ] " << tasks.size() << " real-read alignment tasks identical on GPU and CPU\n";
}

// ---------------------------------------------------------------------------------------------
// Pair-HMM

TEST_F(CudaBackends, PairHmmRandomBatchesMatchCpu) {
  auto cpu = make_cpu_genotype_backend(2);
  auto gpu = cuda_genotype();
  PairHmmParams other;
  other.gap_open = 30;
  other.gap_continuation = 3;
  other.min_base_qual = 0;
  size_t doubles = 0, floats = 0;
  uint64_t seed = 11;
  for (const PairHmmParams& p : {PairHmmParams{}, other})
    for (bool all : {true, false}) {
      const HmmTaskBatch tasks = random_hmm_tasks(seed++, 300, 12, all);
      HmmResultBatch a, b;
      cpu->compute(tasks, p, a);
      gpu->compute(tasks, p, b);
      expect_same_likelihoods(a, b, "random pair-HMM batch seed " + std::to_string(seed - 1));
      for (uint8_t x : a.pass) {
        doubles += x == uint8_t(PairHmmPass::kDouble);
        floats += x == uint8_t(PairHmmPass::kFloat);
      }
    }
  // The batches exercise both passes (a property of the inputs, checked so the test keeps covering the
  // double fallback).
  EXPECT_GT(doubles, 0u);
  EXPECT_GT(floats, 0u);
  std::cout << "[ info ] pairs by pass: float " << floats << ", double " << doubles << "\n";
}

TEST_F(CudaBackends, PairHmmSmallMemoryBudgetChunksAndFallsBackIdentically) {
  auto cpu = make_cpu_genotype_backend(2);
  // 192 KiB over 3 slots (64 KiB each): a handful of pairs per chunk; a pair with a 500-base haplotype
  // needs ~18 KB of workspace, so chunks are small and many.
  auto gpu = cuda_genotype(size_t(192) << 10);
  const HmmTaskBatch tasks = random_hmm_tasks(99, 200, 8, true);
  HmmResultBatch a, b;
  cpu->compute(tasks, PairHmmParams{}, a);
  gpu->compute(tasks, PairHmmParams{}, b);
  expect_same_likelihoods(a, b, "small budget");
  // A haplotype too long for any chunk: the pair runs on the CPU backend, same result.
  HmmTaskBatch big = tasks;
  std::vector<uint8_t> longhap(4000);
  for (size_t i = 0; i < longhap.size(); ++i) longhap[i] = uint8_t(i * 7 % 5);
  const uint32_t h = big.add_haplotype(longhap.data(), uint32_t(longhap.size()));
  for (uint32_t r = 0; r < 5; ++r) big.add_pair(r, h);
  cpu->compute(big, PairHmmParams{}, a);
  gpu->compute(big, PairHmmParams{}, b);
  expect_same_likelihoods(a, b, "small budget with an oversized pair");
}

TEST_F(CudaBackends, PairHmmMalformedBatchIsAnInputError) {
  auto gpu = cuda_genotype();
  HmmTaskBatch t;
  const uint8_t b[2] = {0, 1}, q[2] = {30, 30};
  t.add_read(b, q, 2);
  t.add_haplotype(b, 2);
  t.add_pair(0, 5);
  HmmResultBatch out;
  EXPECT_THROW(gpu->compute(t, PairHmmParams{}, out), InputError);
}

TEST_F(CudaBackendsRealReads, PairHmmMatchesCpu) {
  const HmmTaskBatch tasks = real_hmm_tasks(*ref, reads);
  ASSERT_GT(tasks.size(), 1000u);
  auto cpu = make_cpu_genotype_backend(2);
  auto gpu = cuda_genotype();
  HmmResultBatch a, b;
  cpu->compute(tasks, PairHmmParams{}, a);
  gpu->compute(tasks, PairHmmParams{}, b);
  expect_same_likelihoods(a, b, "real reads");
  std::cout << "[ info ] " << tasks.size() << " real-read pair-HMM pairs identical on GPU and CPU\n";
}

// ---------------------------------------------------------------------------------------------
// Backend selection (runs with and without a GPU)

TEST(CudaBackendSelection, FollowsTheMachine) {
  const std::string why = no_gpu_reason();
  EXPECT_EQ(select_align_backend("cpu", 1)->name(), "cpu");
  EXPECT_EQ(select_genotype_backend("cpu", 1)->name(), "cpu");
  EXPECT_THROW(select_align_backend("gpu", 1), InputError);
  EXPECT_THROW(select_genotype_backend("auto", 1, -1), InputError);
  if (!why.empty()) {
    std::cout << "[ info ] no GPU here (" << why << "): auto must fall back, cuda must refuse\n";
    EXPECT_EQ(select_align_backend("auto", 1)->name(), "cpu");
    EXPECT_EQ(select_genotype_backend("auto", 1)->name(), "cpu");
    try {
      select_align_backend("cuda", 1);
      ADD_FAILURE() << "--backend cuda without a GPU did not throw";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("--backend cuda"), std::string::npos) << e.what();
    }
    EXPECT_THROW(select_genotype_backend("cuda", 1), InputError);
    return;
  }
  EXPECT_EQ(select_align_backend("auto", 1)->name(), "cuda");
  EXPECT_EQ(select_genotype_backend("cuda", 1, 0)->name(), "cuda");
  // A device index that is not there: cuda refuses, auto falls back.
  EXPECT_THROW(select_align_backend("cuda", 1, 4096), InputError);
  EXPECT_EQ(select_genotype_backend("auto", 1, 4096)->name(), "cpu");
}

// ---------------------------------------------------------------------------------------------
// End to end: align + call with --backend cuda and cpu give the same records.

// Every alignment record of a BAM, serialised (core fields + data: names, CIGAR, SEQ, QUAL, tags).
std::vector<std::string> bam_records(const fs::path& p) {
  std::vector<std::string> out;
  const HtsFilePtr fp(sam_open(p.c_str(), "r"));
  EXPECT_NE(fp, nullptr) << p;
  if (!fp) return out;
  const SamHeaderPtr hdr(sam_hdr_read(fp.get()));
  const BamRecordPtr record(bam_init1());
  bam1_t* b = record.get();
  while (hdr && sam_read1(fp.get(), hdr.get(), b) >= 0) {
    std::string rec(reinterpret_cast<const char*>(&b->core), sizeof(bam1_core_t));
    rec.append(reinterpret_cast<const char*>(b->data), size_t(b->l_data));
    out.push_back(std::move(rec));
  }
  return out;
}

// The VCF's data lines and its header lines other than those naming the command or the date.
std::vector<std::string> vcf_lines(const fs::path& p) {
  std::vector<std::string> out;
  const HtsFilePtr fp(hts_open(p.c_str(), "r"));
  EXPECT_NE(fp, nullptr) << p;
  if (!fp) return out;
  kstring_t s = KS_INITIALIZE;
  while (hts_getline(fp.get(), '\n', &s) >= 0) {
    const std::string line(s.s, s.l);
    if (line.rfind("##", 0) == 0 &&
        (line.find("ommand") != std::string::npos || line.find("Date") != std::string::npos ||
         line.find("date") != std::string::npos))
      continue;
    out.push_back(line);
  }
  ks_free(&s);
  return out;
}

TEST(CudaBackendsEndToEnd, AlignAndCallCudaMatchCpu) {
  SKIP_WITHOUT_GPU();
  if (!fs::exists(tiny() / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny();
  TempDir tmp;
  const fs::path ref = tmp.path / "q.fa";
  fs::copy_file(tiny() / "q.fa", ref);  // the index is written next to the FASTA
  std::vector<std::string> bams[2], vcfs[2];
  const char* names[2] = {"cpu", "cuda"};
  for (int k = 0; k < 2; ++k) {
    AlignOptions a;
    a.reference = ref.string();
    a.reads1 = (tiny() / "NA12878.chr22.tiny.bam").string();
    a.output = (tmp.path / (std::string(names[k]) + ".bam")).string();
    a.read_group = "@RG\\tID:s\\tSM:s";
    a.threads = 2;
    a.make_backend = align_backend_factory(names[k], 0);
    const AlignStats as = run_align(a);
    EXPECT_EQ(as.backend, names[k]);
    bams[k] = bam_records(a.output);
    CallOptions c;
    c.reference = ref.string();
    c.bam = a.output;
    c.output = (tmp.path / (std::string(names[k]) + ".vcf.gz")).string();
    c.threads = 2;
    c.make_backend = genotype_backend_factory(names[k], 0);
    c.sample = "s";
    const CallStats cs = run_call(c);
    EXPECT_EQ(cs.backend, names[k]);
    vcfs[k] = vcf_lines(c.output);
  }
  ASSERT_GT(bams[0].size(), 3000u);
  ASSERT_EQ(bams[0].size(), bams[1].size());
  size_t diff = 0;
  for (size_t i = 0; i < bams[0].size(); ++i) diff += bams[0][i] != bams[1][i];
  EXPECT_EQ(diff, 0u) << "BAM records differ between --backend cpu and cuda";
  size_t records = 0;
  for (const auto& l : vcfs[0]) records += !l.empty() && l[0] != '#';
  EXPECT_GT(records, 5u);
  EXPECT_EQ(vcfs[0], vcfs[1]) << "VCFs differ between --backend cpu and cuda";
}

// ---------------------------------------------------------------------------------------------
// The engine runs the backend it is handed (backends/ chooses; host/ never does). Runs without a GPU.

TEST(BackendFactories, ResolveWhenTheEngineAsks) {
  EXPECT_EQ(align_backend_factory("cpu", 0)(1)->name(), "cpu");
  EXPECT_EQ(genotype_backend_factory("cpu", 0)(1)->name(), "cpu");
  // Building a factory checks nothing: a bad choice is reported when the run asks for its backend,
  // as when the engine resolved the name itself.
  const GenotypeBackendFactory bad_name = genotype_backend_factory("gpu", 0);
  EXPECT_THROW(bad_name(1), InputError);
  EXPECT_THROW(align_backend_factory("auto", -1)(1), InputError);
}

TEST(BackendFactories, EngineRunsTheBackendItIsHandedWithTheSameResults) {
  if (!fs::exists(tiny() / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny();
  TempDir tmp;
  const fs::path ref = tmp.path / "q.fa";
  fs::copy_file(tiny() / "q.fa", ref);
  std::vector<std::string> bams[2], vcfs[2];
  int align_calls = 0, genotype_calls = 0;
  for (int k = 0; k < 2; ++k) {
    const std::string name = k == 0 ? "cpu" : "cpu-simt";
    AlignOptions a;
    a.reference = ref.string();
    a.reads1 = (tiny() / "NA12878.chr22.tiny.bam").string();
    a.output = (tmp.path / (name + ".bam")).string();
    a.read_group = "@RG\\tID:s\\tSM:s";
    a.threads = 2;
    // k == 0: no factory, the engine's default (the CPU backend); k == 1: the lane-vector backend.
    if (k == 1)
      a.make_backend = [&](int threads) {
        ++align_calls;
        return make_simt_cpu_align_backend(threads);
      };
    EXPECT_EQ(run_align(a).backend, name);
    bams[k] = bam_records(a.output);
    CallOptions c;
    c.reference = ref.string();
    c.bam = a.output;
    c.output = (tmp.path / (name + ".vcf.gz")).string();
    c.threads = 2;
    c.sample = "s";
    if (k == 1)
      c.make_backend = [&](int threads) {
        ++genotype_calls;
        return make_simt_cpu_genotype_backend(threads);
      };
    EXPECT_EQ(run_call(c).backend, name);
    vcfs[k] = vcf_lines(c.output);
  }
  EXPECT_EQ(align_calls, 1);
  EXPECT_EQ(genotype_calls, 1);
  ASSERT_GT(bams[0].size(), 3000u);
  EXPECT_EQ(bams[0], bams[1]) << "BAM records differ between the default and the handed backend";
  EXPECT_EQ(vcfs[0], vcfs[1]) << "VCFs differ between the default and the handed backend";
}

}  // namespace
}  // namespace omicsd
