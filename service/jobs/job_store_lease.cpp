// The lease's pick on each database (job_store_lease.hpp).
#include "service/jobs/job_store_lease.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <tuple>
#include <vector>

#include "service/jobs/job_store_rows.hpp"
#include "service/jobs/lease_order.hpp"
#include "service/jobs/run_group.hpp"
#include "service/jobs/task_graph.hpp"

namespace omicsd::job_store_rows {
namespace {

using nlohmann::json;

// "a, b" -> "p.a, p.b".
std::string prefixed(const std::string& prefix, const std::string& cols) {
  std::string out;
  for (size_t at = 0; at < cols.size();) {
    size_t comma = cols.find(',', at);
    if (comma == std::string::npos) comma = cols.size();
    size_t b = at;
    while (b < comma && cols[b] == ' ') ++b;
    out += (out.empty() ? "" : ", ") + prefix + cols.substr(b, comma - b);
    at = comma + 1;
  }
  return out;
}

// Over run_groups g: the group may have a task that kWithinCapsSql lets through now. False only when
// none can pass whatever the task: its running tasks are at max_tasks, its running tasks' CPU threads
// at max_cpu_threads (every task holds at least one), or its running runs at max_runs while none of
// them has a QUEUED task whose dependencies are COMPLETE. The lease skips such a group without reading
// its queue, so a lease costs the same however many tasks wait in groups at their caps.
constexpr const char* kGroupMayLeaseSql =
    "NOT ((g.max_tasks IS NOT NULL AND (SELECT COUNT(*) FROM tasks x WHERE x.group_name = g.name AND "
    "x.state = 'RUNNING') >= g.max_tasks) "
    "OR (g.max_cpu_threads IS NOT NULL AND (SELECT COALESCE(SUM(x.cpu_threads), 0) FROM tasks x WHERE "
    "x.group_name = g.name AND x.state = 'RUNNING') >= g.max_cpu_threads) "
    // Nested so that both databases start from the group's running runs (runs_by_group), then their
    // tasks (tasks_by_run), not from every QUEUED task; "|| ''" keeps SQLite from reading the tasks
    // through an index on state instead.
    "OR (g.max_runs IS NOT NULL AND (SELECT COUNT(*) FROM runs y WHERE y.group_name = g.name AND "
    "y.state = 'RUNNING') >= g.max_runs AND NOT EXISTS (SELECT 1 FROM runs y WHERE y.group_name = g.name "
    "AND y.state = 'RUNNING' AND EXISTS (SELECT 1 FROM tasks x WHERE x.run_id = y.id AND x.state || '' = "
    "'QUEUED' AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks u ON u.id = d.depends_on WHERE "
    "d.task_id = x.id AND u.state <> 'COMPLETE')))))";

// pg_advisory_xact_lock key serialising leases of one database ("omicsd" + 2).
constexpr int64_t kLeaseLockKey = 0x6f6d6963736402;

size_t column_count(const char* cols) { return size_t(std::count(cols, cols + std::strlen(cols), ',')) + 1; }

// The statement of lease_in_one_statement_pg. Parameters: now, capabilities (3x), now, worker, token,
// expires, token, worker, now, expires, now, now.
std::string lease_statement_pg() {
  // A requirement is met when the capability of that name is a number at least the required number,
  // or equals the required value (JSON equality); requirements that are not an object ask for nothing
  // (capabilities_satisfy). CASE, unlike AND, fixes the evaluation order, so jsonb_each only ever
  // sees an object and a cast to numeric only a number.
  const std::string meets =
      "(CASE WHEN jsonb_typeof(t.requirements::jsonb) = 'object' THEN NOT EXISTS ("
      "SELECT 1 FROM jsonb_each(t.requirements::jsonb) q WHERE NOT COALESCE(CASE "
      "WHEN jsonb_typeof(q.value) = 'number' THEN CASE WHEN jsonb_typeof(?::jsonb -> q.key) = 'number' "
      "THEN (?::jsonb -> q.key)::numeric >= q.value::numeric ELSE false END "
      "ELSE (?::jsonb -> q.key) = q.value END, false)) ELSE true END)";
  // The pick reads each run group's queue (index tasks_group_queue) in lease order up to its first
  // leasable task, skipping groups where nothing can be leased (kGroupMayLeaseSql), and takes the first
  // of those per-group picks in lease order: the first leasable task of the whole queue, without
  // reading past the tasks of groups at their caps. Every QUEUED task's group is in run_groups
  // (delete_run_group and resume_run see to it).
  return std::string(
             "WITH pick AS (SELECT c.id, c.run_id FROM run_groups g CROSS JOIN LATERAL ("
             "SELECT t.id, t.run_id, t.deadline_rank, t.urgency, t.seq FROM tasks t JOIN runs r ON r.id = "
             "t.run_id WHERE t.group_name = g.name AND t.state = 'QUEUED' AND t.not_before <= ? "
             "AND r.state IN ('QUEUED','RUNNING') "
             "AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks u ON u.id = d.depends_on "
             "WHERE d.task_id = t.id AND u.state <> 'COMPLETE') AND ") +
         kWithinCapsSql + " AND " + meets + " ORDER BY " + lease_order::kOrderBy +
         " LIMIT 1 FOR UPDATE OF t, r SKIP LOCKED) c WHERE " + kGroupMayLeaseSql +
         " ORDER BY c.deadline_rank, c.urgency, c.seq LIMIT 1), "
         "leased AS (UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, started_at = ?, "
         "finished_at = NULL, worker_id = ?, lease_token = ?, lease_expires_at = ? FROM pick "
         "WHERE tasks.id = pick.id RETURNING tasks.*), "
         "lease_row AS (INSERT INTO leases (token, task_id, worker_id, attempt, leased_at, expires_at) "
         "SELECT ?, id, ?, attempts, ?, ? FROM leased), "
         "leased_run AS (UPDATE runs SET state = CASE WHEN state = 'QUEUED' THEN 'RUNNING' ELSE state END, "
         "updated_at = CASE WHEN state = 'QUEUED' THEN ? ELSE updated_at END, "
         "started_at = COALESCE(started_at, ?) FROM pick "
         "WHERE runs.id = pick.run_id RETURNING runs.*) "
         "SELECT " +
         prefixed("leased.", kTaskCols) +
         ", (SELECT string_agg(depends_on, ',' ORDER BY pos) FROM task_deps WHERE task_id = leased.id), " +
         prefixed("leased_run.", kRunCols) + " FROM leased, leased_run";
}

}  // namespace

std::string pick_leasable_task_sqlite(sql::Db& db, const json& capabilities, int64_t now,
                                      const std::string& where) {
  static const std::string kLeasable =
      std::string(
          "t.group_name = ? AND t.state = 'QUEUED' AND t.not_before <= ? AND r.state IN ('QUEUED','RUNNING') "
          "AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks u ON u.id = d.depends_on "
          "WHERE d.task_id = t.id AND u.state <> 'COMPLETE') AND ") +
      kWithinCapsSql;
  // As on PostgreSQL (lease_statement_pg): each group's queue up to its first task the worker can
  // take, groups where nothing can be leased skipped, the first of those in lease order.
  struct Pick {
    std::string id;
    int64_t rank = 0, urgency = 0, seq = 0;
    bool before(const Pick& o) const {
      return std::tie(rank, urgency, seq) < std::tie(o.rank, o.urgency, o.seq);
    }
  };
  std::optional<Pick> best;
  for (const sql::Row& group : db.query(std::string("SELECT g.name FROM run_groups g WHERE ") +
                                        kGroupMayLeaseSql + " ORDER BY g.name")) {
    constexpr int64_t kPage = 64;
    // Keyset paging in lease order (lease_order.hpp): each page starts after the last row of the one
    // before. The first page starts before every key (deadline_rank and urgency are int64).
    constexpr int64_t kLowest = std::numeric_limits<int64_t>::min();
    int64_t after_rank = kLowest, after_urgency = kLowest, after_seq = kLowest;
    for (bool more = true; more;) {
      const auto page = db.query(
          std::string(
              "SELECT t.id, t.requirements, t.deadline_rank, t.urgency, t.seq FROM tasks t JOIN runs r "
              "ON r.id = t.run_id JOIN run_groups g ON g.name = t.group_name WHERE ") +
              kLeasable + " AND (t.deadline_rank, t.urgency, t.seq) > (?, ?, ?) ORDER BY " +
              lease_order::kOrderBy + " LIMIT ?",
          {group.s(0), now, after_rank, after_urgency, after_seq, kPage});
      more = int64_t(page.size()) == kPage;
      for (const sql::Row& r : page) {
        const Pick here{r.s(0), r.i(2), r.i(3), r.i(4)};
        if (best && best->before(here)) {  // this group has nothing ahead of the pick so far
          more = false;
          break;
        }
        if (capabilities_satisfy(capabilities, RowReader{r, "id, requirements", where}.js(1))) {
          best = here;
          more = false;
          break;
        }
        after_rank = here.rank;
        after_urgency = here.urgency;
        after_seq = here.seq;
      }
    }
  }
  return best ? best->id : "";
}

std::optional<LeasedTask> lease_in_one_statement_pg(sql::Db& db, const std::string& worker_id,
                                                    const json& capabilities, const std::string& token,
                                                    int64_t now, int64_t expires, const std::string& where) {
  static const std::string kStatement = lease_statement_pg();
  const std::string caps = capabilities.is_object() ? capabilities.dump() : "{}";
  // The pick must read the queue index in order and stop at the first match. The planner, with
  // statistics that lag a queue filling at hundreds of runs a second, otherwise may read every QUEUED
  // task and sort them (8 ms at 3,000 queued instead of 0.6 ms, measured): a lease would cost time in
  // proportion to the queue's depth.
  db.exec("SET LOCAL enable_sort = off");
  // enable_sort = off prices every sort at 1e10, and the last step of the pick (the first of the
  // per-group picks) is one: the statement's cost passes jit_above_cost and each lease compiled the
  // statement with LLVM, about 2.5 s a lease on this 2-core VM (EXPLAIN ANALYZE, 180,000 QUEUED tasks),
  // 0.5 ms without. The pick reads a few index rows per group; compiling never pays.
  db.exec("SET LOCAL jit = off");
  // Leases take turns across daemons (the lock ends with the transaction): a lease is the only thing
  // that adds to what a group holds, and the statement after the lock sees every lease committed
  // before it, so two daemons cannot both take a group's last free slot. Leases stay one statement
  // each and never wait on row locks.
  db.query("SELECT pg_advisory_xact_lock(?::bigint)", {kLeaseLockKey});
  const auto rows = db.query(kStatement, {now, caps, caps, caps, now, worker_id, token, expires, token,
                                          worker_id, now, expires, now, now});
  if (rows.empty()) return std::nullopt;
  const sql::Row& row = rows[0];
  const size_t n_task = column_count(kTaskCols);
  LeasedTask out;
  out.task = task_from_row({row, kTaskCols, where});
  const std::string deps = row.is_null(n_task) ? std::string() : row.s(n_task);
  for (size_t at = 0; !deps.empty() && at <= deps.size();) {
    const size_t comma = std::min(deps.find(',', at), deps.size());
    out.task.depends_on.push_back(deps.substr(at, comma - at));
    at = comma + 1;
  }
  const sql::Row run_row{std::vector<sql::Value>(row.cols.begin() + n_task + 1, row.cols.end())};
  out.run = run_from_row({run_row, kRunCols, where});
  return out;
}

}  // namespace omicsd::job_store_rows
