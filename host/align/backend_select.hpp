#pragma once
#include <memory>
#include <string>

#include "host/align/align_backend.hpp"

namespace omicsd {

// Resolves --backend auto|cpu|cuda. `auto` uses a CUDA backend when one is built and a device is
// present, else the CPU backend, logging which and why. `cuda` without a usable GPU backend throws.
std::unique_ptr<AlignBackend> select_align_backend(const std::string& name, int threads);

}  // namespace omicsd
