// Device discovery for builds without CUDA (OMICSD_HAVE_CUDA off): no GPU is ever usable. The CUDA
// build links cuda/device_info.cu instead and backends/CMakeLists.txt leaves this file out.
#include "cuda/device_info.hpp"

namespace omicsd {

std::vector<GpuDevice> list_gpu_devices(std::string* why_none) {
  if (why_none)
    *why_none = "this omicsd was built without CUDA support (OMICSD_CUDA=OFF or no nvcc at build time)";
  return {};
}

bool cuda_backend_compiled() { return false; }

std::string compiled_backends() { return "cpu"; }

}  // namespace omicsd
