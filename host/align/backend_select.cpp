#include "host/align/backend_select.hpp"

#include "host/common/cuda_backends.hpp"

namespace omicsd {

std::unique_ptr<AlignBackend> select_align_backend(const std::string& name, int threads, int device) {
  if (const std::optional<CudaBackendOptions> o = choose_stage_backend("align", name, threads, device))
    return make_cuda_align_backend(*o);
  return make_cpu_align_backend(threads);
}

}  // namespace omicsd
