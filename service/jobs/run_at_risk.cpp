#include "service/jobs/run_at_risk.hpp"

#include <algorithm>

#include "host/common/error.hpp"

namespace omicsd {

int64_t median_duration_ms(std::vector<int64_t> d) {
  if (d.empty()) throw InputError("median of no stage durations");
  std::sort(d.begin(), d.end());
  const size_t mid = d.size() / 2;
  return d.size() % 2 ? d[mid] : d[mid - 1] + (d[mid] - d[mid - 1]) / 2;
}

RunRisk assess_run_risk(int64_t deadline, const std::vector<UnfinishedStage>& stages,
                        const std::map<std::string, StageEstimate>& estimates, int64_t now) {
  RunRisk r;
  std::string parts;
  for (const UnfinishedStage& s : stages) {
    const auto it = estimates.find(s.name);
    if (it == estimates.end()) {
      r.unmeasured.push_back(s.name);
      continue;
    }
    int64_t left = it->second.duration_ms;
    if (s.running && s.started_at) left = std::max<int64_t>(0, left - (now - *s.started_at));
    r.remaining_ms += left;
    if (!parts.empty()) parts += ", ";
    parts += s.name + " " + std::to_string(left) + " ms" + (s.running ? " (running)" : "");
  }
  r.finish_at = now + r.remaining_ms;
  r.at_risk = r.finish_at > deadline;
  r.reason = "estimated finish " + std::to_string(r.finish_at) + " (unix ms) is " +
             std::to_string(r.finish_at - deadline) + " ms past the deadline " + std::to_string(deadline) +
             ": " + std::to_string(r.remaining_ms) + " ms of work left (" + (parts.empty() ? "none" : parts) +
             ")";
  if (!r.unmeasured.empty()) {
    r.reason += "; not yet measured, counted as 0 ms:";
    for (const std::string& n : r.unmeasured) r.reason += " " + n;
  }
  return r;
}

}  // namespace omicsd
