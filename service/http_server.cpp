#include "http_server.hpp"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/optional.hpp>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "sha256.hpp"

namespace omicsd::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// ---------------------------------------------------------------------------------------------
// A Body streaming [offset, offset+length) of a file (Beast 1.74's file_body always sends the whole
// file, so 206 responses use this; full-file 200 responses use bhttp::file_body).

namespace {
struct FileRangeBody {
  struct value_type {
    beast::file file;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
  };
  static std::uint64_t size(const value_type& v) { return v.length; }

  class writer {
   public:
    using const_buffers_type = net::const_buffer;
    template <bool isRequest, class Fields>
    writer(bhttp::header<isRequest, Fields>&, value_type& b) : body_(b) {}
    void init(beast::error_code& ec) {
      remain_ = body_.length;
      body_.file.seek(body_.offset, ec);
    }
    boost::optional<std::pair<const_buffers_type, bool>> get(beast::error_code& ec) {
      ec = {};
      if (remain_ == 0) return boost::none;
      auto amount = static_cast<std::size_t>(std::min<std::uint64_t>(remain_, buf_.size()));
      auto n = body_.file.read(buf_.data(), amount, ec);
      if (ec) return boost::none;
      if (n == 0) {
        ec = bhttp::error::short_read;
        return boost::none;
      }
      remain_ -= n;
      return {{net::const_buffer(buf_.data(), n), remain_ > 0}};
    }

   private:
    value_type& body_;
    std::uint64_t remain_ = 0;
    std::array<char, 64 * 1024> buf_;
  };
};

bool iequals_sv(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

}  // namespace

// Single `bytes=a-b`, `bytes=a-` or `bytes=-n` ranges; anything else (multiple ranges, other units,
// syntax errors) is ignored and the whole file is sent, as RFC 9110 allows.
ByteRange parse_range(std::string_view h, std::uint64_t size) {
  ByteRange r;
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  if (h.size() < 6 || !iequals_sv(h.substr(0, 6), "bytes=")) return r;
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return r;
  auto dash = h.find('-');
  if (dash == std::string_view::npos) return r;
  auto a = h.substr(0, dash), b = h.substr(dash + 1);
  std::uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix range
    if (!parse_u64(b, last)) return r;
    if (last == 0 || size == 0) return {ByteRange::unsatisfiable};
    return {ByteRange::ok, size - std::min(last, size), size - 1};
  }
  if (!parse_u64(a, first)) return r;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else {
    if (!parse_u64(b, last) || last < first) return r;
    if (size > 0) last = std::min(last, size - 1);
  }
  if (first >= size) return {ByteRange::unsatisfiable};
  return {ByteRange::ok, first, last};
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_http_error(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
}

// The server's TLS context: TLS 1.2 or later, certificate chain and key from PEM files. Throws
// std::runtime_error naming the file that cannot be used.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

net::ssl::context make_tls_context(const std::string& cert_file, const std::string& key_file) {
  auto fail = [](const char* what, const std::string& file, const std::string& why) {
    throw std::runtime_error(std::string("TLS ") + what + " file '" + file + "': " + why);
  };
  auto check_file = [&](const char* what, const std::string& file) {
    std::error_code fec;
    if (!std::filesystem::exists(file, fec)) fail(what, file, "no such file");
    if (!std::filesystem::is_regular_file(file, fec)) fail(what, file, "not a regular file");
  };
  check_file("certificate", cert_file);
  check_file("key", key_file);
  net::ssl::context ctx(net::ssl::context::tls_server);
  ctx.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                  net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                  net::ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  // Mozilla's "intermediate" profile: TLS 1.2 only with forward-secret AEAD suites (TLS 1.3 suites
  // are all AEAD); the server's order wins.
  if (SSL_CTX_set_cipher_list(ctx.native_handle(), kTls12Ciphers) != 1)
    throw std::runtime_error("TLS: OpenSSL accepts none of the configured TLS 1.2 cipher suites");
  SSL_CTX_set_options(ctx.native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  beast::error_code ec;
  ctx.use_certificate_chain_file(cert_file, ec);
  if (ec) fail("certificate", cert_file, "not a usable PEM certificate (" + ec.message() + ")");
  ctx.use_private_key_file(key_file, net::ssl::context::pem, ec);
  if (ec) fail("key", key_file, "not a usable PEM private key for the certificate (" + ec.message() + ")");
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    fail("key", key_file, "does not match the certificate in '" + cert_file + "'");
  return ctx;
}
}  // namespace

// What stop() needs of a connection, whatever its stream type.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void request_stop() = 0;
};

// ---------------------------------------------------------------------------------------------
// Server

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

// One connection. Stream is beast::tcp_stream (plain HTTP) or beast::ssl_stream<beast::tcp_stream>
// (HTTPS: a TLS handshake first, then the same HTTP/1.1 logic).
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  // `tls` is the server's ssl::context for HTTPS sessions, nothing for plain ones.
  template <class... TlsContext>
  Session(tcp::socket&& socket, HttpServer::Impl& impl, TlsContext&... tls)
      : stream_(std::move(socket), tls...), impl_(impl) {
    ++impl_.open;
    beast::error_code ec;
    auto ep = tcp_layer().socket().remote_endpoint(ec);
    remote_ = ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() override {
    drop_spool();
    impl_.remove_session(this);
    --impl_.open;
  }

  void run() {
    impl_.add_session(this->shared_from_this());
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::begin, this->shared_from_this()));
  }

  // From stop(): close the connection unless a request is being handled.
  void request_stop() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (!self->busy_) self->close();
    });
  }

 private:
  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(stream_); }

  void begin() {
    if constexpr (kTls) {
      if (impl_.stopping) return close();
      tcp_layer().expires_after(impl_.opts.read_timeout);
      stream_.async_handshake(net::ssl::stream_base::server,
                              beast::bind_front_handler(&Session::on_handshake, this->shared_from_this()));
    } else {
      do_read();
    }
  }

  void on_handshake(beast::error_code ec) {
    if (ec) {
      spdlog::debug("http {} closed: TLS handshake failed: {}", remote_,
                    ec == beast::error::timeout ? std::string("timed out") : ec.message());
      try {
        impl_.metrics->inc("omicsd_http_tls_handshake_failures_total");
      } catch (const std::exception& e) {
        spdlog::warn("http metrics: {}", e.what());
      }
      return close();
    }
    do_read();
  }

  void do_read() {
    if (impl_.stopping) return close();
    busy_ = false;
    method_ = "-";
    target_ = "-";
    parser_.emplace();
    // With streamed routes the body limit depends on the route, known once the header is in: a
    // declared length is checked in on_header and the limit set before the body is read.
    // (Not boost::none: Beast 1.74 compares a Content-Length against it and then always fails.)
    if (impl_.streamed_routes)
      parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    else
      parser_->body_limit(impl_.opts.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(impl_.opts.header_limit, std::numeric_limits<std::uint32_t>::max())));
    tcp_layer().expires_after(impl_.opts.read_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::on_header, this->shared_from_this()));
  }

  void note_request_line() {
    const auto& req = parser_->get();
    method_ = req.method() == bhttp::verb::unknown ? std::string("OTHER") : std::string(req.method_string());
    target_ = std::string(req.target());
  }

  void on_header(beast::error_code ec, std::size_t) {
    start_ = std::chrono::steady_clock::now();
    if (ec) return on_read_error(ec);
    busy_ = true;
    note_request_line();
    if (impl_.streamed_routes) {
      Request req = make_request(parser_->get());
      std::optional<Response> refusal;
      if (const StreamedBody* sb = impl_.router.streamed_route(req, &refusal))
        return start_streamed(std::move(req), *sb, std::move(refusal));
      const auto declared = parser_->content_length();
      if (declared && *declared > impl_.opts.body_limit)
        return send_error(
            413, "request body exceeds the limit of " + std::to_string(impl_.opts.body_limit) + " bytes");
      parser_->body_limit(impl_.opts.body_limit);
    }
    if (parser_->is_done()) return handle();
    if (beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue),
                       [self = this->shared_from_this()](beast::error_code ec2, std::size_t) {
                         if (ec2) return self->close();
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_body, this->shared_from_this()));
  }

  void on_body(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    handle();
  }

  // ---- Streamed bodies (Router::add_streamed): the header is routed and authorised first; the
  // body then goes chunk by chunk into a spool file (hashed on the way, an idle timeout per chunk)
  // and the handler gets the file. Nothing of the body is held in memory beyond one chunk.
  static constexpr std::size_t kChunk = 256 * 1024;

  void start_streamed(Request req, const StreamedBody& sb, std::optional<Response> refusal) {
    const auto& breq = parser_->get();
    const bool has_body = !parser_->is_done();
    const bool expect_continue = beast::iequals(breq[bhttp::field::expect], "100-continue");
    sreq_ = std::move(req);
    s_head_ = breq.method() == bhttp::verb::head;
    s_version_ = breq.version() == 10 ? 10 : 11;
    const bool keep_alive = breq.keep_alive() && !impl_.stopping;
    // Refused, or answered before the body: a body we do not read closes the connection.
    if (refusal) return send(std::move(*refusal), sreq_, keep_alive && !has_body, s_head_, s_version_);
    const auto declared = parser_->content_length();
    if (declared && *declared > sb.max_bytes)
      return send_error(413, "request body exceeds the limit of " + std::to_string(sb.max_bytes) + " bytes");
    if (sb.min_free_bytes > 0 && declared) {
      const std::uint64_t free = free_bytes(sb.spool_dir);
      if (free < *declared || free - *declared < sb.min_free_bytes)
        return send_error(507, "not enough free space for a body of " + std::to_string(*declared) +
                                   " bytes (the server keeps " + std::to_string(sb.min_free_bytes) +
                                   " bytes free)");
    }
    std::optional<Response> early;
    if (sb.before_body) {
      try {
        early = sb.before_body(sreq_);
      } catch (const HttpError& e) {
        early = Response::error(e.status(), e.what());
      } catch (const std::exception& e) {
        spdlog::error("handler {} {} threw before the body: {}", sreq_.method, sreq_.route, e.what());
        early = Response::error(500, std::string("internal error: ") + e.what());
      } catch (...) {
        early = Response::error(500, "internal error");
      }
    }
    if (early && (!has_body || expect_continue || early->status < 200 || early->status >= 300))
      return send(std::move(*early), sreq_, keep_alive && !has_body, s_head_, s_version_);
    sb_ = &sb;
    discard_ = early.has_value();  // a 2xx decided before the body: read it, store nothing
    early_ = std::move(early);
    received_ = 0;
    if (!discard_ && !open_spool(sb)) {
      const int e = errno;
      spdlog::error("http {}: cannot create a spool file in {}: {}", remote_, sb.spool_dir.string(),
                    std::strerror(e));
      return send_error(e == ENOSPC || e == EDQUOT ? 507 : 500,
                        std::string("cannot store the request body: ") + std::strerror(e));
    }
    stream_parser_.emplace(std::move(*parser_));
    parser_.reset();
    stream_parser_->body_limit(sb.max_bytes);
    if (!chunk_) chunk_ = std::make_unique<char[]>(kChunk);
    if (!has_body) return finish_streamed();
    if (expect_continue) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue),
                       [self = this->shared_from_this()](beast::error_code ec2, std::size_t) {
                         if (ec2) {
                           self->drop_spool();
                           return self->close();
                         }
                         self->read_chunk();
                       });
      return;
    }
    read_chunk();
  }

  static constexpr std::uint64_t kFreeCheckEvery = std::uint64_t(64) << 20;  // bytes between checks

  static std::uint64_t free_bytes(const std::filesystem::path& dir) {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) return std::numeric_limits<std::uint64_t>::max();  // unknown
    return std::uint64_t(st.f_bavail) * std::uint64_t(st.f_frsize);
  }

  bool open_spool(const StreamedBody& sb) {
    static std::atomic<std::uint64_t> counter{0};
    thread_local std::mt19937_64 rng(std::random_device{}());
    spool_path_ = sb.spool_dir / ("upload." + std::to_string(::getpid()) + "." + std::to_string(counter++) +
                                  "." + std::to_string(rng() % 1000000000));
    spool_fd_ = ::open(spool_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (spool_fd_ < 0) {
      spool_path_.clear();
      return false;
    }
    sha_ = std::make_unique<Sha256>();
    return true;
  }

  // Closes and removes the spool file (if the handler did not move it away).
  void drop_spool() {
    if (spool_fd_ >= 0) ::close(spool_fd_);
    spool_fd_ = -1;
    if (!spool_path_.empty()) ::unlink(spool_path_.c_str());
    spool_path_.clear();
  }

  bool write_spool(const char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(spool_fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      p += w;
      n -= std::size_t(w);
    }
    return true;
  }

  void read_chunk() {
    auto& body = stream_parser_->get().body();
    body.data = chunk_.get();
    body.size = kChunk;
    body.more = true;
    tcp_layer().expires_after(sb_->idle_timeout);
    bhttp::async_read(stream_, buffer_, *stream_parser_,
                      beast::bind_front_handler(&Session::on_chunk, this->shared_from_this()));
  }

  void on_chunk(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return on_stream_error(ec);
    const std::size_t n = kChunk - stream_parser_->get().body().size;
    if (sb_->min_free_bytes > 0 && !discard_ &&
        received_ / kFreeCheckEvery != (received_ + n) / kFreeCheckEvery &&
        free_bytes(sb_->spool_dir) < sb_->min_free_bytes) {
      drop_spool();
      return send_error(507, "not enough free space: the server keeps " +
                                 std::to_string(sb_->min_free_bytes) + " bytes free");
    }
    received_ += n;
    if (n > 0 && !discard_) {
      sha_->update(chunk_.get(), n);
      if (!write_spool(chunk_.get(), n)) {
        const int e = errno;
        spdlog::error("http {}: writing {} failed: {}", remote_, spool_path_.string(), std::strerror(e));
        drop_spool();
        return send_error(e == ENOSPC || e == EDQUOT ? 507 : 500,
                          std::string("cannot store the request body: ") + std::strerror(e));
      }
    }
    if (stream_parser_->is_done()) return finish_streamed();
    read_chunk();
  }

  void on_stream_error(const beast::error_code& ec) {
    drop_spool();
    if (ec == beast::error::timeout) {
      spdlog::info("http {} closed: no body data for {} within {} ms", remote_, target_.substr(0, 256),
                   sb_->idle_timeout.count());
      return close();
    }
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message || !is_http_error(ec))
      return close();
    if (ec == bhttp::error::body_limit)
      return send_error(413,
                        "request body exceeds the limit of " + std::to_string(sb_->max_bytes) + " bytes");
    send_error(400, "malformed HTTP request: " + ec.message());
  }

  void finish_streamed() {
    const bool keep_alive = stream_parser_->get().keep_alive() && !impl_.stopping;
    stream_parser_.reset();
    if (early_) {
      Response r = std::move(*early_);
      early_.reset();
      return send(std::move(r), sreq_, keep_alive, s_head_, s_version_);
    }
    const int fd = spool_fd_;
    spool_fd_ = -1;
    if (::close(fd) != 0) {
      const int e = errno;
      drop_spool();
      return send_error(500, std::string("cannot store the request body: ") + std::strerror(e));
    }
    sreq_.body_file = spool_path_;
    sreq_.body_size = received_;
    sreq_.body_sha256 = "sha256:" + sha_->final_hex();
    sha_.reset();
    if (impl_.runs_inline(sreq_.path)) {
      Response res = impl_.router.dispatch(sreq_);
      drop_spool();  // unless the handler moved it into place
      return send(std::move(res), sreq_, keep_alive, s_head_, s_version_);
    }
    // On the handler pool (the session reads nothing meanwhile: sreq_ is the handler's), then back
    // on the session's strand to send.
    net::post(*impl_.handlers, [self = this->shared_from_this(), keep_alive] {
      auto res = std::make_shared<Response>(self->impl_.router.dispatch(self->sreq_));
      net::post(self->stream_.get_executor(), [self, res, keep_alive] {
        self->drop_spool();
        self->send(std::move(*res), self->sreq_, keep_alive, self->s_head_, self->s_version_);
      });
    });
  }

  void on_read_error(const beast::error_code& ec) {
    if (parser_ && parser_->got_some() && method_ == "-") {
      try {
        if (parser_->get().method() != bhttp::verb::unknown || !parser_->get().method_string().empty())
          note_request_line();
      } catch (...) {
      }
    }
    if (ec == beast::error::timeout) {
      if (parser_ && parser_->got_some())
        spdlog::info("http {} closed: request not received within {} ms", remote_,
                     impl_.opts.read_timeout.count());
      return close();
    }
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message || !is_http_error(ec))
      return close();
    busy_ = true;
    if (ec == bhttp::error::body_limit)
      return send_error(
          413, "request body exceeds the limit of " + std::to_string(impl_.opts.body_limit) + " bytes");
    if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow)
      return send_error(
          431, "request headers exceed the limit of " + std::to_string(impl_.opts.header_limit) + " bytes");
    send_error(400, "malformed HTTP request: " + ec.message());
  }

  void send_error(int status, const std::string& message) {
    auto m = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(status), 11);
    m->set(bhttp::field::server, "omicsd");
    m->set(bhttp::field::content_type, "application/json");
    m->body() = json_error_body(status, message);
    m->keep_alive(false);
    m->prepare_payload();
    write(m, status, true);
  }

  // The Request of a parsed header (body not included).
  template <class Message>
  Request make_request(const Message& breq) const {
    Request req;
    req.method = std::string(breq.method_string());
    req.target = std::string(breq.target());
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) {
      req.query_string = req.target.substr(q + 1);
      req.query = parse_query(req.query_string);
    }
    for (const auto& f : breq) {
      auto name = lower(std::string(f.name_string()));
      auto [it, inserted] = req.headers.try_emplace(name, std::string(f.value()));
      if (!inserted) it->second += ", " + std::string(f.value());
    }
    auto auth = req.header("authorization");
    if (auth.size() > 7 && iequals_sv(std::string_view(auth).substr(0, 7), "bearer ")) {
      std::string_view tok = std::string_view(auth).substr(7);
      while (!tok.empty() && tok.front() == ' ') tok.remove_prefix(1);
      while (!tok.empty() && tok.back() == ' ') tok.remove_suffix(1);
      req.bearer_token = std::string(tok);
    }
    req.remote = remote_;
    return req;
  }

  void handle() {
    auto& breq = parser_->get();
    Request req = make_request(breq);
    req.body = std::move(breq.body());
    bool keep_alive = breq.keep_alive() && !impl_.stopping;
    bool head = breq.method() == bhttp::verb::head;
    unsigned version = breq.version() == 10 ? 10 : 11;

    if (impl_.runs_inline(req.path)) {
      Response res = impl_.router.dispatch(req);
      return send(std::move(res), req, keep_alive, head, version);
    }
    auto shared = std::make_shared<Request>(std::move(req));
    net::post(*impl_.handlers, [self = this->shared_from_this(), shared, keep_alive, head, version] {
      auto res = std::make_shared<Response>(self->impl_.router.dispatch(*shared));
      net::post(self->stream_.get_executor(), [self, shared, res, keep_alive, head, version] {
        self->send(std::move(*res), *shared, keep_alive, head, version);
      });
    });
  }

  template <class Body>
  void fill(bhttp::response<Body>& m, const Response& r, bool keep_alive) {
    m.set(bhttp::field::server, "omicsd");
    if (!r.content_type.empty()) m.set(bhttp::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) m.insert(k, v);
    m.keep_alive(keep_alive);
  }

  // HEAD: the same header (with the Content-Length a GET would have), no body.
  template <class Body>
  void write_maybe_head(std::shared_ptr<bhttp::response<Body>> m, bool head, int status, bool close_after,
                        std::uint64_t length) {
    if (!head) return write(m, status, close_after);
    auto h = std::make_shared<bhttp::response<bhttp::empty_body>>(std::move(m->base()));
    h->content_length(length);
    write(h, status, close_after);
  }

  void send(Response r, const Request& req, bool keep_alive, bool head, unsigned version) {
    if (r.file) {
      beast::error_code ec;
      beast::file f;
      f.open(r.file->c_str(), beast::file_mode::scan, ec);
      std::uint64_t size = ec ? 0 : f.size(ec);
      if (ec) {
        r = Response::error(404, "output file is not available");
      } else {
        auto range_header = req.header("range");
        ByteRange range;
        if (!range_header.empty() && r.status == 200) range = parse_range(range_header, size);
        if (range.kind == ByteRange::unsatisfiable) {
          r = Response::error(
              416, "requested range not satisfiable for a file of " + std::to_string(size) + " bytes");
          r.set_header("Content-Range", "bytes */" + std::to_string(size));
        } else if (range.kind == ByteRange::ok) {
          auto m = std::make_shared<bhttp::response<FileRangeBody>>(bhttp::status::partial_content, version);
          fill(*m, r, keep_alive);
          m->set(bhttp::field::accept_ranges, "bytes");
          m->set(bhttp::field::content_range, "bytes " + std::to_string(range.first) + "-" +
                                                  std::to_string(range.last) + "/" + std::to_string(size));
          auto len = range.last - range.first + 1;
          m->body().file = std::move(f);
          m->body().offset = range.first;
          m->body().length = len;
          m->content_length(len);
          return write_maybe_head(m, head, 206, !keep_alive, len);
        } else {
          auto m = std::make_shared<bhttp::response<bhttp::file_body>>(static_cast<bhttp::status>(r.status),
                                                                       version);
          fill(*m, r, keep_alive);
          m->set(bhttp::field::accept_ranges, "bytes");
          m->body().reset(std::move(f), ec);
          m->content_length(size);
          return write_maybe_head(m, head, r.status, !keep_alive, size);
        }
      }
    }
    auto m =
        std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(r.status), version);
    fill(*m, r, keep_alive);
    m->body() = std::move(r.body);
    m->prepare_payload();
    auto len = m->body().size();
    write_maybe_head(m, head, r.status, !keep_alive, len);
  }

  template <class Msg>
  void write(std::shared_ptr<Msg> m, int status, bool close_after) {
    status_ = status;
    res_ = m;
    tcp_layer().expires_after(impl_.opts.write_timeout);
    bhttp::async_write(stream_, *m,
                       [self = this->shared_from_this(), close_after](beast::error_code ec, std::size_t) {
                         self->on_write(ec, close_after);
                       });
  }

  void on_write(beast::error_code ec, bool close_after) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    impl_.record(method_, target_, status_, secs, remote_);
    res_.reset();
    busy_ = false;
    if (ec) return close();
    if (close_after || impl_.stopping) return graceful_close();
    do_read();
  }

  // Half-close (TLS: after sending close_notify), then discard what the client still sends
  // (briefly, at the TCP level), so that it reads our response instead of a connection reset.
  void graceful_close() {
    tcp_layer().expires_after(std::chrono::seconds(1));
    if constexpr (kTls) {
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->half_close(); });
    } else {
      half_close();
    }
  }
  void half_close() {
    beast::error_code ec;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ec);
    drained_ = 0;
    do_drain();
  }
  void do_drain() {
    tcp_layer().async_read_some(net::buffer(drain_buf_),
                                [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                                  self->drained_ += n;
                                  if (ec || self->drained_ > (8u << 20)) return self->close();
                                  self->do_drain();
                                });
  }

  void close() {
    beast::error_code ec;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp_layer().socket().close(ec);
  }

  Stream stream_;
  HttpServer::Impl& impl_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  // A streamed body (start_streamed .. finish_streamed).
  std::optional<bhttp::request_parser<bhttp::buffer_body>> stream_parser_;
  const StreamedBody* sb_ = nullptr;
  Request sreq_;
  std::optional<Response> early_;  // decided by before_body: sent once the body is drained
  bool discard_ = false, s_head_ = false;
  unsigned s_version_ = 11;
  int spool_fd_ = -1;
  std::filesystem::path spool_path_;
  std::unique_ptr<Sha256> sha_;
  std::uint64_t received_ = 0;
  std::unique_ptr<char[]> chunk_;
  std::shared_ptr<void> res_;
  std::string remote_, method_ = "-", target_ = "-";
  int status_ = 0;
  bool busy_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::array<char, 16 * 1024> drain_buf_;
  std::size_t drained_ = 0;
};

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
      if (tls)
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(socket), *this, *tls)
            ->run();
      else
        std::make_shared<Session<beast::tcp_stream>>(std::move(socket), *this)->run();
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
