#pragma once
// A small S3 client on the project's HTTP client (Beast, TLS, retries with backoff): HEAD, ranged and
// whole GETs streamed to files with their SHA-256, PUT with the body's SHA-256 signed (the server
// refuses a body that does not match), multipart uploads for large files (parts retried one by one;
// a failed upload is aborted, and one whose process dies is never completed, so in every case an
// object is visible only when complete), DELETE, presigned GET URLs. Requests are signed with SigV4
// (s3_sigv4.hpp); credentials never appear in logs or errors.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "service/http/http_client.hpp"
#include "service/objects/s3_config.hpp"

namespace omicsd {

class S3Client {
 public:
  // Throws InputError for a malformed endpoint; Error when no credentials can be found.
  explicit S3Client(S3Config config);
  ~S3Client();

  const S3Config& config() const { return config_; }

  struct Head {
    uint64_t size = 0;
    std::string etag;
  };
  // nullopt when there is no such object (404); throws HttpClientError for other failures.
  std::optional<Head> head(const S3Url& u);
  // Streams the object (or `length` bytes from `offset`) into `dest` (via dest.part, renamed when
  // complete) and hashes it. Throws HttpClientError (status 404 for a missing object).
  FetchResult get_to_file(const S3Url& u, const std::filesystem::path& dest);
  FetchResult get_range_to_file(const S3Url& u, uint64_t offset, uint64_t length,
                                const std::filesystem::path& dest);
  // A small object whole (at most `max_bytes`); nullopt when it does not exist.
  std::optional<std::string> get_string(const S3Url& u, uint64_t max_bytes = 1 << 20);
  // Uploads a file whose hex SHA-256 is `sha256_hex`: one PUT up to multipart_threshold bytes,
  // else a multipart upload of part_size parts (each part's SHA-256 signed too).
  void put_file(const S3Url& u, const std::filesystem::path& src, const std::string& sha256_hex);
  void put_bytes(const S3Url& u, std::string_view data);
  void remove(const S3Url& u);
  // The ids of the multipart uploads of key `u` begun and neither completed nor aborted (a process
  // killed mid-upload leaves one: invisible, but its parts are billed until a bucket lifecycle rule
  // AbortIncompleteMultipartUpload or abort_upload removes them).
  std::vector<std::string> pending_uploads(const S3Url& u);
  void abort_upload(const S3Url& u, const std::string& upload_id);
  // Creates the bucket (tests and first-time setup); an existing bucket of ours is fine.
  void create_bucket(const std::string& bucket);
  // A URL anyone may GET for config().presign_seconds (or `seconds`), without credentials.
  std::string presign_get(const S3Url& u, int seconds = 0);

  uint64_t multipart_threshold = uint64_t(64) << 20;
  uint64_t part_size = uint64_t(64) << 20;  // 5 MiB .. 5 GiB; at most 10,000 parts per object

 private:
  struct Target {
    std::string base_url;  // scheme://host[:port]
    std::string host;      // the Host header as sent
    std::string path;      // percent-encoded path, /bucket/key (path-style) or /key
  };
  Target target(const S3Url& u) const;
  HttpClient& client_for(const std::string& base_url);
  S3Credentials credentials();
  // Signed headers for a request on `t` with `query` and body hash `payload`, plus `extra`.
  HttpClient::Headers sign(const std::string& method, const Target& t, const std::string& query,
                           const std::string& payload, HttpClient::Headers extra = {});
  // Throws HttpClientError with S3's <Code>/<Message> for a status >= 300.
  void check(const HttpResponse& r, const std::string& method, const Target& t) const;
  void put_multipart(const S3Url& u, const std::filesystem::path& src, uint64_t size);

  S3Config config_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<HttpClient>> clients_;
  S3Credentials role_credentials_;  // from the ECS/Batch task role endpoint
  int64_t role_fetched_ms_ = 0;
};

// "s3://bucket/key" for an s3:// URL of a prefix joined with a relative key.
S3Url s3_join(const S3Url& prefix, const std::string& rel);

}  // namespace omicsd
