#pragma once
// Where a fleet's content-addressed objects live, as one interface with two implementations: the
// local object directory of today (ObjectStore, shared by path) and S3 (any S3-compatible endpoint).
// Both keep the same layout, objects/sha256/<2 hex>/<62 hex> plus small metadata documents under
// meta/ (an object's index, a reference's minimizer index), and the same durability rule: an object
// is visible only when complete (local: temp name, fsync, rename; S3: a PUT or a multipart upload is
// visible only once completed). Processes that share no directory (remote workers, the daemon) move
// objects between their own local ObjectStore and the backend.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "service/objects/object_store.hpp"
#include "service/objects/s3_client.hpp"

namespace omicsd {

class ObjectBackend {
 public:
  virtual ~ObjectBackend() = default;
  // "file:///data/objects" or "s3://bucket/prefix" (never credentials).
  virtual std::string url() const = 0;
  // The size of object `digest`, or nullopt when the backend lacks it. Throws InputError for a
  // malformed digest, Error for trouble reaching the backend.
  virtual std::optional<uint64_t> size_of(const std::string& digest) = 0;
  // Stores a local object (a no-op when the backend already has it).
  virtual void upload(const ObjectStore& local, const ObjectRef& ref) = 0;
  // Fetches object `digest` into `local`, verifying its digest. Throws InputError when the backend
  // has no such object, Error for a corrupt or failed transfer.
  virtual ObjectRef download(const std::string& digest, ObjectStore& local) = 0;
  // A URL that reads the object without the daemon's help (S3: presigned), or nullopt.
  virtual std::optional<std::string> direct_url(const std::string& digest) = 0;
  // Metadata documents at `rel` ("meta/index-of/<hex>.json"): small JSON next to the objects.
  virtual std::optional<std::string> get_meta(const std::string& rel) = 0;
  virtual void put_meta(const std::string& rel, const std::string& content) = 0;
};

// The local object directory (the daemon's --data-dir, or a shared file system).
class LocalObjectBackend : public ObjectBackend {
 public:
  explicit LocalObjectBackend(ObjectStore& store) : store_(store) {}
  std::string url() const override;
  std::optional<uint64_t> size_of(const std::string& digest) override;
  // Once the object is whole (uploaded now, or by another process racing on the same content),
  // aborts the multipart uploads of its key left pending, e.g. by a worker killed mid-upload whose
  // retried task produced the same bytes: their parts are invisible but billed.
  void upload(const ObjectStore& local, const ObjectRef& ref) override;
  ObjectRef download(const std::string& digest, ObjectStore& local) override;
  std::optional<std::string> direct_url(const std::string&) override { return std::nullopt; }
  std::optional<std::string> get_meta(const std::string& rel) override;
  void put_meta(const std::string& rel, const std::string& content) override;

 private:
  ObjectStore& store_;
};

// Objects at s3://bucket/prefix/objects/sha256/<2>/<62>, metadata at s3://bucket/prefix/meta/...
class S3ObjectBackend : public ObjectBackend {
 public:
  S3ObjectBackend(std::shared_ptr<S3Client> client, S3Url prefix);
  std::string url() const override { return prefix_.str(); }
  std::optional<uint64_t> size_of(const std::string& digest) override;
  // Once the object is whole (uploaded now, or by another process racing on the same content),
  // aborts the multipart uploads of its key left pending, e.g. by a worker killed mid-upload whose
  // retried task produced the same bytes: their parts are invisible but billed.
  void upload(const ObjectStore& local, const ObjectRef& ref) override;
  ObjectRef download(const std::string& digest, ObjectStore& local) override;
  std::optional<std::string> direct_url(const std::string& digest) override;
  std::optional<std::string> get_meta(const std::string& rel) override;
  void put_meta(const std::string& rel, const std::string& content) override;

  S3Url object_url(const std::string& digest) const;  // throws InputError for a malformed digest
  S3Client& client() { return *client_; }

 private:
  std::shared_ptr<S3Client> client_;
  S3Url prefix_;
};

// Client-named s3:// inputs: allowed only under the operator's --allow-s3 locations and checked to
// exist (HEAD) with the daemon's credentials.
struct S3InputPolicy {
  S3AllowList allow;
  std::shared_ptr<S3Client> client;  // null: no existence check
  // Throws InputError for a URL outside `allow`, malformed, missing or unreadable.
  void check(const std::string& url) const;
};

// "s3://bucket/prefix" -> S3ObjectBackend (client from S3Config::from_environment()); empty -> the
// local directory `local`. Throws InputError for anything else or a bad URL, Error without credentials.
std::unique_ptr<ObjectBackend> open_object_backend(const std::string& url, ObjectStore& local);

// Fetches `u` (an s3:// input) into `local` as a content-addressed object; hashed while it streams.
ObjectRef download_s3_object(S3Client& client, const S3Url& u, ObjectStore& local);

}  // namespace omicsd
