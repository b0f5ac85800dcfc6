#pragma once
// A small SQL connection used by every store (jobs, references, read sets, variants), so each store
// writes its SQL once for both the embedded SQLite default and a shared PostgreSQL.
//
// Portable SQL rules the stores follow: '?' placeholders (rewritten to $1, $2, ... for PostgreSQL;
// so never put a '?' inside a string literal), BIGINT / INTEGER / TEXT / DOUBLE PRECISION columns,
// INSERT ... ON CONFLICT ... DO NOTHING / DO UPDATE, RETURNING, no AUTOINCREMENT (ids are made by
// the stores). One connection per Db guarded by a mutex: calls from several threads serialise.
// Where the dialects differ (row locks, advisory locks), stores ask dialect() and add the clause.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "host/common/error.hpp"

namespace omicsd::sql {

using Value = std::variant<std::nullptr_t, int64_t, double, std::string>;

// One result row. Accessors throw Error for a column index out of range; i()/d() of a NULL give 0
// and s() of a NULL gives "".
struct Row {
  std::vector<Value> cols;

  bool is_null(size_t c) const;
  int64_t i(size_t c) const;
  double d(size_t c) const;
  std::string s(size_t c) const;
};

enum class Dialect { sqlite, postgres };

// A write transaction takes the database's write lock up front (SQLite BEGIN IMMEDIATE; PostgreSQL
// READ COMMITTED, where the store locks rows itself); a read transaction is one consistent snapshot
// that writes nothing (SQLite BEGIN; PostgreSQL REPEATABLE READ READ ONLY).
enum class TxKind { write, read };

struct DbOptions {
  // How long a statement waits for a lock another connection holds before it fails (SQLite's busy
  // timeout, PostgreSQL's lock_timeout); PostgreSQL's connect timeout is the same in seconds, >= 2.
  int busy_timeout_ms = 10000;
  // Concurrent write transactions share one commit (sql_locked_db.hpp). Only for callers whose
  // transaction functions take no locks of their own: they may run on another caller's thread.
  bool group_commit = false;
  // PostgreSQL: up to this many connections, opened as concurrent callers need them (sql_pool.cpp);
  // a transaction holds one for its whole length. SQLite always uses one (one writer at a time).
  int connections = 1;
};

class Db {
 public:
  virtual ~Db() = default;
  virtual Dialect dialect() const = 0;
  // "sqlite:/path/x.db" or "postgres://user@host:port/db" (password removed).
  virtual std::string describe() const = 0;

  // One statement with '?' placeholders bound to params in order. query() returns its rows;
  // exec() returns the number of rows it changed. Errors throw Error naming the store and the
  // server's message (a unique-constraint violation throws ConstraintError).
  virtual std::vector<Row> query(std::string_view sql, const std::vector<Value>& params = {}) = 0;
  virtual int64_t exec(std::string_view sql, const std::vector<Value>& params = {}) = 0;
  // Several statements without parameters (schema scripts).
  virtual void exec_script(std::string_view sql) = 0;

  // Runs fn inside one transaction of the given kind and commits, or rolls back and rethrows when fn
  // throws. Holds the connection for the whole call, so other threads wait; a transaction() inside
  // fn joins the outer one (whatever its kind). A connection lost since the last call (a server
  // restart) is re-opened first, as it is for a statement outside a transaction.
  virtual void transaction(const std::function<void()>& fn, TxKind kind = TxKind::write) = 0;
};

// A unique or primary-key constraint refused an insert/update.
class ConstraintError : public Error {
 public:
  explicit ConstraintError(const std::string& what) : Error(what) {}
};

// The server gave up on a transaction that may succeed when run again: a deadlock or a
// serialisation failure (PostgreSQL SQLSTATE 40P01 / 40001). Stores retry the whole transaction.
class RetryableError : public Error {
 public:
  explicit RetryableError(const std::string& what) : Error(what) {}
};

// "sqlite:PATH", "sqlite://PATH" or a plain path -> SQLite (WAL, synchronous=FULL, created when
// missing); "postgres://..." / "postgresql://..." -> PostgreSQL. `component` names the store in
// error messages ("variant store sqlite:/x: ...").
std::unique_ptr<Db> open_db(const std::string& url, const std::string& component, const DbOptions& opts = {});
// Up to `connections` connections made by open_one behind one Db, opened as concurrent callers
// need them (the first one now); connections <= 1 is open_one() itself.
std::unique_ptr<Db> pooled(std::function<std::unique_ptr<Db>()> open_one, int connections);
// The same, for a backend known in advance: a file path, or any libpq connection string
// ("postgres://..." or "host=... dbname=...").
std::unique_ptr<Db> open_sqlite_db(const std::string& path, const std::string& component,
                                   const DbOptions& opts = {});
std::unique_ptr<Db> open_postgres_db(const std::string& conninfo, const std::string& component,
                                     const DbOptions& opts = {});

// Versioned schema per component: steps[i] takes the component from version i to i + 1. Applies
// the missing steps in one transaction (on PostgreSQL under an advisory lock, so daemons starting
// together do not race) and records the version in table schema_versions(component, version).
// Throws Error when the database holds a newer version of the component than steps.size().
void migrate(Db& db, const std::string& component, const std::vector<std::string>& steps);

}  // namespace omicsd::sql
