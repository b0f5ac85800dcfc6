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
// this build, no driver, no device); *why_none is cleared when devices are found, and may be null.
// Never throws. Exactly one implementation is linked: cuda/device_info.cu in CUDA builds,
// backends/device_info_nocuda.cpp otherwise (which says the build has no CUDA).
std::vector<GpuDevice> list_gpu_devices(std::string* why_none);
// True when this binary was built with the CUDA backends (OMICSD_HAVE_CUDA).
bool cuda_backend_compiled();
// The backends compiled into this binary, for --version: "cpu", or "cpu, cuda (CUDA 13.0 runtime,
// static; sm_80 sm_90)" with the CUDA release and the GPU architectures the kernels were built for
// (an image's label can say anything; this is what the binary holds).
std::string compiled_backends();

}  // namespace omicsd
