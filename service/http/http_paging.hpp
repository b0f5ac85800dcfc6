#pragma once
// The paging parameters of every list route (docs/openapi.json: page_size 1..1000, an opaque
// page_token, next_page_token null on the last page), parsed and answered in one place so that every
// route accepts the same values and refuses the rest with the same 400.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "service/http/http_router.hpp"

namespace omicsd::http {

// The most rows a page holds; a larger page_size is served as this many.
inline constexpr int kMaxPageSize = 1000;

struct PageParams {
  std::optional<int> page_size;  // absent (or empty): the route's default
  std::string page_token;        // absent: the first page
};

// page_size: a positive integer (decimal digits only); one above kMaxPageSize means kMaxPageSize.
// Anything else throws HttpError(400) naming the value.
int parse_page_size(std::string_view text);
// The same rule for a page_size given in a JSON body: a positive JSON integer.
int parse_json_page_size(const nlohmann::json& value);

// ?page_size=&page_token= of a request.
PageParams page_params(const Request& req);

// next_page_token as the API answers it: null on the last page (an empty token).
nlohmann::json next_page_token_json(const std::string& token);

}  // namespace omicsd::http
