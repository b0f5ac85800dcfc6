#include "service/objects/object_backend.hpp"

#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <sstream>

#include "host/common/error.hpp"
#include "service/util/ids.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;

// "meta/..." names only: one or more plain segments, no "..", no absolute path.
void check_meta_name(const std::string& rel) {
  bool ok = rel.rfind("meta/", 0) == 0 && rel.find("..") == std::string::npos &&
            rel.find("//") == std::string::npos;
  for (char c : rel)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '-' || c == '_');
  if (!ok) throw InputError("object metadata name '" + rel + "' is not a meta/ path");
}

void remove_quietly(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
  fs::remove(p.string() + ".part", ec);
}

// Fetches with `get` into a temp file of `local`, then adopts it under its computed digest when that
// equals `want` (empty: whatever it is).
template <class Get>
ObjectRef fetch_into(ObjectStore& local, const std::string& want, const std::string& what, Get&& get) {
  const fs::path tmp = local.tmp_dir() / ("s3dl." + random_hex(12));
  FetchResult r;
  try {
    r = get(tmp);
  } catch (const HttpClientError& e) {
    remove_quietly(tmp);
    if (e.status() == 404 || e.status() == 403) throw InputError(what + ": " + e.what());
    throw;
  } catch (...) {
    remove_quietly(tmp);
    throw;
  }
  if (!want.empty() && r.sha256 != want) {
    remove_quietly(tmp);
    throw Error(what + ": the downloaded object has digest " + r.sha256 + ", not " + want);
  }
  return local.adopt_temp(tmp, r.sha256, r.bytes);
}

}  // namespace

std::string LocalObjectBackend::url() const { return "file://" + store_.root().string(); }

std::optional<uint64_t> LocalObjectBackend::size_of(const std::string& digest) {
  if (!is_sha256_digest(digest)) throw InputError("malformed object digest '" + digest + "'");
  if (auto o = store_.get(digest)) return o->size;
  return std::nullopt;
}

void LocalObjectBackend::upload(const ObjectStore& local, const ObjectRef& ref) {
  if (store_.has(ref.digest)) return;
  store_.put_file(local.path_of(ref.digest), ObjectStore::Mode::Copy);
}

ObjectRef LocalObjectBackend::download(const std::string& digest, ObjectStore& local) {
  if (auto have = local.get(digest)) return *have;
  if (!store_.has(digest)) throw InputError("no object " + digest + " in " + url());
  return local.put_file(store_.path_of(digest), ObjectStore::Mode::Copy);
}

std::optional<std::string> LocalObjectBackend::get_meta(const std::string& rel) {
  check_meta_name(rel);
  std::ifstream in(store_.root() / rel, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void LocalObjectBackend::put_meta(const std::string& rel, const std::string& content) {
  check_meta_name(rel);
  const fs::path dst = store_.root() / rel;
  std::error_code ec;
  fs::create_directories(dst.parent_path(), ec);
  const fs::path tmp = dst.string() + ".tmp." + random_hex(8);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out.flush()) throw Error(tmp.string() + ": write failed");
  }
  fs::rename(tmp, dst);
}

S3ObjectBackend::S3ObjectBackend(std::shared_ptr<S3Client> client, S3Url prefix)
    : client_(std::move(client)), prefix_(std::move(prefix)) {}

S3Url S3ObjectBackend::object_url(const std::string& digest) const {
  if (!is_sha256_digest(digest)) throw InputError("malformed object digest '" + digest + "'");
  const std::string hex = digest.substr(7);
  return s3_join(prefix_, "objects/sha256/" + hex.substr(0, 2) + "/" + hex.substr(2));
}

std::optional<uint64_t> S3ObjectBackend::size_of(const std::string& digest) {
  if (auto h = client_->head(object_url(digest))) return h->size;
  return std::nullopt;
}

void S3ObjectBackend::upload(const ObjectStore& local, const ObjectRef& ref) {
  const S3Url u = object_url(ref.digest);
  if (auto h = client_->head(u); h && h->size == ref.size) return;  // content-addressed: already there
  const auto t0 = std::chrono::steady_clock::now();
  try {
    client_->put_file(u, local.path_of(ref.digest), ref.digest.substr(7));
  } catch (const std::exception& e) {
    // Another worker completed the same content first and aborted this upload as stale (below):
    // the key is content-addressed, so its object is the one this upload would have made.
    if (auto h = client_->head(u); !h || h->size != ref.size) throw;
    spdlog::info("upload of {} ended ({}), but the object is already whole in {}", ref.digest, e.what(),
                 prefix_.str());
  }
  spdlog::info("uploaded {} ({} bytes) to {} in {:.1f} s", ref.digest, ref.size, prefix_.str(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  // A process killed mid-upload never completes nor aborts its multipart upload. Now that the
  // object is whole, any upload of this key still pending is redundant. Best effort: without
  // s3:ListBucketMultipartUploads / s3:AbortMultipartUpload the bucket's lifecycle rule
  // (AbortIncompleteMultipartUpload, docs/operations.md) removes them instead.
  try {
    for (const std::string& id : client_->pending_uploads(u)) {
      client_->abort_upload(u, id);
      spdlog::info("aborted a stale multipart upload of {} in {}", ref.digest, prefix_.str());
    }
  } catch (const std::exception& e) {
    spdlog::warn("S3: cannot clean the pending uploads of {} in {}: {}", ref.digest, prefix_.str(), e.what());
  }
}

ObjectRef S3ObjectBackend::download(const std::string& digest, ObjectStore& local) {
  if (auto have = local.get(digest)) return *have;
  const S3Url u = object_url(digest);
  const ObjectRef r = fetch_into(local, digest, "object " + digest + " in " + prefix_.str(),
                                 [&](const fs::path& tmp) { return client_->get_to_file(u, tmp); });
  spdlog::info("downloaded {} ({} bytes) from {}", digest, r.size, prefix_.str());
  return r;
}

std::optional<std::string> S3ObjectBackend::direct_url(const std::string& digest) {
  return client_->presign_get(object_url(digest));
}

std::optional<std::string> S3ObjectBackend::get_meta(const std::string& rel) {
  check_meta_name(rel);
  return client_->get_string(s3_join(prefix_, rel));
}

void S3ObjectBackend::put_meta(const std::string& rel, const std::string& content) {
  check_meta_name(rel);
  client_->put_bytes(s3_join(prefix_, rel), content);
}

std::unique_ptr<ObjectBackend> open_object_backend(const std::string& url, ObjectStore& local) {
  if (is_s3_url(url)) {
    const S3Url prefix = parse_s3_url(url, "--objects");
    return std::make_unique<S3ObjectBackend>(std::make_shared<S3Client>(S3Config::from_environment()),
                                             prefix);
  }
  if (!url.empty())
    throw InputError("--objects '" + url +
                     "': want s3://bucket/prefix (the local object directory is the default)");
  return std::make_unique<LocalObjectBackend>(local);
}

void S3InputPolicy::check(const std::string& url) const {
  const S3Url u = parse_s3_url(url, "s3:// input");
  if (allow.empty()) throw InputError(url + ": s3:// inputs are not enabled on this daemon (--allow-s3)");
  allow.check(u);
  if (!client) return;
  std::optional<S3Client::Head> h;
  try {
    h = client->head(u);
  } catch (const HttpClientError& e) {
    if (e.status() == 403) throw InputError(url + ": access denied");
    throw;
  }
  if (!h) throw InputError(url + ": no such object");
}

ObjectRef download_s3_object(S3Client& client, const S3Url& u, ObjectStore& local) {
  return fetch_into(local, "", u.str(), [&](const fs::path& tmp) { return client.get_to_file(u, tmp); });
}

}  // namespace omicsd
