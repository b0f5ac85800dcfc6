#pragma once
// Workflows -> task graphs with their inputs wired: germline = align -> call -> qc (the call task's
// bam is the align task's bam output, qc reads both), align, call. Shared by the daemon (request
// validation, lease responses) and the in-process workers.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "service/jobs/job_store.hpp"

namespace omicsd {

class ObjectBackend;
class ObjectStore;
struct S3InputPolicy;

// The most threads a run may ask for (parameter 'threads'; 0 = the worker's default).
inline constexpr int64_t kMaxRunThreads = 1024;

// Keys allowed in a task kind's parameters (what the TaskRunner accepts).
const std::vector<std::string>& task_parameter_keys(const std::string& kind);

struct WorkflowRequest {
  std::string workflow;
  std::string sample;
  nlohmann::json inputs = nlohmann::json::object();
  nlohmann::json parameters = nlohmann::json::object();
  bool cache = true;
  std::string callback_url;
  std::string idempotency_key;
  std::optional<int64_t> priority;  // kMinRunPriority..kMaxRunPriority (job_store.hpp); none = the group's
  std::optional<int64_t> deadline;  // unix ms: 'deadline' as RFC 3339 or unix ms
  std::string group;                // run group; empty = "default"
};

// Parses the POST /v1/runs body; throws InputError on a bad shape (unknown workflow, missing
// inputs, bad sample name, unknown parameter, a parameter of the wrong type or out of range).
WorkflowRequest parse_workflow_request(const nlohmann::json& body);

// Checks every input URI (and BED URIs in parameters) against the roots / the object store with
// resolve_input_uri; throws InputError for one outside the roots, missing, malformed.
// s3:// URIs go to `s3` (refused when null); sha256: digests the local store lacks are looked up in
// `remote` (the fleet's S3 object store) when there is one.
void check_workflow_inputs(const WorkflowRequest& req, const std::vector<std::filesystem::path>& roots,
                           const ObjectStore& store, const S3InputPolicy* s3 = nullptr,
                           ObjectBackend* remote = nullptr);

// The NewRun for the JobStore: run parameters carry the user's parameters plus the reserved keys
// "sample" and "cache"; each task gets the parameters its kind accepts (threads defaulting to
// default_threads when > 0).
NewRun make_new_run(const WorkflowRequest& req, int default_threads, int max_attempts);

// The user-facing parameters / sample / cache flag of a stored run.
std::string run_sample(const Run& run);
bool run_cache_enabled(const Run& run);
nlohmann::json run_user_parameters(const Run& run);

// Inputs of one task of a run: the run's inputs for the first task; a dependency's outputs as
// "sha256:<hex>" digests for later tasks (call.bam <- align.bam, qc.bam/vcf <- align/call).
// Throws InputError when a dependency's output is missing.
nlohmann::json task_inputs(const Run& run, const Task& task);

}  // namespace omicsd
