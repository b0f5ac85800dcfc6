#include "service/objects/s3_config.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>

#include "host/common/error.hpp"

namespace omicsd {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

bool valid_bucket(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
          c == '.' || c == '-'))
      return false;
  return std::isalnum(static_cast<unsigned char>(b.front())) &&
         std::isalnum(static_cast<unsigned char>(b.back()));
}

}  // namespace

S3Url parse_s3_url(const std::string& url, const std::string& what) {
  if (!is_s3_url(url)) throw InputError(what + ": '" + url + "' is not an s3:// URL");
  const std::string rest = url.substr(5);
  const auto slash = rest.find('/');
  S3Url u{rest.substr(0, slash), slash == std::string::npos ? "" : rest.substr(slash + 1)};
  if (!valid_bucket(u.bucket)) throw InputError(what + ": '" + url + "' has no valid bucket name");
  if (u.key.size() > 1024) throw InputError(what + ": the key of '" + url.substr(0, 80) + "...' is too long");
  for (unsigned char c : u.key)
    if (c < 0x20 || c == 0x7f) throw InputError(what + ": '" + url + "' has a control character in its key");
  // S3 keys are literal, but HTTP servers and proxies on the way may normalise "." and ".." segments:
  // such a key could name something else than the allow-list saw.
  const std::string padded = "/" + u.key + "/";
  if (padded.find("/../") != std::string::npos || padded.find("/./") != std::string::npos)
    throw InputError(what + ": '" + url + "' has a '.' or '..' path segment");
  return u;
}

S3Credentials read_shared_credentials(const std::string& path, const std::string& profile) {
  std::ifstream in(path);
  S3Credentials c;
  std::string line, section;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      continue;
    }
    if (section != profile) continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = trim(line.substr(0, eq)), v = trim(line.substr(eq + 1));
    if (k == "aws_access_key_id") c.access_key_id = v;
    if (k == "aws_secret_access_key") c.secret_access_key = v;
    if (k == "aws_session_token") c.session_token = v;
  }
  return c;
}

S3Config S3Config::from_environment() {
  S3Config c;
  for (const char* name : {"OMICSD_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"})
    if (!env(name).empty()) {
      c.endpoint = env(name);
      break;
    }
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  if (!c.endpoint.empty() && c.endpoint.rfind("http://", 0) != 0 && c.endpoint.rfind("https://", 0) != 0)
    throw InputError("S3 endpoint '" + c.endpoint + "' must start with http:// or https://");
  if (!env("AWS_REGION").empty())
    c.region = env("AWS_REGION");
  else if (!env("AWS_DEFAULT_REGION").empty())
    c.region = env("AWS_DEFAULT_REGION");
  c.credentials = {env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")};
  if (c.credentials.empty()) {
    std::string file = env("AWS_SHARED_CREDENTIALS_FILE");
    if (file.empty() && !env("HOME").empty()) file = env("HOME") + "/.aws/credentials";
    const std::string profile = env("AWS_PROFILE").empty() ? "default" : env("AWS_PROFILE");
    if (!file.empty()) c.credentials = read_shared_credentials(file, profile);
  }
  return c;
}

S3AllowList::S3AllowList(const std::vector<std::string>& urls) {
  for (const auto& u : urls) roots_.push_back(parse_s3_url(u, "--allow-s3"));
}

bool S3AllowList::allows(const S3Url& u) const {
  for (const auto& r : roots_) {
    if (r.bucket != u.bucket) continue;
    if (r.key.empty()) return true;
    const std::string prefix = r.key.back() == '/' ? r.key : r.key + "/";
    if (u.key.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

void S3AllowList::check(const S3Url& u) const {
  if (!allows(u)) throw InputError(u.str() + " is outside the allowed S3 locations (--allow-s3)");
}

}  // namespace omicsd
