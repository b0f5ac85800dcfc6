#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace omicsd {

struct GpuDevice {
  int index = 0;
  std::string name;
  size_t total_memory = 0;
  int sm_major = 0, sm_minor = 0;
  int multiprocessors = 0;
};

// CUDA devices usable by this process; empty with *why_none set when there are none (no CUDA in
// this build, no driver, no device).
std::vector<GpuDevice> list_gpu_devices(std::string* why_none);
bool cuda_backend_compiled();

}  // namespace omicsd
