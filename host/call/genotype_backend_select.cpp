#include "host/call/genotype_backend_select.hpp"

#include "host/common/cuda_backends.hpp"

namespace omicsd {

std::unique_ptr<GenotypeBackend> select_genotype_backend(const std::string& name, int threads, int device) {
  if (const std::optional<CudaBackendOptions> o = choose_stage_backend("genotype", name, threads, device))
    return make_cuda_genotype_backend(*o);
  return make_cpu_genotype_backend(threads);
}

}  // namespace omicsd
