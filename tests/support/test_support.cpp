#include "tests/support/test_support.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>

namespace omicsd::test {

std::filesystem::path shared_data_dir() {
  if (const char* env = std::getenv("OMICSD_SHARED_DATA")) return env;
  return std::filesystem::path(OMICSD_SOURCE_DIR) / ".." / "shared" / "data";
}

TempDir::TempDir() {
  std::random_device rd;
  auto base = std::filesystem::temp_directory_path();
  for (;;) {
    path = base / ("omicsd-test-" + std::to_string(rd()));
    if (std::filesystem::create_directory(path)) break;
  }
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

int run_command(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed: " + cmd);
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = pclose(pipe);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// $OMICSD_BIN when set (a bundle run elsewhere, scripts/gpu-check.sh), else the binary this build made.
std::string omicsd_binary() {
  const char* env = std::getenv("OMICSD_BIN");
  return env && *env ? std::string(env) : std::string(OMICSD_BINARY);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::filesystem::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary);
  out << content;
}

std::set<std::string> vcf_snvs(const std::filesystem::path& vcf) {
  std::string out;
  EXPECT_EQ(run_command(
                "bcftools query -i 'GT=\"alt\" && TYPE=\"snp\"' -f '%POS %REF %ALT [%GT]\\n' " + vcf.string(),
                &out),
            0)
      << out;
  std::set<std::string> s;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) s.insert(line);
  return s;
}

const char* const kPostgresSkipMessage =
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found and OMICSD_TEST_POSTGRES_URL not set: "
    "PostgreSQL job-store tests skipped (install the postgresql package: scripts/setup.sh)";

namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string pg_test_server_script() {
  return (std::filesystem::path(OMICSD_SOURCE_DIR) / "scripts" / "pg-test-server.sh").string();
}

// The private server of this process: started on first use, stopped by the static destructor.
struct PrivateServer {
  std::unique_ptr<TempDir> dir;  // holds the server's directory, pg_dir
  std::string pg_dir, url;
  ~PrivateServer() {
    if (dir) run_command("bash " + shell_quote(pg_test_server_script()) + " stop " + shell_quote(pg_dir));
  }
};

// "postgres://u@h:p/db?x" with the database replaced by `db`.
std::string with_database(const std::string& url, const std::string& db) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) throw std::runtime_error("not a postgres:// URL: " + url);
  const size_t auth = scheme + 3;
  const size_t path = url.find_first_of("/?", auth);
  if (path == std::string::npos) return url + "/" + db;
  const size_t query = url.find('?', path);
  return url.substr(0, path) + "/" + db + (query == std::string::npos ? "" : url.substr(query));
}

}  // namespace

std::string postgres_server_url() {
  if (const char* env = std::getenv("OMICSD_TEST_POSTGRES_URL"); env && *env) return env;
  static std::mutex mu;
  static PrivateServer server;
  static std::string error;
  static bool tried = false;
  std::lock_guard<std::mutex> lock(mu);
  if (!tried) {
    tried = true;
    const std::string script = shell_quote(pg_test_server_script());
    std::string out;
    if (run_command("bash " + script + " bindir", &out) != 0) return "";  // no server binaries
    auto dir = std::make_unique<TempDir>();
    const std::string pg_dir = (dir->path / "pg").string();
    const int rc = run_command(
        "bash " + script + " start " + shell_quote(pg_dir) + " " + std::to_string(getpid()), &out);
    std::string url;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("postgres://", 0) == 0) url = line;
    if (rc != 0 || url.empty()) {
      error = "scripts/pg-test-server.sh start failed (exit " + std::to_string(rc) + "): " + out;
      run_command("bash " + script + " stop " + shell_quote(pg_dir));
    } else {
      server.url = url;
      server.pg_dir = pg_dir;
      server.dir = std::move(dir);  // the static's destructor stops the server, then removes it
    }
  }
  if (!error.empty()) throw std::runtime_error(error);
  return server.url;
}

void PrintTo(StoreBackend b, std::ostream* os) { *os << (b == StoreBackend::Sqlite ? "sqlite" : "postgres"); }

std::vector<std::string> postgres_query(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("connect to " + url + ": " + msg);
  }
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  PGresult* r = PQexec(c, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string msg = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    throw std::runtime_error(sql + ": " + msg);
  }
  std::vector<std::string> out;
  for (int i = 0; i < PQntuples(r); ++i) out.push_back(PQnfields(r) > 0 ? PQgetvalue(r, i, 0) : "");
  PQclear(r);
  PQfinish(c);
  return out;
}

PostgresDatabase::PostgresDatabase() {
  const std::string server = postgres_server_url();
  if (server.empty()) return;
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  name = "omicsd_t_";
  for (int i = 0; i < 16; ++i) name += hex[rd() % 16];
  // The name is generated here (lowercase letters, digits, '_'): safe to splice as an identifier.
  postgres_query(server, "CREATE DATABASE \"" + name + "\"");
  url = with_database(server, name);
}

PostgresDatabase::~PostgresDatabase() {
  if (url.empty()) return;
  try {
    postgres_query(postgres_server_url(), "DROP DATABASE IF EXISTS \"" + name + "\" WITH (FORCE)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: %s\n", e.what());
  }
}

}  // namespace omicsd::test
