#pragma once
// Creating a run, written once for every API that submits one: omicsd's POST /v1/runs and the GA4GH
// WES POST /ga4gh/wes/v1/runs. Parses the request, resolves stored reference and read-set ids,
// checks inputs under the allow-roots, builds the task graph and creates the run, its tasks and
// provenance in one JobStore transaction.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "service/api/run_routes.hpp"
#include "service/jobs/job_store.hpp"

namespace omicsd {

class Catalog;
class Metrics;
class ObjectStore;

// The most runs one POST /v1/run-batches may carry.
inline constexpr size_t kMaxBatchRuns = 10000;
// A batch accepted by another daemon (or before a restart) is taken over after this long without progress.
inline constexpr int64_t kBatchStallMs = 3000;
// A batch's requests are submitted this many per transaction: small enough that the store's write
// lock (SQLite) is held ~50 ms at a time while leases go on, large enough to cost few commits.
inline constexpr int64_t kBatchChunkRuns = 500;

class RunSubmitter {
 public:
  RunSubmitter(JobStore& store, ObjectStore& objects, Catalog& catalog, RunRoutesOptions options,
               std::shared_ptr<Metrics> metrics);

  // `body` is a POST /v1/runs body (workflow, sample, inputs, parameters, cache, callback_url);
  // `extra_provenance` is merged into the run's first provenance (e.g. the WES request as sent).
  // Throws InputError / HttpError(400) for a bad request, as POST /v1/runs answers it.
  CreateRunResult submit(const nlohmann::json& body, const std::string& idempotency_key,
                         const nlohmann::json& extra_provenance = nlohmann::json::object());

  // POST /v1/run-batches: `body_text` must be {"runs": [run request + optional "idempotency_key",
  // ...]} with 1 to kMaxBatchRuns requests (InputError otherwise). Stores it as one batch
  // (JobStore::create_run_batch, durable when this returns) whose runs submit_pending_batches creates.
  // With an `idempotency_key` that names a stored batch, that batch is returned and `existed` set.
  RunBatch accept_batch(const std::string& body_text, const std::string& idempotency_key, bool& existed);

  // Submits the requests of the SUBMITTING batches, kBatchChunkRuns at a time: each request is checked
  // as submit() checks it, and a chunk's runs commit together with its results, so a crash loses no
  // accepted request and creates none twice. A refused request gets its error (400, 404, 409) and the
  // others go on. The batches this submitter accepted are submitted at once; one accepted elsewhere
  // (another daemon sharing the store, or this one before a restart) once it has made no progress for
  // kBatchStallMs, so two live daemons do not both work through one batch. Returns the requests this
  // call submitted, when no batch it may take is left or once `stop` is set.
  int64_t submit_pending_batches(const std::atomic<bool>& stop);

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
  // Submits batch `b`'s requests from its first one without a result (submit_pending_batches).
  int64_t submit_batch_requests(const RunBatch& b, const std::atomic<bool>& stop);
  // A checked run request as the NewRun to store (InputError / HttpError(400) when it is not). With
  // `memo`, inputs that passed once in this batch are not resolved and checked again.
  NewRun prepare(const nlohmann::json& body, const std::string& idempotency_key,
                 const nlohmann::json& extra_provenance, InputMemo* memo = nullptr) const;

  // Whether submit_pending_batches may take `b` now (see there).
  bool may_submit(const RunBatch& b);

  std::mutex batches_mu_;
  std::set<std::string> accepted_here_;  // batches this submitter accepted and has not finished
  std::map<std::string, std::pair<int64_t, int64_t>> seen_progress_;  // other batches: submitted, since (ms)

  RunRoutesOptions opt_;
  JobStore& store_;
  ObjectStore& objects_;
  Catalog& catalog_;
  std::shared_ptr<Metrics> metrics_;
};

}  // namespace omicsd
