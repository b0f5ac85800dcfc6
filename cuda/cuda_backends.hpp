#pragma once
// The CUDA backends as plain C++ declarations: the layer above the engine (backends/, which chooses
// the backend of each stage, and the CLI's bench) reaches them only through this header; host/ never
// includes it. In CUDA builds (OMICSD_HAVE_CUDA) cuda/align_backend.cu and cuda/genotype_backend.cu
// define the factories; in CPU-only builds backends/cuda_backends_nocuda.cpp does, throwing. No CUDA
// header is included here.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "host/align/align_backend.hpp"
#include "host/call/genotype_backend.hpp"

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

}  // namespace omicsd
