// Run group validation and task demands (run_group.hpp).
#include "service/jobs/run_group.hpp"

#include <cctype>
#include <cmath>

#include "host/common/error.hpp"
#include "service/jobs/job_store.hpp"

namespace omicsd {
namespace {

int64_t rounded_up(const nlohmann::json& v) {
  const double d = v.get<double>();
  return d > 0 && d < 1e9 ? int64_t(std::ceil(d)) : 0;
}

}  // namespace

TaskDemands task_demands(const nlohmann::json& parameters, const nlohmann::json& requirements) {
  TaskDemands d;
  if (requirements.is_object()) {
    if (requirements.contains("gpu_count") && requirements["gpu_count"].is_number())
      d.gpus = rounded_up(requirements["gpu_count"]);
    else if (requirements.contains("gpu") && requirements["gpu"] == true)
      d.gpus = 1;
    if (requirements.contains("cpu_cores") && requirements["cpu_cores"].is_number())
      d.cpu_threads = std::max<int64_t>(1, rounded_up(requirements["cpu_cores"]));
  }
  if (parameters.is_object() && parameters.contains("threads") && parameters["threads"].is_number_integer() &&
      parameters["threads"].get<int64_t>() > 0)
    d.cpu_threads = parameters["threads"].get<int64_t>();
  return d;
}

void check_run_group_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  if (!ok)
    throw InputError("run group name '" + name.substr(0, 80) +
                     "' must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit");
}

void validate_run_group(const RunGroup& g) {
  check_run_group_name(g.name);
  const std::pair<const char*, const std::optional<int64_t>*> caps[] = {
      {"max_runs", &g.max_runs},
      {"max_tasks", &g.max_tasks},
      {"max_gpus", &g.max_gpus},
      {"max_cpu_threads", &g.max_cpu_threads}};
  for (const auto& [field, cap] : caps)
    if (*cap && **cap < 0)
      throw InputError(std::string("'") + field + "' must be 0 or more (or null: no cap)");
  if (g.max_run_seconds && *g.max_run_seconds < 1)
    throw InputError("'max_run_seconds' must be at least 1 (or null: no limit)");
  if (g.default_priority < kMinRunPriority || g.default_priority > kMaxRunPriority)
    throw InputError("'default_priority' must be an integer from " + std::to_string(kMinRunPriority) +
                     " to " + std::to_string(kMaxRunPriority));
}

}  // namespace omicsd
