#include "service/jobs/task_graph.hpp"

#include <set>

#include "host/common/error.hpp"
#include "service/jobs/task_kinds.hpp"

namespace omicsd {

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
  if (workflow == kTesWorkflow) return {task("tes", {})};
  throw InputError("unknown workflow '" + workflow + "' (expected germline, align or call)");
}

void validate_new_run(const NewRun& req, const std::vector<TaskSpec>& tasks) {
  if (req.workflow != "germline" && req.workflow != "align" && req.workflow != "call" &&
      req.workflow != kTesWorkflow)
    throw InputError("unknown workflow '" + req.workflow + "' (expected germline, align or call)");
  if (tasks.empty()) throw InputError("run has no tasks");
  std::set<std::string> seen;
  for (const TaskSpec& t : tasks) {
    if (t.name.empty() || t.name.find('/') != std::string::npos)
      throw InputError("task name '" + t.name + "' must be non-empty and contain no '/'");
    if (!find_task_kind(t.kind))
      throw InputError("task " + t.name + ": unknown kind '" + t.kind + "' (expected " + task_kind_names() +
                       ")");
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

}  // namespace omicsd
