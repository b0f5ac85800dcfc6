// The lease order (service/jobs/lease_order.hpp) on SQLite and PostgreSQL: deadline first (earliest),
// then priority aged by waiting time, then submission order. A simulation with a fake clock checks
// every lease against a brute-force reference of the documented rule, urgent runs submitted last
// start first, and a low-priority run is not starved by a stream of higher-priority ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "service/jobs/job_store.hpp"
#include "tests/support/test_support.hpp"

using nlohmann::json;
using namespace omicsd;

namespace {

constexpr int64_t T0 = 1'700'000'000'000;  // unix ms
constexpr int64_t kMinute = 60'000;

struct LeaseOrderTest : ::testing::TestWithParam<test::StoreBackend> {
  test::TempDir dir;
  std::unique_ptr<test::PostgresDatabase> pg;
  std::unique_ptr<JobStore> store;

  void SetUp() override {
    const std::string url = test::store_database_url(GetParam(), dir.path / "jobs.db", pg);
    if (url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
    store = open_job_store(url);
  }

  // A run of one quick task.
  omicsd::Run submit(int64_t now, int64_t priority, std::optional<int64_t> deadline = std::nullopt) {
    NewRun r;
    r.workflow = "align";
    r.priority = priority;
    r.deadline = deadline;
    TaskSpec t;
    t.name = "align";
    t.kind = "align";
    r.tasks = {t};
    return store->create_run(r, now).run;
  }
  std::string lease_run(int64_t now) {
    auto l = store->lease_task("w", json::object(), 600, now);
    return l ? l->run.id : "";
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, LeaseOrderTest, test::store_backends(), test::StoreBackendName{});

TEST_P(LeaseOrderTest, DeadlineThenPriorityThenAge) {
  const omicsd::Run old_plain = submit(T0, 0);
  const omicsd::Run high = submit(T0 + 1, 10);
  const omicsd::Run late_deadline = submit(T0 + 2, 0, T0 + 60 * kMinute);
  const omicsd::Run early_deadline = submit(T0 + 3, -100, T0 + 30 * kMinute);
  const omicsd::Run low = submit(T0 + 4, -5);
  const omicsd::Run new_plain = submit(T0 + 5, 0);
  // Priority breaks ties between equal deadlines.
  const omicsd::Run late_deadline_high = submit(T0 + 6, 3, T0 + 60 * kMinute);
  EXPECT_EQ(store->get_run(early_deadline.id)->deadline, T0 + 30 * kMinute);
  EXPECT_EQ(store->get_run(high.id)->priority, 10);
  const std::vector<std::string> expected = {early_deadline.id,
                                             late_deadline_high.id,
                                             late_deadline.id,
                                             high.id,
                                             old_plain.id,
                                             new_plain.id,
                                             low.id};
  for (const std::string& id : expected) EXPECT_EQ(lease_run(T0 + 10), id);
  EXPECT_EQ(lease_run(T0 + 10), "");
}

TEST_P(LeaseOrderTest, WaitingAMinuteCountsAsOnePriorityPoint) {
  const omicsd::Run waiting = submit(T0, 0);
  const omicsd::Run later_by_6min = submit(T0 + 6 * kMinute, 5);  // 5 points ahead, 6 minutes behind
  const omicsd::Run later_by_4min = submit(T0 + 4 * kMinute, 5);  // 5 points ahead, 4 minutes behind
  EXPECT_EQ(lease_run(T0 + 7 * kMinute), later_by_4min.id);
  EXPECT_EQ(lease_run(T0 + 7 * kMinute), waiting.id);
  EXPECT_EQ(lease_run(T0 + 7 * kMinute), later_by_6min.id);
}

TEST_P(LeaseOrderTest, ResumedRunsQueueAgainWithTheirPriority) {
  const omicsd::Run a = submit(T0, 0);
  const omicsd::Run b = submit(T0 + 1, 2);
  auto l = store->lease_task("w", json::object(), 600, T0 + 2);
  ASSERT_TRUE(l);
  ASSERT_EQ(l->run.id, b.id);
  store->fail_task(l->task.id, l->task.lease_token, "boom", /*retryable=*/false, T0 + 3);
  ASSERT_TRUE(store->resume_run(b.id, T0 + kMinute));  // queued again one minute later at priority 2
  EXPECT_EQ(lease_run(T0 + kMinute), b.id);            // T0 + 1 min - 2 min < T0
  EXPECT_EQ(lease_run(T0 + kMinute), a.id);
}

// 200 runs with mixed priorities and deadlines arrive over time on a fake clock; three simulated
// workers lease and complete them (tasks take 1-3 minutes). Every lease must be the first queued run
// in the documented order (a brute-force reference over the runs still queued).
TEST_P(LeaseOrderTest, SimulationMatchesTheReferenceOrderAndUrgentRunsSubmittedLastStartFirst) {
  std::mt19937 rng(19);
  struct Queued {
    bool has_deadline;
    int64_t deadline, queued_at, priority, index;
  };
  std::map<std::string, Queued> queued;  // the reference: runs not yet leased
  std::vector<std::string> order;        // submission order
  auto reference_first = [&] {
    // Deadline runs first, earliest deadline; then larger priority + minutes waited; then older.
    auto key = [](const Queued& q) {
      return std::make_tuple(q.has_deadline ? 0 : 1, q.has_deadline ? q.deadline : 0,
                             q.queued_at - q.priority * kMinute, q.index);
    };
    return std::min_element(queued.begin(), queued.end(),
                            [&](const auto& x, const auto& y) { return key(x.second) < key(y.second); })
        ->first;
  };
  int64_t now = T0;
  auto add = [&](int64_t priority, std::optional<int64_t> deadline) {
    const omicsd::Run r = submit(now, priority, deadline);
    queued[r.id] = {deadline.has_value(), deadline.value_or(0), now, priority, int64_t(order.size())};
    order.push_back(r.id);
    return r.id;
  };
  // A backlog of 190 runs, then 10 urgent runs (deadlines or top priority) submitted last.
  for (int i = 0; i < 190; ++i) {
    now += std::uniform_int_distribution<int64_t>(0, 2000)(rng);
    std::optional<int64_t> deadline;
    if (rng() % 5 == 0) deadline = now + std::uniform_int_distribution<int64_t>(30, 600)(rng) * kMinute;
    add(std::uniform_int_distribution<int64_t>(-3, 3)(rng), deadline);
  }
  std::vector<std::string> urgent_deadline, urgent_priority;
  for (int i = 0; i < 10; ++i) {
    now += 500;
    if (i % 2)
      urgent_priority.push_back(add(1000, std::nullopt));
    else
      urgent_deadline.push_back(add(0, now + (5 + i) * kMinute));
  }
  std::set<std::string> backlog_without_deadline;
  for (const auto& [id, q] : queued)
    if (!q.has_deadline && q.priority < 1000) backlog_without_deadline.insert(id);
  // Run the queue dry with three workers: each finishes its task and leases the next.
  struct Busy {
    int64_t until;
    std::string task_id, token;
  };
  std::vector<std::optional<Busy>> workers(3);
  std::vector<std::string> started;
  for (int step = 0;
       step < 100000 && (!queued.empty() || std::any_of(workers.begin(), workers.end(),
                                                        [](const auto& w) { return w.has_value(); }));
       ++step) {
    now += 10'000;
    for (auto& w : workers) {
      if (w && w->until <= now) {
        store->complete_task(w->task_id, w->token, json::object(), now);
        w.reset();
      }
      if (w || queued.empty()) continue;
      const std::string expected = reference_first();
      auto l = store->lease_task("w", json::object(), 3600, now);
      ASSERT_TRUE(l) << "queue of " << queued.size() << " runs, nothing leased";
      ASSERT_EQ(l->run.id, expected) << "lease " << started.size();
      queued.erase(expected);
      started.push_back(expected);
      w = Busy{now + std::uniform_int_distribution<int64_t>(1, 3)(rng) * kMinute, l->task.id,
               l->task.lease_token};
    }
  }
  ASSERT_EQ(started.size(), 200u);
  // The urgent runs were submitted last. Those with the earliest deadlines are the first five to
  // start; those of top priority start before every backlog run without a deadline.
  std::vector<std::string> first_five(started.begin(), started.begin() + 5);
  std::sort(first_five.begin(), first_five.end());
  std::sort(urgent_deadline.begin(), urgent_deadline.end());
  EXPECT_EQ(first_five, urgent_deadline);
  auto position = [&](const std::string& id) {
    return std::find(started.begin(), started.end(), id) - started.begin();
  };
  int64_t first_backlog_plain = int64_t(started.size());
  for (const std::string& id : backlog_without_deadline)
    first_backlog_plain = std::min<int64_t>(first_backlog_plain, position(id));
  for (const std::string& id : urgent_priority) EXPECT_LT(position(id), first_backlog_plain) << id;
  for (const std::string& id : started) EXPECT_EQ(store->get_run(id)->state, RunState::Complete);
}

// One worker, two higher-priority arrivals a minute, each task a minute long: the queue only grows,
// and without aging the priority-0 run would wait forever. Under the aging rule it waits at most
// while runs 10 points more urgent that arrived less than 10 minutes after it keep the worker busy.
TEST_P(LeaseOrderTest, ALowPriorityRunIsNotStarvedByAStreamOfHigherPriorityRuns) {
  const omicsd::Run low = submit(T0, 0);
  int64_t now = T0;
  std::string busy_task, token;
  int leases = 0;
  bool low_started = false;
  for (int minute = 1; minute <= 60 && !low_started; ++minute) {
    now = T0 + minute * kMinute;
    submit(now - kMinute / 2, 10);
    submit(now, 10);
    if (!busy_task.empty()) store->complete_task(busy_task, token, json::object(), now);
    auto l = store->lease_task("w", json::object(), 3600, now);
    ASSERT_TRUE(l);
    ++leases;
    busy_task = l->task.id;
    token = l->task.lease_token;
    low_started = l->run.id == low.id;
  }
  ASSERT_TRUE(low_started) << "starved for an hour";
  // 19 higher-priority runs arrived less than 10 minutes after it (urgency below T0); it comes next.
  EXPECT_EQ(leases, 20);
  EXPECT_GT(store->counts().queued_tasks, 0);  // higher-priority runs were still waiting
}

}  // namespace

namespace {

// A database of schema v3 with queued tasks (v4's to v7's columns, indexes, tables and trigger taken away
// again; v6's wider CHECK on webhooks.state stays, and its edit applies again harmlessly)
// upgrades to the current version keeping their first-come order: no deadline, priority 0, urgency =
// queued_at.
TEST(LeaseOrderMigration, QueuedTasksOfAV3DatabaseKeepTheirOrder) {
  test::TempDir dir;
  const std::string url = "sqlite:" + (dir.path / "jobs.db").string();
  std::vector<std::string> runs;
  {
    auto store = open_job_store(url);
    for (int i = 0; i < 3; ++i) {
      NewRun r;
      r.workflow = "align";
      r.priority = 0;
      TaskSpec t;
      t.name = "align";
      t.kind = "align";
      r.tasks = {t};
      runs.push_back(store->create_run(r, T0 + (2 - i) * kMinute).run.id);  // the last is the oldest
    }
  }
  std::string out;
  const std::string to_v3 =
      "DROP TABLE run_batch_items; DROP TABLE run_batches; DROP INDEX tasks_group_queue; "
      "DROP TRIGGER tasks_stage_sample; DROP TABLE stage_samples; ALTER TABLE runs DROP COLUMN at_risk_at; "
      "ALTER TABLE webhooks DROP COLUMN event; ALTER TABLE webhooks DROP COLUMN detail; "
      "DROP INDEX runs_by_group; ALTER TABLE tasks DROP COLUMN "
      "cpu_threads; "
      "ALTER TABLE tasks DROP COLUMN gpus; ALTER TABLE tasks DROP COLUMN group_name; "
      "ALTER TABLE runs DROP COLUMN started_at; ALTER TABLE runs DROP COLUMN group_name; DROP TABLE "
      "run_groups; "
      "ALTER TABLE tasks DROP COLUMN urgency; "
      "ALTER TABLE tasks DROP COLUMN deadline_rank; ALTER TABLE runs DROP COLUMN priority; "
      "ALTER TABLE runs DROP COLUMN deadline; CREATE INDEX tasks_queue ON tasks(state, queued_at, seq); "
      "DELETE FROM schema_version WHERE version >= 4;";
  ASSERT_EQ(test::run_command("sqlite3 '" + (dir.path / "jobs.db").string() + "' \"" + to_v3 + "\"", &out), 0)
      << out;
  auto store = open_job_store(url);
  EXPECT_EQ(store->schema_version(), kJobStoreSchemaVersion);
  for (size_t i = runs.size(); i-- > 0;) {
    auto l = store->lease_task("w", json::object(), 60, T0 + 10 * kMinute);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->run.id, runs[i]);
    EXPECT_EQ(l->run.priority, 0);
    EXPECT_FALSE(l->run.deadline);
    EXPECT_EQ(l->run.group, "default");  // v5: existing runs belong to the default group
  }
}

}  // namespace
