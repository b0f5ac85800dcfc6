#pragma once
// Where S3 objects are and how to reach them: s3:// URLs, the endpoint, region and credentials
// (read the way the AWS SDKs and CLI read them, never logged), and the operator's allow-list of
// buckets and prefixes for client-named s3:// inputs (--allow-s3, the S3 twin of --allow-root).
#include <string>
#include <vector>

#include "service/objects/s3_sigv4.hpp"

namespace omicsd {

// "s3://bucket/key-or-prefix". bucket: 3..63 of [a-z0-9.-] (S3's rules, which also keep it safe in
// a host name); key: no NUL or control characters, at most 1024 bytes, may be empty (a whole bucket).
struct S3Url {
  std::string bucket;
  std::string key;
  std::string str() const { return "s3://" + bucket + "/" + key; }
};
// Throws InputError naming `what` for anything else.
S3Url parse_s3_url(const std::string& url, const std::string& what = "S3 URL");
inline bool is_s3_url(const std::string& s) { return s.rfind("s3://", 0) == 0; }

struct S3Config {
  // Custom endpoint: "http[s]://host[:port]" (MinIO, Ceph radosgw, moto, ...), addressed path-style
  // (endpoint/bucket/key). Empty: AWS, virtual-hosted style https://bucket.s3.<region>.amazonaws.com
  // (path-style when the bucket name has a '.', which TLS host names cannot take).
  std::string endpoint;
  std::string region = "us-east-1";
  S3Credentials credentials;
  int presign_seconds = 3600;  // lifetime of the presigned URLs the daemon hands out

  // From the environment as the AWS CLI reads it: endpoint OMICSD_S3_ENDPOINT, else
  // AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL; region AWS_REGION, else AWS_DEFAULT_REGION; keys
  // AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else the profile AWS_PROFILE
  // (default "default") of the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
  // ~/.aws/credentials), else the ECS/Batch task role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
  // _FULL_URI; fetched by S3Client). Throws InputError for a malformed endpoint.
  static S3Config from_environment();
};

// Reads [profile] of an AWS shared credentials file (INI); empty credentials when absent.
S3Credentials read_shared_credentials(const std::string& path, const std::string& profile);

// The allow-list: s3:// inputs named by clients must lie under one of these (bucket, and a key
// prefix ending at a '/' boundary or the whole bucket when the prefix is empty).
class S3AllowList {
 public:
  S3AllowList() = default;
  explicit S3AllowList(const std::vector<std::string>& urls);  // throws InputError for a bad URL
  bool empty() const { return roots_.empty(); }
  bool allows(const S3Url& u) const;
  // Throws InputError ("... is outside the allowed S3 locations") unless allows(u).
  void check(const S3Url& u) const;

 private:
  std::vector<S3Url> roots_;
};

}  // namespace omicsd
