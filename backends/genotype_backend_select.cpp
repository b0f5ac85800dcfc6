#include "backends/genotype_backend_select.hpp"

#include "backends/stage_backend_select.hpp"
#include "cuda/cuda_backends.hpp"

namespace omicsd {
namespace {

// The CUDA backend with the fault rule of host/common/gpu_health.hpp (see FailoverAlignBackend).
class FailoverGenotypeBackend final : public GenotypeBackend {
 public:
  FailoverGenotypeBackend(std::unique_ptr<GenotypeBackend> gpu, int device, int threads)
      : gpu_(std::move(gpu)), device_(device), threads_(threads) {}
  std::string name() const override { return gpu_failed(device_) ? "cpu" : gpu_->name(); }
  void compute(const HmmTaskBatch& tasks, const PairHmmParams& params, HmmResultBatch& out) override {
    with_gpu_failover(
        device_, "genotype", [&] { gpu_->compute(tasks, params, out); },
        [&] {
          if (!cpu_) cpu_ = make_cpu_genotype_backend(threads_);
          cpu_->compute(tasks, params, out);
        });
  }

 private:
  std::unique_ptr<GenotypeBackend> gpu_, cpu_;
  int device_, threads_;
};

}  // namespace

std::unique_ptr<GenotypeBackend> with_cpu_failover(std::unique_ptr<GenotypeBackend> gpu, int device,
                                                   int threads) {
  return std::make_unique<FailoverGenotypeBackend>(std::move(gpu), device, threads);
}

std::unique_ptr<GenotypeBackend> select_genotype_backend(const std::string& name, int threads, int device) {
  return select_stage_backend<GenotypeBackend>(
      "genotype", name, threads, device,
      [](const CudaBackendOptions& o) { return make_cuda_genotype_backend(o); },
      [](std::unique_ptr<GenotypeBackend> gpu, int d, int t) {
        return with_cpu_failover(std::move(gpu), d, t);
      },
      [](int t) { return make_cpu_genotype_backend(t); });
}

GenotypeBackendFactory genotype_backend_factory(const std::string& name, int device) {
  return [name, device](int threads) { return select_genotype_backend(name, threads, device); };
}

}  // namespace omicsd
