// CUDA AlignBackend: batched banded affine-gap alignment, one (read, window, band) task per thread.
//
// Every thread runs the very functions the CPU backend runs (host/align/banded_sw.hpp: banded_fill,
// then banded_traceback), on its own slice of global memory (H/F rows and the direction matrix), so
// scores, coordinates and CIGARs are bit-identical by construction: the recurrence is integer-only
// and written once. Traceback runs on the GPU, in the same thread, right after the fill: the
// direction matrix (m x band bytes) never crosses PCIe, only the CIGAR (at most 2m + 4 words) does,
// and the host needs no second pass. (Returning the matrix would move ~15 KB per 150 bp read at band
// 101 instead of ~1.2 KB.)
//
// Batches are chunked by the device-memory budget (CudaBackendOptions) and pipelined over streams by
// cuda/chunk_pipeline.cuh; this file supplies the chunk layout and the pack / launch / unpack hooks.
#include <mutex>
#include <span>
#include <type_traits>
#include <vector>

#include "cuda/chunk_pipeline.cuh"
#include "host/align/banded_sw.hpp"
#include "host/common/cuda_backends.hpp"

namespace omicsd {
namespace cuda {
namespace {

// One task as the kernel sees it; offsets are into the chunk's arrays.
struct AlignTaskDesc {
  uint64_t query_off, target_off;  // bytes
  uint64_t hf_off;                 // int32 words: H row (w + 1), then F row (w + 1)
  uint64_t dir_off;                // bytes: m * w
  uint64_t cigar_off;              // uint32 words: max_cigar_ops(m)
  int32_t m, n, lo, hi;
};

// Each thread writes the traceback's BandedResult as is, so the host reads back exactly what the CPU
// backend computes (AlignResultBatch::set_result on both sides).
static_assert(std::is_trivially_copyable_v<BandedResult>, "BandedResult is copied D2H as bytes");
__global__ void banded_align_kernel(const AlignTaskDesc* __restrict__ desc, uint32_t count,
                                    const uint8_t* __restrict__ query, const uint8_t* __restrict__ target,
                                    int32_t* hf, uint8_t* dir, uint32_t* cigar, BandedResult* out,
                                    ScoringParams params) {
  const uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= count) return;
  const AlignTaskDesc d = desc[idx];
  const int32_t w = band_width(d.lo, d.hi);
  int32_t* h = hf + d.hf_off;
  int32_t* f = h + (w + 1);
  const uint8_t* q = query + d.query_off;
  const uint8_t* t = target + d.target_off;
  uint8_t* dm = dir + d.dir_off;
  int32_t bi = 0, bj = 0;
  const int32_t obj = banded_fill(q, d.m, t, d.n, d.lo, d.hi, params, h, f, dm, &bi, &bj);
  out[idx] = banded_traceback(q, d.m, t, d.lo, d.hi, params, dm, obj, bi, bj, cigar + d.cigar_off);
}

// Totals of a chunk and where each array lives. The input region (descriptors, queries, targets) is
// one H2D copy from the slot's pinned buffer; the output region (results, CIGARs) one D2H copy.
struct AlignLayout {
  size_t count = 0;
  uint64_t query_bytes = 0, target_bytes = 0, hf_words = 0, dir_bytes = 0, cigar_words = 0;
  // Input region, also the device buffer's start.
  size_t in_query = 0, in_target = 0, in_bytes = 0;
  // Device-only workspace.
  size_t ws_hf = 0, ws_dir = 0;
  // Output region: device offset out_base; offsets inside it.
  size_t out_base = 0, out_cigar = 0, out_bytes = 0;
  size_t device_bytes = 0;

  void add(uint32_t m, uint32_t n, int32_t w) {
    count += 1;
    query_bytes += m;
    target_bytes += n;
    hf_words += 2 * (uint64_t(w) + 1);
    dir_bytes += uint64_t(m) * uint64_t(w);
    cigar_words += max_cigar_ops(int32_t(m));
  }
  void finish() {
    in_query = align_up(count * sizeof(AlignTaskDesc));
    in_target = align_up(in_query + query_bytes);
    in_bytes = align_up(in_target + target_bytes);
    ws_hf = in_bytes;
    ws_dir = align_up(ws_hf + 4 * hf_words);
    out_base = align_up(ws_dir + dir_bytes);
    out_cigar = align_up(count * sizeof(BandedResult));
    out_bytes = align_up(out_cigar + 4 * cigar_words);
    device_bytes = out_base + out_bytes;
  }
};

class CudaAlignBackend final : public AlignBackend {
 public:
  explicit CudaAlignBackend(const CudaBackendOptions& o) : pipe_(o, "cuda align backend", "task(s)") {}

  std::string name() const override { return "cuda"; }
  CudaBackendTimings take_timings() { return pipe_.take_timings(); }

  void align(const AlignTaskBatch& tasks, const ScoringParams& params, AlignResultBatch& out) override {
    std::lock_guard<std::mutex> lock(pipe_.mutex());
    use_device(pipe_.device());
    const size_t n = tasks.size();
    check_batch(tasks);
    out.resize(n);
    // Where each task's CIGAR is until the final assembly: 0 none, 1 gpu_cigars_, 2 the CPU batch.
    source_.assign(n, 0);
    staged_off_.assign(n, 0);
    gpu_cigars_.clear();
    Call call{*this, tasks, params, out};
    pipe_.run(call, n);

    // CIGARs in task order, exactly as the CPU backend lays them out.
    out.cigar.clear();
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) total += out.cigar_length[i];
    out.cigar.reserve(total);
    for (size_t i = 0; i < n; ++i) {
      out.cigar_offset[i] = uint32_t(out.cigar.size());
      const uint32_t len = out.cigar_length[i];
      if (len == 0) continue;
      const uint32_t* src =
          source_[i] == 1 ? gpu_cigars_.data() + staged_off_[i] : cpu_out_.cigar.data() + staged_off_[i];
      out.cigar.insert(out.cigar.end(), src, src + len);
    }
  }

 private:
  static void check_batch(const AlignTaskBatch& t) {
    const size_t n = t.size();
    if (t.query_offset.size() != n || t.target_offset.size() != n || t.target_length.size() != n ||
        t.diag_lo.size() != n || t.diag_hi.size() != n)
      throw InputError("alignment batch: per-task arrays differ in length");
    for (size_t i = 0; i < n; ++i) {
      if (uint64_t(t.query_offset[i]) + t.query_length[i] > t.query.size() ||
          t.target_offset[i] + t.target_length[i] > t.target.size())
        throw InputError("alignment batch: task " + std::to_string(i) + " runs past the end of its bases");
      if (t.query_length[i] > uint32_t(INT32_MAX) || t.target_length[i] > uint32_t(INT32_MAX))
        throw InputError("alignment batch: task " + std::to_string(i) + " is too long");
    }
  }

  // The pipeline's hooks for one align() call (cuda/chunk_pipeline.cuh).
  struct Call {
    CudaAlignBackend& b;
    const AlignTaskBatch& t;
    const ScoringParams& params;
    AlignResultBatch& out;

    // Tasks with no cells (empty read, empty band) are left at the empty result.
    bool eligible(size_t i) const {
      return t.query_length[i] > 0 && band_width(t.diag_lo[i], t.diag_hi[i]) > 0;
    }
    void begin_plan() const {}
    void add(size_t i, long, AlignLayout& L) const {
      L.add(t.query_length[i], t.target_length[i], band_width(t.diag_lo[i], t.diag_hi[i]));
    }
    void accept(size_t, long) const {}

    void pack(const AlignLayout& L, std::span<const uint32_t> ids, long, uint8_t* in) const {
      AlignTaskDesc* desc = at<AlignTaskDesc>(in, 0);
      uint8_t* qdst = in + L.in_query;
      uint8_t* tdst = in + L.in_target;
      uint64_t qo = 0, to = 0, hfo = 0, dro = 0, co = 0;
      for (size_t k = 0; k < ids.size(); ++k) {
        const uint32_t i = ids[k];
        AlignTaskDesc d;
        d.m = int32_t(t.query_length[i]);
        d.n = int32_t(t.target_length[i]);
        d.lo = t.diag_lo[i];
        d.hi = t.diag_hi[i];
        const int32_t w = band_width(d.lo, d.hi);
        d.query_off = qo;
        d.target_off = to;
        d.hf_off = hfo;
        d.dir_off = dro;
        d.cigar_off = co;
        desc[k] = d;
        std::copy_n(t.query.data() + t.query_offset[i], t.query_length[i], qdst + qo);
        std::copy_n(t.target.data() + t.target_offset[i], t.target_length[i], tdst + to);
        qo += t.query_length[i];
        to += t.target_length[i];
        hfo += 2 * (uint64_t(w) + 1);
        dro += uint64_t(d.m) * uint64_t(w);
        co += max_cigar_ops(d.m);
      }
    }

    void launch(const AlignLayout& L, uint8_t* dev, cudaStream_t s) const {
      banded_align_kernel<<<blocks_for(L.count), kThreadsPerBlock, 0, s>>>(
          reinterpret_cast<const AlignTaskDesc*>(dev), uint32_t(L.count), dev + L.in_query, dev + L.in_target,
          reinterpret_cast<int32_t*>(dev + L.ws_hf), dev + L.ws_dir,
          reinterpret_cast<uint32_t*>(dev + L.out_base + L.out_cigar),
          reinterpret_cast<BandedResult*>(dev + L.out_base), params);
      OMICSD_CUDA_CHECK_LAUNCH("banded_align_kernel<<<>>>");
    }

    void unpack(const AlignLayout& L, std::span<const uint32_t> ids, const uint8_t* outb) const {
      const BandedResult* res = reinterpret_cast<const BandedResult*>(outb);
      const uint32_t* cig = reinterpret_cast<const uint32_t*>(outb + L.out_cigar);
      uint64_t co = 0;
      for (size_t k = 0; k < ids.size(); ++k) {
        const uint32_t i = ids[k];
        const BandedResult& r = res[k];
        const uint32_t cap = max_cigar_ops(int32_t(t.query_length[i]));
        if (r.n_cigar > cap) throw Error("cuda align backend: kernel returned a CIGAR longer than its slot");
        out.set_result(i, r);
        b.source_[i] = 1;
        b.staged_off_[i] = b.gpu_cigars_.size();
        b.gpu_cigars_.insert(b.gpu_cigars_.end(), cig + co, cig + co + r.n_cigar);
        co += cap;
      }
    }

    void run_on_cpu(const std::vector<uint32_t>& idx) const {
      if (!b.cpu_) b.cpu_ = make_cpu_align_backend(b.pipe_.cpu_threads());
      AlignTaskBatch sub;
      for (uint32_t i : idx)
        sub.add(t.query.data() + t.query_offset[i], t.query_length[i], t.target.data() + t.target_offset[i],
                t.target_length[i], t.diag_lo[i], t.diag_hi[i]);
      b.cpu_->align(sub, params, b.cpu_out_);
      for (size_t k = 0; k < idx.size(); ++k) {
        out.set_result(idx[k], b.cpu_out_.result(k));
        b.source_[idx[k]] = 2;
        b.staged_off_[idx[k]] = b.cpu_out_.cigar_offset[k];
      }
    }
  };

  ChunkPipeline<AlignLayout> pipe_;
  std::unique_ptr<AlignBackend> cpu_;
  // Per-call state.
  std::vector<uint8_t> source_;
  std::vector<uint64_t> staged_off_;
  std::vector<uint32_t> gpu_cigars_;
  AlignResultBatch cpu_out_;
};

}  // namespace
}  // namespace cuda

bool take_cuda_timings(AlignBackend& backend, CudaBackendTimings* t) {
  return cuda::take_timings_of<cuda::CudaAlignBackend>(backend, t);
}

std::unique_ptr<AlignBackend> make_cuda_align_backend(const CudaBackendOptions& options) {
  return std::make_unique<cuda::CudaAlignBackend>(options);
}

}  // namespace omicsd
