#include "host/call/bed.hpp"

#include <htslib/bgzf.h>
#include <htslib/kstring.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "host/common/error.hpp"
#include "host/io/hts_handles.hpp"

namespace omicsd {

void for_each_bed_line(const std::string& path,
                       const std::function<void(const std::string& line, uint64_t line_number)>& on_line) {
  const BgzfPtr fp(bgzf_open(path.c_str(), "r"));
  if (!fp) throw InputError(path + ": cannot open: " + std::strerror(errno));
  // kstring_t is htslib's growable buffer; freed on every way out, including a throw from on_line.
  struct Line {
    kstring_t ks = {0, 0, nullptr};
    ~Line() { ks_free(&ks); }
  } line;
  uint64_t lineno = 0;
  int r;
  while ((r = bgzf_getline(fp.get(), '\n', &line.ks)) >= 0) {
    ++lineno;
    std::string s(line.ks.s, line.ks.l);
    if (!s.empty() && s.back() == '\r') s.pop_back();
    if (s.empty() || s[0] == '#' || s.rfind("track", 0) == 0 || s.rfind("browser", 0) == 0) continue;
    on_line(s, lineno);
  }
  if (r < -1)
    throw InputError(path + ": line " + std::to_string(lineno + 1) + ": read error (truncated or corrupt)");
}

int bed_interval_contig(const Reference& ref, const std::string& chrom, int64_t begin, int64_t end,
                        const std::string& where) {
  const int ci = ref.find_contig(chrom);
  if (ci < 0) throw InputError(where + "contig " + chrom + " is not in reference " + ref.path());
  const int64_t length = int64_t(ref.contigs()[size_t(ci)].length);
  if (end > length)
    throw InputError(where + chrom + ":" + std::to_string(begin) + "-" + std::to_string(end) +
                     " is outside the contig (length " + std::to_string(length) + ")");
  return ci;
}

std::vector<Interval> read_bed(const std::string& path, const Reference& ref) {
  std::vector<Interval> out;
  for_each_bed_line(path, [&](const std::string& s, uint64_t lineno) {
    const std::string where = path + ": line " + std::to_string(lineno) + ": ";
    std::istringstream in(s);
    std::string chrom;
    long long b = -1, e = -1;
    if (!(in >> chrom >> b >> e) || b < 0 || e <= b)
      throw InputError(where + "expected 'chrom start end' with 0 <= start < end");
    out.push_back({bed_interval_contig(ref, chrom, b, e, where), b, e});
  });
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
