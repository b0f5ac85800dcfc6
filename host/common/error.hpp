#pragma once
#include <stdexcept>
#include <string>

namespace omicsd {

// Every engine failure is an Error whose message names the file, record or field at fault, so the
// CLI can print it as one line and the daemon can return it verbatim in a JSON error body.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Bad user input (malformed records, mismatched files): distinct so callers can map it to 4xx / exit 2.
class InputError : public Error {
 public:
  explicit InputError(const std::string& what) : Error(what) {}
};

}  // namespace omicsd
