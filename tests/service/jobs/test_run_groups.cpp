// Run groups (service/jobs/run_group.hpp) on SQLite and PostgreSQL: the groups themselves, what a run
// takes from its group (name, default priority, demands within the caps), caps held by the lease when
// many workers on two stores (two daemons sharing one database) race for tasks, checked from the lease
// history the database keeps, and runs failed for running past their group's max_run_seconds.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "service/db/sql_db.hpp"
#include "service/jobs/job_store.hpp"
#include "tests/support/test_support.hpp"

using nlohmann::json;
using namespace omicsd;

namespace {

constexpr int64_t T0 = 1'700'000'000'000;  // unix ms

struct RunGroupTest : ::testing::TestWithParam<test::StoreBackend> {
  test::TempDir dir;
  std::unique_ptr<test::PostgresDatabase> pg;
  std::string url;
  std::unique_ptr<JobStore> store;

  void SetUp() override {
    url = test::store_database_url(GetParam(), dir.path / "jobs.db", pg);
    if (url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
    store = open_job_store(url);
  }
  // Another daemon on the same database.
  std::unique_ptr<JobStore> another() { return open_job_store(url); }
  // The database itself, for reading the lease history.
  std::unique_ptr<sql::Db> raw() {
    return GetParam() == test::StoreBackend::Postgres ? sql::open_postgres_db(url, "test")
                                                      : sql::open_sqlite_db(url.substr(7), "test");
  }

  static RunGroup group(const std::string& name) {
    RunGroup g;
    g.name = name;
    return g;
  }
  // A run of `n` tasks in a chain, each asking for `threads` CPU threads and `gpus` GPUs.
  omicsd::Run submit(const std::string& group_name, int n = 1, int64_t threads = 1, int64_t gpus = 0,
                     std::optional<int64_t> priority = std::nullopt, int64_t now = T0) {
    NewRun r;
    r.workflow = "align";
    r.group = group_name;
    r.priority = priority;
    for (int i = 0; i < n; ++i) {
      TaskSpec t;
      t.name = "t" + std::to_string(i);
      t.kind = "align";
      t.parameters = {{"threads", threads}};
      if (gpus > 0) t.requirements = {{"gpu_count", gpus}};
      if (i > 0) t.depends_on = {"t" + std::to_string(i - 1)};
      r.tasks.push_back(t);
    }
    return store->create_run(r, now).run;
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, RunGroupTest, test::store_backends(), test::StoreBackendName{});

TEST_P(RunGroupTest, GroupsAreCreatedReplacedListedAndDeleted) {
  // The default group comes with the schema, without caps.
  auto def = store->get_run_group("default");
  ASSERT_TRUE(def);
  EXPECT_FALSE(def->max_runs || def->max_tasks || def->max_gpus || def->max_cpu_threads ||
               def->max_run_seconds);
  RunGroup g = group("clinical");
  g.max_runs = 4;
  g.max_tasks = 6;
  g.max_gpus = 2;
  g.max_cpu_threads = 32;
  g.max_run_seconds = 3600;
  g.default_priority = 50;
  RunGroup stored = store->put_run_group(g, T0);
  EXPECT_EQ(stored.max_runs, 4);
  EXPECT_EQ(stored.max_cpu_threads, 32);
  EXPECT_EQ(stored.default_priority, 50);
  EXPECT_EQ(stored.created_at, T0);
  g.max_runs.reset();
  g.default_priority = -3;
  stored = store->put_run_group(g, T0 + 5);
  EXPECT_FALSE(stored.max_runs);
  EXPECT_EQ(stored.default_priority, -3);
  EXPECT_EQ(stored.created_at, T0);  // replaced, not re-created
  EXPECT_EQ(stored.updated_at, T0 + 5);
  store->put_run_group(group("bulk"), T0);
  std::vector<std::string> names;
  for (const RunGroup& one : store->list_run_groups()) names.push_back(one.name);
  EXPECT_EQ(names, (std::vector<std::string>{"bulk", "clinical", "default"}));

  RunGroup bad = group("x");
  bad.max_tasks = -1;
  EXPECT_THROW(store->put_run_group(bad, T0), InputError);
  bad = group("x");
  bad.max_run_seconds = 0;
  EXPECT_THROW(store->put_run_group(bad, T0), InputError);
  bad = group("x");
  bad.default_priority = 1001;
  EXPECT_THROW(store->put_run_group(bad, T0), InputError);
  EXPECT_THROW(store->put_run_group(group("no spaces"), T0), InputError);
  EXPECT_THROW(store->put_run_group(group(""), T0), InputError);
  EXPECT_THROW(store->put_run_group(group("-lead"), T0), InputError);

  // A group with a queued run cannot go; once its runs end it can.
  const omicsd::Run r = submit("bulk");
  EXPECT_THROW(store->delete_run_group("bulk"), ConflictError);
  EXPECT_THROW(store->delete_run_group("default"), ConflictError);
  ASSERT_TRUE(store->cancel_run(r.id, T0 + 1));
  EXPECT_TRUE(store->delete_run_group("bulk"));
  EXPECT_FALSE(store->delete_run_group("bulk"));
  EXPECT_FALSE(store->get_run_group("bulk"));
  EXPECT_EQ(store->get_run(r.id)->group, "bulk");  // ended runs keep the name
  // Its tasks would wait in a group no lease reads: resuming is a conflict until the group is back.
  EXPECT_THROW(store->resume_run(r.id, T0 + 2), ConflictError);
  EXPECT_EQ(store->get_run(r.id)->state, RunState::Canceled);
  store->put_run_group(group("bulk"), T0 + 3);
  ASSERT_TRUE(store->resume_run(r.id, T0 + 4));
  EXPECT_EQ(store->get_run(r.id)->state, RunState::Queued);
}

TEST_P(RunGroupTest, RunsNameTheirGroupAndTakeItsDefaultPriority) {
  RunGroup urgent = group("urgent");
  urgent.default_priority = 100;
  urgent.max_cpu_threads = 8;
  urgent.max_gpus = 1;
  store->put_run_group(urgent, T0);
  const omicsd::Run plain = submit("");
  EXPECT_EQ(plain.group, "default");
  EXPECT_EQ(plain.priority, 0);
  const omicsd::Run u = submit("urgent");
  EXPECT_EQ(u.group, "urgent");
  EXPECT_EQ(u.priority, 100);
  EXPECT_EQ(submit("urgent", 1, 1, 0, -4).priority, -4);  // a run's own priority wins
  EXPECT_EQ(store->list_tasks(u.id)[0].group, "urgent");
  // The group's default priority put u ahead of the older plain run.
  EXPECT_EQ(store->lease_task("w", json::object(), 60, T0 + 1)->run.id, u.id);

  try {
    submit("nonesuch");
    ADD_FAILURE() << "unknown group accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown run group 'nonesuch'"), std::string::npos) << e.what();
  }
  // A task needing more than its group ever allows would wait forever: refused, nothing created.
  const size_t runs_before = store->list_runs({}).runs.size();
  EXPECT_THROW(submit("urgent", 1, 9), InputError);
  EXPECT_THROW(submit("urgent", 1, 1, 2), InputError);
  EXPECT_EQ(store->list_runs({}).runs.size(), runs_before);
  // Demands stored on the tasks: threads from the parameter, GPUs from the requirements.
  const omicsd::Run g = submit("urgent", 1, 8, 1);
  const Task t = store->list_tasks(g.id)[0];
  EXPECT_EQ(t.demands.cpu_threads, 8);
  EXPECT_EQ(t.demands.gpus, 1);
}

// What is leased now (leases without an outcome), per group, from the database's lease history.
struct Held {
  int64_t tasks = 0, gpus = 0, threads = 0, runs = 0;
};
std::map<std::string, Held> held_now(sql::Db& db) {
  std::map<std::string, Held> out;
  for (const sql::Row& r : db.query(
           "SELECT t.group_name, COUNT(*), SUM(t.gpus), SUM(t.cpu_threads) FROM leases l JOIN tasks t ON "
           "t.id = l.task_id WHERE l.outcome IS NULL GROUP BY t.group_name")) {
    out[r.s(0)].tasks = r.i(1);
    out[r.s(0)].gpus = r.i(2);
    out[r.s(0)].threads = r.i(3);
  }
  // Runs in progress: leased before and not ended (some lease of theirs, run not terminal).
  for (const sql::Row& r : db.query("SELECT r.group_name, COUNT(DISTINCT r.id) FROM runs r JOIN tasks t ON "
                                    "t.run_id = r.id JOIN leases l "
                                    "ON l.task_id = t.id WHERE r.state = 'RUNNING' GROUP BY r.group_name"))
    out[r.s(0)].runs = r.i(1);
  return out;
}

// Rounds of 8 workers on two stores racing to lease until nothing more is leasable, then completing
// what they hold. After each race, what the lease history says is held must be within every cap, and
// at the cap where the group had more work waiting (the caps do not leave workers idle).
TEST_P(RunGroupTest, CapsHoldWhileWorkersOnTwoDaemonsRace) {
  RunGroup a = group("a");  // 3 tasks at once
  a.max_tasks = 3;
  RunGroup b = group("b");  // 2 runs in progress at once (runs of 3 chained tasks)
  b.max_runs = 2;
  RunGroup c = group("c");  // 10 CPU threads (tasks of 3) and 2 GPUs (tasks of 1 GPU, 1 thread)
  c.max_cpu_threads = 10;
  c.max_gpus = 2;
  for (const RunGroup& g : {a, b, c}) store->put_run_group(g, T0);
  std::mt19937 rng(7);
  for (int i = 0; i < 24; ++i) {
    const int64_t p = int64_t(rng() % 20) - 10;
    submit("a", 1, 1, 0, p, T0 + i);
    if (i % 2 == 0) submit("b", 3, 1, 0, p, T0 + i);
    submit("c", 1, 3, 0, p, T0 + i);
    if (i % 3 == 0) submit("c", 1, 1, 1, p, T0 + i);
  }
  submit("default", 1, 1, 0, std::nullopt, T0);  // uncapped
  std::vector<std::unique_ptr<JobStore>> daemons;
  daemons.push_back(another());
  daemons.push_back(another());
  auto db = raw();
  int64_t now = T0 + 1000;
  int rounds = 0;
  for (;; ++rounds) {
    ASSERT_LT(rounds, 200);
    std::mutex mu;
    std::vector<LeasedTask> leased;
    std::vector<std::thread> threads;
    std::atomic<int> errors{0};
    for (int w = 0; w < 8; ++w)
      threads.emplace_back([&, w] {
        try {
          JobStore& s = *daemons[w % 2];
          // Nothing is completed during the race, so an empty answer means nothing is leasable
          // (SKIP LOCKED may hide a task another lease holds locked for a moment: retry a few times).
          for (int empty = 0; empty < 3;) {
            auto l = s.lease_task("w" + std::to_string(w), json{{"gpu_count", 4}}, 600, now);
            if (!l) {
              ++empty;
              continue;
            }
            std::lock_guard lk(mu);
            leased.push_back(*l);
          }
        } catch (const std::exception& e) {
          ++errors;
          ADD_FAILURE() << e.what();
        }
      });
    for (auto& t : threads) t.join();
    ASSERT_EQ(errors.load(), 0);
    if (leased.empty()) break;
    const auto held = held_now(*db);
    auto at = [&](const std::string& g) { return held.count(g) ? held.at(g) : Held{}; };
    auto queued = [&](const std::string& g) {
      return db->query("SELECT COUNT(*) FROM tasks WHERE group_name = ? AND state = 'QUEUED'", {g})[0].i(0);
    };
    EXPECT_LE(at("a").tasks, 3) << "round " << rounds;
    EXPECT_LE(at("b").runs, 2) << "round " << rounds;
    EXPECT_LE(at("c").threads, 10) << "round " << rounds;
    EXPECT_LE(at("c").gpus, 2) << "round " << rounds;
    if (queued("a") > 0) {
      EXPECT_EQ(at("a").tasks, 3) << "round " << rounds;
    }
    // b's tasks are chained: a run in progress holds at most one task, so its runs bound its tasks.
    EXPECT_LE(at("b").tasks, 2) << "round " << rounds;
    EXPECT_EQ(int64_t(leased.size()), at("a").tasks + at("b").tasks + at("c").tasks + at("default").tasks);
    now += 1000;
    for (const LeasedTask& l : leased)
      store->complete_task(l.task.id, l.task.lease_token, json::object(), now);
  }
  EXPECT_GE(rounds, 18);  // b: 12 runs of 3 chained tasks, 2 runs at a time
  EXPECT_GT(db->query("SELECT COUNT(*) FROM tasks WHERE gpus = 1")[0].i(0), 0);
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM tasks WHERE state <> 'COMPLETE'")[0].i(0), 0);
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM runs WHERE state <> 'COMPLETE'")[0].i(0), 0);
}

TEST_P(RunGroupTest, AFullGroupDoesNotHoldUpTheOthers) {
  RunGroup one = group("one");
  one.max_tasks = 1;
  store->put_run_group(one, T0);
  const omicsd::Run first = submit("one", 1, 1, 0, 500);
  const omicsd::Run second = submit("one", 1, 1, 0, 500);  // more urgent than everything in default
  const omicsd::Run other = submit("default", 1, 1, 0, 0, T0 + 1);
  auto l1 = store->lease_task("w", json::object(), 60, T0 + 2);
  ASSERT_TRUE(l1);
  EXPECT_EQ(l1->run.id, first.id);
  auto l2 = store->lease_task("w", json::object(), 60, T0 + 2);
  ASSERT_TRUE(l2);
  EXPECT_EQ(l2->run.id, other.id);  // "one" is full
  EXPECT_FALSE(store->lease_task("w", json::object(), 60, T0 + 2));
  // Restarting (a new store on the same database) changes nothing: the caps count what is leased.
  store = another();
  EXPECT_FALSE(store->lease_task("w", json::object(), 60, T0 + 3));
  store->fail_task(l1->task.id, l1->task.lease_token, "boom", /*retryable=*/false, T0 + 4);
  auto l3 = store->lease_task("w", json::object(), 60, T0 + 5);
  ASSERT_TRUE(l3);
  EXPECT_EQ(l3->run.id, second.id);
  // An expired lease frees its slot too.
  store->expire_leases(T0 + 5 + 61'000);
  auto l4 = store->lease_task("w", json::object(), 60, T0 + 5 + 61'001);
  ASSERT_TRUE(l4);
  EXPECT_EQ(l4->run.id, second.id);
}

TEST_P(RunGroupTest, RunsPastTheGroupsMaximumDurationFail) {
  RunGroup g = group("short");
  g.max_run_seconds = 60;
  store->put_run_group(g, T0);
  const omicsd::Run slow = submit("short", 2);
  const omicsd::Run later = submit("short");
  const omicsd::Run uncapped = submit("default");
  EXPECT_TRUE(store->fail_overdue_runs(T0 + 999'999).empty());  // queued runs have not started
  auto l = store->lease_task("w", json::object(), 600, T0 + 1000);
  ASSERT_TRUE(l);
  ASSERT_EQ(l->run.id, slow.id);
  EXPECT_EQ(store->get_run(slow.id)->started_at, T0 + 1000);
  store->complete_task(l->task.id, l->task.lease_token, json::object(), T0 + 30'000);
  std::vector<LeasedTask> leases;
  while (auto next = store->lease_task("w", json::object(), 600, T0 + 40'000)) leases.push_back(*next);
  ASSERT_EQ(leases.size(), 3u);  // slow's second task, later, uncapped
  EXPECT_EQ(leases[0].run.id, slow.id);
  EXPECT_EQ(store->get_run(slow.id)->started_at, T0 + 1000);   // from its first lease
  EXPECT_TRUE(store->fail_overdue_runs(T0 + 61'000).empty());  // 60 s after the first lease: not yet
  EXPECT_EQ(store->fail_overdue_runs(T0 + 61'001), std::vector<std::string>{slow.id});
  const omicsd::Run failed = *store->get_run(slow.id);
  EXPECT_EQ(failed.state, RunState::Failed);
  EXPECT_NE(failed.failure_reason.find("maximum run duration of its group 'short' (60 s"), std::string::npos)
      << failed.failure_reason;
  EXPECT_EQ(store->list_tasks(slow.id)[1].state, TaskState::Canceled);
  EXPECT_THROW(
      store->complete_task(leases[0].task.id, leases[0].task.lease_token, json::object(), T0 + 70'000),
      LeaseError);
  EXPECT_EQ(store->fail_overdue_runs(T0 + 100'001), std::vector<std::string>{later.id});
  EXPECT_TRUE(store->fail_overdue_runs(T0 + 999'999).empty());  // never the same run twice
  EXPECT_EQ(store->get_run(uncapped.id)->state, RunState::Running);
  // A resumed run gets its full time again from its next lease.
  ASSERT_TRUE(store->resume_run(slow.id, T0 + 200'000));
  EXPECT_FALSE(store->get_run(slow.id)->started_at);
}

}  // namespace
