// Completing a task (service/workers/task_completion.hpp), the one path both kinds of worker take: against a
// real SQLite job store, the run's provenance, the call cache, the run-complete hook, duplicates and
// the metrics; and the task kind registry the graph, the workflow and the TaskRunner share.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "host/common/error.hpp"
#include "service/jobs/job_store.hpp"
#include "service/jobs/task_graph.hpp"
#include "service/jobs/task_kinds.hpp"
#include "service/util/metrics.hpp"
#include "service/workers/task_completion.hpp"
#include "tests/support/test_support.hpp"

using nlohmann::json;
using namespace omicsd;

namespace {
constexpr int64_t T0 = 1'700'000'000'000;  // unix ms

struct Env {
  test::TempDir dir;
  std::unique_ptr<JobStore> store = open_sqlite_job_store((dir.path / "jobs.db").string());
  std::shared_ptr<Metrics> metrics = std::make_shared<Metrics>();
  std::vector<std::string> completed_runs;
  TaskCompletionHooks hooks{metrics, [this](const std::string& id) { completed_runs.push_back(id); }};

  // A one-task "align" run, leased: the task with its token.
  Task leased_align() {
    NewRun r;
    r.workflow = "align";
    store->create_run(r, T0);
    auto leased = store->lease_task("w1", json::object(), 60, T0 + 1);
    EXPECT_TRUE(leased.has_value());
    return leased->task;
  }
  static FinishedTask finished(const Task& t, const std::string& token, bool trusted) {
    FinishedTask f = FinishedTask::of(t, token);
    f.outputs = {{"bam", {{"digest", "sha256:" + std::string(64, 'a')}, {"size", 10}}}};
    f.provenance = {{"cache_hit", false}, {"task_seconds", 2.5}, {"worker_id", "w1"}};
    if (trusted) {
      f.trusted_cache_key = "sha256:" + std::string(64, 'b');
      f.cache_provenance = {{"task", "align"}};
    }
    return f;
  }
};
}  // namespace

TEST(TaskCompletion, InProcessCompletionWritesCacheProvenanceAndCounts) {
  Env env;
  const Task t = env.leased_align();
  const TaskResult res =
      complete_finished_task(*env.store, Env::finished(t, t.lease_token, /*trusted=*/true), true, env.hooks);
  EXPECT_EQ(res.task.state, TaskState::Complete);
  EXPECT_EQ(res.run_state, RunState::Complete);
  EXPECT_FALSE(res.duplicate);
  const auto cached = env.store->get_cache("sha256:" + std::string(64, 'b'));
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ((*cached)["outputs"]["bam"]["size"], 10);
  EXPECT_EQ((*cached)["provenance"]["task"], "align");
  const omicsd::Run run = *env.store->get_run(t.run_id);
  EXPECT_EQ(run.provenance["tasks"]["align"]["worker_id"], "w1");
  EXPECT_EQ(run.provenance["workers"]["align"], "w1");
  EXPECT_EQ(env.completed_runs, std::vector<std::string>{t.run_id});
  EXPECT_EQ(env.metrics->value("omicsd_tasks_completed_total", {{"kind", "align"}}), 1);
  EXPECT_EQ(env.metrics->value("omicsd_task_duration_seconds", {{"kind", "align"}}), 1);  // one observation
  EXPECT_EQ(env.metrics->value("omicsd_cache_hits_total"), 0);
}

// The run's turnaround, submission (T0) to the completion that ended it, is observed once with its
// workflow and group; a repeated completion adds nothing.
TEST(TaskCompletion, TheCompletionThatEndsARunObservesItsTurnaround) {
  Env env;
  const Task t = env.leased_align();
  complete_finished_task(*env.store, Env::finished(t, t.lease_token, false), true, env.hooks);
  complete_finished_task(*env.store, Env::finished(t, t.lease_token, false), false, env.hooks);
  const Metrics::Labels labels = {{"workflow", "align"}, {"group", "default"}};
  EXPECT_EQ(env.metrics->value("omicsd_run_turnaround_seconds", labels), 1);  // one observation
  const omicsd::Run run = *env.store->get_run(t.run_id);
  const std::string text = env.metrics->render();
  const std::string sum_line = "omicsd_run_turnaround_seconds_sum{group=\"default\",workflow=\"align\"} ";
  const size_t at = text.find(sum_line);
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_DOUBLE_EQ(std::stod(text.substr(at + sum_line.size())), double(run.updated_at - T0) / 1000.0);
}

TEST(TaskCompletion, AWorkersWordNeverEntersTheCallCache) {
  Env env;
  const Task t = env.leased_align();
  complete_finished_task(*env.store, Env::finished(t, t.lease_token, /*trusted=*/false), true, env.hooks);
  EXPECT_FALSE(env.store->get_cache("sha256:" + std::string(64, 'b')).has_value());
  EXPECT_EQ(env.store->get_run(t.run_id)->provenance["tasks"]["align"]["task_seconds"], 2.5);
}

TEST(TaskCompletion, ARepeatIsADuplicateThatRecordsAndCountsNothing) {
  Env env;
  const Task t = env.leased_align();
  complete_finished_task(*env.store, Env::finished(t, t.lease_token, false), true, env.hooks);
  FinishedTask again = Env::finished(t, t.lease_token, true);
  again.provenance["worker_id"] = "someone-else";
  const TaskResult res = complete_finished_task(*env.store, again, /*lease_is_current=*/false, env.hooks);
  EXPECT_TRUE(res.duplicate);
  EXPECT_EQ(env.store->get_run(t.run_id)->provenance["tasks"]["align"]["worker_id"], "w1");
  EXPECT_FALSE(env.store->get_cache(again.trusted_cache_key).has_value());
  EXPECT_EQ(env.completed_runs.size(), 1u);  // the hook ran for the first completion only
  EXPECT_EQ(env.metrics->value("omicsd_tasks_completed_total", {{"kind", "align"}}), 1);
}

TEST(TaskCompletion, AStaleTokenIsALeaseError) {
  Env env;
  const Task t = env.leased_align();
  EXPECT_THROW(complete_finished_task(*env.store, Env::finished(t, "not-the-token", false), false, env.hooks),
               LeaseError);
  EXPECT_TRUE(env.completed_runs.empty());
}

TEST(TaskKinds, OneRegistryForEveryKind) {
  std::vector<std::string> names;
  for (const TaskKindInfo& k : task_kinds()) {
    names.push_back(k.name);
    EXPECT_EQ(&task_kind(k.name), &k);
    EXPECT_EQ(find_task_kind(k.name)->id, k.id);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"align", "call", "qc", "tes"}));
  EXPECT_EQ(task_kind_names(), "align, call, qc or tes");
  EXPECT_EQ(find_task_kind("Align"), nullptr);
  try {
    task_kind("sort");
    FAIL() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "unknown task kind 'sort' (expected align, call, qc or tes)");
  }
  // The task graph refuses a kind the registry does not know, naming it.
  NewRun r;
  r.workflow = "align";
  TaskSpec bad;
  bad.name = "x";
  bad.kind = "sort";
  EXPECT_THROW(validate_new_run(r, {bad}), InputError);
  // Every task of every workflow's graph is a registered kind.
  for (const char* wf : {"germline", "align", "call"})
    for (const TaskSpec& t : default_tasks(wf)) EXPECT_NE(find_task_kind(t.kind), nullptr) << wf;
}
