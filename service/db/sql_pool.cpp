// Several connections to one database behind one Db (sql_db.hpp: pooled). A transaction takes a
// connection for its whole length and binds it to the calling thread, so the statements and nested
// transactions it runs go to that connection; a statement outside a transaction takes any free one.
// Connections are opened as concurrent callers need them, up to the limit, and kept.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

#include "service/db/sql_db.hpp"

namespace omicsd::sql {
namespace {

class PooledDb final : public Db {
 public:
  PooledDb(std::function<std::unique_ptr<Db>()> open_one, int connections)
      : open_one_(std::move(open_one)), max_(std::max(connections, 1)) {
    all_.push_back(open_one_());
    free_.push_back(all_.back().get());
    dialect_ = all_[0]->dialect();
    describe_ = all_[0]->describe();
  }

  Dialect dialect() const override { return dialect_; }
  std::string describe() const override { return describe_; }

  std::vector<Row> query(std::string_view sql, const std::vector<Value>& params) override {
    if (Db* c = bound()) return c->query(sql, params);
    Lease c(*this);
    return c.db->query(sql, params);
  }
  int64_t exec(std::string_view sql, const std::vector<Value>& params) override {
    if (Db* c = bound()) return c->exec(sql, params);
    Lease c(*this);
    return c.db->exec(sql, params);
  }
  void exec_script(std::string_view sql) override {
    if (Db* c = bound()) return c->exec_script(sql);
    Lease c(*this);
    c.db->exec_script(sql);
  }
  void transaction(const std::function<void()>& fn, TxKind kind) override {
    if (Db* c = bound()) return c->transaction(fn, kind);  // joins the open one
    Lease c(*this);
    Binding b(this, c.db);
    c.db->transaction(fn, kind);
  }

 private:
  // The connection this thread's open transaction on this pool holds, if any.
  struct Bound {
    const PooledDb* pool;
    Db* db;
  };
  static thread_local std::vector<Bound> bound_;
  Db* bound() const {
    for (const Bound& b : bound_)
      if (b.pool == this) return b.db;
    return nullptr;
  }
  struct Binding {
    Binding(const PooledDb* pool, Db* db) { bound_.push_back({pool, db}); }
    ~Binding() { bound_.pop_back(); }
  };

  struct Lease {
    explicit Lease(PooledDb& p) : pool(p), db(p.acquire()) {}
    ~Lease() { pool.release(db); }
    PooledDb& pool;
    Db* db;
  };

  Db* acquire() {
    std::unique_lock lk(mu_);
    for (;;) {
      if (!free_.empty()) {
        Db* db = free_.back();
        free_.pop_back();
        return db;
      }
      if (int(all_.size()) + opening_ < max_) {
        ++opening_;
        lk.unlock();
        std::unique_ptr<Db> db;
        try {
          db = open_one_();
        } catch (...) {
          // The server refused another connection (max_connections, say): make do with the ones
          // already open, and stop growing.
          lk.lock();
          --opening_;
          max_ = int(all_.size()) + opening_;
          continue;
        }
        lk.lock();
        --opening_;
        all_.push_back(std::move(db));
        return all_.back().get();
      }
      freed_.wait(lk);
    }
  }
  void release(Db* db) {
    {
      std::lock_guard lk(mu_);
      free_.push_back(db);
    }
    freed_.notify_one();
  }

  std::function<std::unique_ptr<Db>()> open_one_;
  Dialect dialect_;
  std::string describe_;
  std::mutex mu_;
  std::condition_variable freed_;
  int max_;
  int opening_ = 0;
  std::vector<std::unique_ptr<Db>> all_;
  std::vector<Db*> free_;
};

thread_local std::vector<PooledDb::Bound> PooledDb::bound_;

}  // namespace

std::unique_ptr<Db> pooled(std::function<std::unique_ptr<Db>()> open_one, int connections) {
  if (connections <= 1) return open_one();
  return std::make_unique<PooledDb>(std::move(open_one), connections);
}

}  // namespace omicsd::sql
