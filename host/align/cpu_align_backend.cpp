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
    // CIGAR slots are reserved per task up front (worst case), then compacted, so threads never share
    // a growing vector.
    std::vector<uint32_t> slot(n + 1, 0);
    for (size_t i = 0; i < n; ++i) slot[i + 1] = slot[i] + max_cigar_ops(int32_t(tasks.query_length[i]));
    std::vector<uint32_t> scratch(slot[n]);
    parallel_for(n, threads_, 64, [&](size_t begin, size_t end) {
      std::vector<int32_t> h, f;
      std::vector<uint8_t> dir;
      for (size_t i = begin; i < end; ++i) {
        const int32_t m = int32_t(tasks.query_length[i]);
        const int32_t tn = int32_t(tasks.target_length[i]);
        const int32_t lo = tasks.diag_lo[i], hi = tasks.diag_hi[i];
        const int32_t w = band_width(lo, hi);
        if (m == 0 || w <= 0) continue;
        h.resize(size_t(w) + 1);
        f.resize(size_t(w) + 1);
        dir.resize(size_t(m) * size_t(w));
        const uint8_t* q = tasks.query.data() + tasks.query_offset[i];
        const uint8_t* t = tasks.target.data() + tasks.target_offset[i];
        int32_t bi = 0, bj = 0;
        const int32_t obj = banded_fill(q, m, t, tn, lo, hi, params, h.data(), f.data(), dir.data(), &bi, &bj);
        const BandedResult r = banded_traceback(q, m, t, lo, hi, params, dir.data(), obj, bi, bj, scratch.data() + slot[i]);
        out.score[i] = r.score;
        out.objective[i] = r.objective;
        out.query_begin[i] = r.qbeg;
        out.query_end[i] = r.qend;
        out.target_begin[i] = r.tbeg;
        out.target_end[i] = r.tend;
        out.cigar_length[i] = r.n_cigar;
      }
    });
    out.cigar.clear();
    for (size_t i = 0; i < n; ++i) {
      out.cigar_offset[i] = uint32_t(out.cigar.size());
      out.cigar.insert(out.cigar.end(), scratch.begin() + slot[i], scratch.begin() + slot[i] + out.cigar_length[i]);
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
