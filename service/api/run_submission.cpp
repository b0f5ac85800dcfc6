// One path from a submitted request to a stored run (run_submission.hpp).
#include "service/api/run_submission.hpp"

#include <boost/asio/ip/address.hpp>
#include <map>

#include "host/common/error.hpp"
#include "omicsd_version.hpp"
#include "service/http/http_client.hpp"
#include "service/http/http_router.hpp"
#include "service/http/json_input.hpp"
#include "service/jobs/workflow.hpp"
#include "service/objects/object_backend.hpp"
#include "service/stores/catalog.hpp"
#include "service/util/clock.hpp"
#include "service/util/metrics.hpp"

namespace omicsd {

using http::HttpError;
using json = nlohmann::json;

RunSubmitter::RunSubmitter(JobStore& store, ObjectStore& objects, Catalog& catalog, RunRoutesOptions options,
                           std::shared_ptr<Metrics> metrics)
    : opt_(std::move(options)),
      store_(store),
      objects_(objects),
      catalog_(catalog),
      metrics_(std::move(metrics)) {}

// A callback_url naming a refused address literally (http://127.0.0.1/..., http://[::1]/...) is a
// 400 at submission; names are checked when they are resolved, at each delivery.
void RunSubmitter::check_callback_url(const std::string& url) const {
  if (url.empty()) return;
  if (redact_url_credentials(url) != url)  // never stored, so never logged or shown to clients
    throw HttpError(400,
                    "'callback_url' must not carry credentials (user:password@host); receivers "
                    "authenticate events by their X-Omicsd-Signature (--webhook-secret-file)");
  HttpClientOptions co;
  co.base_url = url;
  std::string host;
  try {
    host = HttpClient(co).host();
  } catch (const InputError& e) {
    throw HttpError(400, std::string("'callback_url': ") + e.what());
  }
  boost::system::error_code not_ip;
  boost::asio::ip::make_address(host, not_ip);
  if (not_ip) return;
  const std::string why = opt_.callback_policy.refusal(host);
  if (!why.empty()) throw HttpError(400, "'callback_url' refused: " + why);
}

NewRun RunSubmitter::prepare(const json& body, const std::string& idempotency_key,
                             const json& extra_provenance, InputMemo* memo) const {
  WorkflowRequest w = parse_workflow_request(body);
  check_callback_url(w.callback_url);
  w.idempotency_key = idempotency_key;
  if (w.idempotency_key.size() > 256) throw HttpError(400, "Idempotency-Key longer than 256 characters");
  const json submitted_inputs = w.inputs;  // store ids as given, before they become file paths
  // The memo's key: what resolving and checking read (the workflow, the inputs, whether a read set
  // may name the sample).
  const std::string key = memo ? w.workflow + (w.sample.empty() ? "\n-\n" : "\n+\n") + w.inputs.dump() : "";
  const auto hit = memo ? memo->find(key) : InputMemo::iterator();
  if (memo && hit != memo->end()) {
    w.inputs = hit->second.inputs;
    if (w.sample.empty()) w.sample = hit->second.sample;
  } else {
    catalog_.resolve_run_inputs(w);
    check_workflow_inputs(w, opt_.allow_roots, objects_, opt_.s3_inputs.get(), opt_.remote_objects.get());
    if (memo) memo->emplace(key, ResolvedInputs{w.inputs, w.sample});
  }
  NewRun n = make_new_run(w, opt_.threads, opt_.max_attempts);
  n.provenance = {{"engine", {{"name", "omicsd"}, {"version", kVersion}, {"git_hash", kGitHash}}},
                  {"submitted_inputs", submitted_inputs},
                  {"parameters", w.parameters}};
  if (extra_provenance.is_object())
    for (const auto& [k, v] : extra_provenance.items()) n.provenance[k] = v;
  return n;
}

CreateRunResult RunSubmitter::submit(const json& body, const std::string& idempotency_key,
                                     const json& extra_provenance) {
  const NewRun n = prepare(body, idempotency_key, extra_provenance);
  CreateRunResult res = store_.create_run(n, now_ms());  // run, tasks, provenance: one transaction
  if (!res.existed) metrics_->inc("omicsd_runs_created_total", 1, {{"workflow", n.workflow}});
  return res;
}

RunBatch RunSubmitter::accept_batch(const std::string& body_text, const std::string& idempotency_key,
                                    bool& existed) {
  if (idempotency_key.size() > 256) throw HttpError(400, "Idempotency-Key longer than 256 characters");
  const json body = parse_json_input(body_text, "request body");
  if (!body.is_object() || !body.contains("runs") || !body["runs"].is_array())
    throw InputError("request body must be an object with a 'runs' array");
  for (const auto& [k, v] : body.items())
    if (k != "runs") throw InputError("unknown field '" + k + "'");
  const json& specs = body["runs"];
  if (specs.empty() || specs.size() > kMaxBatchRuns)
    throw InputError("'runs' must hold 1 to " + std::to_string(kMaxBatchRuns) + " run requests");
  // The body as sent is what is stored: it is this JSON object, and writing it again would cost as
  // much as parsing it.
  RunBatch b = store_.create_run_batch(body_text, int64_t(specs.size()), idempotency_key, now_ms(), existed);
  if (!existed) {
    std::lock_guard lk(batches_mu_);
    accepted_here_.insert(b.id);
  }
  return b;
}

bool RunSubmitter::may_submit(const RunBatch& b) {
  std::lock_guard lk(batches_mu_);
  if (accepted_here_.count(b.id)) return true;
  const int64_t now = now_ms();
  auto [seen, first] = seen_progress_.try_emplace(b.id, b.submitted, now);
  if (first || seen->second.first != b.submitted) {  // moving: another daemon is on it
    seen->second = {b.submitted, now};
    return false;
  }
  return now - seen->second.second >= kBatchStallMs;
}

int64_t RunSubmitter::submit_pending_batches(const std::atomic<bool>& stop) {
  int64_t submitted = 0;
  for (bool progress = true; progress && !stop;) {
    progress = false;
    std::set<std::string> pending_ids;
    for (std::string after;;) {  // every SUBMITTING batch, oldest first, a page at a time
      const std::vector<RunBatch> page = store_.list_run_batches(RunBatchState::Submitting, after, 100);
      for (const RunBatch& b : page) {
        pending_ids.insert(b.id);
        if (stop || !may_submit(b)) continue;
        const int64_t n = submit_batch_requests(b, stop);
        submitted += n;
        progress = progress || n > 0;
      }
      if (page.size() < 100) break;
      after = page.back().id;
    }
    std::lock_guard lk(batches_mu_);  // forget the progress of batches that are done
    std::erase_if(seen_progress_, [&](const auto& kv) { return !pending_ids.count(kv.first); });
  }
  return submitted;
}

int64_t RunSubmitter::submit_batch_requests(const RunBatch& batch, const std::atomic<bool>& stop) {
  const auto finished = [&] {
    std::lock_guard lk(batches_mu_);
    accepted_here_.erase(batch.id);
  };
  const std::optional<std::string> text = store_.run_batch_requests(batch.id);
  if (!text) {  // submitted meanwhile by another daemon
    finished();
    return 0;
  }
  const json body = json::parse(*text);
  const json& specs = body.at("runs");
  if (!specs.is_array() || int64_t(specs.size()) != batch.total)
    throw Error("batch " + batch.id + ": its stored requests are not the " + std::to_string(batch.total) +
                " it was accepted with");
  InputMemo memo;
  int64_t next = batch.submitted, submitted = 0;
  while (next < batch.total && !stop) {
    const int64_t count = std::min(kBatchChunkRuns, batch.total - next);
    std::vector<NewRun> runs;
    std::vector<int64_t> run_index;
    std::vector<RunBatchRefusal> refused;
    for (int64_t i = next; i < next + count; ++i) {
      auto refuse = [&](int code, const char* message) { refused.push_back({i, code, message}); };
      try {
        const json& spec = specs[size_t(i)];
        std::string key;
        if (spec.is_object() && spec.contains("idempotency_key")) {
          if (!spec["idempotency_key"].is_string()) throw InputError("'idempotency_key' must be a string");
          key = spec["idempotency_key"].get<std::string>();
          json rest = spec;
          rest.erase("idempotency_key");
          runs.push_back(prepare(rest, key, json::object(), &memo));
        } else {
          runs.push_back(prepare(spec, key, json::object(), &memo));
        }
        run_index.push_back(i);
      } catch (const HttpError& e) {
        refuse(e.status(), e.what());
      } catch (const NotFoundError& e) {  // e.g. a reference id that is not in the store
        refuse(404, e.what());
      } catch (const ConflictError& e) {  // e.g. a read set still importing
        refuse(409, e.what());
      } catch (const InputError& e) {
        refuse(400, e.what());
      } catch (const std::exception& e) {  // checking the inputs failed (an object store not answering)
        refuse(503, (std::string("could not check the run's inputs: ") + e.what()).c_str());
      }
    }
    const auto stored =
        store_.add_run_batch_results(batch.id, next, count, runs, run_index, refused, now_ms());
    if (!stored) {  // another daemon wrote these results: go on from where the batch is now
      const std::optional<RunBatch> now = store_.get_run_batch(batch.id);
      if (!now || now->state == RunBatchState::Submitted) break;
      next = now->submitted;
      continue;
    }
    std::map<std::string, int64_t> created_by_workflow;  // one metrics update per workflow, not per run
    for (const BatchRunResult& r : *stored)
      if (r.created && !r.created->existed) ++created_by_workflow[r.created->run.workflow];
    for (const auto& [workflow, n] : created_by_workflow)
      metrics_->inc("omicsd_runs_created_total", double(n), {{"workflow", workflow}});
    next += count;
    submitted += count;
  }
  if (!stop) finished();  // every request has its result (here or by another daemon)
  return submitted;
}

}  // namespace omicsd
