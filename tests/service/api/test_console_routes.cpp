// The web console's static routes (service/api/console_routes.cpp): every file of service/ui/ is embedded
// byte for byte and served without a token, with its media type, the strict Content-Security-Policy and
// nosniff; /ui redirects to /ui/; anything else under /ui/ (unknown names, "..", encoded slashes) is a 404
// and never reaches the disk.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "service/api/console_routes.hpp"

namespace omicsd {
namespace {
namespace fs = std::filesystem;
using http::Request;
using http::Response;

std::string header_of(const Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A router with the console and one API route, auth on (the console needs no token; the API does).
http::Router console_router() {
  http::Router router;
  auto tokens = std::make_shared<http::TokenStore>();
  tokens->add("client-token", static_cast<http::ScopeMask>(http::Scope::client));
  router.set_auth(tokens);
  router.get(
      "/v1/runs",
      [](Request&) {
        return Response::json({{"runs", nlohmann::json::array()}});
      },
      http::Scope::client);
  add_console_routes(router);
  return router;
}

Response get(const http::Router& router, const std::string& path, const std::string& method = "GET") {
  Request req;
  req.method = method;
  req.path = path;
  req.target = path;
  return router.dispatch(req);
}

TEST(ConsoleRoutes, EveryUiFileIsEmbeddedAndServedWithStrictHeaders) {
  const http::Router router = console_router();
  std::set<std::string> on_disk, embedded;
  for (const auto& e : fs::directory_iterator(fs::path(OMICSD_SOURCE_DIR) / "service" / "ui"))
    on_disk.insert(e.path().filename().string());
  for (const ConsoleAsset& a : console_assets()) embedded.insert(std::string(a.name));
  EXPECT_EQ(embedded, on_disk);
  EXPECT_TRUE(embedded.count("index.html") && embedded.count("console.js") && embedded.count("console.css"));
  for (const std::string& name : embedded) {
    const Response r = get(router, "/ui/" + name);
    ASSERT_EQ(r.status, 200) << name << ": " << r.body;
    EXPECT_TRUE(r.body == read_file(fs::path(OMICSD_SOURCE_DIR) / "service" / "ui" / name))
        << "/ui/" << name << " is not service/ui/" << name << " as it is now (rebuild)";
    EXPECT_EQ(r.content_type, console_content_type(name));
    EXPECT_EQ(header_of(r, "Content-Security-Policy"), kConsoleCsp) << name;
    EXPECT_EQ(header_of(r, "X-Content-Type-Options"), "nosniff") << name;
    EXPECT_EQ(header_of(r, "X-Frame-Options"), "DENY") << name;
    EXPECT_EQ(get(router, "/ui/" + name, "HEAD").status, 200) << name;
  }
  EXPECT_EQ(console_content_type("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(console_content_type("console.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(console_content_type("console.css"), "text/css; charset=utf-8");
  EXPECT_EQ(console_content_type("favicon.svg"), "image/svg+xml");
  // The policy: scripts and styles from the daemon only, nothing inline, no frames of it elsewhere.
  const std::string csp = kConsoleCsp;
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos);
}

TEST(ConsoleRoutes, IndexRedirectAndNoTokenNeeded) {
  const http::Router router = console_router();
  const Response index = get(router, "/ui/");
  ASSERT_EQ(index.status, 200);
  EXPECT_TRUE(index.body == read_file(fs::path(OMICSD_SOURCE_DIR) / "service" / "ui" / "index.html"));
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(header_of(index, "Content-Security-Policy"), kConsoleCsp);
  // The page loads its script and stylesheet from /ui/ (no inline script, no other origin).
  EXPECT_NE(index.body.find("<script src=\"console.js\""), std::string::npos);
  EXPECT_EQ(index.body.find("<script>"), std::string::npos);
  EXPECT_EQ(index.body.find("http"), std::string::npos) << "no external URL in the page";
  const Response redirect = get(router, "/ui");
  EXPECT_EQ(redirect.status, 308);
  EXPECT_EQ(header_of(redirect, "Location"), "/ui/");
  // The data calls still need the token.
  EXPECT_EQ(get(router, "/v1/runs").status, 401);
}

TEST(ConsoleRoutes, UnknownNamesAndTraversalAre404) {
  const http::Router router = console_router();
  for (const std::string path : {"/ui/nope.js", "/ui/..", "/ui/.", "/ui/%2e%2e", "/ui/..%2Fomicsd.db",
                                 "/ui/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/ui/../v1/runs", "/ui/sub/index.html",
                                 "/ui/index.html%00", "/ui/INDEX.HTML", "/ui/console.js/", "/ui//index.html",
                                 "/ui/%2Fetc%2Fpasswd", "/ui/CMakeLists.txt"}) {
    const Response r = get(router, path);
    EXPECT_EQ(r.status, 404) << path << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json") << path;
  }
  Request post;
  post.method = "POST";
  post.path = "/ui/index.html";
  EXPECT_EQ(router.dispatch(post).status, 405);
}

}  // namespace
}  // namespace omicsd
