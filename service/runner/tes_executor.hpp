#pragma once
// Runs one GA4GH TES task on a worker: stages its inputs into a fresh task directory (file:// opened
// beneath the allow-roots, http(s)://, sha256: objects of the store, inline content; directories
// included), runs its executors in order in the operator's runtime (tes_runtime.hpp) with their
// workdir, env, stdin/stdout/stderr and ignore_error, then delivers its outputs (file:// under the
// allow-roots or the object store; globs with path_prefix) and writes the task log (exit codes,
// stdout/stderr tails, times, output sizes) into the object store. A cancel kills the running
// executor's process group.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/common/error.hpp"
#include "service/http/address_policy.hpp"
#include "service/objects/object_store.hpp"
#include "service/runner/tes_runtime.hpp"

namespace omicsd {

struct TesExecutorOptions {
  TesRuntime runtime = TesRuntime::none;
  std::vector<std::filesystem::path> allow_roots;  // where file:// inputs are read and outputs written
  std::filesystem::path work_dir;                  // task directories: <work_dir>/<task>-<random>
  uint64_t max_input_bytes = uint64_t(64) << 30;   // all inputs of one task together
  uint64_t max_output_bytes = uint64_t(64) << 30;  // all outputs of one task together
  std::size_t log_tail_bytes = 64 << 10;           // stdout/stderr kept in the log, per executor
  bool keep_task_dirs = false;                     // for debugging: leave the task directory behind
  // Host runtime: bind existing mount points (e.g. /tmp) in a private user + mount namespace when the
  // kernel allows it (tes_runtime.hpp); false: every task path is rewritten instead.
  bool host_namespaces = true;
  // http(s):// inputs: the networks the worker may fetch from besides public unicast addresses
  // (loopback, private, link-local and metadata addresses are refused otherwise: a TES client must not
  // reach the worker's own network through it). The address checked is the address connected to.
  std::vector<Cidr> http_input_allow;
};

// What a task produced: the log (also stored as the object `log_object`) and every object the task
// put into the store (the log and omicsd:objects outputs), by output name.
struct TesRunResult {
  nlohmann::json log;
  std::map<std::string, ObjectRef> objects;  // "tes_log", "output/<n>" ...
};

// Thrown when the task was canceled while it ran (its executor was killed).
class TesCanceled : public Error {
 public:
  TesCanceled() : Error("TES task canceled") {}
};

class TesExecutor {
 public:
  TesExecutor(ObjectStore& store, TesExecutorOptions options);

  // Runs `task` (a document validated by parse_tes_task). A failing executor is a result (log state
  // EXECUTOR_ERROR); a problem staging or delivering files throws (InputError: the task cannot
  // succeed anywhere; Error: worth another attempt). Throws TesCanceled once `cancel` is set.
  TesRunResult run(const nlohmann::json& task, const std::string& task_id, const std::atomic<bool>& cancel);

  const TesExecutorOptions& options() const { return options_; }

 private:
  ObjectStore& store_;
  TesExecutorOptions options_;
};

}  // namespace omicsd
