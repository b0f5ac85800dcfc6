// HttpClient, the `omicsd` client commands and the remote (Batch) worker against in-test stub
// servers that mimic docs/api.md. Loopback only; every wait is bounded.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "service/http/http_client.hpp"
#include "service/http/http_router.hpp"
#include "service/http/http_server.hpp"
#include "service/objects/object_store.hpp"
#include "service/workers/remote_worker.hpp"
#include "tests/support/test_support.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using omicsd::HttpClient;
using omicsd::HttpClientError;
using omicsd::HttpClientOptions;
using omicsd::http::HttpServer;
using omicsd::http::HttpServerOptions;
using omicsd::http::Request;
using omicsd::http::Response;
using omicsd::http::Router;
using namespace omicsd::test;

namespace {

std::unique_ptr<HttpServer> start_server(Router router) {
  HttpServerOptions opt;
  opt.address = "127.0.0.1";
  opt.port = 0;
  opt.threads = 2;
  auto server = std::make_unique<HttpServer>(opt, std::move(router));
  server->start();
  return server;
}

HttpClientOptions client_options(const HttpServer& server) {
  HttpClientOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(server.port());
  o.backoff_initial = std::chrono::milliseconds(10);
  o.backoff_max = std::chrono::milliseconds(50);
  o.request_timeout = std::chrono::milliseconds(10'000);
  return o;
}

Response no_content() {
  Response r;
  r.status = 204;
  r.content_type = "";
  return r;
}

// A port nobody listens on: bind one, stop it.
uint16_t closed_port() {
  Router r;
  auto s = start_server(std::move(r));
  const uint16_t p = s->port();
  s->stop();
  return p;
}

}  // namespace

TEST(HttpClient, JsonRoundTripAndBearerToken) {
  Router router;
  router.post("/v1/echo", [](Request& req) {
    json body = omicsd::http::parse_json_body(req);
    return Response::json({{"got", body},
                           {"authorization", req.header("authorization")},
                           {"content_type", req.header("content-type")}},
                          201);
  });
  auto server = start_server(std::move(router));
  auto opt = client_options(*server);
  opt.token = "s3cret-token";
  HttpClient client(opt);
  int status = 0;
  const json sent = {{"workflow", "germline"}, {"n", 42}, {"list", {1, 2, 3}}, {"utf8", "na\xc3\xafve"}};
  const json got = client.post_json("/v1/echo", sent, false, {}, &status);
  EXPECT_EQ(status, 201);
  EXPECT_EQ(got["got"], sent);
  EXPECT_EQ(got["authorization"], "Bearer s3cret-token");
  EXPECT_EQ(got["content_type"], "application/json");
}

TEST(HttpClient, NoTokenNoAuthorizationHeader) {
  Router router;
  router.get("/h", [](Request& req) {
    return Response::json({{"authorization", req.header("authorization")}});
  });
  auto server = start_server(std::move(router));
  HttpClient client(client_options(*server));
  EXPECT_EQ(client.get_json("/h")["authorization"], "");
}

TEST(HttpClient, ServerJsonErrorMessageInException) {
  Router router;
  router.post("/v1/runs", [](Request&) -> Response {
    throw omicsd::http::HttpError(400, "unknown workflow 'frobnicate'");
  });
  auto server = start_server(std::move(router));
  HttpClient client(client_options(*server));
  try {
    client.post_json("/v1/runs", {{"workflow", "frobnicate"}}, false);
    FAIL() << "expected HttpClientError";
  } catch (const HttpClientError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.server_message(), "unknown workflow 'frobnicate'");
    const std::string what = e.what();
    EXPECT_NE(what.find("unknown workflow 'frobnicate'"), std::string::npos) << what;
    EXPECT_NE(what.find("http://127.0.0.1:" + std::to_string(server->port()) + "/v1/runs"), std::string::npos)
        << what;
    EXPECT_NE(what.find("400"), std::string::npos) << what;
  }
  // Unknown route: the router's 404 JSON error comes through too.
  try {
    client.get_json("/v1/nope");
    FAIL() << "expected HttpClientError";
  } catch (const HttpClientError& e) {
    EXPECT_EQ(e.status(), 404);
  }
}

TEST(HttpClient, RetriesIdempotentRequestsOn503) {
  std::atomic<int> calls{0};
  Router router;
  router.get("/flaky", [&calls](Request&) {
    return ++calls < 3 ? Response::error(503, "not ready") : Response::json({{"ok", true}});
  });
  router.post("/flaky-post", [&calls](Request&) { return ++calls, Response::error(503, "busy"); });
  auto server = start_server(std::move(router));
  HttpClient client(client_options(*server));
  EXPECT_EQ(client.get_json("/flaky")["ok"], true);
  EXPECT_EQ(calls.load(), 3);

  // A non-idempotent POST is sent once and the 503 surfaces.
  calls = 0;
  try {
    client.post_json("/flaky-post", json::object(), false);
    FAIL() << "expected HttpClientError";
  } catch (const HttpClientError& e) {
    EXPECT_EQ(e.status(), 503);
    EXPECT_NE(std::string(e.what()).find("busy"), std::string::npos);
  }
  EXPECT_EQ(calls.load(), 1);

  // Idempotent POST: retried up to max_attempts, then the last 503 is reported.
  calls = 0;
  EXPECT_THROW(client.post_json("/flaky-post", json::object(), true), HttpClientError);
  EXPECT_EQ(calls.load(), client.options().max_attempts);
}

TEST(HttpClient, ConnectionRefusedIsRetriedThenReported) {
  HttpClientOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(closed_port());
  o.max_attempts = 3;
  o.backoff_initial = std::chrono::milliseconds(10);
  HttpClient client(o);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    client.get_json("/healthz");
    FAIL() << "expected HttpClientError";
  } catch (const HttpClientError& e) {
    EXPECT_TRUE(e.connection_error());
    EXPECT_NE(std::string(e.what()).find("3 attempts"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(HttpClient, RejectsBadUrls) {
  HttpClientOptions o;
  o.base_url = "ftp://example.org";
  EXPECT_THROW(HttpClient{o}, omicsd::InputError);
  o.base_url = "http://host:port";
  EXPECT_THROW(HttpClient{o}, omicsd::InputError);
  o.base_url = "127.0.0.1:9000/prefix/";
  EXPECT_EQ(HttpClient(o).url("/v1/runs"), "http://127.0.0.1:9000/prefix/v1/runs");
}

TEST(HttpClient, DownloadStreamsFileByteExact) {
  TempDir tmp;
  std::string content(3 * 1024 * 1024 + 12345, '\0');
  std::mt19937 rng(7);
  for (auto& c : content) c = char(rng());
  write_file(tmp.path / "blob.bin", content);
  Router router;
  router.get("/v1/runs/{id}/outputs/{name}",
             [&](Request&) { return Response::from_file(tmp.path / "blob.bin"); });
  router.get("/v1/missing", [](Request&) { return Response::error(404, "no output 'vcf' for run r1"); });
  auto server = start_server(std::move(router));
  HttpClient client(client_options(*server));
  const fs::path dest = tmp.path / "out.bin";
  EXPECT_EQ(client.download("/v1/runs/r1/outputs/bam", dest), content.size());
  EXPECT_EQ(read_file(dest), content);
  EXPECT_FALSE(fs::exists(dest.string() + ".part"));
  try {
    client.download("/v1/missing", tmp.path / "nothing.bin");
    FAIL() << "expected HttpClientError";
  } catch (const HttpClientError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_NE(std::string(e.what()).find("no output 'vcf' for run r1"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(tmp.path / "nothing.bin"));
}

// ---- the `omicsd` binary's client commands against a stub daemon -------------------------------

namespace {

struct StubDaemon {
  std::mutex mu;
  json submitted;
  std::string idempotency_key, authorization;
  std::atomic<int> polls{0};
  fs::path output_file;
  std::unique_ptr<HttpServer> server;

  json run_for(const std::string& id) {
    json run = {{"id", id},
                {"workflow", "call"},
                {"sample", "NA12878"},
                {"failure_reason", nullptr},
                {"tasks", json::array({{{"id", "t1"},
                                        {"name", "call"},
                                        {"kind", "call"},
                                        {"state", "RUNNING"},
                                        {"attempts", 1},
                                        {"max_attempts", 3}}})},
                {"outputs", json::object()}};
    if (id == "run-ok") {
      // COMPLETE only on the third poll: `wait` must poll.
      const bool done = ++polls >= 3;
      run["state"] = done ? "COMPLETE" : "RUNNING";
      run["tasks"][0]["state"] = run["state"];
      if (done) {
        const uint64_t size = fs::file_size(output_file);
        run["outputs"]["vcf"] = {{"digest", omicsd::ObjectStore::digest_file(output_file)}, {"size", size}};
      }
    } else if (id == "run-bad") {
      run["state"] = "FAILED";
      run["failure_reason"] = "call: reference contig chr22 missing";
      run["tasks"][0]["state"] = "FAILED";
      run["tasks"][0]["last_error"] = "reference contig chr22 missing";
    } else if (id == "run-slow") {
      run["state"] = "RUNNING";
    } else {
      throw omicsd::http::HttpError(404, "unknown run " + id);
    }
    return run;
  }

  explicit StubDaemon(fs::path out) : output_file(std::move(out)) {
    Router router;
    router.post("/v1/runs", [this](Request& req) {
      std::lock_guard lock(mu);
      submitted = omicsd::http::parse_json_body(req);
      idempotency_key = req.header("idempotency-key");
      authorization = req.header("authorization");
      json run = {{"id", "run-123"}, {"state", "QUEUED"}, {"workflow", submitted["workflow"]}};
      return Response::json(run, 201);
    });
    router.get("/v1/runs/{id}", [this](Request& req) { return Response::json(run_for(req.param("id"))); });
    router.post("/v1/runs/{id}/cancel", [this](Request& req) {
      json run = run_for(req.param("id"));
      run["state"] = "CANCELED";
      return Response::json(run);
    });
    router.get("/v1/runs/{id}/logs", [](Request&) {
      return Response::json({{"tasks",
                              {{{"name", "call"},
                                {"state", "FAILED"},
                                {"attempts", 3},
                                {"last_error", "disk full"},
                                {"worker_id", "w-1"}}}}});
    });
    router.get("/v1/runs/{id}/outputs/{name}", [this](Request& req) {
      if (req.param("name") != "vcf") throw omicsd::http::HttpError(404, "no such output");
      return Response::from_file(output_file);
    });
    server = start_server(std::move(router));
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()); }
};

std::string omicsd_cmd(const StubDaemon& d, const std::string& args) {
  return "OMICSD_TOKEN=tok-xyz " + omicsd_binary() + " " + args + " --server " + d.url();
}

#define REQUIRE_BINARY() \
  if (!fs::exists(omicsd_binary())) GTEST_SKIP() << "build the omicsd target first: " << omicsd_binary()

}  // namespace

TEST(ClientCli, SubmitPostsTheRunBody) {
  REQUIRE_BINARY();
  TempDir tmp;
  write_file(tmp.path / "out.vcf.gz", "vcf");
  StubDaemon d(tmp.path / "out.vcf.gz");
  std::string out;
  const int rc = run_command(
      omicsd_cmd(d,
                 "submit --workflow germline --reference /data/ref.fa --reads /data/r1.fq.gz --reads "
                 "/data/r2.fq.gz --sample NA12878 --param threads=4 --param gvcf=true --param mode=fast "
                 "--idempotency-key key-1 --no-cache --callback-url http://127.0.0.1:1/hook --json"),
      &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(json::parse(out)["id"], "run-123");
  std::lock_guard lock(d.mu);
  EXPECT_EQ(d.submitted["workflow"], "germline");
  EXPECT_EQ(d.submitted["sample"], "NA12878");
  EXPECT_EQ(d.submitted["inputs"]["reference"], "/data/ref.fa");
  EXPECT_EQ(d.submitted["inputs"]["reads"], json::array({"/data/r1.fq.gz", "/data/r2.fq.gz"}));
  EXPECT_EQ(d.submitted["parameters"]["threads"], 4);
  EXPECT_EQ(d.submitted["parameters"]["gvcf"], true);
  EXPECT_EQ(d.submitted["parameters"]["mode"], "fast");
  EXPECT_EQ(d.submitted["cache"], false);
  EXPECT_EQ(d.submitted["callback_url"], "http://127.0.0.1:1/hook");
  EXPECT_EQ(d.idempotency_key, "key-1");
  EXPECT_EQ(d.authorization, "Bearer tok-xyz");
}

TEST(ClientCli, SubmitCallAndPlainOutput) {
  REQUIRE_BINARY();
  TempDir tmp;
  write_file(tmp.path / "out.vcf.gz", "vcf");
  StubDaemon d(tmp.path / "out.vcf.gz");
  std::string out;
  ASSERT_EQ(run_command(omicsd_cmd(d, "submit --workflow call --reference sha256:" + std::string(64, 'a') +
                                          " --bam file:///data/x.bam"),
                        &out),
            0)
      << out;
  EXPECT_EQ(out, "run-123\n");
  EXPECT_EQ(d.submitted["inputs"],
            json({{"reference", "sha256:" + std::string(64, 'a')}, {"bam", "file:///data/x.bam"}}));
  EXPECT_EQ(d.submitted["cache"], true);
  // Missing --bam for call: a usage error (exit 2), nothing posted.
  EXPECT_EQ(run_command(omicsd_cmd(d, "submit --workflow call --reference /r.fa --reads /x.fq"), &out), 2)
      << out;
}

TEST(ClientCli, WaitExitCodes) {
  REQUIRE_BINARY();
  TempDir tmp;
  write_file(tmp.path / "out.vcf.gz", "vcf-bytes");
  StubDaemon d(tmp.path / "out.vcf.gz");
  std::string out;
  EXPECT_EQ(run_command(omicsd_cmd(d, "wait run-ok --timeout 30"), &out), 0) << out;
  EXPECT_NE(out.find("COMPLETE"), std::string::npos) << out;
  EXPECT_GE(d.polls.load(), 3);

  EXPECT_EQ(run_command(omicsd_cmd(d, "wait run-bad --timeout 30"), &out), 1) << out;
  EXPECT_NE(out.find("reference contig chr22 missing"), std::string::npos) << out;

  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(run_command(omicsd_cmd(d, "wait run-slow --timeout 1"), &out), 124) << out;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));

  EXPECT_EQ(run_command(omicsd_cmd(d, "wait run-missing --timeout 5"), &out), 1) << out;
  EXPECT_NE(out.find("unknown run run-missing"), std::string::npos) << out;
}

TEST(ClientCli, StatusCancelLogsOutputs) {
  REQUIRE_BINARY();
  TempDir tmp;
  write_file(tmp.path / "out.vcf.gz", std::string(100000, 'v'));
  StubDaemon d(tmp.path / "out.vcf.gz");
  std::string out;
  ASSERT_EQ(run_command(omicsd_cmd(d, "status run-bad --json"), &out), 0) << out;
  EXPECT_EQ(json::parse(out)["state"], "FAILED");
  ASSERT_EQ(run_command(omicsd_cmd(d, "status run-bad"), &out), 0) << out;
  EXPECT_NE(out.find("reference contig chr22 missing"), std::string::npos) << out;
  ASSERT_EQ(run_command(omicsd_cmd(d, "cancel run-slow"), &out), 0) << out;
  EXPECT_EQ(out, "run-slow CANCELED\n");
  ASSERT_EQ(run_command(omicsd_cmd(d, "logs run-bad"), &out), 0) << out;
  EXPECT_NE(out.find("disk full"), std::string::npos) << out;

  d.polls = 5;  // run-ok is COMPLETE now
  const fs::path dl = tmp.path / "dl";
  ASSERT_EQ(run_command(omicsd_cmd(d, "outputs run-ok --json --download " + dl.string()), &out), 0) << out;
  const json outputs = json::parse(out);
  ASSERT_TRUE(outputs.contains("vcf")) << out;
  EXPECT_EQ(read_file(dl / "NA12878.vcf.gz"), read_file(tmp.path / "out.vcf.gz"));
  EXPECT_EQ(outputs["vcf"]["path"], (dl / "NA12878.vcf.gz").string());
}

// ---- the remote worker against a stub task queue ---------------------------------------------

namespace {

struct StubQueue {
  std::mutex mu;
  json task;  // handed out once
  bool handed_out = false;
  std::vector<json> completes, fails;
  int heartbeats = 0, leases = 0;
  std::string authorization;
  std::unique_ptr<HttpServer> server;

  explicit StubQueue(json t) : task(std::move(t)) {
    Router router;
    router.post("/v1/tasks/lease", [this](Request& req) {
      std::lock_guard lock(mu);
      ++leases;
      authorization = req.header("authorization");
      const json body = omicsd::http::parse_json_body(req);
      if (!body.contains("worker_id") || !body.contains("capabilities"))
        throw omicsd::http::HttpError(400, "worker_id and capabilities required");
      if (handed_out || task.is_null()) return no_content();
      handed_out = true;
      json t = task;
      t["lease_token"] = "lease-1";
      t["lease_expires_at"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count() +
                              6000;
      return Response::json({{"task", t}, {"run", {{"id", "run-9"}, {"sample", "NA12878"}}}});
    });
    router.post("/v1/tasks/{id}/heartbeat", [this](Request&) {
      std::lock_guard lock(mu);
      ++heartbeats;
      return Response::json(task);
    });
    router.post("/v1/tasks/{id}/complete", [this](Request& req) {
      std::lock_guard lock(mu);
      completes.push_back(omicsd::http::parse_json_body(req));
      completes.back()["task_id_in_path"] = req.param("id");
      return Response::json(task);
    });
    router.post("/v1/tasks/{id}/fail", [this](Request& req) {
      std::lock_guard lock(mu);
      fails.push_back(omicsd::http::parse_json_body(req));
      return Response::json(task);
    });
    server = start_server(std::move(router));
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()); }
};

}  // namespace

TEST(RemoteWorker, RunsACallTaskAndReportsDigests) {
  const fs::path src = shared_data_dir() / "na12878-chr22-tiny";
  if (!fs::exists(src / "NA12878.chr22.tiny.bam")) GTEST_SKIP() << "no shared data at " << src;
  TempDir tmp;
  const fs::path in = tmp.path / "in";
  fs::create_directories(in);
  for (const char* f : {"NA12878.chr22.tiny.bam", "NA12878.chr22.tiny.bam.bai", "q.fa", "q.fa.fai"}) {
    fs::copy_file(src / f, in / f);
    fs::permissions(in / f, fs::perms::owner_write, fs::perm_options::add);
  }
  StubQueue q({{"id", "run-9/call"},
               {"name", "call"},
               {"kind", "call"},
               {"parameters", {{"threads", 1}}},
               {"inputs",
                {{"reference", (in / "q.fa").string()},
                 {"bam", "file://" + (in / "NA12878.chr22.tiny.bam").string()}}}});
  omicsd::RemoteWorkerOptions o;
  o.server = q.url();
  o.token = "worker-token";
  o.data_dir = tmp.path / "data";
  o.worker_id = "test-worker";
  o.lease_seconds = 6;
  o.once = true;
  o.allowed_roots = {in};
  omicsd::RemoteWorker worker(o);
  EXPECT_EQ(worker.run(), omicsd::kWorkerExitOk);
  std::lock_guard lock(q.mu);
  ASSERT_TRUE(q.fails.empty()) << q.fails.front().dump();
  ASSERT_EQ(q.completes.size(), 1u);
  const json& c = q.completes.front();
  EXPECT_EQ(c["lease_token"], "lease-1");
  EXPECT_EQ(c["task_id_in_path"], "run-9/call");  // ids with '/' are percent-encoded in the path
  EXPECT_EQ(q.authorization, "Bearer worker-token");
  ASSERT_TRUE(c["outputs"].contains("vcf")) << c.dump();
  omicsd::ObjectStore store(tmp.path / "data");
  for (const auto& [name, ref] : c["outputs"].items()) {
    const std::string digest = ref["digest"];
    EXPECT_TRUE(store.has(digest)) << name << " " << digest;
    EXPECT_EQ(fs::file_size(store.path_of(digest)), ref["size"].get<uint64_t>()) << name;
  }
  EXPECT_EQ(c["provenance"]["worker_id"], "test-worker");
  EXPECT_EQ(worker.tasks_completed(), 1);
}

TEST(RemoteWorker, BadInputFailsNotRetryable) {
  TempDir tmp;
  StubQueue q(
      {{"id", "task-2"},
       {"kind", "call"},
       {"parameters", json::object()},
       {"inputs",
        {{"reference", (tmp.path / "missing.fa").string()}, {"bam", (tmp.path / "missing.bam").string()}}}});
  omicsd::RemoteWorkerOptions o;
  o.server = q.url();
  o.data_dir = tmp.path / "data";
  o.lease_seconds = 6;
  o.once = true;
  omicsd::RemoteWorker worker(o);
  EXPECT_EQ(worker.run(), omicsd::kWorkerExitOk);
  std::lock_guard lock(q.mu);
  ASSERT_EQ(q.fails.size(), 1u);
  EXPECT_EQ(q.fails[0]["retryable"], false);
  EXPECT_EQ(q.fails[0]["lease_token"], "lease-1");
  EXPECT_FALSE(q.fails[0]["error"].get<std::string>().empty());
  EXPECT_TRUE(q.completes.empty());
}

TEST(RemoteWorker, UnreachableServerExits3) {
  TempDir tmp;
  omicsd::RemoteWorkerOptions o;
  o.server = "http://127.0.0.1:" + std::to_string(closed_port());
  o.data_dir = tmp.path / "data";
  o.unreachable_seconds = 0.5;
  o.idle_backoff_max = std::chrono::milliseconds(100);
  omicsd::RemoteWorker worker(o);
  EXPECT_EQ(worker.run(), omicsd::kWorkerExitUnreachable);
}

TEST(WorkerCli, OnceOnEmptyQueueAndBadToken) {
  REQUIRE_BINARY();
  TempDir tmp;
  StubQueue q(nullptr);
  std::string out;
  EXPECT_EQ(run_command("OMICSD_DATA_DIR=" + (tmp.path / "data").string() + " " + omicsd_binary() +
                            " worker --once --unreachable-timeout 5 --server " + q.url(),
                        &out),
            0)
      << out;
  EXPECT_EQ(q.leases, 1);
  // A server that rejects the worker's token: bad configuration, exit 2.
  Router router;
  router.post("/v1/tasks/lease",
              [](Request&) -> Response { throw omicsd::http::HttpError(401, "bad token"); });
  auto s = start_server(std::move(router));
  EXPECT_EQ(run_command(omicsd_binary() + " worker --once --data-dir " + (tmp.path / "data").string() +
                            " --server http://127.0.0.1:" + std::to_string(s->port()),
                        &out),
            2)
      << out;
  EXPECT_NE(out.find("bad token"), std::string::npos) << out;
  // Missing data dir: exit 2.
  EXPECT_EQ(run_command("env -u OMICSD_DATA_DIR " + omicsd_binary() +
                            " worker --once --unreachable-timeout 5 --server " + q.url(),
                        &out),
            2)
      << out;
}

TEST(WorkerCli, SigtermWhileIdleDrainsAndExits0) {
  REQUIRE_BINARY();
  TempDir tmp;
  StubQueue q(nullptr);  // always 204
  std::string out;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = run_command("(OMICSD_WORKER_ID=batch-w " + omicsd_binary() + " worker --data-dir " +
                                 (tmp.path / "data").string() + " --server " + q.url() +
                                 " 2>&1 & pid=$!; sleep 1; kill -TERM $pid; wait $pid)",
                             &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_NE(out.find("batch-w"), std::string::npos) << out;
  std::lock_guard lock(q.mu);
  EXPECT_GE(q.leases, 1);
}

// ---- HTTPS: HttpClient against the TLS server, and `omicsd serve --tls-cert` end to end ---------

namespace {

struct TlsFiles {
  fs::path cert, key;
};

// A throwaway self-signed certificate and key from the openssl tool (a failure fails the test).
TlsFiles make_cert(const fs::path& dir, const std::string& stem, const std::string& cn,
                   const std::string& san) {
  TlsFiles f{dir / (stem + ".crt"), dir / (stem + ".key")};
  std::string log;
  EXPECT_EQ(run_command("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=" + cn +
                            " -addext subjectAltName=" + san + " -keyout '" + f.key.string() + "' -out '" +
                            f.cert.string() + "'",
                        &log),
            0)
      << log;
  return f;
}

TlsFiles localhost_cert(const fs::path& dir) {
  return make_cert(dir, "localhost", "localhost", "DNS:localhost,IP:127.0.0.1");
}

std::unique_ptr<HttpServer> start_tls_server(Router router, const TlsFiles& tls) {
  HttpServerOptions opt;
  opt.address = "127.0.0.1";
  opt.port = 0;
  opt.threads = 2;
  opt.tls_cert_file = tls.cert.string();
  opt.tls_key_file = tls.key.string();
  auto server = std::make_unique<HttpServer>(opt, std::move(router));
  server->start();
  return server;
}

HttpClientOptions https_options(const HttpServer& server, const fs::path& ca_file,
                                const std::string& host = "127.0.0.1") {
  HttpClientOptions o;
  o.base_url = "https://" + host + ":" + std::to_string(server.port());
  o.ca_file = ca_file.string();
  o.backoff_initial = std::chrono::milliseconds(10);
  o.backoff_max = std::chrono::milliseconds(50);
  o.request_timeout = std::chrono::milliseconds(10'000);
  return o;
}

Router echo_and_file_router(const fs::path& file) {
  Router router;
  router.post("/v1/echo", [](Request& req) {
    return Response::json(
        {{"got", omicsd::http::parse_json_body(req)}, {"authorization", req.header("authorization")}}, 201);
  });
  router.get("/v1/runs/{id}/outputs/{name}", [file](Request&) { return Response::from_file(file); });
  return router;
}

// The message of the HttpClientError `f` throws ("" and a test failure when it throws nothing).
template <class F>
std::string client_error(F&& f) {
  try {
    f();
  } catch (const HttpClientError& e) {
    EXPECT_TRUE(e.connection_error()) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected HttpClientError";
  return "";
}

}  // namespace

TEST(HttpsClient, JsonRoundTripAndDownloadByteExactWithCaFile) {
  TempDir tmp;
  const TlsFiles tls = localhost_cert(tmp.path);
  std::string content(2 * 1024 * 1024 + 777, '\0');
  std::mt19937 rng(11);
  for (auto& c : content) c = char(rng());
  write_file(tmp.path / "blob.bin", content);
  auto server = start_tls_server(echo_and_file_router(tmp.path / "blob.bin"), tls);
  for (const std::string host : {"127.0.0.1", "localhost"}) {  // IP SAN; DNS SAN (and SNI)
    SCOPED_TRACE(host);
    auto opt = https_options(*server, tls.cert, host);
    opt.token = "tls-token";
    HttpClient client(opt);
    EXPECT_EQ(client.url("/v1/echo"), "https://" + host + ":" + std::to_string(server->port()) + "/v1/echo");
    int status = 0;
    const json sent = {{"workflow", "germline"}, {"list", {1, 2, 3}}};
    const json got = client.post_json("/v1/echo", sent, false, {}, &status);
    EXPECT_EQ(status, 201);
    EXPECT_EQ(got["got"], sent);
    EXPECT_EQ(got["authorization"], "Bearer tls-token");
    const fs::path dest = tmp.path / ("out-" + host + ".bin");
    EXPECT_EQ(client.download("/v1/runs/r1/outputs/bam", dest), content.size());
    EXPECT_EQ(read_file(dest), content);
    EXPECT_FALSE(fs::exists(dest.string() + ".part"));
  }
}

TEST(HttpsClient, UntrustedCertificateFailsVerificationWithoutRetries) {
  TempDir tmp;
  const TlsFiles tls = localhost_cert(tmp.path);
  const TlsFiles other = make_cert(tmp.path, "other", "localhost", "DNS:localhost,IP:127.0.0.1");
  auto server = start_tls_server(echo_and_file_router(tmp.path / "none"), tls);
  auto opt = https_options(*server, "");
  opt.max_attempts = 5;
  opt.backoff_initial = opt.backoff_max = std::chrono::milliseconds(500);
  {  // the system CAs do not know a self-signed certificate
    HttpClient client(opt);
    const auto t0 = std::chrono::steady_clock::now();
    const std::string what = client_error([&] { client.post_json("/v1/echo", json::object(), true); });
    EXPECT_NE(what.find("certificate verification failed"), std::string::npos) << what;
    EXPECT_EQ(what.find("attempts"), std::string::npos) << what;  // not retried
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(450));
    EXPECT_NE(client_error([&] {
                client.download("/v1/runs/r/outputs/x", tmp.path / "x.bin");
              }).find("certificate verification failed"),
              std::string::npos);
    EXPECT_FALSE(fs::exists(tmp.path / "x.bin"));
  }
  {  // a CA file that did not sign the server's certificate
    opt.ca_file = other.cert.string();
    HttpClient client(opt);
    const std::string what = client_error([&] { client.post_json("/v1/echo", json::object(), true); });
    EXPECT_NE(what.find("certificate verification failed"), std::string::npos) << what;
  }
  {  // insecure_skip_verify talks to it anyway
    opt.ca_file.clear();
    opt.insecure_skip_verify = true;
    HttpClient client(opt);
    EXPECT_EQ(client.post_json("/v1/echo", {{"a", 1}}, true)["got"]["a"], 1);
  }
}

TEST(HttpsClient, HostNameMismatchFails) {
  TempDir tmp;
  const TlsFiles wrong = make_cert(tmp.path, "wrong", "wrong.example", "DNS:wrong.example");
  auto server = start_tls_server(echo_and_file_router(tmp.path / "none"), wrong);
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    SCOPED_TRACE(host);
    HttpClient client(https_options(*server, wrong.cert, host));  // trusted, but for another name
    const std::string what = client_error([&] { client.post_json("/v1/echo", json::object(), true); });
    EXPECT_NE(what.find("certificate verification failed"), std::string::npos) << what;
    EXPECT_NE(what.find("does not match host '" + host + "'"), std::string::npos) << what;
  }
}

TEST(HttpsClient, PlainHttpToTlsPortFailsAndServerKeepsServing) {
  TempDir tmp;
  const TlsFiles tls = localhost_cert(tmp.path);
  auto server = start_tls_server(echo_and_file_router(tmp.path / "none"), tls);
  HttpClientOptions plain;
  plain.base_url = "http://127.0.0.1:" + std::to_string(server->port());
  plain.max_attempts = 1;
  plain.request_timeout = std::chrono::milliseconds(5'000);
  HttpClient plain_client(plain);
  const auto t0 = std::chrono::steady_clock::now();
  client_error([&] { plain_client.post_json("/v1/echo", json::object(), true); });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));  // closed, not timed out
  HttpClient tls_client(https_options(*server, tls.cert));
  EXPECT_EQ(tls_client.post_json("/v1/echo", {{"n", 7}}, true)["got"]["n"], 7);

  // And the other way round: https to a plain HTTP server fails in the handshake.
  Router router;
  router.get("/healthz", [](Request&) { return Response::text("ok\n"); });
  auto plain_server = start_server(std::move(router));
  auto opt = https_options(*plain_server, tls.cert);
  opt.max_attempts = 1;
  HttpClient client(opt);
  const std::string what = client_error([&] { client.send("GET", "/healthz"); });
  EXPECT_NE(what.find("TLS"), std::string::npos) << what;
}

TEST(HttpsClient, UrlsAndCaFileErrors) {
  HttpClientOptions o;
  o.base_url = "https://example.org/prefix/";
  EXPECT_EQ(HttpClient(o).url("/v1/runs"), "https://example.org:443/prefix/v1/runs");
  o.base_url = "https://[::1]:8443";
  EXPECT_EQ(HttpClient(o).url("/x"), "https://[::1]:8443/x");
  o.base_url = "http://example.org";
  EXPECT_EQ(HttpClient(o).url("/x"), "http://example.org:80/x");
  TempDir tmp;
  const std::string missing = (tmp.path / "missing-ca.pem").string();
  o.ca_file = missing;
  EXPECT_NO_THROW(HttpClient{o});  // plain http: the CA file is not used
  o.base_url = "https://example.org";
  try {
    HttpClient client(o);
    FAIL() << "expected InputError";
  } catch (const omicsd::InputError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  write_file(tmp.path / "garbage.pem", "not a certificate\n");
  o.ca_file = (tmp.path / "garbage.pem").string();
  try {
    HttpClient client(o);
    FAIL() << "expected InputError";
  } catch (const omicsd::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("garbage.pem"), std::string::npos) << e.what();
  }
}

namespace {

// `omicsd serve` as a child process; SIGKILLed in the destructor if still running.
struct ServeProcess {
  pid_t pid = -1;
  uint16_t port = 0;
  ~ServeProcess() { stop(SIGKILL); }

  // Starts `omicsd serve <args>` on a free port and waits (bounded) until /healthz answers over
  // https with `ca`.
  bool start(const std::string& args, const fs::path& log, const fs::path& ca) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      port = closed_port();
      const std::string cmd = "exec " + omicsd_binary() +
                              " serve --listen 127.0.0.1:" + std::to_string(port) + " " + args + " >>'" +
                              log.string() + "' 2>&1";
      pid = ::fork();
      if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
      }
      HttpClientOptions o;
      o.base_url = url();
      o.ca_file = ca.string();
      o.max_attempts = 1;
      o.connect_timeout = o.request_timeout = std::chrono::milliseconds(2'000);
      HttpClient client(o);
      for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
           std::chrono::steady_clock::now() < deadline;) {
        int st = 0;
        if (::waitpid(pid, &st, WNOHANG) == pid) {
          pid = -1;
          break;  // exited (port taken?): try another port
        }
        try {
          if (client.send("GET", "/healthz").status == 200) return true;
        } catch (const HttpClientError&) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      stop(SIGKILL);
    }
    return false;
  }

  std::string url() const { return "https://127.0.0.1:" + std::to_string(port); }

  // Sends `sig`, waits (at most 30 s) for the exit; returns the exit status, or -1.
  int stop(int sig) {
    if (pid <= 0) return -1;
    ::kill(pid, sig);
    int st = 0;
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
         std::chrono::steady_clock::now() < deadline;) {
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &st, 0);
    pid = -1;
    return -1;
  }
};

}  // namespace

TEST(ServeTls, CurlClientCommandsAndWorkerOverHttps) {
  REQUIRE_BINARY();
  TempDir tmp;
  const TlsFiles tls = localhost_cert(tmp.path);
  const std::string bin = omicsd_binary(), data = (tmp.path / "data").string();
  const std::string cert = tls.cert.string(), key = tls.key.string();
  std::string out;

  // Flag checks: both files, and they must exist.
  EXPECT_NE(run_command("timeout 20 " + bin + " serve --data-dir " + data + " --tls-cert " + cert, &out), 0);
  EXPECT_NE(out.find("--tls-key"), std::string::npos) << out;
  EXPECT_NE(run_command("timeout 20 " + bin + " serve --data-dir " + data + " --tls-cert " +
                            tmp.path.string() + "/nope.crt --tls-key " + key,
                        &out),
            0);
  EXPECT_NE(out.find("nope.crt"), std::string::npos) << out;
  // A file that exists but is no certificate: the daemon refuses to start and names it.
  write_file(tmp.path / "garbage.crt", "garbage\n");
  EXPECT_NE(run_command("timeout 20 " + bin + " serve --listen 127.0.0.1:0 --workers 0 --data-dir " + data +
                            " --tls-cert " + (tmp.path / "garbage.crt").string() + " --tls-key " + key,
                        &out),
            0);
  EXPECT_NE(out.find("garbage.crt"), std::string::npos) << out;

  ServeProcess d;
  ASSERT_TRUE(d.start("--workers 0 --data-dir " + data + " --tls-cert " + cert + " --tls-key " + key,
                      tmp.path / "serve.log", tls.cert))
      << read_file(tmp.path / "serve.log");
  const std::string port = std::to_string(d.port);

  // curl trusts the throwaway CA only when told to.
  EXPECT_EQ(run_command("curl -sS --max-time 10 --cacert " + cert + " https://127.0.0.1:" + port + "/healthz",
                        &out),
            0)
      << out;
  EXPECT_EQ(out, "ok\n");
  EXPECT_EQ(
      run_command("curl -sS --max-time 10 --cacert " + cert + " https://localhost:" + port + "/readyz", &out),
      0)
      << out;
  EXPECT_EQ(out, "ready\n");
  EXPECT_NE(run_command("curl -sS --max-time 10 https://127.0.0.1:" + port + "/healthz", &out), 0) << out;
  EXPECT_NE(run_command("curl -sS --max-time 10 http://127.0.0.1:" + port + "/healthz", &out), 0) << out;

  // Client commands: --ca-file, or $OMICSD_CA_FILE. The answers (404 / 4xx) came over TLS.
  const std::string server = " --server " + d.url();
  EXPECT_EQ(
      run_command("env -u OMICSD_CA_FILE " + bin + " status no-such-run --ca-file " + cert + server, &out),
      1);
  EXPECT_NE(out.find("HTTP 404"), std::string::npos) << out;
  EXPECT_EQ(run_command("OMICSD_CA_FILE=" + cert + " " + bin + " status no-such-run" + server, &out), 1);
  EXPECT_NE(out.find("HTTP 404"), std::string::npos) << out;
  // The flag wins over the environment.
  EXPECT_EQ(run_command("OMICSD_CA_FILE=" + (tmp.path / "garbage.crt").string() + " " + bin +
                            " status no-such-run --ca-file " + cert + server,
                        &out),
            1);
  EXPECT_NE(out.find("HTTP 404"), std::string::npos) << out;
  EXPECT_NE(run_command("env -u OMICSD_CA_FILE " + bin + " status no-such-run" + server, &out), 0);
  EXPECT_NE(out.find("certificate verification failed"), std::string::npos) << out;
  const int rc = run_command("env -u OMICSD_CA_FILE " + bin + " submit --workflow call --reference " +
                                 tmp.path.string() + "/no-ref.fa --bam " + tmp.path.string() +
                                 "/no.bam --ca-file " + cert + server,
                             &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("HTTP 4"), std::string::npos) << out;
  EXPECT_NE(out.find(d.url() + "/v1/runs"), std::string::npos) << out;

  // The Batch worker leases over https (empty queue: --once exits 0).
  EXPECT_EQ(
      run_command("env -u OMICSD_CA_FILE " + bin + " worker --once --unreachable-timeout 10 --data-dir " +
                      data + " --ca-file " + cert + server,
                  &out),
      0)
      << out;

  EXPECT_EQ(d.stop(SIGTERM), 0) << read_file(tmp.path / "serve.log");
}

// ---- Streamed request bodies (Router::add_streamed) and HttpClient::upload / fetch -------------

namespace {

// A file of `size` pseudo-random bytes, written in 1 MiB pieces (never whole in memory).
void write_random_file(const fs::path& p, uint64_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  std::string chunk(1 << 20, '\0');
  for (uint64_t left = size; left > 0;) {
    const std::size_t n = std::size_t(std::min<uint64_t>(left, chunk.size()));
    for (std::size_t i = 0; i < n; ++i) chunk[i] = char(rng());
    out.write(chunk.data(), std::streamsize(n));
    left -= n;
  }
}

std::size_t files_in(const fs::path& dir) {
  std::size_t n = 0;
  for (auto it = fs::directory_iterator(dir); it != fs::directory_iterator(); ++it) ++n;
  return n;
}

// Peak resident set size of this process (VmHWM), in bytes.
uint64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

// A server with one streamed route PUT /up/{name} (spool dir `spool`, limit `max_bytes`) whose
// handler moves the body to <keep>/<name> and answers its size and digest, and a JSON route.
struct UploadServer {
  fs::path spool, keep;
  std::atomic<int> calls{0}, fail_first{0};
  std::unique_ptr<HttpServer> server;

  UploadServer(const fs::path& dir, uint64_t max_bytes,
               std::shared_ptr<const omicsd::http::TokenStore> tokens = nullptr,
               std::chrono::milliseconds idle = std::chrono::milliseconds(10'000))
      : spool(dir / "spool"), keep(dir / "keep") {
    fs::create_directories(spool);
    fs::create_directories(keep);
    Router router;
    omicsd::http::StreamedBody body;
    body.spool_dir = spool;
    body.max_bytes = max_bytes;
    body.idle_timeout = idle;
    body.before_body = [](Request& req) -> std::optional<Response> {
      if (req.param("name") == "exists") return Response::json({{"early", true}}, 200);
      if (req.param("name") == "bad") throw omicsd::http::HttpError(400, "bad name");
      return std::nullopt;
    };
    router.add_streamed(
        "PUT", "/up/{name}",
        [this](Request& req) {
          ++calls;
          if (fail_first > 0) {
            --fail_first;
            return Response::error(503, "try again");
          }
          EXPECT_EQ(req.body_file.parent_path(), spool);
          EXPECT_TRUE(req.body.empty());
          fs::rename(req.body_file, keep / req.param("name"));
          return Response::json({{"size", req.body_size}, {"sha256", req.body_sha256}}, 201);
        },
        omicsd::http::Scope::worker, std::move(body));
    router.post("/json", [](Request& req) { return Response::json({{"n", req.body.size()}}); });
    if (tokens) router.set_auth(tokens);
    HttpServerOptions opt;
    opt.port = 0;
    opt.threads = 2;
    server = std::make_unique<HttpServer>(opt, std::move(router));
    server->start();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()); }
};

// curl PUT of a file; returns the status code ("000" when no answer), the body in *body.
std::string curl_put(const std::string& url, const fs::path& file, const std::string& extra = "",
                     std::string* body = nullptr) {
  TempDir t;
  std::string out;
  run_command("curl -s -m 30 -o " + (t.path / "resp").string() + " -w '%{http_code}' -X PUT " + extra +
                  " --data-binary @" + file.string() + " " + url,
              &out);
  if (body) *body = read_file(t.path / "resp");
  return out;
}

}  // namespace

TEST(HttpClient, UploadStreamsAFileBeyondTheJsonBodyLimit) {
  TempDir tmp;
  UploadServer s(tmp.path, uint64_t(64) << 20);
  const fs::path src = tmp.path / "blob.bin";
  write_random_file(src, (5u << 20) + 321, 11);  // 5 MB: above the server's 1 MB JSON body_limit
  HttpClient client(client_options(*s.server));
  const omicsd::HttpResponse r = client.upload("PUT", "/up/blob", src);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.json()["size"], fs::file_size(src));
  EXPECT_EQ(r.json()["sha256"], omicsd::ObjectStore::digest_file(src));
  EXPECT_EQ(read_file(s.keep / "blob"), read_file(src));
  EXPECT_EQ(files_in(s.spool), 0u);
  // An empty file is an empty body.
  write_file(tmp.path / "empty", "");
  const omicsd::HttpResponse e = client.upload("PUT", "/up/empty", tmp.path / "empty");
  ASSERT_EQ(e.status, 201) << e.body;
  EXPECT_EQ(e.json()["sha256"], omicsd::ObjectStore::digest_bytes(""));
  EXPECT_EQ(fs::file_size(s.keep / "empty"), 0u);
  // Other routes keep the 1 MB limit: a 2 MB JSON body is refused, a small one accepted.
  EXPECT_EQ(client.send("POST", "/json", std::string(2 << 20, ' '), "application/json", {}, false).status,
            413);
  const omicsd::HttpResponse small = client.send("POST", "/json", "{}", "application/json", {}, false);
  EXPECT_EQ(small.status, 200);
  EXPECT_EQ(small.json()["n"], 2);
  // A file that cannot be read is the caller's error, not a connection failure.
  EXPECT_THROW(client.upload("PUT", "/up/x", tmp.path / "missing.bin"), omicsd::Error);
  EXPECT_EQ(s.calls.load(), 2);
}

TEST(HttpClient, UploadRetriesIdempotentPutsAndResendsTheWholeFile) {
  TempDir tmp;
  UploadServer s(tmp.path, uint64_t(64) << 20);
  const fs::path src = tmp.path / "blob.bin";
  write_random_file(src, 3u << 20, 12);
  HttpClient client(client_options(*s.server));
  s.fail_first = 2;
  const omicsd::HttpResponse r = client.upload("PUT", "/up/retried", src);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(s.calls.load(), 3);
  EXPECT_EQ(read_file(s.keep / "retried"), read_file(src));
  // Not idempotent: one attempt, the 503 comes back.
  s.calls = 0;
  s.fail_first = 1;
  EXPECT_EQ(client.upload("PUT", "/up/once", src, "application/octet-stream", {}, false).status, 503);
  EXPECT_EQ(s.calls.load(), 1);
  EXPECT_EQ(files_in(s.spool), 0u);
}

TEST(HttpClient, StreamedUploadIsNotBufferedInMemory) {
  TempDir tmp;
  UploadServer s(tmp.path, uint64_t(1) << 30);
  const fs::path src = tmp.path / "big.bin";
  const uint64_t size = uint64_t(160) << 20;
  write_random_file(src, size, 13);
  HttpClient client(client_options(*s.server));
  const uint64_t before = peak_rss_bytes();
  const omicsd::HttpResponse r = client.upload("PUT", "/up/big", src);
  const uint64_t after = peak_rss_bytes();
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.json()["size"], size);
  EXPECT_EQ(r.json()["sha256"], omicsd::ObjectStore::digest_file(src));
  EXPECT_EQ(fs::file_size(s.keep / "big"), size);
  // Client and server both run in this process: neither may hold the body.
  EXPECT_LT(after - before, uint64_t(48) << 20) << "peak RSS grew from " << before << " to " << after;
}

TEST(HttpServer, StreamedRouteLimitsAuthEarlyAnswersAndChunkedBodies) {
  TempDir tmp;
  auto tokens = std::make_shared<omicsd::http::TokenStore>();
  tokens->add("tok-worker", omicsd::http::ScopeMask(omicsd::http::Scope::worker));
  tokens->add("tok-client", omicsd::http::ScopeMask(omicsd::http::Scope::client));
  UploadServer s(tmp.path, uint64_t(2) << 20, tokens);
  const fs::path big = tmp.path / "big.bin", ok = tmp.path / "ok.bin";
  write_random_file(big, 3u << 20, 14);
  write_random_file(ok, (3u << 19) + 7, 15);  // 1.5 MB
  const std::string auth = "-H 'Authorization: Bearer tok-worker'";
  std::string body;
  // Refused before the body is read: no token, a token without the scope, a declared length over
  // the route's limit, and a chunked body that grows over it.
  EXPECT_EQ(curl_put(s.url() + "/up/a", ok, "", &body), "401") << body;
  EXPECT_EQ(curl_put(s.url() + "/up/a", ok, "-H 'Authorization: Bearer tok-client'", &body), "403") << body;
  EXPECT_EQ(curl_put(s.url() + "/up/a", big, auth, &body), "413") << body;
  EXPECT_NE(body.find(std::to_string(2u << 20)), std::string::npos) << body;
  EXPECT_EQ(curl_put(s.url() + "/up/a", big, auth + " -H 'Transfer-Encoding: chunked'", &body), "413")
      << body;
  EXPECT_EQ(s.calls.load(), 0);
  EXPECT_EQ(files_in(s.spool), 0u);
  EXPECT_EQ(files_in(s.keep), 0u);
  // Chunked within the limit, and with Expect: 100-continue (curl's default for bodies > 1 MB).
  EXPECT_EQ(curl_put(s.url() + "/up/chunked", ok, auth + " -H 'Transfer-Encoding: chunked'", &body), "201")
      << body;
  EXPECT_EQ(json::parse(body)["sha256"], omicsd::ObjectStore::digest_file(ok));
  EXPECT_EQ(read_file(s.keep / "chunked"), read_file(ok));
  EXPECT_EQ(curl_put(s.url() + "/up/continue", ok, auth + " -H 'Expect: 100-continue'", &body), "201")
      << body;
  EXPECT_EQ(read_file(s.keep / "continue"), read_file(ok));
  // before_body answers: a 2xx after draining the body (nothing stored, handler not run), an
  // error at once.
  s.calls = 0;
  EXPECT_EQ(curl_put(s.url() + "/up/exists", ok, auth + " -H 'Expect:'", &body), "200") << body;
  EXPECT_EQ(json::parse(body)["early"], true);
  EXPECT_EQ(curl_put(s.url() + "/up/exists", ok, auth, &body), "200") << body;  // with 100-continue
  EXPECT_EQ(curl_put(s.url() + "/up/bad", ok, auth, &body), "400") << body;
  EXPECT_NE(body.find("bad name"), std::string::npos) << body;
  EXPECT_EQ(s.calls.load(), 0);
  EXPECT_FALSE(fs::exists(s.keep / "exists"));
  EXPECT_EQ(files_in(s.spool), 0u);
  // The server still serves.
  HttpClientOptions o = client_options(*s.server);
  o.token = "tok-worker";
  HttpClient client(o);
  EXPECT_EQ(client.upload("PUT", "/up/after", ok).status, 201);
}

TEST(HttpServer, StreamedBodyIdleTimeoutClosesAndRemovesTheSpoolFile) {
  TempDir tmp;
  UploadServer s(tmp.path, uint64_t(64) << 20, nullptr, std::chrono::milliseconds(400));
  // Announce 1 MB, send 10 bytes, then stall: the server gives up after the idle timeout.
  write_file(tmp.path / "stall.sh",
             "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(s.server->port()) +
                 "\nprintf 'PUT /up/stalled HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 1048576\\r\\n\\r\\n"
                 "0123456789' >&3\ntimeout 10 cat <&3\n");
  std::string out;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = run_command("bash " + (tmp.path / "stall.sh").string(), &out);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(rc, 0) << out;  // cat ended because the server closed the connection
  EXPECT_LT(secs, 5.0);
  // Beast's timer closes the socket itself, and the read's completion handler (which removes the
  // spool file) runs after that on the server's thread: the client can see the close first.
  const auto removed_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (files_in(s.spool) != 0 && std::chrono::steady_clock::now() < removed_by)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(s.calls.load(), 0);
  EXPECT_EQ(files_in(s.spool), 0u);
  EXPECT_EQ(files_in(s.keep), 0u);
}

TEST(HttpClient, FetchHashesTheBodyAndReturns304) {
  TempDir tmp;
  const fs::path blob = tmp.path / "blob.bin";
  write_random_file(blob, (2u << 20) + 5, 16);
  Router router;
  router.get("/f", [&](Request& req) {
    if (req.header("if-none-match") == "\"v1\"") {
      Response r;
      r.status = 304;
      r.content_type = "";
      return r;
    }
    Response r = Response::from_file(blob);
    r.set_header("ETag", "\"v1\"");
    return r;
  });
  auto server = start_server(std::move(router));
  HttpClient client(client_options(*server));
  const omicsd::FetchResult r = client.fetch("/f", tmp.path / "out.bin");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.bytes, fs::file_size(blob));
  EXPECT_EQ(r.sha256, omicsd::ObjectStore::digest_file(blob));
  EXPECT_EQ(r.header("etag"), "\"v1\"");
  EXPECT_EQ(read_file(tmp.path / "out.bin"), read_file(blob));
  const omicsd::FetchResult nm = client.fetch("/f", tmp.path / "out2.bin", {{"If-None-Match", "\"v1\""}});
  EXPECT_EQ(nm.status, 304);
  EXPECT_FALSE(fs::exists(tmp.path / "out2.bin"));
  EXPECT_FALSE(fs::exists(tmp.path / "out2.bin.part"));
  // download() keeps treating anything but a 2xx as an error.
  Router r2;
  r2.get("/nm", [](Request&) {
    Response r;
    r.status = 304;
    r.content_type = "";
    return r;
  });
  auto s2 = start_server(std::move(r2));
  HttpClient c2(client_options(*s2));
  EXPECT_THROW(c2.download("/nm", tmp.path / "nm.bin"), HttpClientError);
  // HEAD: the headers of the GET, no body (and no wait for one).
  const auto t0 = std::chrono::steady_clock::now();
  const omicsd::HttpResponse h = client.send("HEAD", "/f", "", "", {}, true);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.header("content-length"), std::to_string(fs::file_size(blob)));
  EXPECT_TRUE(h.body.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

// The HTTP transfer mode of the worker against a stub daemon whose input paths do not exist on
// this machine: inputs come over HTTP (with the lease token), heartbeats continue while a slow
// download is in flight, outputs are uploaded and their digests reported.
TEST(RemoteWorker, HttpTransferHeartbeatsWhileDownloadingAndUploadsOutputs) {
  const fs::path src = shared_data_dir() / "na12878-chr22-tiny";
  if (!fs::exists(src / "NA12878.chr22.tiny.bam")) GTEST_SKIP() << "no shared data at " << src;
  TempDir tmp;
  fs::create_directories(tmp.path / "spool");
  std::mutex mu;
  int heartbeats = 0, heartbeats_during_download = 0;
  std::atomic<bool> downloading{false};
  bool handed_out = false;
  std::vector<json> completes, fails;
  std::vector<std::string> input_keys, lease_headers;
  std::map<std::string, std::string> uploaded;  // URL digest -> digest of the body received
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const json task = {
      {"id", "run-7/call"},
      {"name", "call"},
      {"kind", "call"},
      {"parameters", {{"threads", 1}}},
      {"inputs",
       {{"reference", "/daemon/only/q.fa"}, {"bam", "file:///daemon/only/NA12878.chr22.tiny.bam"}}}};
  Router router;
  router.post("/v1/tasks/lease", [&](Request&) {
    std::lock_guard lock(mu);
    if (handed_out) return no_content();
    handed_out = true;
    json t = task;
    t["lease_token"] = "lease-7";
    t["lease_expires_at"] = now_ms() + 3000;
    return Response::json({{"task", t}, {"run", {{"id", "run-7"}, {"sample", "NA12878"}}}});
  });
  router.post("/v1/tasks/{id}/heartbeat", [&](Request&) {
    std::lock_guard lock(mu);
    ++heartbeats;
    if (downloading) ++heartbeats_during_download;
    return Response::json({{"lease_expires_at", now_ms() + 3000}});
  });
  router.get("/v1/tasks/{id}/inputs/{key}", [&](Request& req) {
    const std::string key = req.param("key");
    {
      std::lock_guard lock(mu);
      input_keys.push_back(key);
      lease_headers.push_back(req.header("x-omicsd-lease-token"));
    }
    if (req.param("id") != "run-7/call") throw omicsd::http::HttpError(404, "unknown task");
    if (key == "reference") return Response::from_file(src / "q.fa");
    if (key == "reference.fai") return Response::from_file(src / "q.fa.fai");
    if (key == "bam.bai") return Response::from_file(src / "NA12878.chr22.tiny.bam.bai");
    if (key == "bam") {
      downloading = true;  // a slow transfer: longer than the 3 s lease
      std::this_thread::sleep_for(std::chrono::milliseconds(3500));
      downloading = false;
      return Response::from_file(src / "NA12878.chr22.tiny.bam");
    }
    throw omicsd::http::HttpError(404, "no input " + key);
  });
  router.get("/v1/objects/{digest}", [&](Request& req) {
    std::lock_guard lock(mu);
    if (!uploaded.count(req.param("digest"))) throw omicsd::http::HttpError(404, "no object");
    return Response::json({{"have", true}});
  });
  omicsd::http::StreamedBody body;
  body.spool_dir = tmp.path / "spool";
  router.add_streamed(
      "PUT", "/v1/objects/{digest}",
      [&](Request& req) {
        std::lock_guard lock(mu);
        uploaded[req.param("digest")] = req.body_sha256;
        return Response::json({{"digest", req.body_sha256}}, 201);
      },
      omicsd::http::Scope::worker, std::move(body));
  router.post("/v1/tasks/{id}/complete", [&](Request& req) {
    std::lock_guard lock(mu);
    completes.push_back(omicsd::http::parse_json_body(req));
    return Response::json(task);
  });
  router.post("/v1/tasks/{id}/fail", [&](Request& req) {
    std::lock_guard lock(mu);
    fails.push_back(omicsd::http::parse_json_body(req));
    return Response::json(task);
  });
  auto server = start_server(std::move(router));

  omicsd::RemoteWorkerOptions o;
  o.server = "http://127.0.0.1:" + std::to_string(server->port());
  o.data_dir = tmp.path / "worker";
  o.transfer = omicsd::WorkerTransfer::http;
  o.worker_id = "xfer-unit";
  o.lease_seconds = 3;  // heartbeats every second
  o.once = true;
  omicsd::RemoteWorker worker(o);
  EXPECT_EQ(worker.run(), omicsd::kWorkerExitOk);

  std::lock_guard lock(mu);
  ASSERT_TRUE(fails.empty()) << fails.front().dump();
  ASSERT_EQ(completes.size(), 1u);
  EXPECT_GE(heartbeats_during_download, 2) << heartbeats << " heartbeats in all";
  for (const auto& h : lease_headers) EXPECT_EQ(h, "lease-7");
  EXPECT_NE(std::find(input_keys.begin(), input_keys.end(), "bam"), input_keys.end());
  EXPECT_NE(std::find(input_keys.begin(), input_keys.end(), "reference"), input_keys.end());
  const json& c = completes.front();
  ASSERT_TRUE(c["outputs"].contains("vcf")) << c.dump();
  for (const auto& [name, ref] : c["outputs"].items()) {
    const std::string digest = ref["digest"];
    ASSERT_TRUE(uploaded.count(digest)) << name << " was reported but not uploaded";
    EXPECT_EQ(uploaded[digest], digest) << name;
  }
  // Provenance names the daemon's URIs; the downloaded inputs are in the worker's own store.
  EXPECT_EQ(c["provenance"]["inputs"]["bam"]["uri"], "file:///daemon/only/NA12878.chr22.tiny.bam");
  EXPECT_EQ(c["provenance"]["inputs"]["reference"]["uri"], "/daemon/only/q.fa");
  omicsd::ObjectStore local(tmp.path / "worker");
  EXPECT_TRUE(local.has(omicsd::ObjectStore::digest_file(src / "NA12878.chr22.tiny.bam")));
  EXPECT_TRUE(local.has(omicsd::ObjectStore::digest_file(src / "q.fa")));
}

// A server that refuses an upload before reading its body (413 for a declared length over the
// route's limit) is heard: the client stops sending and returns that answer, once (not retried
// as a connection failure).
TEST(HttpClient, UploadReturnsTheServersEarlyAnswer) {
  TempDir tmp;
  UploadServer s(tmp.path, uint64_t(1) << 20);
  const fs::path src = tmp.path / "big.bin";
  write_random_file(src, 32u << 20, 17);
  HttpClient client(client_options(*s.server));
  const auto t0 = std::chrono::steady_clock::now();
  const omicsd::HttpResponse r = client.upload("PUT", "/up/big", src);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(omicsd::server_error_message(r.body).find("exceeds the limit of 1048576 bytes"),
            std::string::npos)
      << r.body;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(s.calls.load(), 0);
  EXPECT_EQ(files_in(s.spool), 0u);
}
