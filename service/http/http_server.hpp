#pragma once
// HTTP/1.1 server (Boost.Beast over Asio; plain TCP, or TLS 1.2+ when given a certificate) for the
// omicsd daemon and the built-in /healthz, /readyz and /metrics routes (the registry: metrics.hpp).
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "service/http/http_router.hpp"
#include "service/util/metrics.hpp"

namespace omicsd::http {

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = pick a free port; see HttpServer::port()
  int threads = 2;         // I/O threads: reading, writing, TLS
  // Handlers run on a pool of this many threads, off the I/O threads, so that a slow one (an
  // export, a cohort query, a metrics scrape) never holds up other connections; 0 runs them on the
  // I/O threads. Requests for `inline_paths` (cheap, never blocking) are answered on the I/O thread
  // itself, so /healthz answers in milliseconds however busy the handlers are.
  int handler_threads = 8;
  std::vector<std::string> inline_paths = {"/healthz", "/readyz"};
  std::size_t body_limit = 1 << 20;                // larger bodies -> 413 (not for add_streamed routes)
  std::size_t header_limit = 64 * 1024;            // larger headers -> 431
  std::chrono::milliseconds read_timeout{30'000};  // per request (headers + body), and keep-alive idle
                                                   // (streamed bodies: StreamedBody::idle_timeout)
  std::chrono::milliseconds write_timeout{300'000};
  std::chrono::milliseconds stop_grace{5'000};  // stop() waits this long for in-flight requests
  // Connections served at once. At the limit the server stops accepting until one closes (the
  // kernel's listen backlog holds the rest). start() lowers it to what RLIMIT_NOFILE leaves
  // (the limit minus 64 descriptors for files, databases and the process itself).
  std::size_t max_connections = 4096;
  std::shared_ptr<Metrics> metrics;  // created when null
  // TLS (HTTPS): PEM certificate chain and private key; both or neither. When set, every connection
  // starts with a TLS handshake (TLS 1.2 or later, within read_timeout); a failed handshake (e.g.
  // plain HTTP sent to this port) closes that connection only.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Router router);
  ~HttpServer();  // stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the I/O threads; throws std::runtime_error if the address cannot be
  // bound, or if the TLS certificate or key cannot be loaded (the message names the file).
  void start();
  // Stops accepting, closes idle connections, lets in-flight requests finish (up to stop_grace),
  // then joins the threads. Idempotent.
  void stop();

  std::uint16_t port() const;  // bound port, valid after start()
  std::shared_ptr<Metrics> metrics() const;
  std::size_t open_connections() const;
  std::size_t max_connections() const;  // in effect, after start()

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A Range request header against a file of `size` bytes: one `bytes=a-b`, `bytes=a-` or `bytes=-n`
// range is served (ok, first <= last < size), one that starts past the end is unsatisfiable (416),
// anything else is ignored (the whole file is sent). Exposed for tests and the fuzzers.
struct ByteRange {
  enum Kind { ignore, unsatisfiable, ok } kind = ignore;
  std::uint64_t first = 0, last = 0;
};
ByteRange parse_range(std::string_view header, std::uint64_t size);

// Raises the soft RLIMIT_NOFILE of the process to its hard limit (capped at 1,048,576); returns the
// soft limit in effect afterwards.
std::uint64_t raise_open_file_limit();

// Registers GET /healthz (200 "ok"), GET /readyz (200 when `ready()` is true or unset, else 503
// JSON error) and GET /metrics (Prometheus text from `metrics`). /healthz and /readyz never require
// a token.
// `metrics_scope`: what /metrics requires when auth is on (Scope::none: open, the default).
void add_builtin_routes(Router& router, std::shared_ptr<Metrics> metrics, std::function<bool()> ready = {},
                        Scope metrics_scope = Scope::none);

}  // namespace omicsd::http
