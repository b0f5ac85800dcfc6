#pragma once
// The run group routes of docs/api.md (run_group.hpp):
//   GET /v1/run-groups, GET /v1/run-groups/{name}                       (client scope)
//   POST /v1/run-groups, PUT /v1/run-groups/{name}, DELETE /v1/run-groups/{name}   (admin scope: caps
//   share the workers among every client)
#include <nlohmann/json.hpp>

#include "service/http/http_router.hpp"
#include "service/jobs/run_group.hpp"

namespace omicsd {

class JobStore;

// The store must outlive the router.
void add_run_group_routes(http::Router& router, JobStore& store);

// A group as the API shows it (caps null when unset).
nlohmann::json run_group_json(const RunGroup& group);
// A POST/PUT body (name from the body, or `name` when given by the path); throws InputError naming the
// field for anything but integers (or null) in the cap fields, or an unknown field.
RunGroup parse_run_group(const nlohmann::json& body, const std::string& name = "");

}  // namespace omicsd
