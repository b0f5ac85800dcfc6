#pragma once
// JSON from outside the process (request bodies, a server's answers, cohort rule files, index files a
// client can influence): one parser with a nesting limit, so a hostile document can neither overflow
// the stack later (json::dump, comparisons and copies recurse per level) nor escape as an nlohmann
// exception (syntax errors, 1e400, invalid UTF-8 all become InputError).
#include <nlohmann/json.hpp>
#include <string_view>

namespace omicsd {

// Deepest nesting of arrays and objects accepted from outside: generous for every document of the
// API (the deepest, a cohort rule, is a handful of levels), far below what recursion can survive.
inline constexpr int kMaxJsonDepth = 64;

// The deepest nesting of '[' and '{' outside strings, counted on the raw bytes (no allocation); stops
// counting once past `stop_above` (returns that depth) so a 100,000-deep document costs nothing.
int json_nesting_depth(std::string_view text, int stop_above = kMaxJsonDepth);

// Parses `text` as one JSON document; throws InputError naming `what` ("request body", ...) when it
// nests deeper than max_depth, is malformed, or holds a number out of range. Never throws an
// nlohmann exception.
nlohmann::json parse_json_input(std::string_view text, std::string_view what, int max_depth = kMaxJsonDepth);

// The message of an nlohmann exception for a client: its text without the "[json.exception...]"
// prefix, prefixed by what was being read.
std::string json_error_message(std::string_view what, const nlohmann::json::exception& e);

}  // namespace omicsd
