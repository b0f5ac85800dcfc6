// Device discovery for CUDA builds: the CUDA implementation of cuda/device_info.hpp (the CPU-only
// build links backends/device_info_nocuda.cpp instead). Every runtime call is checked; a machine
// without a driver or a device yields an empty list and the runtime's reason, never an exception.
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "cuda/device_info.hpp"

namespace omicsd {
namespace {

std::string cuda_error_text(const char* call, cudaError_t err) {
  return std::string(call) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
}

}  // namespace

std::vector<GpuDevice> list_gpu_devices(std::string* why_none) {
  std::vector<GpuDevice> devices;
  std::string why;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    why = cuda_error_text("cudaGetDeviceCount", err);
    cudaGetLastError();  // reset the runtime's last-error state (these errors are not sticky)
    count = 0;
  } else if (count == 0) {
    why = "cudaGetDeviceCount: 0 CUDA devices visible";
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    const cudaError_t perr = cudaGetDeviceProperties(&prop, i);
    if (perr != cudaSuccess) {
      if (!why.empty()) why += "; ";
      why += "device " + std::to_string(i) + ": " + cuda_error_text("cudaGetDeviceProperties", perr);
      cudaGetLastError();
      continue;
    }
    GpuDevice d;
    d.index = i;
    d.name = prop.name;
    d.total_memory = prop.totalGlobalMem;
    d.sm_major = prop.major;
    d.sm_minor = prop.minor;
    d.multiprocessors = prop.multiProcessorCount;
    devices.push_back(std::move(d));
  }
  if (why_none) *why_none = devices.empty() ? why : std::string();
  return devices;
}

bool cuda_backend_compiled() { return true; }

std::string compiled_backends() {
  // nvcc defines __CUDA_ARCH_LIST__ (e.g. 800,900) in the host pass too: the architectures this
  // translation unit, like every .cu file of the target, was compiled for (CMAKE_CUDA_ARCHITECTURES).
  constexpr int archs[] = {__CUDA_ARCH_LIST__};
  std::string text = "cpu, cuda (CUDA " + std::to_string(CUDART_VERSION / 1000) + "." +
                     std::to_string(CUDART_VERSION % 1000 / 10) + " runtime, static;";
  for (const int arch : archs) text += " sm_" + std::to_string(arch / 10);
  return text + ")";
}

}  // namespace omicsd
