// The embedded job store: one SQLite file in WAL mode, synchronous=FULL (a committed run survives
// kill -9 and power loss), one connection guarded by a mutex, every mutating operation in one
// BEGIN IMMEDIATE transaction (so several processes may share the file safely as well).
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <set>

#include "service/job_store.hpp"
#include "service/job_store_rows.hpp"

namespace omicsd {
namespace {

using nlohmann::json;

// Versioned migrations: kMigrations[i] takes the schema from version i to i + 1.
const char* const kMigrations[] = {
    // v1
    R"SQL(
CREATE TABLE runs (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  id              TEXT NOT NULL UNIQUE,
  workflow        TEXT NOT NULL CHECK (workflow IN ('germline','align','call')),
  inputs          TEXT NOT NULL,
  parameters      TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('QUEUED','RUNNING','COMPLETE','FAILED','CANCELED')),
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  callback_url    TEXT,
  idempotency_key TEXT UNIQUE,
  failure_reason  TEXT,
  outputs         TEXT NOT NULL DEFAULT '{}',
  provenance      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_by_state ON runs(state, seq);
CREATE INDEX runs_by_workflow ON runs(workflow, seq);
CREATE TABLE tasks (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,
  id               TEXT NOT NULL UNIQUE,
  run_id           TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name             TEXT NOT NULL,
  kind             TEXT NOT NULL CHECK (kind IN ('align','call','qc')),
  state            TEXT NOT NULL CHECK (state IN ('QUEUED','RUNNING','COMPLETE','FAILED','CANCELED')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
  parameters       TEXT NOT NULL,
  requirements     TEXT NOT NULL,
  cache_key        TEXT,
  outputs          TEXT,
  last_error       TEXT,
  queued_at        INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  not_before       INTEGER NOT NULL DEFAULT 0,
  worker_id        TEXT,
  lease_token      TEXT,
  lease_expires_at INTEGER,
  UNIQUE (run_id, name)
);
CREATE INDEX tasks_by_run ON tasks(run_id, seq);
CREATE INDEX tasks_queue ON tasks(state, queued_at, seq);
CREATE INDEX tasks_leases ON tasks(state, lease_expires_at);
CREATE TABLE task_deps (
  task_id    TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  depends_on TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  pos        INTEGER NOT NULL,
  PRIMARY KEY (task_id, depends_on)
);
CREATE TABLE leases (
  token      TEXT PRIMARY KEY,
  task_id    TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  worker_id  TEXT NOT NULL,
  attempt    INTEGER NOT NULL,
  leased_at  INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  outcome    TEXT CHECK (outcome IN ('COMPLETE','RETRY','FAILED','EXPIRED','CANCELED')),
  outcome_at INTEGER,
  error      TEXT
);
CREATE INDEX leases_by_task ON leases(task_id);
CREATE TABLE cache (
  cache_key  TEXT PRIMARY KEY,
  outputs    TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
)SQL",
    // v2: webhook outbox. The trigger writes the event in the transaction that ends the run, so
    // every code path that makes a run terminal (complete, fail, expire, cancel, resume) is covered.
    R"SQL(
CREATE TABLE webhooks (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id          TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  url             TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('COMPLETE','FAILED','CANCELED')),
  created_at      INTEGER NOT NULL,
  status          TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING','DELIVERED','FAILED')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  delivered_at    INTEGER
);
CREATE INDEX webhooks_due ON webhooks(status, next_attempt_at, id);
CREATE INDEX webhooks_by_run ON webhooks(run_id, id);
CREATE TRIGGER runs_terminal_webhook AFTER UPDATE OF state ON runs
WHEN NEW.state IN ('COMPLETE','FAILED','CANCELED') AND OLD.state <> NEW.state
     AND NEW.callback_url IS NOT NULL AND NEW.callback_url <> ''
BEGIN
  INSERT INTO webhooks (run_id, url, state, created_at, next_attempt_at)
  VALUES (NEW.id, NEW.callback_url, NEW.state, NEW.updated_at, NEW.updated_at);
END;
)SQL",
};
constexpr int kKnownVersion = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));
static_assert(kKnownVersion == kJobStoreSchemaVersion);

using namespace job_store_rows;  // kRunCols, kTaskCols, kWebhookCols, *_from_row

class Db;

class Stmt {
 public:
  Stmt(Db& db, const std::string& sql, const char* op);
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(st_, i, v));
    return *this;
  }
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
  Stmt& bind_null(int i) {
    check(sqlite3_bind_null(st_, i));
    return *this;
  }
  // Empty string -> NULL (optional text columns).
  Stmt& bind_opt(int i, const std::string& v) { return v.empty() ? bind_null(i) : bind(i, v); }

  bool step();  // true while a row is available
  void run() {
    while (step()) {
    }
  }
  bool null(int c) const { return sqlite3_column_type(st_, c) == SQLITE_NULL; }
  int64_t i64(int c) const { return sqlite3_column_int64(st_, c); }
  std::optional<int64_t> opt_i64(int c) const {
    return null(c) ? std::nullopt : std::optional<int64_t>(i64(c));
  }
  std::string text(int c) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st_, c))) : std::string();
  }
  json js(int c) const;

 private:
  void check(int rc);
  Db& db_;
  const char* op_;
  sqlite3_stmt* st_ = nullptr;
};

class Db {
 public:
  Db(std::string path, int busy_timeout_ms) : path_(std::move(path)) {
    int rc = sqlite3_open_v2(path_.c_str(), &db_,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      db_ = nullptr;
      throw Error("job store " + path_ + ": open: " + msg);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, busy_timeout_ms);
  }
  ~Db() { sqlite3_close(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  [[noreturn]] void fail(const char* op, int rc) const {
    std::string msg = sqlite3_errmsg(db_);
    if (msg.empty() || msg == "not an error") msg = sqlite3_errstr(rc);
    throw Error("job store " + path_ + ": " + op + ": " + msg);
  }
  void exec(const std::string& sql, const char* op) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      throw Error("job store " + path_ + ": " + op + ": " + msg);
    }
  }
  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }
  int changes() const { return sqlite3_changes(db_); }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

Stmt::Stmt(Db& db, const std::string& sql, const char* op) : db_(db), op_(op) {
  int rc = sqlite3_prepare_v2(db.handle(), sql.c_str(), static_cast<int>(sql.size()), &st_, nullptr);
  if (rc != SQLITE_OK) db.fail(op, rc);
}
void Stmt::check(int rc) {
  if (rc != SQLITE_OK) db_.fail(op_, rc);
}
bool Stmt::step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail(op_, rc);
}
json Stmt::js(int c) const {
  if (null(c)) return json();
  std::string t = text(c);
  try {
    return json::parse(t);
  } catch (const json::exception& e) {
    throw Error("job store " + db_.path() + ": " + op_ + ": column '" + sqlite3_column_name(st_, c) +
                "' holds invalid JSON: " + e.what());
  }
}

// BEGIN IMMEDIATE (writers) or BEGIN (consistent multi-statement reads); rolls back unless
// committed.
class Tx {
 public:
  Tx(Db& db, const char* op, bool immediate = true) : db_(db), op_(op) {
    db_.exec(immediate ? "BEGIN IMMEDIATE" : "BEGIN", op_);
  }
  ~Tx() {
    if (!done_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    db_.exec("COMMIT", op_);
    done_ = true;
  }

 private:
  Db& db_;
  const char* op_;
  bool done_ = false;
};

int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

class SqliteJobStore final : public JobStore {
 public:
  SqliteJobStore(const std::string& path, const JobStoreOptions& opts)
      : opts_(opts), db_(path, opts.busy_timeout_ms) {
    {
      Stmt st(db_, "PRAGMA journal_mode=WAL", "enable WAL");
      std::string mode = st.step() ? st.text(0) : "";
      if (mode != "wal") throw Error("job store " + path + ": enable WAL: journal mode is '" + mode + "'");
    }
    db_.exec("PRAGMA synchronous=FULL", "set synchronous=FULL");
    db_.exec("PRAGMA foreign_keys=ON", "enable foreign keys");
    migrate();
  }

  std::string describe() const override { return "sqlite:" + db_.path(); }

  Counts counts() override {
    Counts c;
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "count runs";
    Tx tx(db_, op, false);
    {
      Stmt st(db_, "SELECT state, COUNT(*) FROM runs GROUP BY state", op);
      while (st.step()) c.runs[parse_run_state(st.text(0))] = st.i64(1);
    }
    {
      Stmt st(db_,
              "SELECT COUNT(*) FROM tasks t JOIN runs r ON r.id = t.run_id WHERE t.state = 'QUEUED' AND "
              "r.state IN ('QUEUED', 'RUNNING')",
              op);
      if (st.step()) c.queued_tasks = st.i64(0);
    }
    tx.commit();
    return c;
  }

  int schema_version() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version", "read schema version");
    return st.step() ? static_cast<int>(st.i64(0)) : 0;
  }

  CreateRunResult create_run(const NewRun& req, int64_t now) override {
    std::vector<TaskSpec> tasks = req.tasks.empty() ? default_tasks(req.workflow) : req.tasks;
    validate_new_run(req, tasks);
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "create run";
    Tx tx(db_, op);
    if (!req.idempotency_key.empty()) {
      Stmt st(db_, "SELECT id FROM runs WHERE idempotency_key = ?", op);
      st.bind(1, req.idempotency_key);
      if (st.step()) {
        CreateRunResult r{*load_run(st.text(0)), true};
        tx.commit();
        return r;
      }
    }
    std::string run_id = "run-" + random_hex(16);
    {
      Stmt st(db_,
              "INSERT INTO runs (id, workflow, inputs, parameters, state, created_at, updated_at, "
              "callback_url, idempotency_key, provenance) VALUES (?, ?, ?, ?, 'QUEUED', ?, ?, ?, ?, ?)",
              op);
      st.bind(1, run_id).bind(2, req.workflow).bind(3, req.inputs.dump());
      st.bind(4, req.parameters.dump()).bind(5, now).bind(6, now);
      st.bind_opt(7, req.callback_url).bind_opt(8, req.idempotency_key);
      st.bind(9, (req.provenance.is_object() ? req.provenance : json::object()).dump());
      st.run();
    }
    for (const TaskSpec& t : tasks) {
      std::string task_id = run_id + "/" + t.name;
      Stmt st(db_,
              "INSERT INTO tasks (id, run_id, name, kind, state, max_attempts, parameters, "
              "requirements, cache_key, queued_at) VALUES (?, ?, ?, ?, 'QUEUED', ?, ?, ?, ?, ?)",
              op);
      st.bind(1, task_id).bind(2, run_id).bind(3, t.name).bind(4, t.kind);
      st.bind(5, t.max_attempts).bind(6, t.parameters.dump()).bind(7, t.requirements.dump());
      st.bind_opt(8, t.cache_key).bind(9, now);
      st.run();
      int pos = 0;
      for (const std::string& dep : t.depends_on) {
        Stmt d(db_, "INSERT INTO task_deps (task_id, depends_on, pos) VALUES (?, ?, ?)", op);
        d.bind(1, task_id).bind(2, run_id + "/" + dep).bind(3, pos++);
        d.run();
      }
    }
    CreateRunResult r{*load_run(run_id), false};
    tx.commit();
    return r;
  }

  std::optional<Run> get_run(const std::string& run_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    return load_run(run_id);
  }

  RunPage list_runs(const RunFilter& f) override {
    int page_size = std::clamp(f.page_size, 1, 1000);
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "list runs";
    Tx tx(db_, op, false);
    std::string sql = std::string("SELECT ") + kRunCols + " FROM runs WHERE 1 = 1";
    if (f.state) sql += " AND state = ?";
    if (f.workflow) sql += " AND workflow = ?";
    if (!f.page_token.empty()) {
      Stmt st(db_, "SELECT 1 FROM runs WHERE id = ?", op);
      st.bind(1, f.page_token);
      if (!st.step()) throw InputError("invalid page token '" + f.page_token + "'");
      sql += " AND seq > (SELECT seq FROM runs WHERE id = ?)";
    }
    sql += " ORDER BY seq LIMIT ?";
    Stmt st(db_, sql, op);
    int i = 1;
    if (f.state) st.bind(i++, to_string(*f.state));
    if (f.workflow) st.bind(i++, *f.workflow);
    if (!f.page_token.empty()) st.bind(i++, f.page_token);
    st.bind(i, page_size + 1);
    RunPage page;
    while (st.step()) page.runs.push_back(run_from_row(st));
    if (static_cast<int>(page.runs.size()) > page_size) {
      page.runs.pop_back();
      page.next_page_token = page.runs.back().id;
    }
    tx.commit();
    return page;
  }

  std::vector<Task> list_tasks(const std::string& run_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Tx tx(db_, "list tasks", false);
    std::vector<Task> out;
    {
      Stmt st(db_, std::string("SELECT ") + kTaskCols + " FROM tasks WHERE run_id = ? ORDER BY seq",
              "list tasks");
      st.bind(1, run_id);
      while (st.step()) out.push_back(task_from_row(st));
    }
    for (Task& t : out) t.depends_on = load_deps(t.id);
    tx.commit();
    return out;
  }

  std::optional<Task> get_task(const std::string& task_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Tx tx(db_, "get task", false);
    auto t = load_task(task_id);
    tx.commit();
    return t;
  }

  bool cancel_run(const std::string& run_id, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "cancel run";
    Tx tx(db_, op);
    RunState state = run_state(run_id, op);
    if (is_terminal(state)) return false;
    stop_unfinished_tasks(run_id, now, op);
    Stmt st(db_, "UPDATE runs SET state = 'CANCELED', updated_at = ? WHERE id = ?", op);
    st.bind(1, now).bind(2, run_id).run();
    tx.commit();
    return true;
  }

  bool resume_run(const std::string& run_id, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "resume run";
    Tx tx(db_, op);
    RunState state = run_state(run_id, op);
    if (state != RunState::Failed && state != RunState::Canceled) return false;
    Stmt t(db_,
           "UPDATE tasks SET state = 'QUEUED', attempts = 0, not_before = 0, queued_at = ?, "
           "started_at = NULL, finished_at = NULL, lease_expires_at = NULL "
           "WHERE run_id = ? AND state <> 'COMPLETE'",
           op);
    t.bind(1, now).bind(2, run_id).run();
    const char* next = db_.changes() > 0 ? "QUEUED" : "COMPLETE";
    Stmt r(db_, "UPDATE runs SET state = ?, failure_reason = NULL, updated_at = ? WHERE id = ?", op);
    r.bind(1, next).bind(2, now).bind(3, run_id).run();
    tx.commit();
    return true;
  }

  void set_run_provenance(const std::string& run_id, const json& patch, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "set run provenance";
    Tx tx(db_, op);
    auto run = load_run(run_id);
    if (!run) throw NotFoundError("run " + run_id + " not found");
    json prov = run->provenance.is_object() ? run->provenance : json::object();
    prov.merge_patch(patch);
    Stmt st(db_, "UPDATE runs SET provenance = ?, updated_at = ? WHERE id = ?", op);
    st.bind(1, prov.dump()).bind(2, now).bind(3, run_id).run();
    tx.commit();
  }

  std::optional<LeasedTask> lease_task(const std::string& worker_id, const json& capabilities,
                                       int64_t lease_seconds, int64_t now) override {
    if (lease_seconds <= 0) throw InputError("lease_seconds must be positive");
    if (worker_id.empty()) throw InputError("worker id is empty");
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "lease task";
    Tx tx(db_, op);
    std::string chosen;
    {
      Stmt st(db_,
              "SELECT t.id, t.requirements FROM tasks t JOIN runs r ON r.id = t.run_id "
              "WHERE t.state = 'QUEUED' AND t.not_before <= ? AND r.state IN ('QUEUED','RUNNING') "
              "AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks u ON u.id = d.depends_on "
              "                WHERE d.task_id = t.id AND u.state <> 'COMPLETE') "
              "ORDER BY t.queued_at, t.seq",
              op);
      st.bind(1, now);
      while (st.step()) {
        if (capabilities_satisfy(capabilities, st.js(1))) {
          chosen = st.text(0);
          break;
        }
      }
    }
    if (chosen.empty()) return std::nullopt;
    std::string token = random_hex(32);
    int64_t expires = now + lease_seconds * 1000;
    {
      Stmt st(db_,
              "UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, started_at = ?, "
              "finished_at = NULL, worker_id = ?, lease_token = ?, lease_expires_at = ? "
              "WHERE id = ?",
              op);
      st.bind(1, now).bind(2, worker_id).bind(3, token).bind(4, expires).bind(5, chosen).run();
    }
    LeasedTask out;
    out.task = *load_task(chosen);
    {
      Stmt st(db_,
              "INSERT INTO leases (token, task_id, worker_id, attempt, leased_at, expires_at) "
              "VALUES (?, ?, ?, ?, ?, ?)",
              op);
      st.bind(1, token).bind(2, chosen).bind(3, worker_id).bind(4, out.task.attempts);
      st.bind(5, now).bind(6, expires).run();
    }
    {
      Stmt st(db_, "UPDATE runs SET state = 'RUNNING', updated_at = ? WHERE id = ? AND state = 'QUEUED'", op);
      st.bind(1, now).bind(2, out.task.run_id).run();
    }
    out.run = *load_run(out.task.run_id);
    tx.commit();
    return out;
  }

  Task heartbeat(const std::string& task_id, const std::string& lease_token, int64_t lease_seconds,
                 int64_t now) override {
    if (lease_seconds <= 0) throw InputError("lease_seconds must be positive");
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "heartbeat";
    Tx tx(db_, op);
    auto task = load_task(task_id);
    if (!task) throw NotFoundError("task " + task_id + " not found");
    if (task->state != TaskState::Running || task->lease_token != lease_token)
      throw LeaseError("task " + task_id + ": lease " + lease_token + " is not current (task is " +
                       to_string(task->state) + ")");
    int64_t expires = now + lease_seconds * 1000;
    Stmt st(db_, "UPDATE tasks SET lease_expires_at = ? WHERE id = ?", op);
    st.bind(1, expires).bind(2, task_id).run();
    Stmt l(db_, "UPDATE leases SET expires_at = ? WHERE token = ?", op);
    l.bind(1, expires).bind(2, lease_token).run();
    task->lease_expires_at = expires;
    tx.commit();
    return *task;
  }

  TaskResult complete_task(const std::string& task_id, const std::string& lease_token, const json& outputs,
                           int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "complete task";
    Tx tx(db_, op);
    Task task = current_lease_task(task_id, lease_token, op);
    std::string outcome = lease_outcome(lease_token, op);
    if (outcome == "COMPLETE") return result(task_id, false, true, tx);
    if (!outcome.empty())
      throw LeaseError("task " + task_id + ": lease " + lease_token + " already ended (" + outcome + ")");
    {
      Stmt st(db_,
              "UPDATE tasks SET state = 'COMPLETE', outputs = ?, finished_at = ?, "
              "lease_expires_at = NULL WHERE id = ?",
              op);
      st.bind(1, outputs.dump()).bind(2, now).bind(3, task_id).run();
    }
    end_lease(lease_token, "COMPLETE", "", now, op);
    if (!task.cache_key.empty()) {
      Stmt st(db_, "INSERT OR REPLACE INTO cache (cache_key, outputs, created_at) VALUES (?, ?, ?)", op);
      st.bind(1, task.cache_key).bind(2, outputs.dump()).bind(3, now).run();
    }
    auto run = load_run(task.run_id);
    json run_outputs = run->outputs.is_object() ? run->outputs : json::object();
    run_outputs[task.name] = outputs;
    {
      Stmt st(db_, "UPDATE runs SET outputs = ?, updated_at = ? WHERE id = ?", op);
      st.bind(1, run_outputs.dump()).bind(2, now).bind(3, task.run_id).run();
    }
    {
      Stmt st(db_,
              "UPDATE runs SET state = 'COMPLETE', updated_at = ? WHERE id = ? "
              "AND state IN ('QUEUED','RUNNING') AND NOT EXISTS "
              "(SELECT 1 FROM tasks WHERE run_id = ? AND state <> 'COMPLETE')",
              op);
      st.bind(1, now).bind(2, task.run_id).bind(3, task.run_id).run();
    }
    return result(task_id, false, false, tx);
  }

  TaskResult fail_task(const std::string& task_id, const std::string& lease_token, const std::string& error,
                       bool retryable, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "fail task";
    Tx tx(db_, op);
    Task task = current_lease_task(task_id, lease_token, op);
    std::string outcome = lease_outcome(lease_token, op);
    if (outcome == "RETRY" || outcome == "FAILED") return result(task_id, outcome == "RETRY", true, tx);
    if (!outcome.empty())
      throw LeaseError("task " + task_id + ": lease " + lease_token + " already ended (" + outcome + ")");
    bool retry = retryable && task.attempts < task.max_attempts;
    if (retry) {
      int shift = std::clamp(task.attempts - 1, 0, 40);
      int64_t backoff = std::min(opts_.retry_max_ms, opts_.retry_base_ms << shift);
      Stmt st(db_,
              "UPDATE tasks SET state = 'QUEUED', last_error = ?, not_before = ?, "
              "lease_expires_at = NULL WHERE id = ?",
              op);
      st.bind(1, error).bind(2, now + backoff).bind(3, task_id).run();
      end_lease(lease_token, "RETRY", error, now, op);
    } else {
      end_lease(lease_token, "FAILED", error, now, op);
      fail_task_and_run(task, error, now, op);
    }
    return result(task_id, retry, false, tx);
  }

  int expire_leases(int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "expire leases";
    Tx tx(db_, op);
    std::vector<Task> expired;
    {
      Stmt st(db_,
              std::string("SELECT ") + kTaskCols +
                  " FROM tasks WHERE state = 'RUNNING' AND lease_expires_at < ? ORDER BY seq",
              op);
      st.bind(1, now);
      while (st.step()) expired.push_back(task_from_row(st));
    }
    int n = 0;
    for (const Task& listed : expired) {
      // An earlier expiry in this sweep may have failed the run and so canceled this task: act
      // only on a task that still holds the lease that was listed.
      const auto now_task = load_task(listed.id);
      if (!now_task || now_task->state != TaskState::Running || now_task->lease_token != listed.lease_token)
        continue;
      const Task& t = *now_task;
      ++n;
      std::string error = "lease of worker " + t.worker_id + " expired (attempt " +
                          std::to_string(t.attempts) + " of " + std::to_string(t.max_attempts) + ")";
      end_lease(t.lease_token, "EXPIRED", error, now, op);
      if (t.attempts < t.max_attempts) {
        Stmt st(db_,
                "UPDATE tasks SET state = 'QUEUED', last_error = ?, not_before = ?, "
                "lease_expires_at = NULL WHERE id = ?",
                op);
        st.bind(1, error).bind(2, now).bind(3, t.id).run();
      } else {
        fail_task_and_run(t, error, now, op);
      }
    }
    tx.commit();
    return n;
  }

  void put_cache(const std::string& cache_key, const json& outputs, int64_t now) override {
    if (cache_key.empty()) throw InputError("cache key is empty");
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "put cache";
    Tx tx(db_, op);
    Stmt st(db_, "INSERT OR REPLACE INTO cache (cache_key, outputs, created_at) VALUES (?, ?, ?)", op);
    st.bind(1, cache_key).bind(2, outputs.dump()).bind(3, now).run();
    tx.commit();
  }

  std::optional<json> get_cache(const std::string& cache_key) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_, "SELECT outputs FROM cache WHERE cache_key = ?", "get cache");
    st.bind(1, cache_key);
    if (!st.step()) return std::nullopt;
    return st.js(0);
  }

  std::vector<WebhookDelivery> claim_webhooks(int limit, int64_t claim_ms, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "claim webhooks";
    Tx tx(db_, op);
    std::vector<WebhookDelivery> out;
    {
      Stmt st(
          db_,
          std::string("SELECT ") + kWebhookCols +
              " FROM webhooks WHERE status = 'PENDING' AND next_attempt_at <= ? ORDER BY next_attempt_at, id "
              "LIMIT ?",
          op);
      st.bind(1, now).bind(2, std::max(limit, 1));
      while (st.step()) out.push_back(webhook_from_row(st));
    }
    for (WebhookDelivery& w : out) {
      Stmt st(db_, "UPDATE webhooks SET next_attempt_at = ? WHERE id = ?", op);
      st.bind(1, now + claim_ms).bind(2, w.id).run();
      w.next_attempt_at = now + claim_ms;
    }
    tx.commit();
    return out;
  }

  void record_webhook_attempt(int64_t id, bool delivered, const std::string& error, int64_t retry_at,
                              int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "record webhook attempt";
    Tx tx(db_, op);
    {
      Stmt st(db_, "SELECT status FROM webhooks WHERE id = ?", op);
      st.bind(1, id);
      if (!st.step()) throw NotFoundError("webhook event " + std::to_string(id) + " not found");
      if (st.text(0) != "PENDING") return;  // already settled (a concurrent daemon delivered it)
    }
    const char* status = delivered ? "DELIVERED" : retry_at > 0 ? "PENDING" : "FAILED";
    Stmt st(db_,
            "UPDATE webhooks SET status = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
            "delivered_at = ? WHERE id = ?",
            op);
    st.bind(1, status).bind_opt(2, delivered ? std::string() : error).bind(3, retry_at > 0 ? retry_at : now);
    if (delivered)
      st.bind(4, now);
    else
      st.bind_null(4);
    st.bind(5, id).run();
    tx.commit();
  }

  std::vector<WebhookDelivery> list_webhooks(const std::string& run_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_, std::string("SELECT ") + kWebhookCols + " FROM webhooks WHERE run_id = ? ORDER BY id",
            "list webhooks");
    st.bind(1, run_id);
    std::vector<WebhookDelivery> out;
    while (st.step()) out.push_back(webhook_from_row(st));
    return out;
  }

 private:
  void migrate() {
    const char* op = "migrate schema";
    Tx tx(db_, op);
    db_.exec(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        "applied_at INTEGER NOT NULL)",
        op);
    int current = 0;
    {
      Stmt st(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version", op);
      if (st.step()) current = static_cast<int>(st.i64(0));
    }
    if (current > kKnownVersion)
      throw Error("job store " + db_.path() + ": open: database schema version " + std::to_string(current) +
                  " is newer than this omicsd supports (" + std::to_string(kKnownVersion) +
                  "); upgrade omicsd");
    for (int v = current; v < kKnownVersion; ++v) {
      db_.exec(kMigrations[v], op);
      Stmt st(db_, "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", op);
      st.bind(1, v + 1).bind(2, wall_ms()).run();
    }
    tx.commit();
  }

  std::optional<Run> load_run(const std::string& run_id) {
    Stmt st(db_, std::string("SELECT ") + kRunCols + " FROM runs WHERE id = ?", "get run");
    st.bind(1, run_id);
    if (!st.step()) return std::nullopt;
    return run_from_row(st);
  }

  std::vector<std::string> load_deps(const std::string& task_id) {
    Stmt st(db_, "SELECT depends_on FROM task_deps WHERE task_id = ? ORDER BY pos", "get task");
    st.bind(1, task_id);
    std::vector<std::string> out;
    while (st.step()) out.push_back(st.text(0));
    return out;
  }

  std::optional<Task> load_task(const std::string& task_id) {
    std::optional<Task> t;
    {
      Stmt st(db_, std::string("SELECT ") + kTaskCols + " FROM tasks WHERE id = ?", "get task");
      st.bind(1, task_id);
      if (!st.step()) return std::nullopt;
      t = task_from_row(st);
    }
    t->depends_on = load_deps(task_id);
    return t;
  }

  RunState run_state(const std::string& run_id, const char* op) {
    Stmt st(db_, "SELECT state FROM runs WHERE id = ?", op);
    st.bind(1, run_id);
    if (!st.step()) throw NotFoundError("run " + run_id + " not found");
    return parse_run_state(st.text(0));
  }

  // The task, after checking that lease_token is a lease of it and the latest one.
  Task current_lease_task(const std::string& task_id, const std::string& lease_token, const char* op) {
    auto task = load_task(task_id);
    if (!task) throw NotFoundError("task " + task_id + " not found");
    if (lease_token.empty() || task->lease_token != lease_token)
      throw LeaseError("task " + task_id + ": lease " + lease_token + " is not the task's current lease (" +
                       op + ")");
    return *task;
  }

  std::string lease_outcome(const std::string& token, const char* op) {
    Stmt st(db_, "SELECT outcome FROM leases WHERE token = ?", op);
    st.bind(1, token);
    if (!st.step()) throw LeaseError("unknown lease " + token);
    return st.text(0);
  }

  void end_lease(const std::string& token, const char* outcome, const std::string& error, int64_t now,
                 const char* op) {
    Stmt st(db_, "UPDATE leases SET outcome = ?, outcome_at = ?, error = ? WHERE token = ?", op);
    st.bind(1, outcome).bind(2, now).bind_opt(3, error).bind(4, token).run();
  }

  // Cancels the run's QUEUED and RUNNING tasks (their leases end CANCELED).
  void stop_unfinished_tasks(const std::string& run_id, int64_t now, const char* op) {
    Stmt l(db_,
           "UPDATE leases SET outcome = 'CANCELED', outcome_at = ? WHERE outcome IS NULL AND "
           "task_id IN (SELECT id FROM tasks WHERE run_id = ? AND state = 'RUNNING')",
           op);
    l.bind(1, now).bind(2, run_id).run();
    Stmt t(db_,
           "UPDATE tasks SET state = 'CANCELED', finished_at = ?, lease_expires_at = NULL "
           "WHERE run_id = ? AND state IN ('QUEUED','RUNNING')",
           op);
    t.bind(1, now).bind(2, run_id).run();
  }

  // The task FAILED for good: it fails its run with the error; the run's other unfinished tasks
  // are canceled (resume_run re-queues them).
  void fail_task_and_run(const Task& task, const std::string& error, int64_t now, const char* op) {
    {
      Stmt st(db_,
              "UPDATE tasks SET state = 'FAILED', last_error = ?, finished_at = ?, "
              "lease_expires_at = NULL WHERE id = ?",
              op);
      st.bind(1, error).bind(2, now).bind(3, task.id).run();
    }
    if (is_terminal(run_state(task.run_id, op))) return;
    stop_unfinished_tasks(task.run_id, now, op);
    std::string reason = "task " + task.name + " (" + task.kind + ") failed after " +
                         std::to_string(task.attempts) + " attempt" + (task.attempts == 1 ? "" : "s") + ": " +
                         error;
    Stmt st(db_, "UPDATE runs SET state = 'FAILED', failure_reason = ?, updated_at = ? WHERE id = ?", op);
    st.bind(1, reason).bind(2, now).bind(3, task.run_id).run();
  }

  TaskResult result(const std::string& task_id, bool retry, bool duplicate, Tx& tx) {
    TaskResult r;
    r.task = *load_task(task_id);
    r.run_state = run_state(r.task.run_id, "read run state");
    r.retry_scheduled = retry;
    r.duplicate = duplicate;
    tx.commit();
    return r;
  }

  JobStoreOptions opts_;
  std::mutex mu_;
  Db db_;
};

}  // namespace

std::unique_ptr<JobStore> open_sqlite_job_store(const std::string& path, const JobStoreOptions& opts) {
  return std::make_unique<SqliteJobStore>(path, opts);
}

}  // namespace omicsd
