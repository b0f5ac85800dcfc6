#include "auth.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "service/util/sha256.hpp"

namespace omicsd::http {

std::optional<Scope> parse_scope(std::string_view name) {
  if (name == "client") return Scope::client;
  if (name == "worker") return Scope::worker;
  if (name == "admin") return Scope::admin;
  if (name == "metrics") return Scope::metrics;
  return std::nullopt;
}

std::string_view to_string(Scope scope) {
  switch (scope) {
    case Scope::none:
      return "none";
    case Scope::client:
      return "client";
    case Scope::worker:
      return "worker";
    case Scope::admin:
      return "admin";
    case Scope::metrics:
      return "metrics";
  }
  return "?";
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}
}  // namespace

TokenStore TokenStore::parse(std::string_view text, std::string_view origin) {
  TokenStore store;
  store.enabled_ = true;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    auto fail = [&](const std::string& why) {
      std::ostringstream os;
      os << origin << ":" << line_no << ": " << why
         << " (expected `token scope[,scope]` with scopes client, worker, admin, metrics)";
      throw std::runtime_error(os.str());
    };
    auto sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos) fail("missing scope");
    std::string_view token = line.substr(0, sp);
    std::string_view scopes = trim(line.substr(sp + 1));
    if (scopes.find_first_of(" \t") != std::string_view::npos) fail("unexpected extra field");
    ScopeMask mask = 0;
    while (!scopes.empty()) {
      auto comma = scopes.find(',');
      std::string_view name = trim(scopes.substr(0, comma));
      scopes = comma == std::string_view::npos ? std::string_view{} : scopes.substr(comma + 1);
      auto scope = parse_scope(name);
      if (!scope) fail("unknown scope '" + std::string(name) + "'");
      mask |= static_cast<ScopeMask>(*scope);
    }
    if (mask == 0) fail("missing scope");
    store.tokens_[sha256_hex(token)] = mask;  // by digest, as add() keeps them
  }
  return store;
}

TokenStore TokenStore::load_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read token file " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path.string());
}

// Tokens are kept and looked up by their SHA-256: the lookup's timing (hashing, comparing keys)
// then depends on the digest of what the caller sent, which tells nothing about a valid token, so
// tokens cannot be guessed byte by byte from response times.
void TokenStore::add(std::string token, ScopeMask scopes) {
  enabled_ = true;
  tokens_[sha256_hex(token)] = scopes;
}

std::optional<ScopeMask> TokenStore::scopes_of(std::string_view token) const {
  auto it = tokens_.find(sha256_hex(token));
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

AuthResult TokenStore::check(std::string_view token, Scope required) const {
  if (!enabled_ || required == Scope::none) return AuthResult::ok;
  if (token.empty()) return AuthResult::unauthenticated;
  auto scopes = scopes_of(token);
  if (!scopes) return AuthResult::unauthenticated;
  if (*scopes & static_cast<ScopeMask>(Scope::admin)) return AuthResult::ok;
  if (*scopes & static_cast<ScopeMask>(required)) return AuthResult::ok;
  return AuthResult::forbidden;
}

}  // namespace omicsd::http
