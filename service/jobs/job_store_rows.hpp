#pragma once
// The job store's tables as the store reads them: column lists, row -> struct decoding, and the
// schema migration (job_store_schema.cpp). Internal to the store (sql_job_store.cpp).
#include <optional>
#include <string>

#include "service/db/sql_db.hpp"
#include "service/jobs/job_store.hpp"

namespace omicsd::job_store_rows {

// Creates or upgrades the job store's tables in db (versions in table schema_version); throws Error
// when the database was written by a newer omicsd.
void migrate(sql::Db& db);

// Reads column c of a row selected with one of the column lists below.
struct RowReader {
  const sql::Row& row;
  const char* cols;          // the column list it was selected with (names the column in errors)
  const std::string& where;  // the store, e.g. "job store sqlite:/data/jobs.db"

  std::string text(size_t c) const { return row.s(c); }
  int64_t i64(size_t c) const { return row.i(c); }
  std::optional<int64_t> opt_i64(size_t c) const {
    return row.is_null(c) ? std::nullopt : std::optional<int64_t>(row.i(c));
  }
  // NULL -> JSON null; text that is not JSON throws Error naming the store and the column.
  nlohmann::json js(size_t c) const;
};

inline constexpr const char* kRunCols =
    "id, workflow, inputs, parameters, state, created_at, updated_at, callback_url, "
    "idempotency_key, failure_reason, outputs, provenance, priority, deadline, group_name, started_at, "
    "at_risk_at";
inline constexpr const char* kWebhookCols =
    "id, run_id, url, state, created_at, status, attempts, next_attempt_at, last_error, delivered_at, event, "
    "detail";
inline constexpr const char* kTaskCols =
    "id, run_id, name, kind, state, attempts, max_attempts, parameters, requirements, cache_key, "
    "outputs, last_error, queued_at, started_at, finished_at, not_before, worker_id, lease_token, "
    "lease_expires_at, group_name, gpus, cpu_threads";

inline constexpr const char* kRunGroupCols =
    "name, max_runs, max_tasks, max_gpus, max_cpu_threads, max_run_seconds, default_priority, created_at, "
    "updated_at";

inline constexpr const char* kRunBatchCols =
    "id, idempotency_key, state, total, submitted, created, existing, failed, created_at, finished_at";

inline RunBatch run_batch_from_row(const RowReader& st) {
  RunBatch b;
  b.id = st.text(0);
  b.idempotency_key = st.text(1);
  b.state = parse_run_batch_state(st.text(2));
  b.total = st.i64(3);
  b.submitted = st.i64(4);
  b.created = st.i64(5);
  b.existing = st.i64(6);
  b.failed = st.i64(7);
  b.created_at = st.i64(8);
  b.finished_at = st.opt_i64(9);
  return b;
}

inline RunGroup run_group_from_row(const RowReader& st) {
  RunGroup g;
  g.name = st.text(0);
  g.max_runs = st.opt_i64(1);
  g.max_tasks = st.opt_i64(2);
  g.max_gpus = st.opt_i64(3);
  g.max_cpu_threads = st.opt_i64(4);
  g.max_run_seconds = st.opt_i64(5);
  g.default_priority = st.i64(6);
  g.created_at = st.i64(7);
  g.updated_at = st.i64(8);
  return g;
}

inline WebhookDelivery webhook_from_row(const RowReader& st) {
  WebhookDelivery w;
  w.id = st.i64(0);
  w.run_id = st.text(1);
  w.url = st.text(2);
  w.state = parse_run_state(st.text(3));
  w.created_at = st.i64(4);
  const std::string status = st.text(5);
  w.status = status == "DELIVERED" ? WebhookStatus::Delivered
             : status == "FAILED"  ? WebhookStatus::Failed
                                   : WebhookStatus::Pending;
  w.attempts = static_cast<int>(st.i64(6));
  w.next_attempt_at = st.i64(7);
  w.last_error = st.text(8);
  w.delivered_at = st.opt_i64(9);
  w.event = st.text(10);
  w.detail = st.js(11);
  return w;
}

inline Run run_from_row(const RowReader& st) {
  Run r;
  r.id = st.text(0);
  r.workflow = st.text(1);
  r.inputs = st.js(2);
  r.parameters = st.js(3);
  r.state = parse_run_state(st.text(4));
  r.created_at = st.i64(5);
  r.updated_at = st.i64(6);
  r.callback_url = st.text(7);
  r.idempotency_key = st.text(8);
  r.failure_reason = st.text(9);
  r.outputs = st.js(10);
  r.provenance = st.js(11);
  r.priority = st.i64(12);
  r.deadline = st.opt_i64(13);
  r.group = st.text(14);
  r.started_at = st.opt_i64(15);
  r.at_risk_at = st.opt_i64(16);
  return r;
}

inline Task task_from_row(const RowReader& st) {
  Task t;
  t.id = st.text(0);
  t.run_id = st.text(1);
  t.name = st.text(2);
  t.kind = st.text(3);
  t.state = parse_task_state(st.text(4));
  t.attempts = static_cast<int>(st.i64(5));
  t.max_attempts = static_cast<int>(st.i64(6));
  t.parameters = st.js(7);
  t.requirements = st.js(8);
  t.cache_key = st.text(9);
  t.outputs = st.js(10);
  t.last_error = st.text(11);
  t.queued_at = st.i64(12);
  t.started_at = st.opt_i64(13);
  t.finished_at = st.opt_i64(14);
  t.not_before = st.i64(15);
  t.worker_id = st.text(16);
  t.lease_token = st.text(17);
  t.lease_expires_at = st.opt_i64(18);
  t.group = st.text(19);
  t.demands.gpus = st.i64(20);
  t.demands.cpu_threads = st.i64(21);
  return t;
}

}  // namespace omicsd::job_store_rows
