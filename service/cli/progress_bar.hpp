#pragma once
#include <cstdint>
#include <string>

#include "host/align/align_pipeline.hpp"

namespace omicsd {

// A one-line progress bar on stderr, redrawn in place, only when stderr is a terminal (logs and CI
// output stay clean): "[=====>      ]  45%  1.2 M reads  25.1 k reads/s  ETA 1m10s".
class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  bool enabled() const { return enabled_; }
  void update(const AlignProgress& p);

 private:
  std::string label_;
  bool enabled_;
};

// "1.2 M", "25.1 k", "999".
std::string human_count(double v);
// "1h02m", "3m10s", "42s".
std::string human_duration(double seconds);

}  // namespace omicsd
