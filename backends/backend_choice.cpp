// Backend and device resolution shared by the align and call stages.
#include "backends/backend_choice.hpp"

#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdlib>

#include "host/common/error.hpp"

namespace omicsd {

std::optional<GpuDevice> choose_gpu_device(const std::string& backend, int device, std::string* why_cpu) {
  if (backend != "auto" && backend != "cpu" && backend != "cuda")
    throw InputError("--backend " + backend + ": expected auto, cpu or cuda");
  if (device < 0) throw InputError("--device " + std::to_string(device) + ": expected a device index >= 0");
  std::string why;
  auto fail_or_cpu = [&](const std::string& reason) -> std::optional<GpuDevice> {
    if (backend == "cuda") throw InputError("--backend cuda: " + reason);
    if (why_cpu) *why_cpu = reason;
    return std::nullopt;
  };
  if (backend == "cpu") {
    if (why_cpu) *why_cpu = "--backend cpu";
    return std::nullopt;
  }
  if (!cuda_backend_compiled()) return fail_or_cpu("this omicsd was built without the CUDA backends");
  const std::vector<GpuDevice> devices = list_gpu_devices(&why);
  if (devices.empty()) return fail_or_cpu("no usable CUDA device (" + why + ")");
  for (const GpuDevice& d : devices)
    if (d.index == device) return d;
  return fail_or_cpu("--device " + std::to_string(device) + " is not present (" +
                     std::to_string(devices.size()) + " CUDA device(s) visible)");
}

std::optional<CudaBackendOptions> choose_stage_backend(const std::string& stage, const std::string& backend,
                                                       int threads, int device) {
  std::string why;
  const std::optional<GpuDevice> gpu = choose_gpu_device(backend, device, &why);
  if (gpu) {
    CudaBackendOptions o;
    o.device = gpu->index;
    o.memory_budget = gpu_memory_budget_from_env();
    o.cpu_threads = threads;
    spdlog::info("{} backend: cuda on GPU {} ({}, sm_{}{}, {} MiB)", stage, gpu->index, gpu->name,
                 gpu->sm_major, gpu->sm_minor, gpu->total_memory >> 20);
    return o;
  }
  if (backend == "cpu")
    spdlog::info("{} backend: cpu ({} threads)", stage, threads);
  else
    spdlog::info("{} backend: cpu ({} threads); {}", stage, threads, why);
  return std::nullopt;
}

size_t gpu_memory_budget_from_env() {
  const char* v = std::getenv("OMICSD_GPU_MEMORY");
  if (!v || !*v) return 0;
  const std::string s(v);
  size_t idx = 0;
  double x = 0;
  try {
    x = std::stod(s, &idx);
  } catch (const std::exception&) {
    throw InputError("OMICSD_GPU_MEMORY=" + s + ": expected a size such as 2G or 512M");
  }
  double mult = 1;
  if (idx < s.size()) {
    switch (std::toupper(static_cast<unsigned char>(s[idx]))) {
      case 'K':
        mult = 1024.0;
        break;
      case 'M':
        mult = 1024.0 * 1024;
        break;
      case 'G':
        mult = 1024.0 * 1024 * 1024;
        break;
      default:
        throw InputError("OMICSD_GPU_MEMORY=" + s + ": expected a size such as 2G or 512M");
    }
    if (idx + 1 != s.size())
      throw InputError("OMICSD_GPU_MEMORY=" + s + ": expected a size such as 2G or 512M");
  }
  if (!(x > 0)) throw InputError("OMICSD_GPU_MEMORY=" + s + ": must be positive");
  return size_t(x * mult);
}

}  // namespace omicsd
