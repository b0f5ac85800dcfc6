#include "host/call/bed.hpp"

#include <htslib/bgzf.h>
#include <htslib/kstring.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "host/common/error.hpp"

namespace omicsd {

std::vector<Interval> read_bed(const std::string& path, const Reference& ref) {
  BGZF* fp = bgzf_open(path.c_str(), "r");
  if (!fp) throw InputError(path + ": cannot open: " + std::strerror(errno));
  std::vector<Interval> out;
  kstring_t line = {0, 0, nullptr};
  uint64_t lineno = 0;
  int r;
  try {
    while ((r = bgzf_getline(fp, '\n', &line)) >= 0) {
      ++lineno;
      std::string s(line.s, line.l);
      if (!s.empty() && s.back() == '\r') s.pop_back();
      if (s.empty() || s[0] == '#' || s.rfind("track", 0) == 0 || s.rfind("browser", 0) == 0) continue;
      std::istringstream in(s);
      std::string chrom;
      long long b = -1, e = -1;
      if (!(in >> chrom >> b >> e) || b < 0 || e <= b)
        throw InputError(path + ": line " + std::to_string(lineno) +
                         ": expected 'chrom start end' with 0 <= start < end");
      const int ci = ref.find_contig(chrom);
      if (ci < 0)
        throw InputError(path + ": line " + std::to_string(lineno) + ": contig " + chrom +
                         " is not in reference " + ref.path());
      if (e > int64_t(ref.contigs()[size_t(ci)].length))
        throw InputError(path + ": line " + std::to_string(lineno) + ": " + chrom + ":" + std::to_string(b) +
                         "-" + std::to_string(e) + " is outside the contig (length " +
                         std::to_string(ref.contigs()[size_t(ci)].length) + ")");
      out.push_back({ci, b, e});
    }
    if (r < -1)
      throw InputError(path + ": line " + std::to_string(lineno + 1) + ": read error (truncated or corrupt)");
  } catch (...) {
    ks_free(&line);
    bgzf_close(fp);
    throw;
  }
  ks_free(&line);
  bgzf_close(fp);
  std::sort(out.begin(), out.end(), [](const Interval& a, const Interval& b) {
    return a.contig != b.contig ? a.contig < b.contig : a.begin < b.begin;
  });
  std::vector<Interval> merged;
  for (const Interval& iv : out) {
    if (!merged.empty() && merged.back().contig == iv.contig && iv.begin <= merged.back().end)
      merged.back().end = std::max(merged.back().end, iv.end);
    else
      merged.push_back(iv);
  }
  if (merged.empty()) throw InputError(path + ": no intervals");
  return merged;
}

bool overlaps(const std::vector<Interval>& sorted, int32_t contig, int64_t pos, int64_t end) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), Interval{contig, 0, pos + 1},
                             [](const Interval& a, const Interval& b) {
                               return a.contig != b.contig ? a.contig < b.contig : a.end < b.end;
                             });
  return it != sorted.end() && it->contig == contig && it->begin < end;
}

}  // namespace omicsd
