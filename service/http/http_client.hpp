#pragma once
// Small synchronous HTTP/1.1 client (Boost.Beast over TCP, or TLS for https:// URLs) for the omicsd
// API: the `omicsd` client commands and the Batch worker use it. One connection per request (simple
// and robust against daemons restarting), timeouts on every step, retries with exponential backoff.
// HTTPS verifies the server's certificate chain (system CAs, or `ca_file`) and its host name.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "host/common/error.hpp"

namespace boost::asio::ssl {
class context;
}

namespace omicsd {

// A failed request. status() is the HTTP status, or 0 when no response arrived (connection
// refused, reset, timeout). what() names the method and URL and carries the server's JSON error
// message ({"error": {"message": ...}}) when there is one.
class HttpClientError : public Error {
 public:
  HttpClientError(const std::string& what, int status, std::string url, std::string server_message)
      : Error(what), status_(status), url_(std::move(url)), server_message_(std::move(server_message)) {}
  int status() const { return status_; }
  bool connection_error() const { return status_ == 0; }
  const std::string& url() const { return url_; }
  const std::string& server_message() const { return server_message_; }

 private:
  int status_;
  std::string url_;
  std::string server_message_;
};

struct HttpClientOptions {
  std::string base_url = "http://127.0.0.1:8080";  // http[s]://host[:port][/prefix] (ports 80 / 443)
  std::string token;                               // sent as `Authorization: Bearer <token>` when set
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{30'000};  // whole exchange; downloads: per-chunk idle time
  int max_attempts = 5;                               // 1 = no retries
  std::chrono::milliseconds backoff_initial{200};     // doubled per attempt ...
  std::chrono::milliseconds backoff_max{2'000};       // ... up to this
  std::string user_agent = "omicsd-client";
  // https:// only. PEM file of the CA certificate(s) to trust instead of the system's CAs.
  std::string ca_file;
  // https:// only. Do not verify the server's certificate or host name (testing only).
  bool insecure_skip_verify = false;
  // Called with each address the host name resolved to (a literal IP, e.g. "10.0.0.7"): "" allows
  // it, anything else is why it is refused. The client connects only to allowed addresses, the very
  // ones checked (no second lookup); when none is left the request fails at once, not retried
  // (HttpClientError status 0, message "...: refused: <why>"). Unset: any address.
  std::function<std::string(const std::string& ip)> connect_policy;
  // Responses read into a string (not download/fetch): at most this many body bytes are read; the
  // rest is left unread (the connection closes) and HttpResponse::truncated is set.
  std::uint64_t max_response_body = std::uint64_t(256) << 20;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool truncated = false;  // the body was longer than HttpClientOptions::max_response_body
  std::string header(const std::string& lower_name) const;
  nlohmann::json json() const;  // parsed body; null for an empty body; throws Error when malformed
};

// What HttpClient::fetch got: the final status (2xx: `bytes` were written to the destination,
// hashed into `sha256`; 304: the destination was left alone) and the response headers.
struct FetchResult {
  int status = 0;
  uint64_t bytes = 0;
  std::string sha256;                          // "sha256:<hex>" of the bytes written (2xx)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string header(const std::string& lower_name) const;
};

class HttpClient {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // Throws InputError for a malformed base URL or an unusable ca_file.
  explicit HttpClient(HttpClientOptions options);

  const HttpClientOptions& options() const { return options_; }
  std::string url(const std::string& path) const;    // base URL + path
  const std::string& host() const { return host_; }  // host name or IP literal (no brackets)

  // One request with retries. Connection failures before the request was sent are always retried
  // (except a server certificate that fails verification: reported at once); failures after sending
  // and 5xx answers only when `idempotent`. Returns any final response
  // (also 4xx/5xx); throws HttpClientError(status 0) when no response came after all attempts.
  HttpResponse send(const std::string& method, const std::string& path, const std::string& body = "",
                    const std::string& content_type = "", const Headers& headers = {},
                    bool idempotent = true);

  // JSON helpers: throw HttpClientError for a status >= 400 (message from the JSON error body).
  // GET is idempotent; POST is idempotent when the caller says so (e.g. with an Idempotency-Key).
  // `status_out` receives the final status (e.g. 201 vs 200, or 204 with a null result).
  nlohmann::json get_json(const std::string& path, int* status_out = nullptr);
  nlohmann::json post_json(const std::string& path, const nlohmann::json& body, bool idempotent,
                           const Headers& headers = {}, int* status_out = nullptr);

  // Streams GET `path` into `dest` (written to dest + ".part" and renamed when complete). Retries
  // like an idempotent request. Returns the number of bytes written. Throws HttpClientError.
  uint64_t download(const std::string& path, const std::filesystem::path& dest);
  // Like download(), sending `headers` too (e.g. If-None-Match) and hashing the body while it is
  // written; a 304 Not Modified is returned (dest untouched) rather than thrown.
  FetchResult fetch(const std::string& path, const std::filesystem::path& dest, const Headers& headers = {});

  // Streams the file `src` as the request body of `method` `path` (Content-Length; read and sent
  // in chunks, never whole in memory; request_timeout applies per chunk). Retried like send() with
  // `idempotent` (a PUT by content digest is), re-reading the file each attempt. Returns the final
  // response (also 4xx/5xx); throws HttpClientError(status 0) when no response came after all
  // attempts, Error when `src` cannot be read.
  HttpResponse upload(const std::string& method, const std::string& path, const std::filesystem::path& src,
                      const std::string& content_type = "application/octet-stream",
                      const Headers& headers = {}, bool idempotent = true);

  // Like upload(), sending only `length` bytes of `src` from `offset` (a part of a multipart upload).
  HttpResponse upload_range(const std::string& method, const std::string& path,
                            const std::filesystem::path& src, uint64_t offset, uint64_t length,
                            const std::string& content_type = "application/octet-stream",
                            const Headers& headers = {}, bool idempotent = true);

  // Throws HttpClientError for a status >= 400 with the server's JSON error message.
  void check(const HttpResponse& response, const std::string& method, const std::string& path) const;

 private:
  std::chrono::milliseconds backoff(int attempt) const;
  // Runs exchange_once until it answers: connection failures before sending are retried, after
  // sending and 5xx answers only when idempotent, up to max_attempts with backoff. Throws
  // HttpClientError(status 0) when no answer came.
  HttpResponse with_retries(const std::string& method, const std::string& path, bool idempotent,
                            const std::function<HttpResponse()>& exchange_once);

  HttpClientOptions options_;
  std::string host_, port_, prefix_;
  bool tls_ = false;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // https: shared by copies of this client
};

// Percent-encodes one URL path segment (ids may contain '/', e.g. task "run-1/call").
std::string url_encode_segment(const std::string& s);

// "message" of a JSON error body {"error": {"code", "message"}}, or the (truncated) body itself.
std::string server_error_message(const std::string& body);

}  // namespace omicsd
