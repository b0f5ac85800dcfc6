#pragma once
// What every client command shares (cmd_client.cpp, cmd_readset.cpp, cmd_reference.cpp,
// cmd_query.cpp): --server / --json / --ca-file, the bearer token from $OMICSD_TOKEN, and plain
// column tables for people.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "service/http/http_client.hpp"

namespace omicsd {

// $name when set and non-empty, else fallback.
std::string env_or(const char* name, const std::string& fallback);

struct ClientOpts {
  std::string server;
  std::string ca_file;  // https: CA certificate(s) to trust instead of the system's
  bool json = false;
};

// --server (default $OMICSD_SERVER or http://127.0.0.1:8080), --json, --ca-file ($OMICSD_CA_FILE).
void add_common(CLI::App* cmd, ClientOpts& o);
HttpClient make_client(const ClientOpts& o);

// j[key] as text ("-" or fallback when absent, null or empty; non-strings as JSON).
std::string str(const nlohmann::json& j, const char* key, const std::string& fallback = "-");
// Column-aligned table on stdout.
void print_table(const std::vector<std::vector<std::string>>& rows);
std::string human_bytes(uint64_t n);  // "1.5 MiB"

}  // namespace omicsd
