#pragma once
// The background thread that creates the runs of accepted batches (POST /v1/run-batches answers once a
// batch is stored; RunSubmitter::submit_pending_batches creates its runs). It is woken by each batch
// this daemon accepts, and looks every poll interval for batches it was not told about: those another
// daemon sharing the store accepted and could not finish, and those a crash interrupted.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace omicsd {

class RunSubmitter;

class RunBatchLoop {
 public:
  explicit RunBatchLoop(RunSubmitter& submitter, std::chrono::milliseconds poll = std::chrono::seconds(2));
  ~RunBatchLoop();  // stops at the end of the chunk being submitted; the rest resumes at the next start
  RunBatchLoop(const RunBatchLoop&) = delete;
  RunBatchLoop& operator=(const RunBatchLoop&) = delete;

  void wake();

 private:
  void loop();

  RunSubmitter& submitter_;
  const std::chrono::milliseconds poll_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = true;  // the first pass finds what a restart left
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace omicsd
