#include "backends/align_backend_select.hpp"

#include "backends/stage_backend_select.hpp"
#include "cuda/cuda_backends.hpp"

namespace omicsd {
namespace {

// The CUDA backend with the fault rule of host/common/gpu_health.hpp: after a sticky CUDA error the
// batch (and every later one) runs on the CPU backend, with the same results.
class FailoverAlignBackend final : public AlignBackend {
 public:
  FailoverAlignBackend(std::unique_ptr<AlignBackend> gpu, int device, int threads)
      : gpu_(std::move(gpu)), device_(device), threads_(threads) {}
  std::string name() const override { return gpu_failed(device_) ? "cpu" : gpu_->name(); }
  void align(const AlignTaskBatch& tasks, const ScoringParams& params, AlignResultBatch& out) override {
    with_gpu_failover(
        device_, "align", [&] { gpu_->align(tasks, params, out); },
        [&] {
          if (!cpu_) cpu_ = make_cpu_align_backend(threads_);
          cpu_->align(tasks, params, out);
        });
  }

 private:
  std::unique_ptr<AlignBackend> gpu_, cpu_;
  int device_, threads_;
};

}  // namespace

std::unique_ptr<AlignBackend> with_cpu_failover(std::unique_ptr<AlignBackend> gpu, int device, int threads) {
  return std::make_unique<FailoverAlignBackend>(std::move(gpu), device, threads);
}

std::unique_ptr<AlignBackend> select_align_backend(const std::string& name, int threads, int device) {
  return select_stage_backend<AlignBackend>(
      "align", name, threads, device, [](const CudaBackendOptions& o) { return make_cuda_align_backend(o); },
      [](std::unique_ptr<AlignBackend> gpu, int d, int t) { return with_cpu_failover(std::move(gpu), d, t); },
      [](int t) { return make_cpu_align_backend(t); });
}

AlignBackendFactory align_backend_factory(const std::string& name, int device) {
  return [name, device](int threads) { return select_align_backend(name, threads, device); };
}

}  // namespace omicsd
