#pragma once
// Request/Response types and the path router of the HTTP API (transport-independent: the server in
// http_server.hpp feeds it parsed Beast requests, tests can call Router::dispatch directly).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth.hpp"
#include "host/common/error.hpp"
#include "service/http/json_input.hpp"

namespace omicsd::http {

struct Request {
  std::string method;                          // "GET", "POST", ... (HEAD is routed to GET handlers)
  std::string target;                          // raw request target, e.g. /v1/runs?state=RUNNING
  std::string path;                            // raw path part of the target (not decoded)
  std::string query_string;                    // raw query part (without '?')
  std::string route;                           // the matched route pattern, e.g. /v1/runs/{id}
  std::map<std::string, std::string> params;   // path parameters, percent-decoded
  std::map<std::string, std::string> query;    // query parameters, percent-decoded, last wins
  std::map<std::string, std::string> headers;  // lower-case names; repeated headers joined by ", "
  std::string body;
  std::string bearer_token;       // from `Authorization: Bearer <token>`, empty if none
  ScopeMask scopes = kAllScopes;  // scopes of the caller (all when auth is off)
  std::string remote;             // peer address:port
  // Routes added with Router::add_streamed only: the body is not in `body` but in `body_file` (a
  // temp file in the route's spool_dir, removed after the handler returns unless the handler moved
  // it away), with its size and SHA-256 ("sha256:<hex>") computed while it was received.
  std::filesystem::path body_file;
  std::uint64_t body_size = 0;
  std::string body_sha256;

  // Header value by case-insensitive name, empty when absent.
  std::string header(std::string_view name) const;
  std::optional<std::string> query_param(std::string_view name) const;
  std::string param(std::string_view name) const;  // path parameter, empty when absent
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
  // When set, the body is streamed from this file instead (Range requests supported); a missing
  // file turns into a 404 JSON error.
  std::optional<std::filesystem::path> file;
  // Kept alive until the response is sent: e.g. the RootedFile whose /proc/self/fd path is `file`.
  std::shared_ptr<const void> hold;

  Response& set_header(std::string name, std::string value);

  static Response json(const nlohmann::json& value, int status = 200);
  static Response text(std::string body, int status = 200,
                       std::string content_type = "text/plain; charset=utf-8");
  // {"error": {"code": status, "message": message}}
  static Response error(int status, std::string_view message);
  static Response from_file(std::filesystem::path path,
                            std::string content_type = "application/octet-stream");
};

// JSON error body: {"error": {"code": <status>, "message": "..."}}
std::string json_error_body(int status, std::string_view message);

// Throw from a handler to answer with a JSON error of that status (4xx for the caller's mistakes).
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// Runs a handler body, turning the engine's and stores' exceptions into the HTTP errors they mean:
// NotFoundError -> 404, ConflictError -> 409, InputError -> 400, and an nlohmann exception (a
// request field of the wrong type or out of range: the caller's JSON) -> 400; anything else stays a
// 500.
template <typename F>
auto answer_errors(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const NotFoundError& e) {
    throw HttpError(404, e.what());
  } catch (const ConflictError& e) {
    throw HttpError(409, e.what());
  } catch (const InputError& e) {
    throw HttpError(400, e.what());
  } catch (const nlohmann::json::exception& e) {
    throw HttpError(400, json_error_message("invalid request", e));
  }
}

// Parses the request body as JSON (parse_json_input: nesting limited to kMaxJsonDepth, numbers in
// range); throws HttpError(400) saying what is wrong (empty body, too deep, syntax error with its
// byte position). Every route reads its JSON body through here.
nlohmann::json parse_json_body(const Request& req);

std::string percent_decode(std::string_view s, bool plus_as_space = false);
std::map<std::string, std::string> parse_query(std::string_view query_string);

using Handler = std::function<Response(Request&)>;

// A route whose request body is streamed to a file instead of being buffered (uploads of many GB):
// not limited by HttpServerOptions::body_limit, read chunk by chunk with an idle timeout per chunk
// instead of the per-request read_timeout. Content-Length and chunked bodies both work.
struct StreamedBody {
  std::filesystem::path spool_dir;                    // temp files go here (same file system as their
                                                      // final place, so handlers can rename them)
  std::uint64_t max_bytes = std::uint64_t(64) << 30;  // larger bodies -> 413 (before reading them)
  std::chrono::milliseconds idle_timeout{120'000};    // per chunk of the body
  // The spool directory's file system must keep this much free space after the body: a declared
  // Content-Length that would leave less is a 507 before any of it is read, and a body (chunked,
  // or the disk filling meanwhile) that brings free space below it is cut off with a 507.
  std::uint64_t min_free_bytes = 0;
  // Optional: runs after routing and auth, before any of the body is read. A response returned
  // (or an HttpError thrown) here is sent instead of running the handler: a 2xx once the body has
  // been read and discarded (nothing is written; the connection stays usable), anything else at
  // once (the connection then closes). E.g. 200 for an object already stored, 400 for a bad URL.
  std::function<std::optional<Response>(Request&)> before_body;
};

class Router {
 public:
  // pattern: literal segments and `{name}` parameters, e.g. /v1/runs/{id}/outputs/{name}. A
  // literal segment beats a parameter when both match. `scope` is what the caller's token needs.
  void add(std::string method, std::string pattern, Handler handler, Scope scope = Scope::none);
  void get(std::string pattern, Handler h, Scope scope = Scope::none) {
    add("GET", std::move(pattern), std::move(h), scope);
  }
  void post(std::string pattern, Handler h, Scope scope = Scope::none) {
    add("POST", std::move(pattern), std::move(h), scope);
  }
  void put(std::string pattern, Handler h, Scope scope = Scope::none) {
    add("PUT", std::move(pattern), std::move(h), scope);
  }
  void del(std::string pattern, Handler h, Scope scope = Scope::none) {
    add("DELETE", std::move(pattern), std::move(h), scope);
  }

  // A route whose body is streamed to a file (see StreamedBody and Request::body_file).
  void add_streamed(std::string method, std::string pattern, Handler handler, Scope scope, StreamedBody body);
  bool has_streamed_routes() const { return streamed_routes_ > 0; }

  // For the server, once a request's headers are in: when req.method + req.path route to a
  // streamed route, returns its options, with *refusal set to the 401/403 answer when the caller's
  // token does not allow it (fills req.route/params/scopes). Null for every other request.
  const StreamedBody* streamed_route(Request& req, std::optional<Response>* refusal) const;

  // Token store; null or disabled = auth off.
  void set_auth(std::shared_ptr<const TokenStore> tokens) { tokens_ = std::move(tokens); }

  // Routes the request: fills req.params/route/scopes, checks auth (401/403), answers 404 for an
  // unknown path and 405 (with Allow) for a known path with another method, and turns handler
  // exceptions into JSON errors (HttpError -> its status, the answer_errors mapping for the
  // engine's errors and nlohmann exceptions, anything else -> 500). Never throws.
  Response dispatch(Request& req) const;

 private:
  struct Segment {
    bool is_param = false;
    std::string text;  // literal text or parameter name
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
    Scope scope;
    int literals = 0;
    std::shared_ptr<const StreamedBody> streamed;  // null: body buffered in Request::body
  };
  // The route req.method + req.path goes to (fills req.route/params), or null with *refusal set
  // to the 404/405 answer.
  const Route* match(Request& req, Response* refusal) const;
  // Checks the caller's token against the route's scope (fills req.scopes); the 401/403 answer
  // when it is refused.
  std::optional<Response> authorize(Request& req, const Route& route) const;

  std::vector<Route> routes_;
  int streamed_routes_ = 0;
  std::shared_ptr<const TokenStore> tokens_;
};

}  // namespace omicsd::http
