// The catalog stores' SQL connection (sql_db.hpp): SQLite through sqlite3 with a prepared-statement
// cache, PostgreSQL through libpq with '?' placeholders rewritten to $n. Both return typed values
// (integers as int64, floating point as double, everything else as text) so stores read rows the
// same way whichever backend answered.
#include "service/db/sql_db.hpp"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "service/db/pg_url.hpp"
#include "service/db/sql_locked_db.hpp"
#include "service/util/clock.hpp"

namespace omicsd::sql {
namespace {

// ---------------------------------------------------------------------------------------------
// SQLite

class SqliteDb final : public LockedDb {
 public:
  SqliteDb(std::string path, const std::string& component, const DbOptions& opts)
      : LockedDb(opts.group_commit), path_(std::move(path)), desc_(component + " sqlite:" + path_) {
    const int rc = sqlite3_open_v2(path_.c_str(), &db_,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      db_ = nullptr;
      throw Error(desc_ + ": open: " + msg);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, std::max(opts.busy_timeout_ms, 0));
    // journal_mode answers the mode it ended in: a file that cannot use WAL (a read-only directory,
    // some network file systems) must not silently run without it.
    const auto mode = query("PRAGMA journal_mode=WAL", {});
    if (mode.empty() || mode[0].s(0) != "wal")
      throw Error(desc_ + ": open: journal mode is '" + (mode.empty() ? "" : mode[0].s(0)) + "', not WAL");
    // cache_size: up to 64 MiB of pages per connection (SQLite's default is 2 MiB). A large
    // transaction (a 10,000-run batch: 70,000 rows into indexes keyed by random ids) otherwise spills
    // dirty pages to the WAL before it commits and reads them back; measured 2.1 s -> 1.0 s for that
    // batch. Pages are only allocated as they are used.
    exec_script("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536");
  }
  ~SqliteDb() override {
    for (auto& [sql, st] : stmts_) sqlite3_finalize(st);
    sqlite3_close(db_);
  }

  Dialect dialect() const override { return Dialect::sqlite; }
  std::string describe() const override { return "sqlite:" + path_; }

  std::vector<Row> query(std::string_view sql, const std::vector<Value>& params) override {
    std::lock_guard lk(mu_);
    sqlite3_stmt* st = prepare(sql, params);
    std::vector<Row> rows;
    const int n = sqlite3_column_count(st);
    for (;;) {
      const int rc = sqlite3_step(st);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) fail(sql, rc, st);
      Row row;
      row.cols.reserve(size_t(n));
      for (int c = 0; c < n; ++c) {
        switch (sqlite3_column_type(st, c)) {
          case SQLITE_NULL:
            row.cols.emplace_back(nullptr);
            break;
          case SQLITE_INTEGER:
            row.cols.emplace_back(int64_t(sqlite3_column_int64(st, c)));
            break;
          case SQLITE_FLOAT:
            row.cols.emplace_back(sqlite3_column_double(st, c));
            break;
          default: {
            const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
            row.cols.emplace_back(std::string(p ? p : "", size_t(sqlite3_column_bytes(st, c))));
          }
        }
      }
      rows.push_back(std::move(row));
    }
    sqlite3_reset(st);
    return rows;
  }

  int64_t exec(std::string_view sql, const std::vector<Value>& params) override {
    std::lock_guard lk(mu_);
    sqlite3_stmt* st = prepare(sql, params);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) fail(sql, rc, st);
    sqlite3_reset(st);
    return sqlite3_changes64(db_);
  }

  void exec_script(std::string_view sql) override {
    std::lock_guard lk(mu_);
    char* err = nullptr;
    const std::string text(sql);
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      throw Error(desc_ + ": " + msg);
    }
  }

 private:
  void begin(TxKind kind) override { exec_script(kind == TxKind::write ? "BEGIN IMMEDIATE" : "BEGIN"); }
  void commit() override { exec_script("COMMIT"); }
  void rollback() noexcept override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

  // The cached statement for `sql`, reset and bound to params.
  sqlite3_stmt* prepare(std::string_view sql, const std::vector<Value>& params) {
    auto it = stmts_.find(std::string(sql));
    sqlite3_stmt* st;
    if (it != stmts_.end()) {
      st = it->second;
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
    } else {
      const int rc = sqlite3_prepare_v2(db_, sql.data(), int(sql.size()), &st, nullptr);
      if (rc != SQLITE_OK) fail(sql, rc, nullptr);
      stmts_.emplace(std::string(sql), st);
    }
    if (int(params.size()) != sqlite3_bind_parameter_count(st))
      throw Error(desc_ + ": statement has " + std::to_string(sqlite3_bind_parameter_count(st)) +
                  " parameters, " + std::to_string(params.size()) + " given: " + std::string(sql));
    for (size_t i = 0; i < params.size(); ++i) {
      const int k = int(i) + 1;
      int rc = SQLITE_OK;
      if (std::holds_alternative<std::nullptr_t>(params[i]))
        rc = sqlite3_bind_null(st, k);
      else if (const auto* v = std::get_if<int64_t>(&params[i]))
        rc = sqlite3_bind_int64(st, k, *v);
      else if (const auto* d = std::get_if<double>(&params[i]))
        rc = sqlite3_bind_double(st, k, *d);
      else {
        const std::string& s = std::get<std::string>(params[i]);
        rc = sqlite3_bind_text64(st, k, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) fail(sql, rc, st);
    }
    return st;
  }

  [[noreturn]] void fail(std::string_view sql, int rc, sqlite3_stmt* st) {
    std::string msg = sqlite3_errmsg(db_);
    if (msg.empty() || msg == "not an error") msg = sqlite3_errstr(rc);
    if (st) sqlite3_reset(st);
    const std::string what = desc_ + ": " + msg + " (in: " + std::string(sql.substr(0, 120)) + ")";
    if ((rc & 0xff) == SQLITE_CONSTRAINT &&
        (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY))
      throw ConstraintError(what);
    throw Error(what);
  }

  std::string path_;
  std::string desc_;
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;
};

// ---------------------------------------------------------------------------------------------
// PostgreSQL

void ignore_notice(void*, const char*) {}

// '?' -> $1, $2, ... outside single-quoted literals and double-quoted identifiers.
std::string to_dollar_params(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;
  for (char c : sql) {
    if (quote) {
      if (c == quote) quote = 0;
      out += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      out += c;
    } else if (c == '?') {
      out += '$' + std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

class PostgresDb final : public LockedDb {
 public:
  PostgresDb(const std::string& url, const std::string& component, const DbOptions& opts)
      : LockedDb(opts.group_commit),
        component_(component),
        lock_timeout_ms_(std::max(opts.busy_timeout_ms, 0)) {
    desc_ = pg::describe_url(url);
    if (desc_.empty()) {
      char* err = nullptr;
      PQconninfoOption* o = PQconninfoParse(url.c_str(), &err);
      std::string msg = pg::redact(err ? pg::trim(err) : "invalid connection string", url);
      PQconninfoFree(o);
      PQfreemem(err);
      throw Error(component_ + " postgres: open: invalid connection URL: " + msg);
    }
    const char* keys[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
    const std::string connect_timeout = std::to_string(std::max(2, lock_timeout_ms_ / 1000));
    const char* vals[] = {connect_timeout.c_str(), "omicsd", url.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, vals, 1);
    if (!conn_) throw Error(component_ + " " + desc_ + ": open: out of memory");
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = pg::redact(pg::trim(PQerrorMessage(conn_)), url);
      PQfinish(conn_);
      conn_ = nullptr;
      throw Error(component_ + " " + desc_ + ": open: " + msg);
    }
    PQsetNoticeProcessor(conn_, ignore_notice, nullptr);
    configure_session();
  }
  ~PostgresDb() override { PQfinish(conn_); }

  Dialect dialect() const override { return Dialect::postgres; }
  std::string describe() const override { return desc_; }

  std::vector<Row> query(std::string_view sql, const std::vector<Value>& params) override {
    std::lock_guard lk(mu_);
    PGresult* r = run(sql, params);
    std::vector<Row> rows;
    const int nrows = PQntuples(r), ncols = PQnfields(r);
    rows.reserve(size_t(nrows));
    for (int i = 0; i < nrows; ++i) {
      Row row;
      row.cols.reserve(size_t(ncols));
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(r, i, c)) {
          row.cols.emplace_back(nullptr);
          continue;
        }
        const char* v = PQgetvalue(r, i, c);
        switch (PQftype(r, c)) {
          case 20:  // int8
          case 21:  // int2
          case 23:  // int4
            row.cols.emplace_back(int64_t(std::strtoll(v, nullptr, 10)));
            break;
          case 700:   // float4
          case 701:   // float8
          case 1700:  // numeric
            row.cols.emplace_back(std::strtod(v, nullptr));
            break;
          case 16:  // bool
            row.cols.emplace_back(int64_t(v[0] == 't'));
            break;
          default:
            row.cols.emplace_back(std::string(v, size_t(PQgetlength(r, i, c))));
        }
      }
      rows.push_back(std::move(row));
    }
    PQclear(r);
    return rows;
  }

  int64_t exec(std::string_view sql, const std::vector<Value>& params) override {
    std::lock_guard lk(mu_);
    PGresult* r = run(sql, params);
    const char* s = PQcmdTuples(r);
    const int64_t n = s && *s ? std::strtoll(s, nullptr, 10) : 0;
    PQclear(r);
    return n;
  }

  void exec_script(std::string_view sql) override {
    std::lock_guard lk(mu_);
    const std::string text(sql);
    PQclear(once_more_if_reconnected([&] { return check(PQexec(conn_, text.c_str()), sql); }));
  }

 private:
  void begin(TxKind kind) override {
    const char* sql = kind == TxKind::write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    PQclear(once_more_if_reconnected([&] { return check(PQexec(conn_, sql), sql); }));
  }
  void commit() override {
    PGresult* r = check(PQexec(conn_, "COMMIT"), "COMMIT");
    const std::string status = PQcmdStatus(r);
    PQclear(r);
    // COMMIT of a transaction the server aborted answers ROLLBACK, not an error.
    if (status != "COMMIT") throw Error(component_ + " " + desc_ + ": the transaction was rolled back");
  }
  void rollback() noexcept override {
    if (PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE)
      PQclear(PQexec(conn_, "ROLLBACK"));
  }

  // Outside a transaction, a connection lost since the last call (server restart) is re-opened.
  void ensure() {
    if (depth_ > 0 || PQstatus(conn_) == CONNECTION_OK) return;
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK)
      throw Error(component_ + " " + desc_ + ": reconnect failed: " + pg::trim(PQerrorMessage(conn_)));
    configure_session();
  }

  // Runs fn (one statement outside a transaction, or BEGIN); when it fails because the connection
  // was lost (the server restarted or killed the session since the last call, which libpq notices
  // only now), reconnects and runs it once more. Inside a transaction nothing is retried: the
  // transaction died with the connection.
  template <class F>
  PGresult* once_more_if_reconnected(F&& fn) {
    ensure();
    if (depth_ > 0) return fn();
    try {
      return fn();
    } catch (const Error&) {
      if (PQstatus(conn_) == CONNECTION_OK) throw;
    }
    ensure();
    return fn();
  }

  // Lock waits are bounded like SQLite's busy timeout.
  void configure_session() {
    const std::string ms = std::to_string(lock_timeout_ms_);
    const char* values[] = {ms.c_str()};
    PQclear(check(PQexecParams(conn_, "SELECT set_config('lock_timeout', $1, false)", 1, nullptr, values,
                               nullptr, nullptr, 0),
                  "set lock_timeout"));
  }

  PGresult* run(std::string_view sql, const std::vector<Value>& params) {
    std::vector<std::string> text(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (size_t i = 0; i < params.size(); ++i) {
      if (std::holds_alternative<std::nullptr_t>(params[i])) continue;
      if (const auto* v = std::get_if<int64_t>(&params[i])) {
        text[i] = std::to_string(*v);
      } else if (const auto* d = std::get_if<double>(&params[i])) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", *d);
        text[i] = buf;
      } else {
        text[i] = std::get<std::string>(params[i]);
      }
      values[i] = text[i].c_str();
    }
    const std::string q = to_dollar_params(sql);
    return once_more_if_reconnected([&] {
      return check(
          PQexecParams(conn_, q.c_str(), int(values.size()), nullptr, values.data(), nullptr, nullptr, 0),
          sql);
    });
  }

  // Returns r when it succeeded; otherwise clears it and throws with the server's message.
  PGresult* check(PGresult* r, std::string_view sql) {
    const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    std::string msg, state;
    if (r) {
      const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
      const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
      const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      msg = primary ? primary : pg::trim(PQresultErrorMessage(r));
      if (detail) msg += std::string(" (") + detail + ")";
      state = code ? code : "";
    }
    if (msg.empty()) msg = pg::trim(PQerrorMessage(conn_));
    if (msg.empty()) msg = PQresStatus(st);
    PQclear(r);
    const std::string what =
        component_ + " " + desc_ + ": " + msg + " (in: " + std::string(sql.substr(0, 120)) + ")";
    if (state == "23505") throw ConstraintError(what);
    if (state == "40P01" || state == "40001") throw RetryableError(what);
    throw Error(what);
  }

  std::string component_;
  int lock_timeout_ms_;
  std::string desc_;
  PGconn* conn_ = nullptr;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

bool Row::is_null(size_t c) const {
  if (c >= cols.size()) throw Error("sql row: column " + std::to_string(c) + " out of range");
  return std::holds_alternative<std::nullptr_t>(cols[c]);
}

int64_t Row::i(size_t c) const {
  if (is_null(c)) return 0;
  if (const auto* v = std::get_if<int64_t>(&cols[c])) return *v;
  if (const auto* d = std::get_if<double>(&cols[c])) return int64_t(*d);
  return std::strtoll(std::get<std::string>(cols[c]).c_str(), nullptr, 10);
}

double Row::d(size_t c) const {
  if (is_null(c)) return 0;
  if (const auto* d = std::get_if<double>(&cols[c])) return *d;
  if (const auto* v = std::get_if<int64_t>(&cols[c])) return double(*v);
  return std::strtod(std::get<std::string>(cols[c]).c_str(), nullptr);
}

std::string Row::s(size_t c) const {
  if (is_null(c)) return "";
  if (const auto* v = std::get_if<int64_t>(&cols[c])) return std::to_string(*v);
  if (const auto* d = std::get_if<double>(&cols[c])) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", *d);
    return buf;
  }
  return std::get<std::string>(cols[c]);
}

std::unique_ptr<Db> open_sqlite_db(const std::string& path, const std::string& component,
                                   const DbOptions& opts) {
  return std::make_unique<SqliteDb>(path, component, opts);
}

std::unique_ptr<Db> open_postgres_db(const std::string& conninfo, const std::string& component,
                                     const DbOptions& opts) {
  return pooled([=] { return std::make_unique<PostgresDb>(conninfo, component, opts); }, opts.connections);
}

std::unique_ptr<Db> open_db(const std::string& url, const std::string& component, const DbOptions& opts) {
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0)
    return open_postgres_db(url, component, opts);
  if (url.rfind("sqlite://", 0) == 0) return open_sqlite_db(url.substr(9), component, opts);
  if (url.rfind("sqlite:", 0) == 0) return open_sqlite_db(url.substr(7), component, opts);
  return open_sqlite_db(url, component, opts);
}

void migrate(Db& db, const std::string& component, const std::vector<std::string>& steps) {
  db.transaction([&] {
    // Daemons opening one PostgreSQL database together take turns here (the lock ends with the
    // transaction); SQLite's BEGIN IMMEDIATE already excludes other writers.
    if (db.dialect() == Dialect::postgres)
      db.query("SELECT pg_advisory_xact_lock(?::bigint)", {int64_t(0x6f6d6963736402)});
    db.exec_script(
        "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL, "
        "applied_at BIGINT NOT NULL)");
    const auto rows = db.query("SELECT version FROM schema_versions WHERE component = ?", {component});
    const int64_t current = rows.empty() ? 0 : rows[0].i(0);
    if (current > int64_t(steps.size()))
      throw Error(db.describe() + ": the " + component + " schema is version " + std::to_string(current) +
                  ", newer than this omicsd supports (" + std::to_string(steps.size()) + "); upgrade omicsd");
    for (int64_t v = current; v < int64_t(steps.size()); ++v) db.exec_script(steps[size_t(v)]);
    if (current < int64_t(steps.size()))
      db.exec(
          "INSERT INTO schema_versions (component, version, applied_at) VALUES (?, ?, ?) "
          "ON CONFLICT (component) DO UPDATE SET version = excluded.version, applied_at = "
          "excluded.applied_at",
          {component, int64_t(steps.size()), now_ms()});
  });
}

}  // namespace omicsd::sql
