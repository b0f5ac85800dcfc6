#pragma once
// The Batch worker (`omicsd worker`): leases tasks from the daemon over HTTP (docs/api.md, "Tasks"),
// runs each with TaskRunner into the data directory it shares with the daemon (or, with the HTTP
// transfer mode, into its own directory: inputs downloaded and outputs uploaded over HTTP, see
// worker_transfer.hpp), heartbeats while it runs and transfers, and reports complete (output
// digests + provenance) or fail (retryable or not).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "service/http/address_policy.hpp"
#include "service/runner/tes_runtime.hpp"

namespace omicsd {

// How task data reaches the worker. shared: --data-dir is the daemon's object directory (a shared
// file system such as EFS); inputs are read by path. http: --data-dir is the worker's own store
// and input cache; inputs are fetched and outputs uploaded through the daemon's HTTP API. s3: like
// http, but objects move between the worker and the fleet's S3 object store (--objects), and s3://
// inputs come straight from their bucket: the daemon only hands out work.
enum class WorkerTransfer { shared, http, s3 };
// "shared" / "http" / "s3"; throws InputError for anything else.
WorkerTransfer parse_worker_transfer(const std::string& s);

struct RemoteWorkerOptions {
  std::string server = "http://127.0.0.1:8080";
  std::string token;
  std::string ca_file;             // https server: PEM CA certificate(s) (empty: the system CAs)
  std::filesystem::path data_dir;  // shared with the daemon: <data-dir>/objects
  std::string worker_id;           // empty: default_worker_id()
  // http: data_dir is the worker's own store and input cache instead of the daemon's.
  WorkerTransfer transfer = WorkerTransfer::shared;
  std::string objects_url;  // s3: "s3://bucket/prefix", the daemon's --objects (credentials: S3Config)
  // s3: objects larger than this go up as multipart uploads of parts this size (0: S3Client's
  // default, 64 MiB). S3 allows 5 MiB .. 5 GiB and at most 10,000 parts per object.
  uint64_t s3_part_size = 0;
  int lease_seconds = 60;
  int threads = 0;    // > 0: overrides the task's "threads" parameter (not part of the cache key)
  bool once = false;  // exit after one task, or when the queue is empty
  // Where file inputs may come from. Empty: anywhere ("/"); the daemon already restricted the URIs
  // of the runs it accepted to its --allow-root directories. Unused with WorkerTransfer::http
  // (inputs are then local copies under <data-dir>/inputs).
  std::vector<std::filesystem::path> allowed_roots;
  // GA4GH TES tasks: where their executors run (none: this worker does not lease TES tasks).
  TesRuntime task_runtime = TesRuntime::none;
  // Networks TES http(s) inputs may come from besides public addresses (--tes-http-allow).
  std::vector<Cidr> tes_http_allow;
  double unreachable_seconds = 120;  // give up (exit 3) after this long without reaching the server
  std::chrono::milliseconds idle_backoff_max{2000};
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGTERM) to drain
};

// Exit codes for AWS Batch retry strategies.
constexpr int kWorkerExitOk = 0;           // drained or --once done
constexpr int kWorkerExitBadConfig = 2;    // not retryable (bad token, bad data dir, ...)
constexpr int kWorkerExitUnreachable = 3;  // server unreachable after retries (retryable)
constexpr int kWorkerExitGpuFault = 4;  // a GPU failed (sticky CUDA error) after the task in hand (retryable)

// "<host>-<pid>", or "batch-<AWS_BATCH_JOB_ID>[-<AWS_BATCH_JOB_ARRAY_INDEX>]-<pid>" inside AWS Batch.
std::string default_worker_id();
// What the lease request advertises: {"gpu","gpu_memory_gb","gpu_count","cpu_cores"} or
// {"cpu":true,"cpu_cores"}.
nlohmann::json worker_capabilities();
// A worker with a TES runtime adds {"tes_runtime": true, "tes_runtime_kind", "ram_gb", "disk_gb"
// (free space of data_dir)}: what tes_requirements() asks of it.
void add_tes_capabilities(nlohmann::json& caps, TesRuntime runtime, const std::filesystem::path& data_dir);
// What heartbeats carry: {"gpus": [{"index","name","utilization","memory_utilization",
// "memory_used_bytes","memory_total_bytes"}]} (an empty list without NVML).
nlohmann::json worker_telemetry();
// AWS Batch context from the environment ({} outside Batch).
nlohmann::json aws_batch_info();

class RemoteWorker {
 public:
  explicit RemoteWorker(RemoteWorkerOptions options);
  ~RemoteWorker();

  // Lease/run/report loop. Returns kWorkerExitOk, kWorkerExitUnreachable or kWorkerExitGpuFault; throws
  // InputError for a configuration the server rejects (401/403/400: exit 2).
  int run();

  // True when a task's engine thread was left running (drain deadline passed or lease lost while
  // stopping): the caller must end the process with _Exit rather than return from main.
  bool abandoned_engine() const { return abandoned_; }
  int tasks_completed() const { return completed_; }
  int tasks_failed() const { return failed_; }
  const std::string& worker_id() const { return options_.worker_id; }

 private:
  struct Impl;
  bool stopping() const { return options_.stop && options_.stop->load(); }
  void process(const nlohmann::json& lease);

  RemoteWorkerOptions options_;
  Impl* impl_ = nullptr;
  bool abandoned_ = false;
  int completed_ = 0, failed_ = 0;
};

}  // namespace omicsd
