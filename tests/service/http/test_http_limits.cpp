// The HTTP server under descriptor exhaustion and connection floods (issue 12): the accept loop backs
// off on EMFILE instead of spinning, logs a bounded number of lines, recovers when descriptors are
// free again; --max-connections holds further connections in the backlog.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "service/http/http_server.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd::http {
namespace {

int open_fd_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
  }
  return n;  // includes ".", ".." and the DIR's own descriptor: a slight overestimate
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

bool connect_to(int fd, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

// Sends GET /healthz on a connected socket; the status line's code, or 0 when nothing came within
// timeout_ms.
int healthz_over(int fd, int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != ssize_t(req.size())) return 0;
  char buf[256];
  const ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
  if (n < 12) return 0;
  return std::atoi(std::string(buf + 9, 3).c_str());
}

double counter_sum(const std::string& text, const std::string& name) {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + "{", 0) == 0) sum += std::stod(line.substr(line.rfind(' ') + 1));
  return sum;
}

struct CapturedLog {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
  CapturedLog() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous); }
  int count(const std::string& needle) {
    spdlog::default_logger()->flush();
    const std::string s = out.str();
    int n = 0;
    for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
    return n;
  }
};

// Restores RLIMIT_NOFILE however the test ends.
struct FileLimit {
  rlimit saved{};
  FileLimit() { ::getrlimit(RLIMIT_NOFILE, &saved); }
  ~FileLimit() { restore(); }
  void lower_to(rlim_t n) {
    rlimit l = saved;
    l.rlim_cur = n;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &l), 0);
  }
  void restore() { ::setrlimit(RLIMIT_NOFILE, &saved); }
};

TEST(HttpServerLimits, OutOfDescriptorsTheAcceptLoopBacksOffAndRecovers) {
  CapturedLog log;
  Router router;
  add_builtin_routes(router, nullptr);
  HttpServerOptions o;
  o.port = 0;
  o.threads = 2;
  HttpServer server(o, std::move(router));
  server.start();

  // Sockets made now, connected once no descriptor is left: the kernel completes the handshakes, the
  // server's accept() fails with EMFILE.
  std::vector<int> clients;
  for (int i = 0; i < 40; ++i) clients.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  FileLimit limit;
  limit.lower_to(rlim_t(open_fd_count()));
  for (int fd : clients) ASSERT_TRUE(connect_to(fd, server.port()));
  const double cpu0 = cpu_seconds();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double cpu = cpu_seconds() - cpu0;
  const double errors = counter_sum(server.metrics()->render(), "omicsd_http_accept_errors_total");
  limit.restore();

  EXPECT_GT(errors, 0) << "accept() never failed: the test did not exhaust descriptors";
  EXPECT_LT(errors, 60) << "the accept loop retried without backing off";
  EXPECT_LT(cpu, 0.5) << "the accept loop spun";
  EXPECT_LE(log.count("http accept failed"), 1) << log.out.str().substr(0, 2000);

  // Descriptors are back: the waiting connections are accepted (within the 1 s back-off) and served.
  EXPECT_EQ(healthz_over(clients[0], 5000), 200);
  EXPECT_EQ(healthz_over(clients[39], 5000), 200);
  for (int fd : clients) ::close(fd);
  server.stop();
}

TEST(HttpServerLimits, MaxConnectionsHoldsFurtherConnectionsInTheBacklog) {
  Router router;
  add_builtin_routes(router, nullptr);
  HttpServerOptions o;
  o.port = 0;
  o.max_connections = 2;
  HttpServer server(o, std::move(router));
  server.start();
  EXPECT_EQ(server.max_connections(), 2u);
  int a = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
      b = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
      c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_TRUE(connect_to(a, server.port()));
  ASSERT_TRUE(connect_to(b, server.port()));
  EXPECT_EQ(healthz_over(a, 3000), 200);
  EXPECT_EQ(healthz_over(b, 3000), 200);
  ASSERT_TRUE(connect_to(c, server.port()));  // the kernel's backlog takes it ...
  EXPECT_EQ(healthz_over(c, 500), 0);         // ... the server does not, while two are open
  EXPECT_EQ(server.open_connections(), 2u);
  ::close(a);  // a slot frees: the waiting connection is accepted and answered
  timeval tv{5, 0};
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  const ssize_t n = ::recv(c, buf, sizeof buf - 1, 0);
  ASSERT_GT(n, 12);
  EXPECT_EQ(std::string(buf + 9, 3), "200");
  ::close(b);
  ::close(c);
  server.stop();
}

// Issue 12, item 5: handlers run off the I/O threads, so slow ones (exports, cohort queries, metrics
// scrapes) do not hold up /healthz. With handler_threads = 0 (the old behaviour) they do.
double healthz_seconds_behind_slow_handlers(int handler_threads) {
  Router router;
  add_builtin_routes(router, nullptr);
  router.get("/slow", [](Request&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    return Response::text("done\n");
  });
  HttpServerOptions o;
  o.port = 0;
  o.threads = 1;
  o.handler_threads = handler_threads;
  HttpServer server(o, std::move(router));
  server.start();
  std::vector<int> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_TRUE(connect_to(slow.back(), server.port()));
    const std::string req = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    EXPECT_EQ(::send(slow.back(), req.data(), req.size(), MSG_NOSIGNAL), ssize_t(req.size()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the slow ones are being handled
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_TRUE(connect_to(fd, server.port()));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(healthz_over(fd, 10'000), 200);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int s : slow) {
    timeval tv{10, 0};
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[128];
    EXPECT_GT(::recv(s, buf, sizeof buf, 0), 12) << "a slow request was not answered";
    ::close(s);
  }
  ::close(fd);
  server.stop();
  return secs;
}

TEST(HttpServerLimits, HealthzAnswersAtOnceWhileSlowHandlersRun) {
  EXPECT_LT(healthz_seconds_behind_slow_handlers(4), 0.3);
  // The same with handlers on the single I/O thread: /healthz waits behind them (what the pool fixes).
  EXPECT_GT(healthz_seconds_behind_slow_handlers(0), 1.0);
}

// Issue 12, item 7: TLS 1.2 only with forward-secret AEAD suites (Mozilla intermediate); a client
// offering only CBC/SHA-1 or static-RSA suites gets no handshake.
TEST(HttpServerLimits, TlsOffersOnlyTheIntermediateProfile) {
  test::TempDir dir;
  const std::string cert = (dir.path / "c.crt").string(), key = (dir.path / "c.key").string();
  std::string log;
  ASSERT_EQ(
      test::run_command("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout '" +
                            key + "' -out '" + cert + "'",
                        &log),
      0)
      << log;
  Router router;
  add_builtin_routes(router, nullptr);
  HttpServerOptions o;
  o.port = 0;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  HttpServer server(o, std::move(router));
  server.start();
  auto handshake = [&](const std::string& args) {
    std::string out;
    const int rc =
        test::run_command("timeout 20 openssl s_client -connect 127.0.0.1:" + std::to_string(server.port()) +
                              " " + args + " </dev/null 2>&1",
                          &out);
    return std::make_pair(rc, out);
  };
  for (const char* weak : {"AES128-SHA", "AES256-SHA256", "ECDHE-RSA-AES128-SHA", "AES128-GCM-SHA256"}) {
    const auto [rc, out] = handshake(std::string("-tls1_2 -cipher ") + weak);
    EXPECT_NE(rc, 0) << weak << " was accepted:\n" << out;
  }
  const auto [rc, out] = handshake("-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("ECDHE-RSA-AES128-GCM-SHA256"), std::string::npos) << out;
  const auto [rc13, out13] = handshake("-tls1_3");
  EXPECT_EQ(rc13, 0) << out13;
  const auto [rc11, out11] = handshake("-tls1_1");
  EXPECT_NE(rc11, 0) << out11;
  server.stop();
}

}  // namespace
}  // namespace omicsd::http
