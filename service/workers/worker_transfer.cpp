#include "service/workers/worker_transfer.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <fstream>
#include <random>

#include "host/common/error.hpp"
#include "service/http/http_client.hpp"
#include "service/runner/task_input_keys.hpp"
#include "service/util/sha256.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A daemon answer that says the input cannot be had (the task cannot run anywhere): permanent.
[[noreturn]] void rethrow_transfer_error(const HttpClientError& e, const std::string& what) {
  if (e.status() == 400 || e.status() == 404 || e.status() == 410) throw InputError(what + ": " + e.what());
  throw HttpClientError(what + ": " + e.what(), e.status(), e.url(), e.server_message());
}

// The file name the engine should see for an input: the URI's last path component when it is a
// plain, safe name, else one derived from the key (reference.fa, input.bam, ...).
std::string local_name(const std::string& key, const std::string& uri) {
  std::string base;
  if (uri.rfind("sha256:", 0) != 0) {
    std::string path = uri.rfind("file://", 0) == 0 ? uri.substr(7) : uri;
    path = path.substr(0, path.find_first_of("?#"));
    base = path.substr(path.find_last_of('/') + 1);
    bool ok = !base.empty() && base.size() <= 200 && base.front() != '.';
    for (char c : base)
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
    if (ok) return base;
  }
  const std::string k = key.substr(0, key.find('/'));
  if (k == "reference") return "reference.fa";
  if (k == "bam") return "input.bam";
  if (k == "vcf") return "input.vcf.gz";
  if (k == "regions" || k == "targets") return k + ".bed";
  if (k == "ploidy_bed") return "ploidy.bed";
  std::string out = key;
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return out;
}

void remove_quietly(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
  fs::remove(p.string() + ".part", ec);
}

// Fetches `path` into `tmp`; on any failure removes `tmp` and rethrows (daemon answers that say the
// input cannot be had as InputError, see rethrow_transfer_error).
FetchResult fetch_to_temp(HttpClient& client, const std::string& path, const fs::path& tmp,
                          const HttpClient::Headers& headers, const std::string& what) {
  try {
    return client.fetch(path, tmp, headers);
  } catch (const HttpClientError& e) {
    remove_quietly(tmp);
    rethrow_transfer_error(e, what);
  } catch (...) {
    remove_quietly(tmp);
    throw;
  }
}

}  // namespace

TransferStager::TransferStager(HttpClient& client, ObjectStore& store, ObjectBackend* objects, S3Client* s3)
    : client_(client), store_(store), objects_(objects), s3_(s3) {
  std::error_code ec;
  fs::create_directories(inputs_root() / "sources", ec);
  if (ec) throw Error(inputs_root().string() + ": cannot create: " + ec.message());
}

fs::path TransferStager::temp_path(const fs::path& dir, const std::string& stem) const {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()));
  return dir / (stem + "." + std::to_string(::getpid()) + "." + std::to_string(counter++) + "." +
                std::to_string(rng() % 1000000000));
}

void TransferStager::fetch_object(const std::string& digest, const std::string& what) {
  if (objects_) {
    objects_->download(digest, store_);
    return;
  }
  const fs::path tmp = temp_path(store_.tmp_dir(), "dl");
  const FetchResult r = fetch_to_temp(client_, "/v1/objects/" + url_encode_segment(digest), tmp, {}, what);
  if (r.sha256 != digest) {
    remove_quietly(tmp);
    throw Error(what + ": the downloaded object has digest " + r.sha256 + ", not " + digest);
  }
  store_.adopt_temp(tmp, digest, r.bytes);
  spdlog::info("fetched {} ({}, {} bytes)", what, digest, r.bytes);
}

std::string TransferStager::fetch_s3_input(const std::string& key, const std::string& uri) {
  const std::string what = "input '" + key + "' (" + uri + ")";
  const S3Url u = parse_s3_url(uri, what);
  const fs::path index = inputs_root() / "sources" / (sha256_hex(uri) + ".json");
  std::optional<S3Client::Head> head;
  try {
    head = s3_->head(u);
  } catch (const HttpClientError& e) {
    if (e.status() == 403) throw InputError(what + ": " + e.what());  // no access: cannot run anywhere
    throw;
  }
  if (!head) throw InputError(what + ": no such object");
  {
    std::ifstream in(index);
    if (in) {
      try {
        const json j = json::parse(in);
        const std::string d = j.at("digest").get<std::string>();
        if (j.at("uri").get<std::string>() == uri && j.at("etag").get<std::string>() == head->etag &&
            !head->etag.empty() && store_.has(d)) {
          spdlog::info("{}: unchanged, using the local copy {}", what, d);
          return d;
        }
      } catch (const std::exception&) {  // unreadable entry: fetch again
      }
    }
  }
  const ObjectRef r = download_s3_object(*s3_, u, store_);
  spdlog::info("fetched {} ({}, {} bytes)", what, r.digest, r.size);
  if (!head->etag.empty()) {
    const fs::path t = temp_path(index.parent_path(), ".entry");
    {
      std::ofstream out(t, std::ios::trunc);
      out << json{{"uri", uri}, {"etag", head->etag}, {"digest", r.digest}, {"size", r.size}}.dump();
      if (!out) throw Error(t.string() + ": write failed");
    }
    fs::rename(t, index);
  }
  return r.digest;
}

bool TransferStager::fetch_s3_companion(const std::string& uri, const std::string& ext,
                                        const fs::path& local) {
  const fs::path target = local.string() + "." + ext;
  std::error_code ec;
  if (fs::exists(target, ec)) return true;
  try {
    s3_->get_to_file(parse_s3_url(uri + "." + ext, "index"), target);
  } catch (const HttpClientError& e) {
    remove_quietly(target);
    if (e.status() == 404 || e.status() == 403) return false;  // none: the engine builds it if needed
    throw;
  }
  spdlog::info("fetched index {}.{}", uri, ext);
  return true;
}

void TransferStager::pull_meta(const char* kind, const std::string& digest) {
  const std::string rel = std::string("meta/") + kind + "/" + digest.substr(7) + ".json";
  const fs::path local = store_.root() / rel;
  std::error_code ec;
  if (fs::exists(local, ec)) return;
  const auto text = objects_->get_meta(rel);
  if (!text) return;
  std::string idx;
  try {
    idx = json::parse(*text).at("digest").get<std::string>();
  } catch (const std::exception&) {
    spdlog::warn("{} in {} is malformed: ignored", rel, objects_->url());
    return;
  }
  if (!is_sha256_digest(idx)) return;
  objects_->download(idx, store_);
  fs::create_directories(local.parent_path(), ec);
  const fs::path t = temp_path(local.parent_path(), ".meta");
  {
    std::ofstream out(t, std::ios::trunc);
    out << *text;
    if (!out) throw Error(t.string() + ": write failed");
  }
  fs::rename(t, local);
}

void TransferStager::push_meta(const char* kind, const std::string& digest) {
  const std::string rel = std::string("meta/") + kind + "/" + digest.substr(7) + ".json";
  std::ifstream in(store_.root() / rel);
  if (!in) return;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    const auto idx = store_.get(json::parse(text).at("digest").get<std::string>());
    if (!idx) return;
    objects_->upload(store_, *idx);  // the object first: a document always names a stored object
  } catch (const json::exception&) {
    return;
  }
  objects_->put_meta(rel, text);
}

std::string TransferStager::fetch_file_input(const std::string& task_path, const std::string& token,
                                             const std::string& key, const std::string& uri) {
  const std::string what = "input '" + key + "' (" + uri + ")";
  const fs::path index = inputs_root() / "sources" / (sha256_hex(uri) + ".json");
  std::string known_digest, known_etag;
  {
    std::ifstream in(index);
    if (in) {
      try {
        const json j = json::parse(in);
        if (j.at("uri").get<std::string>() == uri && store_.has(j.at("digest").get<std::string>())) {
          known_digest = j.at("digest").get<std::string>();
          known_etag = j.at("etag").get<std::string>();
        }
      } catch (const std::exception&) {  // unreadable entry: fetch again
      }
    }
  }
  HttpClient::Headers headers = {{kLeaseTokenHeader, token}};
  if (!known_digest.empty() && !known_etag.empty()) headers.emplace_back("If-None-Match", known_etag);
  const fs::path tmp = temp_path(store_.tmp_dir(), "dl");
  const FetchResult r =
      fetch_to_temp(client_, task_path + "/inputs/" + url_encode_segment(key), tmp, headers, what);
  if (r.status == 304) {
    if (known_digest.empty()) throw Error(what + ": the daemon answered 304 to an unconditional request");
    spdlog::info("{}: unchanged, using the local copy {}", what, known_digest);
    return known_digest;
  }
  const std::string announced = r.header("x-content-digest");
  if (!announced.empty() && announced != r.sha256) {
    remove_quietly(tmp);
    throw Error(what + ": the downloaded file has digest " + r.sha256 + ", the daemon announced " +
                announced);
  }
  store_.adopt_temp(tmp, r.sha256, r.bytes);
  spdlog::info("fetched {} ({}, {} bytes)", what, r.sha256, r.bytes);
  const std::string etag = r.header("etag");
  if (!etag.empty()) {
    const fs::path t = temp_path(index.parent_path(), ".entry");
    {
      std::ofstream out(t, std::ios::trunc);
      out << json{{"uri", uri}, {"etag", etag}, {"digest", r.sha256}, {"size", r.bytes}}.dump();
      if (!out) throw Error(t.string() + ": write failed");
    }
    fs::rename(t, index);
  }
  return r.sha256;
}

bool TransferStager::fetch_companion(const std::string& task_path, const std::string& token,
                                     const std::string& key, const std::string& ext, const fs::path& local) {
  // The directory holds one immutable input, so an index found there is current (an .omi is
  // checked against its reference by the engine anyway).
  const fs::path target = local.string() + "." + ext;
  std::error_code ec;
  if (fs::exists(target, ec)) return true;
  const std::string what = "index '" + key + "." + ext + "'";
  FetchResult r;
  try {
    r = client_.fetch(task_path + "/inputs/" + url_encode_segment(key + "." + ext), target,
                      {{kLeaseTokenHeader, token}});
  } catch (const HttpClientError& e) {
    remove_quietly(fs::path(target.string()));
    if (e.status() == 404) return false;  // none on the daemon side: the engine builds it if needed
    rethrow_transfer_error(e, what);
  }
  const std::string announced = r.header("x-content-digest");
  if (!announced.empty() && announced != r.sha256) {
    remove_quietly(target);
    throw Error(what + ": the downloaded file has digest " + r.sha256 + ", the daemon announced " +
                announced);
  }
  spdlog::info("fetched {} ({} bytes)", what, r.bytes);
  return true;
}

fs::path TransferStager::link(const std::string& digest, const std::string& name) {
  const fs::path dir = inputs_root() / digest.substr(7);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create: " + ec.message());
  const fs::path local = dir / name;
  if (fs::exists(local, ec)) return local;
  const fs::path tmp = temp_path(dir, ".link");
  fs::create_hard_link(store_.path_of(digest), tmp, ec);
  if (ec) {  // a file system without hard links: copy
    ec.clear();
    fs::copy_file(store_.path_of(digest), tmp, ec);
    if (ec) throw Error(tmp.string() + ": cannot stage input " + digest + ": " + ec.message());
  }
  fs::rename(tmp, local);
  return local;
}

std::string TransferStager::stage_one(const std::string& task_path, const std::string& token,
                                      const std::string& key, const std::string& uri, Staged& out) {
  std::string digest;
  if (uri.rfind("sha256:", 0) == 0) {
    if (!is_sha256_digest(uri)) throw InputError("input '" + key + "': malformed digest '" + uri + "'");
    digest = uri;
    if (!store_.has(digest)) fetch_object(digest, "input '" + key + "'");
  } else if (is_s3_url(uri)) {
    if (!s3_) throw InputError("input '" + key + "': " + uri + " needs a worker with --transfer s3");
    digest = fetch_s3_input(key, uri);
  } else {
    digest = fetch_file_input(task_path, token, key, uri);
  }
  const fs::path local = link(digest, local_name(key, uri));
  if (objects_) {  // indexes the fleet's store recorded for this object (a BAM's .bai, a reference's .omi)
    pull_meta("index-of", digest);
    pull_meta("omi-of", digest);
  }
  for (const std::string& ext : input_companions(key)) {
    const bool found = is_s3_url(uri) ? fetch_s3_companion(uri, ext, local)
                       : uri.rfind("sha256:", 0) == 0 && objects_
                           ? false
                           : fetch_companion(task_path, token, key, ext, local);
    if (found && key == "bam") break;  // .bai or .csi
  }
  out.digests[local.string()] = digest;
  out.origin[local.string()] = uri;
  return local.string();
}

TransferStager::Staged TransferStager::stage(const std::string& task_id, const std::string& lease_token,
                                             const json& inputs, const json& parameters) {
  Staged out;
  out.inputs = inputs.is_object() ? inputs : json::object();
  out.parameters = parameters.is_object() ? parameters : json::object();
  const std::string task_path = "/v1/tasks/" + url_encode_segment(task_id);
  for (auto& [key, v] : out.inputs.items()) {
    if (v.is_string()) {
      v = stage_one(task_path, lease_token, key, v.get<std::string>(), out);
    } else if (v.is_array()) {
      for (std::size_t i = 0; i < v.size(); ++i)
        if (v[i].is_string())
          v[i] =
              stage_one(task_path, lease_token, key + "/" + std::to_string(i), v[i].get<std::string>(), out);
    }
  }
  for (const char* k : {"regions", "targets", "ploidy_bed"})
    if (out.parameters.contains(k) && out.parameters[k].is_string())
      out.parameters[k] = stage_one(task_path, lease_token, k, out.parameters[k].get<std::string>(), out);
  return out;
}

void TransferStager::upload(const std::map<std::string, ObjectRef>& outputs, const Staged* staged) {
  if (objects_) {
    for (const auto& [name, ref] : outputs) objects_->upload(store_, ref);
    for (const auto& [name, ref] : outputs) push_meta("index-of", ref.digest);
    if (staged)
      for (const auto& [path, digest] : staged->digests) push_meta("omi-of", digest);
    return;
  }
  for (const auto& [name, ref] : outputs) {
    const std::string path = "/v1/objects/" + url_encode_segment(ref.digest);
    const HttpResponse head = client_.send("HEAD", path, "", "", {}, true);
    if (head.status == 200) continue;  // the daemon has it (e.g. a cache hit of an earlier upload)
    if (head.status != 404) {
      client_.check(head, "HEAD", path);
      throw Error("HEAD " + client_.url(path) + ": unexpected HTTP " + std::to_string(head.status));
    }
    const auto t0 = std::chrono::steady_clock::now();
    const HttpResponse r = client_.upload("PUT", path, ref.path, "application/octet-stream", {}, true);
    client_.check(r, "PUT", path);
    if (r.status != 200 && r.status != 201)
      throw Error("PUT " + client_.url(path) + ": unexpected HTTP " + std::to_string(r.status));
    spdlog::info("uploaded output {} ({}, {} bytes) in {:.1f} s", name, ref.digest, ref.size,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
}

void TransferStager::restore_uris(json& j, const std::map<std::string, std::string>& origin) {
  if (j.is_string()) {
    auto it = origin.find(j.get<std::string>());
    if (it != origin.end()) j = it->second;
  } else if (j.is_structured()) {
    for (auto& v : j) restore_uris(v, origin);
  }
}

}  // namespace omicsd
