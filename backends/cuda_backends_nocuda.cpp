// CPU-only builds: the CUDA backend factories exist (so backend selection links the same way in every
// build) but refuse. choose_gpu_device() never picks a device in these builds (list_gpu_devices() is
// empty and cuda_backend_compiled() false), so these are reached only by direct calls.
#include "cuda/cuda_backends.hpp"
#include "host/common/error.hpp"

namespace omicsd {

std::unique_ptr<AlignBackend> make_cuda_align_backend(const CudaBackendOptions&) {
  throw Error("CUDA align backend: this omicsd was built without CUDA (OMICSD_CUDA=OFF or no nvcc)");
}

std::unique_ptr<GenotypeBackend> make_cuda_genotype_backend(const CudaBackendOptions&) {
  throw Error("CUDA genotype backend: this omicsd was built without CUDA (OMICSD_CUDA=OFF or no nvcc)");
}

bool take_cuda_timings(AlignBackend&, CudaBackendTimings*) { return false; }
bool take_cuda_timings(GenotypeBackend&, CudaBackendTimings*) { return false; }

}  // namespace omicsd
