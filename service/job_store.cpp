#include "service/job_store.hpp"

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <set>

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

bool is_terminal(RunState s) {
  return s == RunState::Complete || s == RunState::Failed || s == RunState::Canceled;
}
bool is_terminal(TaskState s) {
  return s == TaskState::Complete || s == TaskState::Failed || s == TaskState::Canceled;
}

std::vector<TaskSpec> default_tasks(const std::string& workflow) {
  auto task = [](std::string kind, std::vector<std::string> deps) {
    TaskSpec t;
    t.name = kind;
    t.kind = std::move(kind);
    t.depends_on = std::move(deps);
    return t;
  };
  if (workflow == "germline") return {task("align", {}), task("call", {"align"}), task("qc", {"call"})};
  if (workflow == "align") return {task("align", {})};
  if (workflow == "call") return {task("call", {})};
  throw InputError("unknown workflow '" + workflow + "' (expected germline, align or call)");
}

void validate_new_run(const NewRun& req, const std::vector<TaskSpec>& tasks) {
  if (req.workflow != "germline" && req.workflow != "align" && req.workflow != "call")
    throw InputError("unknown workflow '" + req.workflow + "' (expected germline, align or call)");
  if (tasks.empty()) throw InputError("run has no tasks");
  std::set<std::string> seen;
  for (const TaskSpec& t : tasks) {
    if (t.name.empty() || t.name.find('/') != std::string::npos)
      throw InputError("task name '" + t.name + "' must be non-empty and contain no '/'");
    if (t.kind != "align" && t.kind != "call" && t.kind != "qc")
      throw InputError("task " + t.name + ": unknown kind '" + t.kind + "' (expected align, call or qc)");
    if (t.max_attempts < 1) throw InputError("task " + t.name + ": max_attempts must be >= 1");
    for (const std::string& d : t.depends_on)
      if (!seen.count(d))
        throw InputError("task " + t.name + " depends on '" + d +
                         "', which is not an earlier task of the run");
    if (!seen.insert(t.name).second) throw InputError("duplicate task name '" + t.name + "'");
  }
}

bool capabilities_satisfy(const nlohmann::json& caps, const nlohmann::json& req) {
  if (!req.is_object()) return true;
  for (auto it = req.begin(); it != req.end(); ++it) {
    if (!caps.is_object() || !caps.contains(it.key())) return false;
    const nlohmann::json& have = caps.at(it.key());
    if (it.value().is_number()) {
      if (!have.is_number() || have.get<double>() < it.value().get<double>()) return false;
    } else if (have != it.value()) {
      return false;
    }
  }
  return true;
}

std::string random_hex(size_t digits) {
  // The kernel's CSPRNG: run ids and lease tokens must not be predictable from earlier ones
  // (mt19937_64's state is recoverable from 312 outputs). getrandom never repeats across forks.
  static const char* hex = "0123456789abcdef";
  std::string bytes((digits + 1) / 2, '\0');
  for (size_t got = 0; got < bytes.size();) {
    const ssize_t n = ::getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("getrandom failed: ") + std::strerror(errno));
    }
    got += size_t(n);
  }
  std::string out;
  out.reserve(digits);
  for (unsigned char c : bytes) {
    out.push_back(hex[c >> 4]);
    if (out.size() < digits) out.push_back(hex[c & 15]);
  }
  return out;
}

std::unique_ptr<JobStore> open_job_store(const std::string& url, const JobStoreOptions& opts) {
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0)
    return open_postgres_job_store(url, opts);
  if (url.rfind("sqlite://", 0) == 0) return open_sqlite_job_store(url.substr(9), opts);
  if (url.rfind("sqlite:", 0) == 0) return open_sqlite_job_store(url.substr(7), opts);
  return open_sqlite_job_store(url, opts);
}

}  // namespace omicsd
