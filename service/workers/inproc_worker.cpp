#include "service/workers/inproc_worker.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "host/common/error.hpp"
#include "service/jobs/job_store.hpp"
#include "service/jobs/workflow.hpp"
#include "service/util/clock.hpp"
#include "service/util/metrics.hpp"
#include "service/workers/task_completion.hpp"

namespace omicsd {
namespace {
using json = nlohmann::json;
}

InprocWorker::InprocWorker(JobStore& store, TaskExecutor executor, InprocWorkerOptions options,
                           std::shared_ptr<Metrics> metrics)
    : store_(store), exec_(std::move(executor)), opt_(std::move(options)), metrics_(std::move(metrics)) {}

InprocWorker::~InprocWorker() { stop(); }

void InprocWorker::start() {
  thread_ = std::thread([this] { loop(); });
}

void InprocWorker::request_stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void InprocWorker::join() {
  if (thread_.joinable()) thread_.join();
}

void InprocWorker::loop() {
  while (!stop_) {
    bool worked = false;
    try {
      busy_ = true;
      auto leased = store_.lease_task(opt_.worker_id, opt_.capabilities, opt_.lease_seconds, now_ms());
      if (leased) {
        worked = true;
        // run_one handles the task; the leased copy is passed through a member-free lambda.
        Task& task = leased->task;
        Run& run = leased->run;
        const auto t0 = std::chrono::steady_clock::now();
        std::atomic<bool> lost{false};
        std::atomic<bool> cancel{false};  // tells a running TES executor to stop
        std::mutex hb_mu;
        std::condition_variable hb_cv;
        bool hb_done = false;
        std::thread hb([&] {
          const auto period =
              std::chrono::milliseconds(std::max<int64_t>(1000, opt_.lease_seconds * 1000 / 3));
          std::unique_lock lk(hb_mu);
          while (!hb_cv.wait_for(lk, period, [&] { return hb_done; })) {
            try {
              store_.heartbeat(task.id, task.lease_token, opt_.lease_seconds, now_ms());
            } catch (const LeaseError& e) {
              spdlog::warn("{}: lost the lease of {}: {}", opt_.worker_id, task.id, e.what());
              lost = true;
              cancel = true;  // a TES executor is killed; a pipeline task runs to its end
              return;
            } catch (const std::exception& e) {
              spdlog::warn("{}: heartbeat of {} failed: {}", opt_.worker_id, task.id, e.what());
            }
          }
        });
        auto stop_hb = [&] {
          {
            std::lock_guard lk(hb_mu);
            hb_done = true;
          }
          hb_cv.notify_all();
          if (hb.joinable()) hb.join();
        };
        try {
          ExecRequest req;
          req.kind = task.kind;
          req.sample = run_sample(run);
          req.parameters = task.parameters.is_object() ? task.parameters : json::object();
          req.use_cache = run_cache_enabled(run);
          req.task_id = task.id;
          req.cancel = &cancel;
          ExecResult res;
          bool done = false;  // answered from the JobStore's call cache
          try {
            req.inputs = task_inputs(run, task);
            if (req.use_cache) {
              const std::string key = exec_.cache_key(req);  // "" for kinds without a call cache (tes)
              if (auto hit = key.empty() ? std::nullopt : store_.get_cache(key)) {
                if (hit->is_object() && hit->contains("outputs") && exec_.have_outputs((*hit)["outputs"])) {
                  res.cache_key = key;
                  res.cache_hit = true;
                  res.outputs = (*hit)["outputs"];
                  res.provenance = hit->value("provenance", json::object());
                  done = true;
                }
              }
            }
            if (!done) res = exec_.run(req);
          } catch (const std::exception& e) {
            stop_hb();
            const bool retry = exec_.retryable(e);
            spdlog::warn("{}: task {} failed ({}): {}", opt_.worker_id, task.id,
                         retry ? "retryable" : "permanent", e.what());
            if (!lost) store_.fail_task(task.id, task.lease_token, e.what(), retry, now_ms());
            continue;
          }
          const bool from_db = done;
          stop_hb();
          const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          json prov = res.provenance.is_object() ? res.provenance : json::object();
          prov["cache_hit"] = res.cache_hit;
          prov["cache_key"] = res.cache_key;
          prov["worker_id"] = opt_.worker_id;
          prov["task_seconds"] = secs;
          prov["leased_at"] = task.started_at.value_or(0);
          if (lost) {
            spdlog::warn("{}: dropping the result of {} (lease lost)", opt_.worker_id, task.id);
            continue;
          }
          FinishedTask finished = FinishedTask::of(task, task.lease_token);
          finished.outputs = res.outputs;
          finished.provenance = std::move(prov);
          if (!from_db) {  // computed here: the key is this process's own
            finished.trusted_cache_key = res.cache_key;
            finished.cache_provenance = res.provenance;
          }
          complete_finished_task(store_, finished, /*lease_is_current=*/true,
                                 {metrics_, opt_.on_run_complete});
          spdlog::info("{}: task {} complete in {:.2f} s{}", opt_.worker_id, task.id, secs,
                       res.cache_hit ? " (cache hit)" : "");
        } catch (const LeaseError& e) {
          stop_hb();
          spdlog::warn("{}: task {}: {}", opt_.worker_id, task.id, e.what());
        } catch (...) {
          stop_hb();
          throw;
        }
      }
    } catch (const std::exception& e) {
      spdlog::error("{}: {}", opt_.worker_id, e.what());
    }
    busy_ = false;
    if (!worked) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(opt_.poll_ms), [&] { return stop_.load(); });
    }
  }
  busy_ = false;
}

}  // namespace omicsd
