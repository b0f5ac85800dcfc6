#pragma once
#include <memory>
#include <string>

#include "host/align/align_backend.hpp"

namespace omicsd {

// Resolves --backend auto|cpu|cuda and --device N (backends/backend_choice.hpp: choose_gpu_device).
// `auto` uses the CUDA backend on that device when this build has it and the device is present
// (logging the device's name), else the CPU backend with one log line saying why. `cuda` without a
// usable device throws InputError. The CUDA backend's memory budget comes from $OMICSD_GPU_MEMORY.
// The CUDA backend is wrapped by with_cpu_failover().
std::unique_ptr<AlignBackend> select_align_backend(const std::string& name, int threads, int device = 0);

// What the CLI and the task runner hand the engine (AlignOptions::make_backend): a factory that runs
// select_align_backend(name, threads, device) when the pipeline asks for its backend, so a bad name
// or a missing device is reported at the same point of the run as before.
AlignBackendFactory align_backend_factory(const std::string& name, int device);

// `gpu` (a CUDA backend on `device`) behind the fault rule of host/common/gpu_health.hpp: a sticky CUDA
// error marks the device failed and the batch, and every later one, runs on a CPU backend of `threads`.
std::unique_ptr<AlignBackend> with_cpu_failover(std::unique_ptr<AlignBackend> gpu, int device, int threads);

}  // namespace omicsd
