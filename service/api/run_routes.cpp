// The run and task routes of docs/api.md: clients submit, list, cancel, resume runs and read their
// logs and outputs; workers lease tasks, send heartbeats and complete or fail them.
#include "service/api/run_routes.hpp"

#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "host/common/error.hpp"
#include "service/api/run_batch_loop.hpp"
#include "service/api/run_submission.hpp"
#include "service/http/http_client.hpp"
#include "service/http/http_paging.hpp"
#include "service/http/json_input.hpp"
#include "service/jobs/job_store.hpp"
#include "service/jobs/webhook_notifier.hpp"
#include "service/jobs/workflow.hpp"
#include "service/objects/object_backend.hpp"
#include "service/objects/object_store.hpp"
#include "service/stores/catalog.hpp"
#include "service/util/clock.hpp"
#include "service/util/metrics.hpp"
#include "service/workers/task_completion.hpp"

namespace omicsd {
namespace {
using json = nlohmann::json;
using http::HttpError;
using http::Request;
using http::Response;
using http::Scope;

// The largest POST /v1/run-batches body (10,000 run requests of a few hundred bytes each fit well).
constexpr std::uint64_t kMaxBatchBodyBytes = 64 << 20;

// The media type of a run output by its name (the qc task's outputs; the rest are binary).
std::string output_content_type(const std::string& name) {
  if (name == "qc") return "application/json";
  if (name == "report") return "text/html; charset=utf-8";
  if (name == "flagstat" || name == "samtools_stats" || name == "bcftools_stats")
    return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

std::string read_body_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream all;
  all << in.rdbuf();
  if (!in && !in.eof()) throw Error(path.string() + ": cannot read the request body");
  return all.str();
}

json opt_time(const std::optional<int64_t>& t) { return t ? json(*t) : json(nullptr); }

json task_json(const Task& t, const Run* run) {
  bool hit = false;
  if (run && run->provenance.is_object() && run->provenance.contains("tasks") &&
      run->provenance["tasks"].contains(t.name) && run->provenance["tasks"][t.name].is_object())
    hit = run->provenance["tasks"][t.name].value("cache_hit", false);
  return {{"id", t.id},
          {"run_id", t.run_id},
          {"name", t.name},
          {"kind", t.kind},
          {"state", to_string(t.state)},
          {"attempts", t.attempts},
          {"max_attempts", t.max_attempts},
          {"last_error", t.last_error},
          {"worker_id", t.worker_id},
          {"queued_at", t.queued_at},
          {"started_at", opt_time(t.started_at)},
          {"finished_at", opt_time(t.finished_at)},
          {"cache_hit", hit},
          {"outputs", t.outputs.is_null() ? json::object() : t.outputs}};
}

struct RunRoutes {
  RunRoutes(JobStore& s, ObjectStore& o, Catalog& c, RunRoutesOptions ro, std::shared_ptr<Metrics> m)
      : opt(ro), store(s), objects(o), catalog(c), metrics(m), submitter(s, o, c, std::move(ro), m) {}

  RunRoutesOptions opt;
  JobStore& store;
  ObjectStore& objects;
  Catalog& catalog;  // resolves stored references and read sets; ingests finished germline runs
  std::shared_ptr<Metrics> metrics;
  RunSubmitter submitter;              // run creation, shared with the WES routes
  RunBatchLoop batch_loop{submitter};  // creates the runs of accepted batches

  json run_json(const Run& run) {
    json tasks = json::array();
    const std::vector<Task> listed = store.list_tasks(run.id);
    for (const Task& t : listed) tasks.push_back(task_json(t, &run));
    return {{"id", run.id},
            {"workflow", run.workflow},
            {"sample", run_sample(run)},
            {"state", to_string(run.state)},
            {"created_at", run.created_at},
            {"updated_at", run.updated_at},
            {"failure_reason", run.failure_reason},
            {"priority", run.priority},
            {"deadline", run.deadline ? json(*run.deadline) : json(nullptr)},
            {"group", run.group},
            {"started_at", opt_time(run.started_at)},
            {"at_risk_at", opt_time(run.at_risk_at)},
            {"stages", stages_json(run, listed)},
            {"inputs", run.inputs},
            {"parameters", run_user_parameters(run)},
            {"cache", run_cache_enabled(run)},
            {"callback_url",
             run.callback_url.empty() ? json(nullptr) : json(redact_url_credentials(run.callback_url))},
            {"tasks", tasks},
            {"outputs", flat_outputs(run)},
            {"callbacks", callbacks_json(run.id)},
            {"provenance", run.provenance.is_null() ? json::object() : run.provenance}};
  }

  // Label values of the worker gauges are bounded: every new series is kept by the registry for
  // the life of the process, so workers (ids chosen by the caller), GPUs and names are capped.
  static constexpr std::size_t kMaxTelemetryWorkers = 1024;
  static constexpr int kMaxGpusPerWorker = 16;
  std::mutex telemetry_mu;
  std::set<std::string> telemetry_workers;

  // GPU utilisation reported by a worker with its heartbeat, as per-worker, per-GPU gauges.
  void record_telemetry(const std::string& worker, const json& telemetry) {
    if (!telemetry.is_object() || !telemetry.contains("gpus") || !telemetry["gpus"].is_array()) return;
    {
      std::lock_guard lk(telemetry_mu);
      if (!telemetry_workers.count(worker)) {
        if (telemetry_workers.size() >= kMaxTelemetryWorkers) return;  // the gauges of the first 1024
        telemetry_workers.insert(worker);
      }
    }
    for (const json& g : telemetry["gpus"]) {
      if (!g.is_object()) continue;
      const json& index = g.contains("index") ? g["index"] : json(0);
      if (!index.is_number_integer() || index.get<int64_t>() < 0 || index.get<int64_t>() >= kMaxGpusPerWorker)
        continue;
      std::string name = g.contains("name") && g["name"].is_string() ? g["name"].get<std::string>() : "";
      if (name.size() > 64) name.resize(64);
      const Metrics::Labels labels = {
          {"worker", worker}, {"gpu", std::to_string(index.get<int64_t>())}, {"name", name}};
      auto num = [&](const char* k) { return g.contains(k) && g[k].is_number() ? g[k].get<double>() : 0.0; };
      metrics->set("omicsd_worker_gpu_utilization_ratio", num("utilization"), labels);
      metrics->set("omicsd_worker_gpu_memory_used_bytes", num("memory_used_bytes"), labels);
      metrics->set("omicsd_worker_gpu_memory_total_bytes", num("memory_total_bytes"), labels);
    }
    metrics->set("omicsd_worker_last_heartbeat_seconds", double(now_ms()) / 1000.0, {{"worker", worker}});
  }

  // Each stage (task) of the run: when it was queued, started (its latest lease) and finished, the time
  // it waited and ran, and the measured duration of that stage across runs (run_at_risk.hpp).
  json stages_json(const Run& run, const std::vector<Task>& tasks) {
    const auto estimates = store.stage_estimates(run.workflow);
    json out = json::array();
    for (const Task& t : tasks) {
      const auto e = estimates.find(t.name);
      out.push_back({{"name", t.name},
                     {"state", to_string(t.state)},
                     {"queued_at", t.queued_at},
                     {"started_at", opt_time(t.started_at)},
                     {"finished_at", opt_time(t.finished_at)},
                     {"wait_ms", t.started_at ? json(*t.started_at - t.queued_at) : json(nullptr)},
                     {"duration_ms",
                      t.started_at && t.finished_at ? json(*t.finished_at - *t.started_at) : json(nullptr)},
                     {"estimated_ms", e != estimates.end() ? json(e->second.duration_ms) : json(nullptr)}});
    }
    return out;
  }

  // Webhook events of the run and how their delivery went.
  json callbacks_json(const std::string& run_id) {
    json out = json::array();
    for (const WebhookDelivery& w : store.list_webhooks(run_id))
      out.push_back(
          {{"id", "evt-" + std::to_string(w.id)},
           {"type", webhook_event_type(w)},
           {"state", to_string(w.state)},
           {"status", to_string(w.status)},
           {"attempts", w.attempts},
           {"created_at", w.created_at},
           {"delivered_at", opt_time(w.delivered_at)},
           {"next_attempt_at", w.status == WebhookStatus::Pending ? json(w.next_attempt_at) : json(nullptr)},
           {"last_error", w.last_error}});
    return out;
  }

  // A germline run that completes goes into the variant store.
  std::function<void(const std::string&)> on_run_complete() {
    return [this](const std::string& run_id) { catalog.on_run_complete(run_id); };
  }

  Run must_run(const std::string& id) {
    auto r = store.get_run(id);
    if (!r) throw HttpError(404, "unknown run '" + id + "'");
    return *r;
  }

  static json body_of(const Request& req) {
    json b = http::parse_json_body(req);
    if (!b.is_object()) throw HttpError(400, "request body must be a JSON object");
    return b;
  }
  static std::string str_field(const json& b, const char* k, bool required) {
    if (!b.contains(k) || b[k].is_null()) {
      if (required) throw HttpError(400, std::string("missing '") + k + "'");
      return "";
    }
    if (!b[k].is_string()) throw HttpError(400, std::string("'") + k + "' must be a string");
    return b[k].get<std::string>();
  }

  template <typename F>
  static Response guard(F&& f) {
    return http::answer_errors(std::forward<F>(f));
  }

  // `self` is this object: every route holds it, so it lives as long as the router.
  void add_routes(http::Router& r, const std::shared_ptr<RunRoutes>& self) {
    r.post(
        "/v1/runs",
        [this, keep_alive = self](Request& req) { return guard([&] { return create_run(req); }); },
        Scope::client);
    r.get(
        "/v1/runs", [this, keep_alive = self](Request& req) { return guard([&] { return list_runs(req); }); },
        Scope::client);
    // A batch of up to 10,000 run requests is a few MB: streamed to a spool file rather than held to
    // the 1 MiB limit of buffered bodies.
    http::StreamedBody batch_body;
    batch_body.spool_dir = objects.tmp_dir();
    batch_body.max_bytes = kMaxBatchBodyBytes;
    r.add_streamed(
        "POST", "/v1/run-batches",
        [this, keep_alive = self](Request& req) { return guard([&] { return create_batch(req); }); },
        Scope::client, batch_body);
    r.get(
        "/v1/run-batches",
        [this, keep_alive = self](Request& req) { return guard([&] { return list_batches(req); }); },
        Scope::client);
    r.get(
        "/v1/run-batches/{id}",
        [this, keep_alive = self](Request& req) { return guard([&] { return get_batch(req); }); },
        Scope::client);
    r.get(
        "/v1/runs/{id}",
        [this, keep_alive = self](Request& req) {
          return guard([&] { return Response::json(run_json(must_run(req.param("id")))); });
        },
        Scope::client);
    r.post(
        "/v1/runs/{id}/cancel",
        [this, keep_alive = self](Request& req) {
          return guard([&] {
            Run run = must_run(req.param("id"));
            if (!store.cancel_run(run.id, now_ms()))
              throw HttpError(409, "run " + run.id + " is " + to_string(run.state) + ": nothing to cancel");
            return Response::json(run_json(must_run(run.id)));
          });
        },
        Scope::client);
    r.post(
        "/v1/runs/{id}/resume",
        [this, keep_alive = self](Request& req) {
          return guard([&] {
            Run run = must_run(req.param("id"));
            if (!store.resume_run(run.id, now_ms()))
              throw HttpError(409, "run " + run.id + " is " + to_string(run.state) +
                                       ": only FAILED or CANCELED runs resume");
            return Response::json(run_json(must_run(run.id)));
          });
        },
        Scope::client);
    r.get(
        "/v1/runs/{id}/logs",
        [this, keep_alive = self](Request& req) {
          return guard([&] {
            Run run = must_run(req.param("id"));
            json tasks = json::array();
            for (const Task& t : store.list_tasks(run.id)) {
              json j = task_json(t, &run);
              if (run.provenance.contains("tasks") && run.provenance["tasks"].contains(t.name))
                j["provenance"] = run.provenance["tasks"][t.name];
              tasks.push_back(j);
            }
            return Response::json({{"run_id", run.id},
                                   {"state", to_string(run.state)},
                                   {"failure_reason", run.failure_reason},
                                   {"tasks", tasks}});
          });
        },
        Scope::client);
    r.get(
        "/v1/runs/{id}/outputs/{name}",
        [this, keep_alive = self](Request& req) {
          return guard([&] {
            Run run = must_run(req.param("id"));
            const json outs = flat_outputs(run);
            const std::string name = req.param("name");
            if (!outs.contains(name))
              throw HttpError(404, "run " + run.id + " has no output '" + name + "' (yet)");
            const std::string digest = outs[name]["digest"].get<std::string>();
            if (!objects.has(digest) && opt.remote_objects)
              if (const auto url = opt.remote_objects->direct_url(digest)) {
                // The daemon stays out of the data path: the client reads the object store itself.
                Response resp = Response::json({{"url", *url}, {"digest", digest}}, 307);
                resp.set_header("Location", *url);
                resp.set_header("X-Content-Digest", digest);
                return resp;
              }
            Response resp = Response::from_file(objects.path_of(digest), output_content_type(name));
            resp.set_header("ETag", "\"" + digest + "\"");
            resp.set_header("X-Content-Digest", digest);
            resp.set_header("X-Content-Type-Options", "nosniff");
            // A worker wrote the report: it opens sandboxed (no scripts, an origin of its own), so
            // a hostile one cannot act with the API's origin.
            if (name == "report")
              resp.set_header("Content-Security-Policy",
                              "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:");
            return resp;
          });
        },
        Scope::client);

    r.post(
        "/v1/tasks/lease",
        [this, keep_alive = self](Request& req) { return guard([&] { return lease(req); }); }, Scope::worker);
    r.post(
        "/v1/tasks/{id}/heartbeat",
        [this, keep_alive = self](Request& req) {
          return guard([&] {
            const json b = body_of(req);
            const int64_t secs = lease_seconds_of(b);
            Task t = store.heartbeat(task_id(req), str_field(b, "lease_token", true), secs, now_ms());
            if (b.contains("telemetry")) record_telemetry(t.worker_id, b["telemetry"]);
            return Response::json(task_json(t, nullptr));
          });
        },
        Scope::worker);
    r.post(
        "/v1/tasks/{id}/complete",
        [this, keep_alive = self](Request& req) { return guard([&] { return complete(req); }); },
        Scope::worker);
    r.post(
        "/v1/tasks/{id}/fail",
        [this, keep_alive = self](Request& req) {
          return guard([&] {
            const json b = body_of(req);
            bool retry = true;
            if (b.contains("retryable") && b["retryable"].is_boolean()) retry = b["retryable"].get<bool>();
            TaskResult res = store.fail_task(task_id(req), str_field(b, "lease_token", true),
                                             str_field(b, "error", false), retry, now_ms());
            json j = task_json(res.task, nullptr);
            j["run_state"] = to_string(res.run_state);
            j["retry_scheduled"] = res.retry_scheduled;
            j["duplicate"] = res.duplicate;
            return Response::json(j);
          });
        },
        Scope::worker);
  }

  // A lease or heartbeat's lease_seconds: absent -> --lease-seconds; anything but an integer in
  // 1..86400 is a 400 (an unbounded one overflowed now + seconds in the store).
  int64_t lease_seconds_of(const json& b) const {
    if (!b.contains("lease_seconds") || b["lease_seconds"].is_null()) return opt.lease_seconds;
    const json& v = b["lease_seconds"];
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > 86400) ||
        (!v.is_number_unsigned() && (v.get<int64_t>() < 1 || v.get<int64_t>() > 86400)))
      throw HttpError(400, "lease_seconds must be an integer between 1 and 86400");
    return v.get<int64_t>();
  }

  // Task ids are "<run id>/<name>": accept both the percent-encoded single segment and the run id
  // plus name given as ?name= (clients normally encode the slash as %2F).
  static std::string task_id(const Request& req) { return req.param("id"); }

  Response create_run(Request& req) {
    const CreateRunResult res = submitter.submit(body_of(req), req.header("Idempotency-Key"));
    Response resp = Response::json(run_json(must_run(res.run.id)), res.existed ? 200 : 201);
    resp.set_header("Location", "/v1/runs/" + res.run.id);
    return resp;
  }

  static json batch_json(const RunBatch& b) {
    return {{"id", b.id},
            {"state", to_string(b.state)},
            {"total", b.total},
            {"submitted", b.submitted},
            {"created", b.created},
            {"existing", b.existing},
            {"failed", b.failed},
            {"created_at", b.created_at},
            {"finished_at", opt_time(b.finished_at)}};
  }

  // 202 once the batch is stored (its runs are created in the background: GET /v1/run-batches/{id});
  // 200 with the stored batch when its Idempotency-Key names one.
  Response create_batch(Request& req) {
    bool existed = false;
    const RunBatch b =
        submitter.accept_batch(read_body_file(req.body_file), req.header("Idempotency-Key"), existed);
    if (!existed) batch_loop.wake();
    Response resp = Response::json(batch_json(b), existed ? 200 : 202);
    resp.set_header("Location", "/v1/run-batches/" + b.id);
    return resp;
  }

  Response list_batches(Request& req) {
    std::optional<RunBatchState> state;
    if (auto s = req.query_param("state"); s && !s->empty()) state = parse_run_batch_state(*s);
    const http::PageParams paging = http::page_params(req);
    const int page_size = paging.page_size.value_or(50);
    const std::vector<RunBatch> page = store.list_run_batches(state, paging.page_token, page_size);
    json batches = json::array();
    for (const RunBatch& b : page) batches.push_back(batch_json(b));
    const bool full = int(page.size()) == std::min(page_size, http::kMaxPageSize);
    return Response::json(
        {{"batches", batches}, {"next_page_token", http::next_page_token_json(full ? page.back().id : "")}});
  }

  // The batch and the results of its requests submitted so far, a page at a time (by request index):
  // {"index", "id", "state", "group", "existed"} or {"index", "error": {"code", "message"}}.
  Response get_batch(Request& req) {
    const std::optional<RunBatch> b = store.get_run_batch(req.param("id"));
    if (!b) throw HttpError(404, "unknown run batch '" + req.param("id") + "'");
    const http::PageParams paging = http::page_params(req);
    const int page_size = paging.page_size.value_or(http::kMaxPageSize);
    int64_t from = 0;
    if (!paging.page_token.empty()) {
      const std::string& t = paging.page_token;
      if (t.size() > 18 || t.find_first_not_of("0123456789") != std::string::npos)
        throw HttpError(400, "invalid page token '" + t + "'");
      from = std::stoll(t);
    }
    json runs = json::array();
    const std::vector<RunBatchItem> items = store.run_batch_items(b->id, from, page_size);
    for (const RunBatchItem& it : items) {
      if (it.run_id.empty()) {
        runs.push_back({{"index", it.index}, {"error", {{"code", it.error_code}, {"message", it.error}}}});
        continue;
      }
      runs.push_back({{"index", it.index},
                      {"id", it.run_id},
                      {"state", it.run_state},
                      {"group", it.group},
                      {"existed", it.existed}});
    }
    json out = batch_json(*b);
    const bool more = !items.empty() && items.back().index + 1 < b->submitted;
    out["runs"] = std::move(runs);
    out["next_page_token"] = http::next_page_token_json(more ? std::to_string(items.back().index + 1) : "");
    return Response::json(out);
  }

  Response list_runs(Request& req) {
    RunFilter f;
    if (auto s = req.query_param("state"); s && !s->empty()) f.state = parse_run_state(*s);
    if (auto w = req.query_param("workflow"); w && !w->empty()) f.workflow = *w;
    const http::PageParams paging = http::page_params(req);
    if (paging.page_size) f.page_size = *paging.page_size;
    f.page_token = paging.page_token;
    RunPage page = store.list_runs(f);
    json runs = json::array();
    for (const Run& r : page.runs) runs.push_back(run_json(r));
    return Response::json(
        {{"runs", runs}, {"next_page_token", http::next_page_token_json(page.next_page_token)}});
  }

  Response lease(Request& req) {
    const json b = body_of(req);
    const std::string worker = str_field(b, "worker_id", true);
    if (worker.empty() || worker.size() > 200)
      throw HttpError(400, "'worker_id' must be 1 to 200 characters");
    json caps =
        b.contains("capabilities") && b["capabilities"].is_object() ? b["capabilities"] : json::object();
    const int64_t secs = lease_seconds_of(b);
    auto leased = store.lease_task(worker, caps, secs, now_ms());
    if (!leased) {
      Response r;
      r.status = 204;
      r.content_type = "application/json";
      return r;
    }
    json t = task_json(leased->task, &leased->run);
    t["lease_token"] = leased->task.lease_token;
    t["lease_expires_at"] = opt_time(leased->task.lease_expires_at);
    t["parameters"] = leased->task.parameters;
    t["sample"] = run_sample(leased->run);
    t["use_cache"] = t["cache"] = run_cache_enabled(leased->run);
    t["cache_key"] = leased->task.cache_key;
    try {
      t["inputs"] = task_inputs(leased->run, leased->task);
    } catch (const InputError& e) {
      t["inputs"] = nullptr;
      t["input_error"] = e.what();
    }
    json run = {{"id", leased->run.id},
                {"workflow", leased->run.workflow},
                {"sample", run_sample(leased->run)},
                {"state", to_string(leased->run.state)},
                {"inputs", leased->run.inputs},
                {"parameters", run_user_parameters(leased->run)},
                {"cache", run_cache_enabled(leased->run)},
                {"outputs", flat_outputs(leased->run)}};
    return Response::json({{"task", t}, {"run", run}});
  }

  Response complete(Request& req) {
    const json b = body_of(req);
    const std::string id = task_id(req);
    const std::string token = str_field(b, "lease_token", true);
    json outputs = b.contains("outputs") ? b["outputs"] : json::object();
    if (!outputs.is_object()) throw HttpError(400, "'outputs' must be an object");
    for (const auto& [name, ref] : outputs.items()) {
      if (!ref.is_object() || !ref.contains("digest") || !ref["digest"].is_string() ||
          !is_sha256_digest(ref["digest"].get<std::string>()))
        throw HttpError(400, "output '" + name + "' needs a sha256 digest");
      const std::string d = ref["digest"].get<std::string>();
      if (!objects.has(d) && !(opt.remote_objects && opt.remote_objects->size_of(d)))
        throw HttpError(400, "output '" + name + "': object " + ref["digest"].get<std::string>() +
                                 " is not in the object store");
    }
    auto current = store.get_task(id);
    if (!current) throw HttpError(404, "unknown task '" + id + "'");
    const bool fresh = current->state == TaskState::Running && current->lease_token == token;
    FinishedTask finished = FinishedTask::of(*current, token);
    finished.outputs = std::move(outputs);
    // The worker's word is recorded as provenance only, never in the call cache (no trusted key).
    finished.provenance =
        b.contains("provenance") && b["provenance"].is_object() ? b["provenance"] : json::object();
    finished.provenance["worker_id"] = current->worker_id;
    const TaskResult res = complete_finished_task(store, finished, fresh, {metrics, on_run_complete()});
    json j = task_json(res.task, nullptr);
    j["run_state"] = to_string(res.run_state);
    j["duplicate"] = res.duplicate;
    return Response::json(j);
  }
};

}  // namespace

json flat_outputs(const Run& run) {
  json out = json::object();
  if (run.outputs.is_object())
    for (const auto& [task, outs] : run.outputs.items())
      if (outs.is_object())
        for (const auto& [name, ref] : outs.items())
          if (ref.is_object() && ref.contains("digest"))
            out[name] = {{"digest", ref["digest"]}, {"size", ref.value("size", json(0))}};
  return out;
}

json run_summary_json(JobStore& store, const std::string& run_id) {
  auto r = store.get_run(run_id);
  if (!r) return json::object();
  return {{"id", r->id},
          {"workflow", r->workflow},
          {"sample", run_sample(*r)},
          {"state", to_string(r->state)},
          {"created_at", r->created_at},
          {"updated_at", r->updated_at},
          {"failure_reason", r->failure_reason},
          {"outputs", flat_outputs(*r)},
          {"url", "/v1/runs/" + r->id}};
}

void add_run_routes(http::Router& router, JobStore& store, ObjectStore& objects, Catalog& catalog,
                    RunRoutesOptions options, std::shared_ptr<Metrics> metrics) {
  auto routes = std::make_shared<RunRoutes>(store, objects, catalog, std::move(options), std::move(metrics));
  routes->add_routes(router, routes);
}

}  // namespace omicsd
