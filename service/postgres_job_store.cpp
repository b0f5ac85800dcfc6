// The shared job store: PostgreSQL through libpq, behind the same JobStore interface (and with the
// same semantics) as the embedded SQLite store in sqlite_job_store.cpp. Several daemons may share
// one database. One connection per store guarded by a mutex; every mutating operation runs in one
// READ COMMITTED transaction that locks what it reads and then writes:
//
//   - A run's row lock guards the run and all of its tasks and leases: every operation that changes
//     a task first locks the run row (SELECT ... FOR UPDATE), then the task rows. Two daemons
//     completing, failing, expiring or cancelling at once therefore serialise per run and re-read
//     the rows after the lock, so nothing is applied twice.
//   - lease_task scans the leasable tasks without locks, filters them by requirements in C++, then
//     tries to lock each candidate together with its run (FOR UPDATE OF t, r SKIP LOCKED), re-checking
//     that it is still leasable. It never waits for a lock, so it takes part in no deadlock; a
//     candidate whose task or run another transaction holds is skipped.
//   - expire_leases locks the runs it touches in sorted order; claim_webhooks uses SKIP LOCKED.
//   - create_run inserts with ON CONFLICT (idempotency_key) DO NOTHING, so two daemons given the
//     same Idempotency-Key at once create one run.
// Deadlocks or serialisation failures reported by the server (not expected) retry the operation.
// A lost connection (server restart) is re-established once at the start of the next operation.
// Migrations run in one transaction under pg_advisory_xact_lock, so daemons starting together
// against a fresh database do not race.
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>

#include "service/job_store.hpp"
#include "service/job_store_rows.hpp"
#include "service/pg_url.hpp"

namespace omicsd {
namespace {

using nlohmann::json;

// Versioned migrations: kMigrations[i] takes the schema from version i to i + 1. The same tables,
// columns and constraints as the SQLite store (INTEGER -> BIGINT, AUTOINCREMENT -> BIGSERIAL; JSON
// is kept as TEXT and read back exactly as written).
const char* const kMigrations[] = {
    // v1
    R"SQL(
CREATE TABLE runs (
  seq             BIGSERIAL PRIMARY KEY,
  id              TEXT NOT NULL UNIQUE,
  workflow        TEXT NOT NULL CHECK (workflow IN ('germline','align','call')),
  inputs          TEXT NOT NULL,
  parameters      TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('QUEUED','RUNNING','COMPLETE','FAILED','CANCELED')),
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL,
  callback_url    TEXT,
  idempotency_key TEXT UNIQUE,
  failure_reason  TEXT,
  outputs         TEXT NOT NULL DEFAULT '{}',
  provenance      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_by_state ON runs(state, seq);
CREATE INDEX runs_by_workflow ON runs(workflow, seq);
CREATE TABLE tasks (
  seq              BIGSERIAL PRIMARY KEY,
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
  queued_at        BIGINT NOT NULL,
  started_at       BIGINT,
  finished_at      BIGINT,
  not_before       BIGINT NOT NULL DEFAULT 0,
  worker_id        TEXT,
  lease_token      TEXT,
  lease_expires_at BIGINT,
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
CREATE INDEX task_deps_by_dep ON task_deps(depends_on);
CREATE TABLE leases (
  token      TEXT PRIMARY KEY,
  task_id    TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  worker_id  TEXT NOT NULL,
  attempt    INTEGER NOT NULL,
  leased_at  BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  outcome    TEXT CHECK (outcome IN ('COMPLETE','RETRY','FAILED','EXPIRED','CANCELED')),
  outcome_at BIGINT,
  error      TEXT
);
CREATE INDEX leases_by_task ON leases(task_id);
CREATE TABLE cache (
  cache_key  TEXT PRIMARY KEY,
  outputs    TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
)SQL",
    // v2: webhook outbox. The trigger writes the event in the transaction that ends the run, so
    // every code path that makes a run terminal (complete, fail, expire, cancel, resume) is covered.
    // The function keeps the search_path it was created with, so it finds its table whatever the
    // session's search_path is.
    R"SQL(
CREATE TABLE webhooks (
  id              BIGSERIAL PRIMARY KEY,
  run_id          TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  url             TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('COMPLETE','FAILED','CANCELED')),
  created_at      BIGINT NOT NULL,
  status          TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING','DELIVERED','FAILED')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  last_error      TEXT,
  delivered_at    BIGINT
);
CREATE INDEX webhooks_due ON webhooks(status, next_attempt_at, id);
CREATE INDEX webhooks_by_run ON webhooks(run_id, id);
CREATE FUNCTION runs_terminal_webhook() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $fn$
BEGIN
  INSERT INTO webhooks (run_id, url, state, created_at, next_attempt_at)
  VALUES (NEW.id, NEW.callback_url, NEW.state, NEW.updated_at, NEW.updated_at);
  RETURN NULL;
END
$fn$;
CREATE TRIGGER runs_terminal_webhook AFTER UPDATE OF state ON runs FOR EACH ROW
WHEN (NEW.state IN ('COMPLETE','FAILED','CANCELED') AND OLD.state <> NEW.state
      AND NEW.callback_url IS NOT NULL AND NEW.callback_url <> '')
EXECUTE FUNCTION runs_terminal_webhook();
)SQL",
};
constexpr int kKnownVersion = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));
static_assert(kKnownVersion == kJobStoreSchemaVersion);

// pg_advisory_xact_lock key serialising migrations of one database ("omicsd" + 1).
constexpr int64_t kMigrationLockKey = 0x6f6d6963736401;

using namespace job_store_rows;  // kRunCols, kTaskCols, kWebhookCols, *_from_row

// A query parameter in text format; nullopt is SQL NULL.
using Param = std::optional<std::string>;
Param num(int64_t v) { return std::to_string(v); }
Param str(const std::string& v) { return v; }
Param opt_str(const std::string& v) { return v.empty() ? std::nullopt : Param(v); }  // "" -> NULL

// An error reported by the server, with its SQLSTATE (deadlocks are retried).
class PgError : public Error {
 public:
  PgError(const std::string& what, std::string sqlstate) : Error(what), sqlstate_(std::move(sqlstate)) {}
  bool retryable() const { return sqlstate_ == "40P01" || sqlstate_ == "40001"; }

 private:
  std::string sqlstate_;
};

using pg::describe_url;
using pg::redact;
using pg::trim;

class Conn;

// One query result; the row accessors read text-format values.
class Result {
 public:
  Result(PGresult* r, const Conn& conn, const char* op) : r_(r), conn_(conn), op_(op) {}
  ~Result() { PQclear(r_); }
  Result(Result&& o) noexcept : r_(o.r_), conn_(o.conn_), op_(o.op_) { o.r_ = nullptr; }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  int rows() const { return PQntuples(r_); }
  std::string command_status() const { return PQcmdStatus(r_); }
  int64_t affected() const {
    const char* s = PQcmdTuples(r_);
    return s && *s ? std::strtoll(s, nullptr, 10) : 0;
  }
  bool null(int row, int c) const { return PQgetisnull(r_, row, c) != 0; }
  std::string text(int row, int c) const {
    if (null(row, c)) return std::string();
    return std::string(PQgetvalue(r_, row, c), static_cast<size_t>(PQgetlength(r_, row, c)));
  }
  int64_t i64(int row, int c) const {
    return null(row, c) ? 0 : std::strtoll(PQgetvalue(r_, row, c), nullptr, 10);
  }
  std::optional<int64_t> opt_i64(int row, int c) const {
    return null(row, c) ? std::nullopt : std::optional<int64_t>(i64(row, c));
  }
  json js(int row, int c) const;

 private:
  PGresult* r_;
  const Conn& conn_;
  const char* op_;
};

// One row of a Result, read like the SQLite store's statement columns.
struct Row {
  const Result& r;
  int i;
  bool null(int c) const { return r.null(i, c); }
  std::string text(int c) const { return r.text(i, c); }
  int64_t i64(int c) const { return r.i64(i, c); }
  std::optional<int64_t> opt_i64(int c) const { return r.opt_i64(i, c); }
  json js(int c) const { return r.js(i, c); }
};

void ignore_notice(void*, const char*) {}  // "relation already exists, skipping" and the like

class Conn {
 public:
  Conn(const std::string& url, const JobStoreOptions& opts)
      : desc_(describe_url(url)), lock_timeout_ms_(std::max(opts.busy_timeout_ms, 0)) {
    if (desc_.empty()) {
      // The URL did not parse: say why without echoing it (it may hold a password).
      char* err = nullptr;
      PQconninfoOption* o = PQconninfoParse(url.c_str(), &err);
      std::string msg = redact(err ? trim(err) : "invalid connection string", url);
      PQconninfoFree(o);
      PQfreemem(err);
      throw Error("job store postgres: open: invalid connection URL: " + msg);
    }
    const std::string timeout = std::to_string(std::max(2, lock_timeout_ms_ / 1000));
    // Defaults first: settings in the URL itself override them.
    const char* keys[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
    const char* vals[] = {timeout.c_str(), "omicsd", url.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, vals, 1);
    if (!conn_) throw Error("job store " + desc_ + ": open: out of memory");
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = redact(trim(PQerrorMessage(conn_)), url);
      PQfinish(conn_);
      conn_ = nullptr;
      throw Error("job store " + desc_ + ": open: " + msg);
    }
    PQsetNoticeProcessor(conn_, ignore_notice, nullptr);
    configure_session("open");
  }
  ~Conn() { PQfinish(conn_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  const std::string& desc() const { return desc_; }

  // Reconnects once when the connection was lost (a server restart, a dropped socket).
  void ensure(const char* op) {
    if (PQstatus(conn_) == CONNECTION_OK) return;
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK)
      throw Error("job store " + desc_ + ": " + op + ": reconnect failed: " + trim(PQerrorMessage(conn_)));
    configure_session(op);
  }

  // One statement with parameters ($1, $2, ...); throws on anything but success.
  Result exec(const std::string& sql, const std::vector<Param>& params, const char* op) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
    PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                               nullptr, nullptr, 0);
    check(r, op);
    return Result(r, *this, op);
  }
  // For statements that are safe to run twice (BEGIN, reads outside a transaction): when the
  // connection turns out to be lost, reconnect once and run it again.
  Result exec_retry(const std::string& sql, const std::vector<Param>& params, const char* op) {
    ensure(op);
    try {
      return exec(sql, params, op);
    } catch (const PgError&) {
      if (PQstatus(conn_) == CONNECTION_OK) throw;
    }
    ensure(op);
    return exec(sql, params, op);
  }
  // Statements without parameters (COMMIT, migration DDL).
  Result exec_script(const char* sql, const char* op) {
    PGresult* r = PQexec(conn_, sql);
    check(r, op);
    return Result(r, *this, op);
  }
  // Best effort, for destructors.
  void rollback() {
    if (PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) == PQTRANS_IDLE) return;
    PQclear(PQexec(conn_, "ROLLBACK"));
  }

 private:
  void check(PGresult* r, const char* op) {
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
    std::string msg, state;
    if (r) {
      const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
      const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
      const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      msg = primary ? primary : trim(PQresultErrorMessage(r));
      if (detail) msg += std::string(" (") + detail + ")";
      state = code ? code : "";
    }
    if (msg.empty()) msg = trim(PQerrorMessage(conn_));
    if (msg.empty()) msg = PQresStatus(st);
    PQclear(r);
    throw PgError("job store " + desc_ + ": " + op + ": " + msg, state);
  }

  // Lock waits are bounded by busy_timeout_ms, as in the SQLite store.
  void configure_session(const char* op) {
    exec("SELECT set_config('lock_timeout', $1, false)", {num(lock_timeout_ms_)}, op);
  }

  std::string desc_;
  int lock_timeout_ms_;
  PGconn* conn_ = nullptr;
};

json Result::js(int row, int c) const {
  if (null(row, c)) return json();
  std::string t = text(row, c);
  try {
    return json::parse(t);
  } catch (const json::exception& e) {
    throw Error("job store " + conn_.desc() + ": " + op_ + ": column '" + PQfname(r_, c) +
                "' holds invalid JSON: " + e.what());
  }
}

// BEGIN (READ COMMITTED, for writers) or a REPEATABLE READ READ ONLY snapshot (consistent
// multi-statement reads); rolls back unless committed.
class Tx {
 public:
  Tx(Conn& conn, const char* op, bool read_only = false) : conn_(conn), op_(op) {
    conn_.exec_retry(read_only ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN", {}, op);
  }
  ~Tx() {
    if (!done_) conn_.rollback();
  }
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  void commit() {
    Result r = conn_.exec_script("COMMIT", op_);
    done_ = true;
    // COMMIT of a transaction the server has aborted answers ROLLBACK, not an error.
    if (r.command_status() != "COMMIT")
      throw Error("job store " + conn_.desc() + ": " + op_ + ": the transaction was rolled back (" +
                  r.command_status() + ")");
  }

 private:
  Conn& conn_;
  const char* op_;
  bool done_ = false;
};

int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

class PostgresJobStore final : public JobStore {
 public:
  PostgresJobStore(const std::string& url, const JobStoreOptions& opts) : opts_(opts), db_(url, opts) {
    migrate();
  }

  std::string describe() const override { return db_.desc(); }

  Counts counts() override {
    Counts c;
    std::lock_guard<std::mutex> lock(mu_);
    Result r = db_.exec_retry("SELECT state, COUNT(*) FROM runs GROUP BY state", {}, "count runs");
    for (int i = 0; i < r.rows(); ++i) c.runs[parse_run_state(r.text(i, 0))] = r.i64(i, 1);
    Result q = db_.exec_retry(
        "SELECT COUNT(*) FROM tasks t JOIN runs r ON r.id = t.run_id WHERE t.state = 'QUEUED' AND "
        "r.state IN ('QUEUED', 'RUNNING')",
        {}, "count queued tasks");
    if (q.rows()) c.queued_tasks = q.i64(0, 0);
    return c;
  }

  int schema_version() override {
    std::lock_guard<std::mutex> lock(mu_);
    Result r =
        db_.exec_retry("SELECT COALESCE(MAX(version), 0) FROM schema_version", {}, "read schema version");
    return r.rows() ? static_cast<int>(r.i64(0, 0)) : 0;
  }

  CreateRunResult create_run(const NewRun& req, int64_t now) override {
    std::vector<TaskSpec> tasks = req.tasks.empty() ? default_tasks(req.workflow) : req.tasks;
    validate_new_run(req, tasks);
    std::lock_guard<std::mutex> lock(mu_);
    return transact("create run", [&](Tx& tx, const char* op) -> CreateRunResult {
      if (!req.idempotency_key.empty()) {
        if (auto existing = run_by_key(req.idempotency_key, op)) {
          CreateRunResult r{*existing, true};
          tx.commit();
          return r;
        }
      }
      std::string run_id = "run-" + random_hex(16);
      {
        // A concurrent create_run with the same key (another daemon) makes this insert wait for it;
        // once it commits, the insert does nothing and its run is returned instead.
        Result r = db_.exec(
            "INSERT INTO runs (id, workflow, inputs, parameters, state, created_at, updated_at, "
            "callback_url, idempotency_key, provenance) VALUES ($1, $2, $3, $4, 'QUEUED', $5, $6, $7, $8, "
            "$9) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            {str(run_id), str(req.workflow), str(req.inputs.dump()), str(req.parameters.dump()), num(now),
             num(now), opt_str(req.callback_url), opt_str(req.idempotency_key),
             str((req.provenance.is_object() ? req.provenance : json::object()).dump())},
            op);
        if (r.rows() == 0) {
          auto existing = run_by_key(req.idempotency_key, op);
          if (!existing)
            throw Error("job store " + db_.desc() + ": " + op + ": idempotency key '" + req.idempotency_key +
                        "' conflicts but no run holds it");
          CreateRunResult out{*existing, true};
          tx.commit();
          return out;
        }
      }
      for (const TaskSpec& t : tasks) {
        std::string task_id = run_id + "/" + t.name;
        db_.exec(
            "INSERT INTO tasks (id, run_id, name, kind, state, max_attempts, parameters, "
            "requirements, cache_key, queued_at) VALUES ($1, $2, $3, $4, 'QUEUED', $5, $6, $7, $8, $9)",
            {str(task_id), str(run_id), str(t.name), str(t.kind), num(t.max_attempts),
             str(t.parameters.dump()), str(t.requirements.dump()), opt_str(t.cache_key), num(now)},
            op);
        int pos = 0;
        for (const std::string& dep : t.depends_on)
          db_.exec("INSERT INTO task_deps (task_id, depends_on, pos) VALUES ($1, $2, $3)",
                   {str(task_id), str(run_id + "/" + dep), num(pos++)}, op);
      }
      CreateRunResult r{*load_run(run_id), false};
      tx.commit();
      return r;
    });
  }

  std::optional<Run> get_run(const std::string& run_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Result r = db_.exec_retry(std::string("SELECT ") + kRunCols + " FROM runs WHERE id = $1", {str(run_id)},
                              "get run");
    if (r.rows() == 0) return std::nullopt;
    return run_from_row(Row{r, 0});
  }

  RunPage list_runs(const RunFilter& f) override {
    int page_size = std::clamp(f.page_size, 1, 1000);
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "list runs";
    Tx tx(db_, op, true);
    std::string sql = std::string("SELECT ") + kRunCols + " FROM runs WHERE 1 = 1";
    std::vector<Param> params;
    auto next = [&](Param p) {
      params.push_back(std::move(p));
      return "$" + std::to_string(params.size());
    };
    if (f.state) sql += " AND state = " + next(str(to_string(*f.state)));
    if (f.workflow) sql += " AND workflow = " + next(str(*f.workflow));
    if (!f.page_token.empty()) {
      Result r = db_.exec("SELECT 1 FROM runs WHERE id = $1", {str(f.page_token)}, op);
      if (r.rows() == 0) throw InputError("invalid page token '" + f.page_token + "'");
      sql += " AND seq > (SELECT seq FROM runs WHERE id = " + next(str(f.page_token)) + ")";
    }
    sql += " ORDER BY seq LIMIT " + next(num(page_size + 1));
    Result r = db_.exec(sql, params, op);
    RunPage page;
    for (int i = 0; i < r.rows(); ++i) page.runs.push_back(run_from_row(Row{r, i}));
    if (static_cast<int>(page.runs.size()) > page_size) {
      page.runs.pop_back();
      page.next_page_token = page.runs.back().id;
    }
    tx.commit();
    return page;
  }

  std::vector<Task> list_tasks(const std::string& run_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    const char* op = "list tasks";
    Tx tx(db_, op, true);
    std::vector<Task> out;
    {
      Result r = db_.exec(std::string("SELECT ") + kTaskCols + " FROM tasks WHERE run_id = $1 ORDER BY seq",
                          {str(run_id)}, op);
      for (int i = 0; i < r.rows(); ++i) out.push_back(task_from_row(Row{r, i}));
    }
    {
      Result r = db_.exec(
          "SELECT d.task_id, d.depends_on FROM task_deps d JOIN tasks t ON t.id = d.task_id "
          "WHERE t.run_id = $1 ORDER BY d.task_id, d.pos",
          {str(run_id)}, op);
      std::map<std::string, std::vector<std::string>> deps;
      for (int i = 0; i < r.rows(); ++i) deps[r.text(i, 0)].push_back(r.text(i, 1));
      for (Task& t : out) t.depends_on = deps[t.id];
    }
    tx.commit();
    return out;
  }

  std::optional<Task> get_task(const std::string& task_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Tx tx(db_, "get task", true);
    auto t = load_task(task_id, false);
    tx.commit();
    return t;
  }

  bool cancel_run(const std::string& run_id, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    return transact("cancel run", [&](Tx& tx, const char* op) {
      RunState state = lock_run(run_id, op);
      if (is_terminal(state)) return false;
      stop_unfinished_tasks(run_id, now, op);
      db_.exec("UPDATE runs SET state = 'CANCELED', updated_at = $1 WHERE id = $2", {num(now), str(run_id)},
               op);
      tx.commit();
      return true;
    });
  }

  bool resume_run(const std::string& run_id, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    return transact("resume run", [&](Tx& tx, const char* op) {
      RunState state = lock_run(run_id, op);
      if (state != RunState::Failed && state != RunState::Canceled) return false;
      Result t = db_.exec(
          "UPDATE tasks SET state = 'QUEUED', attempts = 0, not_before = 0, queued_at = $1, "
          "started_at = NULL, finished_at = NULL, lease_expires_at = NULL "
          "WHERE run_id = $2 AND state <> 'COMPLETE'",
          {num(now), str(run_id)}, op);
      const char* next = t.affected() > 0 ? "QUEUED" : "COMPLETE";
      db_.exec("UPDATE runs SET state = $1, failure_reason = NULL, updated_at = $2 WHERE id = $3",
               {str(next), num(now), str(run_id)}, op);
      tx.commit();
      return true;
    });
  }

  void set_run_provenance(const std::string& run_id, const json& patch, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    transact("set run provenance", [&](Tx& tx, const char* op) {
      Result r = db_.exec("SELECT provenance FROM runs WHERE id = $1 FOR UPDATE", {str(run_id)}, op);
      if (r.rows() == 0) throw NotFoundError("run " + run_id + " not found");
      json prov = r.js(0, 0);
      if (!prov.is_object()) prov = json::object();
      prov.merge_patch(patch);
      db_.exec("UPDATE runs SET provenance = $1, updated_at = $2 WHERE id = $3",
               {str(prov.dump()), num(now), str(run_id)}, op);
      tx.commit();
    });
  }

  std::optional<LeasedTask> lease_task(const std::string& worker_id, const json& capabilities,
                                       int64_t lease_seconds, int64_t now) override {
    if (lease_seconds <= 0) throw InputError("lease_seconds must be positive");
    if (worker_id.empty()) throw InputError("worker id is empty");
    std::lock_guard<std::mutex> lock(mu_);
    return transact("lease task", [&](Tx& tx, const char* op) -> std::optional<LeasedTask> {
      // The leasable tasks, oldest first, a page at a time without locks (a deep queue costs one
      // page, not a scan of all of it); requirements are matched here. For each match: lock it and
      // its run, skipping locked rows, so this never waits and never deadlocks; the first one
      // still leasable is chosen.
      constexpr int kPage = 64;
      std::string chosen;
      int64_t after_queued = std::numeric_limits<int64_t>::min(), after_seq = 0;
      for (bool more = true; more && chosen.empty();) {
        std::vector<std::string> candidates;
        {
          Result r = db_.exec(
              "SELECT t.id, t.requirements, t.queued_at, t.seq FROM tasks t JOIN runs r ON r.id = t.run_id "
              "WHERE t.state = 'QUEUED' AND t.not_before <= $1 AND r.state IN ('QUEUED','RUNNING') "
              "AND (t.queued_at, t.seq) > ($2, $3) "
              "AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks u ON u.id = d.depends_on "
              "                WHERE d.task_id = t.id AND u.state <> 'COMPLETE') "
              "ORDER BY t.queued_at, t.seq LIMIT $4",
              {num(now), num(after_queued), num(after_seq), num(kPage)}, op);
          more = r.rows() == kPage;
          for (int i = 0; i < r.rows(); ++i) {
            if (capabilities_satisfy(capabilities, r.js(i, 1))) candidates.push_back(r.text(i, 0));
            after_queued = r.i64(i, 2);
            after_seq = r.i64(i, 3);
          }
        }
        for (const std::string& id : candidates) {
          Result r = db_.exec(
              "SELECT t.id FROM tasks t JOIN runs r ON r.id = t.run_id "
              "WHERE t.id = $1 AND t.state = 'QUEUED' AND t.not_before <= $2 "
              "AND r.state IN ('QUEUED','RUNNING') "
              "AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks u ON u.id = d.depends_on "
              "                WHERE d.task_id = t.id AND u.state <> 'COMPLETE') "
              "FOR UPDATE OF t, r SKIP LOCKED",
              {str(id), num(now)}, op);
          if (r.rows() > 0) {
            chosen = id;
            break;
          }
        }
      }
      if (chosen.empty()) return std::nullopt;
      std::string token = random_hex(32);
      int64_t expires = now + lease_seconds * 1000;
      db_.exec(
          "UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, started_at = $1, "
          "finished_at = NULL, worker_id = $2, lease_token = $3, lease_expires_at = $4 WHERE id = $5",
          {num(now), str(worker_id), str(token), num(expires), str(chosen)}, op);
      LeasedTask out;
      out.task = *load_task(chosen, false);
      db_.exec(
          "INSERT INTO leases (token, task_id, worker_id, attempt, leased_at, expires_at) "
          "VALUES ($1, $2, $3, $4, $5, $6)",
          {str(token), str(chosen), str(worker_id), num(out.task.attempts), num(now), num(expires)}, op);
      db_.exec("UPDATE runs SET state = 'RUNNING', updated_at = $1 WHERE id = $2 AND state = 'QUEUED'",
               {num(now), str(out.task.run_id)}, op);
      out.run = *load_run(out.task.run_id);
      tx.commit();
      return out;
    });
  }

  Task heartbeat(const std::string& task_id, const std::string& lease_token, int64_t lease_seconds,
                 int64_t now) override {
    if (lease_seconds <= 0) throw InputError("lease_seconds must be positive");
    std::lock_guard<std::mutex> lock(mu_);
    return transact("heartbeat", [&](Tx& tx, const char* op) {
      auto task = lock_task(task_id, op);
      if (!task) throw NotFoundError("task " + task_id + " not found");
      if (task->state != TaskState::Running || task->lease_token != lease_token)
        throw LeaseError("task " + task_id + ": lease " + lease_token + " is not current (task is " +
                         to_string(task->state) + ")");
      int64_t expires = now + lease_seconds * 1000;
      db_.exec("UPDATE tasks SET lease_expires_at = $1 WHERE id = $2", {num(expires), str(task_id)}, op);
      db_.exec("UPDATE leases SET expires_at = $1 WHERE token = $2", {num(expires), str(lease_token)}, op);
      task->lease_expires_at = expires;
      tx.commit();
      return *task;
    });
  }

  TaskResult complete_task(const std::string& task_id, const std::string& lease_token, const json& outputs,
                           int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    return transact("complete task", [&](Tx& tx, const char* op) {
      Task task = current_lease_task(task_id, lease_token, op);
      std::string outcome = lease_outcome(lease_token, op);
      if (outcome == "COMPLETE") return result(task_id, false, true, tx);
      if (!outcome.empty())
        throw LeaseError("task " + task_id + ": lease " + lease_token + " already ended (" + outcome + ")");
      db_.exec(
          "UPDATE tasks SET state = 'COMPLETE', outputs = $1, finished_at = $2, "
          "lease_expires_at = NULL WHERE id = $3",
          {str(outputs.dump()), num(now), str(task_id)}, op);
      end_lease(lease_token, "COMPLETE", "", now, op);
      if (!task.cache_key.empty()) upsert_cache(task.cache_key, outputs, now, op);
      auto run = load_run(task.run_id);
      json run_outputs = run->outputs.is_object() ? run->outputs : json::object();
      run_outputs[task.name] = outputs;
      db_.exec("UPDATE runs SET outputs = $1, updated_at = $2 WHERE id = $3",
               {str(run_outputs.dump()), num(now), str(task.run_id)}, op);
      db_.exec(
          "UPDATE runs SET state = 'COMPLETE', updated_at = $1 WHERE id = $2 "
          "AND state IN ('QUEUED','RUNNING') AND NOT EXISTS "
          "(SELECT 1 FROM tasks WHERE run_id = $2 AND state <> 'COMPLETE')",
          {num(now), str(task.run_id)}, op);
      return result(task_id, false, false, tx);
    });
  }

  TaskResult fail_task(const std::string& task_id, const std::string& lease_token, const std::string& error,
                       bool retryable, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    return transact("fail task", [&](Tx& tx, const char* op) {
      Task task = current_lease_task(task_id, lease_token, op);
      std::string outcome = lease_outcome(lease_token, op);
      if (outcome == "RETRY" || outcome == "FAILED") return result(task_id, outcome == "RETRY", true, tx);
      if (!outcome.empty())
        throw LeaseError("task " + task_id + ": lease " + lease_token + " already ended (" + outcome + ")");
      bool retry = retryable && task.attempts < task.max_attempts;
      if (retry) {
        int shift = std::clamp(task.attempts - 1, 0, 40);
        int64_t backoff = std::min(opts_.retry_max_ms, opts_.retry_base_ms << shift);
        db_.exec(
            "UPDATE tasks SET state = 'QUEUED', last_error = $1, not_before = $2, "
            "lease_expires_at = NULL WHERE id = $3",
            {str(error), num(now + backoff), str(task_id)}, op);
        end_lease(lease_token, "RETRY", error, now, op);
      } else {
        end_lease(lease_token, "FAILED", error, now, op);
        fail_task_and_run(task, error, now, op);
      }
      return result(task_id, retry, false, tx);
    });
  }

  int expire_leases(int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    return transact("expire leases", [&](Tx& tx, const char* op) {
      std::vector<std::pair<std::string, std::string>> candidates;  // (task id, run id), oldest first
      {
        Result r = db_.exec(
            "SELECT id, run_id FROM tasks WHERE state = 'RUNNING' AND lease_expires_at < $1 ORDER BY seq",
            {num(now)}, op);
        for (int i = 0; i < r.rows(); ++i) candidates.emplace_back(r.text(i, 0), r.text(i, 1));
      }
      if (candidates.empty()) return 0;
      // Lock the runs in one global order (two daemons sweeping at once cannot deadlock), then
      // re-read each task: another daemon may have expired, completed or extended it meanwhile.
      std::set<std::string> runs;
      for (const auto& c : candidates) runs.insert(c.second);
      for (const std::string& run_id : runs)
        db_.exec("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", {str(run_id)}, op);
      int expired = 0;
      for (const auto& c : candidates) {
        std::optional<Task> t;
        {
          Result r = db_.exec(std::string("SELECT ") + kTaskCols +
                                  " FROM tasks WHERE id = $1 AND state = 'RUNNING' AND lease_expires_at < $2 "
                                  "FOR UPDATE",
                              {str(c.first), num(now)}, op);
          if (r.rows() == 0) continue;
          t = task_from_row(Row{r, 0});
        }
        ++expired;
        std::string error = "lease of worker " + t->worker_id + " expired (attempt " +
                            std::to_string(t->attempts) + " of " + std::to_string(t->max_attempts) + ")";
        end_lease(t->lease_token, "EXPIRED", error, now, op);
        if (t->attempts < t->max_attempts) {
          db_.exec(
              "UPDATE tasks SET state = 'QUEUED', last_error = $1, not_before = $2, "
              "lease_expires_at = NULL WHERE id = $3",
              {str(error), num(now), str(t->id)}, op);
        } else {
          fail_task_and_run(*t, error, now, op);
        }
      }
      tx.commit();
      return expired;
    });
  }

  void put_cache(const std::string& cache_key, const json& outputs, int64_t now) override {
    if (cache_key.empty()) throw InputError("cache key is empty");
    std::lock_guard<std::mutex> lock(mu_);
    transact("put cache", [&](Tx& tx, const char* op) {
      upsert_cache(cache_key, outputs, now, op);
      tx.commit();
    });
  }

  std::optional<json> get_cache(const std::string& cache_key) override {
    std::lock_guard<std::mutex> lock(mu_);
    Result r =
        db_.exec_retry("SELECT outputs FROM cache WHERE cache_key = $1", {str(cache_key)}, "get cache");
    if (r.rows() == 0) return std::nullopt;
    return r.js(0, 0);
  }

  std::vector<WebhookDelivery> claim_webhooks(int limit, int64_t claim_ms, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    return transact("claim webhooks", [&](Tx& tx, const char* op) {
      std::vector<WebhookDelivery> out;
      {
        Result r = db_.exec(std::string("SELECT ") + kWebhookCols +
                                " FROM webhooks WHERE status = 'PENDING' AND next_attempt_at <= $1 "
                                "ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                            {num(now), num(std::max(limit, 1))}, op);
        for (int i = 0; i < r.rows(); ++i) out.push_back(webhook_from_row(Row{r, i}));
      }
      for (WebhookDelivery& w : out) {
        db_.exec("UPDATE webhooks SET next_attempt_at = $1 WHERE id = $2", {num(now + claim_ms), num(w.id)},
                 op);
        w.next_attempt_at = now + claim_ms;
      }
      tx.commit();
      return out;
    });
  }

  void record_webhook_attempt(int64_t id, bool delivered, const std::string& error, int64_t retry_at,
                              int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    transact("record webhook attempt", [&](Tx& tx, const char* op) {
      {
        Result r = db_.exec("SELECT status FROM webhooks WHERE id = $1 FOR UPDATE", {num(id)}, op);
        if (r.rows() == 0) throw NotFoundError("webhook event " + std::to_string(id) + " not found");
        if (r.text(0, 0) != "PENDING") return;  // already settled (a concurrent daemon delivered it)
      }
      const char* status = delivered ? "DELIVERED" : retry_at > 0 ? "PENDING" : "FAILED";
      db_.exec(
          "UPDATE webhooks SET status = $1, attempts = attempts + 1, last_error = $2, next_attempt_at = $3, "
          "delivered_at = $4 WHERE id = $5",
          {str(status), opt_str(delivered ? std::string() : error), num(retry_at > 0 ? retry_at : now),
           delivered ? num(now) : Param(), num(id)},
          op);
      tx.commit();
    });
  }

  std::vector<WebhookDelivery> list_webhooks(const std::string& run_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Result r =
        db_.exec_retry(std::string("SELECT ") + kWebhookCols + " FROM webhooks WHERE run_id = $1 ORDER BY id",
                       {str(run_id)}, "list webhooks");
    std::vector<WebhookDelivery> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(webhook_from_row(Row{r, i}));
    return out;
  }

 private:
  // Runs fn(tx, op) in a fresh transaction; a deadlock or serialisation failure reported by the
  // server rolls back and runs it again (a few times). fn commits; returning without commit rolls back.
  template <class F>
  std::invoke_result_t<F&, Tx&, const char*> transact(const char* op, F&& fn) {
    for (int attempt = 1;; ++attempt) {
      try {
        Tx tx(db_, op);
        return fn(tx, op);
      } catch (const PgError& e) {
        if (!e.retryable() || attempt >= 5) throw;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt));
    }
  }

  void migrate() {
    const char* op = "migrate schema";
    Tx tx(db_, op);
    // Daemons opening one database together take turns here (the lock ends with the transaction).
    db_.exec("SELECT pg_advisory_xact_lock($1::bigint)", {num(kMigrationLockKey)}, op);
    db_.exec_script(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        "applied_at BIGINT NOT NULL)",
        op);
    int current = 0;
    {
      Result r = db_.exec("SELECT COALESCE(MAX(version), 0) FROM schema_version", {}, op);
      if (r.rows()) current = static_cast<int>(r.i64(0, 0));
    }
    if (current > kKnownVersion)
      throw Error("job store " + db_.desc() + ": open: database schema version " + std::to_string(current) +
                  " is newer than this omicsd supports (" + std::to_string(kKnownVersion) +
                  "); upgrade omicsd");
    for (int v = current; v < kKnownVersion; ++v) {
      db_.exec_script(kMigrations[v], op);
      db_.exec("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
               {num(v + 1), num(wall_ms())}, op);
    }
    tx.commit();
  }

  std::optional<Run> load_run(const std::string& run_id) {
    Result r =
        db_.exec(std::string("SELECT ") + kRunCols + " FROM runs WHERE id = $1", {str(run_id)}, "get run");
    if (r.rows() == 0) return std::nullopt;
    return run_from_row(Row{r, 0});
  }

  std::optional<Run> run_by_key(const std::string& key, const char* op) {
    Result r = db_.exec("SELECT id FROM runs WHERE idempotency_key = $1", {str(key)}, op);
    if (r.rows() == 0) return std::nullopt;
    return load_run(r.text(0, 0));
  }

  std::vector<std::string> load_deps(const std::string& task_id) {
    Result r = db_.exec("SELECT depends_on FROM task_deps WHERE task_id = $1 ORDER BY pos", {str(task_id)},
                        "get task");
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.text(i, 0));
    return out;
  }

  std::optional<Task> load_task(const std::string& task_id, bool for_update) {
    std::optional<Task> t;
    {
      Result r = db_.exec(std::string("SELECT ") + kTaskCols + " FROM tasks WHERE id = $1" +
                              (for_update ? " FOR UPDATE" : ""),
                          {str(task_id)}, "get task");
      if (r.rows() == 0) return std::nullopt;
      t = task_from_row(Row{r, 0});
    }
    t->depends_on = load_deps(task_id);
    return t;
  }

  // Locks the run row (the lock that guards the run's tasks and leases) and returns its state.
  RunState lock_run(const std::string& run_id, const char* op) {
    Result r = db_.exec("SELECT state FROM runs WHERE id = $1 FOR UPDATE", {str(run_id)}, op);
    if (r.rows() == 0) throw NotFoundError("run " + run_id + " not found");
    return parse_run_state(r.text(0, 0));
  }

  // Locks the task's run, then the task, and returns the task as it is after the locks.
  std::optional<Task> lock_task(const std::string& task_id, const char* op) {
    std::string run_id;
    {
      Result r = db_.exec("SELECT run_id FROM tasks WHERE id = $1", {str(task_id)}, op);
      if (r.rows() == 0) return std::nullopt;
      run_id = r.text(0, 0);  // a task's run never changes, so reading it unlocked is safe
    }
    lock_run(run_id, op);
    return load_task(task_id, true);
  }

  RunState run_state(const std::string& run_id, const char* op) {
    Result r = db_.exec("SELECT state FROM runs WHERE id = $1", {str(run_id)}, op);
    if (r.rows() == 0) throw NotFoundError("run " + run_id + " not found");
    return parse_run_state(r.text(0, 0));
  }

  // The task (locked), after checking that lease_token is a lease of it and the latest one.
  Task current_lease_task(const std::string& task_id, const std::string& lease_token, const char* op) {
    auto task = lock_task(task_id, op);
    if (!task) throw NotFoundError("task " + task_id + " not found");
    if (lease_token.empty() || task->lease_token != lease_token)
      throw LeaseError("task " + task_id + ": lease " + lease_token + " is not the task's current lease (" +
                       op + ")");
    return *task;
  }

  std::string lease_outcome(const std::string& token, const char* op) {
    Result r = db_.exec("SELECT outcome FROM leases WHERE token = $1", {str(token)}, op);
    if (r.rows() == 0) throw LeaseError("unknown lease " + token);
    return r.text(0, 0);
  }

  void end_lease(const std::string& token, const char* outcome, const std::string& error, int64_t now,
                 const char* op) {
    db_.exec("UPDATE leases SET outcome = $1, outcome_at = $2, error = $3 WHERE token = $4",
             {str(outcome), num(now), opt_str(error), str(token)}, op);
  }

  void upsert_cache(const std::string& cache_key, const json& outputs, int64_t now, const char* op) {
    db_.exec(
        "INSERT INTO cache (cache_key, outputs, created_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (cache_key) DO UPDATE SET outputs = EXCLUDED.outputs, created_at = EXCLUDED.created_at",
        {str(cache_key), str(outputs.dump()), num(now)}, op);
  }

  // Cancels the run's QUEUED and RUNNING tasks (their leases end CANCELED). The caller holds the
  // run's lock.
  void stop_unfinished_tasks(const std::string& run_id, int64_t now, const char* op) {
    db_.exec(
        "UPDATE leases SET outcome = 'CANCELED', outcome_at = $1 WHERE outcome IS NULL AND "
        "task_id IN (SELECT id FROM tasks WHERE run_id = $2 AND state = 'RUNNING')",
        {num(now), str(run_id)}, op);
    db_.exec(
        "UPDATE tasks SET state = 'CANCELED', finished_at = $1, lease_expires_at = NULL "
        "WHERE run_id = $2 AND state IN ('QUEUED','RUNNING')",
        {num(now), str(run_id)}, op);
  }

  // The task FAILED for good: it fails its run with the error; the run's other unfinished tasks
  // are canceled (resume_run re-queues them). The caller holds the run's lock.
  void fail_task_and_run(const Task& task, const std::string& error, int64_t now, const char* op) {
    db_.exec(
        "UPDATE tasks SET state = 'FAILED', last_error = $1, finished_at = $2, "
        "lease_expires_at = NULL WHERE id = $3",
        {str(error), num(now), str(task.id)}, op);
    if (is_terminal(run_state(task.run_id, op))) return;
    stop_unfinished_tasks(task.run_id, now, op);
    std::string reason = "task " + task.name + " (" + task.kind + ") failed after " +
                         std::to_string(task.attempts) + " attempt" + (task.attempts == 1 ? "" : "s") + ": " +
                         error;
    db_.exec("UPDATE runs SET state = 'FAILED', failure_reason = $1, updated_at = $2 WHERE id = $3",
             {str(reason), num(now), str(task.run_id)}, op);
  }

  TaskResult result(const std::string& task_id, bool retry, bool duplicate, Tx& tx) {
    TaskResult r;
    r.task = *load_task(task_id, false);
    r.run_state = run_state(r.task.run_id, "read run state");
    r.retry_scheduled = retry;
    r.duplicate = duplicate;
    tx.commit();
    return r;
  }

  JobStoreOptions opts_;
  std::mutex mu_;
  Conn db_;
};

}  // namespace

std::unique_ptr<JobStore> open_postgres_job_store(const std::string& url, const JobStoreOptions& opts) {
  return std::make_unique<PostgresJobStore>(url, opts);
}

}  // namespace omicsd
