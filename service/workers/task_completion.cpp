#include "service/workers/task_completion.hpp"

#include "service/util/clock.hpp"
#include "service/util/metrics.hpp"

namespace omicsd {
namespace {
using json = nlohmann::json;

void count_completion(Metrics& metrics, const FinishedTask& t) {
  const json& prov = t.provenance;
  if (prov.value("cache_hit", false)) metrics.inc("omicsd_cache_hits_total");
  for (const char* k : {"task_seconds", "seconds"})  // in-process workers time the whole task
    if (prov.contains(k) && prov[k].is_number()) {
      metrics.observe("omicsd_task_duration_seconds", prov[k].get<double>(), {{"kind", t.kind}});
      break;
    }
  metrics.inc("omicsd_tasks_completed_total", 1, {{"kind", t.kind}});
}
}  // namespace

FinishedTask FinishedTask::of(const Task& task, const std::string& lease_token) {
  FinishedTask f;
  f.task_id = task.id;
  f.lease_token = lease_token;
  f.run_id = task.run_id;
  f.task_name = task.name;
  f.kind = task.kind;
  return f;
}

TaskResult complete_finished_task(JobStore& store, const FinishedTask& t, bool lease_is_current,
                                  const TaskCompletionHooks& hooks) {
  if (lease_is_current) {
    // Outputs before the entry that names them; the entry before the completion that may be
    // answered from it next time.
    if (!t.trusted_cache_key.empty())
      store.put_cache(t.trusted_cache_key, json{{"outputs", t.outputs}, {"provenance", t.cache_provenance}},
                      now_ms());
    store.set_run_provenance(t.run_id, task_provenance_patch(t.task_name, t.provenance), now_ms());
  }
  TaskResult res = store.complete_task(t.task_id, t.lease_token, t.outputs, now_ms());
  if (res.run_state == RunState::Complete && !res.duplicate && hooks.on_run_complete)
    hooks.on_run_complete(res.task.run_id);
  if (lease_is_current && !res.duplicate && hooks.metrics) count_completion(*hooks.metrics, t);
  // Turnaround, submission to completion, once per run: only the call that completed the run sees
  // it COMPLETE without duplicate.
  if (res.run_state == RunState::Complete && !res.duplicate && hooks.metrics)
    if (const auto run = store.get_run(res.task.run_id))
      hooks.metrics->observe("omicsd_run_turnaround_seconds",
                             double(run->updated_at - run->created_at) / 1000.0,
                             {{"workflow", run->workflow}, {"group", run->group}});
  return res;
}

json task_provenance_patch(const std::string& task_name, const json& prov) {
  json patch = json::object();
  patch["tasks"][task_name] = prov;
  if (prov.contains("worker_id")) patch["workers"][task_name] = prov["worker_id"];
  if (prov.contains("inputs") && prov["inputs"].is_object())
    for (const auto& [k, v] : prov["inputs"].items())
      if (v.is_object() && v.contains("digest")) patch["input_digests"][task_name + "." + k] = v["digest"];
  if (prov.contains("reference") && prov["reference"].is_object() && !prov["reference"].empty())
    patch["reference"] = prov["reference"];
  if (prov.contains("engine")) patch["engine"] = prov["engine"];
  if (prov.contains("backend")) patch["backend"][task_name] = prov["backend"];
  if (prov.contains("device")) patch["device"][task_name] = prov["device"];
  return patch;
}

}  // namespace omicsd
