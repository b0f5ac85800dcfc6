#pragma once
// Request/Response types and the path router of the HTTP API (transport-independent: the server in
// http_server.hpp feeds it parsed Beast requests, tests can call Router::dispatch directly).
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

// Parses the request body as JSON; throws HttpError(400) saying what is wrong (empty body,
// syntax error with its byte position).
nlohmann::json parse_json_body(const Request& req);

std::string percent_decode(std::string_view s, bool plus_as_space = false);
std::map<std::string, std::string> parse_query(std::string_view query_string);

using Handler = std::function<Response(Request&)>;

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

  // Token store; null or disabled = auth off.
  void set_auth(std::shared_ptr<const TokenStore> tokens) { tokens_ = std::move(tokens); }

  // Routes the request: fills req.params/route/scopes, checks auth (401/403), answers 404 for an
  // unknown path and 405 (with Allow) for a known path with another method, and turns handler
  // exceptions into JSON errors (HttpError -> its status, anything else -> 500). Never throws.
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
  };
  std::vector<Route> routes_;
  std::shared_ptr<const TokenStore> tokens_;
};

}  // namespace omicsd::http
