#pragma once
// Warp-cooperative pair-HMM float pass: the device algorithm of the CUDA genotype backend, written once
// against the SIMT lane layer (host/common/simt.hpp) so the CPU emulation runs the same code in CI.
//
// Layout. A (read, haplotype) pair is computed by a group of P lanes (32 / P pairs share a warp). The
// read's rows go round the lanes in stripes: lane L computes rows L + 1, L + 1 + P, L + 1 + 2P, ...,
// each row left to right, one cell per step, lane L starting L steps after lane 0 (a wavefront). At
// step t lane L computes (i, j) and needs
//   (i-1, j)   up, M and I: lane L - 1 computed it one step before: a warp shuffle;
//   (i-1, j-1) diagonal, M, I and D: what the lane received one step before;
//   (i, j-1)   left, M and D: its own previous cell (registers).
// Lane 0 starts row i + 1 of the next stripe while lane P - 1 is still on row i, so lane P - 1 writes
// its rows into a carry row (3 x (hlen + 1) floats: the pair's float workspace) and lane 0 reads them
// hlen - P + 1 steps later, before they are overwritten (this needs hlen >= P: see pair_hmm_warp_p).
// The cell is pair_hmm_cell() of host/call/pair_hmm.hpp with the emission prior pair_hmm_prior() (the
// rule pair_hmm_row_priors() tabulates for the scalar pass), on the same operands; the last row's
// lane adds M + I in ascending j exactly as the scalar sum does. So the scaled sum S is bit-identical
// with the scalar float pass, and the caller finishes as pair_hmm_log10() does: log10 of S, or the
// scalar double pass when S < kPairHmmFloatMin (its row rescaling needs whole rows; it is rare).
#include <cstdint>
#include <type_traits>

#include "host/call/pair_hmm.hpp"
#include "host/common/simt.hpp"

namespace omicsd {

// Lanes per pair: the largest power of two <= min(32, rlen, hlen), at least 4; 0 when the pair is too
// small for a group (rlen or hlen below 4) and runs the scalar pass instead.
OMICSD_HD int32_t pair_hmm_warp_p(int32_t rlen, int32_t hlen) {
  const int32_t n = rlen < hlen ? rlen : hlen;
  if (n < 4) return 0;
  int32_t p = 4;
  while (p < 32 && 2 * p <= n) p *= 2;
  return p;
}
// Steps of the wavefront: the last row's lane finishes its last cell then.
OMICSD_HD int32_t pair_hmm_warp_steps(int32_t rlen, int32_t hlen, int32_t p) {
  return (rlen - 1) % p + ((rlen - 1) / p + 1) * hlen;
}

// One pair as a lane sees it (every lane of a group holds its group's pair). rlen == 0: no pair.
struct HmmWarpPair {
  const uint8_t* read = nullptr;
  const uint8_t* qual = nullptr;
  const uint8_t* hap = nullptr;
  float* carry = nullptr;  // pair_hmm_workspace_floats(hlen) floats
  int32_t rlen = 0, hlen = 0;
};

// The float pass of the pairs of one warp (groups of P lanes, P = pair_hmm_warp_p of each pair). Every
// lane of a group ends with its pair's scaled final sum S in sum[l].
template <int P>
OMICSD_HD void pair_hmm_float_warp(const simt::Lanes<HmmWarpPair>& pair, const PairHmmTables<float>& tables,
                                   simt::Lanes<float>& sum) {
  using simt::each;
  using simt::Lanes;
  static_assert(P >= 4 && P <= simt::kWarpSize && (P & (P - 1)) == 0, "P: 4, 8, 16 or 32 lanes");
  const PairHmmTransitions<float> tr = pair_hmm_transitions(tables);

  Lanes<int32_t> steps, row, col;
  Lanes<float> initial, ms, is, ds;    // this step's cell (sent on)
  Lanes<float> mdg, idg, ddg, ml, dl;  // diagonal and left operands
  Lanes<float> acc;                    // the last row's running sum
  Lanes<float> pmatch, pmismatch;      // the lane's row: its read base's match / mismatch priors
  Lanes<uint8_t> rbase;                // ... and the base
  each([&](int l) {
    const HmmWarpPair& d = pair[l];
    const int32_t lane = l & (P - 1);
    steps[l] = d.rlen > 0 ? pair_hmm_warp_steps(d.rlen, d.hlen, P) : 0;
    initial[l] = d.hlen > 0 ? kPairHmmFloatScale / float(d.hlen) : 0.0f;
    row[l] = lane + 1;
    col[l] = -lane;  // 0-based column of this step's cell; negative: not started
    ms[l] = is[l] = ds[l] = mdg[l] = idg[l] = ddg[l] = ml[l] = dl[l] = acc[l] = 0.0f;
    pmatch[l] = pmismatch[l] = 0.0f;
    rbase[l] = 0;
  });
  const int32_t total = simt::warp_max(steps);

  for (int32_t t = 0; t < total; ++t) {
    const Lanes<float> xm = simt::shfl_rotate_up<P>(ms);
    const Lanes<float> xi = simt::shfl_rotate_up<P>(is);
    const Lanes<float> xd = simt::shfl_rotate_up<P>(ds);
    each([&](int l) {
      const HmmWarpPair& d = pair[l];
      const int32_t lane = l & (P - 1);
      const int32_t i = row[l], c = col[l];
      float m_out = 0.0f, i_out = 0.0f, d_out = 0.0f;
      if (t < steps[l] && c >= 0 && i <= d.rlen) {
        const int32_t j = c + 1;
        const int32_t stride = d.hlen + 1;
        // (i-1, j): row 0 is M = I = 0, D = initial; lane 0 reads the previous stripe's last row.
        float m_up, i_up, d_up;
        if (lane != 0) {
          m_up = xm[l];
          i_up = xi[l];
          d_up = xd[l];
        } else if (i == 1) {
          m_up = i_up = 0.0f;
          d_up = initial[l];
        } else {
          m_up = d.carry[j];
          i_up = d.carry[stride + j];
          d_up = d.carry[2 * stride + j];
        }
        if (j == 1) {
          // Column 0: zeros, except D(0, 0) = initial; the row's priors.
          mdg[l] = idg[l] = 0.0f;
          ddg[l] = i == 1 ? initial[l] : 0.0f;
          ml[l] = dl[l] = 0.0f;
          rbase[l] = d.read[i - 1];
          pair_hmm_base_probs<float>(d.qual[i - 1], tables, &pmatch[l], &pmismatch[l]);
        }
        // The value pair_hmm_row_priors() puts at prof[hap & 7], without the 8-entry profile.
        const float prior = pair_hmm_prior<float>(rbase[l], d.hap[j - 1] & 7, pmatch[l], pmismatch[l]);
        pair_hmm_cell<float>(prior, mdg[l], idg[l], ddg[l], m_up, i_up, ml[l], dl[l], tr, &m_out, &i_out,
                             &d_out);
        mdg[l] = m_up;
        idg[l] = i_up;
        ddg[l] = d_up;
        ml[l] = m_out;
        dl[l] = d_out;
        if (lane == P - 1 && i < d.rlen) {
          d.carry[j] = m_out;
          d.carry[stride + j] = i_out;
          d.carry[2 * stride + j] = d_out;
        }
        if (i == d.rlen) acc[l] = acc[l] + (m_out + i_out);
      }
      ms[l] = m_out;
      is[l] = i_out;
      ds[l] = d_out;
      if (c + 1 == d.hlen) {
        col[l] = 0;
        row[l] = i + P;
      } else {
        col[l] = c + 1;
      }
    });
    simt::syncwarp();  // lane P - 1's carry writes before lane 0's reads
  }

  // The last row's lane holds S.
  Lanes<int> owner;
  each([&](int l) { owner[l] = pair[l].rlen > 0 ? (pair[l].rlen - 1) % P : 0; });
  sum = simt::shfl_idx<P>(acc, owner);
}

// Calls f(std::integral_constant<int, P>) for p (pair_hmm_warp_p). False for p == 0.
template <class F>
bool with_pair_hmm_warp_shape(int32_t p, F&& f) {
  using std::integral_constant;
  switch (p) {
    case 4:
      f(integral_constant<int, 4>{});
      return true;
    case 8:
      f(integral_constant<int, 8>{});
      return true;
    case 16:
      f(integral_constant<int, 16>{});
      return true;
    case 32:
      f(integral_constant<int, 32>{});
      return true;
    default:
      return false;
  }
}

}  // namespace omicsd
