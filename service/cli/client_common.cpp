#include "service/cli/client_common.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace omicsd {

using nlohmann::json;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}


void add_common(CLI::App* cmd, ClientOpts& o) {
  o.server = env_or("OMICSD_SERVER", "http://127.0.0.1:8080");
  cmd->add_option("--server", o.server, "Daemon URL (default: $OMICSD_SERVER or http://127.0.0.1:8080)");
  cmd->add_flag("--json", o.json, "Print the server's JSON (for scripts)");
  cmd->add_option("--ca-file", o.ca_file,
                  "PEM CA certificate(s) for an https:// server (default: system CAs)")
      ->envname("OMICSD_CA_FILE")
      ->check(CLI::ExistingFile);
}

HttpClient make_client(const ClientOpts& o) {
  HttpClientOptions h;
  h.base_url = o.server;
  h.token = env_or("OMICSD_TOKEN", "");
  h.ca_file = o.ca_file;
  return HttpClient(h);
}

std::string str(const json& j, const char* key, const std::string& fallback) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>().empty() ? fallback : v.get<std::string>();
  return v.dump();
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

}  // namespace omicsd
