#include "backends/align_backend_select.hpp"

#include "backends/backend_choice.hpp"
#include "cuda/cuda_backends.hpp"
#include "host/common/gpu_health.hpp"

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
  if (const std::optional<CudaBackendOptions> o = choose_stage_backend("align", name, threads, device)) {
    // A device this process has given up on (a sticky fault in an earlier stage) is not touched again;
    // a fault while setting the backend up counts the same.
    if (!gpu_failed(o->device)) {
      try {
        return with_cpu_failover(make_cuda_align_backend(*o), o->device, threads);
      } catch (const GpuFaultError& e) {
        mark_gpu_failed(o->device, std::string("align backend: ") + e.what());
      }
    }
  }
  return make_cpu_align_backend(threads);
}

AlignBackendFactory align_backend_factory(const std::string& name, int device) {
  return [name, device](int threads) { return select_align_backend(name, threads, device); };
}

}  // namespace omicsd
