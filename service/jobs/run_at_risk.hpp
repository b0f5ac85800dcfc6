#pragma once
// Deadline risk of a run: whether its remaining work, from the measured durations of its stages, will
// take it past its deadline. The store measures each stage (workflow, task name) from its recent
// completions (table stage_samples, written by a trigger when a task completes, so every daemon sharing
// the database sees the same estimates); the daemon's sweeper asks this for each unfinished run with a
// deadline and writes one run.at_risk event per run (JobStore::flag_at_risk_runs).
//
// Remaining work is the sum of the estimates of the run's unfinished stages (a RUNNING stage counts what
// is left of its estimate, at least nothing). The sum assumes the stages run one after another, as the
// built-in workflows' chains do; for a run with parallel branches it is an upper bound (it warns early,
// never late). Time spent waiting in the queue is not added: it depends on what else is queued and on
// the group's caps, and the sweeper looks again every second, so a run that waits too long crosses the
// line while it waits.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace omicsd {

// How many recent completions of each stage the estimate is taken from.
inline constexpr int kStageSampleWindow = 20;

struct StageEstimate {
  int64_t duration_ms = 0;  // median of the recent completed durations
  int samples = 0;          // how many it is the median of (1..kStageSampleWindow)
};

// Median of the durations (the mean of the two middle ones for an even count); throws InputError when
// there are none.
int64_t median_duration_ms(std::vector<int64_t> durations);

// One unfinished stage of a run, as the sweeper sees it.
struct UnfinishedStage {
  std::string name;
  bool running = false;               // leased now (else QUEUED)
  std::optional<int64_t> started_at;  // when running: its current lease
};

struct RunRisk {
  int64_t remaining_ms = 0;             // estimated work left
  int64_t finish_at = 0;                // now + remaining_ms
  bool at_risk = false;                 // finish_at > deadline
  std::vector<std::string> unmeasured;  // stages without any completion yet (counted as 0 ms)
  std::string reason;                   // for the event and the log: the deadline, the estimate, the stages
};

// The risk of a run with `deadline` whose unfinished stages are `stages`, given the estimates by task
// name (those of the run's workflow).
RunRisk assess_run_risk(int64_t deadline, const std::vector<UnfinishedStage>& stages,
                        const std::map<std::string, StageEstimate>& estimates, int64_t now);

}  // namespace omicsd
