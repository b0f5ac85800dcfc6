#pragma once
// Test harness for integration tests that start real `omicsd serve` / `omicsd worker` processes on
// loopback: a daemon handle with curl-based requests, a generic child process, free ports.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_support.hpp"

namespace omicsd::test {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

inline fs::path tiny() { return shared_data_dir() / "na12878-chr22-tiny"; }

inline std::string q(const std::string& s) {  // single-quote for the shell
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline uint16_t free_port() {
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

// Sends sig to the child and reaps it, waiting up to timeout_s (then SIGKILL); returns its exit
// status, 128 + the signal that ended it, or -1 (no child, or killed after the timeout). Sets pid to -1.
inline int signal_and_reap(pid_t& pid, int sig, int timeout_s) {
  if (pid <= 0) return -1;
  ::kill(pid, sig);
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  int st = 0;
  while (Clock::now() < deadline) {
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      pid = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &st, 0);
  pid = -1;
  return -1;
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

  // Starts `omicsd serve` with extra args on a free port; waits (bounded) for /readyz, not /healthz:
  // the daemon answers /healthz as soon as it listens, before its workers and catalog have started.
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
        if (get("/readyz").status == 200) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      kill_now(SIGKILL);
    }
    return false;
  }

  // Sends sig and waits (bounded) for the exit; returns the exit status (or -1).
  int kill_now(int sig, int timeout_s = 30) { return signal_and_reap(pid, sig, timeout_s); }

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

// Any child process started through /bin/sh (output appended to a log); SIGKILLed on destruction.
struct Process {
  pid_t pid = -1;
  fs::path log;

  Process() = default;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() { signal_and_wait(SIGKILL); }

  void start(const std::string& command, const fs::path& log_path) {
    log = log_path;
    const std::string cmd = "exec " + command + " >>" + q(log.string()) + " 2>&1";
    pid = ::fork();
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  bool running() {
    if (pid <= 0) return false;
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      pid = -1;
      return false;
    }
    return true;
  }
  // Sends sig and waits (bounded) for the exit; returns the exit status, 128 + signal, or -1.
  int signal_and_wait(int sig, int timeout_s = 30) { return signal_and_reap(pid, sig, timeout_s); }
};

// A copy of the shared NA12878 tiny data under an allowed root, and a data directory.
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
  // `--data-dir DATA` plus the job store options of the test (empty: the SQLite default).
  std::string data_args() const { return "--data-dir " + q(data.string()) + db_args; }
  std::string db_args;
};

// The same integration test against each job store: GetParam() is "sqlite" (the embedded default)
// or "postgres" (a fresh database on the test PostgreSQL server; skipped where none is installed,
// which scripts/test.sh turns into a failure).
struct ServeStoreTest : ServeFixture, ::testing::WithParamInterface<std::string> {
  std::unique_ptr<PostgresDatabase> pg;
  void SetUp() override {
    ServeFixture::SetUp();
    if (IsSkipped() || GetParam() != "postgres") return;
    pg = std::make_unique<PostgresDatabase>();
    if (pg->url.empty()) GTEST_SKIP() << kPostgresSkipMessage;
    db_args = " --db " + q(pg->url);
  }
};
inline std::string store_param_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

}  // namespace omicsd::test
