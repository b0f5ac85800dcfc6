#pragma once
// The CUDA backends as plain C++ declarations: host code reaches them only through this header. In CUDA
// builds (OMICSD_HAVE_CUDA) cuda/align_backend.cu and cuda/genotype_backend.cu define the factories; in
// CPU-only builds host/common/cuda_backends_nocuda.cpp does, throwing. No CUDA header is included here.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "host/align/align_backend.hpp"
#include "host/call/genotype_backend.hpp"
#include "host/common/device_info.hpp"

namespace omicsd {

struct CudaBackendOptions {
  int device = 0;  // CUDA device index (cudaSetDevice)
  // Device memory the backend may hold for batch buffers, all in-flight chunks together. A batch
  // larger than this is processed in chunks; a single task too large for a chunk runs on the CPU
  // backend (same shared recurrence, same result). 0: half the free memory, at most 8 GiB.
  size_t memory_budget = 0;
  int streams = 3;      // chunks in flight (2..4): H2D of k+1, kernel of k, D2H of k-1 overlap
  int cpu_threads = 0;  // threads of the CPU backend used for oversized tasks (0: all cores)
};

// Throw omicsd::Error when the device cannot be used (or, in CPU-only builds, always).
std::unique_ptr<AlignBackend> make_cuda_align_backend(const CudaBackendOptions& options);
std::unique_ptr<GenotypeBackend> make_cuda_genotype_backend(const CudaBackendOptions& options);

// What a CUDA backend spent since the last take_cuda_timings(): per chunk, the device time of its
// H2D copy, kernel and D2H copy (cudaEvent timings on its stream, summed over chunks; chunks on
// different streams overlap, so the sums can exceed the wall time), bytes moved, and tasks that ran on
// the CPU fallback. For `omicsd bench`.
struct CudaBackendTimings {
  uint64_t chunks = 0, h2d_bytes = 0, d2h_bytes = 0, cpu_fallback_tasks = 0;
  double h2d_ms = 0, kernel_ms = 0, d2h_ms = 0;
  // kernel_ms split: the warp-cooperative kernels, then the per-task finish kernel (traceback / double
  // pass / scalar tasks).
  double warp_kernel_ms = 0, finish_kernel_ms = 0;
};
// Moves the backend's accumulated timings into *t and resets them; false (and *t untouched) when the
// backend is not a CUDA backend.
bool take_cuda_timings(AlignBackend& backend, CudaBackendTimings* t);
bool take_cuda_timings(GenotypeBackend& backend, CudaBackendTimings* t);

// Resolves --backend auto|cpu|cuda and --device N to the GPU to use, or none for the CPU backend.
// cpu: none. cuda: the device, or InputError naming why there is none (no CUDA in this build, no
// driver/device, index out of range). auto: the device when usable, else none with *why_cpu saying
// why (for the caller's one log line). Unknown backend names and negative devices: InputError.
std::optional<GpuDevice> choose_gpu_device(const std::string& backend, int device, std::string* why_cpu);

// Resolves one stage's --backend and --device (choose_gpu_device) to the options of its CUDA backend,
// budget from $OMICSD_GPU_MEMORY, or none for its CPU backend, and logs the choice in one line
// ("<stage> backend: cuda on GPU ..." or "<stage> backend: cpu (N threads)[; why]"). The align and
// genotype selectors differ only in the stage name and the factories they call with the result.
std::optional<CudaBackendOptions> choose_stage_backend(const std::string& stage, const std::string& backend,
                                                       int threads, int device);

// The memory budget from $OMICSD_GPU_MEMORY (a byte count with optional K/M/G suffix); 0 when unset.
// Throws InputError for a malformed value.
size_t gpu_memory_budget_from_env();

// Logging for cuda/*.cu: nvcc cannot compile spdlog's compile-time format strings, so the CUDA
// sources log through these plain functions (spdlog underneath).
enum class BackendLogLevel { kDebug, kInfo, kWarn };
void backend_log(BackendLogLevel level, const std::string& message);

}  // namespace omicsd
