#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace omicsd {

inline int resolve_threads(int threads) {
  if (threads > 0) return threads;
  const unsigned hc = std::thread::hardware_concurrency();
  return hc ? int(hc) : 1;
}

// Runs fn(begin, end) over [0, n) in chunks of `grain` on up to `threads` threads (the caller's
// thread included). Every call covers exactly one chunk [c * grain, min(n, (c + 1) * grain)), whatever
// the thread count, so callers may keep per-chunk state. Chunks are claimed dynamically; the first
// exception thrown is rethrown here. When threads cannot be created, fewer (at least the caller's) do
// the work.
template <class Fn>
void parallel_for(size_t n, int threads, size_t grain, Fn&& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  const size_t chunks = (n + grain - 1) / grain;
  const int nt = int(std::min<size_t>(size_t(std::max(threads, 1)), chunks));
  if (nt <= 1) {
    for (size_t c = 0; c < chunks; ++c) fn(c * grain, std::min(n, (c + 1) * grain));
    return;
  }
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (;;) {
      const size_t c = next.fetch_add(1);
      if (c >= chunks) return;
      try {
        fn(c * grain, std::min(n, (c + 1) * grain));
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = chunks;
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(nt - 1);
  for (int i = 1; i < nt; ++i) {
    try {
      pool.emplace_back(worker);
    } catch (const std::system_error&) {
      // No more threads to be had (process or memory limits): the threads started so far and this
      // one share the chunks. (Unhandled, the joinable threads' destructors would call terminate.)
      break;
    }
  }
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace omicsd
