#pragma once
// Completing a task, written once for both kinds of worker: the in-process workers (inproc_worker.cpp)
// and remote workers through POST /v1/tasks/{id}/complete (run_routes.cpp). Both record the task's
// provenance in its run, complete it in the JobStore, start the variant ingest of a germline run it
// finished, and count it in the metrics; only outputs this process computed enter the call cache.
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "service/jobs/job_store.hpp"

namespace omicsd {

class Metrics;

// A task whose outputs are stored, as its worker reports it.
struct FinishedTask {
  std::string task_id;
  std::string lease_token;
  std::string run_id;
  std::string task_name;
  std::string kind;
  nlohmann::json outputs = nlohmann::json::object();  // name -> {"digest","size"}, objects stored
  // The task's provenance, merged into its run's; "cache_hit" and "task_seconds" (or "seconds")
  // feed the metrics.
  nlohmann::json provenance = nlohmann::json::object();
  // Set only when this process computed the outputs under a key it derived from the inputs: they go
  // into the JobStore's call cache (with cache_provenance). A remote worker's word never does: a
  // key the daemon cannot recompute would let one worker choose the outputs of any future task.
  std::string trusted_cache_key;
  nlohmann::json cache_provenance = nlohmann::json::object();

  // The identity of `task` (id, run, name, kind) with the lease token the worker presents.
  static FinishedTask of(const Task& task, const std::string& lease_token);
};

struct TaskCompletionHooks {
  std::shared_ptr<Metrics> metrics;  // may be null
  // Called with the run id when this completion made the run COMPLETE (the variant ingest).
  std::function<void(const std::string& run_id)> on_run_complete;
};

// In order: when `lease_is_current` (the token is the task's running lease) the call cache entry and
// the run's provenance; then JobStore::complete_task (idempotent: a repeat returns duplicate = true;
// a stale token throws LeaseError); on_run_complete when the run became COMPLETE now; and, for a
// current, non-duplicate completion, omicsd_cache_hits_total, omicsd_task_duration_seconds and
// omicsd_tasks_completed_total.
TaskResult complete_finished_task(JobStore& store, const FinishedTask& task, bool lease_is_current,
                                  const TaskCompletionHooks& hooks);

// Provenance patch for a finished task: {"tasks": {name: prov}, "workers": {name: id},
// "input_digests": ..., "reference": ..., "engine", "backend", "device"} (JSON merge patch).
nlohmann::json task_provenance_patch(const std::string& task_name, const nlohmann::json& task_prov);

}  // namespace omicsd
