#include "service/stores/catalog.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "host/common/error.hpp"
#include "service/db/sql_db.hpp"
#include "service/http/http_router.hpp"
#include "service/jobs/job_store.hpp"
#include "service/jobs/workflow.hpp"
#include "service/objects/object_backend.hpp"
#include "service/objects/object_store.hpp"
#include "service/stores/beacon_routes.hpp"
#include "service/stores/htsget_routes.hpp"
#include "service/stores/readset_routes.hpp"
#include "service/stores/readset_store.hpp"
#include "service/stores/reference_routes.hpp"
#include "service/stores/reference_store.hpp"
#include "service/stores/refget_routes.hpp"
#include "service/stores/variant_routes.hpp"
#include "service/stores/variant_store.hpp"
#include "service/util/clock.hpp"
#include "service/util/metrics.hpp"

namespace omicsd {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

bool is_reference_id(const std::string& s) { return s.rfind("ref-", 0) == 0; }
bool looks_like_readset_id(const std::string& s) { return s.rfind("rs-", 0) == 0; }

// Background jobs (imports, ingests) on a few threads. Jobs queued when stop() comes are dropped:
// their state is durable (IMPORTING rows, runs missing from the variant store) and start() finds
// them again.
class JobQueue {
 public:
  void start(int threads) {
    for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { loop(); });
  }
  void push(std::function<void()> job) {
    {
      std::lock_guard lk(mu_);
      if (stop_) return;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }
  void stop() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
      jobs_.clear();
    }
    cancel_ = true;
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  const std::atomic<bool>* cancel_flag() const { return &cancel_; }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
        if (stop_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
  std::atomic<bool> cancel_{false};
};

}  // namespace

struct Catalog::Impl {
  CatalogOptions opt;
  JobStore& jobs;
  ObjectStore& objects;
  std::shared_ptr<Metrics> metrics;
  std::unique_ptr<sql::Db> catalog_db;        // references + read sets
  std::unique_ptr<sql::Db> variant_db;        // genotypes (its own connection: ingests are long writes)
  std::unique_ptr<sql::Db> variant_query_db;  // a second one, so queries never wait behind an ingest
  std::unique_ptr<ReferenceStore> references;
  std::unique_ptr<ReadSetStore> readsets;
  std::unique_ptr<VariantStore> variants;
  JobQueue imports;  // reference and read-set imports
  JobQueue ingests;  // variant store ingestion (one thread: one writer)

  Impl(CatalogOptions o, JobStore& j, ObjectStore& ob, std::shared_ptr<Metrics> m)
      : opt(std::move(o)), jobs(j), objects(ob), metrics(std::move(m)) {
    const bool pg = opt.db.rfind("postgres://", 0) == 0 || opt.db.rfind("postgresql://", 0) == 0;
    catalog_db = sql::open_db(pg ? opt.db : "sqlite:" + (opt.data_dir / "catalog.db").string(), "catalog");
    const std::string variants_url = pg ? opt.db : "sqlite:" + (opt.data_dir / "variants.db").string();
    variant_db = sql::open_db(variants_url, "variant store");
    variant_query_db = sql::open_db(variants_url, "variant store");
    ReferenceStoreOptions ro;
    ro.allow_roots = opt.allow_roots;  // registrations by URI (checked again when imported)
    references = std::make_unique<ReferenceStore>(*catalog_db, opt.data_dir / "references", ro);
    // s3:// sources arrive as objects of the object store (immutable, content-addressed): the import
    // may read them there.
    std::vector<std::filesystem::path> readset_roots = opt.allow_roots;
    if (opt.s3_inputs) readset_roots.push_back(std::filesystem::weakly_canonical(objects.root() / "objects"));
    readsets = std::make_unique<ReadSetStore>(*catalog_db, opt.data_dir / "readsets", readset_roots);
    readsets->set_export_cache_limit(opt.max_export_cache_bytes);
    variants = std::make_unique<VariantStore>(*variant_db, variant_query_db.get());
    if (metrics) {
      metrics->describe_counter(
          "omicsd_store_imports_total",
          "Reference and read-set imports by store and outcome (active, failed, error)");
      metrics->describe_counter("omicsd_variant_ingests_total",
                                "Germline VCFs ingested into the variant store by outcome (ok, error)");
    }
  }

  void count(const char* name, const std::string& store, const std::string& outcome) {
    if (!metrics) return;
    Metrics::Labels labels = {{"outcome", outcome}};
    if (!store.empty()) labels.push_back({"store", store});
    metrics->inc(name, 1, labels);
  }

  void schedule_reference(const std::string& id) {
    imports.push([this, id] {
      try {
        auto rec = references->run_import(id);
        count("omicsd_store_imports_total", "reference",
              rec && rec->state == ReferenceState::Active ? "active" : "failed");
      } catch (const std::exception& e) {
        count("omicsd_store_imports_total", "reference", "error");
        spdlog::error("reference {}: import: {} (retried at the next start)", id, e.what());
      }
    });
  }

  void schedule_readset(const std::string& id) {
    imports.push([this, id] {
      try {
        readsets->run_import(id, imports.cancel_flag());
        auto rs = readsets->get(id);
        count("omicsd_store_imports_total", "readset",
              rs && rs->state == ReadSetState::Active ? "active" : "failed");
      } catch (const ImportCanceled&) {
        spdlog::info("read set {}: import interrupted by shutdown (resumes at the next start)", id);
      } catch (const std::exception& e) {
        count("omicsd_store_imports_total", "readset", "error");
        spdlog::error("read set {}: import: {} (retried at the next start)", id, e.what());
      }
    });
  }

  void schedule_ingest(const std::string& run_id) {
    ingests.push([this, run_id] {
      try {
        ingest(run_id);
      } catch (const std::exception& e) {
        count("omicsd_variant_ingests_total", "", "error");
        spdlog::error("run {}: variant store ingest: {} (retried at the next start)", run_id, e.what());
      }
    });
  }

  // A run (not finished) names the store object: its inputs hold the stored file's path (which
  // contains the id) or, as submitted, the id itself.
  bool in_use(const std::string& id) {
    for (RunState s : {RunState::Queued, RunState::Running}) {
      RunFilter f;
      f.state = s;
      f.page_size = 1000;
      for (;;) {
        RunPage p = jobs.list_runs(f);
        for (const Run& r : p.runs) {
          if (r.inputs.dump().find(id) != std::string::npos) return true;
          if (r.provenance.is_object() && r.provenance.contains("submitted_inputs") &&
              r.provenance["submitted_inputs"].dump().find(id) != std::string::npos)
            return true;
        }
        if (p.next_page_token.empty()) break;
        f.page_token = p.next_page_token;
      }
    }
    return false;
  }

  bool ingest(const std::string& run_id) {
    auto run = jobs.get_run(run_id);
    if (!run || run->state != RunState::Complete || run->workflow != "germline") return false;
    if (variants->has_run(run_id)) return true;
    std::string vcf_digest;
    if (run->outputs.is_object())
      for (const auto& [task, outs] : run->outputs.items())
        if (outs.is_object() && outs.contains("vcf") && outs["vcf"].is_object())
          vcf_digest = outs["vcf"].value("digest", "");
    if (vcf_digest.empty()) throw Error("run " + run_id + " is COMPLETE but has no vcf output");
    VariantSampleInfo info;
    info.sample_id = run_sample(*run);
    info.run_id = run_id;
    const json submitted = run->provenance.is_object() && run->provenance.contains("submitted_inputs")
                               ? run->provenance["submitted_inputs"]
                               : json::object();
    if (submitted.contains("reference") && submitted["reference"].is_string() &&
        is_reference_id(submitted["reference"].get<std::string>()))
      info.reference_id = submitted["reference"].get<std::string>();
    json reads = submitted.value("reads", json());
    if (reads.is_array() && reads.size() == 1) reads = reads[0];
    if (reads.is_string() && is_readset_id(reads.get<std::string>())) {
      info.readset_id = reads.get<std::string>();
      if (auto rs = readsets->get(info.readset_id)) {
        info.subject_id = rs->meta.subject_id;
        for (const auto& [k, v] : rs->meta.tags.items()) info.tags[k] = v.get<std::string>();
      }
    }
    VariantIngestOptions vo;
    vo.all_sites = opt.ingest_all_sites;
    if (!objects.has(vcf_digest) && opt.remote_objects) opt.remote_objects->download(vcf_digest, objects);
    const VariantIngestResult r =
        variants->ingest_vcf(objects.path_of(vcf_digest).string(), info, vo, now_ms());
    count("omicsd_variant_ingests_total", "", "ok");
    spdlog::info("run {}: sample {} in the variant store: {} genotypes from {} records{}", run_id,
                 r.sample_id, r.genotypes, r.records,
                 r.replaced ? " (replaced an earlier run of the sample)" : "");
    return true;
  }

  // "ref-..." -> the stored FASTA; "rs-..." -> the stored CRAM (ACTIVE only).
  std::string resolve(const std::string& value, const char* input) {
    try {
      if (is_reference_id(value)) return references->path_of(value).string();
      if (looks_like_readset_id(value)) return readsets->cram_path(value).string();
    } catch (const NotFoundError& e) {
      throw InputError(std::string("input '") + input + "': " + e.what());
    } catch (const ReadSetConflict& e) {
      throw InputError(std::string("input '") + input + "': " + e.what());
    }
    return value;
  }
};

Catalog::Catalog(CatalogOptions options, JobStore& jobs, ObjectStore& objects,
                 std::shared_ptr<Metrics> metrics)
    : impl_(std::make_unique<Impl>(std::move(options), jobs, objects, std::move(metrics))) {}

Catalog::~Catalog() { stop(); }

std::vector<fs::path> Catalog::store_roots() const {
  return {impl_->references->root(), impl_->readsets->root()};
}

void Catalog::add_routes(http::Router& router) {
  Impl* d = impl_.get();
  ReferenceRoutesOptions ro;
  ro.schedule_import = [d](const std::string& id) { d->schedule_reference(id); };
  ro.in_use = [d](const std::string& id) { return d->in_use(id); };
  ro.max_upload_bytes = d->opt.max_reference_bytes;
  ro.min_free_bytes = d->opt.min_free_bytes;
  add_reference_routes(router, *d->references, ro);
  ReadSetRoutesOptions so;
  so.allow_roots = d->opt.allow_roots;
  so.objects = &d->objects;
  if (const auto policy = d->opt.s3_inputs)
    so.fetch_s3 = [d, policy](const std::string& url) {
      policy->check(url);
      const ObjectRef ref = download_s3_object(*policy->client, parse_s3_url(url, "source"), d->objects);
      spdlog::info("read set source {} fetched as {} ({} bytes)", url, ref.digest, ref.size);
      return ref.digest;
    };
  so.schedule_import = [d](const std::string& id) { d->schedule_readset(id); };
  so.in_use = [d](const std::string& id) { return d->in_use(id); };
  so.max_part_bytes = d->opt.max_readset_part_bytes;
  so.min_free_bytes = d->opt.min_free_bytes;
  add_readset_routes(router, *d->readsets, so);
  add_variant_routes(router, *d->variants);
  RefgetRoutesOptions rg;
  if (d->opt.refget_public) rg.scope = http::Scope::none;
  add_refget_routes(router, *d->references, rg);
  HtsgetRoutesOptions ho;
  ho.public_url = d->opt.htsget_public_url;
  ho.https = d->opt.htsget_https;
  add_htsget_routes(router, d->jobs, d->objects, d->readsets.get(), ho);
  BeaconRoutesOptions bo;
  bo.public_access = d->opt.beacon_public;
  bo.min_count = d->opt.beacon_min_count;
  bo.assembly = d->opt.beacon_assembly;
  bo.public_url = d->opt.htsget_public_url;
  add_beacon_routes(router, *d->variants, bo);
}

void Catalog::resolve_run_inputs(WorkflowRequest& w) {
  std::string readset_sample;
  for (auto& item : w.inputs.items()) {
    // Named, not a structured binding: lambdas capture those only from C++20 compilers on (clang
    // 16+), and the fuzzing build uses clang 14.
    const std::string& key = item.key();
    json& value = item.value();
    auto one = [&](json& v) {
      if (!v.is_string()) return;
      const std::string s = v.get<std::string>();
      if (looks_like_readset_id(s)) {
        if (key != "reads") throw InputError("input '" + key + "': a read set can only be the 'reads' input");
        if (auto rs = impl_->readsets->get(s)) readset_sample = rs->meta.sample_id;
      }
      if (is_reference_id(s) && key != "reference")
        throw InputError("input '" + key + "': a reference id can only be the 'reference' input");
      v = impl_->resolve(s, key.c_str());
    };
    if (value.is_array()) {
      for (json& v : value) one(v);
      if (value.size() > 1)
        for (const json& v : value)
          if (v.is_string() && v.get<std::string>().find("/readsets/") != std::string::npos)
            throw InputError("input 'reads': a read set already holds both mates; give it alone");
    } else {
      one(value);
    }
  }
  if (w.sample.empty() && !readset_sample.empty()) w.sample = readset_sample;
}

void Catalog::start() {
  // refget SQ digests for references imported before the reference store's schema version 2.
  impl_->references->backfill_sequence_digests();
  impl_->imports.start(impl_->opt.import_threads);
  impl_->ingests.start(1);
  for (const std::string& id : impl_->references->pending_imports()) impl_->schedule_reference(id);
  for (const std::string& id : impl_->readsets->pending_imports()) impl_->schedule_readset(id);
  // Germline runs that completed while no daemon was ingesting (a crash between COMPLETE and the
  // ingest, or runs from before the variant store existed).
  const std::set<std::string> done = impl_->variants->ingested_runs();
  RunFilter f;
  f.state = RunState::Complete;
  f.workflow = "germline";
  f.page_size = 1000;
  int queued = 0;
  for (;;) {
    RunPage p = impl_->jobs.list_runs(f);
    for (const Run& r : p.runs)
      if (!done.count(r.id)) {
        impl_->schedule_ingest(r.id);
        ++queued;
      }
    if (p.next_page_token.empty()) break;
    f.page_token = p.next_page_token;
  }
  if (queued) spdlog::info("variant store: catching up on {} COMPLETE germline run(s)", queued);
}

void Catalog::stop() {
  impl_->imports.stop();
  impl_->ingests.stop();
}

void Catalog::on_run_complete(const std::string& run_id) { impl_->schedule_ingest(run_id); }

bool Catalog::ingest_run(const std::string& run_id) { return impl_->ingest(run_id); }

}  // namespace omicsd
