// HTTP layer: router, auth, metrics and the Beast server, over loopback (127.0.0.1) only.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "service/http/auth.hpp"
#include "service/http/http_router.hpp"
#include "service/http/http_server.hpp"
#include "tests/support/test_support.hpp"

namespace fs = std::filesystem;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using namespace omicsd::http;
using omicsd::Metrics;
using Clock = std::chrono::steady_clock;

namespace {

// Every blocking read in these tests gives up after a few seconds instead of hanging.
void set_recv_timeout(tcp::socket& s, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

struct Reply {
  int status = 0;
  bhttp::fields headers;
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
  std::string header(const char* name) const { return std::string(headers[name]); }
};

class Client {
 public:
  explicit Client(std::uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    set_recv_timeout(socket_, 10);
  }
  Reply send(const std::string& method, const std::string& target, const std::string& body = "",
             std::vector<std::pair<std::string, std::string>> headers = {}) {
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.method_string(method);
    req.set(bhttp::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    bhttp::write(socket_, req);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 << 20);
    if (method == "HEAD") parser.skip(true);
    bhttp::read(socket_, buffer_, parser);
    Reply r;
    auto& res = parser.get();
    r.status = res.result_int();
    r.headers = res.base();
    r.body = res.body();
    return r;
  }
  tcp::socket& socket() { return socket_; }

 private:
  net::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

Reply fetch(std::uint16_t port, const std::string& method, const std::string& target,
            const std::string& body = "", std::vector<std::pair<std::string, std::string>> headers = {}) {
  Client c(port);
  return c.send(method, target, body, std::move(headers));
}

// Sends raw bytes, then reads until the server closes (or the receive timeout).
std::string raw_exchange(std::uint16_t port, const std::string& data) {
  net::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  set_recv_timeout(s, 10);
  net::write(s, net::buffer(data));
  std::string out;
  char buf[4096];
  boost::system::error_code ec;
  for (;;) {
    auto n = s.read_some(net::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("omicsd_http_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    for (int i = 0; i < 1000; ++i) file_content_.push_back(static_cast<char>('A' + (i * 7) % 26));
    std::ofstream(dir_ / "out.bin", std::ios::binary) << file_content_;
    std::ofstream(dir_ / "tokens.txt") << "# test tokens\n"
                                          "tok-client client\n"
                                          "tok-worker worker   # a worker\n"
                                          "\n"
                                          "tok-admin admin\n"
                                          "tok-both client,worker\n";
  }
  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void start(HttpServerOptions opts = {}) {
    Router router;
    router.get("/v1/runs/{id}", [](Request& r) {
      return Response::json({{"id", r.param("id")}, {"query", r.query}, {"route", r.route}});
    });
    router.get("/v1/runs/stats", [](Request&) { return Response::json({{"stats", true}}); });
    router.get("/v1/runs/{id}/outputs/{name}", [this](Request& r) {
      if (r.param("name") == "missing") return Response::from_file(dir_ / "does-not-exist");
      return Response::from_file(dir_ / "out.bin");
    });
    router.post("/v1/echo", [](Request& r) {
      auto j = parse_json_body(r);
      return Response::json({{"echo", j}}, 201);
    });
    router.get("/boom", [](Request&) -> Response { throw std::runtime_error("kaboom"); });
    router.get("/unprocessable", [](Request&) -> Response { throw HttpError(422, "bad field x"); });
    router.post(
        "/v1/runs",
        [](Request&) {
          return Response::json({{"ok", true}}, 201);
        },
        Scope::client);
    router.post(
        "/v1/tasks/lease",
        [](Request&) {
          return Response::json({{"ok", true}});
        },
        Scope::worker);
    router.get(
        "/v1/admin",
        [](Request&) {
          return Response::json({{"ok", true}});
        },
        Scope::admin);
    router.set_auth(std::make_shared<TokenStore>(TokenStore::load_file(dir_ / "tokens.txt")));
    opts.address = "127.0.0.1";
    opts.port = 0;
    opts.read_timeout = std::chrono::milliseconds(1000);
    opts.metrics = std::make_shared<Metrics>();
    add_builtin_routes(router, opts.metrics, [this] { return ready_.load(); });
    server_ = std::make_unique<HttpServer>(opts, std::move(router));
    server_->start();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  fs::path dir_;
  std::string file_content_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
  std::atomic<bool> ready_{false};
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pure units

TEST(HttpRouterUnit, PercentDecodeAndQuery) {
  EXPECT_EQ(percent_decode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("bad%zz%4"), "bad%zz%4");
  auto q = parse_query("state=RUNNING&page_token=a%3Db&flag&x=1&x=2&&name=hello+world");
  EXPECT_EQ(q["state"], "RUNNING");
  EXPECT_EQ(q["page_token"], "a=b");
  EXPECT_EQ(q["flag"], "");
  EXPECT_EQ(q["x"], "2");
  EXPECT_EQ(q["name"], "hello world");
}

TEST(HttpRouterUnit, DispatchWithoutServer) {
  Router router;
  router.get("/v1/runs/{id}/outputs/{name}",
             [](Request& r) { return Response::text(r.param("id") + "|" + r.param("name")); });
  Request req;
  req.method = "GET";
  req.path = "/v1/runs/r%2F1/outputs/x.vcf";
  auto res = router.dispatch(req);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "r/1|x.vcf");
  req.method = "POST";
  res = router.dispatch(req);
  EXPECT_EQ(res.status, 405);
  req.path = "/v1/runs/r1/outputs";
  EXPECT_EQ(router.dispatch(req).status, 404);
}

TEST(HttpAuthUnit, TokenFileParsing) {
  auto store = TokenStore::parse("# c\n a client\nb worker,client\nc admin # root\n\n");
  EXPECT_TRUE(store.enabled());
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.check("a", Scope::client), AuthResult::ok);
  EXPECT_EQ(store.check("a", Scope::worker), AuthResult::forbidden);
  EXPECT_EQ(store.check("b", Scope::worker), AuthResult::ok);
  EXPECT_EQ(store.check("c", Scope::worker), AuthResult::ok);  // admin implies all
  EXPECT_EQ(store.check("zzz", Scope::client), AuthResult::unauthenticated);
  EXPECT_EQ(store.check("", Scope::client), AuthResult::unauthenticated);
  EXPECT_EQ(store.check("", Scope::none), AuthResult::ok);
  EXPECT_THROW(TokenStore::parse("a superuser\n"), std::runtime_error);
  EXPECT_THROW(TokenStore::parse("lonely\n"), std::runtime_error);
  EXPECT_THROW(TokenStore::load_file("/nonexistent/tokens"), std::runtime_error);
  TokenStore off;
  EXPECT_FALSE(off.enabled());
  EXPECT_EQ(off.check("", Scope::admin), AuthResult::ok);
}

// ---------------------------------------------------------------------------------------------
// Over loopback

TEST_F(HttpServerTest, RoutingWithParamsAndQuery) {
  start();
  auto r = fetch(port_, "GET", "/v1/runs/run%201?state=RUNNING&tag=a%2Bb+c");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.json();
  EXPECT_EQ(j["id"], "run 1");
  EXPECT_EQ(j["query"]["state"], "RUNNING");
  EXPECT_EQ(j["query"]["tag"], "a+b c");
  EXPECT_EQ(j["route"], "/v1/runs/{id}");
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(fetch(port_, "GET", "/v1/runs/stats").json()["stats"], true);  // literal beats {id}
  EXPECT_EQ(fetch(port_, "GET", "/healthz").body, "ok\n");
}

TEST_F(HttpServerTest, NotFoundAndMethodNotAllowed) {
  start();
  auto r = fetch(port_, "GET", "/v2/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["error"]["code"], 404);
  EXPECT_FALSE(r.json()["error"]["message"].get<std::string>().empty());
  r = fetch(port_, "DELETE", "/v1/runs/abc");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.json()["error"]["code"], 405);
  EXPECT_NE(r.header("Allow").find("GET"), std::string::npos);
}

TEST_F(HttpServerTest, HandlerExceptionsBecomeJsonErrorsAndServerKeepsServing) {
  start();
  Client c(port_);
  auto r = c.send("GET", "/boom");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.json()["error"]["code"], 500);
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("kaboom"), std::string::npos);
  r = c.send("GET", "/unprocessable");  // same connection still usable
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.json()["error"]["message"], "bad field x");
  EXPECT_EQ(fetch(port_, "GET", "/healthz").status, 200);
}

TEST_F(HttpServerTest, MalformedJsonBodyIs400) {
  start();
  auto r = fetch(port_, "POST", "/v1/echo", "{\"a\": [1, 2", {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("malformed JSON"), std::string::npos);
  EXPECT_EQ(fetch(port_, "POST", "/v1/echo", "").status, 400);
  r = fetch(port_, "POST", "/v1/echo", "{\"a\": [1, 2]}");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.json()["echo"]["a"][1], 2);
}

TEST_F(HttpServerTest, OversizedBodyIs413) {
  HttpServerOptions opts;
  opts.body_limit = 64 * 1024;
  start(opts);
  // Whole body sent: the server answers 413 and closes.
  auto r = fetch(port_, "POST", "/v1/echo", std::string(200 * 1024, 'x'));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.json()["error"]["code"], 413);
  // Only the header announcing a huge body.
  auto raw = raw_exchange(port_, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n{");
  EXPECT_EQ(raw.rfind("HTTP/1.1 413", 0), 0u) << raw;
  // Just under the limit is fine.
  std::string ok_body = "\"" + std::string(60 * 1024, 'y') + "\"";
  EXPECT_EQ(fetch(port_, "POST", "/v1/echo", ok_body).status, 201);
}

TEST_F(HttpServerTest, DefaultBodyLimitIsOneMiB) {
  start();
  std::string body = "\"" + std::string((1 << 20) + 10, 'z') + "\"";
  EXPECT_EQ(fetch(port_, "POST", "/v1/echo", body).status, 413);
  body = "\"" + std::string((1 << 20) - 10, 'z') + "\"";
  EXPECT_EQ(fetch(port_, "POST", "/v1/echo", body).status, 201);
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  start();
  auto raw = raw_exchange(port_, "THIS IS NOT HTTP\r\n\r\n");
  EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << raw;
  EXPECT_NE(raw.find("\"code\":400"), std::string::npos) << raw;
  raw = raw_exchange(port_, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n");
  EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << raw;
  raw = raw_exchange(
      port_, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + "\r\n\r\n");  // TLS hello
  EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << raw;
  EXPECT_EQ(fetch(port_, "GET", "/healthz").status, 200);
}

TEST_F(HttpServerTest, SlowClientIsDisconnectedWhileOthersAreServed) {
  start();  // read timeout 1 s
  net::io_context ioc;
  tcp::socket slow(ioc);
  slow.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
  set_recv_timeout(slow, 10);
  auto t0 = Clock::now();
  net::write(slow, net::buffer(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")));
  // Other clients are served meanwhile.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fetch(port_, "GET", "/healthz").status, 200);
  char buf[256];
  boost::system::error_code ec;
  std::size_t n = slow.read_some(net::buffer(buf), ec);
  auto secs = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset) << ec.message();
  EXPECT_GE(secs, 0.9);
  EXPECT_LT(secs, 5.0);
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  start();
  Client c(port_);
  auto local = c.socket().local_endpoint();
  auto r1 = c.send("GET", "/v1/runs/a");
  auto r2 = c.send("POST", "/v1/echo", "[1]");
  auto r3 = c.send("GET", "/v1/runs/b");
  EXPECT_EQ(r1.status, 200);
  EXPECT_EQ(r2.status, 201);
  EXPECT_EQ(r3.json()["id"], "b");
  EXPECT_EQ(c.socket().local_endpoint(), local);
  EXPECT_NE(r1.header("Connection"), "close");
  // Connection: close is honoured.
  auto r4 = c.send("GET", "/healthz", "", {{"Connection", "close"}});
  EXPECT_EQ(r4.status, 200);
  char b;
  boost::system::error_code ec;
  c.socket().read_some(net::buffer(&b, 1), ec);
  EXPECT_EQ(ec, net::error::eof);
}

TEST_F(HttpServerTest, RangeRequestsOnFiles) {
  start();
  const std::string url = "/v1/runs/r1/outputs/out.bin";
  auto r = fetch(port_, "GET", url);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, file_content_);
  EXPECT_EQ(r.header("Accept-Ranges"), "bytes");
  EXPECT_EQ(r.header("Content-Type"), "application/octet-stream");

  Client c(port_);  // ranges on one keep-alive connection
  r = c.send("GET", url, "", {{"Range", "bytes=10-19"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.header("Content-Range"), "bytes 10-19/1000");
  EXPECT_EQ(r.body, file_content_.substr(10, 10));
  r = c.send("GET", url, "", {{"Range", "bytes=995-"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, file_content_.substr(995));
  r = c.send("GET", url, "", {{"Range", "bytes=-7"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.header("Content-Range"), "bytes 993-999/1000");
  EXPECT_EQ(r.body, file_content_.substr(993));
  r = c.send("GET", url, "", {{"Range", "bytes=990-5000"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, file_content_.substr(990));
  r = c.send("GET", url, "", {{"Range", "bytes=1000-1001"}});
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.header("Content-Range"), "bytes */1000");
  EXPECT_EQ(r.json()["error"]["code"], 416);
  r = c.send("GET", url, "", {{"Range", "bytes=0-0"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, file_content_.substr(0, 1));
  r = c.send("HEAD", url);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Length"), "1000");
  EXPECT_TRUE(r.body.empty());
  r = c.send("GET", "/v1/runs/r1/outputs/missing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["error"]["code"], 404);
}

TEST_F(HttpServerTest, BearerTokenScopes) {
  start();
  auto r = fetch(port_, "POST", "/v1/runs", "{}");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.json()["error"]["code"], 401);
  EXPECT_EQ(r.header("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(fetch(port_, "POST", "/v1/runs", "{}", {{"Authorization", "Bearer nope"}}).status, 401);
  r = fetch(port_, "POST", "/v1/runs", "{}", {{"Authorization", "Bearer tok-worker"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.json()["error"]["code"], 403);
  EXPECT_EQ(fetch(port_, "POST", "/v1/runs", "{}", {{"Authorization", "Bearer tok-client"}}).status, 201);
  EXPECT_EQ(fetch(port_, "POST", "/v1/runs", "{}", {{"Authorization", "bearer tok-both"}}).status, 201);
  EXPECT_EQ(fetch(port_, "POST", "/v1/tasks/lease", "{}", {{"Authorization", "Bearer tok-worker"}}).status,
            200);
  EXPECT_EQ(fetch(port_, "POST", "/v1/tasks/lease", "{}", {{"Authorization", "Bearer tok-admin"}}).status,
            200);
  EXPECT_EQ(fetch(port_, "GET", "/v1/admin", "", {{"Authorization", "Bearer tok-client"}}).status, 403);
  EXPECT_EQ(fetch(port_, "GET", "/v1/admin", "", {{"Authorization", "Bearer tok-admin"}}).status, 200);
  EXPECT_EQ(fetch(port_, "GET", "/healthz").status, 200);  // unscoped routes stay open
}

TEST_F(HttpServerTest, AuthOffWithoutTokenFile) {
  Router router;
  router.post(
      "/v1/runs",
      [](Request&) {
        return Response::json({{"ok", true}}, 201);
      },
      Scope::client);
  HttpServer server({}, std::move(router));
  server.start();
  EXPECT_EQ(fetch(server.port(), "POST", "/v1/runs", "{}").status, 201);
  server.stop();
}

TEST_F(HttpServerTest, ReadinessAndMetrics) {
  start();
  EXPECT_EQ(fetch(port_, "GET", "/readyz").status, 503);
  ready_ = true;
  EXPECT_EQ(fetch(port_, "GET", "/readyz").status, 200);
  fetch(port_, "GET", "/v2/nothing");
  // The server records a request once its response is written, so poll briefly.
  Reply r;
  for (auto deadline = Clock::now() + std::chrono::seconds(3); Clock::now() < deadline;) {
    r = fetch(port_, "GET", "/metrics");
    if (r.body.find("omicsd_http_requests_total{code=\"404\",method=\"GET\"} 1") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.header("Content-Type").find("text/plain"), std::string::npos);
  EXPECT_NE(r.body.find("# TYPE omicsd_http_requests_total counter"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("omicsd_http_requests_total{code=\"200\",method=\"GET\"} "), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("omicsd_http_requests_total{code=\"404\",method=\"GET\"} 1"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("omicsd_http_requests_total{code=\"503\",method=\"GET\"} 1"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("# TYPE omicsd_http_request_duration_seconds histogram"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("omicsd_http_request_duration_seconds_bucket{le=\"+Inf\"} "), std::string::npos)
      << r.body;
}

// The byte counters are exactly what crossed the connection: a body posted, a file body sent back.
TEST_F(HttpServerTest, MetricsCountTheRequestAndResponseBytes) {
  start();
  const std::string body = "{\"a\": 1}";
  const std::string echo =
      "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
      body;
  const std::string file = "GET /v1/runs/r1/outputs/out HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string answers = raw_exchange(port_, echo + file);
  ASSERT_NE(answers.find(file_content_), std::string::npos) << answers;
  auto metrics = server_->metrics();
  // The counters are updated once each write completes, before the connection closes.
  EXPECT_EQ(metrics->value("omicsd_http_request_bytes_total"), double(echo.size() + file.size()));
  EXPECT_EQ(metrics->value("omicsd_http_response_bytes_total"), double(answers.size()));
}

TEST_F(HttpServerTest, ConcurrentClients) {
  HttpServerOptions opts;
  opts.threads = 4;
  start(opts);
  constexpr int kThreads = 8, kRequests = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<Client> keep;
      for (int i = 0; i < kRequests; ++i) {
        try {
          std::string id = std::to_string(t) + "-" + std::to_string(i);
          Reply r;
          if (i % 2 == 0) {
            r = fetch(port_, "GET", "/v1/runs/" + id);
          } else {
            if (!keep) keep = std::make_unique<Client>(port_);
            r = keep->send("GET", "/v1/runs/" + id);
          }
          if (r.status == 200 && r.json()["id"] == id) ++ok;
        } catch (const std::exception&) {
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kRequests);
  auto metrics = server_->metrics();
  for (auto deadline = Clock::now() + std::chrono::seconds(3);
       Clock::now() < deadline &&
       metrics->value("omicsd_http_requests_total", {{"method", "GET"}, {"code", "200"}}) <
           kThreads * kRequests;)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server_->metrics()->value("omicsd_http_requests_total", {{"method", "GET"}, {"code", "200"}}),
            kThreads * kRequests);
}

TEST_F(HttpServerTest, StopReturnsPromptlyWithOpenConnections) {
  start();
  Client idle(port_);
  EXPECT_EQ(idle.send("GET", "/healthz").status, 200);  // keep-alive connection left idle
  net::io_context ioc;
  tcp::socket slow(ioc);
  slow.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
  net::write(slow, net::buffer(std::string("GET /healthz HTTP/1.1\r\n")));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto t0 = Clock::now();
  server_->stop();
  auto secs = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_LT(secs, 1.5);
  EXPECT_EQ(server_->open_connections(), 0u);
  server_->stop();  // idempotent
  boost::system::error_code ec;
  tcp::socket after(ioc);
  after.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ec);
  EXPECT_TRUE(ec) << "still accepting after stop()";
}

// ---------------------------------------------------------------------------------------------
// TLS (HTTPS)

namespace {

namespace ssl = net::ssl;

// A throwaway self-signed certificate (<stem>.crt) and key (<stem>.key) from the openssl tool.
bool make_self_signed(const fs::path& dir, const std::string& stem, const std::string& cn,
                      const std::string& san, std::string* log) {
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=" + cn +
                          " -addext subjectAltName=" + san + " -keyout '" + (dir / (stem + ".key")).string() +
                          "' -out '" + (dir / (stem + ".crt")).string() + "'";
  return omicsd::test::run_command(cmd, log) == 0;
}

// Runs one async operation to completion; the tcp_stream's expiry bounds it.
template <class Start>
beast::error_code run_async(net::io_context& ioc, Start&& start) {
  beast::error_code result = net::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// An HTTPS keep-alive client that verifies the server against `ca_file` and "127.0.0.1".
class TlsClient {
 public:
  TlsClient(std::uint16_t port, const fs::path& ca_file)
      : ctx_(ssl::context::tls_client), stream_(ioc_, ctx_) {
    ctx_.load_verify_file(ca_file.string());
    stream_.set_verify_mode(ssl::verify_peer);
    stream_.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
    auto& layer = beast::get_lowest_layer(stream_);
    layer.expires_after(std::chrono::seconds(10));
    error_ = run_async(ioc_, [&](auto h) {
      layer.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), h);
    });
    if (!error_)
      error_ = run_async(ioc_, [&](auto h) { stream_.async_handshake(ssl::stream_base::client, h); });
  }
  const beast::error_code& error() const { return error_; }

  Reply send(const std::string& method, const std::string& target, const std::string& body = "",
             std::vector<std::pair<std::string, std::string>> headers = {}) {
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(10));
    auto ec = run_async(ioc_, [&](auto h) { bhttp::async_write(stream_, req, h); });
    if (ec) throw std::runtime_error("TLS write failed: " + ec.message());
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 << 20);
    ec = run_async(ioc_, [&](auto h) { bhttp::async_read(stream_, buffer_, parser, h); });
    if (ec) throw std::runtime_error("TLS read failed: " + ec.message());
    Reply r;
    r.status = parser.get().result_int();
    r.headers = parser.get().base();
    r.body = parser.get().body();
    return r;
  }

  // Waits (at most 5 s) for the server to end the connection; returns how the read ended.
  beast::error_code wait_closed() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    char b;
    return run_async(ioc_, [&](auto h) { stream_.async_read_some(net::buffer(&b, 1), h); });
  }

 private:
  net::io_context ioc_;
  ssl::context ctx_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  beast::error_code error_;
};

}  // namespace

TEST_F(HttpServerTest, TlsServesTheSameHttpLogic) {
  std::string log;
  ASSERT_TRUE(make_self_signed(dir_, "srv", "localhost", "DNS:localhost,IP:127.0.0.1", &log)) << log;
  const fs::path cert = dir_ / "srv.crt";
  HttpServerOptions opts;
  opts.tls_cert_file = cert.string();
  opts.tls_key_file = (dir_ / "srv.key").string();
  opts.body_limit = 64 * 1024;
  opts.header_limit = 8 * 1024;
  start(opts);  // read timeout 1 s

  {  // keep-alive, routing, JSON, files and ranges on one TLS connection
    TlsClient c(port_, cert);
    ASSERT_FALSE(c.error()) << c.error().message();
    auto r = c.send("GET", "/v1/runs/a?x=1");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.json()["id"], "a");
    EXPECT_EQ(r.json()["query"]["x"], "1");
    r = c.send("POST", "/v1/echo", "[1,2]");
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(r.json()["echo"], nlohmann::json::parse("[1,2]"));
    r = c.send("GET", "/v1/runs/r1/outputs/out.bin", "", {{"Range", "bytes=10-19"}});
    EXPECT_EQ(r.status, 206);
    EXPECT_EQ(r.header("Content-Range"), "bytes 10-19/1000");
    EXPECT_EQ(r.body, file_content_.substr(10, 10));
    r = c.send("GET", "/v1/runs/r1/outputs/out.bin");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, file_content_);
    r = c.send("GET", "/healthz", "", {{"Connection", "close"}});
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(c.wait_closed());  // Connection: close honoured
  }
  {  // limits: 413 and 431 over TLS
    TlsClient c(port_, cert);
    ASSERT_FALSE(c.error()) << c.error().message();
    auto r = c.send("POST", "/v1/echo", std::string(200 * 1024, 'x'));
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r.json()["error"]["code"], 413);
    TlsClient c2(port_, cert);
    ASSERT_FALSE(c2.error()) << c2.error().message();
    r = c2.send("GET", "/healthz", "", {{"X-Big", std::string(16 * 1024, 'h')}});
    EXPECT_EQ(r.status, 431);
  }
  // Plain HTTP to the TLS port: no HTTP answer, the connection is just closed ...
  const auto raw = raw_exchange(port_, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(raw.find("HTTP/1."), std::string::npos) << raw;
  // ... a client that never starts the handshake is dropped after the read timeout ...
  {
    net::io_context ioc;
    tcp::socket idle(ioc);
    idle.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
    set_recv_timeout(idle, 10);
    const auto t0 = Clock::now();
    char buf[64];
    boost::system::error_code ec;
    const std::size_t n = idle.read_some(net::buffer(buf), ec);
    const auto secs = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_EQ(n, 0u);
    EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset) << ec.message();
    EXPECT_GE(secs, 0.9);
    EXPECT_LT(secs, 5.0);
  }
  // ... and the server keeps serving TLS.
  TlsClient after(port_, cert);
  ASSERT_FALSE(after.error()) << after.error().message();
  EXPECT_EQ(after.send("GET", "/healthz").body, "ok\n");
  EXPECT_GE(server_->metrics()->value("omicsd_http_tls_handshake_failures_total"), 2);
  for (auto deadline = Clock::now() + std::chrono::seconds(3);
       Clock::now() < deadline &&
       server_->metrics()->value("omicsd_http_requests_total", {{"method", "POST"}, {"code", "413"}}) < 1;)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server_->metrics()->value("omicsd_http_requests_total", {{"method", "POST"}, {"code", "413"}}),
            1);

  // Graceful stop closes the idle TLS connection promptly.
  const auto t0 = Clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 1.5);
  EXPECT_EQ(server_->open_connections(), 0u);
  EXPECT_TRUE(after.wait_closed());
}

TEST_F(HttpServerTest, TlsRejectsHttpsClientThatDoesNotTrustTheCertificate) {
  std::string log;
  ASSERT_TRUE(make_self_signed(dir_, "srv", "localhost", "DNS:localhost,IP:127.0.0.1", &log)) << log;
  ASSERT_TRUE(make_self_signed(dir_, "other", "localhost", "DNS:localhost,IP:127.0.0.1", &log)) << log;
  HttpServerOptions opts;
  opts.tls_cert_file = (dir_ / "srv.crt").string();
  opts.tls_key_file = (dir_ / "srv.key").string();
  start(opts);
  TlsClient wrong_ca(port_, dir_ / "other.crt");  // a CA that did not sign the server's certificate
  EXPECT_TRUE(wrong_ca.error());
  TlsClient ok(port_, dir_ / "srv.crt");
  ASSERT_FALSE(ok.error()) << ok.error().message();
  EXPECT_EQ(ok.send("GET", "/healthz").status, 200);
}

TEST(HttpServerTls, UnusableCertificateOrKeyThrowsAtStartNamingTheFile) {
  omicsd::test::TempDir tmp;
  std::string log;
  ASSERT_TRUE(make_self_signed(tmp.path, "a", "localhost", "DNS:localhost", &log)) << log;
  ASSERT_TRUE(make_self_signed(tmp.path, "b", "localhost", "DNS:localhost", &log)) << log;
  omicsd::test::write_file(tmp.path / "garbage.pem", "this is not a certificate\n");
  const std::string cert = (tmp.path / "a.crt").string(), key = (tmp.path / "a.key").string();
  auto start_error = [](const std::string& cert_file, const std::string& key_file) -> std::string {
    HttpServerOptions o;
    o.tls_cert_file = cert_file;
    o.tls_key_file = key_file;
    HttpServer server(o, Router{});
    try {
      server.start();
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "(no error)";
  };
  const std::string missing = (tmp.path / "missing.crt").string();
  std::string e = start_error(missing, key);
  EXPECT_NE(e.find(missing), std::string::npos) << e;
  const std::string missing_key = (tmp.path / "missing.key").string();
  e = start_error(cert, missing_key);
  EXPECT_NE(e.find(missing_key), std::string::npos) << e;
  const std::string garbage = (tmp.path / "garbage.pem").string();
  e = start_error(garbage, key);
  EXPECT_NE(e.find(garbage), std::string::npos) << e;
  EXPECT_NE(e.find("certificate"), std::string::npos) << e;
  e = start_error(cert, garbage);
  EXPECT_NE(e.find(garbage), std::string::npos) << e;
  const std::string other_key = (tmp.path / "b.key").string();
  e = start_error(cert, other_key);  // a key that does not belong to the certificate
  EXPECT_NE(e.find(other_key), std::string::npos) << e;
  e = start_error(cert, "");
  EXPECT_NE(e.find("key"), std::string::npos) << e;
  EXPECT_NE(e.find(cert), std::string::npos) << e;
  e = start_error("", key);
  EXPECT_NE(e.find("certificate"), std::string::npos) << e;
  // The good pair starts.
  EXPECT_EQ(start_error(cert, key), "(no error)");
}
