#include "service/objects/s3_sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>

#include "host/common/error.hpp"
#include "service/util/sha256.hpp"

namespace omicsd {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::string hmac_raw(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), out, &n))
    throw Error("HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string to_hex(std::string_view raw) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  s.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    s += kHex[c >> 4];
    s += kHex[c & 15];
  }
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string canonical_query(const Pairs& query) {
  Pairs enc;
  for (const auto& [k, v] : query) enc.emplace_back(uri_encode(k, false), uri_encode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string s;
  for (const auto& [k, v] : enc) s += (s.empty() ? "" : "&") + k + "=" + v;
  return s;
}

struct Scope {
  std::string date;  // yyyymmdd
  std::string text;  // date/region/s3/aws4_request
};

Scope scope_of(const std::string& amzdate, const std::string& region) {
  const std::string date = amzdate.substr(0, 8);
  return {date, date + "/" + region + "/s3/aws4_request"};
}

// Signature of the canonical request (headers: lower-case name -> value, sorted).
std::string signature(const S3Credentials& creds, const std::string& region, const std::string& amzdate,
                      const std::string& method, const std::string& uri, const std::string& query,
                      const Pairs& sorted_headers, const std::string& payload, std::string* signed_names) {
  std::string canon_headers, names;
  for (const auto& [k, v] : sorted_headers) {
    canon_headers += k + ":" + trim(v) + "\n";
    names += (names.empty() ? "" : ";") + k;
  }
  const std::string canonical =
      method + "\n" + uri + "\n" + query + "\n" + canon_headers + "\n" + names + "\n" + payload;
  const Scope sc = scope_of(amzdate, region);
  const std::string to_sign = "AWS4-HMAC-SHA256\n" + amzdate + "\n" + sc.text + "\n" + sha256_hex(canonical);
  std::string key = hmac_raw("AWS4" + creds.secret_access_key, sc.date);
  key = hmac_raw(key, region);
  key = hmac_raw(key, "s3");
  key = hmac_raw(key, "aws4_request");
  if (signed_names) *signed_names = names;
  return to_hex(hmac_raw(key, to_sign));
}

}  // namespace

std::string amz_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[20];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string uri_encode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Pairs sigv4_sign_headers(const S3Credentials& creds, const std::string& region, const SigV4Request& req,
                         std::time_t now) {
  const std::string date = amz_date(now);
  Pairs added = {{"x-amz-date", date}, {"x-amz-content-sha256", req.payload_sha256}};
  if (!creds.session_token.empty()) added.emplace_back("x-amz-security-token", creds.session_token);
  Pairs all = {{"host", req.host}};
  for (const auto& [k, v] : req.headers) all.emplace_back(lower(k), v);
  for (const auto& h : added) all.push_back(h);
  std::sort(all.begin(), all.end());
  std::string names;
  const std::string sig = signature(creds, region, date, req.method, req.canonical_uri,
                                    canonical_query(req.query), all, req.payload_sha256, &names);
  added.emplace_back("Authorization", "AWS4-HMAC-SHA256 Credential=" + creds.access_key_id + "/" +
                                          scope_of(date, region).text + ", SignedHeaders=" + names +
                                          ", Signature=" + sig);
  return added;
}

std::string sigv4_presign_query(const S3Credentials& creds, const std::string& region,
                                const SigV4Request& req, std::time_t now, int expires_seconds) {
  if (expires_seconds < 1 || expires_seconds > 604800)
    throw InputError("presigned URL lifetime must be 1..604800 seconds, not " +
                     std::to_string(expires_seconds));
  const std::string date = amz_date(now);
  Pairs query = req.query;
  query.emplace_back("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  query.emplace_back("X-Amz-Credential", creds.access_key_id + "/" + scope_of(date, region).text);
  query.emplace_back("X-Amz-Date", date);
  query.emplace_back("X-Amz-Expires", std::to_string(expires_seconds));
  query.emplace_back("X-Amz-SignedHeaders", "host");
  if (!creds.session_token.empty()) query.emplace_back("X-Amz-Security-Token", creds.session_token);
  const std::string q = canonical_query(query);
  const std::string sig = signature(creds, region, date, req.method, req.canonical_uri, q,
                                    {{"host", req.host}}, "UNSIGNED-PAYLOAD", nullptr);
  return q + "&X-Amz-Signature=" + sig;
}

}  // namespace omicsd
