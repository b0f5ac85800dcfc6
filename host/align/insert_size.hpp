#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace omicsd {

// Forward-reverse insert size distribution, estimated per batch from confidently placed pairs.
struct InsertSizeModel {
  bool estimated = false;
  double mean = 0, sd = 0;
  int64_t low = 0, high = 1000;  // proper pairs have low <= insert <= high
  uint64_t samples = 0;

  // Estimates from observed inserts: outliers beyond 2 IQR of the quartiles are dropped, then
  // [mean - 4 sd, mean + 4 sd]. Needs at least `min_samples`; otherwise returns false, unchanged.
  bool estimate(std::vector<int64_t> inserts, size_t min_samples = 25);
};

}  // namespace omicsd
