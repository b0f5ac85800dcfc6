// One HTTP/1.1 connection of the server (plain or TLS): reading requests with their limits and
// timeouts, streamed bodies into spool files (Router::add_streamed), handing requests to the handler
// pool, writing responses (files with Range support, HEAD), keep-alive and graceful close.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <type_traits>

#include "service/http/http_body_spool.hpp"
#include "service/http/http_file_range_body.hpp"
#include "service/http/http_server_impl.hpp"

namespace omicsd::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_http_error(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
}

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
    spool_.drop();
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

  void on_header(beast::error_code ec, std::size_t n) {
    start_ = std::chrono::steady_clock::now();
    impl_.count_bytes(n, 0);
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
                       [self = this->shared_from_this()](beast::error_code ec2, std::size_t n) {
                         self->impl_.count_bytes(0, n);
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

  void on_body(beast::error_code ec, std::size_t n) {
    impl_.count_bytes(n, 0);
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
      const std::uint64_t free = BodySpool::free_bytes(sb.spool_dir);
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
    if (!discard_ && !spool_.open(sb.spool_dir)) {
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
                       [self = this->shared_from_this()](beast::error_code ec2, std::size_t n) {
                         self->impl_.count_bytes(0, n);
                         if (ec2) {
                           self->spool_.drop();
                           return self->close();
                         }
                         self->read_chunk();
                       });
      return;
    }
    read_chunk();
  }

  static constexpr std::uint64_t kFreeCheckEvery = std::uint64_t(64) << 20;  // bytes between checks

  void read_chunk() {
    auto& body = stream_parser_->get().body();
    body.data = chunk_.get();
    body.size = kChunk;
    body.more = true;
    tcp_layer().expires_after(sb_->idle_timeout);
    bhttp::async_read(stream_, buffer_, *stream_parser_,
                      beast::bind_front_handler(&Session::on_chunk, this->shared_from_this()));
  }

  void on_chunk(beast::error_code ec, std::size_t bytes) {
    impl_.count_bytes(bytes, 0);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return on_stream_error(ec);
    const std::size_t n = kChunk - stream_parser_->get().body().size;
    if (sb_->min_free_bytes > 0 && !discard_ &&
        received_ / kFreeCheckEvery != (received_ + n) / kFreeCheckEvery &&
        BodySpool::free_bytes(sb_->spool_dir) < sb_->min_free_bytes) {
      spool_.drop();
      return send_error(507, "not enough free space: the server keeps " +
                                 std::to_string(sb_->min_free_bytes) + " bytes free");
    }
    received_ += n;
    if (n > 0 && !discard_) {
      if (!spool_.write(chunk_.get(), n)) {
        const int e = errno;
        spdlog::error("http {}: writing {} failed: {}", remote_, spool_.path().string(), std::strerror(e));
        spool_.drop();
        return send_error(e == ENOSPC || e == EDQUOT ? 507 : 500,
                          std::string("cannot store the request body: ") + std::strerror(e));
      }
    }
    if (stream_parser_->is_done()) return finish_streamed();
    read_chunk();
  }

  void on_stream_error(const beast::error_code& ec) {
    spool_.drop();
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
    if (!spool_.finish()) {
      const int e = errno;
      spool_.drop();
      return send_error(500, std::string("cannot store the request body: ") + std::strerror(e));
    }
    sreq_.body_file = spool_.path();
    sreq_.body_size = received_;
    sreq_.body_sha256 = spool_.digest();
    if (impl_.runs_inline(sreq_.path)) {
      Response res = impl_.router.dispatch(sreq_);
      spool_.drop();  // unless the handler moved it into place
      return send(std::move(res), sreq_, keep_alive, s_head_, s_version_);
    }
    // On the handler pool (the session reads nothing meanwhile: sreq_ is the handler's), then back
    // on the session's strand to send.
    net::post(*impl_.handlers, [self = this->shared_from_this(), keep_alive] {
      auto res = std::make_shared<Response>(self->impl_.router.dispatch(self->sreq_));
      net::post(self->stream_.get_executor(), [self, res, keep_alive] {
        self->spool_.drop();
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
    if (auth.size() > 7 && iequals_ascii(std::string_view(auth).substr(0, 7), "bearer ")) {
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
                       [self = this->shared_from_this(), close_after](beast::error_code ec, std::size_t n) {
                         self->impl_.count_bytes(0, n);
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
  BodySpool spool_;  // the streamed body's file
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

}  // namespace

void start_session(tcp::socket&& socket, HttpServer::Impl& impl) {
  if (impl.tls)
    std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(socket), impl, *impl.tls)
        ->run();
  else
    std::make_shared<Session<beast::tcp_stream>>(std::move(socket), impl)->run();
}

}  // namespace omicsd::http
