// The HTTP server's listener: start/stop, the accept loop with its back-off, the connection limit,
// and the built-in routes. Connections are served by http_session.cpp.
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <cerrno>
#include <stdexcept>

#include "service/http/http_server_impl.hpp"

namespace omicsd::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

void HttpServer::Impl::accept_later(std::chrono::milliseconds delay) {
  accept_timer->expires_after(delay);
  accept_timer->async_wait([this](beast::error_code ec) {
    if (!ec && !stopping && acceptor->is_open()) do_accept();
  });
}

void HttpServer::Impl::accept_failed(const beast::error_code& ec) {
  metrics->inc("omicsd_http_accept_errors_total", 1, {{"error", ec.message()}});
  const auto now = std::chrono::steady_clock::now();
  if (now - last_accept_log >= std::chrono::seconds(10)) {
    if (accept_errors_unlogged > 0)
      spdlog::warn("http accept failed: {} ({} more accept errors in the last 10 s)", ec.message(),
                   accept_errors_unlogged);
    else
      spdlog::warn("http accept failed: {}", ec.message());
    last_accept_log = now;
    accept_errors_unlogged = 0;
  } else {
    ++accept_errors_unlogged;
  }
}

void HttpServer::Impl::do_accept() {
  if (open.load() >= max_connections) {  // full: look again shortly (a closing session frees a slot)
    accept_later(std::chrono::milliseconds(10));
    return;
  }
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
      accept_failed(ec);
      const int e = ec.value();
      if (ec.category() == boost::system::system_category() &&
          (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)) {
        // Out of descriptors or memory: the pending connection stays in the backlog; retrying at
        // once would fail again at once.
        accept_backoff =
            std::clamp(accept_backoff * 2, std::chrono::milliseconds(5), std::chrono::milliseconds(1000));
        if (!stopping) accept_later(accept_backoff);
        return;
      }
    } else if (!stopping) {
      accept_backoff = std::chrono::milliseconds(0);
      start_session(std::move(socket), *this);
    }
    if (!stopping && acceptor->is_open()) do_accept();
  });
}

HttpServer::HttpServer(HttpServerOptions options, Router router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  std::lock_guard lk(impl_->state_mu);
  if (impl_->started) throw std::logic_error("HttpServer::start called twice");
  auto& im = *impl_;
  const bool has_cert = !im.opts.tls_cert_file.empty(), has_key = !im.opts.tls_key_file.empty();
  if (has_cert != has_key)
    throw std::runtime_error(std::string("TLS needs both a certificate file and a key file; only the ") +
                             (has_cert ? "certificate ('" + im.opts.tls_cert_file + "')"
                                       : "key ('" + im.opts.tls_key_file + "')") +
                             " was given");
  if (has_cert) im.tls.emplace(make_tls_context(im.opts.tls_cert_file, im.opts.tls_key_file));
  beast::error_code ec;
  auto address = net::ip::make_address(im.opts.address, ec);
  if (ec) throw std::runtime_error("invalid listen address '" + im.opts.address + "': " + ec.message());
  tcp::endpoint ep{address, im.opts.port};
  im.acceptor.emplace(net::make_strand(im.ioc));
  im.accept_timer.emplace(im.acceptor->get_executor());
  {
    rlimit rl{};
    std::size_t cap = im.opts.max_connections;
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
      cap = std::min<std::size_t>(
          cap, rl.rlim_cur > 128 ? std::size_t(rl.rlim_cur - 64) : std::size_t(rl.rlim_cur / 2));
    im.max_connections = std::max<std::size_t>(cap, 1);
  }
  auto fail = [&](const char* what) {
    throw std::runtime_error(std::string("cannot ") + what + " " + im.opts.address + ":" +
                             std::to_string(im.opts.port) + ": " + ec.message());
  };
  im.acceptor->open(ep.protocol(), ec);
  if (ec) fail("open");
  im.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  im.acceptor->bind(ep, ec);
  if (ec) fail("bind");
  im.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail("listen on");
  im.bound_port = im.acceptor->local_endpoint().port();
  if (im.opts.handler_threads > 0) im.handlers.emplace(std::size_t(im.opts.handler_threads));
  im.work.emplace(im.ioc.get_executor());
  im.do_accept();
  im.started = true;
  for (int i = 0; i < std::max(1, im.opts.threads); ++i) {
    im.threads.emplace_back([&im] {
      for (;;) {
        try {
          im.ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http I/O thread: unhandled exception: {}", e.what());
        }
      }
    });
  }
  spdlog::info("http{} listening on {}:{} ({} threads)", im.tls ? "s" : "", im.opts.address, im.bound_port,
               im.threads.size());
}

void HttpServer::stop() {
  std::lock_guard lk(impl_->state_mu);
  auto& im = *impl_;
  if (!im.started || im.stopped) return;
  im.stopped = true;
  im.stopping = true;
  net::post(im.acceptor->get_executor(), [&im] {
    beast::error_code ec;
    im.acceptor->close(ec);
    im.accept_timer->cancel();
  });
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard sl(im.sessions_mu);
    for (auto& [p, w] : im.sessions)
      if (auto s = w.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->request_stop();
  live.clear();
  auto deadline = std::chrono::steady_clock::now() + im.opts.stop_grace;
  while (im.open > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  im.work.reset();
  im.ioc.stop();
  for (auto& t : im.threads)
    if (t.joinable()) t.join();
  im.threads.clear();
  if (im.handlers) {
    im.handlers->stop();  // queued handlers are dropped; running ones finish (answers go nowhere now)
    im.handlers->join();
    im.handlers.reset();
  }
  spdlog::info("http server on port {} stopped", im.bound_port);
}

std::uint16_t HttpServer::port() const { return impl_->bound_port; }
std::shared_ptr<Metrics> HttpServer::metrics() const { return impl_->metrics; }
std::size_t HttpServer::open_connections() const { return impl_->open; }
std::size_t HttpServer::max_connections() const { return impl_->max_connections; }

std::uint64_t raise_open_file_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  const rlim_t want =
      rl.rlim_max == RLIM_INFINITY ? rlim_t(1) << 20 : std::min<rlim_t>(rl.rlim_max, rlim_t(1) << 20);
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) return rl.rlim_cur;
  rl.rlim_cur = want;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

void add_builtin_routes(Router& router, std::shared_ptr<Metrics> metrics, std::function<bool()> ready,
                        Scope metrics_scope) {
  router.get("/healthz", [](Request&) { return Response::text("ok\n"); });
  router.get("/readyz", [ready = std::move(ready)](Request&) {
    if (!ready || ready()) return Response::text("ready\n");
    return Response::error(503, "not ready");
  });
  router.get(
      "/metrics",
      [metrics = std::move(metrics)](Request&) {
        return Response::text(metrics ? metrics->render() : std::string{}, 200,
                              "text/plain; version=0.0.4; charset=utf-8");
      },
      metrics_scope);
}

}  // namespace omicsd::http
