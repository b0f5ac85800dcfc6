#pragma once
// The daemon's stores besides the job store (docs/api.md "References", "Read sets", "Variants"):
// the reference store, the sequence store and the variant store, their routes, and the background
// jobs they need: reference and read-set imports (restarted after a crash) and the ingestion of
// every COMPLETE germline run's VCF into the variant store (caught up after a crash).
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace omicsd {

class JobStore;
class ObjectBackend;
struct S3InputPolicy;
class ObjectStore;
struct WorkflowRequest;
class Metrics;
namespace http {
class Router;
}  // namespace http

struct CatalogOptions {
  std::filesystem::path data_dir;  // references/ and readsets/ live below it
  // Where the store tables live: a PostgreSQL URL (shared by daemons) or empty for the SQLite
  // defaults <data>/catalog.db (references, read sets) and <data>/variants.db (genotypes).
  std::string db;
  std::vector<std::filesystem::path> allow_roots;  // registrations by URI must lie inside
  // The fleet's S3 object store (--objects s3://...): a germline run's VCF is fetched from it for the
  // variant ingest when remote workers wrote it there. Null: everything is local.
  std::shared_ptr<ObjectBackend> remote_objects;
  // s3:// read-set sources (--allow-s3): fetched into the object store, then imported. Null: refused.
  std::shared_ptr<S3InputPolicy> s3_inputs;
  int import_threads = 1;         // concurrent reference / read-set imports
  bool ingest_all_sites = false;  // variant store: also non-PASS records
  // Uploads: the largest FASTA, the largest read-set part, and the free space every upload leaves.
  std::uint64_t max_reference_bytes = std::uint64_t(64) << 30;
  std::uint64_t max_readset_part_bytes = std::uint64_t(256) << 30;
  std::uint64_t min_free_bytes = std::uint64_t(1) << 30;
  std::uint64_t max_export_cache_bytes = std::uint64_t(64) << 30;  // read-set exports (0: unbounded)
  bool refget_public = false;     // refget v2 routes without a token (--refget-public)
  std::string htsget_public_url;  // htsget ticket URLs' base (--htsget-public-url); empty: the Host header
  bool htsget_https = false;      // the daemon serves TLS: ticket URLs from the Host header use https
  bool beacon_public = false;     // Beacon v2 routes without a token (--beacon-public)
  int64_t beacon_min_count = 5;   // Beacon: fewer carriers than this -> exists only (--beacon-min-count)
  std::string beacon_assembly;    // Beacon: the variant store's assembly (--beacon-assembly; "" = any)
};

class Catalog {
 public:
  Catalog(CatalogOptions options, JobStore& jobs, ObjectStore& objects, std::shared_ptr<Metrics> metrics);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Directories whose files runs may read (the stored references and read sets): the daemon adds
  // them to the allowed roots of its workers and of the task input route.
  std::vector<std::filesystem::path> store_roots() const;

  void add_routes(http::Router& router);

  // Rewrites the store ids a run names ("reference": "ref-...", "reads": "rs-..." or a list of
  // them) into the stored files, and fills the run's sample from the read set when not given.
  // Throws InputError (400) for an unknown id or one that is not ACTIVE.
  void resolve_run_inputs(WorkflowRequest& request);

  // Queues the import jobs left IMPORTING and the COMPLETE germline runs not yet in the variant
  // store, then keeps running jobs until stop().
  void start();
  void stop();  // cancels running imports (they restart on the next start) and joins the threads

  // A run reached COMPLETE: a germline run's VCF is queued for the variant store.
  void on_run_complete(const std::string& run_id);
  // Ingests one run now (the queued job); false when it is not a COMPLETE germline run.
  bool ingest_run(const std::string& run_id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace omicsd
