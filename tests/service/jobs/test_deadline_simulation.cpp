// Issue 19's simulation, on SQLite and PostgreSQL: 200 germline runs (align -> call -> qc, synthetic tasks
// of fixed length) in three capped groups with mixed priorities and deadlines, leased and completed by 8
// simulated workers through two stores on one database (two daemons), on a simulated clock that the
// store is handed (100 ms ticks); each tick one of the daemons sweeps for runs at risk of missing their
// deadline. Planted: runs whose deadline is shorter than their own work (they must miss, and be flagged
// first), and urgent runs submitted last. Checked from what the database recorded (leases, tasks, runs,
// webhooks):
//   - no group ever held more tasks, GPUs, CPU threads or runs in progress than its caps;
//   - every run whose deadline was feasible finished by it;
//   - the urgent runs started before every run of their group that was still waiting when they came;
//   - every run that missed its deadline was flagged at risk (once, by one daemon) strictly before the
//     deadline, with one run.at_risk event when it has a callback URL and none when it has not.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "service/db/sql_db.hpp"
#include "service/jobs/job_store.hpp"
#include "tests/support/test_support.hpp"

using nlohmann::json;
using namespace omicsd;

namespace {

constexpr int64_t T0 = 1'700'000'000'000;  // unix ms
constexpr int64_t kTick = 100;
const std::map<std::string, int64_t> kStageMs = {{"align", 800}, {"call", 500}, {"qc", 200}};
constexpr int64_t kRunWork = 1500;  // the chain's length
constexpr int kWorkers = 8;

// One run the simulation will submit.
struct Planned {
  int64_t arrival = 0;  // ms after T0
  std::string group;
  int64_t priority = 0;
  std::optional<int64_t> deadline;  // ms after T0
  bool feasible = true;             // false: the deadline is shorter than the run's own work
  bool urgent = false;
  bool callback = false;
  std::string id;  // once submitted
};

struct DeadlineSimulationTest : ::testing::TestWithParam<test::StoreBackend> {
  test::TempDir dir;
  std::unique_ptr<test::PostgresDatabase> pg;
  std::string url;

  void SetUp() override {
    url = test::store_database_url(GetParam(), dir.path / "jobs.db", pg);
    if (url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
  }
  std::unique_ptr<sql::Db> raw() {
    return GetParam() == test::StoreBackend::Postgres ? sql::open_postgres_db(url, "test")
                                                      : sql::open_sqlite_db(url.substr(7), "test");
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, DeadlineSimulationTest, test::store_backends(), test::StoreBackendName{});

// The groups: "clinical" 3 runs and 3 tasks at once; "research" 2 tasks; "gpu" (tasks of 1 GPU and 2
// CPU threads) 2 GPUs and 6 CPU threads.
std::vector<RunGroup> groups() {
  RunGroup clinical, research, gpu;
  clinical.name = "clinical";
  clinical.max_runs = 3;
  clinical.max_tasks = 3;
  research.name = "research";
  research.max_tasks = 2;
  gpu.name = "gpu";
  gpu.max_gpus = 2;
  gpu.max_cpu_threads = 6;
  return {clinical, research, gpu};
}

std::vector<Planned> plan() {
  std::mt19937 rng(19);
  auto uniform = [&](int64_t lo, int64_t hi) { return lo + int64_t(rng() % uint64_t(hi - lo + 1)); };
  const std::vector<std::string> names = {"clinical", "research", "gpu"};
  std::vector<Planned> out;
  // 178 ordinary runs arriving over the first 8 s: 40% with a feasible deadline 25-60 s after arrival.
  for (int i = 0; i < 178; ++i) {
    Planned p;
    p.arrival = uniform(0, 8000);
    p.group = names[i % 3];
    p.priority = uniform(-50, 50);
    if (uniform(0, 9) < 4) p.deadline = p.arrival + uniform(25'000, 60'000);
    p.callback = p.deadline && i % 2 == 0;
    out.push_back(p);
  }
  // 12 planted misses, once every stage has been measured: deadlines 300-1400 ms after arrival.
  for (int i = 0; i < 12; ++i) {
    Planned p;
    p.arrival = uniform(2500, 4000);
    p.group = names[i % 3];
    p.priority = uniform(-50, 50);
    p.deadline = p.arrival + uniform(300, kRunWork - 100);
    p.feasible = false;
    p.callback = i % 2 == 0;
    out.push_back(p);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Planned& a, const Planned& b) { return a.arrival < b.arrival; });
  // 10 urgent runs last: top priority and a deadline 15 s out, earlier than any other still waiting.
  for (int i = 0; i < 10; ++i) {
    Planned p;
    p.arrival = 8500;
    p.group = names[i % 3];
    p.priority = kMaxRunPriority;
    p.deadline = p.arrival + 15'000;
    p.urgent = true;
    p.callback = true;
    out.push_back(p);
  }
  return out;
}

NewRun new_run(const Planned& p) {
  NewRun r;
  r.workflow = "germline";
  r.group = p.group;
  r.priority = p.priority;
  if (p.deadline) r.deadline = T0 + *p.deadline;
  if (p.callback) r.callback_url = "http://127.0.0.1:9/hooks";
  const char* prev = nullptr;
  for (const char* name : {"align", "call", "qc"}) {
    TaskSpec t;
    t.name = name;
    t.kind = name;
    if (prev) t.depends_on = {prev};
    if (p.group == "gpu") {
      t.requirements = {{"gpu_count", 1}};
      t.parameters = {{"threads", 2}};
    }
    r.tasks.push_back(t);
    prev = name;
  }
  return r;
}

TEST_P(DeadlineSimulationTest, CapsDeadlinesUrgencyAndAtRiskEvents) {
  std::vector<std::unique_ptr<JobStore>> daemons;
  daemons.push_back(open_job_store(url));
  daemons.push_back(open_job_store(url));
  for (const RunGroup& g : groups()) daemons[0]->put_run_group(g, T0);
  std::vector<Planned> runs = plan();
  ASSERT_EQ(runs.size(), 200u);

  struct Busy {
    LeasedTask lease;
    int64_t done_at = 0;
  };
  std::vector<std::optional<Busy>> workers(kWorkers);
  std::map<std::string, int> flagged;       // run id -> times returned by a sweep (either daemon)
  std::map<std::string, int64_t> started;   // run id -> first lease, as the simulation saw it
  std::set<std::string> waiting_at_urgent;  // runs submitted and not started when the urgent ones came
  size_t next = 0, completed = 0;
  int64_t t = 0;
  for (; completed < runs.size() * 3; t += kTick) {
    ASSERT_LT(t, 600'000) << "the simulation did not finish";
    const int64_t now = T0 + t;
    // Workers finish what is due (at the exact time it is due: the measured durations are exact).
    for (int w = 0; w < kWorkers; ++w)
      if (workers[w] && workers[w]->done_at <= now) {
        daemons[w % 2]->complete_task(workers[w]->lease.task.id, workers[w]->lease.task.lease_token,
                                      json::object(), workers[w]->done_at);
        workers[w].reset();
        ++completed;
      }
    // Arrivals.
    if (next < runs.size() && runs[next].urgent && runs[next].arrival <= t)
      for (size_t i = 0; i < next; ++i)
        if (!started.count(runs[i].id)) {
          waiting_at_urgent.insert(runs[i].id);
          // The precondition of "urgent runs start first": nothing waiting has an earlier deadline.
          ASSERT_TRUE(!runs[i].deadline || *runs[i].deadline > 8500 + 15'000) << "run " << i;
        }
    for (; next < runs.size() && runs[next].arrival <= t; ++next)
      runs[next].id = daemons[next % 2]->create_run(new_run(runs[next]), now).run.id;
    // One daemon sweeps (they take turns).
    for (const AtRiskRun& a : daemons[(t / kTick) % 2]->flag_at_risk_runs(now)) ++flagged[a.run_id];
    // Idle workers lease.
    for (int w = 0; w < kWorkers; ++w) {
      if (workers[w]) continue;
      auto l = daemons[w % 2]->lease_task("w" + std::to_string(w), json{{"gpu_count", 1}}, 3600, now);
      if (!l) break;
      started.emplace(l->run.id, now);
      workers[w] = Busy{*l, now + kStageMs.at(l->task.name)};
    }
  }
  // Both stores together well under a minute: about 50 s of simulated time.
  EXPECT_LT(t, 120'000);
  JobStore& store = *daemons[0];
  auto db = raw();

  // 1. Caps, from the lease history: at each lease, what its group held (leases overlapping it).
  struct Lease {
    std::string group, run;
    int64_t from, to, gpus, threads;
  };
  std::vector<Lease> leases;
  for (const sql::Row& r : db->query(
           "SELECT t.group_name, t.run_id, l.leased_at, l.outcome_at, t.gpus, t.cpu_threads, l.outcome FROM "
           "leases l JOIN tasks t ON t.id = l.task_id")) {
    ASSERT_EQ(r.s(6), "COMPLETE");
    leases.push_back({r.s(0), r.s(1), r.i(2), r.i(3), r.i(4), r.i(5)});
  }
  ASSERT_EQ(leases.size(), runs.size() * 3);
  std::map<std::string, std::pair<int64_t, int64_t>> run_span;  // run -> [first lease, last completion)
  for (const Lease& l : leases) {
    auto [it, fresh] = run_span.emplace(l.run, std::make_pair(l.from, l.to));
    if (!fresh) it->second = {std::min(it->second.first, l.from), std::max(it->second.second, l.to)};
  }
  std::map<std::string, std::string> run_group;
  for (const Lease& l : leases) run_group[l.run] = l.group;
  std::map<std::string, RunGroup> caps;
  for (const RunGroup& g : groups()) caps[g.name] = g;
  std::map<std::string, int64_t> peak_tasks;
  for (const Lease& l : leases) {
    int64_t tasks = 0, gpus = 0, threads = 0, in_progress = 0;
    for (const Lease& o : leases)
      if (o.group == l.group && o.from <= l.from && l.from < o.to) {
        ++tasks;
        gpus += o.gpus;
        threads += o.threads;
      }
    for (const auto& [run, span] : run_span)
      if (run_group.at(run) == l.group && span.first <= l.from && l.from < span.second) ++in_progress;
    const RunGroup& g = caps.at(l.group);
    auto within = [&](const char* cap, int64_t held, const std::optional<int64_t>& limit) {
      EXPECT_TRUE(!limit || held <= *limit) << l.group << " held " << held << " " << cap << " (cap " << *limit
                                            << ") at " << l.from - T0 << " ms";
    };
    within("tasks", tasks, g.max_tasks);
    within("GPUs", gpus, g.max_gpus);
    within("CPU threads", threads, g.max_cpu_threads);
    within("runs in progress", in_progress, g.max_runs);
    peak_tasks[l.group] = std::max(peak_tasks[l.group], tasks);
  }
  // The caps were reached (the test is not vacuous): 3 clinical, 2 research, 2 gpu tasks at once.
  EXPECT_EQ(peak_tasks["clinical"], 3);
  EXPECT_EQ(peak_tasks["research"], 2);
  EXPECT_EQ(peak_tasks["gpu"], 2);

  // 2. Deadlines and 4. the at-risk events.
  int misses = 0, feasible_deadlines = 0;
  for (const Planned& p : runs) {
    const auto run = store.get_run(p.id);
    ASSERT_TRUE(run);
    ASSERT_EQ(run->state, RunState::Complete) << p.id;
    const int64_t finished = run_span.at(p.id).second;
    EXPECT_EQ(run->started_at, run_span.at(p.id).first);
    std::vector<WebhookDelivery> at_risk;
    for (const WebhookDelivery& w : store.list_webhooks(p.id))
      if (w.event == "run.at_risk") at_risk.push_back(w);
    if (!p.deadline) {
      EXPECT_FALSE(run->at_risk_at);
      continue;
    }
    const int64_t deadline = T0 + *p.deadline;
    if (p.feasible) {
      ++feasible_deadlines;
      EXPECT_LE(finished, deadline) << p.id << (p.urgent ? " (urgent)" : "") << " missed a feasible deadline";
    }
    EXPECT_EQ(flagged[p.id], run->at_risk_at ? 1 : 0) << p.id;
    if (finished > deadline) {
      ++misses;
      ASSERT_TRUE(run->at_risk_at) << p.id << " missed its deadline without being flagged";
      EXPECT_LT(*run->at_risk_at, deadline) << p.id;
    }
    if (run->at_risk_at && p.callback) {
      ASSERT_EQ(at_risk.size(), 1u) << p.id;
      EXPECT_EQ(at_risk[0].created_at, *run->at_risk_at);
      EXPECT_EQ(at_risk[0].detail["deadline"], deadline);
      EXPECT_GT(at_risk[0].detail["estimated_finish_at"].get<int64_t>(), deadline);
    } else {
      EXPECT_TRUE(at_risk.empty()) << p.id;
    }
  }
  EXPECT_EQ(misses, 12);  // exactly the planted ones
  EXPECT_GT(feasible_deadlines, 60);

  // 3. Urgent runs, submitted last, started before every run of their group still waiting then.
  ASSERT_GT(waiting_at_urgent.size(), 50u);  // a deep queue
  for (const Planned& u : runs) {
    if (!u.urgent) continue;
    for (const Planned& p : runs)
      if (p.group == u.group && waiting_at_urgent.count(p.id)) {
        EXPECT_LE(run_span.at(u.id).first, run_span.at(p.id).first) << "urgent " << u.id << " after " << p.id;
      }
  }
  // The stages were measured exactly, as the run JSON reports them.
  for (const auto& [name, ms] : kStageMs) EXPECT_EQ(store.stage_estimates("germline")[name].duration_ms, ms);
}

}  // namespace
