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

#include "host/align/align_backend.hpp"
#include "host/align/align_pipeline.hpp"
#include "host/align/backend_select.hpp"
#include "host/call/call_options.hpp"
#include "host/call/genotype_backend.hpp"
#include "host/call/genotype_backend_select.hpp"
#include "host/common/cuda_backends.hpp"
#include "host/common/device_info.hpp"
#include "host/common/dna.hpp"
#include "host/common/error.hpp"
#include "host/io/reference.hpp"
#include "tests/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
using test::shared_data_dir;
using test::TempDir;

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

void expect_same_alignments(const AlignTaskBatch& tasks, const AlignResultBatch& cpu,
                            const AlignResultBatch& gpu, const std::string& what) {
  ASSERT_EQ(cpu.size(), tasks.size()) << what;
  ASSERT_EQ(gpu.size(), tasks.size()) << what;
  size_t mismatches = 0;
  for (size_t i = 0; i < tasks.size() && mismatches < 10; ++i) {
    const bool same = cpu.score[i] == gpu.score[i] && cpu.objective[i] == gpu.objective[i] &&
                      cpu.query_begin[i] == gpu.query_begin[i] && cpu.query_end[i] == gpu.query_end[i] &&
                      cpu.target_begin[i] == gpu.target_begin[i] && cpu.target_end[i] == gpu.target_end[i] &&
                      cpu.cigar_offset[i] == gpu.cigar_offset[i] &&
                      cpu.cigar_length[i] == gpu.cigar_length[i];
    if (!same) {
      ++mismatches;
      ADD_FAILURE() << what << ": task " << i << " (m " << tasks.query_length[i] << ", n "
                    << tasks.target_length[i] << ", band " << tasks.diag_lo[i] << ".." << tasks.diag_hi[i]
                    << "): cpu score " << cpu.score[i] << " obj " << cpu.objective[i] << " q "
                    << cpu.query_begin[i] << "-" << cpu.query_end[i] << " t " << cpu.target_begin[i] << "-"
                    << cpu.target_end[i] << " ops " << cpu.cigar_length[i] << "; gpu score " << gpu.score[i]
                    << " obj " << gpu.objective[i] << " q " << gpu.query_begin[i] << "-" << gpu.query_end[i]
                    << " t " << gpu.target_begin[i] << "-" << gpu.target_end[i] << " ops "
                    << gpu.cigar_length[i];
    }
  }
  EXPECT_EQ(cpu.cigar, gpu.cigar) << what << ": CIGAR words differ";
}

// Random tasks: reads of the given lengths, each against a window holding a mutated copy (SNVs, indels,
// Ns) between random flanks or against unrelated sequence, with bands around the true diagonal, off
// it, of width 1, empty, or wider than the window.
AlignTaskBatch random_align_tasks(uint64_t seed, size_t count, const std::vector<int>& lengths) {
  std::mt19937_64 rng(seed);
  auto uni = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
  AlignTaskBatch t;
  std::vector<uint8_t> q, win;
  for (size_t k = 0; k < count; ++k) {
    const int m = lengths[size_t(uni(0, int(lengths.size()) - 1))];
    q.resize(size_t(m));
    for (auto& b : q) b = uint8_t(uni(0, 99) < 2 ? 4 : uni(0, 3));
    const int flank = uni(0, 40);
    win.clear();
    for (int i = 0; i < flank; ++i) win.push_back(uint8_t(uni(0, 3)));
    const bool related = uni(0, 9) < 8;
    for (int i = 0; i < m; ++i) {
      if (!related) {
        win.push_back(uint8_t(uni(0, 3)));
        continue;
      }
      const int r = uni(0, 999);
      if (r < 30) {
        win.push_back(uint8_t(uni(0, 3)));  // substitution
      } else if (r < 37) {
        const int len = uni(1, 6);  // insertion in the window (deletion from the read)
        for (int j = 0; j < len; ++j) win.push_back(uint8_t(uni(0, 3)));
        win.push_back(q[size_t(i)]);
      } else if (r < 44) {
        // base deleted from the window (insertion in the read)
      } else if (r < 50) {
        win.push_back(4);  // N in the reference
      } else {
        win.push_back(q[size_t(i)]);
      }
    }
    const int tail = uni(0, 40);
    for (int i = 0; i < tail; ++i) win.push_back(uint8_t(uni(0, 3)));
    const int n = int(win.size());
    int lo = flank - uni(0, 30), hi = flank + uni(0, 30);
    switch (uni(0, 9)) {
      case 0:
        hi = lo - uni(1, 3);  // empty band
        break;
      case 1:
        hi = lo;  // width 1
        break;
      case 2:
        lo = -m - 5;  // wider than the window on both sides
        hi = n + 5;
        break;
      case 3:
        lo = n + uni(1, 10);  // entirely right of the window: no cells
        hi = lo + uni(0, 20);
        break;
      default:
        break;
    }
    t.add(q.data(), uint32_t(m), win.data(), uint32_t(n), lo, hi);
  }
  return t;
}

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

// Reads from a BAM with their qualities (SEQ as stored, i.e. on the forward strand) and positions.
struct RealRead {
  std::vector<uint8_t> bases, quals;
  int64_t pos = -1;
};

std::vector<RealRead> load_real_reads(const fs::path& bam) {
  std::vector<RealRead> reads;
  samFile* fp = sam_open(bam.c_str(), "r");
  if (!fp) return reads;
  sam_hdr_t* hdr = sam_hdr_read(fp);
  bam1_t* b = bam_init1();
  while (hdr && sam_read1(fp, hdr, b) >= 0) {
    if (b->core.flag & (BAM_FSECONDARY | BAM_FSUPPLEMENTARY)) continue;
    RealRead r;
    r.pos = (b->core.flag & BAM_FUNMAP) ? -1 : b->core.pos;
    const uint8_t* s = bam_get_seq(b);
    const uint8_t* q = bam_get_qual(b);
    for (int i = 0; i < b->core.l_qseq; ++i) {
      r.bases.push_back(base_code(seq_nt16_str[bam_seqi(s, i)]));
      r.quals.push_back(q[0] == 0xff ? 30 : q[i]);
    }
    reads.push_back(std::move(r));
  }
  bam_destroy1(b);
  if (hdr) sam_hdr_destroy(hdr);
  sam_close(fp);
  return reads;
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
  const uint8_t* g = ref->codes() + ref->contigs()[0].offset;
  const int64_t glen = ref->contigs()[0].length;
  AlignTaskBatch tasks;
  std::mt19937_64 rng(5);
  for (size_t k = 0; k < reads.size(); ++k) {
    const RealRead& r = reads[k];
    const int64_t m = int64_t(r.bases.size());
    // Mapped reads near their bwa position; unmapped ones against a random stretch.
    const int64_t centre = r.pos >= 0 ? r.pos : int64_t(rng() % uint64_t(std::max<int64_t>(1, glen - m)));
    for (int margin : {5, 20, 50}) {
      const int64_t wbeg = std::max<int64_t>(0, centre - margin);
      const int64_t wend = std::min<int64_t>(glen, centre + m + margin);
      if (wend <= wbeg) continue;
      const int32_t d0 = int32_t(centre - wbeg);
      tasks.add(r.bases.data(), uint32_t(m), g + wbeg, uint32_t(wend - wbeg), d0 - margin, d0 + margin);
    }
  }
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

void expect_same_likelihoods(const HmmResultBatch& cpu, const HmmResultBatch& gpu, const std::string& what) {
  ASSERT_EQ(cpu.size(), gpu.size()) << what;
  size_t mismatches = 0;
  for (size_t i = 0; i < cpu.size() && mismatches < 10; ++i) {
    // Bit patterns, not ==: -inf and signed zeros must agree too.
    uint64_t x, y;
    std::memcpy(&x, &cpu.log10_likelihood[i], 8);
    std::memcpy(&y, &gpu.log10_likelihood[i], 8);
    if (x != y || cpu.pass[i] != gpu.pass[i]) {
      ++mismatches;
      ADD_FAILURE() << what << ": pair " << i << ": cpu " << cpu.log10_likelihood[i] << " (pass "
                    << int(cpu.pass[i]) << ", bits " << std::hex << x << ") gpu " << gpu.log10_likelihood[i]
                    << " (pass " << std::dec << int(gpu.pass[i]) << ", bits " << std::hex << y << std::dec
                    << ")";
    }
  }
}

// Random reads and haplotypes: haplotypes are mutated copies of a random sequence, reads samples of
// them (or of unrelated sequence, long enough that the float pass underflows), with Ns, qualities
// 0..60 and some above kPairHmmMaxQual, empty reads and haplotypes included.
HmmTaskBatch random_hmm_tasks(uint64_t seed, int nreads, int nhaps, bool all_pairs) {
  std::mt19937_64 rng(seed);
  auto uni = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
  HmmTaskBatch t;
  std::vector<uint8_t> base(600);
  for (auto& b : base) b = uint8_t(uni(0, 3));
  for (int h = 0; h < nhaps; ++h) {
    std::vector<uint8_t> hap;
    const int len = h == 0 ? 0 : uni(1, 9) < 2 ? uni(1, 10) : uni(100, 500);
    for (int i = 0; i < len; ++i) {
      const int r = uni(0, 999);
      if (r < 10) continue;
      hap.push_back(r < 30 ? uint8_t(uni(0, 3)) : r < 35 ? uint8_t(4) : base[size_t(i)]);
    }
    t.add_haplotype(hap.data(), uint32_t(hap.size()));
  }
  for (int r = 0; r < nreads; ++r) {
    const int kind = uni(0, 9);
    const int len = r == 0 ? 0 : kind == 0 ? uni(1, 3) : kind == 1 ? 250 : uni(50, 151);
    std::vector<uint8_t> bases, quals;
    const int start = uni(0, 100);
    for (int i = 0; i < len; ++i) {
      uint8_t b = (kind == 1 && uni(0, 1)) ? uint8_t(uni(0, 3)) : base[size_t((start + i) % 600)];
      if (uni(0, 99) < 2) b = 4;
      if (uni(0, 99) < 3) b = uint8_t(uni(0, 3));
      bases.push_back(b);
      const int qq = uni(0, 99);
      quals.push_back(uint8_t(qq < 3 ? uni(0, 2) : qq < 5 ? uni(128, 255) : uni(10, 60)));
    }
    t.add_read(bases.data(), quals.data(), uint32_t(len));
  }
  if (all_pairs) {
    t.add_all_pairs();
  } else {
    for (int p = 0; p < nreads * 3; ++p)
      t.add_pair(uint32_t(uni(0, nreads - 1)), uint32_t(uni(0, nhaps - 1)));
  }
  return t;
}

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
  const uint8_t* g = ref->codes() + ref->contigs()[0].offset;
  const int64_t glen = ref->contigs()[0].length;
  HmmTaskBatch tasks;
  std::mt19937_64 rng(3);
  // Windows of the reference with every read starting inside, as haplotypes: the reference and three
  // edited copies (a SNV, a 3-base deletion, a 2-base insertion).
  const int64_t window = 400;
  for (int64_t wbeg = 0; wbeg + window <= glen; wbeg += 997) {
    const std::vector<uint8_t> refh(g + wbeg, g + wbeg + window);
    std::vector<std::vector<uint8_t>> haps = {refh, refh, refh, refh};
    haps[1][200] = uint8_t((haps[1][200] + 1) % 4);
    haps[2].erase(haps[2].begin() + 210, haps[2].begin() + 213);
    haps[3].insert(haps[3].begin() + 190, {0, 3});
    const uint32_t first_hap = uint32_t(tasks.num_haplotypes());
    for (const auto& h : haps) tasks.add_haplotype(h.data(), uint32_t(h.size()));
    for (const RealRead& r : reads) {
      if (r.pos < wbeg || r.pos + int64_t(r.bases.size()) > wbeg + window) continue;
      const uint32_t ri = tasks.add_read(r.bases.data(), r.quals.data(), uint32_t(r.bases.size()));
      for (uint32_t h = 0; h < 4; ++h) tasks.add_pair(ri, first_hap + h);
    }
  }
  // Unplaced reads against random windows (the float pass underflows for many).
  for (size_t k = 0; k < 200 && k < reads.size(); ++k) {
    const int64_t wbeg = int64_t(rng() % uint64_t(glen - window));
    const uint32_t h = tasks.add_haplotype(g + wbeg, uint32_t(window));
    const RealRead& r = reads[k * 7 % reads.size()];
    tasks.add_pair(tasks.add_read(r.bases.data(), r.quals.data(), uint32_t(r.bases.size())), h);
  }
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
  samFile* fp = sam_open(p.c_str(), "r");
  EXPECT_NE(fp, nullptr) << p;
  if (!fp) return out;
  sam_hdr_t* hdr = sam_hdr_read(fp);
  bam1_t* b = bam_init1();
  while (hdr && sam_read1(fp, hdr, b) >= 0) {
    std::string rec(reinterpret_cast<const char*>(&b->core), sizeof(bam1_core_t));
    rec.append(reinterpret_cast<const char*>(b->data), size_t(b->l_data));
    out.push_back(std::move(rec));
  }
  bam_destroy1(b);
  if (hdr) sam_hdr_destroy(hdr);
  sam_close(fp);
  return out;
}

// The VCF's data lines and its header lines other than those naming the command or the date.
std::vector<std::string> vcf_lines(const fs::path& p) {
  std::vector<std::string> out;
  htsFile* fp = hts_open(p.c_str(), "r");
  EXPECT_NE(fp, nullptr) << p;
  if (!fp) return out;
  kstring_t s = KS_INITIALIZE;
  while (hts_getline(fp, '\n', &s) >= 0) {
    const std::string line(s.s, s.l);
    if (line.rfind("##", 0) == 0 &&
        (line.find("ommand") != std::string::npos || line.find("Date") != std::string::npos ||
         line.find("date") != std::string::npos))
      continue;
    out.push_back(line);
  }
  ks_free(&s);
  hts_close(fp);
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
    a.backend = names[k];
    a.device = 0;
    const AlignStats as = run_align(a);
    EXPECT_EQ(as.backend, names[k]);
    bams[k] = bam_records(a.output);
    CallOptions c;
    c.reference = ref.string();
    c.bam = a.output;
    c.output = (tmp.path / (std::string(names[k]) + ".vcf.gz")).string();
    c.threads = 2;
    c.backend = names[k];
    c.device = 0;
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

}  // namespace
}  // namespace omicsd
