// `omicsd worker`: the Batch worker. Options also come from the environment (OMICSD_SERVER,
// OMICSD_TOKEN, OMICSD_DATA_DIR, OMICSD_TRANSFER, OMICSD_WORKER_ID, OMICSD_THREADS,
// OMICSD_LEASE_SECONDS, OMICSD_ALLOW_ROOTS colon-separated, OMICSD_CA_FILE, OMICSD_ONCE,
// OMICSD_S3_PART_SIZE, OMICSD_UNREACHABLE_TIMEOUT); a flag wins over its variable. GPU selection
// is the container's: CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES. Exit codes: 0 drained / done,
// 2 bad configuration (do not retry), 3 server unreachable after retries (retry the job).
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>

#include "host/common/error.hpp"
#include "service/cli/cli.hpp"
#include "service/http/address_policy.hpp"
#include "service/workers/remote_worker.hpp"

namespace omicsd {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_stop_signal(int) { g_stop.store(true); }

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

}  // namespace

CliAction add_worker_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("worker", "Batch worker: lease tasks from the daemon, run them, report results");
  struct Opts {
    RemoteWorkerOptions w;
    std::vector<std::string> roots;
    std::string transfer = "shared";
    std::string task_runtime;
    bool allow_host_runtime = false;
    std::vector<std::string> tes_http_allow;
  };
  auto o = std::make_shared<Opts>();
  RemoteWorkerOptions& w = o->w;
  w.server = env_or("OMICSD_SERVER", "http://127.0.0.1:8080");
  cmd->add_option("--server", w.server, "Daemon URL (default: $OMICSD_SERVER or http://127.0.0.1:8080)");
  cmd->add_option("--data-dir", w.data_dir,
                  "Object directory shared with the daemon (--transfer shared), or this worker's own "
                  "store and input cache (--transfer http, s3)")
      ->envname("OMICSD_DATA_DIR");
  cmd->add_option("--transfer", o->transfer,
                  "How task data moves: 'shared' (--data-dir is the daemon's, e.g. on EFS), 'http' "
                  "(no shared storage: inputs are downloaded from and outputs uploaded to the daemon) or "
                  "'s3' (objects to and from the S3 object store of --objects, s3:// inputs from their "
                  "bucket; the daemon only hands out work)")
      ->envname("OMICSD_TRANSFER")
      ->check(CLI::IsMember({"shared", "http", "s3"}));
  cmd->add_option("--objects", w.objects_url,
                  "The fleet's object store with --transfer s3: s3://bucket/prefix, as the daemon's "
                  "--objects (endpoint, region and credentials from the AWS environment and files)")
      ->envname("OMICSD_OBJECTS");
  cmd->add_option("--s3-part-size", w.s3_part_size,
                  "With --transfer s3: objects larger than this many bytes are uploaded as multipart "
                  "uploads of parts this size (5 MiB .. 5 GiB; default 64 MiB)")
      ->envname("OMICSD_S3_PART_SIZE");
  cmd->add_option("--ca-file", w.ca_file,
                  "PEM CA certificate(s) for an https:// server (default: system CAs)")
      ->envname("OMICSD_CA_FILE")
      ->check(CLI::ExistingFile);
  cmd->add_option("--worker-id", w.worker_id, "Worker id (default: host-pid, or the AWS Batch job id)")
      ->envname("OMICSD_WORKER_ID");
  cmd->add_option("--lease-seconds", w.lease_seconds, "Lease length asked for; heartbeats every third of it")
      ->envname("OMICSD_LEASE_SECONDS");
  cmd->add_option("--threads", w.threads,
                  "Engine threads per task (default: the task's parameter, or all cores)")
      ->envname("OMICSD_THREADS")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--once", w.once, "Exit after one task, or at once when the queue is empty")
      ->envname("OMICSD_ONCE");
  cmd->add_option("--allow-root", o->roots,
                  "Directory file inputs may come from (repeatable; default: trust the daemon's URI checks)")
      ->envname("OMICSD_ALLOW_ROOTS")
      ->delimiter(':');
  cmd->add_option("--task-runtime", o->task_runtime,
                  "Run GA4GH TES tasks (/ga4gh/tes/v1) here, their executors in 'docker' or 'podman' "
                  "containers, or 'host' (directly on this host: needs --allow-host-runtime). Default: "
                  "no TES tasks")
      ->envname("OMICSD_TASK_RUNTIME")
      ->check(CLI::IsMember({"host", "docker", "podman", "none"}));
  cmd->add_flag("--allow-host-runtime", o->allow_host_runtime,
                "Allow --task-runtime host: TES clients' commands then run unconfined on this host "
                "(trusted single-tenant setups and tests only)")
      ->envname("OMICSD_ALLOW_HOST_RUNTIME");
  cmd->add_option("--tes-http-allow", o->tes_http_allow,
                  "Network (CIDR) TES http(s) inputs may be fetched from besides public addresses "
                  "(repeatable; loopback, private, link-local and metadata addresses are refused otherwise)")
      ->envname("OMICSD_TES_HTTP_ALLOW");
  cmd->add_option("--unreachable-timeout", w.unreachable_seconds,
                  "Exit 3 after this many seconds without reaching the server")
      ->envname("OMICSD_UNREACHABLE_TIMEOUT")
      ->check(CLI::PositiveNumber);
  return {cmd, [o] {
            RemoteWorkerOptions w = o->w;
            w.transfer = parse_worker_transfer(o->transfer);
            w.task_runtime = parse_tes_runtime(o->task_runtime, o->allow_host_runtime);
            for (const auto& c : o->tes_http_allow) w.tes_http_allow.push_back(parse_cidr(c));
            w.token = env_or("OMICSD_TOKEN", "");
            for (const auto& r : o->roots)
              if (!r.empty()) w.allowed_roots.emplace_back(r);
            if (w.data_dir.empty()) throw InputError("worker: --data-dir (or OMICSD_DATA_DIR) is required");
            w.stop = &g_stop;
            struct sigaction sa {};
            sa.sa_handler = on_stop_signal;
            sigemptyset(&sa.sa_mask);
            sigaction(SIGTERM, &sa, nullptr);
            sigaction(SIGINT, &sa, nullptr);
            RemoteWorker worker(w);  // throws InputError (exit 2) for a bad data dir or lease length
            const int code = worker.run();
            if (worker.abandoned_engine()) {
              // An engine thread is still running a handed-back task: end without running destructors.
              spdlog::default_logger()->flush();
              std::fflush(stdout);
              std::fflush(stderr);
              std::_Exit(code);
            }
            return code;
          }};
}

}  // namespace omicsd
