#pragma once
// Logging for cuda/*.cu: nvcc cannot compile spdlog's compile-time format strings, so the CUDA
// sources log through these plain functions (spdlog underneath, in cuda/backend_log.cpp, which the
// host compiler builds).
#include <string>

namespace omicsd {

enum class BackendLogLevel { kDebug, kInfo, kWarn };
void backend_log(BackendLogLevel level, const std::string& message);

}  // namespace omicsd
