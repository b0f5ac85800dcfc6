// One path from a submitted request to a stored run (run_submission.hpp).
#include "service/api/run_submission.hpp"

#include <boost/asio/ip/address.hpp>

#include "host/common/error.hpp"
#include "omicsd_version.hpp"
#include "service/http/http_client.hpp"
#include "service/http/http_router.hpp"
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

CreateRunResult RunSubmitter::submit(const json& body, const std::string& idempotency_key,
                                     const json& extra_provenance) {
  WorkflowRequest w = parse_workflow_request(body);
  check_callback_url(w.callback_url);
  w.idempotency_key = idempotency_key;
  if (w.idempotency_key.size() > 256) throw HttpError(400, "Idempotency-Key longer than 256 characters");
  const json submitted_inputs = w.inputs;  // store ids as given, before they become file paths
  catalog_.resolve_run_inputs(w);
  check_workflow_inputs(w, opt_.allow_roots, objects_, opt_.s3_inputs.get(), opt_.remote_objects.get());
  NewRun n = make_new_run(w, opt_.threads, opt_.max_attempts);
  n.provenance = {{"engine", {{"name", "omicsd"}, {"version", kVersion}, {"git_hash", kGitHash}}},
                  {"submitted_inputs", submitted_inputs},
                  {"parameters", w.parameters}};
  if (extra_provenance.is_object())
    for (const auto& [k, v] : extra_provenance.items()) n.provenance[k] = v;
  CreateRunResult res = store_.create_run(n, now_ms());  // run, tasks, provenance: one transaction
  if (!res.existed) metrics_->inc("omicsd_runs_created_total", 1, {{"workflow", w.workflow}});
  return res;
}

}  // namespace omicsd
