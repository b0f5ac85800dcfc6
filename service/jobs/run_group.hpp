#pragma once
// Run groups: a named share of the workers with caps on what its runs may hold at once (runs in
// progress, leased tasks, GPUs, CPU threads), a maximum run duration and a default priority. Every run
// names one (the group "default", created with the schema and without caps, when it names none).
//
// Caps are checked inside the lease's pick (kWithinCapsSql, on both databases), from the tasks and runs
// the database holds, so they hold across daemons sharing a database and across restarts: there is no
// counter to drift. A task counts against its group's caps while it is RUNNING (leased); a run counts
// while it is RUNNING (from its first lease until it ends). What a task holds is stored on it when it is
// queued (task_demands): GPUs from its requirements, CPU threads from its 'threads' parameter.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace omicsd {

inline constexpr const char* kDefaultRunGroup = "default";

struct RunGroup {
  std::string name;  // 1-64 of [A-Za-z0-9._-], starting with a letter or digit
  // Caps; none = no limit.
  std::optional<int64_t> max_runs;         // runs in progress (RUNNING) at once
  std::optional<int64_t> max_tasks;        // tasks leased at once
  std::optional<int64_t> max_gpus;         // GPUs of the leased tasks together
  std::optional<int64_t> max_cpu_threads;  // CPU threads of the leased tasks together
  // A run still RUNNING this long after its first lease fails (the daemon's sweeper).
  std::optional<int64_t> max_run_seconds;
  int64_t default_priority = 0;  // a run of the group that gives no priority gets this one
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

// What one task holds while it is leased, for the caps.
struct TaskDemands {
  int64_t gpus = 0;
  int64_t cpu_threads = 1;
};
// GPUs: requirement 'gpu_count' (a number, rounded up) or 1 for 'gpu': true, else 0. CPU threads: the
// parameter 'threads' when > 0, else requirement 'cpu_cores' (rounded up), else 1.
TaskDemands task_demands(const nlohmann::json& parameters, const nlohmann::json& requirements);

// Throws InputError naming the field: a bad name, a negative cap, a duration below 1 s, a default
// priority outside kMinRunPriority..kMaxRunPriority.
void validate_run_group(const RunGroup& group);
void check_run_group_name(const std::string& name);

// The lease's cap test over tasks t, their runs r and their groups g (run_groups, g.name = t.group_name),
// the same SQL on SQLite and PostgreSQL: leasing t keeps its group within every cap. The counts are
// index probes (tasks_group_queue, runs_by_group), bounded by what is running, not by the queue.
inline constexpr const char* kWithinCapsSql =
    "(g.name IS NULL OR ("
    "(g.max_tasks IS NULL OR (SELECT COUNT(*) FROM tasks x WHERE x.group_name = t.group_name AND "
    "x.state = 'RUNNING') < g.max_tasks) "
    "AND (g.max_gpus IS NULL OR t.gpus = 0 OR t.gpus + (SELECT COALESCE(SUM(x.gpus), 0) FROM tasks x "
    "WHERE x.group_name = t.group_name AND x.state = 'RUNNING') <= g.max_gpus) "
    "AND (g.max_cpu_threads IS NULL OR t.cpu_threads + (SELECT COALESCE(SUM(x.cpu_threads), 0) FROM tasks x "
    "WHERE x.group_name = t.group_name AND x.state = 'RUNNING') <= g.max_cpu_threads) "
    "AND (g.max_runs IS NULL OR r.state = 'RUNNING' OR (SELECT COUNT(*) FROM runs y WHERE "
    "y.group_name = t.group_name AND y.state = 'RUNNING') < g.max_runs)))";

}  // namespace omicsd
