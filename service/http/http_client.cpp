#include "service/http/http_client.hpp"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <thread>
#include <type_traits>

#include "service/http/json_input.hpp"
#include "service/util/sha256.hpp"

namespace omicsd {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

constexpr std::size_t kMaxStringBody = 256u << 20;  // JSON answers are small; this is a sanity bound

// No response: `sent` says whether the request may have reached the server; `permanent` that a
// retry cannot help (the server's certificate failed verification).
struct ConnectionFailure {
  bool sent;
  std::string message;
  bool permanent = false;
};

// Runs one async operation on `ioc` to completion (the tcp_stream's expiry gives the timeout).
template <class Start>
beast::error_code run_op(net::io_context& ioc, Start&& start) {
  beast::error_code result = net::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string describe(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "timed out";
  return ec.message();
}

// The client side of TLS: TLS 1.2 or later; verify the peer against `ca_file` or the system CAs.
std::shared_ptr<net::ssl::context> make_tls_context(const HttpClientOptions& o) {
  auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
  ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                   net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  if (o.insecure_skip_verify) {
    ctx->set_verify_mode(net::ssl::verify_none);
    return ctx;
  }
  ctx->set_verify_mode(net::ssl::verify_peer);
  beast::error_code ec;
  if (!o.ca_file.empty()) {
    std::error_code fec;
    if (!std::filesystem::is_regular_file(o.ca_file, fec))
      throw InputError(o.ca_file + ": CA certificate file not found");
    ctx->load_verify_file(o.ca_file, ec);
    if (ec) throw InputError(o.ca_file + ": not a usable PEM CA certificate file (" + ec.message() + ")");
  } else {
    ctx->set_default_verify_paths(ec);
    if (ec) throw InputError("cannot load the system CA certificates: " + ec.message());
  }
  return ctx;
}

}  // namespace

std::string FetchResult::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

nlohmann::json HttpResponse::json() const {
  if (body.empty()) return nullptr;
  try {
    return parse_json_input(body, "the server's answer (HTTP " + std::to_string(status) + ")");
  } catch (const InputError& e) {
    throw Error(e.what());  // the server's fault, not the caller's input
  }
}

std::string url_encode_segment(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string server_error_message(const std::string& body) {
  try {
    const auto j = parse_json_input(body, "error body");
    if (j.is_object() && j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string())
        return e["message"].get<std::string>();
      if (e.is_string()) return e.get<std::string>();
    }
  } catch (const InputError&) {
  }
  std::string s = body.substr(0, 300);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {
  std::string u = options_.base_url;
  std::string scheme = "http://";
  if (u.rfind("https://", 0) == 0) {
    tls_ = true;
    scheme = "https://";
  } else if (u.rfind(scheme, 0) != 0) {
    if (u.find("://") != std::string::npos)
      throw InputError(u + ": server URL must start with http:// or https://");
    u = scheme + u;  // "host:port" is accepted too
  }
  const std::string default_port = tls_ ? "443" : "80";
  std::string rest = u.substr(scheme.size());
  const auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  prefix_ = slash == std::string::npos ? "" : rest.substr(slash);
  while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
  if (hostport.empty()) throw InputError(options_.base_url + ": server URL has no host");
  if (hostport.front() == '[') {  // [::1]:8080
    const auto close = hostport.find(']');
    if (close == std::string::npos) throw InputError(options_.base_url + ": malformed IPv6 host");
    host_ = hostport.substr(1, close - 1);
    port_ =
        close + 1 < hostport.size() && hostport[close + 1] == ':' ? hostport.substr(close + 2) : default_port;
  } else {
    const auto colon = hostport.rfind(':');
    host_ = hostport.substr(0, colon);
    port_ = colon == std::string::npos ? default_port : hostport.substr(colon + 1);
  }
  if (host_.empty() || port_.empty() ||
      !std::all_of(port_.begin(), port_.end(), [](unsigned char c) { return std::isdigit(c); }))
    throw InputError(options_.base_url + ": malformed server URL (expected http[s]://host:port)");
  if (options_.max_attempts < 1) options_.max_attempts = 1;
  if (tls_) tls_context_ = make_tls_context(options_);
}

std::string HttpClient::url(const std::string& path) const {
  return std::string(tls_ ? "https://" : "http://") +
         (host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_) + ":" + port_ + prefix_ + path;
}

std::chrono::milliseconds HttpClient::backoff(int attempt) const {
  auto d = options_.backoff_initial;
  for (int i = 1; i < attempt && d < options_.backoff_max; ++i) d *= 2;
  return std::min(d, options_.backoff_max);
}

namespace {

// Streamed bodies of one exchange: the request body read from `upload`; a 2xx response body
// written to `dest` (via dest + ".part"), its size to *written and, with `sha256`, its digest.
struct BodyIo {
  const std::filesystem::path* upload = nullptr;
  uint64_t upload_offset = 0;             // upload: the byte range of the file sent ...
  std::optional<uint64_t> upload_length;  // ... (unset: to its end)
  const std::filesystem::path* dest = nullptr;
  uint64_t* written = nullptr;
  std::string* sha256 = nullptr;
};

// Closes a file descriptor on scope exit.
struct FdCloser {
  int fd = -1;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// One exchange on a fresh connection `stream` (beast::tcp_stream, or an ssl_stream over one: then
// a TLS handshake with SNI and certificate + host name verification follows the TCP connect). With
// io.upload the request body is streamed from that file; with io.dest a 2xx body into that file.
template <class Stream>
HttpResponse exchange_over(net::io_context& ioc, Stream& stream, const std::string& host,
                           const std::string& port, const std::string& target, const std::string& method,
                           const std::string& body, const std::string& content_type,
                           const HttpClient::Headers& headers, const HttpClientOptions& opt,
                           const BodyIo& io) {
  const std::filesystem::path* dest = io.dest;
  constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  tcp::resolver resolver(ioc);
  beast::flat_buffer buffer;
  beast::tcp_stream& tcp_layer = beast::get_lowest_layer(stream);
  std::string verify_error;  // TLS: why the certificate was rejected (set by the verify callback)

  tcp::resolver::results_type endpoints;
  beast::error_code ec = run_op(ioc, [&](auto handler) {
    resolver.async_resolve(host, port,
                           [&endpoints, handler](beast::error_code e, tcp::resolver::results_type r) {
                             endpoints = r;
                             handler(e);
                           });
  });
  if (ec) throw ConnectionFailure{false, "cannot resolve " + host + ": " + describe(ec)};
  std::vector<tcp::endpoint> allowed;  // what is connected to is what was checked
  std::string refused;
  for (const auto& e : endpoints) {
    if (opt.connect_policy) {
      const std::string why = opt.connect_policy(e.endpoint().address().to_string());
      if (!why.empty()) {
        if (refused.empty()) refused = why;
        continue;
      }
    }
    allowed.push_back(e.endpoint());
  }
  if (allowed.empty()) throw ConnectionFailure{false, "refused: " + refused, true};
  tcp_layer.expires_after(opt.connect_timeout);
  ec = run_op(ioc, [&](auto handler) { tcp_layer.async_connect(allowed, handler); });
  if (ec) throw ConnectionFailure{false, "cannot connect: " + describe(ec)};

  if constexpr (kTls) {
    beast::error_code not_ip;
    net::ip::make_address(host, not_ip);
    if (not_ip && !SSL_set_tlsext_host_name(stream.native_handle(), host.c_str()))  // SNI: names only
      throw ConnectionFailure{false, "TLS: cannot set the server name " + host};
    if (!opt.insecure_skip_verify) {
      stream.set_verify_callback([&verify_error, check = net::ssl::host_name_verification(host), host](
                                     bool preverified, net::ssl::verify_context& vc) {
        X509_STORE_CTX* x = vc.native_handle();
        if (!preverified) {
          if (verify_error.empty()) verify_error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(x));
          return false;
        }
        if (check(preverified, vc)) return true;
        if (verify_error.empty()) verify_error = "the certificate does not match host '" + host + "'";
        return false;
      });
    }
    tcp_layer.expires_after(opt.connect_timeout);
    ec = run_op(ioc, [&](auto handler) { stream.async_handshake(net::ssl::stream_base::client, handler); });
    if (ec && !verify_error.empty())
      throw ConnectionFailure{false, "TLS certificate verification failed: " + verify_error, true};
    if (ec) throw ConnectionFailure{false, "TLS handshake failed: " + describe(ec)};
  }

  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.method_string(method);
  // The default port is left out, as browsers and curl do: signed requests (S3's SigV4, presigned
  // URLs) sign the Host header as the URL's authority shows it.
  const bool default_port = port == (kTls ? "443" : "80");
  req.set(bhttp::field::host, default_port ? host : host + ":" + port);
  req.set(bhttp::field::user_agent, opt.user_agent);
  req.set(bhttp::field::connection, "close");
  if (!opt.token.empty()) req.set(bhttp::field::authorization, "Bearer " + opt.token);
  if (!content_type.empty()) req.set(bhttp::field::content_type, content_type);
  for (const auto& [k, v] : headers) req.set(k, v);
  beast::error_code body_error;  // upload: sending the body failed (the server may have answered)
  if (io.upload) {
    // Header, then the file in chunks (each with its own timeout). A server that answers before it
    // has the whole body (413, 401, ...) is listened to: stop sending and read its answer.
    FdCloser in{::open(io.upload->c_str(), O_RDONLY | O_CLOEXEC)};
    if (in.fd < 0) throw Error(io.upload->string() + ": cannot open for upload: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(in.fd, &st) != 0) throw Error(io.upload->string() + ": cannot stat: " + std::strerror(errno));
    const uint64_t file_size = uint64_t(st.st_size);
    if (io.upload_offset > file_size ||
        (io.upload_length && *io.upload_length > file_size - io.upload_offset))
      throw Error(io.upload->string() + ": the range to upload lies past the end of the file");
    if (io.upload_offset && ::lseek(in.fd, off_t(io.upload_offset), SEEK_SET) < 0)
      throw Error(io.upload->string() + ": cannot seek: " + std::strerror(errno));
    const uint64_t body_size = io.upload_length ? *io.upload_length : file_size - io.upload_offset;
    bhttp::request<bhttp::buffer_body> up{req.method(), target, 11};
    up.base() = req.base();
    up.content_length(body_size);
    up.body().data = nullptr;
    up.body().more = true;
    bhttp::request_serializer<bhttp::buffer_body> sr{up};
    tcp_layer.expires_after(opt.request_timeout);
    ec = run_op(ioc, [&](auto handler) { bhttp::async_write_header(stream, sr, handler); });
    if (ec) throw ConnectionFailure{true, "sending the request failed: " + describe(ec)};
    std::vector<char> chunk(std::size_t(256) << 10);
    uint64_t left = body_size;
    do {
      beast::error_code avail_ec;
      if (tcp_layer.socket().available(avail_ec) > 0) break;  // an early answer
      ssize_t n = 0;
      if (left > 0) {
        n = ::read(in.fd, chunk.data(), std::size_t(std::min<uint64_t>(left, chunk.size())));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(io.upload->string() + ": read failed: " + std::strerror(errno));
        if (n == 0) throw Error(io.upload->string() + ": the file shrank while it was being uploaded");
        left -= uint64_t(n);
      }
      up.body().data = n > 0 ? chunk.data() : nullptr;
      up.body().size = std::size_t(n);
      up.body().more = left > 0;
      tcp_layer.expires_after(opt.request_timeout);
      ec = run_op(ioc, [&](auto handler) { bhttp::async_write(stream, sr, handler); });
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        body_error = ec;
        break;
      }
    } while (!sr.is_done());
  } else {
    req.body() = body;
    if (!body.empty() || method == "POST" || method == "PUT") req.prepare_payload();
    tcp_layer.expires_after(opt.request_timeout);
    ec = run_op(ioc, [&](auto handler) { bhttp::async_write(stream, req, handler); });
    if (ec) throw ConnectionFailure{true, "sending the request failed: " + describe(ec)};
  }

  bhttp::response_parser<bhttp::buffer_body> parser;
  if (method == "HEAD") parser.skip(true);  // a Content-Length but no body
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  parser.header_limit(64 * 1024);
  ec = run_op(ioc, [&](auto handler) { bhttp::async_read_header(stream, buffer, parser, handler); });
  if (ec && body_error)
    throw ConnectionFailure{true, "sending the request body failed: " + describe(body_error)};
  if (ec) throw ConnectionFailure{true, "reading the response failed: " + describe(ec)};

  HttpResponse res;
  res.status = int(parser.get().result_int());
  for (const auto& f : parser.get().base()) {
    auto name = lower(std::string(f.name_string()));
    auto& slot = res.headers[name];
    slot = slot.empty() ? std::string(f.value()) : slot + ", " + std::string(f.value());
  }
  const bool to_file = dest && res.status >= 200 && res.status < 300;
  std::ofstream out;
  std::filesystem::path part;
  if (to_file) {
    part = dest->string() + ".part";
    out.open(part, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(part.string() + ": cannot open for writing");
  }
  std::optional<Sha256> hash;
  if (to_file && io.sha256) hash.emplace();
  std::array<char, 64 * 1024> chunk;
  uint64_t total = 0;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    tcp_layer.expires_after(opt.request_timeout);
    ec = run_op(ioc, [&](auto handler) { bhttp::async_read(stream, buffer, parser, handler); });
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      if (to_file) {
        out.close();
        std::error_code rm;
        std::filesystem::remove(part, rm);
      }
      throw ConnectionFailure{true, "reading the response body failed: " + describe(ec)};
    }
    const std::size_t n = chunk.size() - parser.get().body().size;
    total += n;
    if (to_file) {
      out.write(chunk.data(), std::streamsize(n));
      if (!out) throw Error(part.string() + ": write failed");
      if (hash) hash->update(chunk.data(), n);
    } else {
      const uint64_t limit = std::min<uint64_t>(opt.max_response_body, kMaxStringBody);
      if (res.body.size() + n > limit) {
        res.body.append(chunk.data(), std::size_t(limit - res.body.size()));
        res.truncated = true;
        break;  // the rest stays unread: the connection is closed below
      }
      res.body.append(chunk.data(), n);
    }
  }
  if (to_file) {
    out.close();
    if (!out) throw Error(part.string() + ": write failed");
    std::filesystem::rename(part, *dest);
    if (io.written) *io.written = total;
    if (hash) *io.sha256 = "sha256:" + hash->final_hex();
  }
  // The response is complete (length-delimited), so a TLS close_notify exchange adds nothing.
  beast::error_code ignored;
  tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return res;
}

HttpResponse exchange(const std::string& host, const std::string& port, const std::string& target,
                      const std::string& method, const std::string& body, const std::string& content_type,
                      const HttpClient::Headers& headers, const HttpClientOptions& opt,
                      net::ssl::context* tls, const BodyIo& io) {
  net::io_context ioc;
  if (tls) {
    beast::ssl_stream<beast::tcp_stream> stream(ioc, *tls);
    return exchange_over(ioc, stream, host, port, target, method, body, content_type, headers, opt, io);
  }
  beast::tcp_stream stream(ioc);
  return exchange_over(ioc, stream, host, port, target, method, body, content_type, headers, opt, io);
}

}  // namespace

HttpResponse HttpClient::with_retries(const std::string& method, const std::string& path, bool idempotent,
                                      const std::function<HttpResponse()>& exchange_once) {
  std::string last;
  for (int attempt = 1;; ++attempt) {
    const bool more = attempt < options_.max_attempts;
    try {
      HttpResponse r = exchange_once();
      if (r.status >= 500 && idempotent && more) {
        std::this_thread::sleep_for(backoff(attempt));
        continue;
      }
      return r;
    } catch (const ConnectionFailure& f) {
      last = f.message;
      if (more && !f.permanent && (!f.sent || idempotent)) {
        std::this_thread::sleep_for(backoff(attempt));
        continue;
      }
      throw HttpClientError(method + " " + url(path) + ": " + last +
                                (attempt > 1 ? " (after " + std::to_string(attempt) + " attempts)" : ""),
                            0, url(path), "");
    }
  }
}

HttpResponse HttpClient::send(const std::string& method, const std::string& path, const std::string& body,
                              const std::string& content_type, const Headers& headers, bool idempotent) {
  return with_retries(method, path, idempotent, [&] {
    return exchange(host_, port_, prefix_ + path, method, body, content_type, headers, options_,
                    tls_context_.get(), BodyIo{});
  });
}

void HttpClient::check(const HttpResponse& r, const std::string& method, const std::string& path) const {
  if (r.status < 400) return;
  const std::string msg = server_error_message(r.body);
  throw HttpClientError(method + " " + url(path) + ": HTTP " + std::to_string(r.status) +
                            (msg.empty() ? std::string() : ": " + msg),
                        r.status, url(path), msg);
}

nlohmann::json HttpClient::get_json(const std::string& path, int* status_out) {
  HttpResponse r = send("GET", path, "", "", {{"Accept", "application/json"}}, true);
  if (status_out) *status_out = r.status;
  check(r, "GET", path);
  return r.json();
}

nlohmann::json HttpClient::post_json(const std::string& path, const nlohmann::json& body, bool idempotent,
                                     const Headers& headers, int* status_out) {
  Headers h = headers;
  h.emplace_back("Accept", "application/json");
  HttpResponse r = send("POST", path, body.dump(), "application/json", h, idempotent);
  if (status_out) *status_out = r.status;
  check(r, "POST", path);
  return r.json();
}

uint64_t HttpClient::download(const std::string& path, const std::filesystem::path& dest) {
  const FetchResult r = fetch(path, dest);
  if (r.status >= 300)
    throw HttpClientError("GET " + url(path) + ": unexpected HTTP " + std::to_string(r.status), r.status,
                          url(path), "");
  return r.bytes;
}

FetchResult HttpClient::fetch(const std::string& path, const std::filesystem::path& dest,
                              const Headers& headers) {
  std::string last;
  for (int attempt = 1;; ++attempt) {
    const bool more = attempt < options_.max_attempts;
    try {
      FetchResult res;
      HttpResponse r =
          exchange(host_, port_, prefix_ + path, "GET", "", "", headers, options_, tls_context_.get(),
                   BodyIo{nullptr, 0, std::nullopt, &dest, &res.bytes, &res.sha256});
      if (r.status >= 500 && more) {
        std::this_thread::sleep_for(backoff(attempt));
        continue;
      }
      check(r, "GET", path);
      if (r.status >= 300 && r.status != 304)
        throw HttpClientError("GET " + url(path) + ": unexpected HTTP " + std::to_string(r.status), r.status,
                              url(path), "");
      res.status = r.status;
      res.headers = std::move(r.headers);
      return res;
    } catch (const ConnectionFailure& f) {
      last = f.message;
      if (more && !f.permanent) {
        std::this_thread::sleep_for(backoff(attempt));
        continue;
      }
      throw HttpClientError("GET " + url(path) + ": " + last, 0, url(path), "");
    }
  }
}

HttpResponse HttpClient::upload(const std::string& method, const std::string& path,
                                const std::filesystem::path& src, const std::string& content_type,
                                const Headers& headers, bool idempotent) {
  // Each attempt re-reads the file from its start.
  return with_retries(method, path, idempotent, [&] {
    return exchange(host_, port_, prefix_ + path, method, "", content_type, headers, options_,
                    tls_context_.get(), BodyIo{&src, 0, std::nullopt, nullptr, nullptr, nullptr});
  });
}

HttpResponse HttpClient::upload_range(const std::string& method, const std::string& path,
                                      const std::filesystem::path& src, uint64_t offset, uint64_t length,
                                      const std::string& content_type, const Headers& headers,
                                      bool idempotent) {
  return with_retries(method, path, idempotent, [&] {
    return exchange(host_, port_, prefix_ + path, method, "", content_type, headers, options_,
                    tls_context_.get(), BodyIo{&src, offset, length, nullptr, nullptr, nullptr});
  });
}

}  // namespace omicsd
