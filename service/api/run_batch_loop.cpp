#include "service/api/run_batch_loop.hpp"

#include <spdlog/spdlog.h>

#include "service/api/run_submission.hpp"

namespace omicsd {

RunBatchLoop::RunBatchLoop(RunSubmitter& submitter, std::chrono::milliseconds poll)
    : submitter_(submitter), poll_(poll), thread_([this] { loop(); }) {}

RunBatchLoop::~RunBatchLoop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void RunBatchLoop::wake() {
  {
    std::lock_guard lk(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void RunBatchLoop::loop() {
  while (true) {
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, poll_, [&] { return woken_ || stop_.load(); });
      if (stop_) return;
      woken_ = false;
    }
    try {
      if (const int64_t n = submitter_.submit_pending_batches(stop_); n > 0)
        spdlog::info("batches: {} run request(s) submitted", n);
    } catch (const std::exception& e) {  // the store unreachable: the batch waits for the next pass
      spdlog::error("batches: {}", e.what());
    }
  }
}

}  // namespace omicsd
