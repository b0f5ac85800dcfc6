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
// Batches are processed in chunks bounded by the device-memory budget (CudaBackendOptions): each of
// `streams` slots owns a stream, a device buffer and pinned staging buffers; chunk k is packed on the
// host while chunk k-1 computes, and its H2D copy, kernel and D2H copy are queued on its slot's
// stream, so H2D(k+1), kernel(k) and D2H(k-1) overlap. A chunk that does not fit is split; a task too
// large for a chunk on its own runs on the CPU backend; an allocation the device refuses halves the
// budget and re-plans (never an out-of-memory crash).
#include <mutex>
#include <vector>

#include "cuda/cuda_util.cuh"
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

struct AlignTaskOut {
  int32_t score, objective, qbeg, qend, tbeg, tend;
  uint32_t n_cigar, unused;
};

__global__ void banded_align_kernel(const AlignTaskDesc* __restrict__ desc, uint32_t count,
                                    const uint8_t* __restrict__ query, const uint8_t* __restrict__ target,
                                    int32_t* hf, uint8_t* dir, uint32_t* cigar, AlignTaskOut* out,
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
  const BandedResult r =
      banded_traceback(q, d.m, t, d.lo, d.hi, params, dm, obj, bi, bj, cigar + d.cigar_off);
  AlignTaskOut o;
  o.score = r.score;
  o.objective = r.objective;
  o.qbeg = r.qbeg;
  o.qend = r.qend;
  o.tbeg = r.tbeg;
  o.tend = r.tend;
  o.n_cigar = r.n_cigar;
  o.unused = 0;
  out[idx] = o;
}

constexpr int kThreadsPerBlock = 128;

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
    out_cigar = align_up(count * sizeof(AlignTaskOut));
    out_bytes = align_up(out_cigar + 4 * cigar_words);
    device_bytes = out_base + out_bytes;
  }
};

struct AlignChunk {
  size_t first = 0, last = 0;  // range of the GPU task list
  AlignLayout layout;
};

class CudaAlignBackend final : public AlignBackend {
 public:
  explicit CudaAlignBackend(const CudaBackendOptions& o)
      : device_(o.device), cpu_threads_(o.cpu_threads), nslots_(std::clamp(o.streams, 2, 4)) {
    use_device(device_);
    budget_ = resolve_memory_budget(o.memory_budget);
    slots_.reserve(size_t(nslots_));
    for (int s = 0; s < nslots_; ++s) slots_.push_back(std::make_unique<Slot>());
    backend_log(BackendLogLevel::kDebug, "cuda align backend: device " + std::to_string(device_) + " (" +
                                             device_name(device_) + "), memory budget " +
                                             std::to_string(budget_ >> 20) + " MiB, " +
                                             std::to_string(nslots_) + " streams");
  }
  ~CudaAlignBackend() override {
    if (cudaSetDevice(device_) == cudaSuccess)
      for (auto& s : slots_) cudaStreamSynchronize(s->stream.get());
  }

  std::string name() const override { return "cuda"; }

  CudaBackendTimings take_timings() {
    std::lock_guard<std::mutex> lock(mutex_);
    CudaBackendTimings t = timings_;
    timings_ = CudaBackendTimings{};
    return t;
  }

  void align(const AlignTaskBatch& tasks, const ScoringParams& params, AlignResultBatch& out) override {
    std::lock_guard<std::mutex> lock(mutex_);
    use_device(device_);
    const size_t n = tasks.size();
    check_batch(tasks);
    out.resize(n);
    // Where each task's CIGAR is until the final assembly: 0 none, 1 gpu_cigars_, 2 the CPU batch.
    source_.assign(n, 0);
    staged_off_.assign(n, 0);
    gpu_cigars_.clear();

    std::vector<uint32_t> oversize;
    std::vector<AlignChunk> chunks;
    for (;;) {
      plan(tasks, budget_ / size_t(nslots_), chunks, oversize);
      if (reserve(chunks)) break;
      budget_ /= 2;
      backend_log(BackendLogLevel::kWarn, "cuda align backend: device " + std::to_string(device_) +
                                              " refused the allocation; memory budget lowered to " +
                                              std::to_string(budget_ >> 20) + " MiB");
      if (budget_ / size_t(nslots_) < kMinSlotBytes)
        throw Error("cuda align backend: device " + std::to_string(device_) + " is out of memory");
    }
    run_chunks(tasks, params, chunks, out);
    if (!oversize.empty()) run_on_cpu(tasks, params, oversize, out);

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
  struct Slot {
    Stream stream;
    DeviceBuffer dev;
    PinnedBuffer in, out;
    ChunkEvents events;
    long chunk = -1;  // chunk in flight, -1: idle
  };

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

  // Splits the GPU tasks into chunks whose device footprint fits `cap`; tasks that alone do not fit go
  // to `oversize`. Tasks with no cells (empty read, empty band) are left at the empty result.
  void plan(const AlignTaskBatch& t, size_t cap, std::vector<AlignChunk>& chunks,
            std::vector<uint32_t>& oversize) {
    chunks.clear();
    oversize.clear();
    gpu_tasks_.clear();
    AlignChunk cur;
    for (size_t i = 0; i < t.size(); ++i) {
      const int32_t m = int32_t(t.query_length[i]);
      const int32_t w = band_width(t.diag_lo[i], t.diag_hi[i]);
      if (m == 0 || w <= 0) continue;
      AlignLayout next = cur.layout;
      next.add(uint32_t(m), t.target_length[i], w);
      next.finish();
      if (next.device_bytes > cap && cur.layout.count > 0) {
        chunks.push_back(cur);
        cur = AlignChunk{};
        cur.first = cur.last = gpu_tasks_.size();
        next = AlignLayout{};
        next.add(uint32_t(m), t.target_length[i], w);
        next.finish();
      }
      if (next.device_bytes > cap) {
        oversize.push_back(uint32_t(i));
        continue;
      }
      cur.layout = next;
      gpu_tasks_.push_back(uint32_t(i));
      cur.last = gpu_tasks_.size();
    }
    if (cur.layout.count > 0) chunks.push_back(cur);
  }

  // Sizes the slots' buffers for the plan; false when the device is out of memory.
  bool reserve(const std::vector<AlignChunk>& chunks) {
    size_t dev = 0, in = 0, outb = 0;
    for (const AlignChunk& c : chunks) {
      dev = std::max(dev, c.layout.device_bytes);
      in = std::max(in, c.layout.in_bytes);
      outb = std::max(outb, c.layout.out_bytes);
    }
    const size_t used = std::min(chunks.size(), slots_.size());
    for (size_t s = 0; s < used; ++s) {
      if (!slots_[s]->dev.try_reserve(dev)) {
        for (auto& sl : slots_) sl->dev.release();
        return false;
      }
      slots_[s]->in.reserve(in);
      slots_[s]->out.reserve(outb);
    }
    return true;
  }

  void pack(const AlignTaskBatch& t, const AlignChunk& c, uint8_t* in) const {
    const AlignLayout& L = c.layout;
    AlignTaskDesc* desc = at<AlignTaskDesc>(in, 0);
    uint8_t* qdst = in + L.in_query;
    uint8_t* tdst = in + L.in_target;
    uint64_t qo = 0, to = 0, hfo = 0, dro = 0, co = 0;
    for (size_t k = 0; k < L.count; ++k) {
      const uint32_t i = gpu_tasks_[c.first + k];
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

  void unpack(const AlignTaskBatch& t, const AlignChunk& c, const uint8_t* outb, AlignResultBatch& out) {
    const AlignLayout& L = c.layout;
    const AlignTaskOut* res = reinterpret_cast<const AlignTaskOut*>(outb);
    const uint32_t* cig = reinterpret_cast<const uint32_t*>(outb + L.out_cigar);
    uint64_t co = 0;
    for (size_t k = 0; k < L.count; ++k) {
      const uint32_t i = gpu_tasks_[c.first + k];
      const AlignTaskOut& r = res[k];
      const uint32_t cap = max_cigar_ops(int32_t(t.query_length[i]));
      if (r.n_cigar > cap) throw Error("cuda align backend: kernel returned a CIGAR longer than its slot");
      out.score[i] = r.score;
      out.objective[i] = r.objective;
      out.query_begin[i] = r.qbeg;
      out.query_end[i] = r.qend;
      out.target_begin[i] = r.tbeg;
      out.target_end[i] = r.tend;
      out.cigar_length[i] = r.n_cigar;
      source_[i] = 1;
      staged_off_[i] = gpu_cigars_.size();
      gpu_cigars_.insert(gpu_cigars_.end(), cig + co, cig + co + r.n_cigar);
      co += cap;
    }
  }

  void run_chunks(const AlignTaskBatch& t, const ScoringParams& params, const std::vector<AlignChunk>& chunks,
                  AlignResultBatch& out) {
    if (chunks.empty()) return;
    const size_t used = std::min(chunks.size(), slots_.size());
    try {
      for (size_t c = 0; c < chunks.size(); ++c) {
        Slot& s = *slots_[c % used];
        if (s.chunk >= 0) {
          s.stream.sync();
          account(s, chunks[size_t(s.chunk)].layout);
          unpack(t, chunks[size_t(s.chunk)], s.out.get(), out);
          s.chunk = -1;
        }
        const AlignLayout& L = chunks[c].layout;
        pack(t, chunks[c], s.in.get());
        uint8_t* dev = s.dev.get();
        s.events.record(0, s.stream.get());
        OMICSD_CUDA_CHECK(
            cudaMemcpyAsync(dev, s.in.get(), L.in_bytes, cudaMemcpyHostToDevice, s.stream.get()));
        s.events.record(1, s.stream.get());
        const unsigned grid = unsigned((L.count + kThreadsPerBlock - 1) / kThreadsPerBlock);
        banded_align_kernel<<<grid, kThreadsPerBlock, 0, s.stream.get()>>>(
            reinterpret_cast<const AlignTaskDesc*>(dev), uint32_t(L.count), dev + L.in_query,
            dev + L.in_target, reinterpret_cast<int32_t*>(dev + L.ws_hf), dev + L.ws_dir,
            reinterpret_cast<uint32_t*>(dev + L.out_base + L.out_cigar),
            reinterpret_cast<AlignTaskOut*>(dev + L.out_base), params);
        OMICSD_CUDA_CHECK_LAUNCH("banded_align_kernel<<<>>>");
        s.events.record(2, s.stream.get());
        OMICSD_CUDA_CHECK(cudaMemcpyAsync(s.out.get(), dev + L.out_base, L.out_bytes, cudaMemcpyDeviceToHost,
                                          s.stream.get()));
        s.events.record(3, s.stream.get());
        s.chunk = long(c);
      }
      // Drain in chunk order.
      for (size_t c = chunks.size() - std::min(chunks.size(), used); c < chunks.size(); ++c) {
        Slot& s = *slots_[c % used];
        s.stream.sync();
        account(s, chunks[c].layout);
        unpack(t, chunks[c], s.out.get(), out);
        s.chunk = -1;
      }
    } catch (...) {
      for (auto& s : slots_) {
        cudaStreamSynchronize(s->stream.get());  // buffers may still be in use; errors already reported
        s->chunk = -1;
      }
      throw;
    }
  }

  void run_on_cpu(const AlignTaskBatch& t, const ScoringParams& params, const std::vector<uint32_t>& idx,
                  AlignResultBatch& out) {
    backend_log(BackendLogLevel::kInfo,
                "cuda align backend: " + std::to_string(idx.size()) + " task(s) too large for a " +
                    std::to_string((budget_ / size_t(nslots_)) >> 20) + " MiB chunk run on the CPU backend");
    timings_.cpu_fallback_tasks += idx.size();
    if (!cpu_) cpu_ = make_cpu_align_backend(cpu_threads_);
    AlignTaskBatch sub;
    for (uint32_t i : idx)
      sub.add(t.query.data() + t.query_offset[i], t.query_length[i], t.target.data() + t.target_offset[i],
              t.target_length[i], t.diag_lo[i], t.diag_hi[i]);
    cpu_->align(sub, params, cpu_out_);
    for (size_t k = 0; k < idx.size(); ++k) {
      const uint32_t i = idx[k];
      out.score[i] = cpu_out_.score[k];
      out.objective[i] = cpu_out_.objective[k];
      out.query_begin[i] = cpu_out_.query_begin[k];
      out.query_end[i] = cpu_out_.query_end[k];
      out.target_begin[i] = cpu_out_.target_begin[k];
      out.target_end[i] = cpu_out_.target_end[k];
      out.cigar_length[i] = cpu_out_.cigar_length[k];
      source_[i] = 2;
      staged_off_[i] = cpu_out_.cigar_offset[k];
    }
  }

  template <class Layout>
  void account(const Slot& s, const Layout& L) {
    timings_.chunks += 1;
    timings_.h2d_bytes += L.in_bytes;
    timings_.d2h_bytes += L.out_bytes;
    timings_.h2d_ms += s.events.ms(0, 1);
    timings_.kernel_ms += s.events.ms(1, 2);
    timings_.d2h_ms += s.events.ms(2, 3);
  }

  CudaBackendTimings timings_;
  int device_;
  int cpu_threads_;
  int nslots_;
  size_t budget_ = 0;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::unique_ptr<AlignBackend> cpu_;
  // Per-call state.
  std::vector<uint32_t> gpu_tasks_;
  std::vector<uint8_t> source_;
  std::vector<uint64_t> staged_off_;
  std::vector<uint32_t> gpu_cigars_;
  AlignResultBatch cpu_out_;
};

}  // namespace
}  // namespace cuda

bool take_cuda_timings(AlignBackend& backend, CudaBackendTimings* t) {
  auto* b = dynamic_cast<cuda::CudaAlignBackend*>(&backend);
  if (!b) return false;
  *t = b->take_timings();
  return true;
}

std::unique_ptr<AlignBackend> make_cuda_align_backend(const CudaBackendOptions& options) {
  return std::make_unique<cuda::CudaAlignBackend>(options);
}

}  // namespace omicsd
