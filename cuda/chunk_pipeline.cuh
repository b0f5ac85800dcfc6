#pragma once
// The batch execution both CUDA backends share (align_backend.cu, genotype_backend.cu), written once:
// a batch is planned into chunks whose device footprint fits the per-slot memory budget; each of
// `streams` slots owns a stream, a device buffer, pinned staging buffers and timing events; chunk k is
// packed on the host while chunk k-1 computes, and its H2D copy, kernel and D2H copy are queued on its
// slot's stream, so H2D(k+1), kernel(k) and D2H(k-1) overlap. An allocation the device refuses halves
// the budget and re-plans (never an out-of-memory crash); a task too large for a chunk on its own goes
// to the backend's CPU fallback. What a task costs and how a chunk is packed, launched and unpacked
// are the backend's hooks (see ChunkPipeline::run).
#include <algorithm>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cuda/backend_log.hpp"
#include "cuda/cuda_backends.hpp"
#include "cuda/cuda_util.cuh"
#include "host/common/simt.hpp"

namespace omicsd::cuda {

// Threads per block of every kernel (four warps).
inline constexpr int kThreadsPerBlock = 128;
inline unsigned blocks_for(size_t tasks) {
  return unsigned((tasks + kThreadsPerBlock - 1) / kThreadsPerBlock);
}

// Warp kernels: whole warps of a 1-D launch; each group of P lanes takes one item (task or pair).
__device__ __forceinline__ int warp_lane() { return int(threadIdx.x) & (simt::kWarpSize - 1); }
// The item of this thread's group: warp w holds items w * (32 / P) .. w * (32 / P) + 32 / P - 1.
template <int P>
__device__ __forceinline__ uint32_t group_item() {
  const uint32_t warp = (blockIdx.x * blockDim.x + threadIdx.x) / simt::kWarpSize;
  return warp * uint32_t(simt::kWarpSize / P) + uint32_t(warp_lane() / P);
}
// Blocks for a warp kernel over `items` items in groups of P lanes.
template <int P>
unsigned blocks_for_groups(size_t items) {
  constexpr size_t per_warp = simt::kWarpSize / P;
  return blocks_for((items + per_warp - 1) / per_warp * simt::kWarpSize);
}

// Layout: a chunk's totals and array placement, built by the backend's add() hook and finish(). The
// pipeline needs `count` (tasks), `in_bytes` (the input region, copied H2D to the device buffer's
// start), `out_base` and `out_bytes` (the output region, copied D2H) and `device_bytes` (the footprint).
template <class Layout>
class ChunkPipeline {
 public:
  // `what` names the backend in log lines and errors ("cuda align backend"); `unit` its tasks in the
  // CPU-fallback line ("task(s)").
  ChunkPipeline(const CudaBackendOptions& o, std::string what, std::string unit)
      : what_(std::move(what)),
        unit_(std::move(unit)),
        device_(o.device),
        cpu_threads_(o.cpu_threads),
        nslots_(std::clamp(o.streams, 2, 4)) {
    use_device(device_);
    budget_ = resolve_memory_budget(o.memory_budget);
    slots_.reserve(size_t(nslots_));
    for (int s = 0; s < nslots_; ++s) slots_.push_back(std::make_unique<Slot>());
    backend_log(BackendLogLevel::kDebug, what_ + ": device " + std::to_string(device_) + " (" +
                                             device_name(device_) + "), memory budget " +
                                             std::to_string(budget_ >> 20) + " MiB, " +
                                             std::to_string(nslots_) + " streams");
  }
  // The slots' buffers may still be in use by queued work when an exception unwound a call.
  ~ChunkPipeline() {
    if (cudaSetDevice(device_) == cudaSuccess)
      for (auto& s : slots_) cudaStreamSynchronize(s->stream.get());
  }
  ChunkPipeline(const ChunkPipeline&) = delete;
  ChunkPipeline& operator=(const ChunkPipeline&) = delete;

  // Serialises the backend's calls (the slots and the backend's per-call state are shared).
  std::mutex& mutex() { return mutex_; }
  int device() const { return device_; }
  int cpu_threads() const { return cpu_threads_; }

  CudaBackendTimings take_timings() {
    std::lock_guard<std::mutex> lock(mutex_);
    CudaBackendTimings t = timings_;
    timings_ = CudaBackendTimings{};
    return t;
  }

  // Runs tasks 0 .. n-1 through the hooks; the caller holds mutex() and has made device() current.
  // Hooks, `ids` being the batch indexes of a chunk's tasks in chunk order:
  //   void begin_plan()                       before each planning pass (an OOM re-plans)
  //   void add(size_t i, long chunk, Layout&) counts task i into the totals of planning chunk `chunk`
  //   void accept(size_t i, long chunk)       task i was placed in planning chunk `chunk`
  //   void pack(const Layout&, std::span<const uint32_t> ids, long stamp, uint8_t* in)
  //        fills the pinned input region; `stamp` is unique per chunk and differs from every planning
  //        chunk id, so per-task marks left by planning never look current while packing
  //   void launch(const Layout&, uint8_t* dev, cudaStream_t, cudaEvent_t phase)
  //        queues the kernels, recording `phase` on the stream between the warp kernels and the finish
  //        kernel (the split of kernel time in CudaBackendTimings)
  //   void unpack(const Layout&, std::span<const uint32_t> ids, const uint8_t* out)
  //   void run_on_cpu(const std::vector<uint32_t>& ids)        the tasks too large for any chunk
  template <class Hooks>
  void run(Hooks& h, size_t n) {
    std::vector<uint32_t> oversize;
    std::vector<Chunk> chunks;
    for (;;) {
      plan(h, n, budget_ / size_t(nslots_), chunks, oversize);
      if (reserve(chunks)) break;
      budget_ /= 2;
      backend_log(BackendLogLevel::kWarn, what_ + ": device " + std::to_string(device_) +
                                              " refused the allocation; memory budget lowered to " +
                                              std::to_string(budget_ >> 20) + " MiB");
      if (budget_ / size_t(nslots_) < kMinSlotBytes)
        throw Error(what_ + ": device " + std::to_string(device_) + " is out of memory");
    }
    run_chunks(h, chunks);
    if (oversize.empty()) return;
    backend_log(BackendLogLevel::kInfo,
                what_ + ": " + std::to_string(oversize.size()) + " " + unit_ + " too large for a " +
                    std::to_string((budget_ / size_t(nslots_)) >> 20) + " MiB chunk run on the CPU backend");
    timings_.cpu_fallback_tasks += oversize.size();
    h.run_on_cpu(oversize);
  }

 private:
  struct Chunk {
    size_t first = 0, last = 0;  // range of ids_
    Layout layout;
  };
  struct Slot {
    Stream stream;
    DeviceBuffer dev;
    PinnedBuffer in, out;
    ChunkEvents events;
    long chunk = -1;  // chunk in flight, -1: idle
  };

  std::span<const uint32_t> ids(const Chunk& c) const { return {ids_.data() + c.first, c.last - c.first}; }

  // Splits the tasks into chunks whose device footprint fits `cap`; tasks that alone do not
  // fit go to `oversize`.
  template <class Hooks>
  void plan(Hooks& h, size_t n, size_t cap, std::vector<Chunk>& chunks, std::vector<uint32_t>& oversize) {
    chunks.clear();
    oversize.clear();
    ids_.clear();
    h.begin_plan();
    Chunk cur;
    long id = 0;
    for (size_t i = 0; i < n; ++i) {
      Layout next = cur.layout;
      h.add(i, id, next);
      next.finish();
      if (next.device_bytes > cap && cur.layout.count > 0) {
        chunks.push_back(cur);
        ++id;
        cur = Chunk{};
        cur.first = cur.last = ids_.size();
        next = Layout{};
        h.add(i, id, next);
        next.finish();
      }
      if (next.device_bytes > cap) {
        oversize.push_back(uint32_t(i));
        continue;
      }
      h.accept(i, id);
      cur.layout = next;
      ids_.push_back(uint32_t(i));
      cur.last = ids_.size();
    }
    if (cur.layout.count > 0) chunks.push_back(cur);
  }

  // Sizes the slots' buffers for the plan; false when the device is out of memory.
  bool reserve(const std::vector<Chunk>& chunks) {
    size_t dev = 0, in = 0, outb = 0;
    for (const Chunk& c : chunks) {
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

  template <class Hooks>
  void finish_chunk(Hooks& h, Slot& s, const Chunk& c) {
    s.stream.sync();
    account(s, c.layout);
    h.unpack(c.layout, ids(c), s.out.get());
    s.chunk = -1;
  }

  template <class Hooks>
  void run_chunks(Hooks& h, const std::vector<Chunk>& chunks) {
    if (chunks.empty()) return;
    const size_t used = std::min(chunks.size(), slots_.size());
    // Packing stamps continue after the planning ids (0 .. chunks.size() - 1).
    const long stamp_base = long(chunks.size());
    try {
      for (size_t c = 0; c < chunks.size(); ++c) {
        Slot& s = *slots_[c % used];
        if (s.chunk >= 0) finish_chunk(h, s, chunks[size_t(s.chunk)]);
        const Layout& L = chunks[c].layout;
        h.pack(L, ids(chunks[c]), stamp_base + long(c), s.in.get());
        uint8_t* dev = s.dev.get();
        s.events.record(0, s.stream.get());
        OMICSD_CUDA_CHECK(
            cudaMemcpyAsync(dev, s.in.get(), L.in_bytes, cudaMemcpyHostToDevice, s.stream.get()));
        s.events.record(1, s.stream.get());
        h.launch(L, dev, s.stream.get(), s.events.get(4));
        s.events.record(2, s.stream.get());
        OMICSD_CUDA_CHECK(cudaMemcpyAsync(s.out.get(), dev + L.out_base, L.out_bytes, cudaMemcpyDeviceToHost,
                                          s.stream.get()));
        s.events.record(3, s.stream.get());
        s.chunk = long(c);
      }
      // Drain in chunk order: slot c % used holds chunk c for the last `used` chunks.
      for (size_t c = chunks.size() - used; c < chunks.size(); ++c)
        finish_chunk(h, *slots_[c % used], chunks[c]);
    } catch (...) {
      for (auto& s : slots_) {
        cudaStreamSynchronize(s->stream.get());  // buffers may still be in use; errors already reported
        s->chunk = -1;
      }
      throw;
    }
  }

  void account(const Slot& s, const Layout& L) {
    timings_.chunks += 1;
    timings_.h2d_bytes += L.in_bytes;
    timings_.d2h_bytes += L.out_bytes;
    timings_.h2d_ms += s.events.ms(0, 1);
    timings_.kernel_ms += s.events.ms(1, 2);
    timings_.warp_kernel_ms += s.events.ms(1, 4);
    timings_.finish_kernel_ms += s.events.ms(4, 2);
    timings_.d2h_ms += s.events.ms(2, 3);
  }

  std::string what_, unit_;
  CudaBackendTimings timings_;
  int device_;
  int cpu_threads_;
  int nslots_;
  size_t budget_ = 0;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<uint32_t> ids_;  // the planned tasks, chunk after chunk
};

// take_cuda_timings() for a backend class `Impl` derived from `Base`.
template <class Impl, class Base>
bool take_timings_of(Base& backend, CudaBackendTimings* t) {
  auto* b = dynamic_cast<Impl*>(&backend);
  if (!b) return false;
  *t = b->take_timings();
  return true;
}

}  // namespace omicsd::cuda
