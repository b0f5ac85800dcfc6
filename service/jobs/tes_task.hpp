#pragma once
// The GA4GH TES v1.1 task model (https://github.com/ga4gh/task-execution-schemas): validation of a
// submitted task, the requirements a worker must meet to lease it, and the TES view of the omicsd run
// that carries it. A TES task is a run of workflow "tes" with one task of kind "tes" whose input is
// the validated task document; the worker's TES executor writes the task's log (executor exit codes,
// stdout/stderr tails, times, output sizes) as an object in the object store, output "tes_log" of
// that task, so the daemon renders logs from the store and the durable queue carries everything else.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "service/jobs/job_store.hpp"
#include "service/util/rfc3339.hpp"

namespace omicsd {

// Bounds on what one task may ask for (every string, list and map of the document is bounded).
struct TesLimits {
  std::size_t max_executors = 64;
  std::size_t max_inputs = 1024;
  std::size_t max_outputs = 1024;
  std::size_t max_volumes = 64;
  std::size_t max_command_args = 4096;
  std::size_t max_env = 512;
  std::size_t max_tags = 256;
  std::size_t max_string = 8192;              // any one string (urls, paths, args, env values)
  std::size_t max_content_bytes = 128 << 10;  // inline input `content` (the spec's 128 KiB)
};

// The TES states, in the spec's spelling.
inline constexpr const char* kTesStates[] = {"UNKNOWN",  "QUEUED",    "INITIALIZING",   "RUNNING",
                                             "PAUSED",   "COMPLETE",  "EXECUTOR_ERROR", "SYSTEM_ERROR",
                                             "CANCELED", "PREEMPTED", "CANCELING"};
bool is_tes_state(std::string_view s);

// Validates a POST /tasks body and returns the task as stored: only the spec's fields, every one
// type-checked and bounded; executors need image and command; paths absolute; input url or content
// (not both); types FILE (default) or DIRECTORY; backend_parameters string values (known keys: "gpu",
// "gpu_memory_gb"; others refused when backend_parameters_strict). Read-only fields (id, state,
// logs, creation_time) are ignored as the spec says. Throws InputError naming the field
// ("executors[1].command[0]: ...").
nlohmann::json parse_tes_task(const nlohmann::json& body, const TesLimits& limits = {});

// What a worker must advertise to lease the task: {"tes_runtime": true} plus "cpu_cores", "ram_gb",
// "disk_gb" when resources ask for them and "gpu_count" / "gpu_memory_gb" from backend_parameters
// {"gpu": "N", "gpu_memory_gb": "G"} (capabilities_satisfy: numbers at least as large).
nlohmann::json tes_requirements(const nlohmann::json& task);

// The URL forms a task may name: inputs file:///abs (under the daemon's --allow-root),
// http(s)://..., sha256:<hex> (the object store); outputs file:///abs (under --allow-root) or
// omicsd:objects (stored by content; the log then names the object as sha256:<hex>).
bool is_object_store_output_url(std::string_view url);

// The TES view of a stored run: state, and the task document at `view` (MINIMAL: id and state;
// BASIC: no logs' stdout/stderr, no system_logs, no input content; FULL: everything). `log` is the
// task log the worker stored (null while none exists).
std::string tes_state(const Run& run, const Task* task, const nlohmann::json& log);
enum class TesView { Minimal, Basic, Full };
TesView parse_tes_view(std::string_view s);  // MINIMAL | BASIC | FULL; throws InputError
nlohmann::json tes_task_view(const Run& run, const Task* task, const nlohmann::json& log, TesView view);

}  // namespace omicsd
