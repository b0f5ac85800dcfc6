#pragma once
#include <memory>
#include <string>

#include "host/align/align_backend.hpp"

namespace omicsd {

// Resolves --backend auto|cpu|cuda and --device N (host/common/cuda_backends.hpp: choose_gpu_device).
// `auto` uses the CUDA backend on that device when this build has it and the device is present
// (logging the device's name), else the CPU backend with one log line saying why. `cuda` without a
// usable device throws InputError. The CUDA backend's memory budget comes from $OMICSD_GPU_MEMORY.
std::unique_ptr<AlignBackend> select_align_backend(const std::string& name, int threads, int device = 0);

}  // namespace omicsd
