#include "host/common/gpu_health.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <utility>

namespace omicsd {
namespace {

std::mutex& health_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::pair<int, std::string>>& failures() {
  static std::vector<std::pair<int, std::string>> f;
  return f;
}

}  // namespace

void mark_gpu_failed(int device, const std::string& why) {
  std::lock_guard lock(health_mutex());
  auto& f = failures();
  if (std::any_of(f.begin(), f.end(), [&](const auto& x) { return x.first == device; })) return;
  f.emplace_back(device, why);
  spdlog::error("GPU {} failed and is no longer used by this process; continuing on the CPU backend: {}",
                device, why);
}

bool gpu_failed(int device) {
  std::lock_guard lock(health_mutex());
  const auto& f = failures();
  return std::any_of(f.begin(), f.end(), [&](const auto& x) { return x.first == device; });
}

std::vector<std::string> gpu_failures() {
  std::lock_guard lock(health_mutex());
  std::vector<std::string> out;
  for (const auto& [device, why] : failures()) out.push_back("GPU " + std::to_string(device) + ": " + why);
  return out;
}

void reset_gpu_failures_for_tests() {
  std::lock_guard lock(health_mutex());
  failures().clear();
}

}  // namespace omicsd
