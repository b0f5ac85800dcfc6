#pragma once
// The task graph of a run: the standard graph of each workflow (germline = align -> call -> qc;
// align; call) and the rules a submitted graph must follow. Used by the job store when it creates a
// run and by the workflow layer that builds NewRun.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "service/jobs/job_store.hpp"

namespace omicsd {

// The workflow of a run that carries one GA4GH TES task (POST /ga4gh/tes/v1/tasks): one task of kind
// "tes". Not accepted by POST /v1/runs (parse_workflow_request knows only the pipeline's workflows).
inline constexpr const char* kTesWorkflow = "tes";

// The standard task graph of a workflow; throws InputError for an unknown workflow.
std::vector<TaskSpec> default_tasks(const std::string& workflow);

// The workflow is known and the task graph well formed (names unique and without '/', known kinds,
// attempts >= 1, dependencies on earlier tasks); throws InputError.
void validate_new_run(const NewRun& req, const std::vector<TaskSpec>& tasks);

// The rule of TaskSpec::requirements: every required key is offered by the capabilities, numbers
// at least as large, anything else equal.
bool capabilities_satisfy(const nlohmann::json& capabilities, const nlohmann::json& requirements);

}  // namespace omicsd
