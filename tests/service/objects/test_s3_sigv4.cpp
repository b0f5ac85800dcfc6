// SigV4 signing against the worked examples of the AWS S3 reference ("Signature Calculations for the
// Authorization Header" and "Query String Authentication"): same keys, same requests, the
// signatures AWS publishes. Plus the s3:// URL rules and the --allow-s3 allow-list.
#include <gtest/gtest.h>

#include "host/common/error.hpp"
#include "service/objects/s3_config.hpp"
#include "service/objects/s3_sigv4.hpp"
#include "service/util/sha256.hpp"

namespace omicsd {
namespace {

const S3Credentials kCreds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
constexpr std::time_t k20130524 = 1369353600;  // 2013-05-24T00:00:00Z
const std::string kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string header(const std::vector<std::pair<std::string, std::string>>& h, const std::string& name) {
  for (const auto& [k, v] : h)
    if (k == name) return v;
  return "";
}

std::string signature_of(const std::string& authorization) {
  return authorization.substr(authorization.find("Signature=") + 10);
}

TEST(S3SigV4, GetObjectWithRange) {
  SigV4Request r{"GET", "examplebucket.s3.amazonaws.com", "/test.txt", {}, {{"Range", "bytes=0-9"}}, kEmpty};
  const auto h = sigv4_sign_headers(kCreds, "us-east-1", r, k20130524);
  EXPECT_EQ(header(h, "x-amz-date"), "20130524T000000Z");
  EXPECT_EQ(header(h, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(S3SigV4, PutObjectWithEncodedKeyAndPayloadHash) {
  const std::string body = "Welcome to Amazon S3.";
  SigV4Request r{"PUT",
                 "examplebucket.s3.amazonaws.com",
                 "/" + uri_encode("test$file.text", true),
                 {},
                 {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                 sha256_hex(body)};
  EXPECT_EQ(r.canonical_uri, "/test%24file.text");
  const auto h = sigv4_sign_headers(kCreds, "us-east-1", r, k20130524);
  EXPECT_EQ(signature_of(header(h, "Authorization")),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(S3SigV4, QueryParametersAreSortedAndEncoded) {
  SigV4Request lifecycle{"GET", "examplebucket.s3.amazonaws.com", "/", {{"lifecycle", ""}}, {}, kEmpty};
  EXPECT_EQ(
      signature_of(header(sigv4_sign_headers(kCreds, "us-east-1", lifecycle, k20130524), "Authorization")),
      "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  SigV4Request list{"GET", "examplebucket.s3.amazonaws.com", "/", {{"prefix", "J"}, {"max-keys", "2"}}, {},
                    kEmpty};
  EXPECT_EQ(signature_of(header(sigv4_sign_headers(kCreds, "us-east-1", list, k20130524), "Authorization")),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(S3SigV4, PresignedUrl) {
  SigV4Request r{"GET", "examplebucket.s3.amazonaws.com", "/test.txt", {}, {}, ""};
  EXPECT_EQ(
      sigv4_presign_query(kCreds, "us-east-1", r, k20130524, 86400),
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%"
      "2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-"
      "Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  EXPECT_THROW(sigv4_presign_query(kCreds, "us-east-1", r, k20130524, 0), InputError);
}

TEST(S3SigV4, SessionTokenIsSigned) {
  S3Credentials c = kCreds;
  c.session_token = "token/with+chars";
  SigV4Request r{"GET", "examplebucket.s3.amazonaws.com", "/test.txt", {}, {}, kEmpty};
  const auto h = sigv4_sign_headers(c, "us-east-1", r, k20130524);
  EXPECT_EQ(header(h, "x-amz-security-token"), c.session_token);
  EXPECT_NE(header(h, "Authorization").find("x-amz-security-token"), std::string::npos);
  EXPECT_NE(
      sigv4_presign_query(c, "us-east-1", r, k20130524, 60).find("X-Amz-Security-Token=token%2Fwith%2Bchars"),
      std::string::npos);
}

TEST(S3Url, ParsesAndRefusesMalformed) {
  const S3Url u = parse_s3_url("s3://my-bucket/a/b/c.fa");
  EXPECT_EQ(u.bucket, "my-bucket");
  EXPECT_EQ(u.key, "a/b/c.fa");
  EXPECT_EQ(parse_s3_url("s3://my-bucket").key, "");
  for (const char* bad : {"s3:/x/y", "http://b/k", "s3://", "s3://ab/k", "s3://UPPER/k", "s3://-bad/k",
                          "s3://b_k/x", "s3://bucket/a/../b", "s3://bucket/./b", "s3://bucket/a\nb"})
    EXPECT_THROW(parse_s3_url(bad), InputError) << bad;
}

TEST(S3AllowList, BucketAndPrefixBoundaries) {
  const S3AllowList allow({"s3://genomes/cohort1", "s3://scratch-bucket"});
  EXPECT_TRUE(allow.allows(parse_s3_url("s3://genomes/cohort1/s1.fq.gz")));
  EXPECT_TRUE(allow.allows(parse_s3_url("s3://genomes/cohort1/sub/s1.fq.gz")));
  EXPECT_FALSE(allow.allows(parse_s3_url("s3://genomes/cohort10/s1.fq.gz")));  // not a '/' boundary
  EXPECT_FALSE(allow.allows(parse_s3_url("s3://genomes/other/s1.fq.gz")));
  EXPECT_TRUE(allow.allows(parse_s3_url("s3://scratch-bucket/anything")));
  EXPECT_FALSE(allow.allows(parse_s3_url("s3://other-bucket/cohort1/x")));
  EXPECT_THROW(allow.check(parse_s3_url("s3://other-bucket/x")), InputError);
  EXPECT_FALSE(S3AllowList().allows(parse_s3_url("s3://genomes/cohort1/x")));
}

TEST(S3Config, SharedCredentialsFileProfiles) {
  const std::string path = ::testing::TempDir() + "/omicsd-s3-credentials";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(
        "[default]\naws_access_key_id = AK1\naws_secret_access_key = SK1\n\n[other]\n"
        "aws_access_key_id=AK2\naws_secret_access_key=SK2\naws_session_token=T2\n",
        f);
    std::fclose(f);
  }
  const S3Credentials d = read_shared_credentials(path, "default");
  EXPECT_EQ(d.access_key_id, "AK1");
  EXPECT_EQ(d.secret_access_key, "SK1");
  const S3Credentials o = read_shared_credentials(path, "other");
  EXPECT_EQ(o.session_token, "T2");
  EXPECT_TRUE(read_shared_credentials(path, "missing").empty());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace omicsd
