#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

namespace omicsd::test {

// ../shared/data next to the checkout (CI has it too).
std::filesystem::path shared_data_dir();
// A fresh empty directory under the build's temp area, removed by the caller's TempDir.
struct TempDir {
  TempDir();
  ~TempDir();
  std::filesystem::path path;
};
// Runs a shell command; returns its exit status and captures stdout+stderr into *output.
int run_command(const std::string& cmd, std::string* output = nullptr);
std::string omicsd_binary();
std::string read_file(const std::filesystem::path& p);
void write_file(const std::filesystem::path& p, const std::string& content);
// "POS REF ALT GT" of the non-reference SNVs in a VCF (bcftools query); a failing query fails the test.
std::set<std::string> vcf_snvs(const std::filesystem::path& vcf);

// PostgreSQL for the PostgreSQL job-store tests. The server is $OMICSD_TEST_POSTGRES_URL when set
// (a libpq URI "postgres://user@host:port/db" whose user may create databases), else a private one
// that scripts/pg-test-server.sh starts once per test process (in a temp dir; stopped at exit).
// Returns "" when neither is possible because no PostgreSQL server binaries are installed; throws
// std::runtime_error when they are but the server does not start.
std::string postgres_server_url();
// The GTEST_SKIP message of a PostgreSQL test when postgres_server_url() is "".
extern const char* const kPostgresSkipMessage;
// A fresh, uniquely named database on that server, dropped in the destructor; url is "" when
// there is no server (the test should GTEST_SKIP with kPostgresSkipMessage).
struct PostgresDatabase {
  PostgresDatabase();
  ~PostgresDatabase();
  PostgresDatabase(const PostgresDatabase&) = delete;
  PostgresDatabase& operator=(const PostgresDatabase&) = delete;
  std::string name;  // omicsd_t_<hex>
  std::string url;   // the server's URL with this database
};
// Runs one SQL statement on `url`; returns the first column of each row (NULL as "").
// Throws std::runtime_error with the server's message on failure.
std::vector<std::string> postgres_query(const std::string& url, const std::string& sql);

// The parameter of a store test that runs on both backends (TestWithParam<StoreBackend>):
//   INSTANTIATE_TEST_SUITE_P(Backends, MyTest, test::store_backends(),
//                            test::StoreBackendName{});
//   void SetUp() override {
//     url = test::store_database_url(GetParam(), dir.path / "catalog.db", pg);
//     if (url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
//   }
enum class StoreBackend { Sqlite, Postgres };
// gtest prints the parameter into each ctest name ("Backends/MyTest.Foo/sqlite  # GetParam() = sqlite");
// without this, as the enum's bytes.
void PrintTo(StoreBackend b, std::ostream* os);

// Both backends, SQLite first: the parameter generator of INSTANTIATE_TEST_SUITE_P.
inline auto store_backends() { return ::testing::Values(StoreBackend::Sqlite, StoreBackend::Postgres); }

// The name generator of INSTANTIATE_TEST_SUITE_P: the end of each test's name, "sqlite" or "postgres".
struct StoreBackendName {
  std::string operator()(const ::testing::TestParamInfo<StoreBackend>& info) const {
    return info.param == StoreBackend::Sqlite ? "sqlite" : "postgres";
  }
};

// The URL of a fresh database for a store test on `backend`: "sqlite:" + sqlite_file, or a new database
// on the PostgreSQL test server that *pg holds (replacing any it held: that one is dropped). "" when the
// backend is PostgreSQL and there is no server: the test should GTEST_SKIP() << kPostgresSkipMessage.
inline std::string store_database_url(StoreBackend backend, const std::filesystem::path& sqlite_file,
                                      std::unique_ptr<PostgresDatabase>& pg) {
  if (backend == StoreBackend::Sqlite) return "sqlite:" + sqlite_file.string();
  pg = std::make_unique<PostgresDatabase>();
  return pg->url;
}

}  // namespace omicsd::test
