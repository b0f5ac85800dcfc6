#pragma once
// The order in which workers lease queued tasks, the same on SQLite and PostgreSQL. Each task stores
// two keys, written when it is queued (create_run, resume_run) and read through the index
// tasks_group_queue (group_name, state, deadline_rank, urgency, seq): a lease reads each run group's
// queue in order up to its first eligible task (groups where nothing can be leased not at all) and
// takes the first of those, whatever the queue's depth:
//   1. deadline_rank: the run's deadline (unix ms), earliest first; runs without a deadline hold
//      kNoDeadlineRank and so come after every run with one (NULL would sort differently in the two
//      databases and index-ordered reads of it would need NULLS LAST on PostgreSQL).
//   2. urgency = queued_at - priority * kAgingMsPerPriority, smallest first. This is the aging rule:
//      each minute a task waits counts as one priority point, so a task queued at priority p is
//      overtaken by a task of priority p + k only if that one was queued less than k minutes later.
//      Low priority never starves: a task waiting longer than (max - min priority) minutes (33 h
//      20 min for -1000..1000) is ahead of every task queued after it without a deadline.
//   3. seq: the order of creation, for ties.
// Retries keep their keys (a task that failed keeps its place).
#include <cstdint>
#include <limits>
#include <optional>

namespace omicsd::lease_order {

inline constexpr int64_t kNoDeadlineRank = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kAgingMsPerPriority = 60'000;

inline int64_t deadline_rank(const std::optional<int64_t>& deadline) {
  return deadline ? *deadline : kNoDeadlineRank;
}
inline int64_t urgency(int64_t queued_at, int64_t priority) {
  return queued_at - priority * kAgingMsPerPriority;
}

// The ORDER BY of the lease's pick over tasks aliased t.
inline constexpr const char* kOrderBy = "t.deadline_rank, t.urgency, t.seq";

}  // namespace omicsd::lease_order
