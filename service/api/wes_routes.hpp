#pragma once
// GA4GH Workflow Execution Service v1.1 at /ga4gh/wes/v1 (docs/api.md, "GA4GH WES"): the same runs
// as /v1/runs, seen through the WES model. Workflow type "omicsd" (version "1"), workflow_url one of
// the built-in workflows (germline, align, call), workflow_params the POST /v1/runs body without
// "workflow". Client scope, like /v1/runs; errors are the WES ErrorResponse {msg, status_code}.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "service/api/run_routes.hpp"
#include "service/http/http_router.hpp"
#include "service/jobs/job_store.hpp"

namespace omicsd {

class Catalog;
class Metrics;
class ObjectStore;

inline constexpr const char* kWesBasePath = "/ga4gh/wes/v1";

struct WesRoutesOptions {
  RunRoutesOptions runs;  // the same allow-roots, threads and attempts as POST /v1/runs
  bool tls = false;       // the daemon serves HTTPS: output and log URLs are https://
};

// The WES state of an omicsd run state, one to one: QUEUED, RUNNING, COMPLETE, EXECUTOR_ERROR
// (FAILED: a task failed after its attempts), CANCELED.
const char* wes_state(RunState s);

// Registers GET /service-info, GET/POST /runs, GET /runs/{id}, GET /runs/{id}/status,
// POST /runs/{id}/cancel and GET /runs/{id}/tasks under kWesBasePath.
void add_wes_routes(http::Router& router, JobStore& store, ObjectStore& objects, Catalog& catalog,
                    WesRoutesOptions options, std::shared_ptr<Metrics> metrics);

}  // namespace omicsd
