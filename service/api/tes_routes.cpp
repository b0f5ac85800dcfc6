// GA4GH TES v1.1 routes: a TES task is submitted as a run of workflow "tes" (one task of kind "tes")
// and read back through the TES view of that run (service/jobs/tes_task.hpp).
#include "service/api/tes_routes.hpp"

#include <fstream>
#include <sstream>

#include "host/common/error.hpp"
#include "omicsd_version.hpp"
#include "service/http/http_paging.hpp"
#include "service/http/json_input.hpp"
#include "service/jobs/job_store.hpp"
#include "service/jobs/task_graph.hpp"
#include "service/jobs/tes_task.hpp"
#include "service/objects/object_store.hpp"
#include "service/util/clock.hpp"
#include "service/util/metrics.hpp"

namespace omicsd {
namespace {

using json = nlohmann::json;
using http::HttpError;
using http::Request;
using http::Response;
using http::Scope;

constexpr const char* kBase = "/ga4gh/tes/v1";
// A GET /tasks with filters reads at most this many runs before it answers (with a next_page_token
// when more remain), so a filter that matches nothing costs a bounded amount of work per request.
constexpr int kMaxRunsScanned = 5000;

// The GA4GH error shape ({"msg", "status_code"}) for every failure of a TES route.
template <typename F>
Response tes_guard(F&& f) {
  try {
    return http::answer_errors(std::forward<F>(f));
  } catch (const HttpError& e) {
    return Response::json({{"msg", e.what()}, {"status_code", e.status()}}, e.status());
  }
}

struct TesRoutes {
  JobStore& store;
  ObjectStore& objects;
  TesRoutesOptions opt;
  std::shared_ptr<Metrics> metrics;

  // The task log the worker stored (null before there is one, or when it cannot be read).
  json log_of(const Run& run) const {
    if (!run.outputs.is_object() || !run.outputs.contains("tes")) return nullptr;
    const json& outs = run.outputs["tes"];
    if (!outs.is_object() || !outs.contains("tes_log") || !outs["tes_log"].contains("digest")) return nullptr;
    const std::string digest = outs["tes_log"]["digest"].get<std::string>();
    if (!objects.has(digest)) return nullptr;
    std::ifstream in(objects.path_of(digest), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    try {
      return parse_json_input(ss.str(), "TES task log");
    } catch (const InputError&) {
      return nullptr;
    }
  }

  std::optional<Task> task_of(const Run& run) const {
    const std::vector<Task> tasks = store.list_tasks(run.id);
    if (tasks.empty()) return std::nullopt;
    return tasks.front();
  }

  json view_of(const Run& run, TesView view) const {
    const std::optional<Task> t = task_of(run);
    const json log =
        view == TesView::Minimal && run.state != RunState::Complete ? json(nullptr) : log_of(run);
    return tes_task_view(run, t ? &*t : nullptr, log, view);
  }

  Run must_tes_run(const std::string& id) const {
    auto r = store.get_run(id);
    if (!r || r->workflow != kTesWorkflow) throw HttpError(404, "unknown task '" + id + "'");
    return *r;
  }

  static TesView view_param(const Request& req) {
    const auto v = req.query_param("view");
    return v && !v->empty() ? parse_tes_view(*v) : TesView::Minimal;
  }

  // file:// inputs exist under the roots (FILE: a regular file, DIRECTORY: a directory); sha256:
  // inputs are in the object store; file:// outputs lie under the roots. Checked again by the worker.
  void check_locations(const json& task) const {
    const auto& ins = task["inputs"];
    for (std::size_t i = 0; i < ins.size(); ++i) {
      if (!ins[i].contains("url")) continue;
      const std::string url = ins[i]["url"].get<std::string>();
      const std::string f = "inputs[" + std::to_string(i) + "].url";
      if (url.rfind("http", 0) == 0) continue;
      if (ins[i]["type"] == "DIRECTORY") {
        std::error_code ec;
        const auto p = std::filesystem::weakly_canonical(url_path(url, f), ec);
        if (ec || !std::filesystem::is_directory(p) || !within_roots(p))
          throw InputError(f + ": '" + url + "' is not a directory under the allowed roots");
        continue;
      }
      try {
        resolve_input_uri(url, opt.allow_roots, &objects);
      } catch (const InputError& e) {
        throw InputError(f + ": " + e.what());
      }
    }
    const auto& outs = task["outputs"];
    for (std::size_t i = 0; i < outs.size(); ++i) {
      const std::string url = outs[i]["url"].get<std::string>();
      if (is_object_store_output_url(url)) continue;
      const std::string f = "outputs[" + std::to_string(i) + "].url";
      std::error_code ec;
      const auto p = std::filesystem::weakly_canonical(url_path(url, f), ec);
      if (ec || !within_roots(p)) throw InputError(f + ": '" + url + "' is not under the allowed roots");
    }
  }

  static std::filesystem::path url_path(const std::string& url, const std::string& field) {
    std::string rest = url.substr(std::string_view("file://").size());
    if (rest.rfind("localhost/", 0) == 0) rest = rest.substr(std::string_view("localhost").size());
    if (rest.empty() || rest.front() != '/')
      throw InputError(field + ": '" + url + "' is not file:///absolute/path");
    return std::filesystem::path(http::percent_decode(rest)).lexically_normal();
  }

  bool within_roots(const std::filesystem::path& p) const {
    for (const auto& r : opt.allow_roots)
      if (path_is_within(p, r)) return true;
    return false;
  }

  Response create(Request& req) {
    const json body = http::parse_json_body(req);
    const json task = parse_tes_task(body);
    check_locations(task);
    NewRun n;
    n.workflow = kTesWorkflow;
    n.inputs = {{"tes", task}};
    n.idempotency_key = req.header("Idempotency-Key");
    if (n.idempotency_key.size() > 256) throw HttpError(400, "Idempotency-Key longer than 256 characters");
    TaskSpec t;
    t.name = "tes";
    t.kind = "tes";
    t.requirements = tes_requirements(task);
    t.max_attempts = opt.max_attempts;
    n.tasks = {t};
    n.provenance = {{"engine", {{"name", "omicsd"}, {"version", kVersion}, {"git_hash", kGitHash}}},
                    {"tes", {{"requirements", t.requirements}}}};
    const CreateRunResult res = store.create_run(n, now_ms());
    if (!res.existed) metrics->inc("omicsd_runs_created_total", 1, {{"workflow", kTesWorkflow}});
    return Response::json({{"id", res.run.id}});
  }

  Response list(Request& req) {
    const TesView view = view_param(req);
    const auto prefix = req.query_param("name_prefix");
    const auto state = req.query_param("state");
    if (state && !state->empty() && !is_tes_state(*state))
      throw InputError("state: '" + *state + "' is not a TES state");
    // tag_key/tag_value: repeated pairs (the spec), matched in order; a key without a value
    // matches any value.
    std::vector<std::string> keys, values;
    std::string_view qs = req.query_string;
    while (!qs.empty()) {  // repeated parameters: Request::query keeps only the last of each
      const std::size_t amp = qs.find('&');
      const std::string_view pair = qs.substr(0, amp);
      qs = amp == std::string_view::npos ? std::string_view() : qs.substr(amp + 1);
      const std::size_t eq = pair.find('=');
      const std::string k = http::percent_decode(pair.substr(0, eq), true);
      const std::string v =
          eq == std::string_view::npos ? "" : http::percent_decode(pair.substr(eq + 1), true);
      if (k == "tag_key") keys.push_back(v);
      if (k == "tag_value") values.push_back(v);
    }
    if (values.size() > keys.size()) throw InputError("tag_value: more values than tag_key");
    const http::PageParams paging = http::page_params(req);
    const int page_size = paging.page_size.value_or(256);
    RunFilter f;
    f.workflow = kTesWorkflow;
    f.page_token = paging.page_token;
    json tasks = json::array();
    int scanned = 0;
    std::string next;
    for (;;) {
      f.page_size = std::max(1, page_size - int(tasks.size()));
      const RunPage page = store.list_runs(f);
      for (const Run& run : page.runs) {
        ++scanned;
        const json& doc = run.inputs.contains("tes") ? run.inputs["tes"] : json::object();
        if (prefix && doc.value("name", std::string()).rfind(*prefix, 0) != 0) continue;
        bool tags_ok = true;
        const json& tags = doc.contains("tags") ? doc["tags"] : json::object();
        for (std::size_t i = 0; i < keys.size() && tags_ok; ++i)
          tags_ok = tags.contains(keys[i]) &&
                    (i >= values.size() || values[i].empty() || tags[keys[i]] == values[i]);
        if (!tags_ok) continue;
        if (state && !state->empty()) {
          const std::optional<Task> t = task_of(run);
          if (tes_state(run, t ? &*t : nullptr, log_of(run)) != *state) continue;
        }
        tasks.push_back(view_of(run, view));
      }
      next = page.next_page_token;
      if (next.empty() || int(tasks.size()) >= page_size || scanned >= kMaxRunsScanned) break;
      f.page_token = next;
    }
    json out = {{"tasks", tasks}};
    if (!next.empty()) out["next_page_token"] = next;
    return Response::json(out);
  }

  Response cancel(const std::string& id) {
    Run run = must_tes_run(id);
    store.cancel_run(run.id, now_ms());  // a task already finished stays as it is (idempotent)
    return Response::json(json::object());
  }

  json service_info() const {
    json storage = json::array({"omicsd:objects"});
    for (const auto& r : opt.allow_roots) storage.push_back("file://" + r.string());
    return {{"id", "org.omicsd.tes"},
            {"name", "omicsd TES"},
            {"type", {{"group", "org.ga4gh"}, {"artifact", "tes"}, {"version", "1.1.0"}}},
            {"description",
             "GA4GH TES on omicsd's durable queue: tasks run on omicsd workers started with --task-runtime"},
            {"organization", {{"name", "omicsd"}, {"url", "https://github.com/omicsd/omicsd"}}},
            {"version", kVersion},
            {"storage", storage},
            {"tesResources_backend_parameters", json::array({"gpu", "gpu_memory_gb"})}};
  }
};

}  // namespace

void add_tes_routes(http::Router& router, JobStore& store, ObjectStore& objects, TesRoutesOptions options,
                    std::shared_ptr<Metrics> metrics) {
  auto r = std::make_shared<TesRoutes>(TesRoutes{store, objects, std::move(options), std::move(metrics)});
  const std::string base = kBase;
  // TES 1.x: /service-info; TES 0.x clients (py-tes 0.4, the Snakemake TES executor) ask for
  // /tasks/service-info, a literal that wins over /tasks/{id}.
  for (const char* path : {"/service-info", "/tasks/service-info"})
    router.get(
        base + path, [r](Request&) { return tes_guard([&] { return Response::json(r->service_info()); }); },
        Scope::client);
  router.post(
      base + "/tasks", [r](Request& req) { return tes_guard([&] { return r->create(req); }); },
      Scope::client);
  router.get(
      base + "/tasks", [r](Request& req) { return tes_guard([&] { return r->list(req); }); }, Scope::client);
  router.get(
      base + "/tasks/{id}",
      [r](Request& req) {
        return tes_guard([&] {
          return Response::json(r->view_of(r->must_tes_run(req.param("id")), TesRoutes::view_param(req)));
        });
      },
      Scope::client);
  // "POST /tasks/{id}:cancel": one path segment, the id followed by ":cancel".
  router.post(
      base + "/tasks/{id}",
      [r](Request& req) {
        return tes_guard([&] {
          const std::string seg = req.param("id");
          const std::string suffix = ":cancel";
          if (seg.size() <= suffix.size() ||
              seg.compare(seg.size() - suffix.size(), suffix.size(), suffix) != 0)
            throw HttpError(404, "no such resource: POST " + req.path + " (expected /tasks/{id}:cancel)");
          return r->cancel(seg.substr(0, seg.size() - suffix.size()));
        });
      },
      Scope::client);
}

}  // namespace omicsd
