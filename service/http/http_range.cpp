// Range request headers (parse_range in http_server.hpp), and the ASCII case-insensitive compare
// the server shares.
#include <cctype>
#include <cstdint>
#include <string_view>

#include "service/http/http_server_impl.hpp"

namespace omicsd::http {

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

namespace {
bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

}  // namespace

// Single `bytes=a-b`, `bytes=a-` or `bytes=-n` ranges; anything else (multiple ranges, other units,
// syntax errors) is ignored and the whole file is sent, as RFC 9110 allows.
ByteRange parse_range(std::string_view h, std::uint64_t size) {
  ByteRange r;
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  if (h.size() < 6 || !iequals_ascii(h.substr(0, 6), "bytes=")) return r;
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return r;
  auto dash = h.find('-');
  if (dash == std::string_view::npos) return r;
  auto a = h.substr(0, dash), b = h.substr(dash + 1);
  std::uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix range
    if (!parse_u64(b, last)) return r;
    if (last == 0 || size == 0) return {ByteRange::unsatisfiable};
    return {ByteRange::ok, size - std::min(last, size), size - 1};
  }
  if (!parse_u64(a, first)) return r;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else {
    if (!parse_u64(b, last) || last < first) return r;
    if (size > 0) last = std::min(last, size - 1);
  }
  if (first >= size) return {ByteRange::unsatisfiable};
  return {ByteRange::ok, first, last};
}

}  // namespace omicsd::http
