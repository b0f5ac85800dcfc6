#include "service/http/http_paging.hpp"

#include <algorithm>

namespace omicsd::http {
namespace {
[[noreturn]] void bad_page_size(const std::string& got) {
  throw HttpError(400, "page_size '" + got + "': expected a positive integer (at most " +
                           std::to_string(kMaxPageSize) + " are returned)");
}
}  // namespace

int parse_page_size(std::string_view text) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    bad_page_size(std::string(text.substr(0, 64)));
  int64_t n = 0;
  for (char c : text) {
    n = n * 10 + (c - '0');
    if (n > kMaxPageSize) return kMaxPageSize;  // saturate: no overflow, however many digits
  }
  if (n < 1) bad_page_size(std::string(text));
  return int(n);
}

int parse_json_page_size(const nlohmann::json& value) {
  if (!value.is_number_integer()) bad_page_size(value.dump().substr(0, 64));
  if (value.is_number_unsigned()) {
    const auto n = value.get<uint64_t>();
    if (n < 1) bad_page_size(value.dump());
    return int(std::min<uint64_t>(n, kMaxPageSize));
  }
  const auto n = value.get<int64_t>();
  if (n < 1) bad_page_size(value.dump());
  return int(std::min<int64_t>(n, kMaxPageSize));
}

PageParams page_params(const Request& req) {
  PageParams p;
  if (auto s = req.query_param("page_size"); s && !s->empty()) p.page_size = parse_page_size(*s);
  p.page_token = req.query_param("page_token").value_or("");
  return p;
}

nlohmann::json next_page_token_json(const std::string& token) {
  return token.empty() ? nlohmann::json(nullptr) : nlohmann::json(token);
}

}  // namespace omicsd::http
