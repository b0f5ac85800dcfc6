#pragma once
// Internal to backends/: the selection rule both stages follow (align_backend_select.cpp,
// genotype_backend_select.cpp), written once for any backend interface.
#include <memory>
#include <optional>
#include <string>

#include "backends/backend_choice.hpp"
#include "host/common/gpu_health.hpp"

namespace omicsd {

// --backend/--device for `stage` (choose_stage_backend): the CUDA backend from make_cuda, wrapped by
// with_failover (the GPU fault rule), or make_cpu(threads). A device this process has given up on (a
// sticky fault in an earlier stage) is not touched again; a fault while setting the backend up counts
// the same and the stage runs on the CPU.
template <class Backend, class MakeCuda, class WithFailover, class MakeCpu>
std::unique_ptr<Backend> select_stage_backend(const char* stage, const std::string& name, int threads,
                                              int device, MakeCuda&& make_cuda, WithFailover&& with_failover,
                                              MakeCpu&& make_cpu) {
  if (const std::optional<CudaBackendOptions> o = choose_stage_backend(stage, name, threads, device)) {
    if (!gpu_failed(o->device)) {
      try {
        return with_failover(make_cuda(*o), o->device, threads);
      } catch (const GpuFaultError& e) {
        mark_gpu_failed(o->device, std::string(stage) + " backend: " + e.what());
      }
    }
  }
  return make_cpu(threads);
}

}  // namespace omicsd
