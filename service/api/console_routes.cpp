// The web console's static files (console_routes.hpp), served from the bytes embedded at build time.
#include "service/api/console_routes.hpp"

#include <algorithm>

namespace omicsd {
namespace {
using http::HttpError;
using http::Request;
using http::Response;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The headers every console answer carries (files and the redirect alike).
void secure(Response& r) {
  r.set_header("Content-Security-Policy", kConsoleCsp);
  r.set_header("X-Content-Type-Options", "nosniff");
  r.set_header("X-Frame-Options", "DENY");
  r.set_header("Referrer-Policy", "no-referrer");
  r.set_header("Cache-Control", "no-cache");
}

Response serve_asset(std::string_view name) {
  const auto assets = console_assets();
  const auto it =
      std::find_if(assets.begin(), assets.end(), [&](const ConsoleAsset& a) { return a.name == name; });
  if (it == assets.end()) throw HttpError(404, "no such console file: " + std::string(name));
  Response r = Response::text(std::string(it->bytes), 200, console_content_type(name));
  secure(r);
  return r;
}

}  // namespace

const char* const kConsoleCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

std::string console_content_type(std::string_view name) {
  if (ends_with(name, ".html")) return "text/html; charset=utf-8";
  if (ends_with(name, ".css")) return "text/css; charset=utf-8";
  if (ends_with(name, ".js")) return "text/javascript; charset=utf-8";
  if (ends_with(name, ".svg")) return "image/svg+xml";
  if (ends_with(name, ".png")) return "image/png";
  return "application/octet-stream";
}

void add_console_routes(http::Router& router) {
  router.get("/ui", [](Request&) {
    Response r = Response::text("", 308);
    r.set_header("Location", "/ui/");
    secure(r);
    return r;
  });
  // {file} is one percent-decoded path segment: "..", "a/../b" or "%2e%2e%2f.." are looked up as names
  // among the embedded files and are not found.
  router.get("/ui/{file}", [](Request& req) {
    const std::string file = req.param("file");
    return serve_asset(file.empty() ? "index.html" : file);
  });
}

}  // namespace omicsd
