#include "host/call/strand_bias.hpp"

#include <algorithm>
#include <cmath>

namespace omicsd {
namespace {

double log_choose(int n, int k) {
  return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0);
}

}  // namespace

double fisher_exact_two_sided(int a, int b, int c, int d) {
  const int row1 = a + b, row2 = c + d, col1 = a + c, n = a + b + c + d;
  if (n == 0) return 1.0;
  // log P(top-left cell = x) for the hypergeometric with these margins.
  const double log_total = log_choose(n, col1);
  auto log_p = [&](int x) { return log_choose(row1, x) + log_choose(row2, col1 - x) - log_total; };
  const double observed = log_p(a);
  const double tolerance = std::log1p(1e-7);
  double p = 0;
  for (int x = std::max(0, col1 - row2); x <= std::min(row1, col1); ++x) {
    const double lp = log_p(x);
    if (lp <= observed + tolerance) p += std::exp(lp);
  }
  return std::min(1.0, p);
}

double fisher_strand(const StrandTable& t) {
  constexpr double kTargetTableSize = 200;
  constexpr double kMinPValue = 1e-320;
  StrandTable s = t;
  if (t.total() > 2 * kTargetTableSize) {
    const double norm = t.total() / kTargetTableSize;
    s.ref_fwd = int(t.ref_fwd / norm);
    s.ref_rev = int(t.ref_rev / norm);
    s.alt_fwd = int(t.alt_fwd / norm);
    s.alt_rev = int(t.alt_rev / norm);
  }
  const double p = fisher_exact_two_sided(s.ref_fwd, s.ref_rev, s.alt_fwd, s.alt_rev);
  const double fs = -10.0 * std::log10(std::max(p, kMinPValue));
  return fs == 0.0 ? 0.0 : fs;  // no "-0"
}

double strand_odds_ratio(const StrandTable& t) {
  const double rf = t.ref_fwd + 1.0, rr = t.ref_rev + 1.0, af = t.alt_fwd + 1.0, ar = t.alt_rev + 1.0;
  const double r = (rf / rr) * (ar / af);
  const double ref_ratio = std::min(rf, rr) / std::max(rf, rr);
  const double alt_ratio = std::min(af, ar) / std::max(af, ar);
  return std::log(r + 1.0 / r) + std::log(ref_ratio) - std::log(alt_ratio);
}

}  // namespace omicsd
