#include "service/db/sql_locked_db.hpp"

#include <algorithm>

namespace omicsd::sql {

void LockedDb::enter() {
  depth_ = 1;
  owner_.store(std::this_thread::get_id());
}

void LockedDb::leave() {
  depth_ = 0;
  owner_.store(std::thread::id());
}

void LockedDb::transaction(const std::function<void()>& fn, TxKind kind) {
  // Inside this thread's open transaction (a store method calling another, or a grouped function
  // on the leader's thread): join it; its commit or rollback covers this too.
  if (owner_.load() == std::this_thread::get_id()) {
    fn();
    return;
  }
  if (group_commit_ && kind == TxKind::write) {
    grouped(fn);
    return;
  }
  std::lock_guard lk(mu_);
  run_one(fn, kind);
}

void LockedDb::run_one(const std::function<void()>& fn, TxKind kind) {
  begin(kind);
  enter();
  try {
    fn();
  } catch (...) {
    leave();
    rollback();
    throw;
  }
  leave();
  commit();
}

void LockedDb::grouped(const std::function<void()>& fn) {
  Waiter me{&fn, nullptr, false};
  std::unique_lock g(group_mu_);
  queue_.push_back(&me);
  while (!me.done) {
    if (leading_) {
      group_cv_.wait(g);
      continue;
    }
    // Lead the next group: the oldest queued transactions (this one among them unless more than
    // kMaxGroup were queued before it; then it waits for a later group).
    leading_ = true;
    const size_t n = std::min(queue_.size(), kMaxGroup);
    std::vector<Waiter*> batch(queue_.begin(), queue_.begin() + std::ptrdiff_t(n));
    queue_.erase(queue_.begin(), queue_.begin() + std::ptrdiff_t(n));
    g.unlock();
    run_group(batch);
    g.lock();
    for (Waiter* w : batch) w->done = true;
    leading_ = false;
    group_cv_.notify_all();
  }
  if (me.error) std::rethrow_exception(me.error);
}

void LockedDb::run_group(const std::vector<Waiter*>& batch) noexcept {
  std::lock_guard lk(mu_);
  if (batch.size() == 1) {  // nobody to share with: a plain transaction
    try {
      run_one(*batch[0]->fn, TxKind::write);
    } catch (...) {
      batch[0]->error = std::current_exception();
    }
    return;
  }
  try {
    begin(TxKind::write);
  } catch (...) {
    for (Waiter* w : batch) w->error = std::current_exception();
    return;
  }
  enter();
  // An error of the savepoint statements themselves (the database failed, not a caller's function)
  // ends the whole group: everything rolls back and every caller not already failed gets it.
  std::exception_ptr fatal;
  for (Waiter* w : batch) {
    try {
      exec_script("SAVEPOINT omicsd_group");
      try {
        (*w->fn)();
      } catch (...) {
        w->error = std::current_exception();
        exec_script("ROLLBACK TO SAVEPOINT omicsd_group");
      }
      exec_script("RELEASE SAVEPOINT omicsd_group");
    } catch (...) {
      fatal = std::current_exception();
      break;
    }
  }
  leave();
  if (!fatal) {
    try {
      commit();
      return;
    } catch (...) {
      fatal = std::current_exception();
    }
  }
  rollback();
  for (Waiter* w : batch)
    if (!w->error) w->error = fatal;
}

}  // namespace omicsd::sql
