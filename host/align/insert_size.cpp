#include "host/align/insert_size.hpp"

#include <algorithm>
#include <cmath>

namespace omicsd {

bool InsertSizeModel::estimate(std::vector<int64_t> inserts, size_t min_samples) {
  if (inserts.size() < min_samples) return false;
  std::sort(inserts.begin(), inserts.end());
  const double q1 = double(inserts[inserts.size() / 4]);
  const double q3 = double(inserts[inserts.size() * 3 / 4]);
  const double iqr = q3 - q1;
  const double lo = q1 - 2 * iqr, hi = q3 + 2 * iqr;
  double sum = 0, sum2 = 0;
  uint64_t n = 0;
  for (int64_t v : inserts) {
    if (v < lo || v > hi) continue;
    sum += double(v);
    sum2 += double(v) * double(v);
    ++n;
  }
  if (n < min_samples) return false;
  mean = sum / double(n);
  sd = std::sqrt(std::max(0.0, sum2 / double(n) - mean * mean));
  sd = std::max(sd, 1.0);
  low = std::max<int64_t>(1, int64_t(std::floor(mean - 4 * sd)));
  high = int64_t(std::ceil(mean + 4 * sd));
  samples = n;
  estimated = true;
  return true;
}

}  // namespace omicsd
