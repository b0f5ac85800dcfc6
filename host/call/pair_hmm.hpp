#pragma once
// Pair-HMM likelihood of a read given a candidate haplotype, log10 P(read | haplotype): the one
// recurrence both the CPU genotype backend and the CUDA kernels run.
//
// Model (the standard three-state Match / Insertion / Deletion pair-HMM, as in GATK's PairHMM):
// the read is aligned globally (every read base is emitted), the haplotype locally (the alignment may
// start at any of the hlen haplotype positions with prior 1/hlen and end anywhere). Cells (i, j) have
// consumed i read bases and j haplotype bases, 1 <= i <= rlen, 1 <= j <= hlen:
//   M(i,j) = prior(i,j) * (mm * M(i-1,j-1) + im * (I(i-1,j-1) + D(i-1,j-1)))
//   I(i,j) = mi * M(i-1,j) + ii * I(i-1,j)             read base i inserted (not in the haplotype)
//   D(i,j) = md * M(i,j-1) + dd * D(i,j-1)             haplotype base j deleted from the read
// with row 0: M = I = 0 and D(0,j) = 1/hlen for 0 <= j <= hlen (the free start), column 0 of every
// later row all 0, and P(read | hap) = sum_{j=1..hlen} (M(rlen,j) + I(rlen,j)). So an alignment
// starts with a Match (read base 1 is never an insertion) and ends with a Match or an Insertion,
// never with a deletion.
//
// Probabilities (Phred q -> 10^(-q/10)), built once on the host by make_pair_hmm_model():
//   gap open  g = 10^(-gap_open/10)          (default Phred 45), the same for insertions and deletions
//   gap cont. c = 10^(-gap_continuation/10)  (default Phred 10)
//   mm = 1 - 2g, im = 1 - c, mi = md = g, ii = dd = c
//   prior(i,j) = 1 - e          if read[i] == hap[j] or either base is N (code >= 4),
//              = e / 3          otherwise, where e = 10^(-Q/10) and
//                               Q = clamp(qual[i], min_base_qual, kPairHmmMaxQual).
// min_base_qual (default 6, GATK's MIN_USABLE_Q_SCORE) keeps quality 0-1 bases, e.g. after capping
// base qualities at a low MAPQ, from inverting the evidence (at Q0 a match would have probability 0
// and a mismatch 1/3); 0 turns the floor off.
// N handling (GATK's rule): an N on either side is an uninformative match: it gets the quality-based
// match probability 1 - e. So an all-N read scores the same against every haplotype of one length.
// Base codes are those of host/common/dna.hpp (A,C,G,T = 0..3, N = 4); any code above 3 acts as N.
//
// Numerics (the rule every backend follows, so results are bit-identical):
//  1. Float pass, probability space, every value scaled by kPairHmmFloatScale = 2^120 (D(0,j) =
//     2^120 / hlen) as GATK/GKL do. The scaled final sum S is accumulated in float, j ascending,
//     S = S + (M + I).
//  2. If S < kPairHmmFloatMin = 1e-28 (P(read | hap) below about 7.5e-65, log10 < -64.1: cells may
//     have underflowed float's range), the pair is recomputed in double with kPairHmmDoubleScale =
//     2^1020 (D(0,j) = 2^1020 / hlen). The double pass additionally rescales by exact powers of two so
//     it never underflows: after each row i < rlen whose largest M/I/D value is below 2^-512 (and
//     above 0), every value of the row is multiplied by 2^1000 and the result's exponent is corrected
//     by -1000. (Multiplying by a power of two is exact, so this only keeps tiny cells normal.)
//  3. The result is log10(S) minus the scale's log10, computed by pair_hmm_log10_pow2(): a
//     deterministic log10 (frexp + a fixed atanh series, only +, -, *, /) so the CPU and the GPU
//     return the same bits (libm's and CUDA's log10 differ in the last ulp). The float pass's S is
//     widened to double first; the double result is returned as is.
//  Edge cases: rlen == 0 gives 0 (probability 1); hlen == 0 with rlen > 0 gives -HUGE_VAL.
//
// Bit-identical CPU and GPU results need a fixed operation order (the parenthesisation above, written
// once in pair_hmm_cell()) and exact IEEE single/double arithmetic on both sides:
//  * the CUDA build must compile every kernel that calls these functions with --fmad=false (no fused
//    multiply-add contraction), and without --use_fast_math (keep the defaults --prec-div=true,
//    --prec-sqrt=true, --ftz=false: the float pass relies on IEEE division for 2^120/hlen and on
//    denormals not being flushed);
//  * the host build must not contract either, and must not use -ffast-math / -Ofast. Note that GCC's
//    default for C++ is -ffp-contract=fast even with -std=c++20 (ISO mode turns contraction off for C
//    only): today's x86-64 build has no FMA instructions to contract into (no -march flag), but
//    -march=native / x86-64-v3 or an aarch64 host would fuse. The host build should therefore pass
//    -ffp-contract=off; tests/host/call/test_pair_hmm.cpp (NoFusedMultiplyAddInTheCell) fails if it fuses;
//  * the tables (PairHmmModel) are computed on the host with std::pow and copied to the device, never
//    recomputed there;
//  * a wavefront (anti-diagonal) kernel computes the same cells with the same pair_hmm_cell() call;
//    the final sum must still be accumulated in j order, and the double pass's row rescaling must be
//    applied after each full row (a row-wise pass, which the rare double fallback can afford).
#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "host/common/error.hpp"
#include "host/common/hd.hpp"

namespace omicsd {

// Qualities above this are treated as this (tables hold kPairHmmMaxQual + 1 entries).
inline constexpr int kPairHmmMaxQual = 127;
inline constexpr float kPairHmmFloatScale = 0x1p120f;  // 2^120
inline constexpr int kPairHmmFloatScaleLog2 = 120;
inline constexpr float kPairHmmFloatMin = 1e-28f;        // scaled float sum below this: double pass
inline constexpr double kPairHmmDoubleScale = 0x1p1020;  // 2^1020
inline constexpr int kPairHmmDoubleScaleLog2 = 1020;
inline constexpr double kPairHmmRescaleBelow = 0x1p-512;  // double pass: row max below this ...
inline constexpr double kPairHmmRescaleBy = 0x1p1000;     // ... is multiplied by this
inline constexpr int kPairHmmRescaleLog2 = 1000;

// User-level parameters, Phred-scaled like GATK's (--gap-open / --gap-continuation penalties).
struct PairHmmParams {
  double gap_open = 45.0;          // P(open an insertion) = P(open a deletion) = 10^(-gap_open/10)
  double gap_continuation = 10.0;  // P(extend a gap) = 10^(-gap_continuation/10)
  int min_base_qual = 6;           // base qualities below this count as this (0..kPairHmmMaxQual)
};

// Transition and emission probabilities in one precision.
template <class T>
struct PairHmmTables {
  T mm, im, mi, ii, md, dd;         // see the header comment
  T match[kPairHmmMaxQual + 1];     // 1 - 10^(-Q/10), Q = max(q, min_base_qual)
  T mismatch[kPairHmmMaxQual + 1];  // 10^(-Q/10) / 3
};

// Everything the recurrence needs, in both precisions; build with make_pair_hmm_model() on the host.
struct PairHmmModel {
  PairHmmTables<float> f;
  PairHmmTables<double> d;
};

template <class T>
OMICSD_HD const PairHmmTables<T>& pair_hmm_tables(const PairHmmModel& m);
template <>
OMICSD_HD const PairHmmTables<float>& pair_hmm_tables<float>(const PairHmmModel& m) {
  return m.f;
}
template <>
OMICSD_HD const PairHmmTables<double>& pair_hmm_tables<double>(const PairHmmModel& m) {
  return m.d;
}

// Host only: the probabilities of `p` in double (std::pow), rounded once to float for the float
// tables (entries below min_base_qual repeat its value). Throws InputError when the parameters make no model
// (gap open below Phred ~3.02 leaves no probability to stay in Match; gap continuation must be > 0).
inline PairHmmModel make_pair_hmm_model(const PairHmmParams& p) {
  if (!(p.gap_open > 0.0) || !std::isfinite(p.gap_open) || !(p.gap_continuation > 0.0) ||
      !std::isfinite(p.gap_continuation)) {
    throw InputError("pair-HMM: gap penalties must be positive finite Phred values (gap open " +
                     std::to_string(p.gap_open) + ", gap continuation " + std::to_string(p.gap_continuation) +
                     ")");
  }
  const double g = std::pow(10.0, -p.gap_open / 10.0);
  const double c = std::pow(10.0, -p.gap_continuation / 10.0);
  if (!(1.0 - 2.0 * g > 0.0)) {
    throw InputError("pair-HMM: gap open penalty " + std::to_string(p.gap_open) +
                     " is too small (needs 2 * 10^(-open/10) < 1, i.e. open > 3.02)");
  }
  if (p.min_base_qual < 0 || p.min_base_qual > kPairHmmMaxQual) {
    throw InputError("pair-HMM: minimum base quality " + std::to_string(p.min_base_qual) + " is outside 0.." +
                     std::to_string(kPairHmmMaxQual));
  }
  PairHmmModel m{};
  m.d.mm = 1.0 - 2.0 * g;
  m.d.im = 1.0 - c;
  m.d.mi = g;
  m.d.ii = c;
  m.d.md = g;
  m.d.dd = c;
  for (int q = 0; q <= kPairHmmMaxQual; ++q) {
    const double e = std::pow(10.0, -double(q < p.min_base_qual ? p.min_base_qual : q) / 10.0);
    m.d.match[q] = 1.0 - e;
    m.d.mismatch[q] = e / 3.0;
  }
  m.f.mm = float(m.d.mm);
  m.f.im = float(m.d.im);
  m.f.mi = float(m.d.mi);
  m.f.ii = float(m.d.ii);
  m.f.md = float(m.d.md);
  m.f.dd = float(m.d.dd);
  for (int q = 0; q <= kPairHmmMaxQual; ++q) {
    m.f.match[q] = float(m.d.match[q]);
    m.f.mismatch[q] = float(m.d.mismatch[q]);
  }
  return m;
}

// Workspace of one pair: three rows (M, I, D) of hlen + 1 values for each pass. Only the float rows
// are touched unless the pair falls back to double.
struct PairHmmWorkspace {
  float* f = nullptr;   // pair_hmm_workspace_floats(hlen) floats
  double* d = nullptr;  // pair_hmm_workspace_doubles(hlen) doubles
};
OMICSD_HD size_t pair_hmm_row_length(int32_t hlen) { return size_t(hlen > 0 ? hlen : 0) + 1; }
OMICSD_HD size_t pair_hmm_workspace_floats(int32_t hlen) { return 3 * pair_hmm_row_length(hlen); }
OMICSD_HD size_t pair_hmm_workspace_doubles(int32_t hlen) { return 3 * pair_hmm_row_length(hlen); }

// Which pass produced a result.
enum class PairHmmPass : uint8_t { kNone = 0, kFloat = 1, kDouble = 2 };

// log10(x * 2^pow2) for finite x > 0, deterministic on host and device: x = m * 2^e (frexp, exact),
// m moved into [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) with s = (m-1)/(m+1), |s| <= 0.1716, by its
// series to s^23 (truncation < 1e-18 relative), then log10 = ln m * log10(e) + (e + pow2) * log10(2).
// Accurate to a few ulp of the result's magnitude. x <= 0 gives -HUGE_VAL.
OMICSD_HD double pair_hmm_log10_pow2(double x, int pow2) {
  if (!(x > 0.0)) return -HUGE_VAL;
  int e = 0;
  double m = ::frexp(x, &e);
  if (m < 0.70710678118654752440) {
    m = m * 2.0;
    e = e - 1;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double poly = 1.0 / 23.0;
  poly = poly * s2 + 1.0 / 21.0;
  poly = poly * s2 + 1.0 / 19.0;
  poly = poly * s2 + 1.0 / 17.0;
  poly = poly * s2 + 1.0 / 15.0;
  poly = poly * s2 + 1.0 / 13.0;
  poly = poly * s2 + 1.0 / 11.0;
  poly = poly * s2 + 1.0 / 9.0;
  poly = poly * s2 + 1.0 / 7.0;
  poly = poly * s2 + 1.0 / 5.0;
  poly = poly * s2 + 1.0 / 3.0;
  poly = poly * s2 + 1.0;
  const double ln_m = 2.0 * s * poly;
  const double kLog10E = 0.43429448190325182765;
  const double kLog10Two = 0.30102999566398119521;
  return ln_m * kLog10E + double(e + pow2) * kLog10Two;
}

// The six transition probabilities alone: what a kernel keeps in registers (`Tables` of pair_hmm_cell
// may be this or PairHmmTables<T>).
template <class T>
struct PairHmmTransitions {
  T mm, im, mi, ii, md, dd;
};
template <class T>
OMICSD_HD PairHmmTransitions<T> pair_hmm_transitions(const PairHmmTables<T>& t) {
  return PairHmmTransitions<T>{t.mm, t.im, t.mi, t.ii, t.md, t.dd};
}

// One cell of the recurrence: the only place its arithmetic is written. `*_diag` are (i-1, j-1),
// `*_up` (i-1, j), `*_left` (i, j-1).
template <class T, class Tables>
OMICSD_HD void pair_hmm_cell(T prior, T m_diag, T i_diag, T d_diag, T m_up, T i_up, T m_left, T d_left,
                             const Tables& t, T* m_out, T* i_out, T* d_out) {
  *m_out = prior * (t.mm * m_diag + t.im * (i_diag + d_diag));
  *i_out = t.mi * m_up + t.ii * i_up;
  *d_out = t.md * m_left + t.dd * d_left;
}

// The emission prior of read base `read_base` against haplotype code `hap_code` (& 7; codes >= 4 are
// N), given the read base's match and mismatch probabilities: the one place the rule is written.
template <class T>
OMICSD_HD T pair_hmm_prior(uint8_t read_base, int hap_code, T match, T mismatch) {
  return (read_base > 3 || hap_code > 3 || hap_code == int(read_base)) ? match : mismatch;
}
// The match and mismatch probabilities of a base of quality `qual`.
template <class T>
OMICSD_HD void pair_hmm_base_probs(uint8_t qual, const PairHmmTables<T>& t, T* match, T* mismatch) {
  const int q = qual > kPairHmmMaxQual ? kPairHmmMaxQual : int(qual);
  *match = t.match[q];
  *mismatch = t.mismatch[q];
}

// Emission priors of one read base against each haplotype code, indexed by code & 7 (codes >= 4 are N).
template <class T>
OMICSD_HD void pair_hmm_row_priors(uint8_t read_base, uint8_t qual, const PairHmmTables<T>& t, T prof[8]) {
  T match, mismatch;
  pair_hmm_base_probs<T>(qual, t, &match, &mismatch);
  for (int c = 0; c < 8; ++c) prof[c] = pair_hmm_prior<T>(read_base, c, match, mismatch);
}

// The forward pass in one precision over rows of hlen + 1 values (ws: 3 rows). Returns the scaled
// final sum S; *extra_log2 receives the exponent correction from rescaling (Rescale only).
template <class T, bool Rescale>
OMICSD_HD T pair_hmm_forward(const uint8_t* read, const uint8_t* quals, int32_t rlen, const uint8_t* hap,
                             int32_t hlen, const PairHmmTables<T>& t, T initial, T* ws, int* extra_log2) {
  const size_t row = pair_hmm_row_length(hlen);
  T* M = ws;
  T* I = ws + row;
  T* D = ws + 2 * row;
  for (int32_t j = 0; j <= hlen; ++j) {
    M[j] = T(0);
    I[j] = T(0);
    D[j] = initial;
  }
  int shift = 0;
  for (int32_t i = 1; i <= rlen; ++i) {
    T prof[8];
    pair_hmm_row_priors<T>(read[i - 1], quals[i - 1], t, prof);
    T m_diag = M[0], i_diag = I[0], d_diag = D[0];
    M[0] = T(0);
    I[0] = T(0);
    D[0] = T(0);
    T m_left = T(0), d_left = T(0);
    T row_max = T(0);  // Rescale only
    for (int32_t j = 1; j <= hlen; ++j) {
      const T m_up = M[j], i_up = I[j], d_up = D[j];
      T mv, iv, dv;
      pair_hmm_cell<T>(prof[hap[j - 1] & 7], m_diag, i_diag, d_diag, m_up, i_up, m_left, d_left, t, &mv, &iv,
                       &dv);
      M[j] = mv;
      I[j] = iv;
      D[j] = dv;
      m_diag = m_up;
      i_diag = i_up;
      d_diag = d_up;
      m_left = mv;
      d_left = dv;
      if constexpr (Rescale) {
        if (mv > row_max) row_max = mv;
        if (iv > row_max) row_max = iv;
        if (dv > row_max) row_max = dv;
      }
    }
    if constexpr (Rescale) {
      if (i < rlen && row_max > T(0) && row_max < T(kPairHmmRescaleBelow)) {
        for (int32_t j = 1; j <= hlen; ++j) {
          M[j] = M[j] * T(kPairHmmRescaleBy);
          I[j] = I[j] * T(kPairHmmRescaleBy);
          D[j] = D[j] * T(kPairHmmRescaleBy);
        }
        shift += kPairHmmRescaleLog2;
      }
    }
  }
  T sum = T(0);
  for (int32_t j = 1; j <= hlen; ++j) sum = sum + (M[j] + I[j]);
  if (extra_log2) *extra_log2 = shift;
  return sum;
}

// The float pass alone (no fallback): log10 of its result, inaccurate once S < kPairHmmFloatMin.
// *scaled_sum (optional) receives S. ws: pair_hmm_workspace_floats(hlen) floats.
OMICSD_HD double pair_hmm_log10_float(const uint8_t* read, const uint8_t* quals, int32_t rlen,
                                      const uint8_t* hap, int32_t hlen, const PairHmmModel& model, float* ws,
                                      float* scaled_sum = nullptr) {
  if (rlen <= 0) return 0.0;
  if (hlen <= 0) return -HUGE_VAL;
  const float initial = kPairHmmFloatScale / float(hlen);
  const float s = pair_hmm_forward<float, false>(read, quals, rlen, hap, hlen, model.f, initial, ws, nullptr);
  if (scaled_sum) *scaled_sum = s;
  return pair_hmm_log10_pow2(double(s), -kPairHmmFloatScaleLog2);
}

// The double pass alone (with row rescaling). ws: pair_hmm_workspace_doubles(hlen) doubles.
OMICSD_HD double pair_hmm_log10_double(const uint8_t* read, const uint8_t* quals, int32_t rlen,
                                       const uint8_t* hap, int32_t hlen, const PairHmmModel& model,
                                       double* ws) {
  if (rlen <= 0) return 0.0;
  if (hlen <= 0) return -HUGE_VAL;
  const double initial = kPairHmmDoubleScale / double(hlen);
  int shift = 0;
  const double s = pair_hmm_forward<double, true>(read, quals, rlen, hap, hlen, model.d, initial, ws, &shift);
  return pair_hmm_log10_pow2(s, -kPairHmmDoubleScaleLog2 - shift);
}

// log10 P(read | haplotype): the float pass, and the double pass when the float sum is below
// kPairHmmFloatMin. `pass` (optional) receives which pass produced the value.
OMICSD_HD double pair_hmm_log10(const uint8_t* read, const uint8_t* quals, int32_t rlen, const uint8_t* hap,
                                int32_t hlen, const PairHmmModel& model, PairHmmWorkspace ws,
                                PairHmmPass* pass = nullptr) {
  if (rlen <= 0 || hlen <= 0) {
    if (pass) *pass = PairHmmPass::kNone;
    return rlen <= 0 ? 0.0 : -HUGE_VAL;
  }
  float s = 0.0f;
  const double lf = pair_hmm_log10_float(read, quals, rlen, hap, hlen, model, ws.f, &s);
  if (!(s < kPairHmmFloatMin)) {
    if (pass) *pass = PairHmmPass::kFloat;
    return lf;
  }
  if (pass) *pass = PairHmmPass::kDouble;
  return pair_hmm_log10_double(read, quals, rlen, hap, hlen, model, ws.d);
}

}  // namespace omicsd
