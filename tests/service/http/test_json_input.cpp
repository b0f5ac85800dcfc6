// The one parser of JSON from outside (service/http/json_input.hpp): nesting limit on the raw bytes,
// every nlohmann exception turned into InputError.
#include <gtest/gtest.h>

#include <string>

#include "host/common/error.hpp"
#include "service/http/http_router.hpp"
#include "service/http/json_input.hpp"

namespace omicsd {
namespace {

TEST(JsonInput, CountsNestingOutsideStringsOnly) {
  EXPECT_EQ(json_nesting_depth("1"), 0);
  EXPECT_EQ(json_nesting_depth("[]"), 1);
  EXPECT_EQ(json_nesting_depth(R"({"a": [1, {"b": []}], "c": {}})"), 4);
  EXPECT_EQ(json_nesting_depth(R"(["[[[[{{{{", "\"[[[["])"), 1);     // brackets and escaped quotes in strings
  EXPECT_EQ(json_nesting_depth(R"(["\\", [[]]])"), 3);               // an escaped backslash ends nothing
  EXPECT_EQ(json_nesting_depth(std::string(100'000, '['), 64), 65);  // stops once past the limit
  EXPECT_EQ(json_nesting_depth("]]]][]"), 1);                        // stray closers do not go negative
}

TEST(JsonInput, RefusesDeepDocumentsAndMapsEveryParseFailure) {
  EXPECT_EQ(parse_json_input(std::string(64, '[') + std::string(64, ']'), "body").size(), 1u);
  for (const std::string& bad :
       {std::string(65, '[') + std::string(65, ']'), std::string(100'000, '[') + std::string(100'000, ']'),
        std::string(R"({"a": )") + std::string(100'000, '{')}) {
    try {
      parse_json_input(bad, "body");
      ADD_FAILURE() << "accepted a document nested " << json_nesting_depth(bad, 1 << 30) << " deep";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("nested deeper than 64 levels"), std::string::npos) << e.what();
    }
  }
  for (const char* bad : {"1e400", "[-1e400]", "{", "[1,]", "\"\xff\"", "", "nul", "{\"a\":1} x"}) {
    try {
      parse_json_input(bad, "body");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("body: ", 0), 0u) << e.what();
      EXPECT_EQ(std::string(e.what()).find("[json.exception"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(parse_json_input("[18446744073709551615, -9223372036854775808, 1e308]", "body").size(), 3u);
}

TEST(JsonInput, RouterAnswers400ForDeepBodiesAndJsonTypeErrors) {
  http::Router r;
  r.post("/echo", [](http::Request& req) {
    const auto b = http::parse_json_body(req);
    return http::Response::json({{"n", b.at("n").get<int>()}});  // type_error / out_of_range: the caller's
  });
  auto post = [&](std::string body) {
    http::Request req;
    req.method = "POST";
    req.path = req.target = "/echo";
    req.body = std::move(body);
    return r.dispatch(req);
  };
  EXPECT_EQ(post(R"({"n": 3})").status, 200);
  EXPECT_EQ(post(std::string(100'000, '[') + std::string(100'000, ']')).status, 400);
  EXPECT_EQ(post(R"({"n": "three"})").status, 400);
  EXPECT_EQ(post(R"({"m": 3})").status, 400);
  EXPECT_EQ(post(R"({"n": 1e400})").status, 400);
  EXPECT_EQ(post("").status, 400);
}

}  // namespace
}  // namespace omicsd
