// The lane-vector CPU align backend: banded_fill_warp() (host/align/banded_warp.hpp) through the CPU
// emulation of the SIMT lane layer, one emulated warp at a time per thread, exactly as the CUDA backend
// launches it (cuda/align_backend.cu); the traceback is the scalar one on the step-major layout.
#include <algorithm>
#include <vector>

#include "host/align/align_backend.hpp"
#include "host/align/banded_warp.hpp"
#include "host/common/parallel.hpp"

namespace omicsd {

std::vector<uint32_t> warp_task_order(const AlignTaskBatch& tasks) {
  const size_t n = tasks.size();
  std::vector<uint32_t> order;
  order.reserve(n);
  std::vector<int32_t> shape(n);
  std::vector<int64_t> steps(n);
  for (size_t i = 0; i < n; ++i) {
    const int32_t w = band_width(tasks.diag_lo[i], tasks.diag_hi[i]);
    const int32_t m = int32_t(tasks.query_length[i]);
    if (m == 0 || w <= 0) continue;
    shape[i] = banded_warp_shape(w);
    steps[i] = banded_warp_steps(m, w);
    order.push_back(uint32_t(i));
  }
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return shape[a] != shape[b] ? shape[a] < shape[b] : steps[a] > steps[b];
  });
  return order;
}

namespace {

class SimtCpuAlignBackend final : public AlignBackend {
 public:
  explicit SimtCpuAlignBackend(int threads) : threads_(resolve_threads(threads)) {}
  std::string name() const override { return "cpu-simt"; }

  void align(const AlignTaskBatch& tasks, const ScoringParams& params, AlignResultBatch& out) override {
    const size_t n = tasks.size();
    out.resize(n);
    const std::vector<uint32_t> order = warp_task_order(tasks);
    // Units of work: one emulated warp (32 / P tasks of one shape) or one scalar task.
    const std::vector<simt::WarpUnit> units = simt::warp_units(
        order, [&](uint32_t i) { return banded_warp_shape(band_width(tasks.diag_lo[i], tasks.diag_hi[i])); },
        [](int32_t shape) { return simt::kWarpSize / banded_warp_shape_lanes(shape); });
    std::vector<std::vector<uint32_t>> cigars(n);
    parallel_for(units.size(), threads_, 8, [&](size_t ubegin, size_t uend) {
      std::vector<uint32_t> dir, cigar;
      std::vector<int32_t> h, f;
      std::vector<uint8_t> dir8;
      for (size_t u = ubegin; u < uend; ++u)
        run_unit(tasks, params, order, units[u].begin, units[u].end, units[u].shape, out, cigars, dir, cigar,
                 h, f, dir8);
    });
    out.cigar.clear();
    for (size_t i = 0; i < n; ++i) {
      out.cigar_offset[i] = uint32_t(out.cigar.size());
      out.cigar.insert(out.cigar.end(), cigars[i].begin(), cigars[i].end());
    }
  }

 private:
  static void run_unit(const AlignTaskBatch& tasks, const ScoringParams& params,
                       const std::vector<uint32_t>& order, size_t begin, size_t end, int32_t shape,
                       AlignResultBatch& out, std::vector<std::vector<uint32_t>>& cigars,
                       std::vector<uint32_t>& dir, std::vector<uint32_t>& cigar, std::vector<int32_t>& h,
                       std::vector<int32_t>& f, std::vector<uint8_t>& dir8) {
    auto q_of = [&](uint32_t i) { return tasks.query.data() + tasks.query_offset[i]; };
    auto t_of = [&](uint32_t i) { return tasks.target.data() + tasks.target_offset[i]; };
    if (shape == 0) {  // too wide for the warp fill: the scalar fill, as the CUDA backend's wide path
      const uint32_t i = order[begin];
      const int32_t m = int32_t(tasks.query_length[i]), lo = tasks.diag_lo[i], hi = tasks.diag_hi[i];
      const int32_t w = band_width(lo, hi);
      h.resize(size_t(w) + 1);
      f.resize(size_t(w) + 1);
      dir8.resize(size_t(m) * size_t(w));
      cigar.resize(max_cigar_ops(m));
      int32_t bi = 0, bj = 0;
      const int32_t obj = banded_fill(q_of(i), m, t_of(i), int32_t(tasks.target_length[i]), lo, hi, params,
                                      h.data(), f.data(), dir8.data(), &bi, &bj);
      const BandedResult r =
          banded_traceback(q_of(i), m, t_of(i), lo, hi, params, dir8.data(), obj, bi, bj, cigar.data());
      out.set_result(i, r);
      cigars[i].assign(cigar.begin(), cigar.begin() + r.n_cigar);
      return;
    }
    with_banded_warp_shape(shape, [&](auto p_const, auto v_const) {
      constexpr int P = decltype(p_const)::value, V = decltype(v_const)::value;
      constexpr int32_t pv = P * V;
      simt::Lanes<BandedWarpTask> lanes;
      std::vector<uint64_t> dir_at(end - begin);
      uint64_t words = 0;
      for (size_t g = 0; g < end - begin; ++g) {
        const uint32_t i = order[begin + g];
        dir_at[g] = words;
        words += banded_warp_dir_words(int32_t(tasks.query_length[i]),
                                       band_width(tasks.diag_lo[i], tasks.diag_hi[i]), pv);
      }
      if (dir.size() < words) dir.resize(words);
      for (int l = 0; l < simt::kWarpSize; ++l) {
        const size_t g = size_t(l / P);
        BandedWarpTask d;  // m == 0: the group idles
        if (begin + g < end) {
          const uint32_t i = order[begin + g];
          d = BandedWarpTask{q_of(i),
                             t_of(i),
                             dir.data() + dir_at[g],
                             int32_t(tasks.query_length[i]),
                             int32_t(tasks.target_length[i]),
                             tasks.diag_lo[i],
                             tasks.diag_hi[i]};
        }
        lanes[l] = d;
      }
      simt::Lanes<BandedFillOut> fill;
      banded_fill_warp<P, V>(lanes, params, fill);
      for (size_t g = 0; g < end - begin; ++g) {
        const uint32_t i = order[begin + g];
        const int32_t m = int32_t(tasks.query_length[i]);
        const BandedFillOut& fo = fill[int(g) * P];
        cigar.resize(max_cigar_ops(m));
        const BandedResult r = banded_traceback_in(q_of(i), m, t_of(i), tasks.diag_lo[i], params,
                                                   StepLaneDir{dir.data() + dir_at[g], pv}, fo.objective,
                                                   fo.bi, fo.bj, cigar.data());
        out.set_result(i, r);
        cigars[i].assign(cigar.begin(), cigar.begin() + r.n_cigar);
      }
    });
  }

  int threads_;
};

}  // namespace

std::unique_ptr<AlignBackend> make_simt_cpu_align_backend(int threads) {
  return std::make_unique<SimtCpuAlignBackend>(threads);
}

}  // namespace omicsd
