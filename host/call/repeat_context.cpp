#include "host/call/repeat_context.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "host/common/dna.hpp"

namespace omicsd {

RepeatContext find_repeat_context(const uint8_t* codes, int64_t len, int64_t pos, int max_period) {
  RepeatContext best;
  if (pos < 0 || pos >= len || codes[pos] > 3) return best;
  // Link i holds when base i equals base i + p (both A/C/G/T). A maximal chain of holding links
  // [lb, le) makes the p-periodic tract [lb, le + p); it contains pos when lb <= pos < le + p, so
  // only chains through a link in [pos - p, pos] can.
  for (int p = 1; p <= max_period; ++p) {
    auto link = [&](int64_t i) { return i >= 0 && i + p < len && codes[i] <= 3 && codes[i] == codes[i + p]; };
    int64_t done_to = -1;  // chains already measured end before this link index
    for (int64_t j = std::max<int64_t>(0, pos - p); j <= pos; ++j) {
      if (j < done_to || !link(j)) continue;
      int64_t lb = j, le = j + 1;
      while (link(lb - 1)) --lb;
      while (link(le)) ++le;
      done_to = le;
      const RepeatContext rc{p, lb, le + p};
      if (rc.length() >= 2 * p && rc.length() > best.length()) best = rc;
    }
  }
  return best;
}

RepeatContext find_indel_repeat_context(const uint8_t* codes, int64_t len, int64_t pos, int max_period) {
  const RepeatContext after = find_repeat_context(codes, len, pos + 1, max_period);
  const RepeatContext at = find_repeat_context(codes, len, pos, max_period);
  if (at.length() > after.length()) return at;
  return after;
}

double tandem_repeat_density(const uint8_t* codes, int64_t len, int64_t begin, int64_t end, int min_tract,
                             int max_period) {
  begin = std::max<int64_t>(0, begin);
  end = std::min(len, end);
  if (end <= begin) return 0;
  std::vector<uint8_t> covered(size_t(end - begin), 0);
  for (int p = 1; p <= max_period; ++p) {
    auto link = [&](int64_t i) { return i >= 0 && i + p < len && codes[i] <= 3 && codes[i] == codes[i + p]; };
    // Chains of links [lb, le) make tracts [lb, le + p); those meeting [begin, end) have a link in
    // [begin - p, end), so walk that range chain by chain.
    for (int64_t j = std::max<int64_t>(0, begin - p); j < end;) {
      if (!link(j)) {
        ++j;
        continue;
      }
      int64_t lb = j, le = j + 1;
      while (link(lb - 1)) --lb;
      while (link(le)) ++le;
      const int64_t tb = lb, te = le + p;
      if (te - tb >= std::max<int64_t>(min_tract, 2 * p))
        for (int64_t i = std::max(tb, begin); i < std::min(te, end); ++i) covered[size_t(i - begin)] = 1;
      j = le + 1;
    }
  }
  size_t n = 0;
  for (uint8_t c : covered) n += c;
  return double(n) / double(end - begin);
}

std::string repeat_unit(const uint8_t* codes, const RepeatContext& rc) {
  std::string unit;
  for (int i = 0; i < rc.period; ++i) unit.push_back(kCodeToBase[codes[rc.begin + i]]);
  return unit;
}

double repeat_indel_error(const RepeatContext& rc) {
  if (rc.period == 0) return 0;
  const int64_t from = rc.period == 1 ? 4 : 3;
  if (rc.units() < from) return 0;
  const double per_copy = rc.period == 1 ? 1.0 / 6 : 1.0 / 4;  // log10 rise per further copy
  return std::min(kMaxRepeatIndelError, std::pow(10.0, -4.0 + per_copy * double(rc.units() - from)));
}

int repeat_gap_open(const RepeatContext& rc) {
  const double e = repeat_indel_error(rc);
  if (e <= 0) return kUniqueGapOpen;
  const double phred = -10.0 * std::log10(e / double(rc.length()));
  return std::clamp(int(std::lround(phred)), kMinRepeatGapOpen, kUniqueGapOpen);
}

}  // namespace omicsd
