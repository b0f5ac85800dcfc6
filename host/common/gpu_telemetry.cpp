#include "host/common/gpu_telemetry.hpp"

#include <dlfcn.h>

#include <mutex>

namespace omicsd {
namespace {

// The few NVML entry points used, declared from the documented C ABI (nvml.h is not installed with
// the toolkit here, and the driver library is all that is needed at run time).
using nvmlReturn_t = int;  // 0 = NVML_SUCCESS
using nvmlDevice_t = struct nvmlDevice_st*;
struct nvmlUtilization_t {
  unsigned int gpu;
  unsigned int memory;
};
struct nvmlMemory_t {
  unsigned long long total, free, used;
};

struct Nvml {
  bool ok = false;
  std::string why;
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*count)(unsigned int*) = nullptr;
  nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  const char* (*error_string)(nvmlReturn_t) = nullptr;

  std::string error(const char* call, nvmlReturn_t rc) const {
    return std::string(call) + " failed: " + (error_string ? error_string(rc) : std::to_string(rc));
  }
};

template <typename F>
bool bind(void* lib, const char* symbol, F& fn) {
  fn = reinterpret_cast<F>(dlsym(lib, symbol));
  return fn != nullptr;
}

const Nvml& nvml() {
  static Nvml n;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = dlerror();
      n.why = std::string("NVML not available (no NVIDIA driver): ") + (e ? e : "dlopen failed");
      return;
    }
    if (!bind(lib, "nvmlInit_v2", n.init) || !bind(lib, "nvmlDeviceGetCount_v2", n.count) ||
        !bind(lib, "nvmlDeviceGetHandleByIndex_v2", n.handle) || !bind(lib, "nvmlDeviceGetName", n.name) ||
        !bind(lib, "nvmlDeviceGetUtilizationRates", n.utilization) ||
        !bind(lib, "nvmlDeviceGetMemoryInfo", n.memory)) {
      n.why = "NVML library lacks an expected entry point";
      return;
    }
    bind(lib, "nvmlErrorString", n.error_string);
    if (const nvmlReturn_t rc = n.init(); rc != 0) {
      n.why = n.error("nvmlInit_v2", rc);
      return;
    }
    n.ok = true;  // the library stays loaded and initialised for the life of the process
  });
  return n;
}

}  // namespace

std::vector<GpuUtilization> sample_gpu_utilization(std::string* why_none) {
  std::vector<GpuUtilization> out;
  const Nvml& n = nvml();
  std::string why = n.why;
  unsigned int count = 0;
  if (n.ok) {
    if (const nvmlReturn_t rc = n.count(&count); rc != 0) why = n.error("nvmlDeviceGetCount_v2", rc);
    for (unsigned int i = 0; i < count; ++i) {
      nvmlDevice_t dev = nullptr;
      nvmlUtilization_t u{};
      nvmlMemory_t m{};
      if (const nvmlReturn_t rc = n.handle(i, &dev); rc != 0) {
        why = n.error("nvmlDeviceGetHandleByIndex_v2", rc);
        continue;
      }
      GpuUtilization g;
      g.index = static_cast<int>(i);
      char name[96] = {};
      if (n.name(dev, name, sizeof name) == 0) g.name = name;
      if (n.utilization(dev, &u) == 0) {
        g.utilization = u.gpu / 100.0;
        g.memory_utilization = u.memory / 100.0;
      }
      if (n.memory(dev, &m) == 0) {
        g.memory_used = m.used;
        g.memory_total = m.total;
      }
      out.push_back(g);
    }
    if (count == 0 && why.empty()) why = "NVML sees no GPU";
  }
  if (why_none) *why_none = out.empty() ? why : std::string();
  return out;
}

}  // namespace omicsd
