#pragma once
// Warp-cooperative banded fill: the device algorithm of the CUDA align backend, written once against
// the SIMT lane layer (host/common/simt.hpp) so the CPU emulation runs the very same code in CI.
//
// Layout. A task is filled by a group of P lanes (a sub-warp; 32 / P tasks share a warp), each lane
// holding V register slots: PV = P * V "virtual lanes". Virtual lane v owns the rows i with
// (i - 1) mod PV == v. The band is swept by anti-diagonals s = i + j: at step st = s - (2 + lo) every
// virtual lane computes at most one cell, (i, k) with st = 2i + k - 2 in band coordinates
// (j = i + lo + k). Its three inputs were computed earlier:
//   (i, k-1)   left, H and E: the same virtual lane one step before (registers);
//   (i-1, k+1) up, H and F: virtual lane v - 1 one step before, passed by a warp shuffle (virtual lane 0
//              receives row i - 1 from virtual lane PV - 1: the rows rotate through the lanes);
//   (i-1, k)   diagonal: what the lane received one step before.
// A row's w cells occupy w consecutive steps; the next row of the same virtual lane starts 2 * PV steps
// later, so PV >= w / 2 keeps one row per virtual lane at a time; banded_warp_shape() keeps PV close
// to w / 2 (lanes busy w / (2 PV) of the steps, 68-100% from w = 17 on) plus the ramp of the first and
// last rows (a fraction w / 2m). The per-cell
// arithmetic is banded_cell() of host/align/banded_sw.hpp, the same call the scalar fill makes; cells
// outside the target are kNegInf there and here, and the best end cell is chosen by the scalar's rules
// (highest score, then the latest row, then the first column), so the direction bytes, the end cell and
// therefore the CIGAR are bit-identical with banded_fill + banded_traceback.
//
// Direction bytes are stored step-major: at each step the PV virtual lanes of a task hold one byte
// each; four steps are packed into a 32-bit word, so the lanes of a group write PV consecutive words
// every fourth step (coalesced). StepLaneDir reads that layout for banded_traceback_in(); the traceback
// itself is the scalar one (one thread per task on the GPU).
#include <cstdint>
#include <type_traits>

#include "host/align/banded_sw.hpp"
#include "host/common/simt.hpp"

namespace omicsd {

// Bands wider than this run the scalar fill, one task per thread.
inline constexpr int32_t kBandedWarpMaxWidth = 1024;

// The warp shape for band width w: P lanes per task (a power of two, so groups are shuffle segments)
// and V register slots per lane, PV = P * V virtual lanes with 2 PV >= w. The lanes are busy about
// w / (2 PV) of the steps, so PV is kept close to w / 2: P = 4 up to w = 32 (V = ceil(w / 8)), 8 up to
// 128 (V = ceil(w / 16)), 16 up to 256 (V = ceil(w / 32)), 32 up to 1024 (V = ceil(w / 64)): at least
// 68% busy from w = 17 on (81% at w = 65 and 129, where powers of two would give 51%). Encoded as
// P * 64 + V; 0 when the band is empty or wider than kBandedWarpMaxWidth.
OMICSD_HD int32_t banded_warp_shape(int32_t w) {
  if (w < 1 || w > kBandedWarpMaxWidth) return 0;
  int32_t p, lanes_per_slot_pair;
  if (w <= 32) {
    p = 4;
  } else if (w <= 128) {
    p = 8;
  } else if (w <= 256) {
    p = 16;
  } else {
    p = 32;
  }
  lanes_per_slot_pair = 2 * p;  // one slot of P lanes covers 2P band columns
  return p * 64 + (w + lanes_per_slot_pair - 1) / lanes_per_slot_pair;
}
OMICSD_HD int32_t banded_warp_shape_lanes(int32_t shape) { return shape / 64; }
OMICSD_HD int32_t banded_warp_shape_slots(int32_t shape) { return shape % 64; }
// Virtual lanes (P * V) of band width w; 0 when the warp fill does not take it.
OMICSD_HD int32_t banded_warp_pv(int32_t w) {
  const int32_t s = banded_warp_shape(w);
  return banded_warp_shape_lanes(s) * banded_warp_shape_slots(s);
}
// Steps of the sweep: anti-diagonals 2 + lo .. 2m + hi.
OMICSD_HD int64_t banded_warp_steps(int32_t m, int32_t w) { return 2 * int64_t(m) + w - 2; }
// 32-bit words of the step-major direction layout.
OMICSD_HD uint64_t banded_warp_dir_words(int32_t m, int32_t w, int32_t pv) {
  return uint64_t((banded_warp_steps(m, w) + 3) / 4) * uint64_t(pv);
}
// Bytes of a task's direction matrix in a chunk's shared buffer: the warp layout, or banded_fill's
// m * w bytes, rounded up to whole 32-bit words so the next task's words stay aligned.
OMICSD_HD uint64_t banded_dir_bytes(int32_t m, int32_t w) {
  const int32_t pv = banded_warp_pv(w);
  const uint64_t bytes = pv > 0 ? 4 * banded_warp_dir_words(m, w, pv) : uint64_t(m) * uint64_t(w);
  return (bytes + 3) / 4 * 4;
}

// The step-major direction layout, for banded_traceback_in().
struct StepLaneDir {
  const uint32_t* words;
  int32_t pv;
  OMICSD_HD uint8_t operator()(int32_t i, int32_t k) const {
    const int64_t st = 2 * int64_t(i) + k - 2;
    const int32_t v = (i - 1) % pv;
    return uint8_t(words[(st >> 2) * pv + v] >> (8 * (st & 3)));
  }
};

// One task as a lane sees it (every lane of a group holds its group's task). m == 0: no task (the
// group idles through the warp's steps, as lanes past the end of a launch do).
struct BandedWarpTask {
  const uint8_t* q = nullptr;
  const uint8_t* t = nullptr;
  uint32_t* dir = nullptr;  // banded_warp_dir_words(m, w, pv) words
  int32_t m = 0, n = 0, lo = 0, hi = 0;
};
// The fill's result: banded_fill's return value and end cell.
struct BandedFillOut {
  int32_t objective = kNegInf, bi = 0, bj = 0;
};

// Fills the tasks of one warp: groups of P lanes with V slots each ((P, V) must be the task's
// banded_warp_shape). Every lane of a group ends with its task's BandedFillOut in out[l].
template <int P, int V>
OMICSD_HD void banded_fill_warp(const simt::Lanes<BandedWarpTask>& task, const ScoringParams& p,
                                simt::Lanes<BandedFillOut>& out) {
  using simt::each;
  using simt::Lanes;
  static_assert(P >= 4 && P <= simt::kWarpSize && (P & (P - 1)) == 0, "P: 4, 8, 16 or 32 lanes");
  static_assert(V >= 1 && V < 64, "V: 1 .. 63 register slots");
  constexpr int32_t PV = P * V;
  const int32_t gap_open_ext = p.gap_open + p.gap_extend;

  Lanes<int32_t> steps, width;
  each([&](int l) {
    const BandedWarpTask& d = task[l];
    width[l] = band_width(d.lo, d.hi);
    steps[l] = d.m > 0 ? int32_t(banded_warp_steps(d.m, width[l])) : 0;
  });
  const int32_t total = simt::warp_max(steps);

  // Per slot: the row and band column of the virtual lane's current cell (k < 0: not started; k >= w:
  // between rows), E and H of its left neighbour, the diagonal H, this step's H and F (sent on),
  // the row's best end so far (rj < 0: no cell in the target yet) and the packed direction bytes.
  Lanes<int32_t> row[V], kk[V], e[V], hl[V], hd[V], ho[V], fo[V], rbest[V], rj[V];
  Lanes<uint32_t> pack[V];
  // Set when a row starts (k == 0): its cells in the target, kb <= k <= ke (ke = -1: none, also for
  // rows past the read), t[tbase + k] = t[j - 1], the read base, S(i-1) and the end penalty.
  Lanes<int32_t> kb[V], ke[V], tbase[V], restart[V], endpen[V];
  Lanes<uint8_t> qb[V];
  Lanes<int32_t> best, bi, bj;  // the lane's best end over its finished rows
  each([&](int l) {
    const int32_t lane = l & (P - 1);
    OMICSD_UNROLL
    for (int a = 0; a < V; ++a) {
      const int32_t v = lane + P * a;
      row[a][l] = v + 1;
      kk[a][l] = -2 * v;
      e[a][l] = hl[a][l] = hd[a][l] = ho[a][l] = fo[a][l] = rbest[a][l] = kNegInf;
      rj[a][l] = -1;
      pack[a][l] = 0;
      kb[a][l] = 0;
      ke[a][l] = -1;
      tbase[a][l] = restart[a][l] = endpen[a][l] = 0;
      qb[a][l] = 0;
    }
    best[l] = kNegInf;
    bi[l] = 0;
    bj[l] = 0;
  });

  for (int32_t st = 0; st < total; ++st) {
    // H and F of (i-1, j) from the previous virtual lane.
    Lanes<int32_t> xh[V], xf[V];
    OMICSD_UNROLL
    for (int a = 0; a < V; ++a) {
      xh[a] = simt::shfl_rotate_up<P>(ho[a]);
      xf[a] = simt::shfl_rotate_up<P>(fo[a]);
    }
    each([&](int l) {
      const BandedWarpTask& d = task[l];
      const int32_t lane = l & (P - 1);
      const int32_t w = width[l];
      OMICSD_UNROLL
      for (int a = 0; a < V; ++a) {
        // Virtual lane 0 of slot a follows virtual lane P - 1 of slot a - 1 (slot V - 1 for a == 0).
        const int prev = a == 0 ? V - 1 : a - 1;
        int32_t up_h = lane == 0 ? xh[prev][l] : xh[a][l];
        int32_t up_f = lane == 0 ? xf[prev][l] : xf[a][l];
        const int32_t diag = hd[a][l];
        hd[a][l] = up_h;  // (i-1, j) is the next cell's diagonal
        const int32_t k = kk[a][l], i = row[a][l];
        if (k == 0) {  // row i starts (rows past the read, i > m, get no cells)
          e[a][l] = hl[a][l] = rbest[a][l] = kNegInf;
          rj[a][l] = -1;
          kb[a][l] = max2(0, 1 - i - d.lo);
          ke[a][l] = i <= d.m ? min2(w - 1, d.n - i - d.lo) : -1;
          tbase[a][l] = i + d.lo - 1;
          qb[a][l] = i <= d.m ? d.q[i - 1] : uint8_t(0);
          restart[a][l] = i == 1 ? 0 : -p.clip5;
          endpen[a][l] = i == d.m ? 0 : p.clip3;
        }
        int32_t h_out = kNegInf, f_out = kNegInf;
        uint32_t dbyte = 0;
        if (k >= kb[a][l] && k <= ke[a][l]) {
          // (i-1, k+1) is outside the band at its last column (and the previous virtual lane may
          // already be on its next row there when w == 2 PV).
          if (k == w - 1) up_h = up_f = kNegInf;
          const BandedCell c =
              banded_cell(diag, up_h, up_f, hl[a][l], e[a][l], restart[a][l],
                          substitution_score(qb[a][l], d.t[tbase[a][l] + k], p), gap_open_ext, p.gap_extend);
          h_out = c.h;
          f_out = c.f;
          e[a][l] = c.e;
          hl[a][l] = c.h;
          dbyte = c.dir;
          const int32_t cand = c.m - endpen[a][l];
          if (rj[a][l] < 0) rj[a][l] = 0;
          if (cand > rbest[a][l]) {
            rbest[a][l] = cand;
            rj[a][l] = i + d.lo + k;
          }
        }
        // Rows finish in increasing order of i over all virtual lanes, so ">=" keeps the latest row
        // among equal ends, as the scalar fill does (rj >= 0: the row had cells, so i <= m).
        if (k == w - 1 && rj[a][l] >= 0 && rbest[a][l] >= best[l]) {
          best[l] = rbest[a][l];
          bi[l] = i;
          bj[l] = rj[a][l];
        }
        ho[a][l] = h_out;
        fo[a][l] = f_out;
        pack[a][l] |= dbyte << (8 * (st & 3));
        if (st < steps[l] && ((st & 3) == 3 || st == steps[l] - 1)) {
          d.dir[int64_t(st >> 2) * PV + lane + P * a] = pack[a][l];
          pack[a][l] = 0;
        }
        if (k + 1 == 2 * PV) {
          kk[a][l] = 0;
          row[a][l] = i + PV;
        } else {
          kk[a][l] = k + 1;
        }
      }
    });
  }

  // The group's best end: highest objective, then the latest row (rows are distinct, so this is the
  // scalar's choice; the column came with the row).
  OMICSD_UNROLL
  for (int off = P / 2; off > 0; off >>= 1) {
    const Lanes<int32_t> ob = simt::shfl_xor<P>(best, off);
    const Lanes<int32_t> oi = simt::shfl_xor<P>(bi, off);
    const Lanes<int32_t> oj = simt::shfl_xor<P>(bj, off);
    each([&](int l) {
      if (ob[l] > best[l] || (ob[l] == best[l] && oi[l] > bi[l])) {
        best[l] = ob[l];
        bi[l] = oi[l];
        bj[l] = oj[l];
      }
    });
  }
  each([&](int l) {
    out[l].objective = best[l];
    out[l].bi = bi[l];
    out[l].bj = bj[l];
  });
}

// Calls f(std::integral_constant<int, P>, std::integral_constant<int, V>) for a banded_warp_shape():
// the one place the instantiated shapes are listed. False for shape 0.
template <class F>
bool with_banded_warp_shape(int32_t shape, F&& f) {
  // clang-format off
  switch (shape) {
#define OMICSD_BANDED_SHAPE(P, V) \
  case P * 64 + V: f(std::integral_constant<int, P>{}, std::integral_constant<int, V>{}); return true;
    OMICSD_BANDED_SHAPE(4, 1) OMICSD_BANDED_SHAPE(4, 2) OMICSD_BANDED_SHAPE(4, 3) OMICSD_BANDED_SHAPE(4, 4)
    OMICSD_BANDED_SHAPE(8, 3) OMICSD_BANDED_SHAPE(8, 4) OMICSD_BANDED_SHAPE(8, 5) OMICSD_BANDED_SHAPE(8, 6)
    OMICSD_BANDED_SHAPE(8, 7) OMICSD_BANDED_SHAPE(8, 8)
    OMICSD_BANDED_SHAPE(16, 5) OMICSD_BANDED_SHAPE(16, 6) OMICSD_BANDED_SHAPE(16, 7) OMICSD_BANDED_SHAPE(16, 8)
    OMICSD_BANDED_SHAPE(32, 5) OMICSD_BANDED_SHAPE(32, 6) OMICSD_BANDED_SHAPE(32, 7) OMICSD_BANDED_SHAPE(32, 8)
    OMICSD_BANDED_SHAPE(32, 9) OMICSD_BANDED_SHAPE(32, 10) OMICSD_BANDED_SHAPE(32, 11) OMICSD_BANDED_SHAPE(32, 12)
    OMICSD_BANDED_SHAPE(32, 13) OMICSD_BANDED_SHAPE(32, 14) OMICSD_BANDED_SHAPE(32, 15) OMICSD_BANDED_SHAPE(32, 16)
#undef OMICSD_BANDED_SHAPE
    default: return false;
  }
  // clang-format on
}

}  // namespace omicsd
