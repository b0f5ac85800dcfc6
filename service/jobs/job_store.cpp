#include "service/jobs/job_store.hpp"

#include <string>

#include "host/common/error.hpp"

namespace omicsd {

namespace {
constexpr const char* kStateNames[] = {"QUEUED", "RUNNING", "COMPLETE", "FAILED", "CANCELED"};

int parse_state_index(std::string_view s, const char* what) {
  for (int i = 0; i < 5; ++i)
    if (s == kStateNames[i]) return i;
  throw InputError(std::string("unknown ") + what + " state '" + std::string(s) +
                   "' (expected QUEUED, RUNNING, COMPLETE, FAILED or CANCELED)");
}
}  // namespace

const char* to_string(RunState s) { return kStateNames[static_cast<int>(s)]; }
const char* to_string(TaskState s) { return kStateNames[static_cast<int>(s)]; }
RunState parse_run_state(std::string_view s) { return static_cast<RunState>(parse_state_index(s, "run")); }
TaskState parse_task_state(std::string_view s) {
  return static_cast<TaskState>(parse_state_index(s, "task"));
}
const char* to_string(WebhookStatus s) {
  switch (s) {
    case WebhookStatus::Pending:
      return "PENDING";
    case WebhookStatus::Delivered:
      return "DELIVERED";
    case WebhookStatus::Failed:
      return "FAILED";
  }
  return "PENDING";
}

const char* to_string(RunBatchState s) { return s == RunBatchState::Submitted ? "SUBMITTED" : "SUBMITTING"; }
RunBatchState parse_run_batch_state(const std::string& s) {
  if (s == "SUBMITTING") return RunBatchState::Submitting;
  if (s == "SUBMITTED") return RunBatchState::Submitted;
  throw InputError("unknown batch state '" + s + "' (expected SUBMITTING or SUBMITTED)");
}

bool is_terminal(RunState s) {
  return s == RunState::Complete || s == RunState::Failed || s == RunState::Canceled;
}
bool is_terminal(TaskState s) {
  return s == TaskState::Complete || s == TaskState::Failed || s == TaskState::Canceled;
}

std::unique_ptr<JobStore> open_job_store(const std::string& url, const JobStoreOptions& opts) {
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0)
    return open_postgres_job_store(url, opts);
  if (url.rfind("sqlite://", 0) == 0) return open_sqlite_job_store(url.substr(9), opts);
  if (url.rfind("sqlite:", 0) == 0) return open_sqlite_job_store(url.substr(7), opts);
  return open_sqlite_job_store(url, opts);
}

}  // namespace omicsd
