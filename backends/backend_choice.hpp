#pragma once
// Which backend each engine stage runs on: the layer above host/ (the engine, which only knows the
// AlignBackend / GenotypeBackend interfaces) and cuda/ (the CUDA implementations of them). The
// engine is handed a backend factory built here (align_backend_select.hpp,
// genotype_backend_select.hpp); it never names a backend itself.
#include <cstddef>
#include <optional>
#include <string>

#include "cuda/cuda_backends.hpp"
#include "cuda/device_info.hpp"

namespace omicsd {

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

}  // namespace omicsd
