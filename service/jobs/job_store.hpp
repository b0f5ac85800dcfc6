#pragma once
// The durable job store: runs, their tasks, task leases for workers, and the call cache.
// One interface (JobStore), one implementation on the SQL layer (sql_job_store.cpp) for the
// embedded SQLite default and a shared PostgreSQL. Time is always passed in as unix milliseconds so
// callers (and tests) control it. The store is thread-safe and runs each mutating operation in one
// transaction.
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/error.hpp"
#include "service/jobs/run_at_risk.hpp"
#include "service/jobs/run_group.hpp"

namespace omicsd {

enum class RunState { Queued, Running, Complete, Failed, Canceled };
enum class TaskState { Queued, Running, Complete, Failed, Canceled };

const char* to_string(RunState s);
const char* to_string(TaskState s);
// Parse "QUEUED", "RUNNING", ...; throws InputError on anything else.
RunState parse_run_state(std::string_view s);
TaskState parse_task_state(std::string_view s);
bool is_terminal(RunState s);
bool is_terminal(TaskState s);

// A lease token that is not (or no longer) the current lease of its task (maps to HTTP 409).
class LeaseError : public ConflictError {
 public:
  explicit LeaseError(const std::string& what) : ConflictError(what) {}
};

// One task of a new run. `name` is unique within the run (the task id becomes
// "<run id>/<name>"); depends_on names tasks listed before it in the same run.
struct TaskSpec {
  std::string name;
  std::string kind;  // align | call | qc
  std::vector<std::string> depends_on;
  nlohmann::json parameters = nlohmann::json::object();
  // What a worker must offer to lease it: each key must be present in the worker's capabilities;
  // numbers must be >= the requirement, anything else equal. E.g. {"gpu": true, "gpu_mem_gb": 16}.
  nlohmann::json requirements = nlohmann::json::object();
  std::string cache_key;
  int max_attempts = 3;
};

struct NewRun {
  std::string workflow;  // germline | align | call
  nlohmann::json inputs = nlohmann::json::object();
  nlohmann::json parameters = nlohmann::json::object();
  std::string callback_url;     // empty = none
  std::string idempotency_key;  // empty = none
  std::vector<TaskSpec> tasks;  // empty = default_tasks(workflow) (task_graph.hpp)
  // The run's first provenance (engine, submitted inputs, parameters), written by the same
  // transaction as the run: there is never a run without it.
  nlohmann::json provenance = nlohmann::json::object();
  // Lease order (lease_order.hpp): runs with a deadline (unix ms) before runs without, earliest
  // first; then higher priority (kMinRunPriority..kMaxRunPriority), aged by waiting time.
  // none = the group's default_priority.
  std::optional<int64_t> priority;
  std::optional<int64_t> deadline;
  std::string group;  // run group (run_group.hpp); empty = "default"
};

// The range of a run's priority (POST /v1/runs 'priority').
inline constexpr int64_t kMinRunPriority = -1000;
inline constexpr int64_t kMaxRunPriority = 1000;

struct Run {
  std::string id;
  std::string workflow;
  nlohmann::json inputs;
  nlohmann::json parameters;
  RunState state = RunState::Queued;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::string callback_url;
  std::string idempotency_key;
  std::string failure_reason;
  nlohmann::json outputs;     // object: task name -> that task's outputs (filled as tasks complete)
  nlohmann::json provenance;  // object, merged by set_run_provenance
  int64_t priority = 0;
  std::optional<int64_t> deadline;  // unix ms; none = no deadline
  std::string group = kDefaultRunGroup;
  std::optional<int64_t> started_at;  // its first lease (QUEUED -> RUNNING)
  std::optional<int64_t> at_risk_at;  // when the sweeper found it would miss its deadline (once per run)
};

struct Task {
  std::string id;  // "<run id>/<name>"
  std::string run_id;
  std::string name;
  std::string kind;
  TaskState state = TaskState::Queued;
  int attempts = 0;
  int max_attempts = 3;
  std::vector<std::string> depends_on;  // task ids
  nlohmann::json parameters;
  nlohmann::json requirements;
  std::string cache_key;
  nlohmann::json outputs;
  std::string last_error;
  int64_t queued_at = 0;
  std::optional<int64_t> started_at;   // latest lease
  std::optional<int64_t> finished_at;  // terminal state reached
  int64_t not_before = 0;              // retry backoff: not leasable before this
  std::string worker_id;               // latest lease holder
  std::string lease_token;             // latest lease (current only while RUNNING)
  std::optional<int64_t> lease_expires_at;
  std::string group = kDefaultRunGroup;  // its run's group
  TaskDemands demands;                   // held against the group's caps while leased
};

struct CreateRunResult {
  Run run;
  bool existed = false;  // the idempotency key matched an existing run; nothing was created
};

// One run of a batch (add_run_batch_results): the run created (or found by its idempotency key), or why not.
struct BatchRunResult {
  std::optional<CreateRunResult> created;
  std::string error;  // non-empty when this run was not created
};

// A batch of runs (POST /v1/run-batches), accepted as one durable record holding its run requests
// and then submitted run by run in the background (RunSubmitter::submit_pending_batches), in chunks
// whose runs and results commit together: a crash resumes at the first chunk not committed.
enum class RunBatchState { Submitting, Submitted };
const char* to_string(RunBatchState s);                     // SUBMITTING | SUBMITTED
RunBatchState parse_run_batch_state(const std::string& s);  // InputError for another value

struct RunBatch {
  std::string id;
  std::string idempotency_key;  // the request's Idempotency-Key, if it had one
  RunBatchState state = RunBatchState::Submitting;
  int64_t total = 0;      // run requests in the batch
  int64_t submitted = 0;  // of them, those with a result (the next one to submit is this index)
  int64_t created = 0, existing = 0, failed = 0;
  int64_t created_at = 0;
  std::optional<int64_t> finished_at;  // the last run's result was written
};

// One run request of a batch, once submitted: its run (created now or found by its idempotency key)
// or why it was refused.
struct RunBatchItem {
  int64_t index = 0;
  std::string run_id;     // empty when refused
  std::string run_state;  // the run's state now ("" when refused)
  std::string group;      // the run's group
  bool existed = false;
  int error_code = 0;  // HTTP status of the refusal (400, 404, 409), 0 when a run holds it
  std::string error;
};

// A run request refused before it reached the store (parse errors, inputs), by its index in the batch.
struct RunBatchRefusal {
  int64_t index = 0;
  int code = 400;
  std::string message;
};

struct RunFilter {
  std::optional<RunState> state;
  std::optional<std::string> workflow;
  int page_size = 50;      // clamped to [1, 1000]
  std::string page_token;  // from RunPage::next_page_token; empty = first page
};

struct RunPage {
  std::vector<Run> runs;        // in creation order
  std::string next_page_token;  // empty when this is the last page
};

struct LeasedTask {
  Task task;  // state RUNNING, with lease_token and lease_expires_at
  Run run;    // its run (inputs, parameters)
};

struct TaskResult {
  Task task;                     // the task as it is now
  RunState run_state{};          // its run's state now
  bool retry_scheduled = false;  // fail_task: re-queued for another attempt
  bool duplicate = false;        // the same call was already applied; nothing changed
};

// One webhook event: written by the store in the same transaction that moves a run with a
// callback_url into a terminal state (so a crash can never lose it), or that flags it at risk of
// missing its deadline (flag_at_risk_runs), then delivered by the daemon's notifier at least once
// (receivers dedupe on `id`). A resumed run that ends again gets a new event.
enum class WebhookStatus { Pending, Delivered, Failed };
const char* to_string(WebhookStatus s);  // PENDING | DELIVERED | FAILED

struct WebhookDelivery {
  int64_t id = 0;  // unique, increasing: the event id receivers see
  std::string run_id;
  std::string url;
  RunState state{};   // the terminal state that triggered the event; for run.at_risk, the run's state then
  std::string event;  // "run.at_risk"; empty for the terminal events (typed by their state)
  nlohmann::json detail;  // run.at_risk: deadline, estimated_finish_at, remaining_ms, reason; else null
  int64_t created_at = 0;
  WebhookStatus status = WebhookStatus::Pending;
  int attempts = 0;  // delivery attempts recorded so far
  int64_t next_attempt_at = 0;
  std::string last_error;
  std::optional<int64_t> delivered_at;
};

// A run flag_at_risk_runs found will miss its deadline (flagged once per run, whatever the daemon).
struct AtRiskRun {
  std::string run_id;
  std::string group;
  int64_t deadline = 0;
  RunRisk risk;
  bool webhook = false;  // a run.at_risk event was written (the run has a callback_url)
};

struct JobStoreOptions {
  int busy_timeout_ms = 10000;
  // PostgreSQL: connections per store, opened as concurrent requests need them. Operations on
  // different runs then proceed in parallel (row locks, SKIP LOCKED); SQLite has one writer and
  // instead shares one commit among concurrent writes (group commit).
  int connections = 8;
  int64_t retry_base_ms = 1000;   // backoff = base * 2^(attempts-1)
  int64_t retry_max_ms = 600000;  // backoff cap
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Runs. create_run validates the workflow and the task graph (InputError). With an
  // idempotency key that already exists it returns that run with existed = true.
  virtual CreateRunResult create_run(const NewRun& req, int64_t now) = 0;
  virtual std::optional<Run> get_run(const std::string& run_id) = 0;

  // Batches. create_run_batch stores the request (`runs_json`: its run requests, a JSON array of
  // `total`) in one transaction; with an idempotency key already stored it returns that batch and sets
  // `existed`. add_run_batch_results writes the results of the requests [first, first + count) in one
  // transaction with the runs it creates (`runs[i]` is request `run_index[i]`; `refused` the others)
  // and returns what became of each of `runs`: a run create_run would refuse with InputError gets its
  // error, the others go on. Returns nullopt, writing nothing, unless the batch's next request is
  // `first` (another daemon got there first). The batch is SUBMITTED, and its stored requests
  // dropped, with its last result.
  virtual RunBatch create_run_batch(const std::string& runs_json, int64_t total,
                                    const std::string& idempotency_key, int64_t now, bool& existed) = 0;
  virtual std::optional<RunBatch> get_run_batch(const std::string& id) = 0;
  // Oldest first; with `state`, only those in it; after the batch `after_id` (paging), up to `limit`.
  virtual std::vector<RunBatch> list_run_batches(std::optional<RunBatchState> state,
                                                 const std::string& after_id, int limit) = 0;
  // The stored run requests of a SUBMITTING batch (nullopt once it is SUBMITTED or unknown).
  virtual std::optional<std::string> run_batch_requests(const std::string& id) = 0;
  virtual std::optional<std::vector<BatchRunResult>> add_run_batch_results(
      const std::string& batch_id, int64_t first, int64_t count, const std::vector<NewRun>& runs,
      const std::vector<int64_t>& run_index, const std::vector<RunBatchRefusal>& refused, int64_t now) = 0;
  // Results of the batch's requests from index `from`, in index order, up to `limit`.
  virtual std::vector<RunBatchItem> run_batch_items(const std::string& batch_id, int64_t from, int limit) = 0;
  virtual RunPage list_runs(const RunFilter& filter) = 0;
  virtual std::vector<Task> list_tasks(const std::string& run_id) = 0;  // in creation order
  virtual std::optional<Task> get_task(const std::string& task_id) = 0;
  // QUEUED/RUNNING -> CANCELED with every unfinished task; returns false for terminal runs.
  virtual bool cancel_run(const std::string& run_id, int64_t now) = 0;
  // FAILED/CANCELED -> QUEUED: tasks not COMPLETE are re-queued with attempts reset; COMPLETE
  // tasks are kept. Returns false for other states; ConflictError when the run's group was deleted
  // since it ended (the lease reads the queue group by group, so every queued task needs its group).
  virtual bool resume_run(const std::string& run_id, int64_t now) = 0;
  // Merges (JSON merge patch) into the run's provenance.
  virtual void set_run_provenance(const std::string& run_id, const nlohmann::json& patch, int64_t now) = 0;

  // Leases. lease_task picks the most urgent leasable QUEUED task (dependencies COMPLETE, run
  // QUEUED or RUNNING, past its retry time, requirements met by capabilities) in lease order
  // (lease_order.hpp: deadline, then aged priority, then age) or returns nullopt.
  virtual std::optional<LeasedTask> lease_task(const std::string& worker_id,
                                               const nlohmann::json& capabilities, int64_t lease_seconds,
                                               int64_t now) = 0;
  // Extends the lease to now + lease_seconds; throws LeaseError if the token is not current.
  virtual Task heartbeat(const std::string& task_id, const std::string& lease_token, int64_t lease_seconds,
                         int64_t now) = 0;
  // Idempotent: repeating the call returns the first call's result with duplicate = true.
  // A token that is not the task's current lease throws LeaseError.
  virtual TaskResult complete_task(const std::string& task_id, const std::string& lease_token,
                                   const nlohmann::json& outputs, int64_t now) = 0;
  virtual TaskResult fail_task(const std::string& task_id, const std::string& lease_token,
                               const std::string& error, bool retryable, int64_t now) = 0;
  // Re-queues RUNNING tasks whose lease expired before now (the attempt counts; exhausted
  // attempts fail the task and its run). Returns how many leases expired.
  virtual int expire_leases(int64_t now) = 0;

  // Run groups (run_group.hpp). put_run_group creates or replaces one (validate_run_group: InputError)
  // and returns it as stored; delete_run_group refuses (ConflictError) the default group and a group
  // named by a QUEUED or RUNNING run, and returns false for an unknown name.
  virtual RunGroup put_run_group(const RunGroup& group, int64_t now) = 0;
  virtual std::optional<RunGroup> get_run_group(const std::string& name) = 0;
  virtual std::vector<RunGroup> list_run_groups() = 0;  // by name
  virtual bool delete_run_group(const std::string& name) = 0;
  // Fails every RUNNING run that has been running (since its first lease) longer than its group's
  // max_run_seconds, with that reason; its unfinished tasks are canceled. Returns the runs failed.
  virtual std::vector<std::string> fail_overdue_runs(int64_t now) = 0;

  // Deadlines (run_at_risk.hpp). stage_estimates gives the measured duration of each stage (task name)
  // of the workflow that has completed at least once, from its last kStageSampleWindow completions.
  virtual std::map<std::string, StageEstimate> stage_estimates(const std::string& workflow) = 0;
  // For each QUEUED or RUNNING run with a deadline and not yet flagged: if now + its remaining work
  // (assess_run_risk) is past the deadline, sets its at_risk_at and, when it has a callback_url, writes
  // a run.at_risk webhook event, in one transaction per sweep. A run is flagged once: a daemon that
  // finds it flagged by another leaves it. Returns the runs flagged by this call.
  virtual std::vector<AtRiskRun> flag_at_risk_runs(int64_t now) = 0;

  // Call cache: content-addressed task outputs.
  virtual void put_cache(const std::string& cache_key, const nlohmann::json& outputs, int64_t now) = 0;
  virtual std::optional<nlohmann::json> get_cache(const std::string& cache_key) = 0;

  // Webhooks. claim_webhooks returns up to `limit` PENDING events due at `now` (oldest first) and
  // pushes their next_attempt_at to now + claim_ms in the same transaction, so a concurrent daemon
  // (or this one after a crash) does not send the same event until the claim lapses.
  virtual std::vector<WebhookDelivery> claim_webhooks(int limit, int64_t claim_ms, int64_t now) = 0;
  // Records one delivery attempt: delivered -> DELIVERED; else the error is kept and the event is
  // retried at retry_at, or becomes FAILED when retry_at is 0. Unknown ids throw NotFoundError.
  virtual void record_webhook_attempt(int64_t id, bool delivered, const std::string& error, int64_t retry_at,
                                      int64_t now) = 0;
  virtual std::vector<WebhookDelivery> list_webhooks(const std::string& run_id) = 0;  // oldest first

  // Gauges for /metrics in two aggregate queries (no scan of runs or tasks in the process): runs by
  // state (every state present, 0 when none) and QUEUED tasks of QUEUED or RUNNING runs.
  struct Counts {
    // Every state is present, 0 when no run is in it (the metrics list each state).
    Counts() {
      for (RunState s :
           {RunState::Queued, RunState::Running, RunState::Complete, RunState::Failed, RunState::Canceled})
        runs[s] = 0;
    }
    std::map<RunState, int64_t> runs;
    int64_t queued_tasks = 0;
  };
  virtual Counts counts() = 0;

  virtual int schema_version() = 0;
  virtual std::string describe() const = 0;  // e.g. "sqlite:/path/jobs.db"
};

// The schema version this build writes; opening a newer database fails.
inline constexpr int kJobStoreSchemaVersion = 8;

std::unique_ptr<JobStore> open_sqlite_job_store(const std::string& path, const JobStoreOptions& opts = {});
// PostgreSQL (libpq): a libpq connection URI "postgres://user@host:port/db?..." or
// "postgresql://...". Several daemons may share one database (leases use FOR UPDATE SKIP LOCKED).
std::unique_ptr<JobStore> open_postgres_job_store(const std::string& url, const JobStoreOptions& opts = {});
// "sqlite:PATH", "sqlite://PATH" or a plain path -> SQLite; "postgres://..." -> PostgreSQL.
std::unique_ptr<JobStore> open_job_store(const std::string& url, const JobStoreOptions& opts = {});

}  // namespace omicsd
