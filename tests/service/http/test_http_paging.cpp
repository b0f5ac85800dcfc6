// Paging parameters of the list routes (service/http/http_paging.hpp): one rule and one error for every
// route, checked against the values docs/openapi.json allows (page_size 1..1000).
#include <gtest/gtest.h>

#include <string>

#include "service/http/http_paging.hpp"

using omicsd::http::HttpError;
using omicsd::http::kMaxPageSize;
using omicsd::http::next_page_token_json;
using omicsd::http::page_params;
using omicsd::http::parse_json_page_size;
using omicsd::http::parse_page_size;
using omicsd::http::Request;
using json = nlohmann::json;

namespace {
// The status and message of the HttpError `f` throws (0 when it throws none).
template <class F>
std::pair<int, std::string> error_of(F&& f) {
  try {
    f();
  } catch (const HttpError& e) {
    return {e.status(), e.what()};
  }
  return {0, ""};
}
}  // namespace

TEST(HttpPaging, QueryPageSizeAcceptsPositiveIntegersAndServesAtMostTheMaximum) {
  EXPECT_EQ(parse_page_size("1"), 1);
  EXPECT_EQ(parse_page_size("50"), 50);
  EXPECT_EQ(parse_page_size("0050"), 50);
  EXPECT_EQ(parse_page_size(std::to_string(kMaxPageSize)), kMaxPageSize);
  EXPECT_EQ(parse_page_size("1001"), kMaxPageSize);
  EXPECT_EQ(parse_page_size("99999999999999999999999999"), kMaxPageSize);  // no overflow
}

TEST(HttpPaging, EveryBadPageSizeIsOneAndTheSame400) {
  for (const std::string bad : {"0", "000", "-1", "+5", "5x", "x", " 5", "1.5", "1e3", ""}) {
    const auto [status, message] = error_of([&] { parse_page_size(bad); });
    EXPECT_EQ(status, 400) << "'" << bad << "'";
    EXPECT_EQ(message, "page_size '" + bad + "': expected a positive integer (at most 1000 are returned)");
  }
  for (const json bad : {json(0), json(-3), json(1.5), json("10"), json(nullptr), json::array()}) {
    const auto [status, message] = error_of([&] { parse_json_page_size(bad); });
    EXPECT_EQ(status, 400) << bad.dump();
    EXPECT_NE(message.find("expected a positive integer"), std::string::npos) << message;
  }
  EXPECT_EQ(parse_json_page_size(json(7)), 7);
  EXPECT_EQ(parse_json_page_size(json(uint64_t(1) << 63)), kMaxPageSize);
}

TEST(HttpPaging, PageParamsOfARequest) {
  Request req;
  auto p = page_params(req);
  EXPECT_FALSE(p.page_size.has_value());
  EXPECT_EQ(p.page_token, "");
  req.query = {{"page_size", ""}, {"page_token", "abc"}};  // empty: the route's default
  p = page_params(req);
  EXPECT_FALSE(p.page_size.has_value());
  EXPECT_EQ(p.page_token, "abc");
  req.query = {{"page_size", "20"}};
  EXPECT_EQ(page_params(req).page_size, 20);
  req.query = {{"page_size", "-2"}};
  EXPECT_EQ(error_of([&] { page_params(req); }).first, 400);
}

TEST(HttpPaging, NextPageTokenIsNullOnTheLastPage) {
  EXPECT_TRUE(next_page_token_json("").is_null());
  EXPECT_EQ(next_page_token_json("t1"), json("t1"));
}
