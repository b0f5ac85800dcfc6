// CUDA AlignBackend: batched banded affine-gap alignment with traceback.
//
// Per chunk, two kinds of kernel on the slot's stream:
//  1. banded_fill_warp_kernel<P, V>, once per warp shape present in the chunk: the warp-cooperative
//     fill of host/align/banded_warp.hpp (a group of P lanes per task, V register slots per lane, the
//     band swept by anti-diagonals with H/F passed between lanes by shuffles, scores in registers,
//     direction bytes stored step-major and coalesced). The same source runs in CI through the lane
//     layer's CPU emulation (the "cpu-simt" backend, tests/host/common/test_simt_kernels.cpp).
//  2. banded_finish_kernel, one thread per task: the scalar traceback (host/align/banded_sw.hpp) on
//     those direction bytes; for bands too wide for the warp fill (w > kBandedWarpMaxWidth) the
//     scalar fill and traceback themselves, the CPU backend's functions.
// Only the results and a bounded CIGAR slot per task cross PCIe (the direction bytes never do); a task
// whose CIGAR does not fit its slot is recomputed on the CPU backend. Tasks are ordered by warp shape
// and length (warp_task_order) so each chunk launches a few long kernels over tasks of similar length.
//
// Batches are chunked by the device-memory budget (CudaBackendOptions) and pipelined over streams by
// cuda/chunk_pipeline.cuh; this file supplies the chunk layout and the pack / launch / unpack hooks.
#include <mutex>
#include <span>
#include <type_traits>
#include <vector>

#include "cuda/chunk_pipeline.cuh"
#include "cuda/cuda_backends.hpp"
#include "host/align/banded_sw.hpp"
#include "host/align/banded_warp.hpp"

namespace omicsd {
namespace cuda {
namespace {

// One task as the kernels see it; offsets are into the chunk's arrays.
struct AlignTaskDesc {
  uint64_t query_off, target_off;  // bytes
  uint64_t dir_off;                // bytes: banded_warp_dir_words(m, w, pv) words, or m * w (pv == 0)
  uint64_t hf_off;                 // int32 words: H row (w + 1), then F row (w + 1); pv == 0 only
  uint64_t scratch_off;            // uint32 words: max_cigar_ops(m), the traceback's working CIGAR
  uint64_t cigar_off;              // uint32 words: cigar_slot_words(m), what is copied back
  int32_t m, n, lo, hi;
  int32_t shape;  // banded_warp_shape: the warp fill's (P, V); 0: the scalar fill (band too wide)
  int32_t pv;     // P * V (the step-major layout's row period)
};

// The CIGAR words a task copies back: enough for any alignment with a few dozen gaps; a longer CIGAR
// (n_cigar above the slot) makes the host recompute that task on the CPU backend. Full-size slots
// (2m + 4 words) would move ~1.2 KB per 150 bp read over PCIe for the ~3 ops a typical read has.
__host__ __device__ inline uint32_t cigar_slot_words(int32_t m) {
  const uint32_t full = max_cigar_ops(m);
  const uint32_t cap = 24u + uint32_t(m) / 8u;
  return full < cap ? full : cap;
}

// The warp fill of host/align/banded_warp.hpp for tasks [first, first + count) of one shape: each warp
// takes 32 / P consecutive tasks, one per group of P lanes. Whole warps run (lanes past the end idle in
// an empty group) because every lane takes part in the shuffles.
template <int P, int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    banded_fill_warp_kernel(const AlignTaskDesc* __restrict__ desc, uint32_t first, uint32_t count,
                            const uint8_t* __restrict__ query, const uint8_t* __restrict__ target,
                            uint8_t* dir, BandedFillOut* fill, ScoringParams params) {
  const int lane = warp_lane();
  const uint32_t k = group_item<P>();
  simt::Lanes<BandedWarpTask> task;
  if (k < count) {
    const AlignTaskDesc d = desc[first + k];
    task[lane] = BandedWarpTask{query + d.query_off,
                                target + d.target_off,
                                reinterpret_cast<uint32_t*>(dir + d.dir_off),
                                d.m,
                                d.n,
                                d.lo,
                                d.hi};
  } else {
    task[lane] = BandedWarpTask{};
  }
  simt::Lanes<BandedFillOut> out;
  banded_fill_warp<P, V>(task, params, out);
  if (k < count && lane % P == 0) fill[first + k] = out[lane];
}

// One thread per task: the scalar traceback on the warp fill's step-major direction bytes, or, for bands
// too wide for the warp fill, the scalar fill and traceback (the very functions the CPU backend runs).
// The CIGAR is built in the task's scratch slot and its first cigar_slot_words(m) words copied to the
// output slot, the rest of which is zeroed: every byte copied back was written by this kernel.
// `fault` (fault injection for the tests, OMICSD_CUDA_FAULT=align) makes thread 0 write through a null
// pointer: an illegal address, the sticky error class.
__global__ void banded_finish_kernel(const AlignTaskDesc* __restrict__ desc, uint32_t count,
                                     const uint8_t* __restrict__ query, const uint8_t* __restrict__ target,
                                     int32_t* hf, uint8_t* dir, const BandedFillOut* __restrict__ fill,
                                     uint32_t* scratch, uint32_t* cigar, BandedResult* out,
                                     ScoringParams params, int fault) {
  const uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (fault && idx == 0) *static_cast<volatile int*>(nullptr) = 1;
  if (idx >= count) return;
  const AlignTaskDesc d = desc[idx];
  const uint8_t* q = query + d.query_off;
  const uint8_t* t = target + d.target_off;
  uint32_t* work = scratch + d.scratch_off;
  BandedResult r;
  if (d.shape > 0) {
    const BandedFillOut f = fill[idx];
    r = banded_traceback_in(q, d.m, t, d.lo, params,
                            StepLaneDir{reinterpret_cast<const uint32_t*>(dir + d.dir_off), d.pv},
                            f.objective, f.bi, f.bj, work);
  } else {
    const int32_t w = band_width(d.lo, d.hi);
    int32_t* h = hf + d.hf_off;
    int32_t bi = 0, bj = 0;
    const int32_t obj =
        banded_fill(q, d.m, t, d.n, d.lo, d.hi, params, h, h + (w + 1), dir + d.dir_off, &bi, &bj);
    r = banded_traceback(q, d.m, t, d.lo, d.hi, params, dir + d.dir_off, obj, bi, bj, work);
  }
  out[idx] = r;
  const uint32_t slot = cigar_slot_words(d.m);
  uint32_t* dst = cigar + d.cigar_off;
  for (uint32_t k = 0; k < slot; ++k) dst[k] = k < r.n_cigar ? work[k] : 0u;
}

// Totals of a chunk and where each array lives. The input region (descriptors, queries, targets) is
// one H2D copy from the slot's pinned buffer; the output region (results, CIGAR slots) one D2H copy.
struct AlignLayout {
  size_t count = 0;
  uint64_t query_bytes = 0, target_bytes = 0, hf_words = 0, dir_bytes = 0, scratch_words = 0, cigar_words = 0;
  // Input region, also the device buffer's start.
  size_t in_query = 0, in_target = 0, in_bytes = 0;
  // Device-only workspace.
  size_t ws_hf = 0, ws_dir = 0, ws_fill = 0, ws_scratch = 0;
  // Output region: device offset out_base; offsets inside it.
  size_t out_base = 0, out_cigar = 0, out_bytes = 0;
  size_t device_bytes = 0;

  void add(uint32_t m, uint32_t n, int32_t w) {
    count += 1;
    query_bytes += m;
    target_bytes += n;
    if (banded_warp_shape(w) == 0) hf_words += 2 * (uint64_t(w) + 1);
    dir_bytes += banded_dir_bytes(int32_t(m), w);
    scratch_words += max_cigar_ops(int32_t(m));
    cigar_words += cigar_slot_words(int32_t(m));
  }
  void finish() {
    in_query = align_up(count * sizeof(AlignTaskDesc));
    in_target = align_up(in_query + query_bytes);
    in_bytes = align_up(in_target + target_bytes);
    ws_hf = in_bytes;
    ws_dir = align_up(ws_hf + 4 * hf_words);
    ws_fill = align_up(ws_dir + dir_bytes);
    ws_scratch = align_up(ws_fill + count * sizeof(BandedFillOut));
    out_base = align_up(ws_scratch + 4 * scratch_words);
    // No padding inside or after the output region: the D2H copy must read only bytes the kernel
    // wrote (compute-sanitizer initcheck).
    out_cigar = count * sizeof(BandedResult);
    out_bytes = out_cigar + 4 * cigar_words;
    device_bytes = out_base + out_bytes;
  }
};

// A run of consecutive tasks of one warp shape inside a chunk (the batch order groups shapes).
struct ShapeRun {
  int32_t shape;
  uint32_t first, count;
};

class CudaAlignBackend final : public AlignBackend {
 public:
  explicit CudaAlignBackend(const CudaBackendOptions& o)
      : pipe_(o, "cuda align backend", "task(s)"), fault_(fault_injection_requested("align")) {}

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
    cpu_out_ = AlignResultBatch{};
    overflow_.clear();
    // Tasks with cells, grouped by warp shape (so each chunk holds runs of one shape per kernel launch)
    // and longest first within a shape (so the tasks sharing a warp finish together).
    order_ = warp_task_order(tasks);
    Call call{*this, tasks, params, out};
    pipe_.run(call, order_.size());
    // CIGARs longer than their copy-back slot: recomputed on the CPU (same recurrence, same result).
    if (!overflow_.empty()) call.run_tasks_on_cpu(overflow_);

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

  // The pipeline's hooks for one align() call (cuda/chunk_pipeline.cuh). The pipeline's indexes are
  // positions in order_; order_[pos] is the task.
  struct Call {
    CudaAlignBackend& b;
    const AlignTaskBatch& t;
    const ScoringParams& params;
    AlignResultBatch& out;
    std::vector<ShapeRun> runs;  // of the chunk just packed, for its launch

    void begin_plan() const {}
    void add(size_t pos, long, AlignLayout& L) const {
      const uint32_t i = b.order_[pos];
      L.add(t.query_length[i], t.target_length[i], band_width(t.diag_lo[i], t.diag_hi[i]));
    }
    void accept(size_t, long) const {}

    void pack(const AlignLayout& L, std::span<const uint32_t> ids, long, uint8_t* in) {
      AlignTaskDesc* desc = at<AlignTaskDesc>(in, 0);
      uint8_t* qdst = in + L.in_query;
      uint8_t* tdst = in + L.in_target;
      uint64_t qo = 0, to = 0, hfo = 0, dro = 0, so = 0, co = 0;
      runs.clear();
      for (size_t k = 0; k < ids.size(); ++k) {
        const uint32_t i = b.order_[ids[k]];
        AlignTaskDesc d;
        d.m = int32_t(t.query_length[i]);
        d.n = int32_t(t.target_length[i]);
        d.lo = t.diag_lo[i];
        d.hi = t.diag_hi[i];
        const int32_t w = band_width(d.lo, d.hi);
        d.shape = banded_warp_shape(w);
        d.pv = banded_warp_pv(w);
        d.query_off = qo;
        d.target_off = to;
        d.hf_off = hfo;
        d.dir_off = dro;
        d.scratch_off = so;
        d.cigar_off = co;
        desc[k] = d;
        std::copy_n(t.query.data() + t.query_offset[i], t.query_length[i], qdst + qo);
        std::copy_n(t.target.data() + t.target_offset[i], t.target_length[i], tdst + to);
        qo += t.query_length[i];
        to += t.target_length[i];
        if (d.shape == 0) hfo += 2 * (uint64_t(w) + 1);
        dro += banded_dir_bytes(d.m, w);  // whole words: the next task's words stay aligned
        so += max_cigar_ops(d.m);
        co += cigar_slot_words(d.m);
        if (runs.empty() || runs.back().shape != d.shape) runs.push_back({d.shape, uint32_t(k), 0});
        runs.back().count += 1;
      }
    }

    void launch(const AlignLayout& L, uint8_t* dev, cudaStream_t s, cudaEvent_t phase) const {
      const auto* desc = reinterpret_cast<const AlignTaskDesc*>(dev);
      auto* fill = reinterpret_cast<BandedFillOut*>(dev + L.ws_fill);
      for (const ShapeRun& r : runs) {
        with_banded_warp_shape(r.shape, [&](auto p_const, auto v_const) {
          constexpr int P = decltype(p_const)::value, V = decltype(v_const)::value;
          banded_fill_warp_kernel<P, V><<<blocks_for_groups<P>(r.count), kThreadsPerBlock, 0, s>>>(
              desc, r.first, r.count, dev + L.in_query, dev + L.in_target, dev + L.ws_dir, fill, params);
          OMICSD_CUDA_CHECK_LAUNCH("banded_fill_warp_kernel<<<>>>");
        });
      }
      OMICSD_CUDA_CHECK(cudaEventRecord(phase, s));
      banded_finish_kernel<<<blocks_for(L.count), kThreadsPerBlock, 0, s>>>(
          desc, uint32_t(L.count), dev + L.in_query, dev + L.in_target,
          reinterpret_cast<int32_t*>(dev + L.ws_hf), dev + L.ws_dir, fill,
          reinterpret_cast<uint32_t*>(dev + L.ws_scratch),
          reinterpret_cast<uint32_t*>(dev + L.out_base + L.out_cigar),
          reinterpret_cast<BandedResult*>(dev + L.out_base), params, b.fault_);
      OMICSD_CUDA_CHECK_LAUNCH("banded_finish_kernel<<<>>>");
    }

    void unpack(const AlignLayout& L, std::span<const uint32_t> ids, const uint8_t* outb) const {
      const BandedResult* res = reinterpret_cast<const BandedResult*>(outb);
      const uint32_t* cig = reinterpret_cast<const uint32_t*>(outb + L.out_cigar);
      uint64_t co = 0;
      for (size_t k = 0; k < ids.size(); ++k) {
        const uint32_t i = b.order_[ids[k]];
        const BandedResult& r = res[k];
        const uint32_t m = t.query_length[i];
        const uint32_t slot = cigar_slot_words(int32_t(m));
        if (r.n_cigar > max_cigar_ops(int32_t(m)))
          throw Error("cuda align backend: kernel returned a CIGAR longer than a read of " +
                      std::to_string(m) + " bases can have");
        if (r.n_cigar > slot) {
          b.overflow_.push_back(i);
        } else {
          out.set_result(i, r);
          b.source_[i] = 1;
          b.staged_off_[i] = b.gpu_cigars_.size();
          b.gpu_cigars_.insert(b.gpu_cigars_.end(), cig + co, cig + co + r.n_cigar);
        }
        co += slot;
      }
    }

    // The pipeline's fallback for tasks too large for any chunk (positions in order_).
    void run_on_cpu(const std::vector<uint32_t>& positions) const {
      std::vector<uint32_t> idx;
      idx.reserve(positions.size());
      for (uint32_t pos : positions) idx.push_back(b.order_[pos]);
      run_tasks_on_cpu(idx);
    }
    // Tasks by batch index on the CPU backend; their CIGARs are appended to cpu_out_.
    void run_tasks_on_cpu(const std::vector<uint32_t>& idx) const {
      if (!b.cpu_) b.cpu_ = make_cpu_align_backend(b.pipe_.cpu_threads());
      AlignTaskBatch sub;
      for (uint32_t i : idx)
        sub.add(t.query.data() + t.query_offset[i], t.query_length[i], t.target.data() + t.target_offset[i],
                t.target_length[i], t.diag_lo[i], t.diag_hi[i]);
      AlignResultBatch r;
      b.cpu_->align(sub, params, r);
      const size_t base = b.cpu_out_.cigar.size();
      b.cpu_out_.cigar.insert(b.cpu_out_.cigar.end(), r.cigar.begin(), r.cigar.end());
      for (size_t k = 0; k < idx.size(); ++k) {
        out.set_result(idx[k], r.result(k));
        b.source_[idx[k]] = 2;
        b.staged_off_[idx[k]] = base + r.cigar_offset[k];
      }
    }
  };

  ChunkPipeline<AlignLayout> pipe_;
  const int fault_;
  std::unique_ptr<AlignBackend> cpu_;
  // Per-call state.
  std::vector<uint32_t> order_;
  std::vector<uint8_t> source_;
  std::vector<uint64_t> staged_off_;
  std::vector<uint32_t> gpu_cigars_, overflow_;
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
