// libpq connection-string helpers shared by the PostgreSQL job store and the SQL layer.
#include "service/db/pg_url.hpp"

#include <libpq-fe.h>

#include <map>
#include <vector>

namespace omicsd::pg {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// "postgres://user@host:port/db" from a libpq URI or key=value string: never the password or other
// options. Empty when the string does not parse.
std::string describe_url(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (!opts) {
    PQfreemem(err);
    return "";
  }
  std::map<std::string, std::string> v;
  for (PQconninfoOption* o = opts; o->keyword; ++o)
    if (o->val) v[o->keyword] = o->val;
  PQconninfoFree(opts);
  std::string host = v.count("host") ? v["host"] : v.count("hostaddr") ? v["hostaddr"] : "";
  if (host.find(':') != std::string::npos && host.front() != '/') host = "[" + host + "]";
  std::string out = "postgres://";
  if (!v["user"].empty()) out += v["user"] + "@";
  out += host;
  if (!v["port"].empty()) out += ":" + v["port"];
  out += "/" + v["dbname"];
  return out;
}

// `msg` with every password in `url` replaced by "***": libpq echoes a malformed URI whole.
std::string redact(std::string msg, const std::string& url) {
  std::vector<std::string> secrets;
  if (size_t scheme = url.find("://"); scheme != std::string::npos) {  // URI: user:password@
    const size_t start = scheme + 3;
    const size_t at = url.find('@', start);
    const size_t colon = url.find(':', start);
    if (at != std::string::npos && colon != std::string::npos && colon < at)
      secrets.push_back(url.substr(colon + 1, at - colon - 1));
  }
  for (size_t pos = url.find("password"); pos != std::string::npos; pos = url.find("password", pos + 1)) {
    size_t v = url.find_first_not_of(" \t", pos + 8);  // key=value: password = value, or ?password=value
    if (v == std::string::npos || url[v] != '=') continue;
    v = url.find_first_not_of(" \t", v + 1);
    if (v == std::string::npos) continue;
    const size_t end = url[v] == '\'' ? url.find('\'', v + 1) : url.find_first_of(" \t&", v);
    secrets.push_back(url.substr(url[v] == '\'' ? v + 1 : v, end == std::string::npos
                                                                 ? std::string::npos
                                                                 : end - (url[v] == '\'' ? v + 1 : v)));
  }
  for (const std::string& p : secrets) {
    if (p.empty()) continue;
    for (size_t i = msg.find(p); i != std::string::npos; i = msg.find(p, i + 3))
      msg.replace(i, p.size(), "***");
  }
  return msg;
}

}  // namespace omicsd::pg
