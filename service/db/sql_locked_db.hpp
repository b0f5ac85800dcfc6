#pragma once
// Internal to the SQL layer (sql_db.cpp): what both backends share about transactions. One
// connection guarded by a recursive lock; a transaction() inside another on the same thread joins
// it, and other threads wait for the outer one to finish.
//
// Group commit (DbOptions::group_commit): write transactions that arrive while another is running
// queue up, and the next one to lead runs the whole queue as one database transaction, each in
// its own savepoint, then commits once. Every caller still gets its own outcome: a transaction
// whose function throws is rolled back to its savepoint and its caller gets the exception; the
// others commit together, and each caller returns only after that commit is durable. With SQLite
// (synchronous=FULL) the commit's fsync is what bounds writes per second, so sharing it is what
// lets concurrent submissions scale. The functions of a group run on the leader's thread, so they
// must not take locks their callers hold (the job store's never do; the option is off by default).
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "service/db/sql_db.hpp"

namespace omicsd::sql {

class LockedDb : public Db {
 public:
  explicit LockedDb(bool group_commit) : group_commit_(group_commit) {}
  void transaction(const std::function<void()>& fn, TxKind kind) override;

 protected:
  virtual void begin(TxKind kind) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;  // best effort

  std::recursive_mutex mu_;
  int depth_ = 0;  // > 0 while a transaction is open (guarded by mu_)

 private:
  struct Waiter {
    const std::function<void()>* fn;
    std::exception_ptr error;
    bool done = false;
  };
  // The most transactions one group commit takes (a bound on how long one commit holds the lock).
  static constexpr size_t kMaxGroup = 128;

  void run_one(const std::function<void()>& fn, TxKind kind);  // caller holds mu_
  void grouped(const std::function<void()>& fn);
  void run_group(const std::vector<Waiter*>& batch) noexcept;
  void enter();
  void leave();

  const bool group_commit_;
  std::atomic<std::thread::id> owner_{};  // the thread whose transaction is open
  std::mutex group_mu_;
  std::condition_variable group_cv_;
  std::vector<Waiter*> queue_;  // guarded by group_mu_
  bool leading_ = false;        // a group is running (guarded by group_mu_)
};

}  // namespace omicsd::sql
