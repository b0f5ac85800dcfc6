#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "service/job_store.hpp"
#include "tests/test_support.hpp"

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

struct StoreTest : ::testing::Test {
  test::TempDir dir;
  std::string db_path = (dir.path / "jobs.db").string();
  std::unique_ptr<JobStore> store = open_job_store("sqlite:" + db_path, options());

  static JobStoreOptions options() {
    JobStoreOptions o;
    o.retry_base_ms = 1000;
    return o;
  }
  CreateRunResult submit(const std::string& workflow = "germline", const std::string& key = "",
                         int64_t now = T0) {
    NewRun r;
    r.workflow = workflow;
    r.inputs = {{"read_set", "rs-1"}, {"reference", "ref-1"}};
    r.parameters = {{"min_qual", 20}};
    r.idempotency_key = key;
    return store->create_run(r, now);
  }
  LeasedTask must_lease(int64_t now, const std::string& worker = "w1") {
    auto l = store->lease_task(worker, json::object(), 60, now);
    if (!l) throw std::runtime_error("expected a leasable task");
    return *l;
  }
};

TEST_F(StoreTest, MigrationsAndIdempotentOpen) {
  EXPECT_EQ(store->schema_version(), kJobStoreSchemaVersion);
  std::string id = submit().run.id;
  store.reset();
  store = open_job_store(db_path);  // second open: no migration re-applied, data intact
  EXPECT_EQ(store->schema_version(), kJobStoreSchemaVersion);
  ASSERT_TRUE(store->get_run(id));
  EXPECT_NE(store->describe().find(db_path), std::string::npos);
  store.reset();

  // A database written by a newer omicsd is refused with a clear message.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_version VALUES (999, 0)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  try {
    open_job_store(db_path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("999"), std::string::npos) << msg;
    EXPECT_NE(msg.find("newer"), std::string::npos) << msg;
    EXPECT_NE(msg.find(db_path), std::string::npos) << msg;
  }
}

TEST_F(StoreTest, OpenErrorsNameThePath) {
  try {
    open_job_store((dir.path / "missing-dir" / "x.db").string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing-dir"), std::string::npos) << e.what();
  }
  EXPECT_THROW(open_job_store("postgres://localhost/omicsd"), Error);
}

TEST_F(StoreTest, WalAndPragmas) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_F(StoreTest, CreateGetAndTasks) {
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

TEST_F(StoreTest, ListFiltersAndPaging) {
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

TEST_F(StoreTest, IdempotencyKey) {
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

TEST_F(StoreTest, DependencyOrdering) {
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

TEST_F(StoreTest, OldestFirstAndCapabilities) {
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

TEST_F(StoreTest, LeaseHeartbeatCompleteIdempotency) {
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

TEST_F(StoreTest, RetriesWithBackoffAndStaleTokens) {
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

TEST_F(StoreTest, AttemptsExhaustedFailsRun) {
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

TEST_F(StoreTest, ExpireLeasesRequeues) {
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

TEST_F(StoreTest, Cancel) {
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

TEST_F(StoreTest, ResumeRerunsOnlyUnfinishedTasks) {
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

TEST_F(StoreTest, CacheAndProvenance) {
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
TEST_F(StoreTest, DurabilityAcrossCrash) {
  store.reset();
  for (int mode = 0; mode < 2; ++mode) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      try {
        auto s = open_job_store(db_path);
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
    auto s = open_job_store(db_path);
    for (const std::string& id : ids) {
      auto r = s->get_run(id);
      ASSERT_TRUE(r) << "run " << id << " lost (mode " << mode << ")";
      EXPECT_EQ(s->list_tasks(id).size(), 3u);
    }
  }
}

// 4 threads lease concurrently, first through one shared store, then through 4 separate
// connections to the same file: no task is ever handed out twice and none is missed.
TEST_F(StoreTest, ConcurrentLeasingNeverDuplicates) {
  constexpr int kTasks = 80;
  for (bool shared : {true, false}) {
    for (int i = 0; i < kTasks / 2; ++i) {
      submit("align", "", T0 + i);
      submit("call", "", T0 + i);
    }
    std::vector<std::unique_ptr<JobStore>> own;
    for (int i = 0; i < 4; ++i) own.push_back(shared ? nullptr : open_job_store(db_path));
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

}  // namespace
