#pragma once
// The TaskExecutor of the daemon's in-process workers: a TaskRunner on the daemon's object store and
// allowed roots. Its cache key is the runner's own (TaskRunner::key_of: the same checks, opens and
// digests as a run), so a worker can ask the JobStore's call cache before running anything.
#include "service/http/address_policy.hpp"
#include "service/runner/task_runner.hpp"
#include "service/runner/tes_runtime.hpp"
#include "service/workers/inproc_worker.hpp"

namespace omicsd {

// With a TES runtime, tasks of kind "tes" run in a TesExecutor (tes_executor.hpp) on the same store and
// roots; they have no call-cache key (cache_key returns "").
// tes_http_allow: networks TES http(s) inputs may come from besides public addresses
// (TesExecutorOptions::http_input_allow).
TaskExecutor make_runner_executor(ObjectStore& store, TaskRunnerOptions options,
                                  TesRuntime tes_runtime = TesRuntime::none,
                                  std::vector<Cidr> tes_http_allow = {});

}  // namespace omicsd
