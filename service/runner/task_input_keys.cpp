#include "service/runner/task_input_keys.hpp"

#include <nlohmann/json.hpp>

#include "service/jobs/job_store.hpp"
#include "service/runner/task_inputs.hpp"
#include "service/jobs/workflow.hpp"

namespace omicsd {

using json = nlohmann::json;

std::vector<std::pair<std::string, std::string>> task_input_keys(const Run& run, const Task& task) {
  std::vector<std::pair<std::string, std::string>> out;
  const json in = task_inputs(run, task);
  for (const auto& [k, v] : in.items()) {
    if (v.is_string()) {
      out.emplace_back(k, v.get<std::string>());
    } else if (v.is_array()) {
      for (std::size_t i = 0; i < v.size(); ++i)
        if (v[i].is_string()) out.emplace_back(k + "/" + std::to_string(i), v[i].get<std::string>());
    }
  }
  if (task.parameters.is_object())
    for (const char* k :
         {"regions", "targets", "ploidy_bed"})  // BED files named in parameters are inputs too
      if (task.parameters.contains(k) && task.parameters[k].is_string())
        out.emplace_back(k, task.parameters[k].get<std::string>());
  return out;
}

const std::vector<std::string>& input_companions(const std::string& key) {
  // The files the TaskRunner opens next to an input (task_inputs.hpp), without their dots: a worker
  // that downloads its inputs gets exactly the indexes a worker on shared storage would read.
  const auto without_dots = [](const std::string& k) {
    std::vector<std::string> out;
    for (const std::string& ext : sidecar_extensions(k)) out.push_back(ext.substr(1));
    return out;
  };
  static const std::vector<std::string> reference = without_dots("reference"), bam = without_dots("bam");
  static const std::vector<std::string> none;
  if (key == "reference") return reference;
  if (key == "bam") return bam;
  return none;
}

}  // namespace omicsd
