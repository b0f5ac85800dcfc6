#pragma once
// AWS Signature Version 4 for S3 requests (the signing scheme every S3-compatible server speaks):
// an Authorization header for a request this process sends, or the query string of a presigned URL
// that another process (a worker, a client following a redirect) uses without credentials.
// Written from the AWS "Signature Version 4 signing process" reference; HMAC-SHA256 by OpenSSL.
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace omicsd {

// Credentials as the AWS SDKs read them (never logged; see s3_config.hpp).
struct S3Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials (roles); empty otherwise
  bool empty() const { return access_key_id.empty() || secret_access_key.empty(); }
};

// The parts of a request that are signed. `host` is the Host header exactly as sent (with ":port"
// only for a non-default port); `canonical_uri` the path already percent-encoded (uri_encode_path);
// `query` the parameters (name, value) unencoded; `headers` every other header to sign (names in
// any case, e.g. range, x-amz-content-sha256); `payload_sha256` the hex SHA-256 of the body, or
// "UNSIGNED-PAYLOAD".
struct SigV4Request {
  std::string method;
  std::string host;
  std::string canonical_uri;
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_sha256;
};

// "20130524T000000Z" of a UTC time.
std::string amz_date(std::time_t t);
// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay, everything else is %XX
// (upper-case hex); '/' stays when `keep_slash`.
std::string uri_encode(std::string_view s, bool keep_slash);

// The headers to add to the request: x-amz-date, x-amz-content-sha256, x-amz-security-token (with
// a session token) and Authorization. `req.headers` must not already hold those.
std::vector<std::pair<std::string, std::string>> sigv4_sign_headers(const S3Credentials& creds,
                                                                    const std::string& region,
                                                                    const SigV4Request& req, std::time_t now);

// The query string of a presigned URL for `req` (its query parameters first, then X-Amz-Algorithm ...
// X-Amz-Signature), valid `expires_seconds` (1..604800) from `now`. Only `host` is a signed header;
// the payload is UNSIGNED-PAYLOAD.
std::string sigv4_presign_query(const S3Credentials& creds, const std::string& region,
                                const SigV4Request& req, std::time_t now, int expires_seconds);

}  // namespace omicsd
