#pragma once
// Banded affine-gap alignment of a read (query) against a reference window (target) with soft
// clipping: the one recurrence both the CPU backend and the CUDA kernels run.
//
// Cells (i, j), 1 <= i <= m query bases and 1 <= j <= n target bases consumed, are computed only
// inside the diagonal band lo <= j - i <= hi. Gotoh recurrences, gap of length L costs open + L*extend:
//   E(i,j) = max(H(i,j-1) - open - ext, E(i,j-1) - ext)        deletion from the read
//   F(i,j) = max(H(i-1,j) - open - ext, F(i-1,j) - ext)        insertion in the read
//   M(i,j) = max(H(i-1,j-1), S(i-1)) + s(q[i-1], t[j-1])      S(0) = 0, S(i>0) = -clip5
//   H(i,j) = max(M, E, F)
// S lets an alignment start after any number of clipped read bases at the cost of clip5 and at any
// target position for free; the end is the best M cell, less clip3 unless i == m (any M(i,j), also
// where H(i,j) is a gap: with a large clip3 an alignment ending at the read's last base can be the
// best even though a gap scores more in that cell). The returned
// `score` is the alignment's own score (bwa's AS), without clip penalties.
//
// Ties are broken by fixed rules so every backend gives the same alignment: M before E before F,
// continuing before restarting, gap open before extend, and among equal end cells the one in the
// latest row, then the first column.
#include <cstdint>

#include "host/align/scoring.hpp"
#include "host/common/hd.hpp"

namespace omicsd {

inline constexpr int32_t kNegInf = -0x20000000;

// BAM CIGAR op codes used by the aligner.
inline constexpr uint32_t kCigarM = 0, kCigarI = 1, kCigarD = 2, kCigarS = 4;

struct BandedResult {
  int32_t score = kNegInf;      // alignment score without clip penalties (AS); kNegInf: no alignment
  int32_t objective = kNegInf;  // score less the clip penalties: what the DP maximised
  int32_t qbeg = 0, qend = 0;   // aligned query interval [qbeg, qend)
  int32_t tbeg = 0, tend = 0;   // aligned target interval [tbeg, tend)
  uint32_t n_cigar = 0;         // ops written (soft clips included)
};

OMICSD_HD int32_t band_width(int32_t lo, int32_t hi) { return hi - lo + 1; }
// Worst-case CIGAR length for a query of m bases (alternating ops plus two clips).
OMICSD_HD uint32_t max_cigar_ops(int32_t m) { return uint32_t(2 * m + 4); }

OMICSD_HD int32_t max2(int32_t a, int32_t b) { return a > b ? a : b; }
OMICSD_HD int32_t min2(int32_t a, int32_t b) { return a < b ? a : b; }

// One cell of the recurrence: the only place its arithmetic and its direction bits are written (the
// scalar fill below and the warp-cooperative fill of host/align/banded_warp.hpp both call it).
// h_diag = H(i-1,j-1), h_up/f_up = H/F(i-1,j), h_left/e_left = H/E(i,j-1), restart = S(i-1),
// sub = s(q[i-1], t[j-1]), gap_open_ext = gap_open + gap_extend.
struct BandedCell {
  int32_t h, e, f, m;  // H, E, F and M of the cell
  uint8_t dir;         // the direction byte described at banded_fill
};
OMICSD_HD BandedCell banded_cell(int32_t h_diag, int32_t h_up, int32_t f_up, int32_t h_left, int32_t e_left,
                                 int32_t restart, int32_t sub, int32_t gap_open_ext, int32_t gap_extend) {
  const int32_t f_open = h_up - gap_open_ext, f_ext = f_up - gap_extend;
  const int32_t fv = max2(f_open, f_ext);
  const int32_t e_open = h_left - gap_open_ext, e_ext = e_left - gap_extend;
  const int32_t ev = max2(e_open, e_ext);
  const bool from_start = restart > h_diag;
  const int32_t mv = (from_start ? restart : h_diag) + sub;
  int32_t hv = mv;
  uint8_t src = from_start ? 0 : 1;
  if (ev > hv) {
    hv = ev;
    src = 2;
  }
  if (fv > hv) {
    hv = fv;
    src = 3;
  }
  BandedCell c;
  c.h = hv;
  c.e = ev;
  c.f = fv;
  c.m = mv;
  c.dir = uint8_t(src | ((e_ext > e_open) << 2) | ((f_ext > f_open) << 3) | (from_start << 4));
  return c;
}

// Fills the band. Workspace: h and f hold band_width + 1 int32 each; dir holds m * band_width bytes
// (bits 0-1: source of H: 0 start, 1 diagonal, 2 E, 3 F; bit 2: E extended; bit 3: F extended;
// bit 4: M itself starts here, from S, rather than continuing from H(i-1,j-1)).
// Returns the best end cell in (*best_i, *best_j) and its objective, or kNegInf when no cell exists.
OMICSD_HD int32_t banded_fill(const uint8_t* q, int32_t m, const uint8_t* t, int32_t n, int32_t lo,
                              int32_t hi, const ScoringParams& p, int32_t* h, int32_t* f, uint8_t* dir,
                              int32_t* best_i, int32_t* best_j) {
  const int32_t w = band_width(lo, hi);
  const int32_t gap_open = p.gap_open + p.gap_extend;
  for (int32_t k = 0; k <= w; ++k) {
    h[k] = kNegInf;
    f[k] = kNegInf;
  }
  int32_t best = kNegInf, bi = 0, bj = 0;
  for (int32_t i = 1; i <= m; ++i) {
    const uint8_t qb = q[i - 1];
    const int32_t restart = (i == 1) ? 0 : -p.clip5;
    const int32_t end_penalty = (i == m) ? 0 : p.clip3;
    uint8_t* drow = dir + int64_t(i - 1) * w;
    // Cells of this row inside the target, 0 <= kb <= k <= ke < w; the others are -inf. Cell k reads
    // the previous row's h[k], h[k+1], f[k+1] before overwriting h[k], f[k], so the -inf prefix can
    // be written first and the suffix after.
    const int32_t kb = max2(0, 1 - i - lo);
    const int32_t ke = min2(w - 1, n - i - lo);
    for (int32_t k = 0; k < kb && k < w; ++k) {
      h[k] = kNegInf;
      f[k] = kNegInf;
      drow[k] = 0;
    }
    // Substitution scores of this row's read base against each target code (a query profile).
    int32_t sub[5];
    for (uint8_t c = 0; c < 5; ++c) sub[c] = substitution_score(qb, c, p);
    const uint8_t* trow = t + (i + lo - 1);  // trow[k] = t[j - 1]
    int32_t e = kNegInf, h_left = kNegInf;
    int32_t row_best = kNegInf, row_j = 0;
    for (int32_t k = kb; k <= ke; ++k) {
      // h[k] is H(i-1, j-1), h[k+1] and f[k+1] are H and F of (i-1, j).
      const BandedCell c = banded_cell(h[k], h[k + 1], f[k + 1], h_left, e, restart,
                                       sub[trow[k] < 5 ? trow[k] : 4], gap_open, p.gap_extend);
      drow[k] = c.dir;
      h[k] = c.h;
      f[k] = c.f;
      e = c.e;
      h_left = c.h;
      // The row's best end: its first column with the highest M score.
      const int32_t cand = c.m - end_penalty;
      if (cand > row_best) {
        row_best = cand;
        row_j = i + lo + k;
      }
    }
    for (int32_t k = max2(ke + 1, kb); k < w; ++k) {
      h[k] = kNegInf;
      f[k] = kNegInf;
      drow[k] = 0;
    }
    // Equal ends: the later row wins (the earlier column within a row was kept above).
    if (ke >= kb && row_best >= best) {
      best = row_best;
      bi = i;
      bj = row_j;
    }
  }
  *best_i = bi;
  *best_j = bj;
  return best;
}

// Pushes `len` bases of `op` onto a reversed CIGAR, merging with the previous op when equal.
OMICSD_HD void cigar_push(uint32_t* cigar, uint32_t* n, uint32_t op, uint32_t len) {
  if (len == 0) return;
  if (*n > 0 && (cigar[*n - 1] & 0xf) == op) {
    cigar[*n - 1] += len << 4;
  } else {
    cigar[(*n)++] = (len << 4) | op;
  }
}

// The direction matrix as banded_fill lays it out: row i - 1, band column k.
struct RowMajorDir {
  const uint8_t* dir;
  int32_t w;
  OMICSD_HD uint8_t operator()(int32_t i, int32_t k) const { return dir[int64_t(i - 1) * w + k]; }
};

// Walks the direction matrix back from the end cell and writes the CIGAR (with soft clips) in
// read order. `cigar` must hold max_cigar_ops(m) entries. `dir(i, k)` returns the direction byte of
// cell (i, j = i + lo + k): any layout a fill wrote (RowMajorDir, or the warp fill's StepLaneDir).
template <class Dir>
OMICSD_HD BandedResult banded_traceback_in(const uint8_t* q, int32_t m, const uint8_t* t, int32_t lo,
                                           const ScoringParams& p, const Dir& dir, int32_t objective,
                                           int32_t bi, int32_t bj, uint32_t* cigar) {
  BandedResult r;
  if (objective == kNegInf || bi == 0) return r;
  uint32_t n = 0;
  cigar_push(cigar, &n, kCigarS, uint32_t(m - bi));
  int32_t i = bi, j = bj, state = 0;  // 0: H, 1: E, 2: F
  int32_t raw = 0;
  bool end_cell = true;  // the end is an M cell even where H(bi, bj) came from a gap
  for (;;) {
    const uint8_t d = dir(i, j - i - lo);
    if (state == 0) {
      const uint8_t src = end_cell ? uint8_t(((d >> 4) & 1) ? 0 : 1) : uint8_t(d & 3);
      end_cell = false;
      if (src <= 1) {
        raw += substitution_score(q[i - 1], t[j - 1], p);
        cigar_push(cigar, &n, kCigarM, 1);
        --i;
        --j;
        if (src == 0) break;
      } else {
        state = src == 2 ? 1 : 2;
      }
    } else if (state == 1) {
      const bool ext = (d >> 2) & 1;
      cigar_push(cigar, &n, kCigarD, 1);
      raw -= ext ? p.gap_extend : p.gap_open + p.gap_extend;
      --j;
      if (!ext) state = 0;
    } else {
      const bool ext = (d >> 3) & 1;
      cigar_push(cigar, &n, kCigarI, 1);
      raw -= ext ? p.gap_extend : p.gap_open + p.gap_extend;
      --i;
      if (!ext) state = 0;
    }
  }
  cigar_push(cigar, &n, kCigarS, uint32_t(i));
  for (uint32_t a = 0, b = n - 1; a < b; ++a, --b) {
    const uint32_t tmp = cigar[a];
    cigar[a] = cigar[b];
    cigar[b] = tmp;
  }
  r.score = raw;
  r.objective = objective;
  r.qbeg = i;
  r.qend = bi;
  r.tbeg = j;
  r.tend = bj;
  r.n_cigar = n;
  return r;
}

// banded_traceback_in over banded_fill's row-major matrix.
OMICSD_HD BandedResult banded_traceback(const uint8_t* q, int32_t m, const uint8_t* t, int32_t lo, int32_t hi,
                                        const ScoringParams& p, const uint8_t* dir, int32_t objective,
                                        int32_t bi, int32_t bj, uint32_t* cigar) {
  return banded_traceback_in(q, m, t, lo, p, RowMajorDir{dir, band_width(lo, hi)}, objective, bi, bj, cigar);
}

}  // namespace omicsd
