#pragma once
// The run and task routes of docs/api.md, on the JobStore:
//   POST /v1/runs, GET /v1/runs, GET /v1/runs/{id}, POST /v1/runs/{id}/cancel|resume,
//   GET /v1/runs/{id}/logs, GET /v1/runs/{id}/outputs/{name}            (client scope)
//   POST /v1/tasks/lease, POST /v1/tasks/{id}/heartbeat|complete|fail    (worker scope)
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "service/http/address_policy.hpp"
#include "service/http/http_router.hpp"

namespace omicsd {

class Catalog;
class JobStore;
class Metrics;
class ObjectBackend;
class ObjectStore;
struct S3InputPolicy;
struct Run;

struct RunRoutesOptions {
  std::vector<std::filesystem::path> allow_roots;  // where run inputs may be read from
  int threads = 0;                                 // per task when the run does not say; 0 = engine default
  int max_attempts = 3;                            // per task
  int64_t lease_seconds = 60;                      // a lease or heartbeat that names none
  AddressPolicy callback_policy;                   // where callback_urls may point (--callback-allow)
  // The fleet's S3 object store (--objects s3://...): workers' outputs are checked there, and outputs
  // the daemon does not hold are answered with a redirect to a presigned URL. Null: local only.
  std::shared_ptr<ObjectBackend> remote_objects;
  std::shared_ptr<S3InputPolicy> s3_inputs;  // s3:// run inputs (--allow-s3); null: refused
};

// Registers the routes above. `catalog` resolves stored references and read sets named as run inputs
// and ingests germline runs that complete; `metrics` counts runs, cache hits, task durations and the
// GPU telemetry of worker heartbeats. The stores must outlive the router.
void add_run_routes(http::Router& router, JobStore& store, ObjectStore& objects, Catalog& catalog,
                    RunRoutesOptions options, std::shared_ptr<Metrics> metrics);

// A run's outputs by name ({"bam": {"digest": "sha256:..", "size": N}, ...}), each served at
// GET /v1/runs/{id}/outputs/{name}.
nlohmann::json flat_outputs(const Run& run);

// What a webhook event says about its run: id, workflow, sample, state, times, failure reason,
// outputs and its URL; {} for an unknown run.
nlohmann::json run_summary_json(JobStore& store, const std::string& run_id);

}  // namespace omicsd
