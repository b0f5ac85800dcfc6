// `omicsd serve`: the daemon (HTTP API of docs/api.md, durable job store, in-process workers).
// This file parses the options and wires the TaskRunner (runner_executor.hpp) into the in-process workers.
#include <boost/asio/ip/address.hpp>
#include <filesystem>
#include <memory>

#include "host/common/error.hpp"
#include "service/api/daemon.hpp"
#include "service/cli/cli.hpp"
#include "service/http/address_policy.hpp"
#include "service/objects/object_store.hpp"
#include "service/workers/inproc_worker.hpp"
#include "service/workers/runner_executor.hpp"

namespace omicsd {
namespace {
namespace fs = std::filesystem;

// 127.0.0.0/8, ::1 (also as ::ffff:127.x) and "localhost": only this host can connect.
bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(host, ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).is_loopback();
  return a.is_loopback();
}

}  // namespace

CliAction add_serve_command(CLI::App& app, const std::string& /*command_line*/) {
  auto* cmd =
      app.add_subcommand("serve", "Run the daemon: HTTP API, durable job queue and in-process workers");
  struct Opts {
    std::string listen = "127.0.0.1:8080";
    std::string data_dir, db, token_file, webhook_secret_file, webhook_ca_file, objects;
    int webhook_max_attempts = 10;
    int64_t webhook_backoff_ms = 1000;
    std::vector<std::string> roots, callback_allow, allow_s3;
    int workers = 1, max_attempts = 3, threads = 0, http_threads = 4, max_connections = 4096,
        handler_threads = 8, db_connections = 8;
    bool metrics_auth = false, insecure_no_auth = false, refget_public = false;
    std::string htsget_public_url;
    bool beacon_public = false;
    int64_t beacon_min_count = 5;
    std::string beacon_assembly;
    int64_t metrics_cache_ms = 5000;
    int64_t lease_seconds = 60;
    uint64_t max_object_bytes = uint64_t(64) << 30;
    uint64_t max_reference_bytes = uint64_t(64) << 30, max_readset_part_bytes = uint64_t(256) << 30;
    uint64_t min_free_bytes = uint64_t(1) << 30, max_export_cache_bytes = uint64_t(64) << 30;
    std::string tls_cert, tls_key;
    std::string catalog_db;
    int import_threads = 1;
    bool ingest_all_sites = false;
    std::string task_runtime;
    bool allow_host_runtime = false;
    std::vector<std::string> tes_http_allow;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--listen", o->listen, "HOST:PORT to listen on (default 127.0.0.1:8080)");
  cmd->add_option("--data-dir", o->data_dir, "Data directory: objects, scratch and the default database")
      ->required();
  cmd->add_option("--db", o->db, "Job store URL (default sqlite:<data-dir>/omicsd.db)");
  cmd->add_option("--db-connections", o->db_connections,
                  "PostgreSQL job store: connections, opened as concurrent requests need them")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--workers", o->workers, "In-process workers (0 = external workers only)")
      ->check(CLI::Range(0, 256));
  cmd->add_option("--allow-root", o->roots, "Directory input files may come from (repeatable)");
  cmd->add_option("--objects", o->objects,
                  "The fleet's object store for remote workers: s3://bucket/prefix (endpoint, region and "
                  "credentials from the AWS environment and files). Default: the data directory only");
  cmd->add_option("--allow-s3", o->allow_s3,
                  "s3://bucket[/prefix] run inputs may come from (repeatable; default: s3:// refused)");
  cmd->add_option("--task-runtime", o->task_runtime,
                  "In-process workers also run GA4GH TES tasks (/ga4gh/tes/v1), their executors in "
                  "'docker' or 'podman' containers, or 'host' (needs --allow-host-runtime). Default: none")
      ->check(CLI::IsMember({"host", "docker", "podman", "none"}));
  cmd->add_flag("--allow-host-runtime", o->allow_host_runtime,
                "Allow --task-runtime host: TES clients' commands then run unconfined on this host "
                "(trusted single-tenant setups and tests only)");
  cmd->add_option("--token-file", o->token_file, "Bearer tokens with scopes (no file: auth off)");
  cmd->add_option("--lease-seconds", o->lease_seconds, "Task lease length")->check(CLI::Range(1, 86400));
  cmd->add_option("--max-attempts", o->max_attempts, "Attempts per task")->check(CLI::Range(1, 100));
  cmd->add_option("--threads", o->threads, "Engine threads per task (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--http-threads", o->http_threads, "HTTP I/O threads")->check(CLI::Range(1, 256));
  cmd->add_option("--handler-threads", o->handler_threads,
                  "Threads that run request handlers, off the HTTP I/O threads (default 8)")
      ->check(CLI::Range(1, 256));
  cmd->add_flag("--insecure-no-auth", o->insecure_no_auth,
                "Serve without --token-file on a non-loopback --listen address (refused otherwise)");
  cmd->add_flag("--metrics-auth", o->metrics_auth,
                "/metrics requires a token with the metrics (or admin) scope (needs --token-file)");
  cmd->add_option("--metrics-cache-ms", o->metrics_cache_ms,
                  "Recompute the run and queue gauges of /metrics at most this often (default 5000)")
      ->check(CLI::Range(int64_t(0), int64_t(3'600'000)));
  cmd->add_option("--max-connections", o->max_connections,
                  "HTTP connections served at once; more wait in the listen backlog (default 4096, "
                  "capped by the open file limit)")
      ->check(CLI::Range(1, 1'000'000));
  cmd->add_option("--max-object-size", o->max_object_bytes,
                  "Largest object a worker may upload with PUT /v1/objects, in bytes (default 64 GiB)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-reference-size", o->max_reference_bytes,
                  "Largest FASTA upload to POST /v1/references, in bytes (default 64 GiB)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-readset-part-size", o->max_readset_part_bytes,
                  "Largest read-set part upload, in bytes (default 256 GiB)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--min-free-space", o->min_free_bytes,
                  "Free bytes every upload must leave on the data directory's disk, else 507 (default 1 GiB; "
                  "0: no check)");
  cmd->add_option("--max-export-cache", o->max_export_cache_bytes,
                  "Bytes of read-set exports (FASTQ/BAM conversions) kept for reuse; the least recently "
                  "served go first (default 64 GiB; 0: unbounded)");
  cmd->add_flag("--refget-public", o->refget_public,
                "Serve the refget v2 routes (/ga4gh/refget/v2: reference sequences only) without a token, "
                "for clients that cannot send one");
  cmd->add_flag("--beacon-public", o->beacon_public,
                "Serve the Beacon v2 routes (/beacon/v2) without a token (default: a client token, as for "
                "/v1/variants)");
  cmd->add_option("--beacon-min-count", o->beacon_min_count,
                  "Beacon: a query matching a variant carried by fewer samples than this is answered with "
                  "exists only, never a count or records (default 5; 0 or 1: no threshold)")
      ->check(CLI::Range(0, 1 << 30));
  cmd->add_option(
      "--beacon-assembly", o->beacon_assembly,
      "Beacon: the assembly of the variant store (e.g. GRCh38); queries naming another assemblyId "
      "match nothing (default: not declared, assemblyId is not checked)");
  cmd->add_option("--htsget-public-url", o->htsget_public_url,
                  "The URL clients reach this daemon at (https://host[:port]), used in htsget tickets; "
                  "default: the request's Host header, https with --tls-cert");
  auto* tls_cert =
      cmd->add_option("--tls-cert", o->tls_cert, "PEM certificate chain: serve HTTPS (needs --tls-key)")
          ->check(CLI::ExistingFile);
  auto* tls_key =
      cmd->add_option("--tls-key", o->tls_key, "PEM private key of --tls-cert")->check(CLI::ExistingFile);
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  cmd->add_option("--webhook-secret-file", o->webhook_secret_file,
                  "HMAC-SHA256 key for signing webhook events (first line of the file)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--webhook-max-attempts", o->webhook_max_attempts, "Delivery attempts per webhook event")
      ->check(CLI::Range(1, 100));
  cmd->add_option("--webhook-backoff-ms", o->webhook_backoff_ms,
                  "First webhook retry delay, doubled per failed attempt (capped at 5 minutes)")
      ->check(CLI::Range(int64_t(1), int64_t(3'600'000)));
  cmd->add_option("--webhook-ca-file", o->webhook_ca_file,
                  "CA bundle for https:// callback URLs (default: system CAs)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tes-http-allow", o->tes_http_allow,
                  "Network (CIDR) the in-process workers may fetch TES http(s) inputs from besides public "
                  "addresses (repeatable; loopback, private, link-local and metadata addresses are refused "
                  "otherwise)")
      ->envname("OMICSD_TES_HTTP_ALLOW");
  cmd->add_option("--callback-allow", o->callback_allow,
                  "CIDR network that run callback_urls may reach although it is loopback, private or "
                  "link-local (refused by default), e.g. 10.1.0.0/16 (repeatable)");
  cmd->add_option("--catalog-db", o->catalog_db,
                  "Reference, read-set and variant store URL (default: the --db PostgreSQL database, "
                  "else <data-dir>/catalog.db and variants.db)");
  cmd->add_option("--import-threads", o->import_threads, "Concurrent reference / read-set imports")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--ingest-all-sites", o->ingest_all_sites,
                "Variant store: keep genotypes of non-PASS records too (default: PASS only)");
  return {cmd, [o] {
            DaemonOptions d;
            const auto colon = o->listen.rfind(':');
            if (colon == std::string::npos)
              throw InputError("--listen must be HOST:PORT, got '" + o->listen + "'");
            d.host = o->listen.substr(0, colon);
            if (d.host.size() > 2 && d.host.front() == '[' && d.host.back() == ']')
              d.host = d.host.substr(1, d.host.size() - 2);
            try {
              const int port = std::stoi(o->listen.substr(colon + 1));
              if (port < 0 || port > 65535) throw std::out_of_range("port");
              d.port = uint16_t(port);
            } catch (const std::exception&) {
              throw InputError("--listen: bad port in '" + o->listen + "'");
            }
            if (o->token_file.empty() && !o->insecure_no_auth && !is_loopback_host(d.host))
              throw InputError("--listen " + o->listen +
                               " is reachable from other hosts but auth is off: give --token-file "
                               "(or --insecure-no-auth to serve everyone anyway)");
            d.data_dir = fs::absolute(o->data_dir);
            d.db = o->db;
            d.db_connections = o->db_connections;
            d.workers = o->workers;
            d.objects_url = o->objects;
            d.allow_s3 = o->allow_s3;
            for (const auto& r : o->roots) {
              std::error_code ec;
              if (!fs::is_directory(r, ec)) throw InputError("--allow-root " + r + ": not a directory");
              d.allow_roots.push_back(fs::canonical(r));
            }
            d.token_file = o->token_file;
            d.lease_seconds = o->lease_seconds;
            d.max_attempts = o->max_attempts;
            d.threads = o->threads;
            d.http_threads = o->http_threads;
            d.max_connections = std::size_t(o->max_connections);
            d.handler_threads = o->handler_threads;
            d.metrics_auth = o->metrics_auth;
            d.metrics_cache_ms = o->metrics_cache_ms;
            d.max_object_bytes = o->max_object_bytes;
            d.max_reference_bytes = o->max_reference_bytes;
            d.max_readset_part_bytes = o->max_readset_part_bytes;
            d.min_free_bytes = o->min_free_bytes;
            d.max_export_cache_bytes = o->max_export_cache_bytes;
            d.refget_public = o->refget_public;
            d.htsget_public_url = o->htsget_public_url;
            d.beacon_public = o->beacon_public;
            d.beacon_min_count = o->beacon_min_count;
            d.beacon_assembly = o->beacon_assembly;
            d.tls_cert_file = o->tls_cert;
            d.tls_key_file = o->tls_key;
            d.webhook_secret_file = o->webhook_secret_file;
            d.webhook_max_attempts = o->webhook_max_attempts;
            d.webhook_backoff_ms = o->webhook_backoff_ms;
            d.webhook_ca_file = o->webhook_ca_file;
            for (const auto& c : o->callback_allow) {
              parse_cidr(c);  // InputError: a bad --callback-allow fails the start
              d.callback_allow.push_back(c);
            }
            d.catalog_db = o->catalog_db;
            d.import_threads = o->import_threads;
            d.ingest_all_sites = o->ingest_all_sites;
            d.task_runtime = parse_tes_runtime(o->task_runtime, o->allow_host_runtime);
            const TesRuntime runtime = d.task_runtime;
            std::vector<Cidr> tes_allow;
            for (const auto& c : o->tes_http_allow) tes_allow.push_back(parse_cidr(c));
            return run_daemon(d, [runtime, tes_allow](ObjectStore& store, const std::vector<fs::path>& roots,
                                                      const std::string& id) {
              return make_runner_executor(store, TaskRunnerOptions{roots, id, false, {}}, runtime, tes_allow);
            });
          }};
}

}  // namespace omicsd
