// The job store's schema, written once for SQLite and PostgreSQL: kSteps[i] takes a database from
// version i to i + 1 (table schema_version, one row per applied step). The two dialects differ only
// where the SQL does: the sequence columns ({SEQ}: AUTOINCREMENT / BIGSERIAL) and the trigger that
// writes the webhook outbox. JSON is kept as TEXT and read back exactly as written; BIGINT has
// INTEGER affinity in SQLite, so the columns hold the same values in both.
#include <string>

#include "service/jobs/job_store_rows.hpp"
#include "service/util/clock.hpp"

namespace omicsd::job_store_rows {
namespace {

struct Step {
  const char* common;                     // both dialects, after {SEQ} is substituted
  const char* sqlite;                     // then this on SQLite
  const char* postgres;                   // or this on PostgreSQL
  void (*sqlite_fn)(sql::Db&) = nullptr;  // then this on SQLite (what plain SQL cannot say there)
};

// v3 on SQLite: the CHECK constraints on runs.workflow and tasks.kind also allow 'tes'. SQLite cannot
// ALTER a constraint, and rebuilding the tables would cascade-delete their children (foreign_keys is
// on and cannot be switched off inside the migration's transaction), so the constraint text is
// edited in the schema table: the procedure SQLite documents for constraint changes that leave the
// stored rows valid (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table
// Schema Changes"), with schema_version bumped so every connection reloads the schema.
void allow_tes_sqlite(sql::Db& db) {
  const int64_t version = db.query("PRAGMA schema_version")[0].i(0);
  db.exec_script("PRAGMA writable_schema=ON");
  db.exec(
      "UPDATE sqlite_master SET sql = replace(sql, 'workflow IN (''germline'',''align'',''call'')', "
      "'workflow IN (''germline'',''align'',''call'',''tes'')') WHERE type = 'table' AND name = 'runs'");
  db.exec(
      "UPDATE sqlite_master SET sql = replace(sql, 'kind IN (''align'',''call'',''qc'')', "
      "'kind IN (''align'',''call'',''qc'',''tes'')') WHERE type = 'table' AND name = 'tasks'");
  db.exec_script("PRAGMA schema_version=" + std::to_string(version + 1));
  db.exec_script("PRAGMA writable_schema=OFF");
}

// v6 on SQLite: webhook events may name a run that has not ended (run.at_risk), so the CHECK on
// webhooks.state also allows QUEUED and RUNNING; edited in place as in v3 (every stored row stays valid).
void allow_open_run_events_sqlite(sql::Db& db) {
  const int64_t version = db.query("PRAGMA schema_version")[0].i(0);
  db.exec_script("PRAGMA writable_schema=ON");
  db.exec(
      "UPDATE sqlite_master SET sql = replace(sql, 'state IN (''COMPLETE'',''FAILED'',''CANCELED'')', "
      "'state IN (''QUEUED'',''RUNNING'',''COMPLETE'',''FAILED'',''CANCELED'')') WHERE type = 'table' AND "
      "name = 'webhooks'");
  db.exec_script("PRAGMA schema_version=" + std::to_string(version + 1));
  db.exec_script("PRAGMA writable_schema=OFF");
}

const Step kSteps[] = {
    // v1: runs, their tasks and dependencies, the lease history and the call cache.
    {R"SQL(
CREATE TABLE runs (
  seq             {SEQ},
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
  seq              {SEQ},
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
     "", ""},
    // v2: the webhook outbox. The trigger writes the event in the transaction that ends the run, so
    // every code path that makes a run terminal (complete, fail, expire, cancel, resume) is covered.
    {R"SQL(
CREATE TABLE webhooks (
  id              {SEQ},
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
)SQL",
     R"SQL(
CREATE TRIGGER runs_terminal_webhook AFTER UPDATE OF state ON runs
WHEN NEW.state IN ('COMPLETE','FAILED','CANCELED') AND OLD.state <> NEW.state
     AND NEW.callback_url IS NOT NULL AND NEW.callback_url <> ''
BEGIN
  INSERT INTO webhooks (run_id, url, state, created_at, next_attempt_at)
  VALUES (NEW.id, NEW.callback_url, NEW.state, NEW.updated_at, NEW.updated_at);
END;
)SQL",
     // The function keeps the search_path it was created with, so it finds its table whatever the
     // session's search_path is.
     R"SQL(
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
)SQL"},
    // v3: GA4GH TES tasks (POST /ga4gh/tes/v1/tasks) are runs of workflow 'tes' with one task of kind
    // 'tes'. The queue, leases and their statements are unchanged.
    {"", "",
     R"SQL(
ALTER TABLE runs DROP CONSTRAINT runs_workflow_check;
ALTER TABLE runs ADD CONSTRAINT runs_workflow_check CHECK (workflow IN ('germline','align','call','tes'));
ALTER TABLE tasks DROP CONSTRAINT tasks_kind_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_kind_check CHECK (kind IN ('align','call','qc','tes'));
)SQL",
     allow_tes_sqlite},
    // v4: run priorities and deadlines, copied onto their tasks as the two lease-order keys
    // (lease_order.hpp), and the index the lease reads the queue through. Tasks queued before this
    // version keep their order: no deadline, priority 0 (urgency = queued_at).
    {R"SQL(
ALTER TABLE runs ADD COLUMN priority BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN deadline BIGINT;
ALTER TABLE tasks ADD COLUMN deadline_rank BIGINT NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE tasks ADD COLUMN urgency BIGINT NOT NULL DEFAULT 0;
UPDATE tasks SET urgency = queued_at;
CREATE INDEX tasks_lease_order ON tasks(state, deadline_rank, urgency, seq);
)SQL",
     "", ""},
    // v5: run groups (run_group.hpp) with their caps; each run and task names its group (existing ones:
    // "default", without caps), a task stores what it holds while leased (tasks queued before this
    // version: 1 CPU thread, no GPU), a run when it was first leased (max_run_seconds counts from
    // there). The indexes make the lease's cap counts probes of what is running.
    {R"SQL(
CREATE TABLE run_groups (
  name             TEXT PRIMARY KEY,
  max_runs         BIGINT,
  max_tasks        BIGINT,
  max_gpus         BIGINT,
  max_cpu_threads  BIGINT,
  max_run_seconds  BIGINT,
  default_priority BIGINT NOT NULL DEFAULT 0,
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL
);
INSERT INTO run_groups (name, default_priority, created_at, updated_at) VALUES ('default', 0, 0, 0);
ALTER TABLE runs ADD COLUMN group_name TEXT NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN started_at BIGINT;
UPDATE runs SET started_at = (SELECT MIN(started_at) FROM tasks WHERE tasks.run_id = runs.id)
  WHERE state <> 'QUEUED';
ALTER TABLE tasks ADD COLUMN group_name TEXT NOT NULL DEFAULT 'default';
ALTER TABLE tasks ADD COLUMN gpus BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN cpu_threads BIGINT NOT NULL DEFAULT 1;
CREATE INDEX tasks_running_by_group ON tasks(group_name, state);
CREATE INDEX runs_by_group ON runs(group_name, state);
)SQL",
     "", ""},
    // v6: deadlines at risk (run_at_risk.hpp). stage_samples holds the durations of recently completed
    // tasks by workflow and task name, written by a trigger in the transaction that completes the task
    // (no change to the completion path; the sweeper keeps the last kStageSampleWindow of each). A run
    // records when it was found at risk (set once, by the statement that claims it), and the webhook
    // outbox carries events that are not terminal transitions: their type and a JSON detail.
    {R"SQL(
CREATE TABLE stage_samples (
  id          {SEQ},
  workflow    TEXT NOT NULL,
  task_name   TEXT NOT NULL,
  duration_ms BIGINT NOT NULL,
  finished_at BIGINT NOT NULL
);
CREATE INDEX stage_samples_by_stage ON stage_samples(workflow, task_name, id);
ALTER TABLE runs ADD COLUMN at_risk_at BIGINT;
ALTER TABLE webhooks ADD COLUMN event TEXT;
ALTER TABLE webhooks ADD COLUMN detail TEXT;
)SQL",
     R"SQL(
CREATE TRIGGER tasks_stage_sample AFTER UPDATE OF state ON tasks
WHEN NEW.state = 'COMPLETE' AND OLD.state <> 'COMPLETE' AND NEW.started_at IS NOT NULL
     AND NEW.finished_at IS NOT NULL
BEGIN
  INSERT INTO stage_samples (workflow, task_name, duration_ms, finished_at)
  SELECT workflow, NEW.name, NEW.finished_at - NEW.started_at, NEW.finished_at FROM runs WHERE id = NEW.run_id;
END;
)SQL",
     R"SQL(
ALTER TABLE webhooks DROP CONSTRAINT webhooks_state_check;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_state_check
  CHECK (state IN ('QUEUED','RUNNING','COMPLETE','FAILED','CANCELED'));
CREATE FUNCTION tasks_stage_sample() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $fn$
BEGIN
  INSERT INTO stage_samples (workflow, task_name, duration_ms, finished_at)
  SELECT workflow, NEW.name, NEW.finished_at - NEW.started_at, NEW.finished_at FROM runs WHERE id = NEW.run_id;
  RETURN NULL;
END
$fn$;
CREATE TRIGGER tasks_stage_sample AFTER UPDATE OF state ON tasks FOR EACH ROW
WHEN (NEW.state = 'COMPLETE' AND OLD.state <> 'COMPLETE' AND NEW.started_at IS NOT NULL
      AND NEW.finished_at IS NOT NULL)
EXECUTE FUNCTION tasks_stage_sample();
)SQL",
     allow_open_run_events_sqlite},
    // v7: the lease reads each group's queue apart (lease_statement_pg, pick_leasable_task_sqlite), so
    // a group at its caps costs nothing however many tasks wait in it: one index per group and lease
    // order, whose (group_name, state) prefix also serves the cap counts. It replaces the global
    // queue-order index and the cap-count index; tasks_queue (v1) has had no reader since v4. Fewer
    // indexes also make submitting cheaper.
    {R"SQL(
CREATE INDEX tasks_group_queue ON tasks(group_name, state, deadline_rank, urgency, seq);
DROP INDEX tasks_running_by_group;
DROP INDEX tasks_lease_order;
DROP INDEX tasks_queue;
)SQL",
     "", ""},
    // v8: batches of runs (POST /v1/run-batches). A batch is accepted as one row holding its run
    // requests (`requests`, dropped once all are submitted); the daemons submit them in chunks, each
    // committing its runs, its rows of run_batch_items and the batch's progress (`submitted`) together.
    // An item holds the run a request created or found, or why it was refused.
    {R"SQL(
CREATE TABLE run_batches (
  seq             {SEQ},
  id              TEXT NOT NULL UNIQUE,
  idempotency_key TEXT UNIQUE,
  state           TEXT NOT NULL CHECK (state IN ('SUBMITTING','SUBMITTED')),
  total           BIGINT NOT NULL,
  submitted       BIGINT NOT NULL DEFAULT 0,
  created         BIGINT NOT NULL DEFAULT 0,
  existing        BIGINT NOT NULL DEFAULT 0,
  failed          BIGINT NOT NULL DEFAULT 0,
  created_at      BIGINT NOT NULL,
  finished_at     BIGINT,
  requests        TEXT
);
CREATE INDEX run_batches_by_state ON run_batches(state, seq);
CREATE TABLE run_batch_items (
  batch_id   TEXT NOT NULL,
  idx        BIGINT NOT NULL,
  run_id     TEXT,
  existed    BIGINT NOT NULL DEFAULT 0,
  error_code BIGINT NOT NULL DEFAULT 0,
  error      TEXT,
  PRIMARY KEY (batch_id, idx)
);
)SQL",
     "", ""},
};
constexpr int kKnownVersion = static_cast<int>(sizeof(kSteps) / sizeof(kSteps[0]));
static_assert(kKnownVersion == kJobStoreSchemaVersion);

// pg_advisory_xact_lock key serialising migrations of one database ("omicsd" + 1).
constexpr int64_t kMigrationLockKey = 0x6f6d6963736401;

std::string step_sql(const Step& step, sql::Dialect dialect) {
  const bool pg = dialect == sql::Dialect::postgres;
  std::string out = step.common;
  const std::string seq = pg ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT";
  for (size_t at; (at = out.find("{SEQ}")) != std::string::npos;) out.replace(at, 5, seq);
  return out + (pg ? step.postgres : step.sqlite);
}

}  // namespace

void migrate(sql::Db& db) {
  db.transaction([&] {
    // Daemons opening one PostgreSQL database together take turns here (the lock ends with the
    // transaction); SQLite's BEGIN IMMEDIATE already excludes other writers.
    if (db.dialect() == sql::Dialect::postgres)
      db.query("SELECT pg_advisory_xact_lock(?::bigint)", {kMigrationLockKey});
    db.exec_script(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT "
        "NULL)");
    const auto rows = db.query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
    const int current = rows.empty() ? 0 : static_cast<int>(rows[0].i(0));
    if (current > kKnownVersion)
      throw Error("job store " + db.describe() + ": open: database schema version " +
                  std::to_string(current) + " is newer than this omicsd supports (" +
                  std::to_string(kKnownVersion) + "); upgrade omicsd");
    for (int v = current; v < kKnownVersion; ++v) {
      if (const std::string sql = step_sql(kSteps[v], db.dialect()); !sql.empty()) db.exec_script(sql);
      if (kSteps[v].sqlite_fn && db.dialect() == sql::Dialect::sqlite) kSteps[v].sqlite_fn(db);
      db.exec("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", {int64_t(v + 1), now_ms()});
    }
  });
}

nlohmann::json RowReader::js(size_t c) const {
  if (row.is_null(c)) return nlohmann::json();
  try {
    return nlohmann::json::parse(row.s(c));
  } catch (const nlohmann::json::exception& e) {
    // The c-th name of the column list.
    std::string name = cols;
    for (size_t i = 0; i < c; ++i) name.erase(0, name.find(", ") + 2);
    name = name.substr(0, name.find(','));
    throw Error(where + ": column '" + name + "' holds invalid JSON: " + e.what());
  }
}

}  // namespace omicsd::job_store_rows
