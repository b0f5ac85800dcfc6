#pragma once
// libpq connection-string helpers: describe a URL without its password, and scrub passwords out of
// libpq messages (which echo a malformed URI whole).
#include <string>

namespace omicsd::pg {

// s without trailing newlines, carriage returns and spaces (libpq messages end in "\n").
std::string trim(std::string s);
// "postgres://user@host:port/db" from a libpq URI or key=value string: never the password or other
// options. Empty when the string does not parse.
std::string describe_url(const std::string& url);
// `msg` with every password in `url` replaced by "***".
std::string redact(std::string msg, const std::string& url);

}  // namespace omicsd::pg
