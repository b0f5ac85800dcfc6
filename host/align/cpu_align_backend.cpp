#include <algorithm>
#include <vector>

#include "host/align/align_backend.hpp"
#include "host/common/parallel.hpp"

namespace omicsd {
namespace {

class CpuAlignBackend final : public AlignBackend {
 public:
  explicit CpuAlignBackend(int threads) : threads_(resolve_threads(threads)) {}
  std::string name() const override { return "cpu"; }

  void align(const AlignTaskBatch& tasks, const ScoringParams& params, AlignResultBatch& out) override {
    const size_t n = tasks.size();
    out.resize(n);
    // Each chunk of tasks writes its CIGARs into its own buffer; chunks are contiguous task ranges,
    // so concatenating the buffers in chunk order gives the CIGARs in task order.
    constexpr size_t kGrain = 64;
    std::vector<std::vector<uint32_t>> chunk_cigars((n + kGrain - 1) / kGrain);
    parallel_for(n, threads_, kGrain, [&](size_t begin, size_t end) {
      std::vector<int32_t> h, f;
      std::vector<uint8_t> dir;
      std::vector<uint32_t> cigar;
      std::vector<uint32_t>& local = chunk_cigars[begin / kGrain];
      for (size_t i = begin; i < end; ++i) {
        const int32_t m = int32_t(tasks.query_length[i]);
        const int32_t tn = int32_t(tasks.target_length[i]);
        const int32_t lo = tasks.diag_lo[i], hi = tasks.diag_hi[i];
        const int32_t w = band_width(lo, hi);
        out.cigar_offset[i] = uint32_t(local.size());
        if (m == 0 || w <= 0) continue;
        if (h.size() < size_t(w) + 1) {
          h.resize(size_t(w) + 1);
          f.resize(size_t(w) + 1);
        }
        if (dir.size() < size_t(m) * size_t(w)) dir.resize(size_t(m) * size_t(w));
        if (cigar.size() < max_cigar_ops(m)) cigar.resize(max_cigar_ops(m));
        const uint8_t* q = tasks.query.data() + tasks.query_offset[i];
        const uint8_t* t = tasks.target.data() + tasks.target_offset[i];
        int32_t bi = 0, bj = 0;
        const int32_t obj =
            banded_fill(q, m, t, tn, lo, hi, params, h.data(), f.data(), dir.data(), &bi, &bj);
        const BandedResult r =
            banded_traceback(q, m, t, lo, hi, params, dir.data(), obj, bi, bj, cigar.data());
        out.set_result(i, r);
        local.insert(local.end(), cigar.begin(), cigar.begin() + r.n_cigar);
      }
    });
    out.cigar.clear();
    size_t total = 0;
    for (const auto& c : chunk_cigars) total += c.size();
    out.cigar.reserve(total);
    for (size_t c = 0; c < chunk_cigars.size(); ++c) {
      const uint32_t base = uint32_t(out.cigar.size());
      for (size_t i = c * kGrain; i < std::min(n, (c + 1) * kGrain); ++i) out.cigar_offset[i] += base;
      out.cigar.insert(out.cigar.end(), chunk_cigars[c].begin(), chunk_cigars[c].end());
    }
  }

 private:
  int threads_;
};

}  // namespace

std::unique_ptr<AlignBackend> make_cpu_align_backend(int threads) {
  return std::make_unique<CpuAlignBackend>(threads);
}

}  // namespace omicsd
