#pragma once
// Test cases shared by the kernel tests (tests/backends/test_cuda_backends.cpp: GPU vs CPU;
// tests/host/common/test_simt_kernels.cpp: the warp algorithms through the CPU emulation vs the scalar
// recurrences): random alignment and pair-HMM batches with their edge cases, tasks built from the real
// reads of ../shared/data/na12878-chr22-tiny, and the bit-for-bit comparisons.
#include <gtest/gtest.h>
#include <htslib/hts.h>
#include <htslib/sam.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "host/align/align_backend.hpp"
#include "host/call/genotype_backend.hpp"
#include "host/common/dna.hpp"
#include "host/io/hts_handles.hpp"
#include "host/io/reference.hpp"

namespace omicsd::test {

inline void expect_same_alignments(const AlignTaskBatch& tasks, const AlignResultBatch& cpu,
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
inline AlignTaskBatch random_align_tasks(uint64_t seed, size_t count, const std::vector<int>& lengths) {
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

// Reads from a BAM with their qualities (SEQ as stored, i.e. on the forward strand) and positions.
struct RealRead {
  std::vector<uint8_t> bases, quals;
  int64_t pos = -1;
};

inline std::vector<RealRead> load_real_reads(const std::filesystem::path& bam) {
  std::vector<RealRead> reads;
  const HtsFilePtr fp(sam_open(bam.c_str(), "r"));
  if (!fp) return reads;
  const SamHeaderPtr hdr(sam_hdr_read(fp.get()));
  const BamRecordPtr record(bam_init1());
  bam1_t* b = record.get();
  while (hdr && sam_read1(fp.get(), hdr.get(), b) >= 0) {
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
  return reads;
}

// Alignment tasks from real reads: each read near its bwa position (unmapped ones against a random
// stretch) with bands of +-5, +-20 and +-50 diagonals.
inline AlignTaskBatch real_align_tasks(const Reference& ref_, const std::vector<RealRead>& reads) {
  const Reference* ref = &ref_;
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
  return tasks;
}

inline void expect_same_likelihoods(const HmmResultBatch& cpu, const HmmResultBatch& gpu,
                                    const std::string& what) {
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
inline HmmTaskBatch random_hmm_tasks(uint64_t seed, int nreads, int nhaps, bool all_pairs) {
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

// Pair-HMM pairs from real reads: reads against 400-base reference windows and three edited copies
// (SNV, 3-base deletion, 2-base insertion), plus unplaced reads against random windows.
inline HmmTaskBatch real_hmm_tasks(const Reference& ref_, const std::vector<RealRead>& reads) {
  const Reference* ref = &ref_;
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
  return tasks;
}

}  // namespace omicsd::test
