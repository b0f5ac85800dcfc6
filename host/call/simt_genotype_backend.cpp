// The lane-vector CPU genotype backend: pair_hmm_float_warp() (host/call/pair_hmm_warp.hpp) through
// the CPU emulation of the SIMT lane layer, one emulated warp at a time per thread, as the CUDA backend
// launches it (cuda/genotype_backend.cu), then the same finish: log10 of the float sum, or the scalar
// double pass below kPairHmmFloatMin.
#include <algorithm>
#include <vector>

#include "host/call/genotype_backend.hpp"
#include "host/call/pair_hmm_warp.hpp"
#include "host/common/parallel.hpp"

namespace omicsd {

std::vector<uint32_t> warp_pair_order(const HmmTaskBatch& tasks) {
  const size_t n = tasks.size();
  std::vector<uint32_t> order(n);
  std::vector<int32_t> p(n), steps(n);
  for (size_t k = 0; k < n; ++k) {
    const int32_t rlen = int32_t(tasks.read_length[tasks.read_index[k]]);
    const int32_t hlen = int32_t(tasks.hap_length[tasks.hap_index[k]]);
    order[k] = uint32_t(k);
    p[k] = pair_hmm_warp_p(rlen, hlen);
    steps[k] = p[k] > 0 ? pair_hmm_warp_steps(rlen, hlen, p[k]) : 0;
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return p[a] != p[b] ? p[a] < p[b] : steps[a] > steps[b]; });
  return order;
}

namespace {

class SimtCpuGenotypeBackend final : public GenotypeBackend {
 public:
  explicit SimtCpuGenotypeBackend(int threads) : threads_(resolve_threads(threads)) {}
  std::string name() const override { return "cpu-simt"; }

  void compute(const HmmTaskBatch& tasks, const PairHmmParams& params, HmmResultBatch& out) override {
    validate_hmm_batch(tasks);
    const PairHmmModel model = make_pair_hmm_model(params);
    out.resize(tasks.size());
    const std::vector<uint32_t> order = warp_pair_order(tasks);
    const std::vector<simt::WarpUnit> units = simt::warp_units(
        order, [&](uint32_t k) { return width(tasks, k); }, [](int32_t p) { return simt::kWarpSize / p; });
    parallel_for(units.size(), threads_, 8, [&](size_t ubegin, size_t uend) {
      std::vector<float> wf;
      std::vector<double> wd;
      for (size_t u = ubegin; u < uend; ++u)
        run_unit(tasks, model, order, units[u].begin, units[u].end, units[u].shape, out, wf, wd);
    });
  }

 private:
  static int32_t width(const HmmTaskBatch& t, uint32_t k) {
    return pair_hmm_warp_p(int32_t(t.read_length[t.read_index[k]]), int32_t(t.hap_length[t.hap_index[k]]));
  }

  static void run_unit(const HmmTaskBatch& t, const PairHmmModel& model, const std::vector<uint32_t>& order,
                       size_t begin, size_t end, int32_t p, HmmResultBatch& out, std::vector<float>& wf,
                       std::vector<double>& wd) {
    auto read_of = [&](uint32_t k) { return t.read_bases.data() + t.read_offset[t.read_index[k]]; };
    auto qual_of = [&](uint32_t k) { return t.read_quals.data() + t.read_offset[t.read_index[k]]; };
    auto hap_of = [&](uint32_t k) { return t.hap_bases.data() + t.hap_offset[t.hap_index[k]]; };
    auto rlen_of = [&](uint32_t k) { return int32_t(t.read_length[t.read_index[k]]); };
    auto hlen_of = [&](uint32_t k) { return int32_t(t.hap_length[t.hap_index[k]]); };
    auto ensure = [&](int32_t hlen) {
      if (wf.size() < pair_hmm_workspace_floats(hlen)) wf.resize(pair_hmm_workspace_floats(hlen));
      if (wd.size() < pair_hmm_workspace_doubles(hlen)) wd.resize(pair_hmm_workspace_doubles(hlen));
    };
    if (p == 0) {  // too small for a lane group: the scalar passes, as the CUDA backend's scalar kernel
      const uint32_t k = order[begin];
      ensure(hlen_of(k));
      PairHmmPass pass = PairHmmPass::kNone;
      out.log10_likelihood[k] = pair_hmm_log10(read_of(k), qual_of(k), rlen_of(k), hap_of(k), hlen_of(k),
                                               model, PairHmmWorkspace{wf.data(), wd.data()}, &pass);
      out.pass[k] = uint8_t(pass);
      return;
    }
    with_pair_hmm_warp_shape(p, [&](auto p_const) {
      constexpr int P = decltype(p_const)::value;
      std::vector<size_t> carry_at(end - begin);
      size_t floats = 0;
      for (size_t g = 0; g < end - begin; ++g) {
        carry_at[g] = floats;
        floats += pair_hmm_workspace_floats(hlen_of(order[begin + g]));
      }
      if (wf.size() < floats) wf.resize(floats);
      simt::Lanes<HmmWarpPair> lanes;
      for (int l = 0; l < simt::kWarpSize; ++l) {
        const size_t g = size_t(l / P);
        HmmWarpPair d;  // rlen == 0: the group idles
        if (begin + g < end) {
          const uint32_t k = order[begin + g];
          d = HmmWarpPair{read_of(k), qual_of(k), hap_of(k), wf.data() + carry_at[g], rlen_of(k), hlen_of(k)};
        }
        lanes[l] = d;
      }
      simt::Lanes<float> sum;
      pair_hmm_float_warp<P>(lanes, model.f, sum);
      for (size_t g = 0; g < end - begin; ++g) {
        const uint32_t k = order[begin + g];
        const float s = sum[int(g) * P];
        if (!(s < kPairHmmFloatMin)) {
          out.log10_likelihood[k] = pair_hmm_log10_pow2(double(s), -kPairHmmFloatScaleLog2);
          out.pass[k] = uint8_t(PairHmmPass::kFloat);
        } else {
          ensure(hlen_of(k));
          out.log10_likelihood[k] = pair_hmm_log10_double(read_of(k), qual_of(k), rlen_of(k), hap_of(k),
                                                          hlen_of(k), model, wd.data());
          out.pass[k] = uint8_t(PairHmmPass::kDouble);
        }
      }
    });
  }

  int threads_;
};

}  // namespace

std::unique_ptr<GenotypeBackend> make_simt_cpu_genotype_backend(int threads) {
  return std::make_unique<SimtCpuGenotypeBackend>(threads);
}

}  // namespace omicsd
