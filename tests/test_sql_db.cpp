// The catalog stores' SQL layer on both backends: typed values, '?' placeholders, transactions that
// roll back on exceptions and join when nested, constraint errors, and versioned migrations.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <thread>

#include "service/sql_db.hpp"
#include "tests/test_support.hpp"

namespace omicsd {
namespace {

using sql::Value;

enum class Backend { Sqlite, Postgres };

struct SqlDbTest : ::testing::TestWithParam<Backend> {
  test::TempDir dir;
  std::unique_ptr<test::PostgresDatabase> pg;
  std::string url;
  std::unique_ptr<sql::Db> db;

  void SetUp() override {
    if (GetParam() == Backend::Postgres) {
      pg = std::make_unique<test::PostgresDatabase>();
      if (pg->url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
      url = pg->url;
    } else {
      url = "sqlite:" + (dir.path / "catalog.db").string();
    }
    db = sql::open_db(url, "test store");
    db->exec_script("CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT, x DOUBLE PRECISION, note TEXT)");
  }
};

TEST_P(SqlDbTest, TypedValuesAndPlaceholders) {
  EXPECT_EQ(db->exec("INSERT INTO t (id, n, x, note) VALUES (?, ?, ?, ?)",
                     {std::string("a"), int64_t(1) << 40, 0.25, nullptr}),
            1);
  db->exec("INSERT INTO t (id, n, x, note) VALUES (?, ?, ?, ?)",
           {std::string("it's ?"), int64_t(-7), 1.5, std::string("q?")});
  // A '?' inside a literal is not a placeholder.
  auto rows = db->query("SELECT id, n, x, note FROM t WHERE note IS NULL OR note <> '?' ORDER BY n DESC");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].s(0), "a");
  EXPECT_EQ(rows[0].i(1), int64_t(1) << 40);
  EXPECT_DOUBLE_EQ(rows[0].d(2), 0.25);
  EXPECT_TRUE(rows[0].is_null(3));
  EXPECT_EQ(rows[0].s(3), "");
  EXPECT_EQ(rows[1].s(0), "it's ?");
  EXPECT_EQ(rows[1].i(1), -7);
  EXPECT_EQ(rows[1].s(3), "q?");
  EXPECT_THROW(rows[0].i(9), Error);
  // Both backends return integers as integers (the stores compare them).
  EXPECT_TRUE(std::holds_alternative<int64_t>(db->query("SELECT COUNT(*) FROM t")[0].cols[0]));
  EXPECT_EQ(db->exec("UPDATE t SET n = n + 1", {}), 2);
}

TEST_P(SqlDbTest, DuplicateKeyIsAConstraintError) {
  db->exec("INSERT INTO t (id) VALUES (?)", {std::string("a")});
  EXPECT_THROW(db->exec("INSERT INTO t (id) VALUES (?)", {std::string("a")}), sql::ConstraintError);
  // The connection stays usable.
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM t")[0].i(0), 1);
  EXPECT_THROW(db->query("SELECT nonsense FROM nowhere"), Error);
  EXPECT_THROW(db->exec("INSERT INTO t (id) VALUES (?)", {}), Error);  // too few parameters
}

TEST_P(SqlDbTest, TransactionsRollBackAndNest) {
  EXPECT_THROW(db->transaction([&] {
    db->exec("INSERT INTO t (id) VALUES (?)", {std::string("gone")});
    throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM t")[0].i(0), 0);
  db->transaction([&] {
    db->exec("INSERT INTO t (id) VALUES (?)", {std::string("outer")});
    db->transaction([&] { db->exec("INSERT INTO t (id) VALUES (?)", {std::string("inner")}); });
  });
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM t")[0].i(0), 2);
  // A failing statement inside rolls the whole transaction back.
  EXPECT_THROW(db->transaction([&] {
    db->exec("INSERT INTO t (id) VALUES (?)", {std::string("third")});
    db->exec("INSERT INTO t (id) VALUES (?)", {std::string("outer")});
  }),
               sql::ConstraintError);
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM t")[0].i(0), 2);
}

TEST_P(SqlDbTest, ConcurrentTransactionsSerialise) {
  db->exec("INSERT INTO t (id, n) VALUES ('c', 0)", {});
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i)
        db->transaction([&] {
          const int64_t n = db->query("SELECT n FROM t WHERE id = 'c'")[0].i(0);
          db->exec("UPDATE t SET n = ? WHERE id = 'c'", {n + 1});
        });
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(db->query("SELECT n FROM t WHERE id = 'c'")[0].i(0), 200);
}

TEST_P(SqlDbTest, MigrationsApplyOnceAndRefuseNewerSchemas) {
  const std::vector<std::string> v1 = {"CREATE TABLE m1 (a BIGINT)"};
  const std::vector<std::string> v2 = {v1[0], "CREATE TABLE m2 (b BIGINT)"};
  sql::migrate(*db, "demo", v1);
  sql::migrate(*db, "demo", v1);  // again: nothing to do (CREATE TABLE would fail if re-run)
  sql::migrate(*db, "demo", v2);
  db->exec("INSERT INTO m2 (b) VALUES (1)", {});
  sql::migrate(*db, "other", {"CREATE TABLE o1 (c BIGINT)"});  // components are independent
  EXPECT_EQ(db->query("SELECT version FROM schema_versions WHERE component = 'demo'")[0].i(0), 2);
  try {
    sql::migrate(*db, "demo", v1);
    FAIL() << "a newer schema must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
  // A second connection sees the migrated schema.
  auto db2 = sql::open_db(url, "test store");
  sql::migrate(*db2, "demo", v2);
  EXPECT_EQ(db2->query("SELECT COUNT(*) FROM m2")[0].i(0), 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, SqlDbTest, ::testing::Values(Backend::Sqlite, Backend::Postgres),
                         [](const ::testing::TestParamInfo<Backend>& i) {
                           return std::string(i.param == Backend::Sqlite ? "sqlite" : "postgres");
                         });

TEST(SqlDb, BadUrlsFailClearly) {
  EXPECT_THROW(sql::open_db("sqlite:/nonexistent-dir/x/y.db", "variant store"), Error);
  try {
    sql::open_db("postgres://user:secret@127.0.0.1:1/db?connect_timeout=1", "variant store");
    FAIL() << "no server on port 1";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find("secret"), std::string::npos) << m;
    EXPECT_NE(m.find("variant store"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace omicsd
