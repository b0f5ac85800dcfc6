#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "service/jobs/job_store.hpp"
#include "service/jobs/task_graph.hpp"
#include "tests/support/test_support.hpp"

using nlohmann::json;
using namespace omicsd;

namespace {

constexpr int64_t T0 = 1'700'000'000'000;  // unix ms

TaskSpec spec(const std::string& name, const std::string& kind, std::vector<std::string> deps = {},
              int max_attempts = 3, const std::string& cache_key = "", json requirements = json::object()) {
  TaskSpec t;
  t.name = name;
  t.kind = kind;
  t.depends_on = std::move(deps);
  t.max_attempts = max_attempts;
  t.cache_key = cache_key;
  t.requirements = std::move(requirements);
  return t;
}

// One job store of either backend, in a fresh database: an SQLite file in a temp dir, or a new
// database on the PostgreSQL test server (tests/support/test_support.hpp).
struct StoreEnv {
  test::TempDir dir;
  std::string db_path = (dir.path / "jobs.db").string();
  test::StoreBackend backend = test::StoreBackend::Sqlite;
  std::unique_ptr<test::PostgresDatabase> pg;
  std::string url;  // what open_job_store gets
  std::unique_ptr<JobStore> store;

  // False when the backend is PostgreSQL and there is no server (skip).
  bool open(test::StoreBackend b) {
    backend = b;
    url = test::store_database_url(b, db_path, pg);
    if (url.empty()) return false;
    store = open_job_store(url, options());
    return true;
  }
  // What describe() and error messages must name: the file, or the database.
  std::string where() const { return backend == test::StoreBackend::Sqlite ? db_path : pg->name; }
  // Runs one SQL statement on the backing database; the first column of each row.
  std::vector<std::string> sql(const std::string& q) {
    if (backend == test::StoreBackend::Postgres) return test::postgres_query(url, q);
    sqlite3* db = nullptr;
    if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("sqlite3_open failed");
    sqlite3_stmt* st = nullptr;
    std::vector<std::string> out;
    int rc = sqlite3_prepare_v2(db, q.c_str(), -1, &st, nullptr);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
      auto* t = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      out.push_back(t ? t : "");
      rc = SQLITE_OK;
    }
    std::string err = sqlite3_errmsg(db);
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc != SQLITE_DONE) throw std::runtime_error(q + ": " + err);
    return out;
  }
  int64_t sql_int(const std::string& q) {
    auto rows = sql(q);
    if (rows.empty()) throw std::runtime_error(q + ": no rows");
    return std::stoll(rows[0]);
  }

  static JobStoreOptions options() {
    JobStoreOptions o;
    o.retry_base_ms = 1000;
    return o;
  }
  CreateRunResult submit(const std::string& workflow = "germline", const std::string& key = "",
                         int64_t now = T0, const std::string& callback_url = "") {
    NewRun r;
    r.workflow = workflow;
    r.inputs = {{"read_set", "rs-1"}, {"reference", "ref-1"}};
    r.parameters = {{"min_qual", 20}};
    r.idempotency_key = key;
    r.callback_url = callback_url;
    return store->create_run(r, now);
  }
  LeasedTask must_lease(int64_t now, const std::string& worker = "w1") {
    auto l = store->lease_task(worker, json::object(), 60, now);
    if (!l) throw std::runtime_error("expected a leasable task");
    return *l;
  }
};

// The behaviour every backend shares: each TEST_P runs against SQLite and PostgreSQL.
struct StoreTest : ::testing::TestWithParam<test::StoreBackend>, StoreEnv {
  void SetUp() override {
    if (!open(GetParam())) GTEST_SKIP() << test::kPostgresSkipMessage;
  }
};
INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, test::store_backends(), test::StoreBackendName{});

struct SqliteStoreTest : ::testing::Test, StoreEnv {
  void SetUp() override { open(test::StoreBackend::Sqlite); }
};

struct PostgresStoreTest : ::testing::Test, StoreEnv {
  void SetUp() override {
    if (!open(test::StoreBackend::Postgres)) GTEST_SKIP() << test::kPostgresSkipMessage;
  }
  std::unique_ptr<JobStore> another() { return open_job_store(url, options()); }
};

TEST_P(StoreTest, MigrationsAndIdempotentOpen) {
  EXPECT_EQ(store->schema_version(), kJobStoreSchemaVersion);
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM schema_version"), kJobStoreSchemaVersion);
  std::string id = submit().run.id;
  store.reset();
  store = open_job_store(url);  // second open: no migration re-applied, data intact
  EXPECT_EQ(store->schema_version(), kJobStoreSchemaVersion);
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM schema_version"), kJobStoreSchemaVersion);
  ASSERT_TRUE(store->get_run(id));
  EXPECT_NE(store->describe().find(where()), std::string::npos) << store->describe();
  store.reset();

  // A database written by a newer omicsd is refused with a clear message.
  sql("INSERT INTO schema_version VALUES (999, 0)");
  try {
    open_job_store(url);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("999"), std::string::npos) << msg;
    EXPECT_NE(msg.find("newer"), std::string::npos) << msg;
    EXPECT_NE(msg.find(where()), std::string::npos) << msg;
  }
}

TEST_F(SqliteStoreTest, OpenErrorsNameThePath) {
  try {
    open_job_store((dir.path / "missing-dir" / "x.db").string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing-dir"), std::string::npos) << e.what();
  }
}

// No server needed: nothing listens on port 1.
TEST(PostgresOpenErrors, NameTheServerButNeverThePassword) {
  try {
    open_job_store("postgres://alice:s3cret-pw@127.0.0.1:1/omicsd");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("job store postgres://alice@127.0.0.1:1/omicsd: open: "), std::string::npos) << msg;
    EXPECT_EQ(msg.find("s3cret"), std::string::npos) << msg;
  }
  try {
    open_postgres_job_store("host=127.0.0.1 port=1 user=bob password=s3cret-pw dbname=jobs");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("job store postgres://bob@127.0.0.1:1/jobs: open: "), std::string::npos) << msg;
    EXPECT_EQ(msg.find("s3cret"), std::string::npos) << msg;
  }
  // Malformed: libpq's own message quotes the whole string, password included.
  for (const std::string bad :
       {"postgres://alice:s3cret-pw@[127.0.0.1:1/omicsd", "postgres://h:1/db?password=s3cret-pw&port=x",
        "host=h password='s3cret-pw' port"}) {
    try {
      open_postgres_job_store(bad);
      ADD_FAILURE() << "expected an error: " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("job store postgres"), std::string::npos) << e.what();
      std::printf("%s\n", e.what());
    }
  }
  try {
    open_job_store("postgres://alice:s3cret-pw@127.0.0.1:1/omicsd?nosuchoption=1");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("nosuchoption"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("s3cret"), std::string::npos) << msg;
  }
}

TEST_F(SqliteStoreTest, WalAndPragmas) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_P(StoreTest, CreateGetAndTasks) {
  auto res = submit("germline", "", T0);
  EXPECT_FALSE(res.existed);
  const omicsd::Run& run = res.run;
  EXPECT_EQ(run.id.rfind("run-", 0), 0u);
  EXPECT_EQ(run.id.size(), 4u + 16u);
  EXPECT_EQ(run.state, RunState::Queued);
  EXPECT_EQ(run.created_at, T0);
  EXPECT_EQ(run.inputs["read_set"], "rs-1");
  EXPECT_EQ(run.parameters["min_qual"], 20);

  auto got = store->get_run(run.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->workflow, "germline");
  EXPECT_FALSE(store->get_run("run-nope"));

  auto tasks = store->list_tasks(run.id);
  ASSERT_EQ(tasks.size(), 3u);
  EXPECT_EQ(tasks[0].kind, "align");
  EXPECT_EQ(tasks[1].kind, "call");
  EXPECT_EQ(tasks[2].kind, "qc");
  EXPECT_EQ(tasks[1].depends_on, (std::vector<std::string>{tasks[0].id}));
  EXPECT_EQ(tasks[2].depends_on, (std::vector<std::string>{tasks[1].id}));
  for (const Task& t : tasks) {
    EXPECT_EQ(t.state, TaskState::Queued);
    EXPECT_EQ(t.attempts, 0);
    EXPECT_EQ(t.queued_at, T0);
  }
  EXPECT_TRUE(store->get_task(tasks[2].id));
  EXPECT_FALSE(store->get_task("nope"));

  NewRun bad;
  bad.workflow = "assemble";
  EXPECT_THROW(store->create_run(bad, T0), InputError);
  NewRun cyc;
  cyc.workflow = "call";
  cyc.tasks = {spec("a", "call", {"b"}), spec("b", "call")};
  EXPECT_THROW(store->create_run(cyc, T0), InputError);
}

// Issue 12, item 7: a run and its first provenance are one transaction (create_run writes both);
// the counts behind /metrics are aggregates over runs and queued tasks.
TEST_P(StoreTest, ProvenanceIsWrittenWithTheRunAndCountsAggregate) {
  NewRun r;
  r.workflow = "germline";
  r.inputs = {{"reference", "ref-1"}, {"reads", "rs-1"}};
  r.provenance = {{"engine", {{"name", "omicsd"}}}, {"submitted_inputs", r.inputs}};
  const auto res = store->create_run(r, T0);
  EXPECT_EQ(res.run.provenance["engine"]["name"], "omicsd") << res.run.provenance.dump();
  EXPECT_EQ(store->get_run(res.run.id)->provenance["submitted_inputs"]["reads"], "rs-1");
  const std::string canceled = submit("align").run.id;
  ASSERT_TRUE(store->cancel_run(canceled, T0 + 1));
  submit("call");
  const JobStore::Counts c = store->counts();
  EXPECT_EQ(c.runs.at(RunState::Queued), 2);
  EXPECT_EQ(c.runs.at(RunState::Canceled), 1);
  EXPECT_EQ(c.runs.at(RunState::Complete), 0);
  EXPECT_EQ(c.queued_tasks, 3 + 1);  // germline: align, call, qc; call: call; not the canceled run's
}

TEST_P(StoreTest, ListFiltersAndPaging) {
  std::vector<std::string> germline, align;
  for (int i = 0; i < 7; ++i) germline.push_back(submit("germline", "", T0 + i).run.id);
  for (int i = 0; i < 3; ++i) align.push_back(submit("align", "", T0 + 100 + i).run.id);
  ASSERT_TRUE(store->cancel_run(germline[2], T0 + 200));

  RunFilter f;
  f.page_size = 3;
  std::vector<std::string> seen;
  int pages = 0;
  for (;;) {
    RunPage p = store->list_runs(f);
    ++pages;
    for (auto& r : p.runs) seen.push_back(r.id);
    if (p.next_page_token.empty()) break;
    f.page_token = p.next_page_token;
  }
  EXPECT_EQ(pages, 4);
  std::vector<std::string> all = germline;
  all.insert(all.end(), align.begin(), align.end());
  EXPECT_EQ(seen, all);  // creation order, nothing repeated or skipped

  RunFilter wf;
  wf.workflow = "align";
  auto p = store->list_runs(wf);
  ASSERT_EQ(p.runs.size(), 3u);
  EXPECT_EQ(p.runs[0].id, align[0]);
  EXPECT_TRUE(p.next_page_token.empty());

  RunFilter st;
  st.state = RunState::Canceled;
  p = store->list_runs(st);
  ASSERT_EQ(p.runs.size(), 1u);
  EXPECT_EQ(p.runs[0].id, germline[2]);

  RunFilter both;
  both.state = RunState::Queued;
  both.workflow = "germline";
  both.page_size = 4;
  p = store->list_runs(both);
  EXPECT_EQ(p.runs.size(), 4u);
  both.page_token = p.next_page_token;
  p = store->list_runs(both);
  EXPECT_EQ(p.runs.size(), 2u);  // 6 queued germline runs in all
  EXPECT_TRUE(p.next_page_token.empty());

  RunFilter bad;
  bad.page_token = "garbage";
  EXPECT_THROW(store->list_runs(bad), InputError);
}

TEST_P(StoreTest, IdempotencyKey) {
  auto a = submit("germline", "key-1");
  auto b = submit("align", "key-1");
  EXPECT_FALSE(a.existed);
  EXPECT_TRUE(b.existed);
  EXPECT_EQ(a.run.id, b.run.id);
  EXPECT_EQ(b.run.workflow, "germline");
  auto c = submit("germline", "key-2");
  EXPECT_NE(c.run.id, a.run.id);
  EXPECT_EQ(store->list_runs({}).runs.size(), 2u);
}

// add_run_batch_results writes many runs with a few multi-row statements: every run gets its tasks and
// dependencies, a key repeated in the batch names the first run that took it (one that failed takes
// nothing), a stored key is that run, and a refused run writes nothing. Each request gets its result
// row, and the batch its counts; results for a chunk the batch is not at write nothing.
TEST_P(StoreTest, BatchOfRunsWithRepeatedKeysAndErrors) {
  const auto stored = submit("germline", "kept");
  std::vector<NewRun> runs(300);
  for (size_t i = 0; i < runs.size(); ++i) {
    runs[i].workflow = i % 2 ? "germline" : "align";
    runs[i].inputs = {{"read_set", "rs-" + std::to_string(i)}, {"reference", "ref-1"}};
    runs[i].idempotency_key = "b-" + std::to_string(i);
  }
  runs[5].group = "nonesuch";                         // refused, so key b-5 stays free ...
  runs[6].idempotency_key = "b-5";                    // ... for this run, which creates it
  runs[7].idempotency_key = "b-1";                    // a key taken earlier in the batch
  runs[8].idempotency_key = "kept";                   // a key stored before
  runs[9].tasks = {spec("a", "align", {"missing"})};  // a bad graph
  // Requests 0..299 are these runs; 300 and 301 were refused before the store.
  bool existed = true;
  const RunBatch batch = store->create_run_batch(R"({"runs": []})", 302, "", T0 + 4, existed);
  EXPECT_FALSE(existed);
  EXPECT_EQ(store->run_batch_requests(batch.id), R"({"runs": []})");
  std::vector<int64_t> index(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) index[i] = int64_t(i);
  const std::vector<RunBatchRefusal> refused = {{300, 404, "no such reference"}, {301, 400, "bad"}};
  // Not where the batch is (another daemon's results went first): nothing is written.
  EXPECT_FALSE(store->add_run_batch_results(batch.id, 2, 302, runs, index, refused, T0 + 5));
  EXPECT_EQ(store->list_runs({}).runs.size(), 1u);
  const auto written = store->add_run_batch_results(batch.id, 0, 302, runs, index, refused, T0 + 5);
  ASSERT_TRUE(written);
  const std::vector<BatchRunResult>& out = *written;
  ASSERT_EQ(out.size(), runs.size());
  EXPECT_FALSE(store->add_run_batch_results(batch.id, 0, 302, runs, index, refused, T0 + 6));  // done
  const auto b = store->get_run_batch(batch.id);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->state, RunBatchState::Submitted);
  EXPECT_EQ(b->submitted, 302);
  EXPECT_EQ(b->created, 296);
  EXPECT_EQ(b->existing, 2);
  EXPECT_EQ(b->failed, 4);
  EXPECT_EQ(b->finished_at, T0 + 5);
  EXPECT_FALSE(store->run_batch_requests(batch.id));  // dropped once submitted
  const auto items = store->run_batch_items(batch.id, 5, 1000);
  ASSERT_EQ(items.size(), 297u);
  EXPECT_EQ(items[0].index, 5);
  EXPECT_TRUE(items[0].run_id.empty());
  EXPECT_EQ(items[0].error_code, 400);
  EXPECT_NE(items[0].error.find("unknown run group"), std::string::npos) << items[0].error;
  EXPECT_EQ(items[1].run_id, out[6].created->run.id);
  EXPECT_EQ(items[1].run_state, "QUEUED");
  EXPECT_EQ(items[1].group, "default");
  EXPECT_FALSE(items[1].existed);
  EXPECT_TRUE(items[2].existed);
  EXPECT_EQ(items[295].error_code, 404);
  EXPECT_EQ(items[295].error, "no such reference");
  EXPECT_EQ(items[296].index, 301);
  EXPECT_FALSE(out[5].created);
  EXPECT_NE(out[5].error.find("unknown run group"), std::string::npos) << out[5].error;
  ASSERT_TRUE(out[6].created);
  EXPECT_FALSE(out[6].created->existed);
  ASSERT_TRUE(out[7].created && out[1].created);
  EXPECT_TRUE(out[7].created->existed);
  EXPECT_EQ(out[7].created->run.id, out[1].created->run.id);
  ASSERT_TRUE(out[8].created);
  EXPECT_TRUE(out[8].created->existed);
  EXPECT_EQ(out[8].created->run.id, stored.run.id);
  EXPECT_FALSE(out[9].created);
  EXPECT_FALSE(out[9].error.empty());
  size_t created = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!out[i].created || out[i].created->existed) continue;
    ++created;
    const omicsd::Run& r = out[i].created->run;
    const auto back = store->get_run(r.id);
    ASSERT_TRUE(back) << r.id;
    EXPECT_EQ(back->workflow, runs[i].workflow);
    EXPECT_EQ(back->inputs, runs[i].inputs);
    EXPECT_EQ(back->idempotency_key, runs[i].idempotency_key);
    const auto tasks = store->list_tasks(r.id);
    const auto expected = default_tasks(runs[i].workflow);
    ASSERT_EQ(tasks.size(), expected.size()) << r.id;
    for (size_t k = 0; k < tasks.size(); ++k) {
      EXPECT_EQ(tasks[k].name, expected[k].name);
      ASSERT_EQ(tasks[k].depends_on.size(), expected[k].depends_on.size());
      for (size_t d = 0; d < tasks[k].depends_on.size(); ++d)
        EXPECT_EQ(tasks[k].depends_on[d], r.id + "/" + expected[k].depends_on[d]);
    }
  }
  EXPECT_EQ(created, runs.size() - 4);  // 5 and 9 refused; 7 and 8 existed; 6 created b-5
  RunFilter all;
  all.page_size = 1000;
  EXPECT_EQ(store->list_runs(all).runs.size(), created + 1);
}

TEST_P(StoreTest, DependencyOrdering) {
  auto run = submit().run;
  auto l1 = must_lease(T0);
  EXPECT_EQ(l1.task.kind, "align");
  EXPECT_EQ(l1.run.id, run.id);
  EXPECT_EQ(l1.run.state, RunState::Running);         // the first lease starts the run
  EXPECT_FALSE(store->lease_task("w2", {}, 60, T0));  // call waits for align
  store->complete_task(l1.task.id, l1.task.lease_token, {{"bam", "a.bam"}}, T0 + 1);
  auto l2 = must_lease(T0 + 2);
  EXPECT_EQ(l2.task.kind, "call");
  EXPECT_FALSE(store->lease_task("w2", {}, 60, T0 + 2));
  store->complete_task(l2.task.id, l2.task.lease_token, {{"vcf", "a.vcf"}}, T0 + 3);
  auto l3 = must_lease(T0 + 4);
  EXPECT_EQ(l3.task.kind, "qc");
  EXPECT_EQ(store->get_run(run.id)->state, RunState::Running);
  auto r = store->complete_task(l3.task.id, l3.task.lease_token, {{"report", "qc.json"}}, T0 + 5);
  EXPECT_EQ(r.run_state, RunState::Complete);
  auto done = store->get_run(run.id);
  EXPECT_EQ(done->state, RunState::Complete);
  EXPECT_EQ(done->outputs["call"]["vcf"], "a.vcf");
  EXPECT_EQ(done->outputs["align"]["bam"], "a.bam");
  EXPECT_FALSE(store->lease_task("w1", {}, 60, T0 + 6));
}

TEST_P(StoreTest, OldestFirstAndCapabilities) {
  NewRun gpu;
  gpu.workflow = "align";
  gpu.tasks = {spec("align", "align", {}, 3, "", {{"gpu", true}, {"gpu_mem_gb", 16}})};
  auto g = store->create_run(gpu, T0).run;
  auto cpu = submit("call", "", T0 + 10).run;
  auto l = store->lease_task("cpu-worker", {{"gpu", false}}, 60, T0 + 20);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->run.id, cpu.id);  // the older task needs a GPU this worker lacks
  EXPECT_FALSE(store->lease_task("small-gpu", {{"gpu", true}, {"gpu_mem_gb", 8}}, 60, T0 + 20));
  l = store->lease_task("big-gpu", {{"gpu", true}, {"gpu_mem_gb", 80}}, 60, T0 + 20);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->run.id, g.id);
}

TEST_P(StoreTest, LeaseHeartbeatCompleteIdempotency) {
  submit("align");
  auto l = must_lease(T0, "w1");
  EXPECT_EQ(l.task.state, TaskState::Running);
  EXPECT_EQ(l.task.attempts, 1);
  EXPECT_EQ(l.task.worker_id, "w1");
  EXPECT_EQ(*l.task.started_at, T0);
  EXPECT_EQ(*l.task.lease_expires_at, T0 + 60'000);
  EXPECT_EQ(l.task.lease_token.size(), 32u);

  auto hb = store->heartbeat(l.task.id, l.task.lease_token, 120, T0 + 30'000);
  EXPECT_EQ(*hb.lease_expires_at, T0 + 150'000);
  EXPECT_EQ(store->expire_leases(T0 + 100'000), 0);  // extended past the original deadline
  EXPECT_THROW(store->heartbeat(l.task.id, "bogus", 60, T0), LeaseError);
  EXPECT_THROW(store->heartbeat("nope", l.task.lease_token, 60, T0), NotFoundError);
  EXPECT_THROW(store->complete_task(l.task.id, "bogus", {}, T0), LeaseError);

  auto r1 = store->complete_task(l.task.id, l.task.lease_token, {{"bam", "x"}}, T0 + 40'000);
  EXPECT_FALSE(r1.duplicate);
  EXPECT_EQ(r1.task.state, TaskState::Complete);
  EXPECT_EQ(*r1.task.finished_at, T0 + 40'000);
  EXPECT_EQ(r1.run_state, RunState::Complete);
  auto r2 = store->complete_task(l.task.id, l.task.lease_token, {{"bam", "x"}}, T0 + 50'000);
  EXPECT_TRUE(r2.duplicate);
  EXPECT_EQ(r2.task.state, TaskState::Complete);
  EXPECT_EQ(*r2.task.finished_at, T0 + 40'000);  // unchanged
  EXPECT_EQ(r2.run_state, RunState::Complete);
  // After completion the lease is no longer current for anything else.
  EXPECT_THROW(store->heartbeat(l.task.id, l.task.lease_token, 60, T0 + 50'000), LeaseError);
  EXPECT_THROW(store->fail_task(l.task.id, l.task.lease_token, "late", true, T0 + 50'000), LeaseError);
}

TEST_P(StoreTest, RetriesWithBackoffAndStaleTokens) {
  NewRun r;
  r.workflow = "align";
  r.tasks = {spec("align", "align", {}, 4)};
  auto run = store->create_run(r, T0).run;

  auto l1 = must_lease(T0, "w1");
  auto f1 = store->fail_task(l1.task.id, l1.task.lease_token, "disk full", true, T0 + 10);
  EXPECT_TRUE(f1.retry_scheduled);
  EXPECT_FALSE(f1.duplicate);
  EXPECT_EQ(f1.task.state, TaskState::Queued);
  EXPECT_EQ(f1.task.last_error, "disk full");
  EXPECT_EQ(f1.task.not_before, T0 + 10 + 1000);  // base * 2^0
  EXPECT_EQ(f1.run_state, RunState::Running);
  auto f1b = store->fail_task(l1.task.id, l1.task.lease_token, "disk full", true, T0 + 20);
  EXPECT_TRUE(f1b.duplicate);
  EXPECT_TRUE(f1b.retry_scheduled);
  EXPECT_EQ(f1b.task.not_before, T0 + 1010);

  EXPECT_FALSE(store->lease_task("w2", {}, 60, T0 + 1009));  // backing off
  auto l2 = must_lease(T0 + 1010, "w2");
  EXPECT_EQ(l2.task.attempts, 2);
  EXPECT_NE(l2.task.lease_token, l1.task.lease_token);
  // The first worker's token is stale now.
  EXPECT_THROW(store->complete_task(l1.task.id, l1.task.lease_token, {}, T0 + 1011), LeaseError);
  EXPECT_THROW(store->heartbeat(l1.task.id, l1.task.lease_token, 60, T0 + 1011), LeaseError);

  auto f2 = store->fail_task(l2.task.id, l2.task.lease_token, "oom", true, T0 + 2000);
  EXPECT_EQ(f2.task.not_before, T0 + 2000 + 2000);  // base * 2^1
  auto l3 = must_lease(T0 + 4000, "w3");
  auto f3 = store->fail_task(l3.task.id, l3.task.lease_token, "oom", true, T0 + 5000);
  EXPECT_EQ(f3.task.not_before, T0 + 5000 + 4000);  // base * 2^2
  auto l4 = must_lease(T0 + 9000, "w4");
  EXPECT_EQ(l4.task.attempts, 4);
  auto done = store->complete_task(l4.task.id, l4.task.lease_token, {{"ok", true}}, T0 + 9500);
  EXPECT_EQ(done.run_state, RunState::Complete);
  EXPECT_EQ(store->get_run(run.id)->state, RunState::Complete);
}

TEST_P(StoreTest, AttemptsExhaustedFailsRun) {
  NewRun r;
  r.workflow = "germline";
  r.tasks = default_tasks("germline");
  r.tasks[0].max_attempts = 2;
  auto run = store->create_run(r, T0).run;
  auto l1 = must_lease(T0);
  store->fail_task(l1.task.id, l1.task.lease_token, "first", true, T0);
  auto l2 = must_lease(T0 + 1000);
  auto f =
      store->fail_task(l2.task.id, l2.task.lease_token, "bad read set: truncated FASTQ", true, T0 + 1500);
  EXPECT_FALSE(f.retry_scheduled);
  EXPECT_EQ(f.task.state, TaskState::Failed);
  EXPECT_EQ(f.run_state, RunState::Failed);
  auto failed = store->get_run(run.id);
  EXPECT_EQ(failed->state, RunState::Failed);
  EXPECT_NE(failed->failure_reason.find("bad read set: truncated FASTQ"), std::string::npos)
      << failed->failure_reason;
  EXPECT_NE(failed->failure_reason.find("2 attempts"), std::string::npos);
  auto tasks = store->list_tasks(run.id);
  EXPECT_EQ(tasks[1].state, TaskState::Canceled);
  EXPECT_EQ(tasks[2].state, TaskState::Canceled);
  EXPECT_FALSE(store->lease_task("w", {}, 60, T0 + 100'000));
  // Duplicate fail returns the same result.
  auto again =
      store->fail_task(l2.task.id, l2.task.lease_token, "bad read set: truncated FASTQ", true, T0 + 2000);
  EXPECT_TRUE(again.duplicate);
  EXPECT_FALSE(again.retry_scheduled);
  EXPECT_EQ(again.run_state, RunState::Failed);

  // A non-retryable failure fails at once.
  auto run2 = submit("call").run;
  auto l = must_lease(T0 + 200'000);
  auto nf = store->fail_task(l.task.id, l.task.lease_token, "unknown contig", false, T0 + 200'001);
  EXPECT_FALSE(nf.retry_scheduled);
  EXPECT_EQ(store->get_run(run2.id)->state, RunState::Failed);
}

TEST_P(StoreTest, ExpireLeasesRequeues) {
  NewRun r;
  r.workflow = "align";
  r.tasks = {spec("align", "align", {}, 2)};
  auto run = store->create_run(r, T0).run;
  auto l1 = must_lease(T0, "dead-worker");
  EXPECT_EQ(store->expire_leases(T0 + 60'000), 0);  // exactly at the deadline: still valid
  EXPECT_EQ(store->expire_leases(T0 + 60'001), 1);
  auto t = store->get_task(l1.task.id);
  EXPECT_EQ(t->state, TaskState::Queued);
  EXPECT_EQ(t->attempts, 1);
  EXPECT_NE(t->last_error.find("dead-worker"), std::string::npos);
  EXPECT_THROW(store->complete_task(l1.task.id, l1.task.lease_token, {}, T0 + 60'002), LeaseError);
  auto l2 = must_lease(T0 + 60'002, "w2");
  EXPECT_EQ(l2.task.attempts, 2);
  EXPECT_EQ(store->expire_leases(T0 + 200'000), 1);  // second expiry exhausts attempts
  EXPECT_EQ(store->get_task(l1.task.id)->state, TaskState::Failed);
  auto failed = store->get_run(run.id);
  EXPECT_EQ(failed->state, RunState::Failed);
  EXPECT_NE(failed->failure_reason.find("expired"), std::string::npos);
  EXPECT_EQ(store->expire_leases(T0 + 300'000), 0);
}

// Two leases of one run expire in one sweep and the first has no attempts left: the run fails and
// its other task is canceled; the sweep must not then re-queue that canceled task.
TEST_P(StoreTest, ExpirySweepDoesNotRequeueATaskItsRunFailureCanceled) {
  NewRun r;
  r.workflow = "align";
  r.tasks = {spec("a", "align", {}, 1), spec("b", "align", {}, 3)};
  auto run = store->create_run(r, T0).run;
  auto la = must_lease(T0, "w1");
  auto lb = must_lease(T0, "w2");
  ASSERT_EQ(la.task.name, "a");
  ASSERT_EQ(lb.task.name, "b");
  EXPECT_EQ(store->expire_leases(T0 + 60'001), 1);
  EXPECT_EQ(store->get_run(run.id)->state, RunState::Failed);
  EXPECT_EQ(store->get_task(la.task.id)->state, TaskState::Failed);
  EXPECT_EQ(store->get_task(lb.task.id)->state, TaskState::Canceled);
  EXPECT_FALSE(store->lease_task("w3", json::object(), 60, T0 + 60'002).has_value());
}

// A worker that meets none of the requirements at the head of a deep queue still finds the one task
// it can run behind them (the PostgreSQL store reads the queue a page at a time).
TEST_P(StoreTest, LeaseFindsAMatchingTaskBehindManyItCannotRun) {
  for (int i = 0; i < 150; ++i) {
    NewRun r;
    r.workflow = "align";
    r.tasks = {spec("align", "align", {}, 3, "", json{{"gpu_memory_gb", 80}})};
    store->create_run(r, T0 + i);
  }
  NewRun cpu;
  cpu.workflow = "align";
  auto want = store->create_run(cpu, T0 + 1000).run;
  auto l = store->lease_task("cpu-worker", json{{"cpu", true}}, 60, T0 + 2000);
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->task.run_id, want.id);
  EXPECT_FALSE(store->lease_task("cpu-worker", json{{"cpu", true}}, 60, T0 + 2000).has_value());
  auto g = store->lease_task("gpu-worker", json{{"gpu_memory_gb", 80}}, 60, T0 + 2000);
  ASSERT_TRUE(g.has_value());
  EXPECT_NE(g->task.run_id, want.id);
}

// The lease matches a task's requirements against the worker's capabilities by one rule on both
// stores (PostgreSQL does it in SQL, inside the lease statement): random requirement and capability
// objects (numbers compared as "at least", everything else by JSON equality, integers against
// floats, nested values, missing keys, non-object capabilities) lease exactly when
// capabilities_satisfy says they should.
TEST_P(StoreTest, LeaseMatchesRequirementsAsCapabilitiesSatisfyDoes) {
  std::mt19937 rng(20261205);
  const std::vector<std::string> keys = {"gpu", "cpu_threads", "memory_gb", "arch", "features"};
  auto value = [&]() -> json {
    switch (rng() % 9) {
      case 0:
        return int(rng() % 4);
      case 1:
        return 0.5 + double(rng() % 4);
      case 2:
        return double(rng() % 3);  // 0.0, 1.0, 2.0: equal to the integers
      case 3:
        return rng() % 2 ? "sm_90" : "sm_80";
      case 4:
        return bool(rng() % 2);
      case 5:
        return nullptr;
      case 6:
        return json{{"k", rng() % 2 ? json(1) : json(1.0)}};
      case 7:
        return json::array({1, rng() % 2 ? json(2) : json(2.0)});
      default:
        return "2";
    }
  };
  auto object = [&](size_t max_keys) {
    json o = json::object();
    for (size_t n = rng() % (max_keys + 1); n > 0; --n) o[keys[rng() % keys.size()]] = value();
    return o;
  };
  int leased = 0, refused = 0;
  for (int trial = 0; trial < 300; ++trial) {
    json req = object(2), caps = object(5);
    if (trial % 37 == 5) req = json::array({1});                // not an object: asks for nothing
    if (trial % 41 == 7) caps = json::array({"gpu"});           // not an object: meets nothing
    if (trial % 3 == 0 && req.is_object() && caps.is_object())  // often give the worker what was asked
      for (auto it = req.begin(); it != req.end(); ++it) caps[it.key()] = it.value();
    NewRun r;
    r.workflow = "align";
    r.tasks = {spec("align", "align", {}, 3, "", req)};
    const omicsd::Run run = store->create_run(r, T0 + trial).run;
    const bool expect = capabilities_satisfy(caps, req);
    auto l = store->lease_task("w", caps, 60, T0 + 10'000 + trial);
    ASSERT_EQ(l.has_value(), expect) << "requirements " << req.dump() << ", capabilities " << caps.dump();
    if (l) {
      EXPECT_EQ(l->task.run_id, run.id);
      EXPECT_EQ(l->task.requirements, req);
      store->complete_task(l->task.id, l->task.lease_token, {}, T0 + 10'000 + trial);
      ++leased;
    } else {
      store->cancel_run(run.id, T0 + 10'000 + trial);
      ++refused;
    }
  }
  EXPECT_GT(leased, 50);  // both outcomes well represented
  EXPECT_GT(refused, 50);
}

TEST_P(StoreTest, Cancel) {
  auto run = submit().run;
  auto l = must_lease(T0);
  EXPECT_TRUE(store->cancel_run(run.id, T0 + 1));
  EXPECT_FALSE(store->cancel_run(run.id, T0 + 2));  // already terminal: unchanged
  auto got = store->get_run(run.id);
  EXPECT_EQ(got->state, RunState::Canceled);
  EXPECT_EQ(got->updated_at, T0 + 1);
  for (const Task& t : store->list_tasks(run.id)) EXPECT_EQ(t.state, TaskState::Canceled);
  EXPECT_THROW(store->heartbeat(l.task.id, l.task.lease_token, 60, T0 + 3), LeaseError);
  EXPECT_THROW(store->complete_task(l.task.id, l.task.lease_token, {}, T0 + 3), LeaseError);
  EXPECT_FALSE(store->lease_task("w", {}, 60, T0 + 4));
  EXPECT_THROW(store->cancel_run("run-missing", T0), NotFoundError);

  // A complete run is not canceled.
  auto run2 = submit("call").run;
  auto l2 = must_lease(T0 + 10);
  store->complete_task(l2.task.id, l2.task.lease_token, {}, T0 + 11);
  EXPECT_FALSE(store->cancel_run(run2.id, T0 + 12));
  EXPECT_EQ(store->get_run(run2.id)->state, RunState::Complete);
}

TEST_P(StoreTest, ResumeRerunsOnlyUnfinishedTasks) {
  NewRun r;
  r.workflow = "germline";
  r.tasks = default_tasks("germline");
  r.tasks[1].max_attempts = 1;
  auto run = store->create_run(r, T0).run;
  auto a = must_lease(T0);
  store->complete_task(a.task.id, a.task.lease_token, {{"bam", "a.bam"}}, T0 + 1);
  auto c = must_lease(T0 + 2);
  ASSERT_EQ(c.task.kind, "call");
  store->fail_task(c.task.id, c.task.lease_token, "gpu fault", true, T0 + 3);
  ASSERT_EQ(store->get_run(run.id)->state, RunState::Failed);
  EXPECT_FALSE(store->resume_run(submit("call").run.id, T0 + 4));  // QUEUED: nothing to resume

  EXPECT_TRUE(store->resume_run(run.id, T0 + 10));
  auto resumed = store->get_run(run.id);
  EXPECT_EQ(resumed->state, RunState::Queued);
  EXPECT_TRUE(resumed->failure_reason.empty());
  auto tasks = store->list_tasks(run.id);
  EXPECT_EQ(tasks[0].state, TaskState::Complete);  // finished work kept
  EXPECT_EQ(tasks[0].attempts, 1);
  EXPECT_EQ(tasks[1].state, TaskState::Queued);
  EXPECT_EQ(tasks[1].attempts, 0);
  EXPECT_EQ(tasks[2].state, TaskState::Queued);

  // Only call and qc run again; align is never leased a second time.
  std::vector<std::string> kinds;
  int64_t now = T0 + 20;
  while (auto l = store->lease_task("w", {}, 60, now)) {
    if (l->run.id != run.id) {  // the other queued run
      store->cancel_run(l->run.id, now);
      continue;
    }
    kinds.push_back(l->task.kind);
    store->complete_task(l->task.id, l->task.lease_token, {{"k", l->task.kind}}, ++now);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"call", "qc"}));
  EXPECT_EQ(store->get_run(run.id)->state, RunState::Complete);
  EXPECT_EQ(store->get_run(run.id)->outputs["align"]["bam"], "a.bam");

  // A canceled run resumes too.
  auto run3 = submit("align").run;
  store->cancel_run(run3.id, now);
  EXPECT_TRUE(store->resume_run(run3.id, now + 1));
  EXPECT_EQ(store->list_tasks(run3.id)[0].state, TaskState::Queued);
  EXPECT_THROW(store->resume_run("run-missing", now), NotFoundError);
}

TEST_P(StoreTest, CacheAndProvenance) {
  EXPECT_FALSE(store->get_cache("k1"));
  store->put_cache("k1", {{"vcf", "objects/ab/cd"}}, T0);
  auto v = store->get_cache("k1");
  ASSERT_TRUE(v);
  EXPECT_EQ((*v)["vcf"], "objects/ab/cd");
  store->put_cache("k1", {{"vcf", "objects/ef"}}, T0 + 1);
  EXPECT_EQ((*store->get_cache("k1"))["vcf"], "objects/ef");

  // Completing a task with a cache key fills the cache.
  NewRun r;
  r.workflow = "align";
  r.tasks = {spec("align", "align", {}, 3, "sha256:abc")};
  auto run = store->create_run(r, T0).run;
  auto l = must_lease(T0);
  EXPECT_EQ(l.task.cache_key, "sha256:abc");
  store->complete_task(l.task.id, l.task.lease_token, {{"bam", "objects/12"}}, T0 + 5);
  EXPECT_EQ((*store->get_cache("sha256:abc"))["bam"], "objects/12");

  store->set_run_provenance(run.id, {{"engine", "0.1"}, {"device", "cpu"}}, T0 + 6);
  store->set_run_provenance(run.id, {{"device", "H100"}}, T0 + 7);
  auto got = store->get_run(run.id);
  EXPECT_EQ(got->provenance["engine"], "0.1");
  EXPECT_EQ(got->provenance["device"], "H100");
}

// A child process creates runs and reports each id once create_run returns, then dies without
// closing the database (_exit, and separately SIGKILL mid-stream): every reported run is there.
// (With PostgreSQL the client dies, not the server: each acknowledged commit must be there.)
TEST_P(StoreTest, DurabilityAcrossCrash) {
  store.reset();
  for (int mode = 0; mode < 2; ++mode) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      try {
        auto s = open_job_store(url);
        for (int i = 0; mode == 1 || i < 40; ++i) {
          NewRun r;
          r.workflow = "germline";
          r.idempotency_key = "mode" + std::to_string(mode) + "-" + std::to_string(i);
          std::string line = s->create_run(r, T0 + i).run.id + "\n";
          if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(3);
        }
      } catch (...) {
        _exit(2);
      }
      _exit(0);  // no destructors, no sqlite3_close
    }
    close(fds[1]);
    FILE* in = fdopen(fds[0], "r");
    std::vector<std::string> ids;
    char buf[128];
    while (fgets(buf, sizeof buf, in)) {
      std::string id(buf);
      if (!id.empty() && id.back() == '\n') id.pop_back();
      ids.push_back(id);
      if (mode == 1 && ids.size() == 30) kill(pid, SIGKILL);
    }
    fclose(in);
    int status = 0;
    waitpid(pid, &status, 0);
    if (mode == 0) {
      ASSERT_TRUE(WIFEXITED(status));
      EXPECT_EQ(WEXITSTATUS(status), 0);
      EXPECT_EQ(ids.size(), 40u);
    } else {
      ASSERT_TRUE(WIFSIGNALED(status));
      EXPECT_GE(ids.size(), 30u);
    }
    auto s = open_job_store(url);
    for (const std::string& id : ids) {
      auto r = s->get_run(id);
      ASSERT_TRUE(r) << "run " << id << " lost (mode " << mode << ")";
      EXPECT_EQ(s->list_tasks(id).size(), 3u);
    }
  }
}

// 4 threads lease concurrently, first through one shared store, then through 4 separate
// connections to the same database: no task is ever handed out twice and none is missed.
TEST_P(StoreTest, ConcurrentLeasingNeverDuplicates) {
  constexpr int kTasks = 80;
  for (bool shared : {true, false}) {
    for (int i = 0; i < kTasks / 2; ++i) {
      submit("align", "", T0 + i);
      submit("call", "", T0 + i);
    }
    std::vector<std::unique_ptr<JobStore>> own;
    for (int i = 0; i < 4; ++i) own.push_back(shared ? nullptr : open_job_store(url));
    std::mutex mu;
    std::vector<std::string> leased;
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        JobStore& s = shared ? *store : *own[t];
        const std::string worker = std::string("w") += std::to_string(t);
        try {
          while (auto l = s.lease_task(worker, {}, 60, T0 + 10'000)) {
            size_t n;
            {
              std::lock_guard<std::mutex> lock(mu);
              leased.push_back(l->task.id);
              n = leased.size();
            }
            // Complete half of them so leasing interleaves with other writes.
            if (n % 2 == 0) s.complete_task(l->task.id, l->task.lease_token, {}, T0 + 10'001);
          }
        } catch (const std::exception& e) {
          ++errors;
          ADD_FAILURE() << e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(errors.load(), 0);
    std::set<std::string> unique(leased.begin(), leased.end());
    EXPECT_EQ(unique.size(), leased.size()) << "a task was leased twice";
    EXPECT_EQ(leased.size(), static_cast<size_t>(kTasks)) << (shared ? "shared" : "separate");
  }
}

// The webhook outbox (schema v2): the trigger writes one PENDING event whenever a run with a
// callback_url changes state to COMPLETE, FAILED or CANCELED, whatever the code path.
TEST_P(StoreTest, WebhookEventsOnTerminalStates) {
  const std::string cb = "https://portal.example/hooks/omicsd";
  auto plain = submit("align", "", T0).run;  // no callback_url: never an event
  auto done = submit("align", "", T0 + 1, cb).run;
  auto l = must_lease(T0 + 10);
  ASSERT_EQ(l.run.id, plain.id);
  store->complete_task(l.task.id, l.task.lease_token, {{"bam", "p"}}, T0 + 11);
  EXPECT_EQ(store->get_run(plain.id)->state, RunState::Complete);
  EXPECT_TRUE(store->list_webhooks(plain.id).empty());

  l = must_lease(T0 + 20);
  ASSERT_EQ(l.run.id, done.id);
  EXPECT_TRUE(store->list_webhooks(done.id).empty());  // RUNNING is not terminal
  store->set_run_provenance(done.id, {{"engine", "x"}}, T0 + 21);
  auto r1 = store->complete_task(l.task.id, l.task.lease_token, {{"bam", "d"}}, T0 + 22);
  ASSERT_EQ(r1.run_state, RunState::Complete);
  auto r2 = store->complete_task(l.task.id, l.task.lease_token, {{"bam", "d"}}, T0 + 23);
  EXPECT_TRUE(r2.duplicate);
  auto events = store->list_webhooks(done.id);
  ASSERT_EQ(events.size(), 1u);  // exactly one, the duplicate completion adds none
  const WebhookDelivery e = events[0];
  EXPECT_GT(e.id, 0);
  EXPECT_EQ(e.run_id, done.id);
  EXPECT_EQ(e.url, cb);
  EXPECT_EQ(e.state, RunState::Complete);
  EXPECT_EQ(e.status, WebhookStatus::Pending);
  EXPECT_EQ(e.created_at, T0 + 22);
  EXPECT_EQ(e.next_attempt_at, T0 + 22);
  EXPECT_EQ(e.attempts, 0);
  EXPECT_TRUE(e.last_error.empty());
  EXPECT_FALSE(e.delivered_at);
  EXPECT_FALSE(store->cancel_run(done.id, T0 + 24));  // terminal: unchanged, no event
  EXPECT_EQ(store->list_webhooks(done.id).size(), 1u);

  // Cancel, resume, fail for good: one event per terminal transition, ids increasing.
  auto other = submit("call", "", T0 + 30, cb).run;
  EXPECT_TRUE(store->cancel_run(other.id, T0 + 31));
  EXPECT_TRUE(store->resume_run(other.id, T0 + 32));
  auto lo = must_lease(T0 + 33);
  ASSERT_EQ(lo.run.id, other.id);
  store->fail_task(lo.task.id, lo.task.lease_token, "bad contig", false, T0 + 34);
  events = store->list_webhooks(other.id);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].state, RunState::Canceled);
  EXPECT_EQ(events[0].created_at, T0 + 31);
  EXPECT_EQ(events[1].state, RunState::Failed);
  EXPECT_EQ(events[1].created_at, T0 + 34);
  EXPECT_LT(events[0].id, events[1].id);
  EXPECT_GT(events[0].id, e.id);

  // A lease that expires with its attempts exhausted fails the run: an event too.
  NewRun r;
  r.workflow = "align";
  r.callback_url = cb;
  r.tasks = {spec("align", "align", {}, 1)};
  auto expiring = store->create_run(r, T0 + 40).run;
  must_lease(T0 + 41);
  EXPECT_EQ(store->expire_leases(T0 + 41 + 60'001), 1);
  events = store->list_webhooks(expiring.id);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, RunState::Failed);
  EXPECT_TRUE(store->list_webhooks("run-missing").empty());
}

TEST_P(StoreTest, WebhookClaimAndRecord) {
  const std::string cb = "http://127.0.0.1:9/hook";
  std::vector<std::string> runs;
  for (int i = 0; i < 3; ++i) {
    runs.push_back(submit("align", "", T0 + i, cb).run.id);
    ASSERT_TRUE(store->cancel_run(runs.back(), T0 + 100 + i));  // events due at T0+100, +101, +102
  }
  EXPECT_TRUE(store->claim_webhooks(10, 30'000, T0 + 99).empty());  // none due yet
  auto c1 = store->claim_webhooks(2, 30'000, T0 + 200);
  ASSERT_EQ(c1.size(), 2u);  // the limit, oldest first
  EXPECT_EQ(c1[0].run_id, runs[0]);
  EXPECT_EQ(c1[1].run_id, runs[1]);
  for (const auto& w : c1) {
    EXPECT_EQ(w.next_attempt_at, T0 + 200 + 30'000);
    EXPECT_EQ(w.status, WebhookStatus::Pending);
    EXPECT_EQ(store->list_webhooks(w.run_id)[0].next_attempt_at, T0 + 200 + 30'000);  // stored
  }
  auto c2 = store->claim_webhooks(10, 30'000, T0 + 201);  // the claimed two are not handed out again
  ASSERT_EQ(c2.size(), 1u);
  EXPECT_EQ(c2[0].run_id, runs[2]);
  EXPECT_TRUE(store->claim_webhooks(10, 30'000, T0 + 202).empty());

  // Delivered: settled for good.
  store->record_webhook_attempt(c1[0].id, true, "", 0, T0 + 300);
  auto w0 = store->list_webhooks(runs[0])[0];
  EXPECT_EQ(w0.status, WebhookStatus::Delivered);
  EXPECT_EQ(w0.attempts, 1);
  EXPECT_EQ(*w0.delivered_at, T0 + 300);
  EXPECT_TRUE(w0.last_error.empty());
  // Failed with a retry time: pending again, due at retry_at, not before.
  store->record_webhook_attempt(c1[1].id, false, "HTTP 503", T0 + 5000, T0 + 301);
  auto w1 = store->list_webhooks(runs[1])[0];
  EXPECT_EQ(w1.status, WebhookStatus::Pending);
  EXPECT_EQ(w1.attempts, 1);
  EXPECT_EQ(w1.last_error, "HTTP 503");
  EXPECT_EQ(w1.next_attempt_at, T0 + 5000);
  EXPECT_FALSE(w1.delivered_at);
  // Given up (retry_at 0): FAILED.
  store->record_webhook_attempt(c2[0].id, false, "connection refused", 0, T0 + 302);
  auto w2 = store->list_webhooks(runs[2])[0];
  EXPECT_EQ(w2.status, WebhookStatus::Failed);
  EXPECT_EQ(w2.attempts, 1);
  EXPECT_EQ(w2.last_error, "connection refused");

  EXPECT_TRUE(store->claim_webhooks(10, 30'000, T0 + 4999).empty());
  // After the claim lapses (here: the retry time) the event is handed out again, and only it.
  auto c3 = store->claim_webhooks(10, 30'000, T0 + 5000);
  ASSERT_EQ(c3.size(), 1u);
  EXPECT_EQ(c3[0].id, c1[1].id);
  EXPECT_EQ(c3[0].attempts, 1);
  store->record_webhook_attempt(c3[0].id, true, "", 0, T0 + 5001);
  EXPECT_EQ(store->list_webhooks(runs[1])[0].attempts, 2);
  EXPECT_EQ(store->list_webhooks(runs[1])[0].status, WebhookStatus::Delivered);
  EXPECT_TRUE(store->list_webhooks(runs[1])[0].last_error.empty());
  // Recording on a settled event changes nothing (another daemon got there first).
  store->record_webhook_attempt(c1[0].id, false, "late", T0 + 9000, T0 + 6000);
  auto again = store->list_webhooks(runs[0])[0];
  EXPECT_EQ(again.status, WebhookStatus::Delivered);
  EXPECT_EQ(again.attempts, 1);
  EXPECT_TRUE(store->claim_webhooks(10, 30'000, T0 + 1'000'000).empty());
  EXPECT_THROW(store->record_webhook_attempt(987654, true, "", 0, T0), NotFoundError);
}

// ---- PostgreSQL only: several daemons (connections) sharing one database ----

// Two stores = two daemons, 4 threads each, leasing and completing until nothing is left: every
// task is leased exactly once (germline runs unlock call and qc as align and call complete).
TEST_F(PostgresStoreTest, TwoDaemonsLeaseEachTaskExactlyOnce) {
  constexpr int kGermline = 40, kAlign = 60;
  for (int i = 0; i < kGermline; ++i) submit("germline", "", T0 + i);
  for (int i = 0; i < kAlign; ++i) submit("align", "", T0 + i);
  constexpr size_t kTotal = kGermline * 3 + kAlign;
  std::vector<std::unique_ptr<JobStore>> daemons;
  daemons.push_back(another());
  daemons.push_back(another());
  std::mutex mu;
  std::vector<std::string> leased;
  int per_daemon[2] = {0, 0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      JobStore& s = *daemons[t % 2];
      const std::string worker = "d" + std::to_string(t % 2) + "-w" + std::to_string(t);
      try {
        // A lock held by a concurrent lease or completion can hide a task for a moment: stop only
        // after several empty answers in a row.
        for (int empty = 0; empty < 20;) {
          auto l = s.lease_task(worker, {}, 60, T0 + 10'000);
          if (!l) {
            ++empty;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            continue;
          }
          empty = 0;
          {
            std::lock_guard<std::mutex> lock(mu);
            leased.push_back(l->task.id);
            ++per_daemon[t % 2];
          }
          s.complete_task(l->task.id, l->task.lease_token, {{"by", worker}}, T0 + 10'001);
        }
      } catch (const std::exception& e) {
        ++errors;
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  std::set<std::string> unique(leased.begin(), leased.end());
  EXPECT_EQ(unique.size(), leased.size()) << "a task was leased twice";
  EXPECT_EQ(leased.size(), kTotal);
  EXPECT_GT(per_daemon[0], 0);
  EXPECT_GT(per_daemon[1], 0);
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM leases"), static_cast<int64_t>(kTotal));
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM tasks WHERE attempts <> 1 OR state <> 'COMPLETE'"), 0);
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM runs WHERE state <> 'COMPLETE'"), 0);
}

// The same Idempotency-Key sent to 8 daemons at once: one run, seven "existed".
TEST_F(PostgresStoreTest, ConcurrentCreateWithOneIdempotencyKeyMakesOneRun) {
  constexpr int kThreads = 8, kRounds = 15;
  std::vector<std::unique_ptr<JobStore>> daemons;
  for (int i = 0; i < kThreads; ++i) daemons.push_back(another());
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "race-" + std::to_string(round);
    std::atomic<int> ready{0};
    std::vector<CreateRunResult> results(kThreads);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        NewRun r;
        r.workflow = "germline";
        r.idempotency_key = key;
        ++ready;
        while (ready.load() < kThreads) {
        }
        try {
          results[t] = daemons[t]->create_run(r, T0 + round);
        } catch (const std::exception& e) {
          errors[t] = e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
    int created = 0;
    for (int t = 0; t < kThreads; ++t) {
      ASSERT_EQ(errors[t], "") << "round " << round;
      EXPECT_EQ(results[t].run.id, results[0].run.id) << "round " << round;
      EXPECT_EQ(results[t].run.idempotency_key, key);
      created += results[t].existed ? 0 : 1;
    }
    EXPECT_EQ(created, 1) << "round " << round;
    EXPECT_EQ(store->list_tasks(results[0].run.id).size(), 3u);
  }
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM runs"), kRounds);
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM tasks"), kRounds * 3);
}

// 8 daemons opening one empty database at the same moment: the advisory lock lets one migrate;
// the others find the schema done. No error, each migration applied once.
TEST_F(PostgresStoreTest, ConcurrentOpensMigrateOnce) {
  store.reset();
  test::PostgresDatabase fresh;
  ASSERT_FALSE(fresh.url.empty());
  constexpr int kThreads = 8;
  std::atomic<int> ready{0};
  std::vector<std::unique_ptr<JobStore>> stores(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kThreads) {
      }
      try {
        stores[t] = open_job_store(fresh.url);
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << "store " << t;
    if (stores[t]) {
      EXPECT_EQ(stores[t]->schema_version(), kJobStoreSchemaVersion);
    }
  }
  auto versions = test::postgres_query(fresh.url, "SELECT version FROM schema_version ORDER BY version");
  std::vector<std::string> every_version;
  for (int v = 1; v <= kJobStoreSchemaVersion; ++v) every_version.push_back(std::to_string(v));
  EXPECT_EQ(versions, every_version);
  // Every store works on the shared schema.
  NewRun r;
  r.workflow = "align";
  auto run = stores[0]->create_run(r, T0).run;
  EXPECT_TRUE(stores[kThreads - 1]->get_run(run.id));
}

// Two daemons sweeping expired leases and completing the same task at once: nothing is applied
// twice (each expiry counted once, one non-duplicate completion, one webhook event per run).
TEST_F(PostgresStoreTest, ConcurrentExpiryAndCompletionApplyOnce) {
  const std::string cb = "http://127.0.0.1:9/hook";
  constexpr int kRuns = 40;
  std::vector<std::string> expiring, completing;
  for (int i = 0; i < kRuns; ++i) {
    NewRun r;
    r.workflow = "align";
    r.callback_url = cb;
    r.tasks = {spec("align", "align", {}, 1)};
    expiring.push_back(store->create_run(r, T0 + i).run.id);
  }
  for (int i = 0; i < kRuns; ++i) must_lease(T0 + 100);
  for (int i = 0; i < kRuns; ++i) completing.push_back(submit("align", "", T0 + 200 + i, cb).run.id);
  std::vector<LeasedTask> to_complete;
  for (int i = 0; i < kRuns; ++i) to_complete.push_back(must_lease(T0 + 300));

  std::vector<std::unique_ptr<JobStore>> daemons;
  for (int i = 0; i < 4; ++i) daemons.push_back(another());
  std::atomic<int> expired{0}, fresh_completions{0}, errors{0};
  std::atomic<int> ready{0}, expiries_done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < 4) {
      }
      try {
        // Leases of the first batch expired at T0+100+60s; the second batch's are still valid.
        expired += daemons[t]->expire_leases(T0 + 100 + 60'001);
        ++expiries_done;
        while (expiries_done.load() < 4) {
        }
        // All four complete the same tasks in the same order, so they collide on each one.
        for (int k = 0; k < kRuns; ++k) {
          const LeasedTask& l = to_complete[k];
          auto r = daemons[t]->complete_task(l.task.id, l.task.lease_token, {{"bam", l.task.id}}, T0 + 400);
          if (!r.duplicate) ++fresh_completions;
          EXPECT_EQ(r.run_state, RunState::Complete);
        }
      } catch (const std::exception& e) {
        ++errors;
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(expired.load(), kRuns);
  EXPECT_EQ(fresh_completions.load(), kRuns);
  for (const std::string& id : expiring) {
    EXPECT_EQ(store->get_run(id)->state, RunState::Failed);
    auto w = store->list_webhooks(id);
    ASSERT_EQ(w.size(), 1u) << id;
    EXPECT_EQ(w[0].state, RunState::Failed);
  }
  for (const std::string& id : completing) {
    EXPECT_EQ(store->get_run(id)->state, RunState::Complete);
    auto w = store->list_webhooks(id);
    ASSERT_EQ(w.size(), 1u) << id;
    EXPECT_EQ(w[0].state, RunState::Complete);
  }
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM leases WHERE outcome = 'EXPIRED'"), kRuns);
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM leases WHERE outcome = 'COMPLETE'"), kRuns);
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM webhooks"), 2 * kRuns);
}

// Two daemons' notifiers claiming at once never get the same event.
TEST_F(PostgresStoreTest, ConcurrentClaimsNeverShareAnEvent) {
  constexpr int kEvents = 60;
  for (int i = 0; i < kEvents; ++i) {
    auto run = submit("align", "", T0 + i, "http://127.0.0.1:9/hook").run;
    ASSERT_TRUE(store->cancel_run(run.id, T0 + 100));
  }
  std::vector<std::unique_ptr<JobStore>> daemons;
  for (int i = 0; i < 4; ++i) daemons.push_back(another());
  std::mutex mu;
  std::vector<int64_t> claimed;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (;;) {
          auto got = daemons[t]->claim_webhooks(3, 60'000, T0 + 1000);
          if (got.empty()) break;
          std::lock_guard<std::mutex> lock(mu);
          for (const auto& w : got) claimed.push_back(w.id);
        }
      } catch (const std::exception& e) {
        ++errors;
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  std::set<int64_t> unique(claimed.begin(), claimed.end());
  EXPECT_EQ(unique.size(), claimed.size()) << "an event was claimed twice";
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kEvents));
}

// A dropped connection (server restart, idle kill) is re-established by the next call.
TEST_F(PostgresStoreTest, ReconnectsAfterTheConnectionIsLost) {
  auto run = submit().run;
  auto kill_store_connections = [&] {
    auto killed =
        sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()");
    ASSERT_EQ(killed.size(), 1u);
  };
  kill_store_connections();
  auto got = store->get_run(run.id);  // a read outside a transaction
  ASSERT_TRUE(got);
  EXPECT_EQ(got->id, run.id);
  kill_store_connections();
  auto l = must_lease(T0 + 1);  // a write transaction
  EXPECT_EQ(l.run.id, run.id);
  kill_store_connections();
  EXPECT_EQ(store->list_tasks(run.id).size(), 3u);  // a read transaction
  kill_store_connections();
  EXPECT_EQ(store->schema_version(), kJobStoreSchemaVersion);
}

TEST_F(PostgresStoreTest, DescribeHidesThePassword) {
  // Trust authentication ignores the password, so the store opens; it must not be shown.
  std::string with_pw = url;
  const size_t at = with_pw.find('@');
  ASSERT_NE(at, std::string::npos) << url;
  with_pw.insert(at, ":hunter2-secret");
  auto s = open_job_store(with_pw);
  EXPECT_EQ(s->describe().find("hunter2"), std::string::npos) << s->describe();
  EXPECT_EQ(s->describe().rfind("postgres://", 0), 0u) << s->describe();
  EXPECT_NE(s->describe().find("@127.0.0.1:"), std::string::npos) << s->describe();
  EXPECT_NE(s->describe().find("/" + pg->name), std::string::npos) << s->describe();
  EXPECT_EQ(s->schema_version(), kJobStoreSchemaVersion);
}

}  // namespace
