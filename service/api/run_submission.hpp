#pragma once
// Creating a run, written once for every API that submits one: omicsd's POST /v1/runs and the GA4GH
// WES POST /ga4gh/wes/v1/runs. Parses the request, resolves stored reference and read-set ids,
// checks inputs under the allow-roots, builds the task graph and creates the run, its tasks and
// provenance in one JobStore transaction.
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "service/api/run_routes.hpp"
#include "service/jobs/job_store.hpp"

namespace omicsd {

class Catalog;
class Metrics;
class ObjectStore;

// The most runs one POST /v1/run-batches may carry.
inline constexpr size_t kMaxBatchRuns = 10000;

class RunSubmitter {
 public:
  RunSubmitter(JobStore& store, ObjectStore& objects, Catalog& catalog, RunRoutesOptions options,
               std::shared_ptr<Metrics> metrics);

  // `body` is a POST /v1/runs body (workflow, sample, inputs, parameters, cache, callback_url);
  // `extra_provenance` is merged into the run's first provenance (e.g. the WES request as sent).
  // Throws InputError / HttpError(400) for a bad request, as POST /v1/runs answers it.
  CreateRunResult submit(const nlohmann::json& body, const std::string& idempotency_key,
                         const nlohmann::json& extra_provenance = nlohmann::json::object());

  // POST /v1/run-batches: {"runs": [run request + optional "idempotency_key", ...]} (1 to
  // kMaxBatchRuns). Each run is checked as submit() checks it; those that pass are created in one
  // JobStore transaction (all or none survive a crash). Answers {"runs": [{"index", "id", "state",
  // "existed"} or {"index", "error": {"code", "message"}}], "created", "existing", "failed"}. Throws
  // InputError for a body that is not such a list.
  nlohmann::json submit_batch(const nlohmann::json& body);

  const RunRoutesOptions& options() const { return opt_; }

 private:
  // Inputs already resolved and checked in one batch, by workflow and inputs as sent (a batch's runs
  // mostly name the same reference): the resolved inputs and the sample a read set gave, if any.
  struct ResolvedInputs {
    nlohmann::json inputs;
    std::string sample;
  };
  using InputMemo = std::map<std::string, ResolvedInputs>;

  void check_callback_url(const std::string& url) const;
  // A checked run request as the NewRun to store (InputError / HttpError(400) when it is not). With
  // `memo`, inputs that passed once in this batch are not resolved and checked again.
  NewRun prepare(const nlohmann::json& body, const std::string& idempotency_key,
                 const nlohmann::json& extra_provenance, InputMemo* memo = nullptr) const;

  RunRoutesOptions opt_;
  JobStore& store_;
  ObjectStore& objects_;
  Catalog& catalog_;
  std::shared_ptr<Metrics> metrics_;
};

}  // namespace omicsd
