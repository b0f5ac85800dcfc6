#pragma once
// Wall-clock time as unix milliseconds: what the stores record (created_at, leases, webhooks) and
// what callers pass to the job store, which takes time as an argument so tests control it.
#include <chrono>
#include <cstdint>

namespace omicsd {

inline int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace omicsd
