#pragma once
// Bearer-token authentication with scopes for the HTTP API.
//
// Token file: one `token scope[,scope...]` per line; blank lines and `#` comments are ignored.
// Scopes: client (submit/read runs), worker (lease/complete tasks), metrics (scrape /metrics when
// the daemon runs with --metrics-auth), admin (everything; implies the others). A route declares the scope it
// needs; when no token file is configured the store is disabled and every request is allowed (the embedded
// laptop default).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace omicsd::http {

enum class Scope : std::uint8_t { none = 0, client = 1, worker = 2, admin = 4, metrics = 8 };

// Bit mask of scopes (Scope values or'ed together).
using ScopeMask = std::uint8_t;
inline constexpr ScopeMask kAllScopes = 1 | 2 | 4 | 8;

std::optional<Scope> parse_scope(std::string_view name);
std::string_view to_string(Scope scope);

enum class AuthResult { ok, unauthenticated, forbidden };

class TokenStore {
 public:
  TokenStore() = default;  // disabled: everything allowed

  // Throws std::runtime_error naming the file and line on unreadable files or bad lines.
  static TokenStore load_file(const std::filesystem::path& path);
  static TokenStore parse(std::string_view text, std::string_view origin = "<tokens>");

  // Adds (or replaces) a token; enables the store.
  void add(std::string token, ScopeMask scopes);

  bool enabled() const { return enabled_; }
  std::size_t size() const { return tokens_.size(); }
  std::optional<ScopeMask> scopes_of(std::string_view token) const;

  // ok when the store is disabled or `required` is Scope::none; unauthenticated for an empty or
  // unknown token; forbidden when the token lacks the scope (admin satisfies every scope).
  AuthResult check(std::string_view token, Scope required) const;

 private:
  bool enabled_ = false;
  std::unordered_map<std::string, ScopeMask> tokens_;
};

}  // namespace omicsd::http
