// The stores' SQL layer on both backends: typed values, '?' placeholders, transactions that roll
// back on exceptions and join when nested, constraint errors, versioned migrations; group commit on
// SQLite (concurrent write transactions share one commit but keep their own outcomes) and the
// PostgreSQL connection pool (concurrent transactions on their own connections, nested ones on
// their caller's).
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "service/db/sql_db.hpp"
#include "service/db/sql_rows.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

using sql::Value;

struct SqlDbTest : ::testing::TestWithParam<test::StoreBackend> {
  test::TempDir dir;
  std::unique_ptr<test::PostgresDatabase> pg;
  std::string url;
  std::unique_ptr<sql::Db> db;

  void SetUp() override {
    url = test::store_database_url(GetParam(), dir.path / "catalog.db", pg);
    if (url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
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

// Chunked multi-row statements (sql_rows.hpp): every row once, in order, within the parameter limit,
// for counts on both sides of each chunk boundary; RETURNING rows come back from every chunk.
TEST_P(SqlDbTest, ChunkedStatementsCoverEveryRowOnce) {
  for (size_t params_per_row : {1u, 3u, 14u, 1000u}) {
    for (size_t rows : {0u, 1u, 2u, 63u, 64u, 65u, 333u, 1000u}) {
      std::vector<size_t> seen;
      sql::for_each_chunk(rows, params_per_row, [&](size_t first, size_t count) {
        EXPECT_GE(count, 1u);
        EXPECT_TRUE(count * params_per_row <= sql::kMaxChunkParams || count == 1) << count;
        EXPECT_EQ(count & (count - 1), 0u) << "chunk sizes are powers of two: " << count;
        for (size_t i = first; i < first + count; ++i) seen.push_back(i);
      });
      ASSERT_EQ(seen.size(), rows) << params_per_row << " x " << rows;
      for (size_t i = 0; i < rows; ++i) EXPECT_EQ(seen[i], i);
    }
  }
  std::vector<Value> params;
  for (int64_t i = 0; i < 700; ++i) params.insert(params.end(), {"row-" + std::to_string(i), i * 3, nullptr});
  const auto returned =
      sql::query_rows(*db, "INSERT INTO t (id, n, note) VALUES ", "(?, ?, ?)", " RETURNING id", 3, params);
  EXPECT_EQ(returned.size(), 700u);
  const auto rows = db->query("SELECT id, n FROM t ORDER BY n");
  ASSERT_EQ(rows.size(), 700u);
  for (int64_t i = 0; i < 700; ++i) {
    EXPECT_EQ(rows[size_t(i)].s(0), "row-" + std::to_string(i));
    EXPECT_EQ(rows[size_t(i)].i(1), i * 3);
  }
  const auto some = sql::query_rows(*db, "SELECT id FROM t WHERE id IN (", "?", ")", 1,
                                    {std::string("row-0"), std::string("row-699"), std::string("none")});
  EXPECT_EQ(some.size(), 2u);
  EXPECT_THROW(sql::query_rows(*db, "INSERT INTO t (id, n) VALUES ", "(?, ?)", "", 2, {std::string("odd")}),
               Error);
}

INSTANTIATE_TEST_SUITE_P(Backends, SqlDbTest, test::store_backends(), test::StoreBackendName{});

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

std::unique_ptr<sql::Db> group_commit_sqlite(const test::TempDir& dir) {
  sql::DbOptions o;
  o.group_commit = true;
  auto db = sql::open_sqlite_db((dir.path / "t.db").string(), "test store", o);
  db->exec_script("CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT NOT NULL)");
  return db;
}

// Many threads write at once; every third transaction throws after its inserts. Each thread gets
// its own outcome: its rows are there exactly when its transaction returned normally, an exception
// reaches exactly the thread whose function threw, and nothing of a failed one is left.
TEST(SqlGroupCommit, ConcurrentWritersKeepTheirOwnOutcomes) {
  test::TempDir dir;
  auto db = group_commit_sqlite(dir);
  constexpr int kThreads = 8, kPerThread = 60;
  std::atomic<int> wrong_outcome{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string key = std::to_string(t) + "-" + std::to_string(i);
        const bool fail = (t + i) % 3 == 0;
        try {
          db->transaction([&] {
            db->exec("INSERT INTO t (k, v) VALUES (?, ?)", {key, int64_t(i)});
            db->exec("INSERT INTO t (k, v) VALUES (?, ?)", {key + "-b", int64_t(i)});
            // A nested transaction joins this one (its rows go with it).
            db->transaction([&] { db->exec("UPDATE t SET v = v + 1000 WHERE k = ?", {key}); });
            if (fail) throw std::runtime_error("refused " + key);
          });
          if (fail) ++wrong_outcome;
        } catch (const std::runtime_error& e) {
          if (!fail || std::string(e.what()) != "refused " + key) ++wrong_outcome;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong_outcome.load(), 0);
  std::set<std::string> want;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kPerThread; ++i)
      if ((t + i) % 3 != 0) {
        want.insert(std::to_string(t) + "-" + std::to_string(i));
        want.insert(std::to_string(t) + "-" + std::to_string(i) + "-b");
      }
  std::set<std::string> got;
  for (const auto& r : db->query("SELECT k, v FROM t")) {
    got.insert(r.s(0));
    const bool updated = r.s(0).find("-b") == std::string::npos;
    EXPECT_EQ(r.i(1) >= 1000, updated) << r.s(0);
  }
  EXPECT_EQ(got, want);
}

// A database error inside one grouped transaction (a constraint) fails only that caller.
TEST(SqlGroupCommit, AConstraintErrorFailsOnlyItsOwnTransaction) {
  test::TempDir dir;
  auto db = group_commit_sqlite(dir);
  db->exec("INSERT INTO t (k, v) VALUES ('taken', 0)");
  constexpr int kThreads = 6;
  std::atomic<int> constraint_errors{0}, other_errors{0};
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < 40; ++i) {
        try {
          db->transaction([&] {
            db->exec("INSERT INTO t (k, v) VALUES (?, 1)",
                     {"k" + std::to_string(t) + "-" + std::to_string(i)});
            if (i % 4 == 0) db->exec("INSERT INTO t (k, v) VALUES ('taken', 1)");
          });
        } catch (const sql::ConstraintError&) {
          ++constraint_errors;
        } catch (...) {
          ++other_errors;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(constraint_errors.load(), kThreads * 10);
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM t")[0].i(0), 1 + kThreads * 30);
}

// PostgreSQL behind a pool of 4: transactions on four threads at once each hold their own server
// session (different backend pids, all open at the same moment), a nested transaction and the
// statements inside one run on its caller's session, and a fifth caller waits for a free one.
TEST(SqlPool, ConcurrentTransactionsUseTheirOwnConnections) {
  test::PostgresDatabase pg;
  if (pg.url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
  sql::DbOptions o;
  o.connections = 4;
  auto db = sql::open_postgres_db(pg.url, "test store", o);
  constexpr int kThreads = 4;
  std::barrier inside(kThreads);
  std::vector<int64_t> pids(kThreads), nested_pids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      db->transaction([&] {
        pids[size_t(t)] = db->query("SELECT pg_backend_pid()")[0].i(0);
        inside.arrive_and_wait();  // all four transactions are open now
        db->transaction([&] { nested_pids[size_t(t)] = db->query("SELECT pg_backend_pid()")[0].i(0); });
      });
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(std::set<int64_t>(pids.begin(), pids.end()).size(), size_t(kThreads));
  EXPECT_EQ(pids, nested_pids);

  // More callers than connections: they queue for one and all finish.
  db->exec_script("CREATE TABLE n (i BIGINT NOT NULL)");
  std::vector<std::thread> many;
  for (int t = 0; t < 12; ++t)
    many.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i)
        db->transaction([&] { db->exec("INSERT INTO n (i) VALUES (?)", {int64_t(t)}); });
    });
  for (auto& th : many) th.join();
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM n")[0].i(0), 120);
  EXPECT_LE(db->query("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()")[0].i(0),
            int64_t(kThreads));
}

}  // namespace
}  // namespace omicsd
