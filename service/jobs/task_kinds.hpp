#pragma once
// The task kinds, registered once: each kind's name, the inputs and parameters a task of that kind
// accepts. Every other place (the task graph's validation, the workflow's parameter routing, the
// TaskRunner) looks a kind up here by its name once and then works with TaskKind.
#include <string>
#include <string_view>
#include <vector>

namespace omicsd {

enum class TaskKind { Align, Call, Qc, Tes };

struct TaskKindInfo {
  TaskKind id;
  std::string name;                     // "align", "call", "qc", "tes": the `kind` of tasks in the API
  std::vector<std::string> inputs;      // input keys a task of this kind accepts
  std::vector<std::string> parameters;  // parameter keys a task of this kind accepts
};

// Every kind: the pipeline's, in order (align, call, qc), then "tes" (a GA4GH TES task: its inputs
// are the TES task document itself, run by a worker's TES executor, see service/jobs/tes_task.hpp).
const std::vector<TaskKindInfo>& task_kinds();
// The kind named `name`, or nullptr.
const TaskKindInfo* find_task_kind(std::string_view name);
// The kind named `name`; throws InputError "unknown task kind '<name>' (expected align, call, qc or tes)".
const TaskKindInfo& task_kind(std::string_view name);
// "align, call, qc or tes", for error messages.
const std::string& task_kind_names();

}  // namespace omicsd
