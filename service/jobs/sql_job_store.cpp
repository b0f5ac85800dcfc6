// The durable job store, written once on the SQL layer (sql_db.hpp) for both databases: the
// embedded SQLite default (one file in WAL mode, synchronous=FULL: a committed run survives kill -9
// and power loss) and a shared PostgreSQL that several daemons may use at once.
//
// Every mutating operation is one write transaction. On SQLite that is BEGIN IMMEDIATE, which takes
// the database's write lock, so an operation sees and changes a stable state (several processes may
// share the file too). On PostgreSQL (READ COMMITTED) the store locks what it reads and then writes,
// with the clauses that locked() adds there and nowhere else:
//   - A run's row lock guards the run and all of its tasks and leases: every operation that changes
//     a task first locks the run row, then the task row, and re-reads them after the locks. Two
//     daemons completing, failing, expiring or cancelling at once therefore serialise per run.
//   - lease_task is one statement (lease_in_one_statement_pg, job_store_lease.cpp): the oldest
//     leasable task whose requirements the worker's capabilities meet, matched in SQL, locked with its
//     run (FOR UPDATE OF t, r SKIP LOCKED), leased and returned. It never waits for a lock, so it
//     takes part in no deadlock, and concurrent leases take successive tasks. (SQLite, one writer at
//     a time, reads the queue a page at a time and matches requirements in C++.)
//   - expire_leases locks the runs it touches in sorted order; claim_webhooks uses SKIP LOCKED.
//   - create_run inserts with ON CONFLICT (idempotency_key) DO NOTHING, so two daemons given the
//     same Idempotency-Key at once create one run.
// A deadlock or serialisation failure reported by the server (not expected) reruns the operation;
// a lost connection is re-established by the SQL layer at the start of the next one.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <type_traits>

#include "service/db/sql_db.hpp"
#include "service/db/sql_rows.hpp"
#include "service/jobs/job_store.hpp"
#include "service/jobs/job_store_lease.hpp"
#include "service/jobs/job_store_rows.hpp"
#include "service/jobs/lease_order.hpp"
#include "service/jobs/task_graph.hpp"
#include "service/util/ids.hpp"

namespace omicsd {
namespace {

using nlohmann::json;
using namespace job_store_rows;  // kRunCols, kTaskCols, kWebhookCols, *_from_row, RowReader
using sql::Value;

// Optional text columns: "" is stored as NULL.
Value opt_text(const std::string& v) { return v.empty() ? Value(nullptr) : Value(v); }

class SqlJobStore final : public JobStore {
 public:
  SqlJobStore(std::unique_ptr<sql::Db> db, const JobStoreOptions& opts)
      : opts_(opts),
        db_(std::move(db)),
        pg_(db_->dialect() == sql::Dialect::postgres),
        where_("job store " + db_->describe()) {
    migrate(*db_);
  }

  std::string describe() const override { return db_->describe(); }

  Counts counts() override {
    return read([&] {
      Counts c;
      for (const sql::Row& r : db_->query("SELECT state, COUNT(*) FROM runs GROUP BY state"))
        c.runs[parse_run_state(r.s(0))] = r.i(1);
      const auto q = db_->query(
          "SELECT COUNT(*) FROM tasks t JOIN runs r ON r.id = t.run_id WHERE t.state = 'QUEUED' AND "
          "r.state IN ('QUEUED', 'RUNNING')");
      if (!q.empty()) c.queued_tasks = q[0].i(0);
      return c;
    });
  }

  int schema_version() override {
    const auto r = db_->query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
    return r.empty() ? 0 : static_cast<int>(r[0].i(0));
  }

  CreateRunResult create_run(const NewRun& req, int64_t now) override {
    const std::vector<TaskSpec> tasks = checked_tasks(req);
    BatchRunResult r = write([&] { return std::move(insert_runs({&req}, {&tasks}, now)[0]); });
    if (!r.created) throw InputError(r.error);
    return std::move(*r.created);
  }

  RunBatch create_run_batch(const std::string& runs_json, int64_t total, const std::string& idempotency_key,
                            int64_t now, bool& existed) override {
    return write([&] {
      existed = false;
      RunBatch b;
      b.id = "batch-" + random_hex(16);
      b.idempotency_key = idempotency_key;
      b.total = total;
      b.created_at = now;
      // A concurrent batch with the same key (another daemon) makes this insert wait for it; once it
      // commits, nothing is inserted and that batch is the answer.
      const auto inserted = db_->query(
          "INSERT INTO run_batches (id, idempotency_key, state, total, created_at, requests) VALUES (?, ?, "
          "'SUBMITTING', ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
          {b.id, opt_text(idempotency_key), total, now, runs_json});
      if (!inserted.empty()) return b;
      auto stored = batch_where("idempotency_key = ?", idempotency_key);
      if (!stored)
        throw Error(where_ + ": create batch: idempotency key '" + idempotency_key +
                    "' conflicts but no batch holds it");
      existed = true;
      return std::move(*stored);
    });
  }

  std::optional<RunBatch> get_run_batch(const std::string& id) override { return batch_where("id = ?", id); }

  std::vector<RunBatch> list_run_batches(std::optional<RunBatchState> state, const std::string& after_id,
                                         int limit) override {
    return read([&] {
      std::string sql = std::string("SELECT ") + kRunBatchCols + " FROM run_batches WHERE 1 = 1";
      std::vector<Value> params;
      if (state) {
        sql += " AND state = ?";
        params.emplace_back(std::string(to_string(*state)));
      }
      if (!after_id.empty()) {
        if (db_->query("SELECT 1 FROM run_batches WHERE id = ?", {after_id}).empty())
          throw InputError("invalid page token '" + after_id + "'");
        sql += " AND seq > (SELECT seq FROM run_batches WHERE id = ?)";
        params.emplace_back(after_id);
      }
      sql += " ORDER BY seq LIMIT ?";
      params.emplace_back(int64_t(std::clamp(limit, 1, 1000)));
      std::vector<RunBatch> out;
      for (const sql::Row& r : db_->query(sql, params))
        out.push_back(run_batch_from_row({r, kRunBatchCols, where_}));
      return out;
    });
  }

  std::optional<std::string> run_batch_requests(const std::string& id) override {
    const auto r = db_->query("SELECT requests FROM run_batches WHERE id = ? AND state = 'SUBMITTING'", {id});
    if (r.empty() || r[0].is_null(0)) return std::nullopt;
    return r[0].s(0);
  }

  std::optional<std::vector<BatchRunResult>> add_run_batch_results(
      const std::string& batch_id, int64_t first, int64_t count, const std::vector<NewRun>& runs,
      const std::vector<int64_t>& run_index, const std::vector<RunBatchRefusal>& refused,
      int64_t now) override {
    if (run_index.size() != runs.size() || int64_t(runs.size() + refused.size()) != count)
      throw Error(where_ + ": batch " + batch_id + ": " + std::to_string(runs.size()) + " runs and " +
                  std::to_string(refused.size()) + " refusals for " + std::to_string(count) + " requests");
    // Task graphs are checked before the transaction: a bad one is that run's error.
    std::vector<BatchRunResult> out(runs.size());
    std::vector<std::optional<std::vector<TaskSpec>>> graphs(runs.size());
    std::vector<const NewRun*> reqs;
    std::vector<const std::vector<TaskSpec>*> req_graphs;
    std::vector<size_t> valid;  // runs[valid[k]] is reqs[k]
    for (size_t i = 0; i < runs.size(); ++i) try {
        graphs[i] = checked_tasks(runs[i]);
        reqs.push_back(&runs[i]);
        req_graphs.push_back(&*graphs[i]);
        valid.push_back(i);
      } catch (const InputError& e) {
        out[i].error = e.what();
      }
    int64_t total = 0;
    // May rerun after a deadlock: each run's outcome is set afresh.
    const bool written = write([&] {
      const auto b = db_->query(
          "SELECT submitted, total, state FROM run_batches WHERE id = ?" + locked(" FOR UPDATE"), {batch_id});
      if (b.empty()) throw NotFoundError("run batch " + batch_id + " not found");
      total = b[0].i(1);
      if (b[0].i(0) != first || b[0].s(2) != "SUBMITTING") return false;
      if (first + count > total)
        throw Error(where_ + ": batch " + batch_id + ": results for requests past its last one");
      std::vector<BatchRunResult> stored = insert_runs(reqs, req_graphs, now);
      for (size_t k = 0; k < valid.size(); ++k) out[valid[k]] = std::move(stored[k]);
      std::vector<Value> rows;
      rows.reserve(size_t(count) * kItemRowParams);
      int64_t created = 0, existing = 0, failed = int64_t(refused.size());
      for (const RunBatchRefusal& f : refused)
        rows.insert(rows.end(), {batch_id, f.index, nullptr, int64_t(0), int64_t(f.code), f.message});
      for (size_t i = 0; i < runs.size(); ++i) {
        if (!out[i].created) {
          ++failed;
          rows.insert(rows.end(), {batch_id, run_index[i], nullptr, int64_t(0), int64_t(400), out[i].error});
          continue;
        }
        const bool existed = out[i].created->existed;
        ++(existed ? existing : created);
        rows.insert(rows.end(),
                    {batch_id, run_index[i], out[i].created->run.id, int64_t(existed), int64_t(0), nullptr});
      }
      sql::query_rows(
          *db_, "INSERT INTO run_batch_items (batch_id, idx, run_id, existed, error_code, error) VALUES ",
          "(?, ?, ?, ?, ?, ?)", "", kItemRowParams, std::move(rows));
      const bool last = first + count == total;
      std::vector<Value> params = {first + count, created, existing, failed};
      if (last) params.emplace_back(now);
      params.emplace_back(batch_id);
      db_->exec(
          std::string("UPDATE run_batches SET submitted = ?, created = created + ?, existing = existing + ?, "
                      "failed = failed + ?") +
              (last ? ", state = 'SUBMITTED', finished_at = ?, requests = NULL" : "") + " WHERE id = ?",
          params);
      return true;
    });
    if (!written) return std::nullopt;
    // PostgreSQL plans each lease from table statistics that autovacuum refreshes about once a minute.
    // A batch of thousands of runs changes the queue far more than that, and until the next
    // autoanalyze the lease's plan was built for the queue before it: measured 5 leases/s instead of
    // ~100 right after 10,000 runs were queued in capped groups (bench-service.sh --deep-queue), the
    // same statement at 0.8 ms once analyzed. ANALYZE samples a fixed number of rows (~0.1-0.3 s), so
    // a large batch refreshes them twice: once it has queued kAnalyzeAfterRuns and at its end. The
    // results have committed: a failed ANALYZE (a lock timeout, a role that does not own the tables)
    // leaves it to autovacuum.
    const int64_t done = first + count;
    if (pg_ && ((first < kAnalyzeAfterRuns && done >= kAnalyzeAfterRuns) ||
                (done == total && total >= kAnalyzeAfterRuns))) {
      try {
        db_->exec("ANALYZE runs, tasks, task_deps");
      } catch (const std::exception&) {
      }
    }
    return out;
  }

  std::vector<RunBatchItem> run_batch_items(const std::string& batch_id, int64_t from, int limit) override {
    std::vector<RunBatchItem> out;
    for (const sql::Row& r : db_->query(
             "SELECT i.idx, i.run_id, i.existed, i.error_code, i.error, r.state, r.group_name FROM "
             "run_batch_items i LEFT JOIN runs r ON r.id = i.run_id WHERE i.batch_id = ? AND i.idx >= ? "
             "ORDER BY i.idx LIMIT ?",
             {batch_id, from, int64_t(std::clamp(limit, 1, 1000))})) {
      RunBatchItem it;
      it.index = r.i(0);
      it.run_id = r.s(1);
      it.existed = r.i(2) != 0;
      it.error_code = int(r.i(3));
      it.error = r.s(4);
      it.run_state = r.s(5);
      it.group = r.s(6);
      out.push_back(std::move(it));
    }
    return out;
  }

  std::optional<Run> get_run(const std::string& run_id) override { return load_run(run_id); }

  RunPage list_runs(const RunFilter& f) override {
    const int page_size = std::clamp(f.page_size, 1, 1000);
    return read([&] {
      std::string sql = std::string("SELECT ") + kRunCols + " FROM runs WHERE 1 = 1";
      std::vector<Value> params;
      if (f.state) {
        sql += " AND state = ?";
        params.emplace_back(std::string(to_string(*f.state)));
      }
      if (f.workflow) {
        sql += " AND workflow = ?";
        params.emplace_back(*f.workflow);
      }
      if (!f.page_token.empty()) {
        if (db_->query("SELECT 1 FROM runs WHERE id = ?", {f.page_token}).empty())
          throw InputError("invalid page token '" + f.page_token + "'");
        sql += " AND seq > (SELECT seq FROM runs WHERE id = ?)";
        params.emplace_back(f.page_token);
      }
      sql += " ORDER BY seq LIMIT ?";
      params.emplace_back(int64_t(page_size) + 1);
      RunPage page;
      for (const sql::Row& r : db_->query(sql, params))
        page.runs.push_back(run_from_row({r, kRunCols, where_}));
      if (static_cast<int>(page.runs.size()) > page_size) {
        page.runs.pop_back();
        page.next_page_token = page.runs.back().id;
      }
      return page;
    });
  }

  std::vector<Task> list_tasks(const std::string& run_id) override {
    return read([&] {
      std::vector<Task> out;
      for (const sql::Row& r : db_->query(
               std::string("SELECT ") + kTaskCols + " FROM tasks WHERE run_id = ? ORDER BY seq", {run_id}))
        out.push_back(task_from_row({r, kTaskCols, where_}));
      std::map<std::string, std::vector<std::string>> deps;
      for (const sql::Row& r : db_->query("SELECT d.task_id, d.depends_on FROM task_deps d JOIN tasks t ON "
                                          "t.id = d.task_id WHERE t.run_id = ? ORDER BY d.task_id, d.pos",
                                          {run_id}))
        deps[r.s(0)].push_back(r.s(1));
      for (Task& t : out) t.depends_on = deps[t.id];
      return out;
    });
  }

  std::optional<Task> get_task(const std::string& task_id) override {
    return read([&] { return load_task(task_id, false); });
  }

  bool cancel_run(const std::string& run_id, int64_t now) override {
    return write([&] {
      if (is_terminal(lock_run(run_id))) return false;
      stop_unfinished_tasks(run_id, now);
      db_->exec("UPDATE runs SET state = 'CANCELED', updated_at = ? WHERE id = ?", {now, run_id});
      return true;
    });
  }

  bool resume_run(const std::string& run_id, int64_t now) override {
    return write([&] {
      const RunState state = lock_run(run_id);
      if (state != RunState::Failed && state != RunState::Canceled) return false;
      const std::string group = db_->query("SELECT group_name FROM runs WHERE id = ?", {run_id})[0].s(0);
      // FOR SHARE: a concurrent delete_run_group (another daemon) waits for this resume, or this
      // resume sees the group gone.
      if (!load_run_group(group, locked(" FOR SHARE")))
        throw ConflictError("run " + run_id + ": its run group '" + group +
                            "' was deleted; create the group again to resume the run");
      const int64_t requeued = db_->exec(
          "UPDATE tasks SET state = 'QUEUED', attempts = 0, not_before = 0, queued_at = ?, urgency = ? - "
          "(SELECT priority FROM runs WHERE runs.id = tasks.run_id) * ?, started_at = NULL, "
          "finished_at = NULL, lease_expires_at = NULL WHERE run_id = ? AND state <> 'COMPLETE'",
          {now, now, lease_order::kAgingMsPerPriority, run_id});
      db_->exec(
          "UPDATE runs SET state = ?, failure_reason = NULL, started_at = NULL, updated_at = ? WHERE id = ?",
          {std::string(requeued > 0 ? "QUEUED" : "COMPLETE"), now, run_id});
      return true;
    });
  }

  void set_run_provenance(const std::string& run_id, const json& patch, int64_t now) override {
    write([&] {
      const auto r = db_->query("SELECT provenance FROM runs WHERE id = ?" + locked(" FOR UPDATE"), {run_id});
      if (r.empty()) throw NotFoundError("run " + run_id + " not found");
      json prov = RowReader{r[0], "provenance", where_}.js(0);
      if (!prov.is_object()) prov = json::object();
      prov.merge_patch(patch);
      db_->exec("UPDATE runs SET provenance = ?, updated_at = ? WHERE id = ?", {prov.dump(), now, run_id});
    });
  }

  std::optional<LeasedTask> lease_task(const std::string& worker_id, const json& capabilities,
                                       int64_t lease_seconds, int64_t now) override {
    if (lease_seconds <= 0) throw InputError("lease_seconds must be positive");
    if (worker_id.empty()) throw InputError("worker id is empty");
    if (pg_)  // one statement (job_store_lease.hpp)
      return write([&] {
        return lease_in_one_statement_pg(*db_, worker_id, capabilities, random_hex(32), now,
                                         now + lease_seconds * 1000, where_);
      });
    return write([&]() -> std::optional<LeasedTask> {
      const std::string chosen = pick_leasable_task_sqlite(*db_, capabilities, now, where_);
      if (chosen.empty()) return std::nullopt;
      const std::string token = random_hex(32);
      const int64_t expires = now + lease_seconds * 1000;
      db_->exec(
          "UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, started_at = ?, finished_at = NULL, "
          "worker_id = ?, lease_token = ?, lease_expires_at = ? WHERE id = ?",
          {now, worker_id, token, expires, chosen});
      LeasedTask out;
      out.task = *load_task(chosen, false);
      db_->exec(
          "INSERT INTO leases (token, task_id, worker_id, attempt, leased_at, expires_at) VALUES (?, ?, ?, "
          "?, ?, ?)",
          {token, chosen, worker_id, int64_t(out.task.attempts), now, expires});
      db_->exec(
          "UPDATE runs SET state = 'RUNNING', updated_at = ?, started_at = COALESCE(started_at, ?) WHERE id "
          "= ? "
          "AND state = 'QUEUED'",
          {now, now, out.task.run_id});
      out.run = *load_run(out.task.run_id);
      return out;
    });
  }

  Task heartbeat(const std::string& task_id, const std::string& lease_token, int64_t lease_seconds,
                 int64_t now) override {
    if (lease_seconds <= 0) throw InputError("lease_seconds must be positive");
    return write([&] {
      auto task = lock_task(task_id);
      if (!task) throw NotFoundError("task " + task_id + " not found");
      if (task->state != TaskState::Running || task->lease_token != lease_token)
        throw LeaseError("task " + task_id + ": lease " + lease_token + " is not current (task is " +
                         to_string(task->state) + ")");
      const int64_t expires = now + lease_seconds * 1000;
      db_->exec("UPDATE tasks SET lease_expires_at = ? WHERE id = ?", {expires, task_id});
      db_->exec("UPDATE leases SET expires_at = ? WHERE token = ?", {expires, lease_token});
      task->lease_expires_at = expires;
      return *task;
    });
  }

  TaskResult complete_task(const std::string& task_id, const std::string& lease_token, const json& outputs,
                           int64_t now) override {
    return write([&] {
      const Task task = current_lease_task(task_id, lease_token, "complete task");
      const std::string outcome = lease_outcome(lease_token);
      if (outcome == "COMPLETE") return result(task_id, false, true);
      if (!outcome.empty())
        throw LeaseError("task " + task_id + ": lease " + lease_token + " already ended (" + outcome + ")");
      db_->exec(
          "UPDATE tasks SET state = 'COMPLETE', outputs = ?, finished_at = ?, lease_expires_at = NULL "
          "WHERE id = ?",
          {outputs.dump(), now, task_id});
      end_lease(lease_token, "COMPLETE", "", now);
      if (!task.cache_key.empty()) upsert_cache(task.cache_key, outputs, now);
      const auto run = load_run(task.run_id);
      json run_outputs = run->outputs.is_object() ? run->outputs : json::object();
      run_outputs[task.name] = outputs;
      db_->exec("UPDATE runs SET outputs = ?, updated_at = ? WHERE id = ?",
                {run_outputs.dump(), now, task.run_id});
      db_->exec(
          "UPDATE runs SET state = 'COMPLETE', updated_at = ? WHERE id = ? AND state IN ('QUEUED','RUNNING') "
          "AND NOT EXISTS (SELECT 1 FROM tasks WHERE run_id = ? AND state <> 'COMPLETE')",
          {now, task.run_id, task.run_id});
      return result(task_id, false, false);
    });
  }

  TaskResult fail_task(const std::string& task_id, const std::string& lease_token, const std::string& error,
                       bool retryable, int64_t now) override {
    return write([&] {
      const Task task = current_lease_task(task_id, lease_token, "fail task");
      const std::string outcome = lease_outcome(lease_token);
      if (outcome == "RETRY" || outcome == "FAILED") return result(task_id, outcome == "RETRY", true);
      if (!outcome.empty())
        throw LeaseError("task " + task_id + ": lease " + lease_token + " already ended (" + outcome + ")");
      const bool retry = retryable && task.attempts < task.max_attempts;
      if (retry) {
        const int shift = std::clamp(task.attempts - 1, 0, 40);
        const int64_t backoff = std::min(opts_.retry_max_ms, opts_.retry_base_ms << shift);
        requeue(task_id, error, now + backoff);
        end_lease(lease_token, "RETRY", error, now);
      } else {
        end_lease(lease_token, "FAILED", error, now);
        fail_task_and_run(task, error, now);
      }
      return result(task_id, retry, false);
    });
  }

  int expire_leases(int64_t now) override {
    return write([&] {
      std::vector<std::pair<std::string, std::string>> candidates;  // (task id, run id), oldest first
      for (const sql::Row& r : db_->query(
               "SELECT id, run_id FROM tasks WHERE state = 'RUNNING' AND lease_expires_at < ? ORDER BY seq",
               {now}))
        candidates.emplace_back(r.s(0), r.s(1));
      if (candidates.empty()) return 0;
      // Lock the runs in one global order (two daemons sweeping at once cannot deadlock), then
      // re-read each task: another daemon may have expired, completed or extended it meanwhile, and
      // an earlier expiry in this sweep may have failed its run and so canceled it.
      if (pg_) {
        std::set<std::string> runs;
        for (const auto& c : candidates) runs.insert(c.second);
        for (const std::string& run_id : runs) lock_run(run_id);
      }
      int expired = 0;
      for (const auto& c : candidates) {
        const auto rows =
            db_->query(std::string("SELECT ") + kTaskCols +
                           " FROM tasks WHERE id = ? AND state = 'RUNNING' AND lease_expires_at < ?" +
                           locked(" FOR UPDATE"),
                       {c.first, now});
        if (rows.empty()) continue;
        const Task t = task_from_row({rows[0], kTaskCols, where_});
        ++expired;
        const std::string error = "lease of worker " + t.worker_id + " expired (attempt " +
                                  std::to_string(t.attempts) + " of " + std::to_string(t.max_attempts) + ")";
        end_lease(t.lease_token, "EXPIRED", error, now);
        if (t.attempts < t.max_attempts)
          requeue(t.id, error, now);
        else
          fail_task_and_run(t, error, now);
      }
      return expired;
    });
  }

  RunGroup put_run_group(const RunGroup& group, int64_t now) override {
    validate_run_group(group);
    auto opt = [](const std::optional<int64_t>& v) { return v ? Value(*v) : Value(nullptr); };
    return write([&] {
      db_->exec(
          "INSERT INTO run_groups (name, max_runs, max_tasks, max_gpus, max_cpu_threads, max_run_seconds, "
          "default_priority, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) "
          "DO "
          "UPDATE SET max_runs = excluded.max_runs, max_tasks = excluded.max_tasks, max_gpus = "
          "excluded.max_gpus, max_cpu_threads = excluded.max_cpu_threads, max_run_seconds = "
          "excluded.max_run_seconds, default_priority = excluded.default_priority, updated_at = "
          "excluded.updated_at",
          {group.name, opt(group.max_runs), opt(group.max_tasks), opt(group.max_gpus),
           opt(group.max_cpu_threads), opt(group.max_run_seconds), group.default_priority, now, now});
      return *load_run_group(group.name);
    });
  }

  std::optional<RunGroup> get_run_group(const std::string& name) override { return load_run_group(name); }

  std::vector<RunGroup> list_run_groups() override {
    std::vector<RunGroup> out;
    for (const sql::Row& r :
         db_->query(std::string("SELECT ") + kRunGroupCols + " FROM run_groups ORDER BY name"))
      out.push_back(run_group_from_row({r, kRunGroupCols, where_}));
    return out;
  }

  bool delete_run_group(const std::string& name) override {
    if (name == kDefaultRunGroup) throw ConflictError("the default run group cannot be deleted");
    return write([&] {
      if (db_->query("SELECT 1 FROM run_groups WHERE name = ?" + locked(" FOR UPDATE"), {name}).empty())
        return false;
      const auto active = db_->query(
          "SELECT COUNT(*) FROM runs WHERE group_name = ? AND state IN ('QUEUED','RUNNING')", {name});
      if (!active.empty() && active[0].i(0) > 0)
        throw ConflictError("run group '" + name + "' has " + std::to_string(active[0].i(0)) +
                            " queued or running run(s)");
      db_->exec("DELETE FROM run_groups WHERE name = ?", {name});
      return true;
    });
  }

  std::vector<std::string> fail_overdue_runs(int64_t now) override {
    return write([&] {
      std::vector<std::pair<std::string, int64_t>> overdue;  // (run id, its group's limit in s)
      for (const sql::Row& r : db_->query(
               "SELECT r.id, g.max_run_seconds FROM runs r JOIN run_groups g ON g.name = r.group_name WHERE "
               "r.state = 'RUNNING' AND g.max_run_seconds IS NOT NULL AND r.started_at IS NOT NULL AND "
               "r.started_at + g.max_run_seconds * 1000 < ? ORDER BY r.id",
               {now}))
        overdue.emplace_back(r.s(0), r.i(1));
      std::vector<std::string> failed;
      for (const auto& [run_id, limit] : overdue) {  // run ids in sorted order: the global lock order
        if (lock_run(run_id) != RunState::Running) continue;  // another daemon ended it meanwhile
        const auto run = load_run(run_id);
        stop_unfinished_tasks(run_id, now);
        const std::string reason = "run exceeded the maximum run duration of its group '" + run->group +
                                   "' (" + std::to_string(limit) + " s since it started)";
        db_->exec("UPDATE runs SET state = 'FAILED', failure_reason = ?, updated_at = ? WHERE id = ?",
                  {reason, now, run_id});
        failed.push_back(run_id);
      }
      return failed;
    });
  }

  std::map<std::string, StageEstimate> stage_estimates(const std::string& workflow) override {
    return estimates_by_workflow(workflow)[workflow];
  }

  std::vector<AtRiskRun> flag_at_risk_runs(int64_t now) override {
    // What to look at, read without the write lock (a sweep that finds nothing at risk writes nothing).
    struct Candidate {
      AtRiskRun run;
      std::string callback_url;
    };
    std::vector<Candidate> at_risk;  // by run id: the global lock order
    bool prune = false;
    read([&] {
      const auto estimates = estimates_by_workflow("", &prune);
      struct Open {
        std::string workflow, group, callback_url;
        int64_t deadline = 0;
        std::vector<UnfinishedStage> stages;
      };
      std::map<std::string, Open> runs;
      for (const sql::Row& r : db_->query("SELECT r.id, r.workflow, r.group_name, r.callback_url, "
                                          "r.deadline, t.name, t.state, t.started_at "
                                          "FROM runs r JOIN tasks t ON t.run_id = r.id WHERE r.state IN "
                                          "('QUEUED','RUNNING') AND r.deadline "
                                          "IS NOT NULL AND r.at_risk_at IS NULL AND t.state IN "
                                          "('QUEUED','RUNNING') ORDER BY r.id, t.seq")) {
        Open& o = runs[r.s(0)];
        o.workflow = r.s(1);
        o.group = r.s(2);
        o.callback_url = r.s(3);
        o.deadline = r.i(4);
        o.stages.push_back(
            {r.s(5), r.s(6) == "RUNNING", r.is_null(7) ? std::nullopt : std::optional(r.i(7))});
      }
      static const std::map<std::string, StageEstimate> kNone;
      for (auto& [run_id, o] : runs) {
        const auto e = estimates.find(o.workflow);
        RunRisk risk = assess_run_risk(o.deadline, o.stages, e == estimates.end() ? kNone : e->second, now);
        if (risk.at_risk)
          at_risk.push_back({{run_id, o.group, o.deadline, std::move(risk), false}, o.callback_url});
      }
      return true;
    });
    // Keep the last kStageSampleWindow samples of each stage (its own transaction: two daemons pruning
    // at once at worst retry, and flagging waits for nothing it holds).
    if (prune)
      write([&] {
        db_->exec(
            "DELETE FROM stage_samples WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION "
            "BY "
            "workflow, task_name ORDER BY id DESC) AS newest FROM stage_samples) s WHERE newest > ?)",
            {int64_t(kStageSampleWindow)});
        return true;
      });
    if (at_risk.empty()) return {};
    return write([&] {
      std::vector<AtRiskRun> flagged;
      for (Candidate& c : at_risk) {
        // The claim: a run another daemon flagged first (committed, or holding the row until it
        // commits), or that ended meanwhile, changes no row here.
        if (db_->exec("UPDATE runs SET at_risk_at = ? WHERE id = ? AND at_risk_at IS NULL AND state IN "
                      "('QUEUED','RUNNING')",
                      {now, c.run.run_id}) != 1)
          continue;
        if (!c.callback_url.empty()) {
          const std::string state = db_->query("SELECT state FROM runs WHERE id = ?", {c.run.run_id})[0].s(0);
          const json detail = {{"deadline", c.run.deadline},
                               {"estimated_finish_at", c.run.risk.finish_at},
                               {"remaining_ms", c.run.risk.remaining_ms},
                               {"unmeasured_stages", c.run.risk.unmeasured},
                               {"reason", c.run.risk.reason}};
          db_->exec(
              "INSERT INTO webhooks (run_id, url, state, created_at, next_attempt_at, event, detail) VALUES "
              "(?, ?, "
              "?, ?, ?, 'run.at_risk', ?)",
              {c.run.run_id, c.callback_url, state, now, now, detail.dump()});
          c.run.webhook = true;
        }
        flagged.push_back(std::move(c.run));
      }
      return flagged;
    });
  }

  void put_cache(const std::string& cache_key, const json& outputs, int64_t now) override {
    if (cache_key.empty()) throw InputError("cache key is empty");
    write([&] { upsert_cache(cache_key, outputs, now); });
  }

  std::optional<json> get_cache(const std::string& cache_key) override {
    const auto r = db_->query("SELECT outputs FROM cache WHERE cache_key = ?", {cache_key});
    if (r.empty()) return std::nullopt;
    return RowReader{r[0], "outputs", where_}.js(0);
  }

  std::vector<WebhookDelivery> claim_webhooks(int limit, int64_t claim_ms, int64_t now) override {
    return write([&] {
      std::vector<WebhookDelivery> out;
      for (const sql::Row& r :
           db_->query(std::string("SELECT ") + kWebhookCols +
                          " FROM webhooks WHERE status = 'PENDING' AND next_attempt_at <= ? ORDER BY "
                          "next_attempt_at, id LIMIT ?" +
                          locked(" FOR UPDATE SKIP LOCKED"),
                      {now, int64_t(std::max(limit, 1))}))
        out.push_back(webhook_from_row({r, kWebhookCols, where_}));
      for (WebhookDelivery& w : out) {
        db_->exec("UPDATE webhooks SET next_attempt_at = ? WHERE id = ?", {now + claim_ms, w.id});
        w.next_attempt_at = now + claim_ms;
      }
      return out;
    });
  }

  void record_webhook_attempt(int64_t id, bool delivered, const std::string& error, int64_t retry_at,
                              int64_t now) override {
    write([&] {
      const auto r = db_->query("SELECT status FROM webhooks WHERE id = ?" + locked(" FOR UPDATE"), {id});
      if (r.empty()) throw NotFoundError("webhook event " + std::to_string(id) + " not found");
      if (r[0].s(0) != "PENDING") return;  // already settled (a concurrent daemon delivered it)
      const char* status = delivered ? "DELIVERED" : retry_at > 0 ? "PENDING" : "FAILED";
      db_->exec(
          "UPDATE webhooks SET status = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
          "delivered_at = ? WHERE id = ?",
          {std::string(status), opt_text(delivered ? std::string() : error), retry_at > 0 ? retry_at : now,
           delivered ? Value(now) : Value(nullptr), id});
    });
  }

  std::vector<WebhookDelivery> list_webhooks(const std::string& run_id) override {
    std::vector<WebhookDelivery> out;
    for (const sql::Row& r : db_->query(
             std::string("SELECT ") + kWebhookCols + " FROM webhooks WHERE run_id = ? ORDER BY id", {run_id}))
      out.push_back(webhook_from_row({r, kWebhookCols, where_}));
    return out;
  }

 private:
  // fn() inside one write transaction, committed when it returns and rolled back when it throws. A
  // deadlock or serialisation failure reported by the server reruns it (a few times).
  template <class F>
  std::invoke_result_t<F&> write(F&& fn) {
    for (int attempt = 1;; ++attempt) {
      try {
        return in_transaction(fn, sql::TxKind::write);
      } catch (const sql::RetryableError&) {
        if (attempt >= 5) throw;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt));
    }
  }
  // fn() on one consistent snapshot (several statements that must agree with each other).
  template <class F>
  std::invoke_result_t<F&> read(F&& fn) {
    return in_transaction(fn, sql::TxKind::read);
  }
  template <class F>
  std::invoke_result_t<F&> in_transaction(F& fn, sql::TxKind kind) {
    using R = std::invoke_result_t<F&>;
    if constexpr (std::is_void_v<R>) {
      db_->transaction(fn, kind);
    } else {
      std::optional<R> out;
      db_->transaction([&] { out.emplace(fn()); }, kind);
      return std::move(*out);
    }
  }

  // A row-locking clause, on PostgreSQL only: SQLite's write transaction already locks everything.
  std::string locked(const char* clause) const { return pg_ ? clause : ""; }

  std::optional<RunBatch> batch_where(const char* condition, const std::string& value) {
    const auto r =
        db_->query(std::string("SELECT ") + kRunBatchCols + " FROM run_batches WHERE " + condition, {value});
    if (r.empty()) return std::nullopt;
    return run_batch_from_row({r[0], kRunBatchCols, where_});
  }

  std::optional<Run> load_run(const std::string& run_id) {
    const auto r = db_->query(std::string("SELECT ") + kRunCols + " FROM runs WHERE id = ?", {run_id});
    if (r.empty()) return std::nullopt;
    return run_from_row({r[0], kRunCols, where_});
  }

  // The run's task graph, validated (InputError).
  static std::vector<TaskSpec> checked_tasks(const NewRun& req) {
    std::vector<TaskSpec> tasks = req.tasks.empty() ? default_tasks(req.workflow) : req.tasks;
    validate_new_run(req, tasks);
    check_run_group_name(req.group.empty() ? std::string(kDefaultRunGroup) : req.group);
    return tasks;
  }

  // Creates runs (each with its checked task graph) inside the caller's write transaction: create_run
  // is a batch of one. Rows go in with a few multi-row statements per table (sql_rows.hpp), whatever
  // the number of runs: one run costs the statements it did before, 10,000 runs some 500 instead of
  // 70,000. A run whose idempotency key is stored already, or taken by a run before it in the batch, is
  // that run (existed = true). A run the store refuses (group unknown, a task bigger than the group's
  // caps) gets its error and writes nothing; errors are found before anything is written.
  std::vector<BatchRunResult> insert_runs(const std::vector<const NewRun*>& reqs,
                                          const std::vector<const std::vector<TaskSpec>*>& tasks,
                                          int64_t now) {
    std::vector<BatchRunResult> out(reqs.size());
    const auto stored = runs_by_keys(reqs);
    std::map<std::string, std::optional<RunGroup>> groups;  // each group read once per batch
    std::map<std::string, size_t> creating_key;             // idempotency key -> the run creating it
    std::vector<size_t> creating, duplicate;                // runs to insert; runs naming a key of one
    std::vector<std::vector<TaskDemands>> demands(reqs.size());
    std::vector<Value> run_rows;
    run_rows.reserve(reqs.size() * kRunRowParams);
    for (size_t i = 0; i < reqs.size(); ++i) {
      const NewRun& req = *reqs[i];
      if (!req.idempotency_key.empty()) {
        if (auto it = stored.find(req.idempotency_key); it != stored.end()) {
          out[i].created = CreateRunResult{it->second, true};
          continue;
        }
        if (creating_key.count(req.idempotency_key)) {
          duplicate.push_back(i);
          continue;
        }
      }
      const std::string group_name = req.group.empty() ? std::string(kDefaultRunGroup) : req.group;
      auto g = groups.find(group_name);
      // FOR SHARE: a concurrent delete_run_group (another daemon) waits for this batch, or this batch
      // sees the group gone.
      if (g == groups.end())
        g = groups.emplace(group_name, load_run_group(group_name, locked(" FOR SHARE"))).first;
      try {
        if (!g->second) throw InputError("unknown run group '" + group_name + "'");
        for (const TaskSpec& t : *tasks[i]) {
          demands[i].push_back(task_demands(t.parameters, t.requirements));
          check_within_group(*g->second, t, demands[i].back());
        }
      } catch (const InputError& e) {
        out[i].error = e.what();
        continue;
      }
      Run run = new_run_row(req, *g->second, now);
      append_run_row(run_rows, run);
      if (!req.idempotency_key.empty()) creating_key.emplace(req.idempotency_key, i);
      out[i].created = CreateRunResult{std::move(run), false};
      creating.push_back(i);
    }
    if (creating.empty()) {
      resolve_duplicates(out, reqs, creating_key, duplicate);
      return out;
    }
    // A concurrent create_run with the same key (another daemon) makes this insert wait for it; once it
    // commits, that row is not inserted and its run is returned instead.
    std::set<std::string> inserted;
    for (const sql::Row& r : sql::query_rows(
             *db_,
             "INSERT INTO runs (id, workflow, inputs, parameters, state, "
             "created_at, updated_at, callback_url, idempotency_key, provenance, "
             "priority, deadline, group_name) VALUES ",
             "(?, ?, ?, ?, 'QUEUED', ?, ?, ?, ?, ?, ?, ?, ?)",
             " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id", kRunRowParams, std::move(run_rows)))
      inserted.insert(r.s(0));
    std::vector<Value> task_rows, dep_rows;
    task_rows.reserve(creating.size() * kTaskRowParams * 3);  // 3 tasks a germline run
    dep_rows.reserve(creating.size() * kDepRowParams * 2);
    for (size_t i : creating) {
      const Run& run = out[i].created->run;
      if (!inserted.count(run.id)) {
        auto existing = run_by_key(run.idempotency_key);
        if (!existing)
          throw Error(where_ + ": create run: idempotency key '" + run.idempotency_key +
                      "' conflicts but no run holds it");
        out[i].created = CreateRunResult{std::move(*existing), true};
        continue;
      }
      append_task_rows(task_rows, dep_rows, run, *tasks[i], demands[i], now);
    }
    sql::query_rows(
        *db_,
        "INSERT INTO tasks (id, run_id, name, kind, state, max_attempts, parameters, requirements, "
        "cache_key, queued_at, deadline_rank, urgency, group_name, gpus, cpu_threads) VALUES ",
        "(?, ?, ?, ?, 'QUEUED', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "", kTaskRowParams, std::move(task_rows));
    sql::query_rows(*db_, "INSERT INTO task_deps (task_id, depends_on, pos) VALUES ", "(?, ?, ?)", "",
                    kDepRowParams, std::move(dep_rows));
    resolve_duplicates(out, reqs, creating_key, duplicate);
    return out;
  }

  // The stored runs holding the idempotency keys of reqs, by key (a few statements however many).
  std::map<std::string, Run> runs_by_keys(const std::vector<const NewRun*>& reqs) {
    std::set<std::string> unique;
    for (const NewRun* r : reqs)
      if (!r->idempotency_key.empty()) unique.insert(r->idempotency_key);
    const std::vector<Value> keys(unique.begin(), unique.end());
    std::map<std::string, Run> out;
    for (const sql::Row& r :
         sql::query_rows(*db_, std::string("SELECT ") + kRunCols + " FROM runs WHERE idempotency_key IN (",
                         "?", ")", 1, keys)) {
      Run run = run_from_row({r, kRunCols, where_});
      out.emplace(run.idempotency_key, std::move(run));
    }
    return out;
  }

  // A run naming the idempotency key of a run before it in the same batch is that run.
  static void resolve_duplicates(std::vector<BatchRunResult>& out, const std::vector<const NewRun*>& reqs,
                                 const std::map<std::string, size_t>& creating_key,
                                 const std::vector<size_t>& duplicate) {
    for (size_t i : duplicate) {
      out[i].created = out[creating_key.at(reqs[i]->idempotency_key)].created;
      out[i].created->existed = true;
    }
  }

  // The run a request creates, as it is written (the batch answers from it rather than read 10,000
  // runs back).
  static Run new_run_row(const NewRun& req, const RunGroup& group, int64_t now) {
    Run run;
    run.id = "run-" + random_hex(16);
    run.workflow = req.workflow;
    run.inputs = req.inputs;
    run.parameters = req.parameters;
    run.created_at = run.updated_at = now;
    run.callback_url = req.callback_url;
    run.idempotency_key = req.idempotency_key;
    run.outputs = json::object();
    run.provenance = req.provenance.is_object() ? req.provenance : json::object();
    run.priority = req.priority ? *req.priority : group.default_priority;
    run.deadline = req.deadline;
    run.group = group.name;
    return run;
  }

  // A batch of at least this many runs refreshes PostgreSQL's statistics of the queue
  // (add_run_batch_results).
  static constexpr int64_t kAnalyzeAfterRuns = 1000;
  // The parameters of one row of run_batch_items.
  static constexpr size_t kItemRowParams = 6;
  // The parameters of one row of each insert in insert_runs, in its column order.
  static constexpr size_t kRunRowParams = 12, kTaskRowParams = 14, kDepRowParams = 3;
  static void append_run_row(std::vector<Value>& rows, const Run& run) {
    rows.insert(rows.end(), {run.id, run.workflow, run.inputs.dump(), run.parameters.dump(), run.created_at,
                             run.updated_at, opt_text(run.callback_url), opt_text(run.idempotency_key),
                             run.provenance.dump(), run.priority,
                             run.deadline ? Value(*run.deadline) : Value(nullptr), run.group});
  }
  static void append_task_rows(std::vector<Value>& task_rows, std::vector<Value>& dep_rows, const Run& run,
                               const std::vector<TaskSpec>& tasks, const std::vector<TaskDemands>& demands,
                               int64_t now) {
    for (size_t i = 0; i < tasks.size(); ++i) {
      const TaskSpec& t = tasks[i];
      const std::string task_id = run.id + "/" + t.name;
      task_rows.insert(
          task_rows.end(),
          {task_id, run.id, t.name, t.kind, int64_t(t.max_attempts), t.parameters.dump(),
           t.requirements.dump(), opt_text(t.cache_key), now, lease_order::deadline_rank(run.deadline),
           lease_order::urgency(now, run.priority), run.group, demands[i].gpus, demands[i].cpu_threads});
      int64_t pos = 0;
      for (const std::string& dep : t.depends_on)
        dep_rows.insert(dep_rows.end(), {task_id, run.id + "/" + dep, pos++});
    }
  }

  std::optional<RunGroup> load_run_group(const std::string& name, const std::string& lock = "") {
    const auto r =
        db_->query(std::string("SELECT ") + kRunGroupCols + " FROM run_groups WHERE name = ?" + lock, {name});
    if (r.empty()) return std::nullopt;
    return run_group_from_row({r[0], kRunGroupCols, where_});
  }

  // A task that needs more than its group may ever hold would wait forever: refused at submission.
  static void check_within_group(const RunGroup& g, const TaskSpec& t, const TaskDemands& d) {
    if (g.max_gpus && d.gpus > *g.max_gpus)
      throw InputError("task " + t.name + " needs " + std::to_string(d.gpus) + " GPU(s) but run group '" +
                       g.name + "' allows " + std::to_string(*g.max_gpus) + " at once");
    if (g.max_cpu_threads && d.cpu_threads > *g.max_cpu_threads)
      throw InputError("task " + t.name + " needs " + std::to_string(d.cpu_threads) +
                       " CPU thread(s) but run group '" + g.name + "' allows " +
                       std::to_string(*g.max_cpu_threads) + " at once");
  }

  std::optional<Run> run_by_key(const std::string& key) {
    const auto r = db_->query("SELECT id FROM runs WHERE idempotency_key = ?", {key});
    if (r.empty()) return std::nullopt;
    return load_run(r[0].s(0));
  }

  std::optional<Task> load_task(const std::string& task_id, bool for_update) {
    const auto r = db_->query(std::string("SELECT ") + kTaskCols + " FROM tasks WHERE id = ?" +
                                  (for_update ? locked(" FOR UPDATE") : std::string()),
                              {task_id});
    if (r.empty()) return std::nullopt;
    Task t = task_from_row({r[0], kTaskCols, where_});
    for (const sql::Row& d :
         db_->query("SELECT depends_on FROM task_deps WHERE task_id = ? ORDER BY pos", {task_id}))
      t.depends_on.push_back(d.s(0));
    return t;
  }

  // Stage estimates (run_at_risk.hpp) by workflow, then task name: of one workflow, or of all for "".
  // *over_window: some stage holds more samples than the window (time to prune).
  std::map<std::string, std::map<std::string, StageEstimate>> estimates_by_workflow(
      const std::string& workflow, bool* over_window = nullptr) {
    std::map<std::pair<std::string, std::string>, std::vector<int64_t>> samples;  // newest first
    for (const sql::Row& r : db_->query(
             "SELECT workflow, task_name, duration_ms FROM stage_samples WHERE CAST(? AS TEXT) = '' OR "
             "workflow = ? ORDER BY id DESC",
             {workflow, workflow}))
      samples[{r.s(0), r.s(1)}].push_back(r.i(2));
    std::map<std::string, std::map<std::string, StageEstimate>> out;
    for (auto& [stage, d] : samples) {
      if (d.size() > size_t(kStageSampleWindow)) {
        if (over_window) *over_window = true;
        d.resize(kStageSampleWindow);
      }
      out[stage.first][stage.second] = {median_duration_ms(d), static_cast<int>(d.size())};
    }
    return out;
  }

  // Locks the run row (on PostgreSQL, the lock that guards the run's tasks and leases) and returns
  // its state.
  RunState lock_run(const std::string& run_id) {
    const auto r = db_->query("SELECT state FROM runs WHERE id = ?" + locked(" FOR UPDATE"), {run_id});
    if (r.empty()) throw NotFoundError("run " + run_id + " not found");
    return parse_run_state(r[0].s(0));
  }

  // Locks the task's run, then the task, and returns the task as it is after the locks.
  std::optional<Task> lock_task(const std::string& task_id) {
    if (pg_) {
      const auto r = db_->query("SELECT run_id FROM tasks WHERE id = ?", {task_id});
      if (r.empty()) return std::nullopt;
      lock_run(r[0].s(0));  // a task's run never changes, so reading it unlocked is safe
    }
    return load_task(task_id, true);
  }

  // The task (locked), after checking that lease_token is a lease of it and the latest one.
  Task current_lease_task(const std::string& task_id, const std::string& lease_token, const char* op) {
    auto task = lock_task(task_id);
    if (!task) throw NotFoundError("task " + task_id + " not found");
    if (lease_token.empty() || task->lease_token != lease_token)
      throw LeaseError("task " + task_id + ": lease " + lease_token + " is not the task's current lease (" +
                       op + ")");
    return *task;
  }

  std::string lease_outcome(const std::string& token) {
    const auto r = db_->query("SELECT outcome FROM leases WHERE token = ?", {token});
    if (r.empty()) throw LeaseError("unknown lease " + token);
    return r[0].s(0);
  }

  void end_lease(const std::string& token, const char* outcome, const std::string& error, int64_t now) {
    db_->exec("UPDATE leases SET outcome = ?, outcome_at = ?, error = ? WHERE token = ?",
              {std::string(outcome), now, opt_text(error), token});
  }

  // Back to QUEUED for another attempt, leasable from not_before.
  void requeue(const std::string& task_id, const std::string& error, int64_t not_before) {
    db_->exec(
        "UPDATE tasks SET state = 'QUEUED', last_error = ?, not_before = ?, lease_expires_at = NULL WHERE id "
        "= ?",
        {error, not_before, task_id});
  }

  void upsert_cache(const std::string& cache_key, const json& outputs, int64_t now) {
    db_->exec(
        "INSERT INTO cache (cache_key, outputs, created_at) VALUES (?, ?, ?) ON CONFLICT (cache_key) DO "
        "UPDATE "
        "SET outputs = excluded.outputs, created_at = excluded.created_at",
        {cache_key, outputs.dump(), now});
  }

  // Cancels the run's QUEUED and RUNNING tasks (their leases end CANCELED). The caller holds the
  // run's lock.
  void stop_unfinished_tasks(const std::string& run_id, int64_t now) {
    db_->exec(
        "UPDATE leases SET outcome = 'CANCELED', outcome_at = ? WHERE outcome IS NULL AND "
        "task_id IN (SELECT id FROM tasks WHERE run_id = ? AND state = 'RUNNING')",
        {now, run_id});
    db_->exec(
        "UPDATE tasks SET state = 'CANCELED', finished_at = ?, lease_expires_at = NULL "
        "WHERE run_id = ? AND state IN ('QUEUED','RUNNING')",
        {now, run_id});
  }

  // The task FAILED for good: it fails its run with the error; the run's other unfinished tasks
  // are canceled (resume_run re-queues them). The caller holds the run's lock.
  void fail_task_and_run(const Task& task, const std::string& error, int64_t now) {
    db_->exec(
        "UPDATE tasks SET state = 'FAILED', last_error = ?, finished_at = ?, lease_expires_at = NULL "
        "WHERE id = ?",
        {error, now, task.id});
    if (is_terminal(lock_run(task.run_id))) return;
    stop_unfinished_tasks(task.run_id, now);
    const std::string reason = "task " + task.name + " (" + task.kind + ") failed after " +
                               std::to_string(task.attempts) + " attempt" + (task.attempts == 1 ? "" : "s") +
                               ": " + error;
    db_->exec("UPDATE runs SET state = 'FAILED', failure_reason = ?, updated_at = ? WHERE id = ?",
              {reason, now, task.run_id});
  }

  TaskResult result(const std::string& task_id, bool retry, bool duplicate) {
    TaskResult r;
    r.task = *load_task(task_id, false);
    r.run_state = lock_run(r.task.run_id);
    r.retry_scheduled = retry;
    r.duplicate = duplicate;
    return r;
  }

  JobStoreOptions opts_;
  std::unique_ptr<sql::Db> db_;
  bool pg_;
  std::string where_;  // "job store <database>", for error messages
};

}  // namespace

std::unique_ptr<JobStore> open_sqlite_job_store(const std::string& path, const JobStoreOptions& opts) {
  sql::DbOptions o;
  o.busy_timeout_ms = opts.busy_timeout_ms;
  // Safe here: the store's transaction functions take no locks of their own.
  o.group_commit = true;
  return std::make_unique<SqlJobStore>(sql::open_sqlite_db(path, "job store", o), opts);
}

std::unique_ptr<JobStore> open_postgres_job_store(const std::string& url, const JobStoreOptions& opts) {
  sql::DbOptions o;
  o.busy_timeout_ms = opts.busy_timeout_ms;
  o.connections = opts.connections;
  return std::make_unique<SqlJobStore>(sql::open_postgres_db(url, "job store", o), opts);
}

}  // namespace omicsd
