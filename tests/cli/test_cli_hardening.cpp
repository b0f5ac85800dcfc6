// Security regression tests against a real `omicsd serve` on loopback (issue 12): each test replays
// an attack that once broke the daemon and checks that it is refused with a 4xx JSON error while the
// daemon keeps serving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "service/http/address_policy.hpp"
#include "service/http/http_server.hpp"
#include "tests/support/serve_harness.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string deep_array(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// A JSON error body: {"error": {"code": status, "message": ...}}.
void expect_json_error(const HttpResult& r, int status, const std::string& needle = "") {
  EXPECT_EQ(r.status, status) << r.body;
  const json j = r.j();
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
  EXPECT_EQ(j["error"].value("code", 0), status) << r.body;
  if (!needle.empty()) {
    EXPECT_NE(j["error"].value("message", std::string()).find(needle), std::string::npos) << r.body;
  }
}

// A germline body whose parameters.read_group is replaced by `read_group` (raw JSON text).
std::string germline_with_read_group(const ServeFixture& f, const std::string& read_group) {
  std::string body = json{{"workflow", "germline"},
                          {"sample", "S1"},
                          {"inputs", {{"reference", f.ref.string()}, {"reads", f.bam.string()}}},
                          {"parameters", {{"read_group", "RGX"}}}}
                         .dump();
  const std::string marker = "\"RGX\"";
  body.replace(body.find(marker), marker.size(), read_group);
  return body;
}

TEST_P(ServeStoreTest, DeepJsonAndBadParameterTypesAre400AndTheDaemonKeepsServing) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()), tmp.path / "serve.log"))
      << log_of(d);

  // The attack of issue 12: a 100,000-deep array in parameters.read_group (200 KB) killed the daemon
  // with a stack overflow on its I/O thread.
  expect_json_error(d.post("/v1/runs", germline_with_read_group(*this, deep_array(100'000))), 400,
                    "nested deeper than 64");
  ASSERT_EQ(d.get("/healthz").status, 200) << log_of(d);
  // Deep but within the limit is parsed, then refused by the parameter's schema (a string).
  expect_json_error(d.post("/v1/runs", germline_with_read_group(*this, deep_array(60))), 400,
                    "'read_group' must be a string");
  // Numbers out of range and wrong types: 400, not 500.
  expect_json_error(d.post("/v1/runs", germline_with_read_group(*this, "1e400")), 400);
  expect_json_error(d.post("/v1/runs", R"({"workflow": "germline", "inputs": 1e400})"), 400);
  for (const auto& [k, v] : std::vector<std::pair<std::string, json>>{{"threads", "2"},
                                                                      {"threads", -1},
                                                                      {"threads", 1e9},
                                                                      {"threads", 18446744073709551615ull},
                                                                      {"gvcf", 1},
                                                                      {"backend", "opencl"},
                                                                      {"device", json::array()},
                                                                      {"min_mapq", 1.5},
                                                                      {"min_qual", "high"},
                                                                      {"min_score", json::object()},
                                                                      {"interleaved", "yes"},
                                                                      {"regions", 7},
                                                                      {"ploidy", 0},
                                                                      {"ploidy", 11},
                                                                      {"ploidy", "1"},
                                                                      {"sex", "M"},
                                                                      {"ploidy_bed", 1},
                                                                      {"allow_multiple_samples", "no"}}) {
    json b = json::parse(germline_body());
    b["parameters"][k] = v;
    expect_json_error(d.post("/v1/runs", b.dump()), 400, "'" + k + "'");
  }
  expect_json_error(d.post("/v1/runs", R"({"workflow": 5, "inputs": {}})"), 400);
  expect_json_error(d.post("/v1/runs", R"([1, 2)"), 400);
  expect_json_error(d.post("/v1/runs", "\"\xff\xfe\""), 400);

  // The worker side: lease a real task, then complete it with a deep provenance.
  HttpResult ok = d.post("/v1/runs", germline_body());
  ASSERT_EQ(ok.status, 201) << ok.body;
  HttpResult lease = d.post("/v1/tasks/lease", json{{"worker_id", "w1"}, {"lease_seconds", 60}}.dump());
  ASSERT_EQ(lease.status, 200) << lease.body;
  const json task = lease.j()["task"];
  std::string tid = task["id"].get<std::string>();
  tid.replace(tid.find('/'), 1, "%2F");
  const std::string token = task["lease_token"].get<std::string>();
  expect_json_error(d.post("/v1/tasks/" + tid + "/complete", R"({"lease_token": ")" + token +
                                                                 R"(", "outputs": {}, "provenance": {"x": )" +
                                                                 deep_array(100'000) + "}}"),
                    400, "nested deeper than 64");
  expect_json_error(
      d.post("/v1/tasks/" + tid + "/heartbeat",
             R"({"lease_token": ")" + token + R"(", "telemetry": )" + deep_array(100'000) + "}"),
      400, "nested deeper than 64");
  expect_json_error(d.post("/v1/tasks/" + tid + "/complete",
                           R"({"lease_token": ")" + token + R"(", "outputs": {"bam": {"digest": 1e400}}})"),
                    400);
  expect_json_error(d.post("/v1/tasks/lease", R"({"worker_id": ["w"]})"), 400);
  // Other routes with JSON bodies go through the same parser.
  for (const char* path : {"/v1/references", "/v1/readsets", "/v1/cohorts/query"}) {
    HttpResult r = d.request("POST", path, deep_array(100'000), {"Content-Type: application/json"});
    EXPECT_EQ(r.status, 400) << path << ": " << r.body;
  }

  // Still serving, and the run and its task are untouched.
  EXPECT_EQ(d.get("/healthz").status, 200) << log_of(d);
  HttpResult run = d.get("/v1/runs/" + ok.j()["id"].get<std::string>());
  ASSERT_EQ(run.status, 200) << run.body;
  EXPECT_EQ(run.j()["tasks"][0]["state"], "RUNNING") << run.body;
  EXPECT_EQ(log_of(d).find("internal error"), std::string::npos) << log_of(d);
}

// Polls the run until its first webhook event has failed or been delivered; returns that callback.
json settled_callback(const Daemon& d, const std::string& id) {
  json cb;
  for (auto until = Clock::now() + std::chrono::seconds(30); Clock::now() < until;) {
    const json run = d.get("/v1/runs/" + id).j();
    if (run.contains("callbacks") && run["callbacks"].size() == 1 &&
        run["callbacks"][0]["status"] != "PENDING")
      return run["callbacks"][0];
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return cb;
}

TEST_F(ServeFixture, CallbackUrlsCannotReachLoopbackPrivateOrMetadataAddresses) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()) +
                          " --webhook-max-attempts 1 --webhook-backoff-ms 50",
                      tmp.path / "serve.log"))
      << log_of(d);
  HttpResult victim = d.post("/v1/runs", germline_body("victim"));
  ASSERT_EQ(victim.status, 201) << victim.body;
  const std::string victim_id = victim.j()["id"].get<std::string>();
  const std::string port = std::to_string(d.port);

  // Literal addresses are refused at submission.
  for (const std::string& url :
       std::vector<std::string>{"http://127.0.0.1:" + port + "/v1/runs/" + victim_id + "/cancel",
                                "http://169.254.169.254/latest/meta-data/", "http://[::1]:" + port + "/",
                                "http://10.0.0.1/hook", "http://192.168.0.10:8080/", "http://0.0.0.0:" + port,
                                "http://[::ffff:127.0.0.1]:" + port + "/", "http://[fd00:ec2::254]/"}) {
    json b = json::parse(germline_body("attacker"));
    b["callback_url"] = url;
    expect_json_error(d.post("/v1/runs", b.dump()), 400, "refused");
  }
  // A name that resolves to loopback is accepted at submission and refused when it is resolved: the
  // daemon never connects, so the victim run is not canceled through its own API.
  json b = json::parse(germline_body("attacker"));
  b["callback_url"] = "http://localhost:" + port + "/v1/runs/" + victim_id + "/cancel";
  HttpResult attacker = d.post("/v1/runs", b.dump());
  ASSERT_EQ(attacker.status, 201) << attacker.body;
  const std::string attacker_id = attacker.j()["id"].get<std::string>();
  ASSERT_EQ(d.post("/v1/runs/" + attacker_id + "/cancel", "").status, 200);
  const json cb = settled_callback(d, attacker_id);
  ASSERT_EQ(cb.value("status", ""), "FAILED") << cb.dump();
  EXPECT_EQ(cb["last_error"].get<std::string>().rfind("refused: ", 0), 0u) << cb.dump();
  EXPECT_NE(cb["last_error"].get<std::string>().find("loopback"), std::string::npos) << cb.dump();
  EXPECT_EQ(d.get("/v1/runs/" + victim_id).j().value("state", ""), "QUEUED")
      << "the callback reached the daemon";
  EXPECT_EQ(d.get("/healthz").status, 200);
}

TEST_F(ServeFixture, AllowedCallbackRecordsOnlyTheStatusNotTheReceiversBody) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()) +
                          " --webhook-max-attempts 1 --webhook-backoff-ms 50 --callback-allow 127.0.0.0/8",
                      tmp.path / "serve.log"))
      << log_of(d);
  // The receiver (the daemon itself, allowed by the operator) answers 404 with a JSON body naming
  // the path: none of that body may reach the run's callbacks.
  json b = json::parse(germline_body("S1"));
  b["callback_url"] = "http://127.0.0.1:" + std::to_string(d.port) + "/private-area-SECRET";
  HttpResult sub = d.post("/v1/runs", b.dump());
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string id = sub.j()["id"].get<std::string>();
  ASSERT_EQ(d.post("/v1/runs/" + id + "/cancel", "").status, 200);
  const json cb = settled_callback(d, id);
  ASSERT_EQ(cb.value("status", ""), "FAILED") << cb.dump();
  EXPECT_EQ(cb.value("last_error", ""), "HTTP 404") << cb.dump();
  // Connection failures say only that nothing answered.
  const uint16_t dead = free_port();
  b["callback_url"] = "http://127.0.0.1:" + std::to_string(dead) + "/hook";
  sub = d.post("/v1/runs", b.dump());
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string id2 = sub.j()["id"].get<std::string>();
  ASSERT_EQ(d.post("/v1/runs/" + id2 + "/cancel", "").status, 200);
  EXPECT_EQ(settled_callback(d, id2).value("last_error", ""), "no response (connection failed or timed out)");
  // Outside the allowed network it is still refused.
  b["callback_url"] = "http://169.254.169.254/latest/meta-data/";
  expect_json_error(d.post("/v1/runs", b.dump()), 400, "refused");
}

// Issue 12, item 6: a worker's complete cannot write the shared call cache under a key it chose, and
// a heartbeat's lease_seconds is bounded (9.2e15 overflowed now + seconds in the store).
TEST_P(ServeStoreTest, WorkersCannotPoisonTheCallCacheOrOverflowTheirLease) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()), tmp.path / "serve.log"))
      << log_of(d);
  ASSERT_EQ(d.post("/v1/runs", germline_body()).status, 201);
  HttpResult lease = d.post("/v1/tasks/lease", json{{"worker_id", "w1"}}.dump());
  ASSERT_EQ(lease.status, 200) << lease.body;
  const json task = lease.j()["task"];
  std::string tid = task["id"].get<std::string>();
  tid.replace(tid.find('/'), 1, "%2F");
  const std::string token = task["lease_token"].get<std::string>();
  for (const json& secs :
       {json(9'200'000'000'000'000LL), json(-5), json(0), json(86401), json("60"), json(1.5)})
    expect_json_error(d.post("/v1/tasks/" + tid + "/heartbeat",
                             json{{"lease_token", token}, {"lease_seconds", secs}}.dump()),
                      400, "lease_seconds");
  expect_json_error(d.post("/v1/tasks/lease", json{{"worker_id", "w2"}, {"lease_seconds", 1e18}}.dump()), 400,
                    "lease_seconds");
  HttpResult hb = d.post("/v1/tasks/" + tid + "/heartbeat",
                         json{{"lease_token", token}, {"lease_seconds", 86400}}.dump());
  ASSERT_EQ(hb.status, 200) << hb.body;

  const std::string chosen_key = "sha256:" + std::string(64, 'a');
  HttpResult done = d.post(
      "/v1/tasks/" + tid + "/complete",
      json{{"lease_token", token},
           {"outputs", json::object()},
           {"provenance", {{"cache_key", chosen_key}, {"cache_hit", false}, {"worker_id", "someone-else"}}}}
          .dump());
  ASSERT_EQ(done.status, 200) << done.body;
  const json run = d.get("/v1/runs/" + task["run_id"].get<std::string>()).j();
  EXPECT_EQ(run["provenance"]["tasks"]["align"].value("worker_id", ""), "w1")
      << "the lease holder, not the claim";
  ASSERT_EQ(d.kill_now(SIGTERM), 0) << log_of(d);
  std::string out;
  const std::string count = "SELECT COUNT(*) FROM cache";
  const std::string cmd = pg ? "psql -At " + q(pg->url) + " -c " + q(count)
                             : "sqlite3 " + q((data / "omicsd.db").string()) + " " + q(count);
  ASSERT_EQ(run_command(cmd, &out), 0) << out;
  EXPECT_EQ(std::stoi(out), 0) << "a worker wrote the shared call cache";
}

// Issue 12, item 7: auth is not silently off on an address other hosts can reach; deleting shared
// data needs admin; callback URLs with credentials are not shown back; worker ids are bounded.
TEST_F(ServeFixture, NoAuthOnlyOnLoopbackDeletesNeedAdminCredentialsAreRedacted) {
  std::string out;
  const uint16_t port = free_port();
  const std::string serve = "timeout 20 " + omicsd_binary() + " serve --workers 0 --data-dir " +
                            q((tmp.path / "d0").string()) + " --listen 0.0.0.0:" + std::to_string(port);
  EXPECT_EQ(run_command(serve + " 2>&1", &out), 2) << out;
  EXPECT_NE(out.find("--token-file"), std::string::npos) << out;
  {
    Process p;  // the operator insists: it serves
    p.start(serve.substr(std::string("timeout 20 ").size()) + " --insecure-no-auth", tmp.path / "open.log");
    Daemon probe;
    probe.port = port;
    int status = 0;
    for (int i = 0; i < 100 && status != 200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      status = probe.get("/healthz").status;
    }
    EXPECT_EQ(status, 200) << read_file(tmp.path / "open.log");
    EXPECT_EQ(p.signal_and_wait(SIGTERM), 0);
  }

  write_file(tmp.path / "tokens", "tok-client client\ntok-admin admin\ntok-worker worker\n");
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()) + " --token-file " +
                          q((tmp.path / "tokens").string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  d.token = "tok-client";
  EXPECT_EQ(d.request("DELETE", "/v1/readsets/rs-0123456789abcdef").status, 403);
  EXPECT_EQ(d.request("DELETE", "/v1/references/ref-0123456789abcdef").status, 403);
  json b = json::parse(germline_body("S1"));
  b["callback_url"] = "https://hook-user:hook-SECRET@hooks.example.org/omicsd";
  HttpResult sub = d.post("/v1/runs", b.dump());
  expect_json_error(sub, 400, "must not carry credentials");
  EXPECT_EQ(sub.body.find("hook-SECRET"), std::string::npos) << sub.body;
  EXPECT_EQ(redact_url_credentials("https://u:p@h.example/x?y=a@b"), "https://***@h.example/x?y=a@b");
  EXPECT_EQ(redact_url_credentials("https://h.example/x@y"), "https://h.example/x@y");
  d.token = "tok-admin";
  EXPECT_EQ(d.request("DELETE", "/v1/readsets/rs-0123456789abcdef").status, 404);
  EXPECT_EQ(d.request("DELETE", "/v1/references/ref-0123456789abcdef").status, 404);
  d.token = "tok-worker";
  expect_json_error(d.post("/v1/tasks/lease", json{{"worker_id", std::string(201, 'w')}}.dump()), 400,
                    "worker_id");
}

// Issue 12, item 6: upload sizes are configurable and every upload must leave --min-free-space free
// (507 before a byte is stored), for objects, references and read-set parts alike.
TEST_F(ServeFixture, UploadsAreBoundedAndMustLeaveFreeSpace) {
  Daemon d;
  ASSERT_TRUE(
      d.start(data_args() + " --workers 0 --max-reference-size 100 --min-free-space 1000000000000000000",
              tmp.path / "serve.log"))
      << log_of(d);
  write_file(tmp.path / "g.fa", ">chr1\n" + std::string(60, 'A') + "\n>chr2\n" + std::string(60, 'C') + "\n");
  auto upload = [&](const std::string& method, const std::string& path) {
    std::string out;
    run_command("curl -s -o /dev/null -w '%{http_code}' -X " + method +
                    " -H 'Content-Type: application/octet-stream' --data-binary @" +
                    q((tmp.path / "g.fa").string()) + " " + q(d.url() + path),
                &out);
    return out;
  };
  EXPECT_EQ(upload("POST", "/v1/references?name=big"), "413");  // 130 bytes > --max-reference-size
  const std::string digest = "sha256%3A" + std::string(64, '0');
  EXPECT_EQ(upload("PUT", "/v1/objects/" + digest), "507");  // would leave less than 1e18 bytes free
  HttpResult rs = d.post("/v1/readsets", json{{"sample_id", "S1"}, {"parts", 1}}.dump());
  ASSERT_EQ(rs.status, 201) << rs.body;
  EXPECT_EQ(upload("PUT", "/v1/readsets/" + rs.j()["id"].get<std::string>() + "/parts/1"), "507");
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(data / "tmp", ec))
    ADD_FAILURE() << "spooled although refused: " << e.path();
  EXPECT_EQ(d.get("/healthz").status, 200);
}

// Issue 12, item 6: webhooks are delivered concurrently, so a receiver that never answers (it waits
// out the 10 s request timeout) does not hold up another run's event.
TEST_F(ServeFixture, AHangingWebhookReceiverDoesNotDelayOthers) {
  // The hanging receiver: listens, never accepts (the kernel completes the handshake, nobody answers).
  const int hang = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(hang, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(hang, 16), 0);
  ASSERT_EQ(::getsockname(hang, reinterpret_cast<sockaddr*>(&a), &len), 0);
  std::atomic<int> hits{0};
  http::Router r;
  r.post("/hook", [&hits](http::Request&) {
    ++hits;
    return http::Response::json({{"ok", true}});
  });
  http::HttpServerOptions so;
  so.port = 0;
  http::HttpServer fast(so, std::move(r));
  fast.start();

  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()) +
                          " --callback-allow 127.0.0.0/8 --webhook-max-attempts 1",
                      tmp.path / "serve.log"))
      << log_of(d);
  json b = json::parse(germline_body("slow"));
  std::vector<std::string> ids;
  for (const std::string& url : {"http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/hook",
                                 "http://127.0.0.1:" + std::to_string(fast.port()) + "/hook"}) {
    b["sample"] = "S" + std::to_string(ids.size());
    b["callback_url"] = url;
    HttpResult sub = d.post("/v1/runs", b.dump());
    ASSERT_EQ(sub.status, 201) << sub.body;
    ids.push_back(sub.j()["id"].get<std::string>());
  }
  const auto t0 = Clock::now();
  for (const auto& id : ids) ASSERT_EQ(d.post("/v1/runs/" + id + "/cancel", "").status, 200);
  while (hits.load() == 0 && Clock::now() - t0 < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(hits.load(), 1);
  EXPECT_LT(waited, 5.0) << "the fast receiver waited behind the hanging one";
  ::close(hang);
  fast.stop();
}

// Sum of the samples of one metric family whose labels contain `labels` (e.g. state="QUEUED").
double metric(const std::string& text, const std::string& name, const std::string& labels = "") {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 ||
        (line.size() > name.size() && line[name.size()] != '{' && line[name.size()] != ' '))
      continue;
    if (!labels.empty() && line.find(labels) == std::string::npos) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// Issue 12, item 5: the run and queue gauges come from aggregate queries (no scan of every run and
// its tasks per scrape), on both stores; with --metrics-auth /metrics needs a metrics token while
// /healthz stays open.
TEST_P(ServeStoreTest, MetricsGaugesAreAggregatesAndCanRequireAToken) {
  write_file(tmp.path / "tokens", "tok-client client\ntok-metrics metrics\ntok-admin admin\n");
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --metrics-cache-ms 0 --metrics-auth --allow-root " +
                          q(root.string()) + " --token-file " + q((tmp.path / "tokens").string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  d.token = "tok-client";
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    HttpResult r = d.post("/v1/runs", germline_body("S" + std::to_string(i)));
    ASSERT_EQ(r.status, 201) << r.body;
    ids.push_back(r.j()["id"].get<std::string>());
  }
  ASSERT_EQ(d.post("/v1/runs/" + ids[0] + "/cancel", "").status, 200);
  int queued_tasks = 0;  // what the old per-run scan counted: QUEUED tasks of QUEUED/RUNNING runs
  for (const auto& id : ids) {
    const json run = d.get("/v1/runs/" + id).j();
    if (run["state"] == "QUEUED" || run["state"] == "RUNNING")
      for (const auto& t : run["tasks"]) queued_tasks += t["state"] == "QUEUED";
  }
  EXPECT_EQ(queued_tasks, 12);

  EXPECT_EQ(d.get("/metrics").status, 403) << "a client token scraped /metrics";
  d.token = "";
  EXPECT_EQ(d.get("/metrics").status, 401);
  EXPECT_EQ(d.get("/healthz").status, 200);
  d.token = "tok-metrics";
  HttpResult m = d.get("/metrics");
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(metric(m.body, "omicsd_runs", "state=\"QUEUED\""), 4) << m.body;
  EXPECT_EQ(metric(m.body, "omicsd_runs", "state=\"CANCELED\""), 1) << m.body;
  EXPECT_EQ(metric(m.body, "omicsd_runs", "state=\"COMPLETE\""), 0) << m.body;
  EXPECT_EQ(metric(m.body, "omicsd_queue_depth"), queued_tasks) << m.body;
  EXPECT_EQ(d.get("/v1/runs").status, 403) << "the metrics scope is for /metrics only";
  d.token = "tok-admin";
  EXPECT_EQ(d.get("/metrics").status, 200);
}

INSTANTIATE_TEST_SUITE_P(Stores, ServeStoreTest, ::testing::Values("sqlite", "postgres"), store_param_name);

}  // namespace
}  // namespace omicsd::test
