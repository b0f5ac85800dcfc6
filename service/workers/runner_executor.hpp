#pragma once
// The TaskExecutor of the daemon's in-process workers: a TaskRunner on the daemon's object store and
// allowed roots. Its cache key is the runner's own (TaskRunner::key_of: the same checks, opens and
// digests as a run), so a worker can ask the JobStore's call cache before running anything.
#include "service/workers/inproc_worker.hpp"
#include "service/runner/task_runner.hpp"

namespace omicsd {

TaskExecutor make_runner_executor(ObjectStore& store, TaskRunnerOptions options);

}  // namespace omicsd
