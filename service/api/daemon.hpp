#pragma once
// `omicsd serve`: the daemon. Assembles the JobStore, the ObjectStore, the HTTP routes of
// docs/api.md, the lease sweeper and the in-process workers, and runs until SIGTERM/SIGINT.
// (Does not include job_store.hpp or task_runner.hpp, so either side can include it.)
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "service/runner/tes_runtime.hpp"
#include "service/workers/inproc_worker.hpp"

namespace omicsd {

class ObjectStore;

struct DaemonOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::filesystem::path data_dir;
  std::string db;          // empty: sqlite:<data_dir>/omicsd.db
  int db_connections = 8;  // PostgreSQL job store connections (SQLite: one, with group commit)
  int workers = 1;
  std::vector<std::filesystem::path> allow_roots;
  // The fleet's object store for remote workers (`omicsd worker --transfer s3`): "s3://bucket/prefix",
  // or empty for the data directory only. Needs workers == 0 (in-process workers write locally).
  std::string objects_url;
  std::vector<std::string> allow_s3;  // s3://bucket[/prefix] run inputs may come from (empty: refused)
  std::string token_file;             // empty: auth off
  int64_t lease_seconds = 60;
  int max_attempts = 3;
  int threads = 0;  // per task; 0 = engine default (all cores)
  int http_threads = 4;
  std::size_t max_connections = 4096;  // HTTP connections at once (within RLIMIT_NOFILE)
  int handler_threads = 8;             // request handlers run here, off the I/O threads
  bool metrics_auth = false;           // with a token file: /metrics needs a metrics (or admin) token
  int64_t metrics_cache_ms = 5000;     // run/queue gauges are recomputed at most this often
  // PUT /v1/objects/{digest} bodies larger than this -> 413.
  uint64_t max_object_bytes = uint64_t(64) << 30;
  uint64_t max_reference_bytes = uint64_t(64) << 30;      // FASTA uploads
  uint64_t max_readset_part_bytes = uint64_t(256) << 30;  // read-set part uploads
  uint64_t min_free_bytes = uint64_t(1) << 30;            // every upload leaves this much free (else 507)
  uint64_t max_export_cache_bytes = uint64_t(64) << 30;   // read-set exports kept (LRU; 0: unbounded)
  bool refget_public = false;                             // refget routes without a token
  std::string htsget_public_url;                          // htsget ticket URLs' base (empty: the Host header)
  bool beacon_public = false;                             // Beacon v2 routes without a token
  int64_t beacon_min_count = 5;                           // Beacon: fewer carriers -> exists only
  std::string beacon_assembly;                            // Beacon: the variant store's assembly ("" = any)
  std::string tls_cert_file;  // PEM; with tls_key_file: serve HTTPS (both or neither)
  std::string tls_key_file;
  // Webhooks (callback_url of a run): HMAC key file (empty: unsigned), attempts and first backoff.
  std::string webhook_secret_file;
  int webhook_max_attempts = 10;
  int64_t webhook_backoff_ms = 1000;
  std::string webhook_ca_file;  // https callback_urls: CA bundle (empty: system CAs)
  // Networks callback_urls may reach besides public addresses (CIDRs; service/http/address_policy.hpp):
  // loopback, private, link-local and metadata addresses are refused unless listed here.
  std::vector<std::string> callback_allow;
  // Reference, sequence and variant stores: a PostgreSQL URL, or empty for the job store's
  // database when that is PostgreSQL, else SQLite files in data_dir (catalog.db, variants.db).
  std::string catalog_db;
  int import_threads = 1;         // concurrent reference / read-set imports
  bool ingest_all_sites = false;  // variant store: keep non-PASS genotypes too
  // In-process workers also lease GA4GH TES tasks, run in this runtime (none: they do not).
  TesRuntime task_runtime = TesRuntime::none;
};

// Makes the task engine of one in-process worker.
using ExecutorFactory = std::function<TaskExecutor(
    ObjectStore& store, const std::vector<std::filesystem::path>& roots, const std::string& worker_id)>;

// Runs the daemon until SIGTERM or SIGINT; returns the exit status (0 after a clean shutdown).
// Throws on startup failures (bad database, address in use, unreadable token file).
int run_daemon(const DaemonOptions& options, const ExecutorFactory& make_executor);

// The OpenAPI 3 document of docs/api.md (service/api/openapi_doc.cpp.in; identical to docs/openapi.json).
extern const char* const kOpenApiJson;

}  // namespace omicsd
