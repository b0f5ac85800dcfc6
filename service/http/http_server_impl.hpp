#pragma once
// Inside the HTTP server (not for other files): the server's shared state (HttpServer::Impl), which
// the accept loop (http_server.cpp) and the connections (http_session.cpp) use, and the pieces they
// share. Boost.Beast/Asio types appear only here and in those files.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "service/http/http_server.hpp"

namespace omicsd::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// ASCII case-insensitive equality (header values such as "bytes=" and "Bearer ").
bool iequals_ascii(std::string_view a, std::string_view b);

// The server's TLS context (http_tls.cpp): TLS 1.2 or later, certificate chain and key from PEM
// files. Throws std::runtime_error naming the file that cannot be used.
net::ssl::context make_tls_context(const std::string& cert_file, const std::string& key_file);

// What stop() needs of a connection, whatever its stream type.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void request_stop() = 0;
};

struct HttpServer::Impl {
  HttpServerOptions opts;
  Router router;
  std::shared_ptr<Metrics> metrics;
  bool streamed_routes = false;  // router.has_streamed_routes(): requests are routed after their header

  std::mutex state_mu;
  bool started = false;
  bool stopped = false;
  std::atomic<bool> stopping{false};
  std::uint16_t bound_port = 0;
  std::vector<std::thread> threads;

  std::mutex sessions_mu;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;
  std::atomic<std::size_t> open{0};
  std::size_t max_connections = 0;  // opts.max_connections within RLIMIT_NOFILE (start())

  // The accept loop's back-off (touched only on the acceptor's strand): after EMFILE/ENFILE it waits
  // 5 ms, doubling to 1 s, instead of retrying at once (which spun a core and flooded the log);
  // accept errors are logged at most once per 10 s, with the number left out.
  std::chrono::milliseconds accept_backoff{0};
  std::chrono::steady_clock::time_point last_accept_log{};
  std::uint64_t accept_errors_unlogged = 0;

  std::optional<net::ssl::context> tls;  // set by start() when a certificate is configured

  // Declared last: destroyed first, while everything sessions touch in their destructors lives.
  net::io_context ioc;
  std::optional<net::thread_pool> handlers;  // opts.handler_threads > 0 (joined by stop())
  // Keeps the I/O threads in run() while a handler on the pool holds the only reference to a
  // session's next step (after the acceptor closed, ioc would otherwise run out of work).
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::steady_timer> accept_timer;  // on the acceptor's strand

  Impl(HttpServerOptions o, Router r)
      : opts(std::move(o)), router(std::move(r)), metrics(opts.metrics), ioc(std::max(1, opts.threads)) {
    streamed_routes = router.has_streamed_routes();
    if (!metrics) metrics = std::make_shared<Metrics>();
    metrics->describe_counter("omicsd_http_accept_errors_total",
                              "Failed accepts by error (EMFILE: out of file descriptors).");
    metrics->describe_counter("omicsd_http_requests_total",
                              "HTTP requests answered, by method and status code.");
    metrics->describe_counter("omicsd_http_request_bytes_total",
                              "Bytes of HTTP requests read (request line, headers, body; before TLS).");
    metrics->describe_counter("omicsd_http_response_bytes_total",
                              "Bytes of HTTP responses written (status line, headers, body; before TLS).");
    metrics->describe_histogram("omicsd_http_request_duration_seconds",
                                "Time from a request's headers to its response being written.",
                                Metrics::default_buckets());
    if (!opts.tls_cert_file.empty() || !opts.tls_key_file.empty())
      metrics->describe_counter("omicsd_http_tls_handshake_failures_total",
                                "Connections closed because the TLS handshake failed or timed out.");
  }

  void do_accept();
  bool runs_inline(const std::string& path) const {
    return !handlers ||
           std::find(opts.inline_paths.begin(), opts.inline_paths.end(), path) != opts.inline_paths.end();
  }
  void accept_later(std::chrono::milliseconds delay);
  void accept_failed(const beast::error_code& ec);
  void add_session(const std::shared_ptr<SessionBase>& s) {
    std::lock_guard lk(sessions_mu);
    sessions[s.get()] = s;
  }
  void remove_session(SessionBase* s) {
    std::lock_guard lk(sessions_mu);
    sessions.erase(s);
  }
  // The HTTP bytes of the traffic served: what the daemon's network carries per task (docs/performance.md).
  void count_bytes(std::size_t request_bytes, std::size_t response_bytes) {
    try {
      if (request_bytes) metrics->inc("omicsd_http_request_bytes_total", double(request_bytes));
      if (response_bytes) metrics->inc("omicsd_http_response_bytes_total", double(response_bytes));
    } catch (const std::exception& e) {
      spdlog::warn("http metrics: {}", e.what());
    }
  }
  void record(const std::string& method, const std::string& target, int status, double seconds,
              const std::string& remote) {
    try {
      metrics->inc("omicsd_http_requests_total", 1, {{"method", method}, {"code", std::to_string(status)}});
      metrics->observe("omicsd_http_request_duration_seconds", seconds);
    } catch (const std::exception& e) {
      spdlog::warn("http metrics: {}", e.what());
    }
    std::string_view t = target;
    spdlog::info("http {} {} {} {} {:.2f}ms", remote, method, t.substr(0, 256), status, seconds * 1e3);
  }
};

// Serves one accepted connection (http_session.cpp): HTTPS when the server has a TLS context, else
// plain HTTP. The session keeps itself alive until the connection closes.
void start_session(tcp::socket&& socket, HttpServer::Impl& impl);

}  // namespace omicsd::http
