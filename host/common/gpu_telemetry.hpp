#pragma once
// Live GPU utilisation for worker telemetry (reported to the daemon with heartbeats and exported
// there as Prometheus gauges). Read through NVML, which ships with the NVIDIA driver: the library is
// loaded at run time with dlopen, so the binary starts (and reports nothing) on machines without a
// driver, and no CUDA header is needed here.
#include <cstdint>
#include <string>
#include <vector>

namespace omicsd {

struct GpuUtilization {
  int index = 0;
  std::string name;
  double utilization = 0;         // busy fraction of the last sample period, 0..1
  double memory_utilization = 0;  // memory-controller busy fraction, 0..1
  uint64_t memory_used = 0;       // bytes
  uint64_t memory_total = 0;      // bytes
};

// One sample of every GPU NVML sees; empty with *why_none set (no driver, NVML failed). Never throws.
// Thread-safe; NVML is initialised once per process.
std::vector<GpuUtilization> sample_gpu_utilization(std::string* why_none = nullptr);

}  // namespace omicsd
