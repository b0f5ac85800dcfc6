// `omicsd serve` wiring: opens the stores, registers every resource's routes, starts the HTTP
// server, the lease sweeper, the webhook notifier and the in-process workers, and stops them in order.
#include "service/api/daemon.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "host/common/error.hpp"
#include "service/api/console_routes.hpp"
#include "service/api/object_routes.hpp"
#include "service/api/run_group_routes.hpp"
#include "service/api/run_routes.hpp"
#include "service/api/tes_routes.hpp"
#include "service/api/wes_routes.hpp"
#include "service/http/address_policy.hpp"
#include "service/http/auth.hpp"
#include "service/http/http_router.hpp"
#include "service/http/http_server.hpp"
#include "service/jobs/job_store.hpp"
#include "service/jobs/webhook_notifier.hpp"
#include "service/objects/object_backend.hpp"
#include "service/objects/object_store.hpp"
#include "service/stores/catalog.hpp"
#include "service/util/clock.hpp"
#include "service/util/metrics.hpp"
#include "service/workers/remote_worker.hpp"

namespace omicsd {
namespace {
using json = nlohmann::json;
using http::Request;
using http::Response;
using http::Scope;

// What the daemon owns for as long as it serves: the stores, the metrics registry, and the
// aggregate gauges of /metrics.
struct Daemon {
  std::unique_ptr<JobStore> store;
  std::unique_ptr<ObjectStore> objects;
  std::shared_ptr<Metrics> metrics;
  std::unique_ptr<Catalog> catalog;  // reference, sequence and variant stores
  int64_t metrics_cache_ms = 5000;

  // Runs by state and queue depth (QUEUED tasks of active runs): two aggregate queries, at most once
  // per metrics_cache_ms whatever the scrape rate; a scrape while another refreshes renders the
  // values it has instead of waiting.
  std::mutex collect_mu;
  std::chrono::steady_clock::time_point collected_at{};
  bool collected = false;
  void collect(Metrics& m) {
    std::unique_lock lk(collect_mu, std::try_to_lock);
    if (!lk.owns_lock()) return;
    const auto now = std::chrono::steady_clock::now();
    if (collected && now - collected_at < std::chrono::milliseconds(metrics_cache_ms)) return;
    const JobStore::Counts c = store->counts();
    for (const auto& [state, n] : c.runs) m.set("omicsd_runs", double(n), {{"state", to_string(state)}});
    m.set("omicsd_queue_depth", double(c.queued_tasks));
    collected_at = now;
    collected = true;
  }
};

// The webhook HMAC key: the file's first line (surrounding whitespace trimmed), never empty.
std::string read_secret_file(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line))
    throw InputError("--webhook-secret-file " + path + ": cannot read the secret");
  const auto b = line.find_first_not_of(" \t\r");
  const auto e = line.find_last_not_of(" \t\r");
  if (b == std::string::npos) throw InputError("--webhook-secret-file " + path + ": the first line is empty");
  return line.substr(b, e - b + 1);
}

}  // namespace

int run_daemon(const DaemonOptions& o, const ExecutorFactory& make_executor) {
  // Signals: block before any thread starts; this thread waits for them below.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  // Read before any thread starts, so a bad file fails the start cleanly.
  const std::string webhook_secret =
      o.webhook_secret_file.empty() ? std::string() : read_secret_file(o.webhook_secret_file);
  // Every connection, upload spool, import and database handle is a descriptor: take all the
  // process may have (the accept loop backs off when they run out anyway).
  const std::uint64_t nofile = http::raise_open_file_limit();
  auto api = std::make_shared<Daemon>();
  api->metrics_cache_ms = o.metrics_cache_ms;
  RunRoutesOptions ro;
  ro.allow_roots = o.allow_roots;
  ro.threads = o.threads;
  ro.max_attempts = o.max_attempts;
  ro.lease_seconds = o.lease_seconds;
  {
    std::vector<Cidr> allow;
    for (const auto& c : o.callback_allow) allow.push_back(parse_cidr(c));
    ro.callback_policy = AddressPolicy(std::move(allow));
  }
  std::error_code ec;
  std::filesystem::create_directories(o.data_dir, ec);
  if (ec) throw InputError(o.data_dir.string() + ": cannot create the data directory: " + ec.message());
  api->objects = std::make_unique<ObjectStore>(o.data_dir);
  if ((!o.objects_url.empty() || !o.allow_s3.empty()) && o.workers > 0)
    throw InputError(
        "--objects s3:// and --allow-s3 are for remote workers (`omicsd worker --transfer s3`): "
        "in-process workers read and write the local data directory only; give --workers 0");
  std::shared_ptr<ObjectBackend> remote_objects;
  if (!o.objects_url.empty()) remote_objects = open_object_backend(o.objects_url, *api->objects);
  ro.remote_objects = remote_objects;
  if (!o.allow_s3.empty()) {
    auto policy = std::make_shared<S3InputPolicy>();
    policy->allow = S3AllowList(o.allow_s3);
    policy->client = std::make_shared<S3Client>(S3Config::from_environment());
    ro.s3_inputs = policy;
  }
  CatalogOptions co;
  co.s3_inputs = ro.s3_inputs;
  const std::string db = o.db.empty() ? "sqlite:" + (o.data_dir / "omicsd.db").string() : o.db;
  JobStoreOptions jo;
  jo.connections = o.db_connections;
  api->store = open_job_store(db, jo);
  api->metrics = std::make_shared<Metrics>();
  co.data_dir = o.data_dir;
  co.db = !o.catalog_db.empty() ? o.catalog_db : db.rfind("postgres", 0) == 0 ? db : std::string();
  co.allow_roots = o.allow_roots;
  co.remote_objects = remote_objects;
  co.import_threads = o.import_threads;
  co.ingest_all_sites = o.ingest_all_sites;
  co.max_reference_bytes = o.max_reference_bytes;
  co.max_readset_part_bytes = o.max_readset_part_bytes;
  co.min_free_bytes = o.min_free_bytes;
  co.max_export_cache_bytes = o.max_export_cache_bytes;
  co.refget_public = o.refget_public;
  co.htsget_public_url = o.htsget_public_url;
  co.htsget_https = !o.tls_cert_file.empty();
  co.beacon_public = o.beacon_public;
  co.beacon_min_count = o.beacon_min_count;
  co.beacon_assembly = o.beacon_assembly;
  api->catalog = std::make_unique<Catalog>(co, *api->store, *api->objects, api->metrics);
  // Runs may read the stored references and read sets, wherever the configured roots are.
  for (const auto& root : api->catalog->store_roots()) ro.allow_roots.push_back(root);
  auto& m = *api->metrics;
  m.describe_gauge("omicsd_queue_depth", "Tasks waiting in the QUEUED state");
  m.describe_gauge("omicsd_runs", "Runs by state");
  m.describe_counter("omicsd_lease_expiries_total", "Task leases that expired and were re-queued or failed");
  m.describe_counter("omicsd_cache_hits_total", "Tasks completed from the call cache");
  m.describe_counter("omicsd_tasks_completed_total",
                     "Tasks completed, by kind (in-process and remote workers)");
  m.describe_counter("omicsd_runs_created_total", "Runs created");
  m.describe_histogram("omicsd_task_duration_seconds", "Wall time of finished tasks",
                       {0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600});
  m.describe_histogram("omicsd_run_turnaround_seconds", "Submission to completion of completed runs",
                       {1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800});
  m.describe_gauge("omicsd_worker_gpu_utilization_ratio", "GPU busy fraction reported by workers (NVML)");
  m.describe_gauge("omicsd_worker_gpu_memory_used_bytes", "GPU memory in use reported by workers");
  m.describe_gauge("omicsd_worker_gpu_memory_total_bytes", "GPU memory reported by workers");
  m.describe_gauge("omicsd_worker_last_heartbeat_seconds", "Unix time of each worker's last heartbeat");
  m.describe_counter("omicsd_runs_overdue_total",
                     "Runs failed for running past their group's max_run_seconds");
  m.inc("omicsd_lease_expiries_total", 0);
  m.describe_counter("omicsd_runs_at_risk_total",
                     "Runs found at risk of missing their deadline (once per run), by group");
  m.inc("omicsd_runs_overdue_total", 0);
  m.inc("omicsd_cache_hits_total", 0);
  std::weak_ptr<Daemon> weak = api;
  m.add_collector([weak](Metrics& mm) {
    if (auto a = weak.lock()) {
      try {
        a->collect(mm);
      } catch (const std::exception& e) {
        spdlog::warn("metrics: {}", e.what());
      }
    }
  });

  std::atomic<bool> ready{false};
  http::Router router;
  if (!o.token_file.empty())
    router.set_auth(std::make_shared<http::TokenStore>(http::TokenStore::load_file(o.token_file)));
  if (o.metrics_auth && o.token_file.empty())
    throw InputError("--metrics-auth needs --token-file (tokens with the metrics or admin scope)");
  http::add_builtin_routes(
      router, api->metrics, [&ready] { return ready.load(); }, o.metrics_auth ? Scope::metrics : Scope::none);
  add_run_routes(router, *api->store, *api->objects, *api->catalog, ro, api->metrics);
  add_run_group_routes(router, *api->store);
  // GA4GH WES on the same runs (wes_routes.hpp).
  WesRoutesOptions wo;
  wo.runs = ro;
  wo.tls = !o.tls_cert_file.empty();
  add_wes_routes(router, *api->store, *api->objects, *api->catalog, wo, api->metrics);
  TesRoutesOptions to;
  to.allow_roots = o.allow_roots;
  to.max_attempts = o.max_attempts;
  add_tes_routes(router, *api->store, *api->objects, to, api->metrics);
  router.get("/v1/openapi.json",
             [](Request&) { return Response::text(kOpenApiJson, 200, "application/json"); });
  // Objects and task inputs over HTTP, for workers without shared storage (object_routes.hpp).
  ObjectRoutesOptions oo;
  oo.allow_roots = ro.allow_roots;
  oo.max_object_bytes = o.max_object_bytes;
  oo.min_free_bytes = o.min_free_bytes;
  add_object_routes(router, *api->objects, *api->store, oo, api->metrics);
  api->catalog->add_routes(router);
  // The web console: static files embedded at build time, over the JSON API above (console_routes.hpp).
  add_console_routes(router);

  http::HttpServerOptions so;
  so.address = o.host;
  so.port = o.port;
  so.threads = o.http_threads;
  so.max_connections = o.max_connections;
  so.handler_threads = o.handler_threads;
  so.tls_cert_file = o.tls_cert_file;
  so.tls_key_file = o.tls_key_file;
  so.metrics = api->metrics;
  http::HttpServer server(so, std::move(router));
  server.start();
  spdlog::info("open file limit {}, at most {} HTTP connections", nofile, server.max_connections());

  // Lease sweeper; it also fails runs past their group's max_run_seconds and flags runs whose measured
  // remaining work will take them past their deadline (run.at_risk).
  std::mutex sweep_mu;
  std::condition_variable sweep_cv;
  bool sweep_stop = false;
  std::thread sweeper([&] {
    std::unique_lock lk(sweep_mu);
    while (!sweep_cv.wait_for(lk, std::chrono::seconds(1), [&] { return sweep_stop; })) {
      try {
        const int n = api->store->expire_leases(now_ms());
        if (n > 0) {
          api->metrics->inc("omicsd_lease_expiries_total", n);
          spdlog::warn("{} task lease(s) expired", n);
        }
      } catch (const std::exception& e) {
        spdlog::error("lease sweeper: {}", e.what());
      }
      try {
        for (const std::string& run_id : api->store->fail_overdue_runs(now_ms())) {
          api->metrics->inc("omicsd_runs_overdue_total", 1);
          spdlog::warn("run {} failed: past its group's maximum run duration", run_id);
        }
      } catch (const std::exception& e) {
        spdlog::error("run duration sweeper: {}", e.what());
      }
      try {
        for (const AtRiskRun& a : api->store->flag_at_risk_runs(now_ms())) {
          api->metrics->inc("omicsd_runs_at_risk_total", 1, {{"group", a.group}});
          spdlog::warn("run {} (group {}) is at risk of missing its deadline: {}{}", a.run_id, a.group,
                       a.risk.reason, a.webhook ? "; run.at_risk event written" : "");
        }
      } catch (const std::exception& e) {
        spdlog::error("deadline sweeper: {}", e.what());
      }
    }
  });

  // Webhooks: events are written by the store; this thread delivers them (any daemon sharing the
  // database may deliver any event: claims keep two from sending one at the same time).
  WebhookOptions wh;
  wh.secret = webhook_secret;
  wh.max_attempts = o.webhook_max_attempts;
  wh.ca_file = o.webhook_ca_file;
  wh.policy = ro.callback_policy;
  wh.backoff_initial = std::chrono::milliseconds(std::max<int64_t>(o.webhook_backoff_ms, 1));
  wh.backoff_max = std::max(wh.backoff_max, wh.backoff_initial);
  if (wh.secret.empty()) spdlog::warn("webhooks are sent unsigned (no --webhook-secret-file)");
  api->metrics->describe_counter("omicsd_webhook_deliveries_total",
                                 "Webhook delivery attempts by outcome (delivered, retry, failed)");
  WebhookNotifier notifier(
      *api->store, wh,
      [weak](const std::string& run_id) {
        auto a = weak.lock();
        return a ? run_summary_json(*a->store, run_id) : json::object();
      },
      api->metrics);
  notifier.start();

  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::vector<std::unique_ptr<InprocWorker>> workers;
  for (int i = 0; i < o.workers; ++i) {
    InprocWorkerOptions wo;
    wo.worker_id = std::string(host) + "-" + std::to_string(::getpid()) + "-inproc-" + std::to_string(i);
    wo.lease_seconds = o.lease_seconds;
    add_tes_capabilities(wo.capabilities, o.task_runtime, o.data_dir);
    wo.on_run_complete = [weak](const std::string& run_id) {
      if (auto a = weak.lock()) a->catalog->on_run_complete(run_id);
    };
    workers.push_back(std::make_unique<InprocWorker>(
        *api->store, make_executor(*api->objects, ro.allow_roots, wo.worker_id), wo, api->metrics));
    workers.back()->start();
  }
  api->catalog->start();  // imports left IMPORTING, germline runs not yet in the variant store
  ready = true;
  spdlog::info("omicsd serve: listening on {}:{} (data {}, db {}, {} in-process worker(s), auth {}{})",
               o.host, server.port(), o.data_dir.string(), api->store->describe(), o.workers,
               o.token_file.empty() ? "off" : "on",
               remote_objects ? ", objects " + remote_objects->url() : "");

  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("omicsd serve: signal {}: shutting down", sig);
  ready = false;
  server.stop();
  for (auto& w : workers) w->request_stop();
  for (auto& w : workers) w->join();  // in-flight tasks finish and are recorded
  notifier.stop();                    // undelivered events stay PENDING in the store for the next start
  api->catalog->stop();               // interrupted imports stay IMPORTING and restart next time
  {
    std::lock_guard lk(sweep_mu);
    sweep_stop = true;
  }
  sweep_cv.notify_all();
  sweeper.join();
  workers.clear();
  spdlog::info("omicsd serve: stopped");
  return 0;
}

}  // namespace omicsd
