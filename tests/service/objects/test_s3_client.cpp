// The S3 client and the S3 object backend against a real S3-compatible server (moto, started by
// scripts/s3-test-server.sh): whole and ranged downloads with their digests, multipart uploads,
// presigned URLs read without credentials, metadata documents, missing objects.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "host/common/error.hpp"
#include "service/http/http_client.hpp"
#include "service/objects/object_backend.hpp"
#include "service/objects/s3_client.hpp"
#include "service/util/sha256.hpp"
#include "tests/support/s3_test_server.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = char(rng());
  return s;
}

struct S3ClientTest : ::testing::Test {
  void SetUp() override {
    test::use_s3_test_server();
    client = std::make_shared<S3Client>(S3Config::from_environment());
    client->create_bucket("omicsd-client-test");
  }
  test::TempDir tmp;
  std::shared_ptr<S3Client> client;
};

TEST_F(S3ClientTest, PutHeadGetRangeDelete) {
  const std::string data = random_bytes(300000, 1);
  const fs::path src = tmp.path / "src.bin";
  test::write_file(src, data);
  const S3Url u = parse_s3_url("s3://omicsd-client-test/dir/with space+plus/obj.bin");
  EXPECT_FALSE(client->head(u));
  client->put_file(u, src, sha256_hex(data));
  const auto h = client->head(u);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->size, data.size());

  const FetchResult whole = client->get_to_file(u, tmp.path / "whole.bin");
  EXPECT_EQ(whole.sha256, "sha256:" + sha256_hex(data));
  EXPECT_EQ(test::read_file(tmp.path / "whole.bin"), data);

  client->get_range_to_file(u, 1000, 5000, tmp.path / "range.bin");
  EXPECT_EQ(test::read_file(tmp.path / "range.bin"), data.substr(1000, 5000));

  client->remove(u);
  EXPECT_FALSE(client->head(u));
  try {
    client->get_to_file(u, tmp.path / "gone.bin");
    FAIL() << "a deleted object was downloaded";
  } catch (const HttpClientError& e) {
    EXPECT_EQ(e.status(), 404);
  }
  EXPECT_FALSE(fs::exists(tmp.path / "gone.bin"));
  EXPECT_FALSE(client->get_string(u));
}

TEST_F(S3ClientTest, MultipartUploadAssemblesPartsInOrder) {
  client->multipart_threshold = 5u << 20;
  client->part_size = 5u << 20;  // S3's smallest part
  const std::string data = random_bytes((11u << 20) + 12345, 2);
  const fs::path src = tmp.path / "big.bin";
  test::write_file(src, data);
  const S3Url u = parse_s3_url("s3://omicsd-client-test/big.bin");
  client->put_file(u, src, sha256_hex(data));
  ASSERT_EQ(client->head(u)->size, data.size());
  EXPECT_EQ(client->get_to_file(u, tmp.path / "back.bin").sha256, "sha256:" + sha256_hex(data));
}

TEST_F(S3ClientTest, PresignedUrlNeedsNoCredentials) {
  const S3Url u = parse_s3_url("s3://omicsd-client-test/presigned/file.txt");
  client->put_bytes(u, "hello presigned");
  const std::string url = client->presign_get(u, 300);
  const auto path_at = url.find('/', url.find("://") + 3);
  HttpClientOptions o;
  o.base_url = url.substr(0, path_at);
  HttpClient plain(o);  // no signing headers at all: the query string carries the signature
  const HttpResponse r = plain.send("GET", url.substr(path_at));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello presigned");
}

TEST_F(S3ClientTest, ObjectBackendRoundTripAndMetadata) {
  ObjectStore a(tmp.path / "a"), b(tmp.path / "b");
  S3ObjectBackend backend(client, parse_s3_url("s3://omicsd-client-test/fleet"));
  const ObjectRef ref = a.put_bytes(random_bytes(70000, 3));
  EXPECT_FALSE(backend.size_of(ref.digest));
  backend.upload(a, ref);
  EXPECT_EQ(backend.size_of(ref.digest), ref.size);
  EXPECT_TRUE(client->head(parse_s3_url("s3://omicsd-client-test/fleet/objects/sha256/" +
                                        ref.digest.substr(7, 2) + "/" + ref.digest.substr(9))));
  const ObjectRef got = backend.download(ref.digest, b);
  EXPECT_EQ(got.digest, ref.digest);
  EXPECT_EQ(test::read_file(b.path_of(ref.digest)), test::read_file(a.path_of(ref.digest)));
  const std::string missing = "sha256:" + std::string(64, 'a');
  EXPECT_THROW(backend.download(missing, b), InputError);
  EXPECT_TRUE(fs::is_empty(b.tmp_dir()));  // no partial download left behind

  EXPECT_FALSE(backend.get_meta("meta/index-of/x.json"));
  backend.put_meta("meta/index-of/x.json", "{\"a\":1}");
  EXPECT_EQ(backend.get_meta("meta/index-of/x.json"), "{\"a\":1}");
  EXPECT_THROW(backend.put_meta("../escape", "x"), InputError);
}

// The multipart upload a killed worker left under an object's key (begun here with curl, another
// client) is aborted once the object is uploaded whole; a pending upload of another key is not.
TEST_F(S3ClientTest, UploadingAnObjectAbortsTheStaleUploadsOfItsKeyOnly) {
  ObjectStore local(tmp.path / "local");
  S3ObjectBackend backend(client, parse_s3_url("s3://omicsd-client-test/stale"));
  const ObjectRef ref = local.put_bytes(random_bytes(10000, 7));
  const ObjectRef other = local.put_bytes(random_bytes(10000, 8));
  for (const ObjectRef& r : {ref, other}) {
    const S3Url u = backend.object_url(r.digest);
    std::string out;
    ASSERT_EQ(test::run_command("curl -sf -X POST --aws-sigv4 aws:amz:us-east-1:s3 -u k:s '" +
                                    test::s3_test_endpoint() + "/" + u.bucket + "/" + u.key + "?uploads'",
                                &out),
              0)
        << out;
    ASSERT_EQ(client->pending_uploads(u).size(), 1u);
  }
  backend.upload(local, ref);
  EXPECT_EQ(backend.size_of(ref.digest), ref.size);
  EXPECT_TRUE(client->pending_uploads(backend.object_url(ref.digest)).empty());
  const auto left = client->pending_uploads(backend.object_url(other.digest));
  ASSERT_EQ(left.size(), 1u);
  client->abort_upload(backend.object_url(other.digest), left[0]);
}

TEST_F(S3ClientTest, CorruptObjectIsRefusedOnDownload) {
  // An object stored under another content's key (a bucket tampered with) never enters a store.
  ObjectStore local(tmp.path / "local");
  S3ObjectBackend backend(client, parse_s3_url("s3://omicsd-client-test/tampered"));
  const std::string digest = "sha256:" + sha256_hex("the real content");
  client->put_bytes(backend.object_url(digest), "something else");
  EXPECT_THROW(backend.download(digest, local), Error);
  EXPECT_FALSE(local.has(digest));
}

}  // namespace
}  // namespace omicsd

namespace omicsd {
namespace {

// A process killed in the middle of a multipart upload leaves no object under the key (only a
// pending upload, invisible to readers), and the upload done again completes with the right bytes.
TEST_F(S3ClientTest, KilledMidUploadLeavesNoVisibleObjectAndTheRetryCompletes) {
  const std::string data = random_bytes(60u << 20, 4);
  const fs::path src = tmp.path / "killed.bin";
  test::write_file(src, data);
  const std::string hex = sha256_hex(data);
  const S3Url u = parse_s3_url("s3://omicsd-client-test/killed/object.bin");
  const pid_t child = ::fork();
  if (child == 0) {
    try {
      S3Client c(S3Config::from_environment());
      c.multipart_threshold = c.part_size = 5u << 20;
      c.put_file(u, src, hex);
    } catch (...) {
    }
    ::_exit(0);
  }
  // Kill it once its upload has begun (and before it can finish: 12 parts through a Python server).
  bool begun = false;
  for (int i = 0; i < 1000 && !begun; ++i) {
    begun = !client->pending_uploads(u).empty();
    if (!begun) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_TRUE(begun) << "the child's upload never began";
  const auto pending = client->pending_uploads(u);
  ASSERT_EQ(pending.size(), 1u) << "the upload finished before the kill: nothing was tested";
  EXPECT_FALSE(client->head(u)) << "a partial object is visible";
  EXPECT_FALSE(client->get_string(u));

  client->multipart_threshold = client->part_size = 5u << 20;
  client->put_file(u, src, hex);
  ASSERT_EQ(client->head(u)->size, data.size());
  EXPECT_EQ(client->get_to_file(u, tmp.path / "back.bin").sha256, "sha256:" + hex);
  client->abort_upload(u, pending[0]);  // the dead process's parts
  EXPECT_TRUE(client->pending_uploads(u).empty());
}

}  // namespace
}  // namespace omicsd
