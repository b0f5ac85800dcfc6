#pragma once
// GA4GH TES v1.1 at /ga4gh/tes/v1 (docs/api.md, "GA4GH TES"), on the JobStore:
//   GET /service-info, POST /tasks, GET /tasks, GET /tasks/{id}, POST /tasks/{id}:cancel (client scope)
// A TES task is a run of workflow "tes" with one task of kind "tes" (service/jobs/tes_task.hpp), so
// the durable queue, leases, retries, heartbeats, capabilities and metrics are those of every task;
// workers started with --task-runtime lease and run them (service/runner/tes_executor.hpp).
// Errors are the GA4GH error shape {"msg": ..., "status_code": N}.
#include <filesystem>
#include <memory>
#include <vector>

#include "service/http/http_router.hpp"

namespace omicsd {

class JobStore;
class Metrics;
class ObjectStore;

struct TesRoutesOptions {
  std::vector<std::filesystem::path> allow_roots;  // where file:// inputs and outputs may be
  int max_attempts = 3;                            // per task (system errors and lost workers)
};

void add_tes_routes(http::Router& router, JobStore& store, ObjectStore& objects, TesRoutesOptions options,
                    std::shared_ptr<Metrics> metrics);

}  // namespace omicsd
