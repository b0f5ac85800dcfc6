// Integration tests of `omicsd serve` over loopback with real processes: a germline run on the shared
// NA12878 data through the in-process worker, idempotency, call caching, bad inputs, auth, and a
// kill -9 of the daemon under concurrent submissions.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "tests/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

fs::path tiny() { return shared_data_dir() / "na12878-chr22-tiny"; }

std::string q(const std::string& s) {  // single-quote for the shell
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

struct HttpResult {
  int status = 0;
  std::string body;
  json j() const {
    json v = json::parse(body, nullptr, false);
    return v;
  }
};

// One daemon process; killed (SIGKILL) in the destructor if still running.
struct Daemon {
  pid_t pid = -1;
  uint16_t port = 0;
  fs::path log;
  std::string token;  // sent as Bearer when set

  ~Daemon() { kill_now(SIGKILL); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }

  // Starts `omicsd serve` with extra args on a free port; waits (bounded) for /healthz.
  bool start(const std::string& args, const fs::path& log_path) {
    log = log_path;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port = free_port();
      const std::string cmd = "exec " + omicsd_binary() +
                              " serve --listen 127.0.0.1:" + std::to_string(port) + " " + args + " >>" +
                              q(log.string()) + " 2>&1";
      pid = ::fork();
      if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
      }
      const auto deadline = Clock::now() + std::chrono::seconds(30);
      while (Clock::now() < deadline) {
        int st = 0;
        if (::waitpid(pid, &st, WNOHANG) == pid) {
          pid = -1;
          break;  // exited (port taken?): retry
        }
        if (get("/healthz").status == 200) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      kill_now(SIGKILL);
    }
    return false;
  }

  // Sends sig and waits (bounded) for the exit; returns the exit status (or -1).
  int kill_now(int sig, int timeout_s = 30) {
    if (pid <= 0) return -1;
    ::kill(pid, sig);
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
    int st = 0;
    while (Clock::now() < deadline) {
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

  HttpResult request(const std::string& method, const std::string& path, const std::string& body = "",
                     const std::vector<std::string>& headers = {}, const std::string& out_file = "") const {
    TempDir t;
    const fs::path body_file = t.path / "body";
    const fs::path resp_file = out_file.empty() ? t.path / "resp" : fs::path(out_file);
    std::string cmd = "curl -s -m 20 -o " + q(resp_file.string()) + " -w '%{http_code}' -X " + method;
    if (!token.empty()) cmd += " -H " + q("Authorization: Bearer " + token);
    for (const auto& h : headers) cmd += " -H " + q(h);
    if (!body.empty() || method == "POST") {
      write_file(body_file, body);
      cmd += " -H 'Content-Type: application/json' --data-binary @" + q(body_file.string());
    }
    cmd += " " + q(url() + path);
    std::string out;
    run_command(cmd, &out);
    HttpResult r;
    try {
      r.status = std::stoi(out);
    } catch (...) {
      r.status = 0;
    }
    if (out_file.empty()) r.body = read_file(resp_file);
    return r;
  }
  HttpResult get(const std::string& path) const { return request("GET", path); }
  HttpResult post(const std::string& path, const std::string& body,
                  const std::vector<std::string>& headers = {}) const {
    return request("POST", path, body, headers);
  }

  // Polls the run until it is terminal (bounded); returns the last run JSON.
  json wait_run(const std::string& id, int timeout_s = 120) const {
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
    json last;
    while (Clock::now() < deadline) {
      HttpResult r = get("/v1/runs/" + id);
      if (r.status == 200) {
        last = r.j();
        const std::string s = last.value("state", "");
        if (s == "COMPLETE" || s == "FAILED" || s == "CANCELED") return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return last;
  }
};

struct ServeFixture : ::testing::Test {
  TempDir tmp;
  fs::path root, data, ref, bam;
  void SetUp() override {
    if (!fs::exists(tiny() / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny();
    root = tmp.path / "root";
    data = tmp.path / "data";
    fs::create_directories(root);
    for (const char* f : {"q.fa", "q.fa.fai", "NA12878.chr22.tiny.bam", "NA12878.chr22.tiny.bam.bai"})
      if (fs::exists(tiny() / f)) fs::copy_file(tiny() / f, root / f);
    ref = root / "q.fa";
    bam = root / "NA12878.chr22.tiny.bam";
  }
  std::string germline_body(const std::string& sample = "NA12878") const {
    return json{{"workflow", "germline"},
                {"sample", sample},
                {"inputs", {{"reference", ref.string()}, {"reads", json::array({"file://" + bam.string()})}}},
                {"parameters", {{"threads", 2}}}}
        .dump();
  }
  std::string log_of(const Daemon& d) const { return read_file(d.log); }
};

TEST_F(ServeFixture, GermlineRunIdempotencyCacheAndBadInputs) {
  Daemon d;
  ASSERT_TRUE(
      d.start("--data-dir " + q(data.string()) + " --workers 1 --threads 2 --allow-root " + q(root.string()),
              tmp.path / "serve.log"))
      << log_of(d);
  EXPECT_EQ(d.get("/readyz").status, 200);

  // Submit twice with one Idempotency-Key: one run.
  HttpResult a = d.post("/v1/runs", germline_body(), {"Idempotency-Key: key-1"});
  ASSERT_EQ(a.status, 201) << a.body;
  const std::string id = a.j().at("id").get<std::string>();
  EXPECT_EQ(a.j().at("state"), "QUEUED");
  EXPECT_EQ(a.j().at("tasks").size(), 3u);
  HttpResult a2 = d.post("/v1/runs", germline_body(), {"Idempotency-Key: key-1"});
  ASSERT_EQ(a2.status, 200) << a2.body;
  EXPECT_EQ(a2.j().at("id"), id);

  const auto t0 = Clock::now();
  json run = d.wait_run(id);
  const double first_s = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_EQ(run.value("state", ""), "COMPLETE") << run.dump(2) << "\n" << log_of(d);
  for (const char* o : {"bam", "bai", "vcf", "tbi", "qc"}) EXPECT_TRUE(run["outputs"].contains(o)) << o;
  for (const auto& t : run["tasks"]) {
    EXPECT_EQ(t["state"], "COMPLETE");
    EXPECT_FALSE(t["cache_hit"].get<bool>());
    EXPECT_FALSE(t["worker_id"].get<std::string>().empty());
  }
  const json& prov = run["provenance"];
  EXPECT_TRUE(prov.contains("engine")) << prov.dump(2);
  EXPECT_TRUE(prov.contains("reference")) << prov.dump(2);
  EXPECT_TRUE(prov.contains("input_digests")) << prov.dump(2);
  EXPECT_EQ(prov["tasks"].size(), 3u);

  // The VCF has every truth SNV.
  const fs::path vcf = tmp.path / "out.vcf.gz";
  ASSERT_EQ(d.request("GET", "/v1/runs/" + id + "/outputs/vcf", "", {}, vcf.string()).status, 200);
  const std::set<std::string> truth = vcf_snvs(tiny() / "truth.vcf.gz");
  EXPECT_EQ(truth.size(), 14u);
  const std::set<std::string> got = vcf_snvs(vcf);
  for (const auto& s : truth) EXPECT_TRUE(got.count(s)) << "missing truth SNV " << s;
  // Range request on an output.
  HttpResult part = d.request("GET", "/v1/runs/" + id + "/outputs/qc", "", {"Range: bytes=0-0"});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "{");

  // Same inputs, new key: a new run, all cache hits.
  HttpResult b = d.post("/v1/runs", germline_body(), {"Idempotency-Key: key-2"});
  ASSERT_EQ(b.status, 201) << b.body;
  const std::string id2 = b.j().at("id").get<std::string>();
  EXPECT_NE(id2, id);
  const auto t1 = Clock::now();
  json run2 = d.wait_run(id2);
  const double second_s = std::chrono::duration<double>(Clock::now() - t1).count();
  ASSERT_EQ(run2.value("state", ""), "COMPLETE") << run2.dump(2);
  for (const auto& t : run2["tasks"]) EXPECT_TRUE(t["cache_hit"].get<bool>()) << t.dump();
  EXPECT_EQ(run2["outputs"], run["outputs"]);
  std::printf("first run %.2f s, cached run %.2f s\n", first_s, second_s);

  // Listing, logs, metrics, OpenAPI.
  HttpResult list = d.get("/v1/runs?state=COMPLETE&page_size=1");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.j()["runs"].size(), 1u);
  EXPECT_TRUE(list.j()["next_page_token"].is_string());
  EXPECT_EQ(d.get("/v1/runs/" + id + "/logs").status, 200);
  HttpResult metrics = d.get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  for (const char* m :
       {"omicsd_queue_depth 0", "omicsd_runs{state=\"COMPLETE\"} 2", "omicsd_cache_hits_total 3",
        "omicsd_lease_expiries_total", "omicsd_task_duration_seconds_bucket"})
    EXPECT_NE(metrics.body.find(m), std::string::npos) << m << "\n" << metrics.body;
  HttpResult oa = d.get("/v1/openapi.json");
  ASSERT_EQ(oa.status, 200);
  EXPECT_EQ(oa.j(), json::parse(read_file(fs::path(OMICSD_SOURCE_DIR) / "docs" / "openapi.json")));
  EXPECT_EQ(oa.body, read_file(fs::path(OMICSD_SOURCE_DIR) / "docs" / "openapi.json"));

  // Bad inputs: clear 4xx JSON errors.
  auto expect_error = [&](const HttpResult& r, int status, const std::string& what) {
    EXPECT_EQ(r.status, status) << what << ": " << r.body;
    json e = r.j();
    EXPECT_TRUE(e.contains("error") && e["error"].contains("message")) << what << ": " << r.body;
  };
  expect_error(d.post("/v1/runs", "{\"workflow\": \"germline\", "), 400, "malformed JSON");
  expect_error(
      d.post("/v1/runs", json{{"workflow", "rnaseq"}, {"inputs", {{"reference", ref.string()}}}}.dump()), 400,
      "unknown workflow");
  expect_error(
      d.post("/v1/runs", json{{"workflow", "germline"}, {"inputs", {{"reference", ref.string()}}}}.dump()),
      400, "missing reads");
  for (const std::string& bad :
       {root.string() + "/../etc/passwd", std::string("/etc/passwd"), std::string("file:///etc/passwd"),
        std::string("../q.fa"), std::string("sha256:" + std::string(64, '0'))})
    expect_error(
        d.post("/v1/runs", json{{"workflow", "germline"},
                                {"inputs", {{"reference", bad}, {"reads", json::array({bam.string()})}}}}
                               .dump()),
        400, "bad URI " + bad);
  expect_error(d.get("/v1/runs/run-0000000000000000"), 404, "unknown run");
  expect_error(d.get("/v1/runs/" + id + "/outputs/nope"), 404, "unknown output");
  expect_error(d.post("/v1/runs/" + id + "/cancel", ""), 409, "cancel a finished run");
  EXPECT_EQ(d.post("/v1/tasks/lease", json{{"worker_id", "w-test"}}.dump()).status, 204);
  EXPECT_EQ(d.get("/healthz").status, 200);

  // Graceful shutdown.
  EXPECT_EQ(d.kill_now(SIGTERM), 0) << log_of(d);
}

TEST_F(ServeFixture, TokensAndScopes) {
  write_file(tmp.path / "tokens", "# test tokens\ntok-client client\ntok-worker worker\ntok-admin admin\n");
  Daemon d;
  ASSERT_TRUE(d.start("--data-dir " + q(data.string()) + " --workers 0 --allow-root " + q(root.string()) +
                          " --token-file " + q((tmp.path / "tokens").string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  EXPECT_EQ(d.get("/v1/runs").status, 401);
  d.token = "wrong";
  HttpResult r = d.post("/v1/runs", germline_body());
  EXPECT_EQ(r.status, 401) << r.body;
  d.token = "tok-worker";
  EXPECT_EQ(d.post("/v1/runs", germline_body()).status, 403);
  d.token = "tok-client";
  EXPECT_EQ(d.post("/v1/tasks/lease", json{{"worker_id", "w"}}.dump()).status, 403);
  HttpResult ok = d.post("/v1/runs", germline_body());
  ASSERT_EQ(ok.status, 201) << ok.body;
  d.token = "tok-worker";
  HttpResult lease = d.post("/v1/tasks/lease", json{{"worker_id", "w1"}, {"lease_seconds", 30}}.dump());
  ASSERT_EQ(lease.status, 200) << lease.body;
  json task = lease.j()["task"];
  EXPECT_EQ(task["kind"], "align");
  EXPECT_TRUE(task["inputs"].contains("reads"));
  // Task ids hold a '/': percent-encode it.
  std::string tid = task["id"].get<std::string>();
  tid.replace(tid.find('/'), 1, "%2F");
  EXPECT_EQ(d.post("/v1/tasks/" + tid + "/heartbeat", json{{"lease_token", "stale"}}.dump()).status, 409);
  EXPECT_EQ(
      d.post("/v1/tasks/" + tid + "/heartbeat", json{{"lease_token", task["lease_token"]}}.dump()).status,
      200);
  HttpResult fail =
      d.post("/v1/tasks/" + tid + "/fail",
             json{{"lease_token", task["lease_token"]}, {"error", "boom"}, {"retryable", false}}.dump());
  EXPECT_EQ(fail.status, 200) << fail.body;
  d.token = "tok-admin";
  json run = d.get("/v1/runs/" + ok.j()["id"].get<std::string>()).j();
  EXPECT_EQ(run["state"], "FAILED") << run.dump(2);
  d.token = "";
  EXPECT_EQ(d.get("/healthz").status, 200);
}

TEST_F(ServeFixture, KillDashNineUnderConcurrentSubmissionsLosesNoAcknowledgedRun) {
  Daemon d;
  const std::string args = "--data-dir " + q(data.string()) + " --workers 0 --allow-root " + q(root.string());
  ASSERT_TRUE(d.start(args, tmp.path / "serve.log")) << log_of(d);
  const fs::path body = tmp.path / "body.json";
  write_file(body, germline_body());
  const fs::path out = tmp.path / "curl";
  fs::create_directories(out);
  // 10 concurrent submissions, then kill -9 while they are in flight.
  std::string script =
      "for i in $(seq 1 30); do curl -s -m 10 -o " + q(out.string()) + "/body$i -w '%{http_code}' -X POST " +
      "-H 'Content-Type: application/json' -H \"Idempotency-Key: crash-$i\" --data-binary @" +
      q(body.string()) + " " + d.url() + "/v1/runs > " + q(out.string()) + "/code$i & done; " +
      "sleep 0.15; kill -9 " + std::to_string(d.pid) + "; wait";
  std::string log;
  run_command("bash -c " + q(script), &log);
  d.kill_now(SIGKILL);
  std::vector<std::pair<int, std::string>> acked;  // (i, run id)
  int failed = 0;
  for (int i = 1; i <= 30; ++i) {
    const std::string code = read_file(out / ("code" + std::to_string(i)));
    if (code == "201" || code == "200") {
      json j = json::parse(read_file(out / ("body" + std::to_string(i))), nullptr, false);
      ASSERT_TRUE(j.contains("id")) << j.dump();
      acked.emplace_back(i, j["id"].get<std::string>());
    } else {
      ++failed;
    }
  }
  std::printf("%zu submissions acknowledged before kill -9, %d not\n", acked.size(), failed);

  Daemon d2;
  ASSERT_TRUE(d2.start(args, tmp.path / "serve2.log")) << read_file(tmp.path / "serve2.log");
  for (const auto& [i, id] : acked) {
    HttpResult r = d2.get("/v1/runs/" + id);
    EXPECT_EQ(r.status, 200) << "acknowledged run " << id << " lost: " << r.body;
    // The same key again answers with the same run.
    HttpResult again = d2.post("/v1/runs", germline_body(), {"Idempotency-Key: crash-" + std::to_string(i)});
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(again.j().value("id", ""), id);
  }
  EXPECT_EQ(d2.get("/healthz").status, 200);
}

}  // namespace
}  // namespace omicsd::test
