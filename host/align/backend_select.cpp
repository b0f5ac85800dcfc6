#include "host/align/backend_select.hpp"

#include <spdlog/spdlog.h>

#include "host/common/cuda_backends.hpp"
#include "host/common/error.hpp"

namespace omicsd {

std::unique_ptr<AlignBackend> select_align_backend(const std::string& name, int threads, int device) {
  std::string why;
  const std::optional<GpuDevice> gpu = choose_gpu_device(name, device, &why);
  if (gpu) {
    CudaBackendOptions o;
    o.device = gpu->index;
    o.memory_budget = gpu_memory_budget_from_env();
    o.cpu_threads = threads;
    spdlog::info("align backend: cuda on GPU {} ({}, sm_{}{}, {} MiB)", gpu->index, gpu->name, gpu->sm_major,
                 gpu->sm_minor, gpu->total_memory >> 20);
    return make_cuda_align_backend(o);
  }
  if (name == "cpu")
    spdlog::info("align backend: cpu ({} threads)", threads);
  else
    spdlog::info("align backend: cpu ({} threads); {}", threads, why);
  return make_cpu_align_backend(threads);
}

}  // namespace omicsd
