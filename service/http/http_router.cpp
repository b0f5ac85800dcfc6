#include "http_router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace omicsd::http {

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string Request::header(std::string_view name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? std::string{} : it->second;
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  auto it = query.find(std::string(name));
  if (it == query.end()) return std::nullopt;
  return it->second;
}

std::string Request::param(std::string_view name) const {
  auto it = params.find(std::string(name));
  return it == params.end() ? std::string{} : it->second;
}

Response& Response::set_header(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

Response Response::json(const nlohmann::json& value, int status) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response Response::text(std::string body, int status, std::string content_type) {
  Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

std::string json_error_body(int status, std::string_view message) {
  nlohmann::json j = {{"error", {{"code", status}, {"message", std::string(message)}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Response Response::error(int status, std::string_view message) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = json_error_body(status, message);
  return r;
}

Response Response::from_file(std::filesystem::path path, std::string content_type) {
  Response r;
  r.content_type = std::move(content_type);
  r.file = std::move(path);
  return r;
}

nlohmann::json parse_json_body(const Request& req) {
  if (req.body.empty()) throw HttpError(400, "request body is empty; expected a JSON document");
  try {
    return parse_json_input(req.body, "malformed JSON body");
  } catch (const InputError& e) {
    throw HttpError(400, e.what());
  }
}

std::string percent_decode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view qs) {
  std::map<std::string, std::string> out;
  while (!qs.empty()) {
    auto amp = qs.find('&');
    std::string_view pair = qs.substr(0, amp);
    qs = amp == std::string_view::npos ? std::string_view{} : qs.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string key = percent_decode(pair.substr(0, eq), true);
    std::string value =
        eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1), true);
    out[std::move(key)] = std::move(value);
  }
  return out;
}

void Router::add(std::string method, std::string pattern, Handler handler, Scope scope) {
  Route r;
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.handler = std::move(handler);
  r.scope = scope;
  for (auto seg : split_path(r.pattern)) {
    Segment s;
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      s.is_param = true;
      s.text = std::string(seg.substr(1, seg.size() - 2));
    } else {
      s.text = std::string(seg);
      ++r.literals;
    }
    r.segments.push_back(std::move(s));
  }
  routes_.push_back(std::move(r));
}

void Router::add_streamed(std::string method, std::string pattern, Handler handler, Scope scope,
                          StreamedBody body) {
  add(std::move(method), std::move(pattern), std::move(handler), scope);
  routes_.back().streamed = std::make_shared<const StreamedBody>(std::move(body));
  ++streamed_routes_;
}

const Router::Route* Router::match(Request& req, Response* refusal) const {
  std::vector<std::string> segs;
  for (auto s : split_path(req.path)) segs.push_back(percent_decode(s));
  std::string effective = req.method == "HEAD" ? "GET" : req.method;

  const Route* best = nullptr;
  std::set<std::string> allowed;
  for (const auto& r : routes_) {
    if (r.segments.size() != segs.size()) continue;
    bool ok = true;
    for (std::size_t i = 0; i < segs.size() && ok; ++i)
      if (!r.segments[i].is_param && r.segments[i].text != segs[i]) ok = false;
    if (!ok) continue;
    allowed.insert(r.method);
    if (r.method == effective && (!best || r.literals > best->literals)) best = &r;
  }
  if (!best) {
    if (allowed.empty()) {
      *refusal = Response::error(404, "no such resource: " + req.path);
      return nullptr;
    }
    if (allowed.count("GET")) allowed.insert("HEAD");
    std::string allow;
    for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    *refusal =
        Response::error(405, "method " + req.method + " not allowed on " + req.path + "; allowed: " + allow);
    refusal->set_header("Allow", allow);
    return nullptr;
  }
  req.route = best->pattern;
  req.params.clear();
  for (std::size_t i = 0; i < segs.size(); ++i)
    if (best->segments[i].is_param) req.params[best->segments[i].text] = segs[i];
  return best;
}

std::optional<Response> Router::authorize(Request& req, const Route& route) const {
  if (!tokens_ || !tokens_->enabled()) {
    req.scopes = kAllScopes;
    return std::nullopt;
  }
  auto scopes = tokens_->scopes_of(req.bearer_token);
  req.scopes = scopes ? *scopes : 0;
  switch (tokens_->check(req.bearer_token, route.scope)) {
    case AuthResult::ok:
      break;
    case AuthResult::unauthenticated: {
      auto res = Response::error(401, req.bearer_token.empty()
                                          ? "missing bearer token (Authorization: Bearer <token>)"
                                          : "unknown bearer token");
      res.set_header("WWW-Authenticate", "Bearer");
      return res;
    }
    case AuthResult::forbidden:
      return Response::error(403, "token lacks the '" + std::string(to_string(route.scope)) +
                                      "' scope required by " + req.method + " " + route.pattern);
  }
  return std::nullopt;
}

const StreamedBody* Router::streamed_route(Request& req, std::optional<Response>* refusal) const {
  if (streamed_routes_ == 0) return nullptr;
  Response not_found;
  const Route* r = match(req, &not_found);
  if (!r || !r->streamed) return nullptr;
  *refusal = authorize(req, *r);
  return r->streamed.get();
}

Response Router::dispatch(Request& req) const {
  try {
    Response refusal;
    const Route* best = match(req, &refusal);
    if (!best) return refusal;
    if (auto denied = authorize(req, *best)) return std::move(*denied);

    try {
      return answer_errors([&] { return best->handler(req); });
    } catch (const HttpError& e) {
      return Response::error(e.status(), e.what());
    } catch (const std::exception& e) {
      spdlog::error("handler {} {} threw: {}", req.method, best->pattern, e.what());
      return Response::error(500, std::string("internal error: ") + e.what());
    } catch (...) {
      spdlog::error("handler {} {} threw a non-standard exception", req.method, best->pattern);
      return Response::error(500, "internal error");
    }
  } catch (const std::exception& e) {
    return Response::error(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return Response::error(500, "internal error");
  }
}

}  // namespace omicsd::http
