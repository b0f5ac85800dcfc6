// GA4GH WES v1.1 on omicsd's runs (wes_routes.hpp). Runs are created by the RunSubmitter that
// POST /v1/runs uses, so a WES run is an omicsd run: same validation, queue, workers and outputs.
#include "service/api/wes_routes.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <set>

#include "host/common/error.hpp"
#include "omicsd_version.hpp"
#include "service/api/run_submission.hpp"
#include "service/http/http_paging.hpp"
#include "service/http/json_input.hpp"
#include "service/http/multipart_form.hpp"
#include "service/jobs/workflow.hpp"
#include "service/util/clock.hpp"
#include "service/util/rfc3339.hpp"

namespace omicsd {
namespace {
using json = nlohmann::json;
using http::HttpError;
using http::Request;
using http::Response;
using http::Scope;

constexpr const char* kWorkflowType = "omicsd";
constexpr const char* kWorkflowTypeVersion = "1";
constexpr std::size_t kMaxTags = 64;
constexpr std::size_t kMaxTagKey = 256;
constexpr std::size_t kMaxTagValue = 4096;
constexpr std::size_t kMaxAttachments = 64;

// WES's ErrorResponse: {"msg": "...", "status_code": N}.
Response wes_error(int status, std::string_view msg) {
  return Response::json({{"msg", std::string(msg)}, {"status_code", status}}, status);
}

// Runs a handler, answering the engine's and the stores' errors (answer_errors) in WES's shape.
template <typename F>
Response wes_guard(F&& f) {
  try {
    return http::answer_errors(std::forward<F>(f));
  } catch (const HttpError& e) {
    return wes_error(e.status(), e.what());
  }
}

// RFC 3339 UTC with milliseconds, as WES's start_time / end_time.
json opt_iso(const std::optional<int64_t>& ms) { return ms ? json(rfc3339_ms(*ms)) : json(nullptr); }

// A form or JSON field that holds a JSON object: an object as such, or a string holding one.
json object_field(const json& value, const char* name) {
  json v = value;
  if (v.is_string()) {
    if (v.get<std::string>().empty()) return json::object();
    v = parse_json_input(v.get<std::string>(), name);
  }
  if (v.is_null()) return json::object();
  if (!v.is_object()) throw HttpError(400, std::string("'") + name + "' must be a JSON object");
  return v;
}

std::string string_field(const json& fields, const char* name, bool required) {
  if (!fields.contains(name) || fields[name].is_null()) {
    if (required) throw HttpError(400, std::string("missing '") + name + "'");
    return "";
  }
  if (!fields[name].is_string()) throw HttpError(400, std::string("'") + name + "' must be a string");
  return fields[name].get<std::string>();
}

// The fields of a RunRequest from any of the encodings clients use: multipart/form-data (the
// spec's and wes-client's), application/x-www-form-urlencoded (requests' data= without files)
// and JSON. Attachments are recorded by name and size: built-in workflows need none.
json run_request_fields(const Request& req, json& attachments) {
  static const std::set<std::string> known = {
      "workflow_params", "workflow_type", "workflow_type_version", "tags", "workflow_engine_parameters",
      "workflow_url"};
  const std::string content_type = req.header("Content-Type");
  json fields = json::object();
  auto put = [&](const std::string& name, std::string value) {
    if (!known.count(name)) throw HttpError(400, "unknown RunRequest field '" + name + "'");
    if (fields.contains(name)) throw HttpError(400, "RunRequest field '" + name + "' given twice");
    fields[name] = std::move(value);
  };
  if (http::is_multipart_form(content_type)) {
    for (http::MultipartPart& p : http::parse_multipart_form(content_type, req.body)) {
      if (p.name == "workflow_attachment") {
        if (attachments.size() >= kMaxAttachments)
          throw HttpError(400, "more than " + std::to_string(kMaxAttachments) + " workflow_attachment parts");
        attachments.push_back({{"filename", p.filename}, {"size", p.body.size()}});
        continue;
      }
      put(p.name, std::move(p.body));
    }
    return fields;
  }
  const std::string media = content_type.substr(0, content_type.find(';'));
  if (media == "application/x-www-form-urlencoded") {
    for (auto& [k, v] : http::parse_query(req.body)) put(k, v);
    return fields;
  }
  json body = http::parse_json_body(req);
  if (!body.is_object()) throw HttpError(400, "RunRequest must be a JSON object or a multipart form");
  for (const auto& [k, v] : body.items()) {
    if (!known.count(k)) throw HttpError(400, "unknown RunRequest field '" + k + "'");
    fields[k] = v;
  }
  return fields;
}

// tags: string keys and values, bounded (they are stored with the run and returned in its RunLog).
json check_tags(const json& tags) {
  if (tags.size() > kMaxTags) throw HttpError(400, "more than " + std::to_string(kMaxTags) + " tags");
  for (const auto& [k, v] : tags.items()) {
    if (!v.is_string()) throw HttpError(400, "tag '" + k + "' must have a string value");
    if (k.empty() || k.size() > kMaxTagKey || v.get<std::string>().size() > kMaxTagValue)
      throw HttpError(400, "tag keys must be 1 to 256 characters and values at most 4096");
  }
  return tags;
}

// The request a run was submitted with, as WES's RunRequest: stored for WES submissions; made up
// from the omicsd request for runs submitted at /v1/runs.
json run_request_of(const Run& run) {
  if (run.provenance.is_object() && run.provenance.contains("wes_request") &&
      run.provenance["wes_request"].is_object())
    return run.provenance["wes_request"];
  json params = {{"inputs", run.provenance.is_object() && run.provenance.contains("submitted_inputs")
                                ? run.provenance["submitted_inputs"]
                                : run.inputs},
                 {"parameters", run_user_parameters(run)},
                 {"cache", run_cache_enabled(run)}};
  if (const std::string sample = run_sample(run); !sample.empty()) params["sample"] = sample;
  return {{"workflow_params", params},
          {"workflow_type", kWorkflowType},
          {"workflow_type_version", kWorkflowTypeVersion},
          {"workflow_url", run.workflow},
          {"tags", json::object()},
          {"workflow_engine_parameters", json::object()}};
}

struct WesRoutes {
  WesRoutes(JobStore& s, ObjectStore& o, Catalog& c, WesRoutesOptions wo, std::shared_ptr<Metrics> m)
      : store(s), tls(wo.tls), submitter(s, o, c, std::move(wo.runs), std::move(m)) {}

  JobStore& store;
  bool tls;
  RunSubmitter submitter;

  // Absolute URLs for the client that asked (its Host header), so wes-client can fetch them as
  // they are; a request without Host gets paths.
  std::string base_url(const Request& req) const {
    const std::string host = req.header("Host");
    if (host.empty() || host.find_first_of("/\\ @") != std::string::npos) return "";
    return std::string(tls ? "https://" : "http://") + host;
  }

  Run must_run(const std::string& id) {
    auto r = store.get_run(id);
    if (!r) throw HttpError(404, "unknown run '" + id + "'");
    return *r;
  }

  json service_info() {
    json counts = json::object();
    for (const auto& [state, n] : store.counts().runs) counts[wes_state(state)] = n;
    for (const char* s : {"UNKNOWN", "INITIALIZING", "PAUSED", "SYSTEM_ERROR", "CANCELING", "PREEMPTED"})
      counts[s] = 0;  // states omicsd runs never take (docs/api.md)
    return {
        {"id", "org.omicsd.wes"},
        {"name", "omicsd WES"},
        {"type", {{"group", "org.ga4gh"}, {"artifact", "wes"}, {"version", "1.1.0"}}},
        {"description", "omicsd's built-in workflows (germline, align, call) as GA4GH WES runs"},
        {"organization", {{"name", "omicsd"}, {"url", "https://github.com/omicsd/omicsd"}}},
        {"version", kVersion},
        {"workflow_type_versions", {{kWorkflowType, {{"workflow_type_version", {kWorkflowTypeVersion}}}}}},
        {"supported_wes_versions", {"1.1.0", "1.0.0"}},
        {"supported_filesystem_protocols", {"file", "sha256"}},
        {"workflow_engine_versions", {{kWorkflowType, kVersion}}},
        {"default_workflow_engine_parameters",
         json::array({{{"name", "cache"}, {"type", "boolean"}, {"default_value", "true"}}})},
        {"system_state_counts", counts},
        {"auth_instructions_url", "https://github.com/omicsd/omicsd/blob/main/docs/operations.md"},
        {"tags", {{"workflows", "germline,align,call"}}}};
  }

  Response create_run(Request& req) {
    json attachments = json::array();
    const json fields = run_request_fields(req, attachments);
    const std::string type = string_field(fields, "workflow_type", true);
    if (type != kWorkflowType)
      throw HttpError(400, "workflow_type '" + type + "' is not supported (this service runs 'omicsd')");
    const std::string version = string_field(fields, "workflow_type_version", true);
    if (version != kWorkflowTypeVersion)
      throw HttpError(400, "workflow_type_version '" + version + "' is not supported (expected '1')");
    const std::string url = string_field(fields, "workflow_url", true);
    json params = object_field(fields.value("workflow_params", json(nullptr)), "workflow_params");
    if (params.contains("workflow"))
      throw HttpError(400, "workflow_params must not hold 'workflow': workflow_url names the workflow");
    const json tags = check_tags(object_field(fields.value("tags", json(nullptr)), "tags"));
    const json engine =
        object_field(fields.value("workflow_engine_parameters", json(nullptr)), "workflow_engine_parameters");
    json body = params;
    body["workflow"] = url;  // parse_workflow_request names the built-in workflows
    for (const auto& [k, v] : engine.items()) {
      if (k != "cache")
        throw HttpError(400, "unknown workflow_engine_parameters key '" + k + "' (known: cache)");
      if (v.is_boolean()) {
        body["cache"] = v;
      } else if (v == "true" || v == "false") {
        body["cache"] = v == "true";
      } else {
        throw HttpError(400, "workflow_engine_parameters 'cache' must be true or false");
      }
    }
    const json wes_request = {{"workflow_params", params},
                              {"workflow_type", type},
                              {"workflow_type_version", version},
                              {"workflow_url", url},
                              {"tags", tags},
                              {"workflow_engine_parameters", engine},
                              {"workflow_attachment", attachments}};
    const CreateRunResult res =
        submitter.submit(body, req.header("Idempotency-Key"), {{"wes_request", wes_request}});
    // 200, as the spec says (wes-client treats anything else as an error).
    Response resp = Response::json({{"run_id", res.run.id}});
    resp.set_header("Location", std::string(kWesBasePath) + "/runs/" + res.run.id);
    return resp;
  }

  Response list_runs(Request& req) {
    RunFilter f;
    const http::PageParams paging = http::page_params(req);
    if (paging.page_size) f.page_size = *paging.page_size;
    f.page_token = paging.page_token;
    RunPage page = store.list_runs(f);
    json runs = json::array();
    for (const Run& r : page.runs)
      runs.push_back({{"run_id", r.id}, {"state", wes_state(r.state)}, {"tags", run_request_of(r)["tags"]}});
    return Response::json({{"runs", runs}, {"next_page_token", page.next_page_token}});
  }

  json task_log(const Task& t) {
    json system_logs = json::array();
    system_logs.push_back("state " + std::string(to_string(t.state)) + ", attempts " +
                          std::to_string(t.attempts) + "/" + std::to_string(t.max_attempts) +
                          (t.worker_id.empty() ? "" : ", worker " + t.worker_id));
    if (!t.last_error.empty()) system_logs.push_back(t.last_error);
    json exit_code = nullptr;
    if (t.state == TaskState::Complete) exit_code = 0;
    if (t.state == TaskState::Failed) exit_code = 1;
    return {{"id", t.id},
            {"name", t.name},
            {"cmd", json::array({"omicsd", t.kind})},
            {"start_time", opt_iso(t.started_at)},
            {"end_time", opt_iso(t.finished_at)},
            {"stdout", nullptr},
            {"stderr", nullptr},
            {"exit_code", exit_code},
            {"system_logs", system_logs},
            {"tes_uri", nullptr}};
  }

  json run_log(const Request& req, const Run& run) {
    const std::string base = base_url(req);
    const std::vector<Task> tasks = store.list_tasks(run.id);
    std::optional<int64_t> start;
    for (const Task& t : tasks)
      if (t.started_at && (!start || *t.started_at < *start)) start = t.started_at;
    json outputs = json::object();
    const json refs = flat_outputs(run);  // named: items() would outlive a temporary
    for (const auto& [name, ref] : refs.items())
      outputs[name] = {{"url", base + "/v1/runs/" + run.id + "/outputs/" + name},
                       {"digest", ref["digest"]},
                       {"size", ref["size"]}};
    json exit_code = nullptr;
    if (run.state == RunState::Complete) exit_code = 0;
    if (run.state == RunState::Failed) exit_code = 1;
    json system_logs = json::array();
    if (!run.failure_reason.empty()) system_logs.push_back(run.failure_reason);
    const std::string logs_url = base + "/v1/runs/" + run.id + "/logs";  // every task's log as JSON
    return {{"run_id", run.id},
            {"request", run_request_of(run)},
            {"state", wes_state(run.state)},
            {"run_log",
             {{"name", run.workflow},
              {"cmd", json::array({"omicsd", "workflow", run.workflow})},
              {"start_time", opt_iso(start)},
              {"end_time", is_terminal(run.state) ? json(rfc3339_ms(run.updated_at)) : json(nullptr)},
              {"stdout", logs_url},
              {"stderr", logs_url},
              {"exit_code", exit_code},
              {"system_logs", system_logs}}},
            {"task_logs_url", base + kWesBasePath + "/runs/" + run.id + "/tasks"},
            {"outputs", outputs}};
  }

  // Tasks of a run a page at a time; the page token is the index of the page's first task.
  Response list_tasks(Request& req) {
    const Run run = must_run(req.param("id"));
    const http::PageParams paging = http::page_params(req);
    const std::size_t size = std::size_t(paging.page_size.value_or(50));
    std::size_t first = 0;
    if (!paging.page_token.empty()) {
      const std::string& tok = paging.page_token;
      auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), first);
      if (ec != std::errc() || end != tok.data() + tok.size())
        throw HttpError(400, "page_token '" + tok + "' is not a token this service gave");
    }
    const std::vector<Task> tasks = store.list_tasks(run.id);
    json logs = json::array();
    for (std::size_t i = first; i < tasks.size() && i < first + size; ++i) logs.push_back(task_log(tasks[i]));
    const std::string next = first + size < tasks.size() ? std::to_string(first + size) : "";
    return Response::json({{"task_logs", logs}, {"next_page_token", next}});
  }

  void add_routes(http::Router& r, const std::shared_ptr<WesRoutes>& self) {
    const std::string base = kWesBasePath;
    r.get(
        base + "/service-info",
        [this, keep = self](Request&) { return wes_guard([&] { return Response::json(service_info()); }); },
        Scope::client);
    r.post(
        base + "/runs",
        [this, keep = self](Request& req) { return wes_guard([&] { return create_run(req); }); },
        Scope::client);
    r.get(
        base + "/runs",
        [this, keep = self](Request& req) { return wes_guard([&] { return list_runs(req); }); },
        Scope::client);
    r.get(
        base + "/runs/{id}",
        [this, keep = self](Request& req) {
          return wes_guard([&] { return Response::json(run_log(req, must_run(req.param("id")))); });
        },
        Scope::client);
    r.get(
        base + "/runs/{id}/status",
        [this, keep = self](Request& req) {
          return wes_guard([&] {
            const Run run = must_run(req.param("id"));
            return Response::json({{"run_id", run.id}, {"state", wes_state(run.state)}});
          });
        },
        Scope::client);
    r.post(
        base + "/runs/{id}/cancel",
        [this, keep = self](Request& req) {
          return wes_guard([&] {
            const Run run = must_run(req.param("id"));
            if (!store.cancel_run(run.id, now_ms()))
              throw HttpError(409, "run " + run.id + " is " + wes_state(run.state) + ": nothing to cancel");
            return Response::json({{"run_id", run.id}});
          });
        },
        Scope::client);
    r.get(
        base + "/runs/{id}/tasks",
        [this, keep = self](Request& req) { return wes_guard([&] { return list_tasks(req); }); },
        Scope::client);
  }
};

}  // namespace

const char* wes_state(RunState s) {
  switch (s) {
    case RunState::Queued:
      return "QUEUED";
    case RunState::Running:
      return "RUNNING";
    case RunState::Complete:
      return "COMPLETE";
    case RunState::Failed:
      return "EXECUTOR_ERROR";
    case RunState::Canceled:
      return "CANCELED";
  }
  return "UNKNOWN";
}

void add_wes_routes(http::Router& router, JobStore& store, ObjectStore& objects, Catalog& catalog,
                    WesRoutesOptions options, std::shared_ptr<Metrics> metrics) {
  auto routes = std::make_shared<WesRoutes>(store, objects, catalog, std::move(options), std::move(metrics));
  routes->add_routes(router, routes);
}

}  // namespace omicsd
