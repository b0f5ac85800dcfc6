#include "service/workers/remote_worker.hpp"

#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "cuda/device_info.hpp"
#include "host/common/error.hpp"
#include "host/common/gpu_health.hpp"
#include "host/common/gpu_telemetry.hpp"
#include "omicsd_version.hpp"
#include "service/http/http_client.hpp"
#include "service/objects/object_store.hpp"
#include "service/runner/task_runner.hpp"
#include "service/runner/tes_executor.hpp"
#include "service/workers/worker_transfer.hpp"

namespace omicsd {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string env_str(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Sleeps up to `d`, waking early when a stop is requested.
void sleep_unless_stopped(milliseconds d, const std::atomic<bool>* stop) {
  const auto end = SteadyClock::now() + d;
  while (SteadyClock::now() < end) {
    if (stop && stop->load()) return;
    std::this_thread::sleep_for(std::min(milliseconds(50), std::chrono::duration_cast<milliseconds>(
                                                               end - SteadyClock::now() + milliseconds(1))));
  }
}

// The lease the server granted, as a local deadline (server clocks may differ: clamp to what we asked).
SteadyClock::time_point lease_deadline(const json& task, int lease_seconds) {
  int64_t ms = int64_t(lease_seconds) * 1000;
  if (task.is_object() && task.contains("lease_expires_at") && task["lease_expires_at"].is_number()) {
    const int64_t left = task["lease_expires_at"].get<int64_t>() - unix_ms();
    ms = std::clamp<int64_t>(left, 1000, ms);
  }
  return SteadyClock::now() + milliseconds(ms);
}

// The state one task's engine thread shares with the supervising loop (kept alive by the thread
// itself, so an abandoned thread never touches freed memory).
struct EngineState {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::optional<RunnerTaskResult> result;
  std::string error;
  bool error_retryable = true;
  std::atomic<bool> cancel{false};  // TES tasks: the lease is gone (e.g. canceled): stop the executor
};

}  // namespace

std::string default_worker_id() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::snprintf(host, sizeof host, "worker");
  const std::string pid = std::to_string(::getpid());
  const std::string job = env_str("AWS_BATCH_JOB_ID");
  if (!job.empty()) {
    const std::string index = env_str("AWS_BATCH_JOB_ARRAY_INDEX");
    return "batch-" + job + (index.empty() ? "" : "-" + index) + "-" + pid;
  }
  return std::string(host) + "-" + pid;
}

json worker_capabilities() {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::string why;
  const auto gpus = list_gpu_devices(&why);
  if (!gpus.empty()) {
    return {{"gpu", gpus.front().name},
            {"gpu_memory_gb", double(gpus.front().total_memory) / double(1ull << 30)},
            {"gpu_count", gpus.size()},
            {"cpu_cores", cores}};
  }
  return {{"cpu", true}, {"cpu_cores", cores}};
}

void add_tes_capabilities(json& caps, TesRuntime runtime, const std::filesystem::path& data_dir) {
  if (runtime == TesRuntime::none) return;
  caps["tes_runtime"] = true;
  caps["tes_runtime_kind"] = to_string(runtime);
  const double gb = double(1ull << 30);
  caps["ram_gb"] = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE)) / gb;
  struct statvfs fs {};
  if (::statvfs(data_dir.c_str(), &fs) == 0) caps["disk_gb"] = double(fs.f_bavail) * double(fs.f_frsize) / gb;
}

json worker_telemetry() {
  json gpus = json::array();
  for (const GpuUtilization& g : sample_gpu_utilization())
    gpus.push_back({{"index", g.index},
                    {"name", g.name},
                    {"utilization", g.utilization},
                    {"memory_utilization", g.memory_utilization},
                    {"memory_used_bytes", g.memory_used},
                    {"memory_total_bytes", g.memory_total}});
  return {{"gpus", gpus}};
}

json aws_batch_info() {
  json j = json::object();
  const std::pair<const char*, const char*> vars[] = {{"job_id", "AWS_BATCH_JOB_ID"},
                                                      {"array_index", "AWS_BATCH_JOB_ARRAY_INDEX"},
                                                      {"attempt", "AWS_BATCH_JOB_ATTEMPT"},
                                                      {"compute_environment", "AWS_BATCH_CE_NAME"},
                                                      {"job_queue", "AWS_BATCH_JQ_NAME"}};
  for (const auto& [key, var] : vars)
    if (const std::string v = env_str(var); !v.empty()) j[key] = v;
  return j;
}

WorkerTransfer parse_worker_transfer(const std::string& s) {
  if (s == "shared") return WorkerTransfer::shared;
  if (s == "http") return WorkerTransfer::http;
  if (s == "s3") return WorkerTransfer::s3;
  throw InputError("worker: --transfer must be 'shared', 'http' or 's3', not '" + s + "'");
}

struct RemoteWorker::Impl {
  Impl(const RemoteWorkerOptions& o, HttpClientOptions h, HttpClientOptions transfer_options)
      : client(std::move(h)),
        transfer_client(std::move(transfer_options)),
        store(o.data_dir),
        runner(store, TaskRunnerOptions{o.transfer != WorkerTransfer::shared
                                            ? std::vector<std::filesystem::path>{store.root() / "inputs"}
                                        : o.allowed_roots.empty() ? std::vector<std::filesystem::path>{"/"}
                                                                  : o.allowed_roots,
                                        o.worker_id,
                                        false,
                                        {}}) {
    if (o.transfer == WorkerTransfer::http) stager = std::make_unique<TransferStager>(transfer_client, store);
    if (o.transfer == WorkerTransfer::s3) {
      if (!is_s3_url(o.objects_url))
        throw InputError("worker: --transfer s3 needs --objects s3://bucket/prefix");
      s3 = std::make_shared<S3Client>(S3Config::from_environment());
      if (o.s3_part_size > 0) s3->multipart_threshold = s3->part_size = o.s3_part_size;
      objects = std::make_unique<S3ObjectBackend>(s3, parse_s3_url(o.objects_url, "--objects"));
      stager = std::make_unique<TransferStager>(transfer_client, store, objects.get(), s3.get());
    }
    if (o.task_runtime != TesRuntime::none) {
      TesExecutorOptions to;
      to.runtime = o.task_runtime;
      to.allow_roots = o.allowed_roots.empty() ? std::vector<std::filesystem::path>{"/"} : o.allowed_roots;
      to.work_dir = store.root() / "tes";
      to.http_input_allow = o.tes_http_allow;
      tes = std::make_unique<TesExecutor>(store, to);
    }
  }
  HttpClient client;           // lease, heartbeat, complete, fail
  HttpClient transfer_client;  // http transfer mode: downloads and uploads (from the engine thread)
  ObjectStore store;
  TaskRunner runner;
  std::shared_ptr<S3Client> s3;            // s3 transfer mode: s3:// inputs
  std::unique_ptr<ObjectBackend> objects;  // s3 transfer mode: the fleet's object store
  std::unique_ptr<TransferStager> stager;  // http and s3 transfer modes
  std::unique_ptr<TesExecutor> tes;        // --task-runtime: runs GA4GH TES tasks
  json capabilities;
  json batch;
};

RemoteWorker::RemoteWorker(RemoteWorkerOptions options) : options_(std::move(options)) {
  if (options_.worker_id.empty()) options_.worker_id = default_worker_id();
  if (options_.data_dir.empty()) throw InputError("worker: --data-dir (or OMICSD_DATA_DIR) is required");
  if (options_.lease_seconds < 3) throw InputError("worker: --lease-seconds must be at least 3");
  // S3's own limits: a part below 5 MiB (but the last) fails only when the upload completes.
  if (options_.s3_part_size != 0 &&
      (options_.s3_part_size < (uint64_t(5) << 20) || options_.s3_part_size > (uint64_t(5) << 30)))
    throw InputError("worker: --s3-part-size must be 5 MiB (5242880) .. 5 GiB (5368709120) bytes, not " +
                     std::to_string(options_.s3_part_size));
  HttpClientOptions h;
  h.base_url = options_.server;
  h.token = options_.token;
  h.ca_file = options_.ca_file;
  h.max_attempts = 4;
  h.request_timeout = milliseconds(std::max(5, options_.lease_seconds / 3) * 1000);
  // Transfers: the timeout is per chunk (and for the answer to a PUT, which the daemon sends once
  // the object is fsynced and in place).
  HttpClientOptions t = h;
  t.request_timeout = milliseconds(120'000);
  if (options_.transfer != WorkerTransfer::shared && !options_.allowed_roots.empty())
    spdlog::warn("worker: --allow-root is ignored with --transfer http or s3 (inputs are downloaded)");
  try {
    impl_ = new Impl(options_, std::move(h), std::move(t));
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(std::string("worker: ") + e.what());  // e.g. the data dir cannot be created
  }
  impl_->capabilities = worker_capabilities();
  add_tes_capabilities(impl_->capabilities, options_.task_runtime, options_.data_dir);
  impl_->batch = aws_batch_info();
}

RemoteWorker::~RemoteWorker() {
  if (!abandoned_) delete impl_;  // an abandoned engine thread may still use the runner
}

int RemoteWorker::run() {
  spdlog::info(
      "worker {}: serving {} ({} {}, lease {} s, capabilities {}{})", options_.worker_id, options_.server,
      options_.transfer == WorkerTransfer::http ? "transfer http, local data dir"
      : options_.transfer == WorkerTransfer::s3 ? "transfer s3 (" + options_.objects_url + "), local data dir"
                                                : std::string("shared data dir"),
      options_.data_dir.string(), options_.lease_seconds, impl_->capabilities.dump(),
      impl_->batch.empty() ? "" : ", AWS Batch " + impl_->batch.dump());
  const json lease_request = {{"worker_id", options_.worker_id},
                              {"capabilities", impl_->capabilities},
                              {"lease_seconds", options_.lease_seconds}};
  milliseconds idle = milliseconds(100);
  std::optional<SteadyClock::time_point> unreachable_since;
  while (!stopping()) {
    json lease;
    int status = 0;
    try {
      // Not idempotent: a retried lease after a lost answer would take a second task (the first one's
      // lease simply expires); connection failures before sending are still retried by the client.
      lease = impl_->client.post_json("/v1/tasks/lease", lease_request, false, {}, &status);
      unreachable_since.reset();
    } catch (const HttpClientError& e) {
      if (e.status() == 400 || e.status() == 401 || e.status() == 403 || e.status() == 404)
        throw InputError("worker " + options_.worker_id +
                         ": the server refused the lease request: " + e.what());
      if (!unreachable_since) unreachable_since = SteadyClock::now();
      const double down = std::chrono::duration<double>(SteadyClock::now() - *unreachable_since).count();
      if (down >= options_.unreachable_seconds) {
        spdlog::error("worker {}: server unreachable for {:.0f} s, giving up: {}", options_.worker_id, down,
                      e.what());
        return kWorkerExitUnreachable;
      }
      spdlog::warn("worker {}: lease failed ({}); retrying", options_.worker_id, e.what());
      sleep_unless_stopped(options_.idle_backoff_max, options_.stop);
      continue;
    }
    if (status == 204 || !lease.is_object() || !lease.contains("task") || !lease["task"].is_object()) {
      if (options_.once) {
        spdlog::info("worker {}: queue empty, exiting (--once)", options_.worker_id);
        return kWorkerExitOk;
      }
      sleep_unless_stopped(idle, options_.stop);
      idle = std::min(options_.idle_backoff_max, idle * 2);
      continue;
    }
    idle = milliseconds(100);
    process(lease);
    if (abandoned_) break;
    // A sticky CUDA error: this process finished its task on the CPU but must not take more GPU work.
    if (const auto faults = gpu_failures(); !faults.empty()) {
      spdlog::error("worker {}: {}; exiting with {} so the scheduler retries on a healthy host",
                    options_.worker_id, faults.front(), kWorkerExitGpuFault);
      return kWorkerExitGpuFault;
    }
    if (options_.once) break;
  }
  spdlog::info("worker {}: exiting ({} tasks completed, {} failed){}", options_.worker_id, completed_,
               failed_, stopping() ? " after drain" : "");
  return kWorkerExitOk;
}

void RemoteWorker::process(const json& lease) {
  const json& task = lease["task"];
  const json run = lease.contains("run") && lease["run"].is_object() ? lease["run"] : json::object();
  const std::string id = task.value("id", std::string());
  const std::string token = task.value("lease_token", std::string());
  const std::string path = "/v1/tasks/" + url_encode_segment(id);
  const std::string label = task.value("name", task.value("kind", std::string("task"))) + " " + id +
                            (run.contains("id") ? " (run " + run.value("id", std::string()) + ")" : "");

  // Reports with retries until the server answers; false when the lease is gone (409/404/410).
  auto report = [&](const std::string& what, const json& body) {
    std::optional<SteadyClock::time_point> since;
    for (;;) {
      try {
        impl_->client.post_json(path + "/" + what, body, true);  // idempotent by contract
        return true;
      } catch (const HttpClientError& e) {
        if (e.status() == 409 || e.status() == 404 || e.status() == 410) {
          spdlog::warn("worker {}: {} {}: lease no longer held ({})", options_.worker_id, what, label,
                       e.what());
          return false;
        }
        if (!e.connection_error() && e.status() < 500) {
          spdlog::error("worker {}: {} {} rejected: {}", options_.worker_id, what, label, e.what());
          return false;
        }
        if (!since) since = SteadyClock::now();
        if (SteadyClock::now() - *since > std::chrono::duration<double>(options_.unreachable_seconds)) {
          spdlog::error("worker {}: cannot report {} for {}: {}", options_.worker_id, what, label, e.what());
          return false;  // the lease expires and the task is re-queued (outputs are in the shared store)
        }
        std::this_thread::sleep_for(options_.idle_backoff_max);
      }
    }
  };

  if (id.empty() || token.empty()) {
    spdlog::error("worker {}: malformed lease answer (no task id or lease_token): {}", options_.worker_id,
                  task.dump());
    return;
  }

  RunnerTaskSpec spec;
  spec.kind = task.value("kind", std::string());
  spec.inputs = task.contains("inputs") && task["inputs"].is_object() ? task["inputs"] : json::object();
  spec.parameters =
      task.contains("parameters") && task["parameters"].is_object() ? task["parameters"] : json::object();
  if (options_.threads > 0) spec.parameters["threads"] = options_.threads;
  spec.sample = task.contains("sample") && task["sample"].is_string() ? task["sample"].get<std::string>()
                                                                      : run.value("sample", std::string());
  spec.use_cache = run.value("cache", true) && task.value("cache", true);

  spdlog::info("worker {}: running {} ({})", options_.worker_id, label, spec.kind);
  auto state = std::make_shared<EngineState>();
  TaskRunner* runner = &impl_->runner;
  TransferStager* stager = impl_->stager.get();  // http transfer mode: inputs and outputs move over HTTP
  TesExecutor* tes = impl_->tes.get();
  std::thread engine([state, runner, stager, tes, spec, id, token] {
    std::optional<RunnerTaskResult> result;
    std::string error;
    bool retry = true;
    try {
      if (spec.kind == "tes") {
        if (!tes) throw InputError("this worker has no TES runtime (--task-runtime)");
        const auto start = SteadyClock::now();
        TesRunResult r = tes->run(spec.inputs.value("tes", json::object()), id, state->cancel);
        if (stager) stager->upload(r.objects);  // the daemon's store gets the log and the outputs
        RunnerTaskResult out;
        out.kind = "tes";
        out.outputs = std::move(r.objects);
        out.provenance = {{"tes", {{"state", r.log.value("state", std::string())}}}};
        out.seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
        result = std::move(out);
      } else if (stager) {
        RunnerTaskSpec local = spec;
        TransferStager::Staged staged = stager->stage(id, token, spec.inputs, spec.parameters);
        local.inputs = staged.inputs;
        local.parameters = staged.parameters;
        for (const auto& [path, digest] : staged.digests) runner->remember_digest(path, digest);
        result = runner->run(local);
        TransferStager::restore_uris(result->provenance, staged.origin);
        stager->upload(result->outputs, &staged);
      } else {
        result = runner->run(spec);
      }
    } catch (const std::exception& e) {
      error = e.what();
      retry = retryable(e);
    } catch (...) {
      error = "unknown exception";
    }
    std::lock_guard lock(state->mu);
    state->result = std::move(result);
    state->error = error.empty() && !state->result ? "task produced no result" : error;
    state->error_retryable = retry;
    state->done = true;
    state->cv.notify_all();
  });

  const auto heartbeat_every = milliseconds(std::max(1000, options_.lease_seconds * 1000 / 3));
  auto deadline = lease_deadline(task, options_.lease_seconds);
  auto next_heartbeat = SteadyClock::now() + heartbeat_every;
  bool lease_lost = false, draining = false;
  SteadyClock::time_point drain_deadline{};
  for (;;) {
    {
      std::unique_lock lock(state->mu);
      state->cv.wait_for(lock, milliseconds(100), [&] { return state->done; });
      if (state->done) break;
    }
    const auto now = SteadyClock::now();
    if (stopping() && !draining) {
      draining = true;
      // Finish only if the task completes within the lease we hold (no more heartbeats), keeping a
      // margin to report; otherwise hand it back.
      const auto margin = std::min(milliseconds(5000), milliseconds(options_.lease_seconds * 1000 / 10));
      drain_deadline = deadline - margin;
      spdlog::info("worker {}: draining: waiting up to {:.1f} s for {}", options_.worker_id,
                   std::chrono::duration<double>(drain_deadline - now).count(), label);
    }
    if (draining && (lease_lost || now >= drain_deadline)) {
      // A TES executor is stopped before the task is handed back: its container would otherwise
      // outlive this process (only the runtime's client dies with it). A pipeline task is left to
      // the process exit, as before.
      if (spec.kind == "tes") {
        state->cancel = true;
        std::unique_lock lock(state->mu);
        state->cv.wait_for(lock, milliseconds(15'000), [&] { return state->done; });
      }
      engine.detach();
      abandoned_ = true;
      if (!lease_lost) {
        report("fail", {{"lease_token", token}, {"error", "worker draining"}, {"retryable", true}});
        ++failed_;
      }
      spdlog::warn("worker {}: handed back {} (worker draining)", options_.worker_id, label);
      return;
    }
    if (!draining && !lease_lost && now >= next_heartbeat) {
      try {
        const json t = impl_->client.post_json(
            path + "/heartbeat", {{"lease_token", token}, {"telemetry", worker_telemetry()}}, true);
        deadline =
            lease_deadline(t.is_object() && t.contains("task") ? t["task"] : t, options_.lease_seconds);
        next_heartbeat = now + heartbeat_every;
      } catch (const HttpClientError& e) {
        if (e.status() == 409 || e.status() == 404 || e.status() == 410) {
          lease_lost = true;
          state->cancel = true;  // a TES executor is killed; the pipeline's engine runs to its end
          spdlog::warn("worker {}: lease on {} is gone ({}); its result will be discarded",
                       options_.worker_id, label, e.what());
        } else {
          spdlog::warn("worker {}: heartbeat for {} failed: {}", options_.worker_id, label, e.what());
          next_heartbeat = now + heartbeat_every / 3;
        }
      }
    }
  }
  engine.join();

  if (lease_lost) return;
  if (state->result) {
    const RunnerTaskResult& r = *state->result;
    json outputs = json::object();
    for (const auto& [name, ref] : r.outputs) outputs[name] = {{"digest", ref.digest}, {"size", ref.size}};
    json provenance = r.provenance.is_object() ? r.provenance : json::object();
    provenance["worker_id"] = options_.worker_id;
    provenance["worker"] = {{"id", options_.worker_id},
                            {"capabilities", impl_->capabilities},
                            {"engine_version", kVersion},
                            {"git_hash", kGitHash}};
    if (!impl_->batch.empty()) provenance["aws_batch"] = impl_->batch;
    provenance["cache_hit"] = r.cache_hit;
    provenance["cache_key"] = r.cache_key;
    provenance["task_seconds"] = r.seconds;
    // A GPU that failed during the task: the results came from the CPU backend (identical); say so.
    if (const auto faults = gpu_failures(); !faults.empty()) provenance["gpu_faults"] = faults;
    if (report("complete", {{"lease_token", token}, {"outputs", outputs}, {"provenance", provenance}})) {
      ++completed_;
      spdlog::info("worker {}: completed {} in {:.1f} s{}", options_.worker_id, label, r.seconds,
                   r.cache_hit ? " (cache hit)" : "");
    }
  } else {
    spdlog::error("worker {}: {} failed ({}): {}", options_.worker_id, label,
                  state->error_retryable ? "retryable" : "permanent", state->error);
    if (report("fail",
               {{"lease_token", token}, {"error", state->error}, {"retryable", state->error_retryable}}))
      ++failed_;
  }
}

}  // namespace omicsd
