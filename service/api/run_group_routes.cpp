// The run group routes (run_group_routes.hpp).
#include "service/api/run_group_routes.hpp"

#include <set>

#include "host/common/error.hpp"
#include "service/jobs/job_store.hpp"
#include "service/util/clock.hpp"

namespace omicsd {
namespace {

using json = nlohmann::json;
using http::HttpError;
using http::Request;
using http::Response;
using http::Scope;

constexpr const char* kCapFields[] = {"max_runs", "max_tasks", "max_gpus", "max_cpu_threads",
                                      "max_run_seconds"};

std::optional<int64_t>& cap_of(RunGroup& g, const std::string& field) {
  if (field == "max_runs") return g.max_runs;
  if (field == "max_tasks") return g.max_tasks;
  if (field == "max_gpus") return g.max_gpus;
  if (field == "max_cpu_threads") return g.max_cpu_threads;
  return g.max_run_seconds;
}

json opt_json(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }

json body_object(const Request& req) {
  json b = http::parse_json_body(req);
  if (!b.is_object()) throw HttpError(400, "request body must be a JSON object");
  return b;
}

}  // namespace

json run_group_json(const RunGroup& g) {
  json j = {{"name", g.name}, {"default_priority", g.default_priority}};
  RunGroup copy = g;
  for (const char* f : kCapFields) j[f] = opt_json(cap_of(copy, f));
  j["created_at"] = g.created_at;
  j["updated_at"] = g.updated_at;
  return j;
}

RunGroup parse_run_group(const json& body, const std::string& name) {
  if (!body.is_object()) throw InputError("request body must be a JSON object");
  static const std::set<std::string> known = {"name",
                                              "max_runs",
                                              "max_tasks",
                                              "max_gpus",
                                              "max_cpu_threads",
                                              "max_run_seconds",
                                              "default_priority",
                                              "created_at",
                                              "updated_at"};
  for (const auto& [k, v] : body.items())
    if (!known.count(k)) throw InputError("unknown field '" + k + "'");
  RunGroup g;
  if (body.contains("name") && !body["name"].is_null()) {
    if (!body["name"].is_string()) throw InputError("'name' must be a string");
    g.name = body["name"].get<std::string>();
    if (!name.empty() && g.name != name)
      throw InputError("'name' is '" + g.name + "' but the path names '" + name + "'");
  } else if (name.empty()) {
    throw InputError("missing 'name'");
  }
  if (!name.empty()) g.name = name;
  for (const char* f : kCapFields) {
    if (!body.contains(f) || body[f].is_null()) continue;
    const json& v = body[f];
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(1) << 40))
      throw InputError(std::string("'") + f + "' must be an integer (or null: no limit)");
    cap_of(g, f) = v.get<int64_t>();
  }
  if (body.contains("default_priority") && !body["default_priority"].is_null()) {
    const json& p = body["default_priority"];
    if (!p.is_number_integer() || (p.is_number_unsigned() && p.get<uint64_t>() > uint64_t(kMaxRunPriority)))
      throw InputError("'default_priority' must be an integer from " + std::to_string(kMinRunPriority) +
                       " to " + std::to_string(kMaxRunPriority));
    g.default_priority = p.get<int64_t>();
  }
  validate_run_group(g);
  return g;
}

void add_run_group_routes(http::Router& r, JobStore& store) {
  JobStore* s = &store;
  r.get(
      "/v1/run-groups",
      [s](Request&) {
        json groups = json::array();
        for (const RunGroup& g : s->list_run_groups()) groups.push_back(run_group_json(g));
        return Response::json({{"run_groups", groups}});
      },
      Scope::client);
  r.get(
      "/v1/run-groups/{name}",
      [s](Request& req) {
        auto g = s->get_run_group(req.param("name"));
        if (!g) throw HttpError(404, "unknown run group '" + req.param("name") + "'");
        return Response::json(run_group_json(*g));
      },
      Scope::client);
  r.post(
      "/v1/run-groups",
      [s](Request& req) {
        const RunGroup g = parse_run_group(body_object(req));
        if (s->get_run_group(g.name))
          throw HttpError(
              409, "run group '" + g.name + "' exists (PUT /v1/run-groups/" + g.name + " replaces it)");
        Response resp = Response::json(run_group_json(s->put_run_group(g, now_ms())), 201);
        resp.set_header("Location", "/v1/run-groups/" + g.name);
        return resp;
      },
      Scope::admin);
  r.put(
      "/v1/run-groups/{name}",
      [s](Request& req) {
        const RunGroup g = parse_run_group(body_object(req), req.param("name"));
        const bool existed = s->get_run_group(g.name).has_value();
        return Response::json(run_group_json(s->put_run_group(g, now_ms())), existed ? 200 : 201);
      },
      Scope::admin);
  r.del(
      "/v1/run-groups/{name}",
      [s](Request& req) {
        const std::string name = req.param("name");
        check_run_group_name(name);
        if (!s->delete_run_group(name)) throw HttpError(404, "unknown run group '" + name + "'");
        Response resp;
        resp.status = 204;
        return resp;
      },
      Scope::admin);
}

}  // namespace omicsd
