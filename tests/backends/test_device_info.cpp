// Device discovery (cuda/device_info.hpp): passes on machines with and without a GPU, and says
// which it saw. Without a usable device the list is empty and the reason is given; with one, every
// entry looks like a real CUDA device.
#include <gtest/gtest.h>

#include <cstdio>
#include <iostream>
#include <set>
#include <string>

#include "cuda/device_info.hpp"
#include "host/common/gpu_telemetry.hpp"

namespace omicsd {
namespace {

TEST(DeviceInfo, ListsDevicesOrSaysWhyNone) {
  std::string why = "stale";
  const std::vector<GpuDevice> devices = list_gpu_devices(&why);
  std::cout << "[ info ] cuda backend compiled: " << (cuda_backend_compiled() ? "yes" : "no") << "\n";
  if (devices.empty()) {
    std::cout << "[ info ] no GPU: " << why << "\n";
    EXPECT_FALSE(why.empty());
    EXPECT_NE(why, "stale");
    return;
  }
  EXPECT_TRUE(cuda_backend_compiled()) << "devices reported by a build without CUDA";
  EXPECT_TRUE(why.empty()) << why;
  std::set<int> indices;
  for (const GpuDevice& d : devices) {
    std::cout << "[ info ] GPU " << d.index << ": " << d.name << ", sm_" << d.sm_major << d.sm_minor << ", "
              << d.multiprocessors << " SMs, " << (d.total_memory >> 20) << " MiB\n";
    EXPECT_GE(d.index, 0);
    EXPECT_LT(d.index, int(devices.size()) + 64);
    EXPECT_TRUE(indices.insert(d.index).second) << "duplicate index " << d.index;
    EXPECT_FALSE(d.name.empty());
    EXPECT_GE(d.total_memory, size_t(256) << 20) << d.name;
    EXPECT_GE(d.sm_major, 3) << d.name;
    EXPECT_LE(d.sm_major, 20) << d.name;
    EXPECT_GE(d.sm_minor, 0) << d.name;
    EXPECT_LE(d.sm_minor, 9) << d.name;
    EXPECT_GE(d.multiprocessors, 1) << d.name;
  }
}

TEST(DeviceInfo, NullReasonPointerIsAllowedAndResultIsStable) {
  const std::vector<GpuDevice> a = list_gpu_devices(nullptr);
  std::string why;
  const std::vector<GpuDevice> b = list_gpu_devices(&why);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index, b[i].index);
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].total_memory, b[i].total_memory);
  }
}

TEST(DeviceInfo, CpuOnlyBuildReportsNoDevices) {
  if (cuda_backend_compiled()) GTEST_SKIP() << "CUDA build";
  std::string why;
  EXPECT_TRUE(list_gpu_devices(&why).empty());
  EXPECT_NE(why.find("without CUDA"), std::string::npos) << why;
}

}  // namespace
}  // namespace omicsd

// NVML telemetry: a GPU machine reports each GPU with fractions in [0, 1] and memory sizes; a machine
// without the driver reports none and says why (never throws).
TEST(GpuTelemetry, SamplesEveryGpuOrSaysWhyNone) {
  std::string why;
  const auto gpus = omicsd::sample_gpu_utilization(&why);
  if (gpus.empty()) {
    EXPECT_FALSE(why.empty());
    std::printf("no GPU telemetry here: %s\n", why.c_str());
    return;
  }
  EXPECT_TRUE(why.empty());
  for (const auto& g : gpus) {
    EXPECT_GE(g.utilization, 0.0);
    EXPECT_LE(g.utilization, 1.0);
    EXPECT_GT(g.memory_total, 0u);
    EXPECT_LE(g.memory_used, g.memory_total);
    EXPECT_FALSE(g.name.empty());
  }
}
