#pragma once
// In-process workers of `omicsd serve --workers N`: each thread loops lease -> (call cache | run the
// task) -> complete/fail directly on the JobStore, with a heartbeat thread while a task runs.
//
// The task engine is reached through TaskExecutor (plain JSON in and out) so this header and the
// JobStore side never include task_runner.hpp; cmd_serve.cpp wires the TaskRunner in.
#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace omicsd {

class JobStore;
class Metrics;

struct ExecRequest {
  std::string kind;  // align | call | qc
  std::string sample;
  nlohmann::json inputs = nlohmann::json::object();
  nlohmann::json parameters = nlohmann::json::object();
  bool use_cache = true;
  std::string task_id;                        // the leased task (TES tasks name their work directory by it)
  const std::atomic<bool>* cancel = nullptr;  // set when the lease is lost (e.g. the run was canceled)
};

struct ExecResult {
  std::string cache_key;
  bool cache_hit = false;
  nlohmann::json outputs = nlohmann::json::object();  // name -> {"digest","size"}
  nlohmann::json provenance = nlohmann::json::object();
  double seconds = 0;
};

struct TaskExecutor {
  // The call-cache key of a request (resolves and digests the inputs); throws like run().
  std::function<std::string(const ExecRequest&)> cache_key;
  std::function<ExecResult(const ExecRequest&)> run;
  // Whether an exception from cache_key/run is worth another attempt.
  std::function<bool(const std::exception&)> retryable;
  // Whether every object named in outputs ({name: {"digest","size"}}) is still stored.
  std::function<bool(const nlohmann::json&)> have_outputs;
};

struct InprocWorkerOptions {
  std::string worker_id;
  int64_t lease_seconds = 60;
  int poll_ms = 200;
  nlohmann::json capabilities = nlohmann::json::object();
  // Called with the run id when a task this worker completed made its run COMPLETE.
  std::function<void(const std::string& run_id)> on_run_complete;
};

class InprocWorker {
 public:
  InprocWorker(JobStore& store, TaskExecutor executor, InprocWorkerOptions options,
               std::shared_ptr<Metrics> metrics);
  ~InprocWorker();  // stop()
  void start();
  // Asks the loop to stop after the current task (which is finished, not abandoned) and joins.
  void request_stop();
  void join();
  void stop() {
    request_stop();
    join();
  }
  bool busy() const { return busy_; }

 private:
  void loop();

  JobStore& store_;
  TaskExecutor exec_;
  InprocWorkerOptions opt_;
  std::shared_ptr<Metrics> metrics_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace omicsd
