#include "service/objects/s3_client.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <fstream>

#include "host/common/error.hpp"
#include "service/util/clock.hpp"
#include "service/util/sha256.hpp"

namespace omicsd {
namespace {

using json = nlohmann::json;
constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// The text between <tag> and </tag> in an S3 XML answer ("" when absent).
std::string xml_value(const std::string& xml, const std::string& tag) {
  const auto b = xml.find("<" + tag + ">");
  if (b == std::string::npos) return "";
  const auto start = b + tag.size() + 2;
  const auto e = xml.find("</" + tag + ">", start);
  return e == std::string::npos ? "" : xml.substr(start, e - start);
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// scheme://host[:port] split into what the Host header shows.
std::string host_of(const std::string& base_url) {
  const auto p = base_url.find("://");
  std::string hostport = base_url.substr(p + 3);
  const bool tls = base_url.rfind("https://", 0) == 0;
  const std::string default_suffix = tls ? ":443" : ":80";
  if (hostport.size() > default_suffix.size() &&
      hostport.compare(hostport.size() - default_suffix.size(), default_suffix.size(), default_suffix) == 0)
    hostport.resize(hostport.size() - default_suffix.size());
  return hostport;
}

std::string query_string(const std::vector<std::pair<std::string, std::string>>& q) {
  std::string s;
  for (const auto& [k, v] : q)
    s += (s.empty() ? "?" : "&") + uri_encode(k, false) + "=" + uri_encode(v, false);
  return s;
}

}  // namespace

S3Url s3_join(const S3Url& prefix, const std::string& rel) {
  std::string key = prefix.key;
  if (!key.empty() && key.back() != '/') key += '/';
  return {prefix.bucket, key + rel};
}

S3Client::S3Client(S3Config config) : config_(std::move(config)) {
  if (config_.credentials.empty() && env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").empty() &&
      env("AWS_CONTAINER_CREDENTIALS_FULL_URI").empty())
    throw Error(
        "S3: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile in "
        "~/.aws/credentials, or run with an ECS/Batch task role)");
}

S3Client::~S3Client() = default;

S3Client::Target S3Client::target(const S3Url& u) const {
  Target t;
  const std::string key = uri_encode(u.key, true);
  if (!config_.endpoint.empty()) {
    t.base_url = config_.endpoint;
    t.path = "/" + u.bucket + "/" + key;
  } else if (u.bucket.find('.') != std::string::npos) {
    t.base_url = "https://s3." + config_.region + ".amazonaws.com";
    t.path = "/" + u.bucket + "/" + key;
  } else {
    t.base_url = "https://" + u.bucket + ".s3." + config_.region + ".amazonaws.com";
    t.path = "/" + key;
  }
  t.host = host_of(t.base_url);
  return t;
}

HttpClient& S3Client::client_for(const std::string& base_url) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& c = clients_[base_url];
  if (!c) {
    HttpClientOptions o;
    o.base_url = base_url;
    o.user_agent = "omicsd-s3";
    o.request_timeout = std::chrono::milliseconds(120'000);
    o.max_attempts = 6;
    o.max_response_body = uint64_t(16) << 20;
    c = std::make_unique<HttpClient>(o);
  }
  return *c;
}

S3Credentials S3Client::credentials() {
  if (!config_.credentials.empty()) return config_.credentials;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Task-role credentials last hours; fetching them again every 10 minutes keeps them fresh.
    if (!role_credentials_.empty() && now_ms() - role_fetched_ms_ < 600'000) return role_credentials_;
  }
  std::string base, path;
  HttpClient::Headers headers;
  if (!env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").empty()) {
    base = "http://169.254.170.2";
    path = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  } else {
    const std::string full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const auto slash = full.find('/', full.find("://") + 3);
    base = full.substr(0, slash);
    path = slash == std::string::npos ? "/" : full.substr(slash);
    if (!env("AWS_CONTAINER_AUTHORIZATION_TOKEN").empty())
      headers.emplace_back("Authorization", env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
  }
  HttpClientOptions o;
  o.base_url = base;
  HttpClient c(o);
  const HttpResponse r = c.send("GET", path, "", "", headers, true);
  if (r.status != 200)
    throw Error("S3: the task role credentials endpoint answered HTTP " + std::to_string(r.status));
  const json j = r.json();
  S3Credentials cr{j.value("AccessKeyId", ""), j.value("SecretAccessKey", ""), j.value("Token", "")};
  if (cr.empty()) throw Error("S3: the task role credentials endpoint gave no keys");
  std::lock_guard<std::mutex> lock(mu_);
  role_credentials_ = cr;
  role_fetched_ms_ = now_ms();
  return cr;
}

HttpClient::Headers S3Client::sign(const std::string& method, const Target& t, const std::string& query,
                                   const std::string& payload, HttpClient::Headers extra) {
  SigV4Request req;
  req.method = method;
  req.host = t.host;
  req.canonical_uri = t.path;
  req.payload_sha256 = payload;
  req.headers = extra;
  // The query as sent ("?a=1&b"), decoded back into pairs for the canonical form.
  std::string q = query.empty() ? "" : query.substr(1);
  while (!q.empty()) {
    const auto amp = q.find('&');
    const std::string kv = q.substr(0, amp);
    const auto eq = kv.find('=');
    // Only our own parameters travel here, already encoded with unreserved characters and %XX;
    // uri_encode would encode '%' again, so they are decoded first.
    auto decode = [](const std::string& s) {
      std::string out;
      for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] == '%' && i + 2 < s.size()) {
          out += char(std::stoi(s.substr(i + 1, 2), nullptr, 16));
          i += 2;
        } else {
          out += s[i];
        }
      return out;
    };
    req.query.emplace_back(decode(kv.substr(0, eq)),
                           eq == std::string::npos ? "" : decode(kv.substr(eq + 1)));
    q = amp == std::string::npos ? "" : q.substr(amp + 1);
  }
  for (auto& h : sigv4_sign_headers(credentials(), config_.region, req, std::time(nullptr)))
    extra.push_back(h);
  return extra;
}

void S3Client::check(const HttpResponse& r, const std::string& method, const Target& t) const {
  if (r.status < 300) return;
  const std::string code = xml_value(r.body, "Code"), message = xml_value(r.body, "Message");
  const std::string url = t.base_url + t.path;
  std::string why = "HTTP " + std::to_string(r.status);
  if (!code.empty()) why += " " + code;
  if (!message.empty()) why += ": " + message;
  throw HttpClientError("S3 " + method + " " + url + ": " + why, r.status, url, code);
}

std::optional<S3Client::Head> S3Client::head(const S3Url& u) {
  const Target t = target(u);
  const HttpResponse r =
      client_for(t.base_url).send("HEAD", t.path, "", "", sign("HEAD", t, "", kEmptySha256));
  if (r.status == 404) return std::nullopt;
  check(r, "HEAD", t);
  Head h;
  h.size = std::stoull(r.header("content-length").empty() ? "0" : r.header("content-length"));
  h.etag = r.header("etag");
  return h;
}

FetchResult S3Client::get_to_file(const S3Url& u, const std::filesystem::path& dest) {
  const Target t = target(u);
  return client_for(t.base_url).fetch(t.path, dest, sign("GET", t, "", kEmptySha256));
}

FetchResult S3Client::get_range_to_file(const S3Url& u, uint64_t offset, uint64_t length,
                                        const std::filesystem::path& dest) {
  if (length == 0) throw InputError("S3 GET " + u.str() + ": an empty range");
  const Target t = target(u);
  const std::string range = "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1);
  return client_for(t.base_url).fetch(t.path, dest, sign("GET", t, "", kEmptySha256, {{"Range", range}}));
}

std::optional<std::string> S3Client::get_string(const S3Url& u, uint64_t max_bytes) {
  const Target t = target(u);
  const HttpResponse r = client_for(t.base_url).send("GET", t.path, "", "", sign("GET", t, "", kEmptySha256));
  if (r.status == 404) return std::nullopt;
  check(r, "GET", t);
  if (r.truncated || r.body.size() > max_bytes) throw Error("S3 GET " + u.str() + ": larger than expected");
  return r.body;
}

void S3Client::put_bytes(const S3Url& u, std::string_view data) {
  const Target t = target(u);
  const std::string body(data);
  const HttpResponse r =
      client_for(t.base_url)
          .send("PUT", t.path, body, "application/octet-stream", sign("PUT", t, "", sha256_hex(body)), true);
  check(r, "PUT", t);
}

void S3Client::put_file(const S3Url& u, const std::filesystem::path& src, const std::string& sha256_hex) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) throw Error(src.string() + ": cannot stat for upload");
  const uint64_t size = uint64_t(st.st_size);
  if (size > multipart_threshold) return put_multipart(u, src, size);
  const Target t = target(u);
  const HttpResponse r =
      client_for(t.base_url)
          .upload("PUT", t.path, src, "application/octet-stream", sign("PUT", t, "", sha256_hex), true);
  check(r, "PUT", t);
}

void S3Client::put_multipart(const S3Url& u, const std::filesystem::path& src, uint64_t size) {
  const Target t = target(u);
  HttpClient& c = client_for(t.base_url);
  const HttpResponse init =
      c.send("POST", t.path + "?uploads", "", "", sign("POST", t, "?uploads=", kEmptySha256), true);
  check(init, "POST", t);
  const std::string upload_id = xml_value(init.body, "UploadId");
  if (upload_id.empty()) throw Error("S3 POST " + u.str() + "?uploads: no UploadId in the answer");
  const std::string id_q = "uploadId=" + uri_encode(upload_id, false);
  try {
    std::string parts_xml;
    int part = 1;
    std::vector<char> buf(std::size_t(1) << 20);
    for (uint64_t off = 0; off < size; off += part_size, ++part) {
      const uint64_t len = std::min(part_size, size - off);
      // The part's own SHA-256, signed: the server refuses a part damaged on the way.
      Sha256 h;
      {
        std::ifstream in(src, std::ios::binary);
        in.seekg(std::streamoff(off));
        uint64_t left = len;
        while (left > 0 && in) {
          in.read(buf.data(), std::streamsize(std::min<uint64_t>(left, buf.size())));
          h.update(buf.data(), std::size_t(in.gcount()));
          left -= uint64_t(in.gcount());
        }
        if (left) throw Error(src.string() + ": read failed during a multipart upload");
      }
      const std::string q = "?partNumber=" + std::to_string(part) + "&" + id_q;
      const HttpResponse r = c.upload_range("PUT", t.path + q, src, off, len, "application/octet-stream",
                                            sign("PUT", t, q, h.final_hex()), true);
      check(r, "PUT", t);
      parts_xml += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" + r.header("etag") +
                   "</ETag></Part>";
    }
    const std::string body = "<CompleteMultipartUpload>" + parts_xml + "</CompleteMultipartUpload>";
    const std::string q = "?" + id_q;
    const HttpResponse done =
        c.send("POST", t.path + q, body, "application/xml", sign("POST", t, q, sha256_hex(body)), true);
    check(done, "POST", t);
    // S3 may answer 200 with an error document when completing fails late.
    if (done.body.find("<Error>") != std::string::npos)
      throw Error("S3 complete multipart " + u.str() + ": " + xml_value(done.body, "Message"));
  } catch (...) {
    try {  // an abandoned upload is never visible; aborting frees its parts now
      const std::string q = "?" + id_q;
      c.send("DELETE", t.path + q, "", "", sign("DELETE", t, q, kEmptySha256), true);
    } catch (const std::exception& e) {
      spdlog::warn("S3: aborting the multipart upload of {} failed: {}", u.str(), e.what());
    }
    throw;
  }
}

void S3Client::remove(const S3Url& u) {
  const Target t = target(u);
  const HttpResponse r =
      client_for(t.base_url).send("DELETE", t.path, "", "", sign("DELETE", t, "", kEmptySha256));
  if (r.status != 404) check(r, "DELETE", t);
}

std::vector<std::string> S3Client::pending_uploads(const S3Url& u) {
  Target b = target(S3Url{u.bucket, ""});
  if (b.path.size() > 1 && b.path.back() == '/') b.path.pop_back();
  const std::string q = "?prefix=" + uri_encode(u.key, false) + "&uploads=";
  const HttpResponse r =
      client_for(b.base_url).send("GET", b.path + q, "", "", sign("GET", b, q, kEmptySha256));
  check(r, "GET", b);
  std::vector<std::string> ids;
  for (std::size_t at = r.body.find("<Upload>"); at != std::string::npos;
       at = r.body.find("<Upload>", at + 1)) {
    const std::string one = r.body.substr(at, r.body.find("</Upload>", at) - at);
    if (xml_value(one, "Key") == u.key) ids.push_back(xml_value(one, "UploadId"));
  }
  return ids;
}

void S3Client::abort_upload(const S3Url& u, const std::string& upload_id) {
  const Target t = target(u);
  const std::string q = "?uploadId=" + uri_encode(upload_id, false);
  const HttpResponse r =
      client_for(t.base_url).send("DELETE", t.path + q, "", "", sign("DELETE", t, q, kEmptySha256));
  if (r.status != 404) check(r, "DELETE", t);
}

void S3Client::create_bucket(const std::string& bucket) {
  const Target t = target(S3Url{bucket, ""});
  std::string body;
  if (config_.region != "us-east-1")
    body = "<CreateBucketConfiguration><LocationConstraint>" + config_.region +
           "</LocationConstraint></CreateBucketConfiguration>";
  // Path-style: /bucket/ -> /bucket (a bucket, not a key).
  Target b = t;
  if (b.path.size() > 1 && b.path.back() == '/') b.path.pop_back();
  const HttpResponse r = client_for(b.base_url)
                             .send("PUT", b.path, body, body.empty() ? "" : "application/xml",
                                   sign("PUT", b, "", sha256_hex(body)), true);
  if (r.status == 409 && xml_value(r.body, "Code") == "BucketAlreadyOwnedByYou") return;
  check(r, "PUT", b);
}

std::string S3Client::presign_get(const S3Url& u, int seconds) {
  const Target t = target(u);
  SigV4Request req;
  req.method = "GET";
  req.host = t.host;
  req.canonical_uri = t.path;
  return t.base_url + t.path + "?" +
         sigv4_presign_query(credentials(), config_.region, req, std::time(nullptr),
                             seconds > 0 ? seconds : config_.presign_seconds);
}

}  // namespace omicsd
