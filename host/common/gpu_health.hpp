#pragma once
// Which GPUs this process has given up on. A sticky CUDA error (GpuFaultError: illegal address,
// launch failure, ECC) leaves the device's context unusable for the rest of the process, so the first
// one marks the device failed (logged once, at error level), every later batch for it runs on the CPU
// backend, and `omicsd worker` reports the fault and exits with kWorkerExitGpuFault after the task in
// hand so the scheduler can retry the work on a healthy host.
#include <string>
#include <vector>

#include "host/common/error.hpp"

namespace omicsd {

// Marks `device` failed (idempotent); logs `why` the first time.
void mark_gpu_failed(int device, const std::string& why);
bool gpu_failed(int device);
// "GPU <n>: <why>" for every failed device, in the order they failed.
std::vector<std::string> gpu_failures();
// Tests only: forget every failure.
void reset_gpu_failures_for_tests();

// Runs gpu() unless `device` failed before; a GpuFaultError from it marks the device failed and runs
// cpu() instead (which must produce the same result: the backends are bit-identical). Other errors
// propagate.
template <class GpuFn, class CpuFn>
void with_gpu_failover(int device, const char* stage, GpuFn&& gpu, CpuFn&& cpu) {
  if (!gpu_failed(device)) {
    try {
      gpu();
      return;
    } catch (const GpuFaultError& e) {
      mark_gpu_failed(device, std::string(stage) + " backend: " + e.what());
    }
  }
  cpu();
}

}  // namespace omicsd
