#pragma once
// Shared plumbing of the CUDA backends: the error-checking macro, RAII device / pinned buffers and
// streams, and the memory budget. Included only by cuda/*.cu.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "host/common/error.hpp"

namespace omicsd::cuda {

// Every CUDA runtime call goes through this: a failure throws omicsd::Error naming the call, the file
// and line, and the runtime's error name and text. (Error, not InputError: device failures are
// retryable for the task runner.)
// Errors after which the CUDA context is corrupt: every later call in this process fails too.
inline bool is_sticky_cuda_error(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
    case cudaErrorLaunchTimeout:
      return true;
    default:
      return false;
  }
}

// Sticky errors throw GpuFaultError (the device is done for in this process), others Error.
[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  int device = -1;
  cudaGetDevice(&device);
  const std::string what = std::string("CUDA error: ") + call + " at " + file + ":" + std::to_string(line) +
                           ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
  if (is_sticky_cuda_error(err)) throw GpuFaultError(device, what);
  throw Error(what);
}
inline void check_cuda(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda_error(err, call, file, line);
}

}  // namespace omicsd::cuda

#define OMICSD_CUDA_CHECK(call) ::omicsd::cuda::check_cuda((call), #call, __FILE__, __LINE__)
// After a kernel launch: launch-configuration errors are reported by cudaGetLastError().
#define OMICSD_CUDA_CHECK_LAUNCH(what) \
  ::omicsd::cuda::check_cuda(cudaGetLastError(), what, __FILE__, __LINE__)

namespace omicsd::cuda {

inline constexpr size_t kAlign = 256;
inline size_t align_up(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

// The two kinds of memory a chunk slot holds: device memory for the kernel, and page-locked host memory
// (cudaHostAlloc) for staging, so cudaMemcpyAsync really is asynchronous. `call` names the allocation in
// error messages.
struct DeviceMemory {
  static constexpr const char* call = "cudaMalloc(&p, bytes)";
  static cudaError_t allocate(void** p, size_t bytes) { return cudaMalloc(p, bytes); }
  static void free(void* p) { cudaFree(p); }
};
struct PinnedMemory {
  static constexpr const char* call = "cudaHostAlloc(&p, bytes, cudaHostAllocDefault)";
  static cudaError_t allocate(void** p, size_t bytes) {
    return cudaHostAlloc(p, bytes, cudaHostAllocDefault);
  }
  static void free(void* p) { cudaFreeHost(p); }
};

// A buffer of `Memory`, grown on demand, never shrunk. try_reserve() reports out-of-memory instead of
// throwing, so callers can split their chunks instead; reserve() throws on every failure.
template <class Memory>
class CudaBuffer {
 public:
  CudaBuffer() = default;
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;
  ~CudaBuffer() { release(); }
  // False when out of memory (the runtime's error state is cleared); throws otherwise.
  bool try_reserve(size_t bytes) { return grow(bytes, true); }
  void reserve(size_t bytes) { grow(bytes, false); }
  void release() {
    if (ptr_) Memory::free(ptr_);  // destructors must not throw; a failing free has nothing to recover
    ptr_ = nullptr;
    size_ = 0;
  }
  uint8_t* get() const { return ptr_; }
  size_t size() const { return size_; }

 private:
  bool grow(size_t bytes, bool oom_is_false) {
    if (bytes <= size_) return true;
    release();
    void* p = nullptr;
    const cudaError_t err = Memory::allocate(&p, bytes);
    if (oom_is_false && err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // not sticky: clear it
      return false;
    }
    check_cuda(err, Memory::call, __FILE__, __LINE__);
    ptr_ = static_cast<uint8_t*>(p);
    size_ = bytes;
    return true;
  }

  uint8_t* ptr_ = nullptr;
  size_t size_ = 0;
};
using DeviceBuffer = CudaBuffer<DeviceMemory>;
using PinnedBuffer = CudaBuffer<PinnedMemory>;

class Stream {
 public:
  Stream() { OMICSD_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (s_) cudaStreamDestroy(s_);
  }
  cudaStream_t get() const { return s_; }
  void sync() const { OMICSD_CUDA_CHECK(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

// Five events around a chunk's work on its stream: before H2D, after H2D, after the kernels, after D2H,
// and (4) between the backend's two kernel phases (warp kernels, then the per-task finish kernel).
class ChunkEvents {
 public:
  ChunkEvents() {
    for (auto& e : ev_) OMICSD_CUDA_CHECK(cudaEventCreate(&e));
  }
  ChunkEvents(const ChunkEvents&) = delete;
  ChunkEvents& operator=(const ChunkEvents&) = delete;
  ~ChunkEvents() {
    for (auto& e : ev_)
      if (e) cudaEventDestroy(e);
  }
  void record(int k, cudaStream_t s) { OMICSD_CUDA_CHECK(cudaEventRecord(ev_[k], s)); }
  cudaEvent_t get(int k) const { return ev_[k]; }
  // After the stream has synchronised: elapsed ms between events a and b.
  double ms(int a, int b) const {
    float t = 0;
    OMICSD_CUDA_CHECK(cudaEventElapsedTime(&t, ev_[a], ev_[b]));
    return double(t);
  }

 private:
  cudaEvent_t ev_[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
};

// Makes `device` current for the calling thread (backends may be called from any thread).
inline void use_device(int device) { OMICSD_CUDA_CHECK(cudaSetDevice(device)); }

inline std::string device_name(int device) {
  cudaDeviceProp prop{};
  OMICSD_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

// The budget to use: the requested one, or half the free device memory capped at 8 GiB.
inline size_t resolve_memory_budget(size_t requested) {
  if (requested > 0) return requested;
  size_t free_b = 0, total_b = 0;
  OMICSD_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return std::min<size_t>(free_b / 2, size_t(8) << 30);
}

// The smallest per-slot capacity worth running a kernel for; below it a device is considered out of
// memory for this backend.
inline constexpr size_t kMinSlotBytes = size_t(64) << 10;

// Fault injection for the tests: OMICSD_CUDA_FAULT=align,genotype makes the named backends' kernels
// write through a null pointer (an illegal address: a sticky error).
inline bool fault_injection_requested(const std::string& stage) {
  const char* v = std::getenv("OMICSD_CUDA_FAULT");
  if (!v) return false;
  const std::string s = std::string(",") + v + ",";
  return s.find("," + stage + ",") != std::string::npos;
}

// Host-side views into a chunk's staging buffer: typed pointers at byte offsets.
template <class T>
T* at(uint8_t* base, size_t offset) {
  return reinterpret_cast<T*>(base + offset);
}

}  // namespace omicsd::cuda
