#include "host/call/ploidy_map.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>

#include "host/call/ploidy_genotypes.hpp"
#include "host/common/error.hpp"

namespace omicsd {
namespace {

// Pseudo-autosomal regions of X, 0-based half-open, by the length of X in the assembly.
struct XAssembly {
  int64_t x_length;
  const char* name;
  int64_t par1_begin, par1_end, par2_begin, par2_end;
};
constexpr XAssembly kXAssemblies[] = {
    {155270560, "GRCh37", 60000, 2699520, 154931043, 155260560},
    {156040895, "GRCh38", 10000, 2781479, 155701382, 156030895},
};

int find_any(const std::vector<Contig>& contigs, const char* a, const char* b) {
  for (const char* name : {a, b})
    for (size_t i = 0; i < contigs.size(); ++i)
      if (contigs[i].name == name) return int(i);
  return -1;
}

struct BedLine {
  PloidyRegion region;
  uint64_t line = 0;
};

}  // namespace

Sex parse_sex(const std::string& text) {
  if (text.empty()) return Sex::kUnspecified;
  if (text == "male") return Sex::kMale;
  if (text == "female") return Sex::kFemale;
  throw InputError("sex '" + text + "' must be male or female");
}

std::vector<PloidyRegion> read_ploidy_bed(const std::string& path, const Reference& ref) {
  std::vector<BedLine> lines;
  for_each_bed_line(path, [&](const std::string& s, uint64_t lineno) {
    if (s.find_first_not_of(" \t") == std::string::npos) return;  // blanks only
    const std::string where = path + ": line " + std::to_string(lineno) + ": ";
    std::istringstream in(s);
    std::string chrom, begin_text, end_text, ploidy_text;
    if (!(in >> chrom >> begin_text >> end_text >> ploidy_text))
      throw InputError(where + "expected 'chrom start end ploidy'");
    auto integer = [&](const std::string& text, const char* field) {
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != text.size())
        throw InputError(where + field + " '" + text + "' is not an integer");
      return v;
    };
    const long long b = integer(begin_text, "start"), e = integer(end_text, "end");
    const long long p = integer(ploidy_text, "ploidy");
    if (b < 0 || e <= b) throw InputError(where + "expected 0 <= start < end");
    if (p < 0 || p > kMaxPloidy)
      throw InputError(where + "ploidy " + ploidy_text + " must be between 0 and " +
                       std::to_string(kMaxPloidy));
    lines.push_back({{bed_interval_contig(ref, chrom, b, e, where), b, e, int(p)}, lineno});
  });
  if (lines.empty()) throw InputError(path + ": no ploidy intervals");
  std::stable_sort(lines.begin(), lines.end(), [](const BedLine& a, const BedLine& b) {
    return a.region.contig != b.region.contig ? a.region.contig < b.region.contig
                                              : a.region.begin < b.region.begin;
  });
  std::vector<PloidyRegion> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0 && lines[i].region.contig == lines[i - 1].region.contig &&
        lines[i].region.begin < lines[i - 1].region.end) {
      const auto [first, second] = std::minmax(lines[i - 1].line, lines[i].line);
      throw InputError(path + ": line " + std::to_string(second) + ": overlaps line " +
                       std::to_string(first) + " (each position may have one ploidy)");
    }
    out.push_back(lines[i].region);
  }
  return out;
}

std::vector<PloidyRegion> sex_ploidy_regions(const std::vector<Contig>& contigs, Sex sex) {
  std::vector<PloidyRegion> out;
  if (sex == Sex::kUnspecified) return out;
  const int x = find_any(contigs, "X", "chrX"), y = find_any(contigs, "Y", "chrY");
  if (x < 0 && y < 0) spdlog::warn("--sex: the reference has no X/chrX or Y/chrY contig: no effect");
  if (sex == Sex::kFemale) {
    if (y >= 0) out.push_back({y, 0, int64_t(contigs[size_t(y)].length), 0});
    return out;
  }
  if (x >= 0) {
    const int64_t len = contigs[size_t(x)].length;
    const XAssembly* assembly = nullptr;
    for (const XAssembly& a : kXAssemblies)
      if (a.x_length == len) assembly = &a;
    if (assembly) {
      out.push_back({x, 0, assembly->par1_begin, 1});
      out.push_back({x, assembly->par1_end, assembly->par2_begin, 1});
      if (assembly->par2_end < len) out.push_back({x, assembly->par2_end, len, 1});
    } else {
      spdlog::warn(
          "--sex male: {} has length {}, neither GRCh37 nor GRCh38: no pseudo-autosomal regions "
          "known, all of it is called haploid (give the PARs with --ploidy-bed)",
          contigs[size_t(x)].name, len);
      out.push_back({x, 0, len, 1});
    }
  }
  if (y >= 0) out.push_back({y, 0, int64_t(contigs[size_t(y)].length), 1});
  return out;
}

PloidyMap::PloidyMap(const std::vector<Contig>& contigs, int default_ploidy) : default_(default_ploidy) {
  if (default_ploidy < 1 || default_ploidy > kMaxPloidy)
    throw InputError("ploidy " + std::to_string(default_ploidy) + " must be between 1 and " +
                     std::to_string(kMaxPloidy));
  for (const Contig& c : contigs) {
    lengths_.push_back(c.length);
    starts_.push_back({{0, default_ploidy}});
  }
}

void PloidyMap::paint(const PloidyRegion& r) {
  auto& m = starts_.at(size_t(r.contig));
  const int64_t len = lengths_[size_t(r.contig)];
  const int64_t b = std::max<int64_t>(0, r.begin), e = std::min(len, r.end);
  if (b >= e) return;
  const int after = std::prev(m.upper_bound(e))->second;  // ploidy at e before painting
  m.erase(m.lower_bound(b), m.lower_bound(e + 1));
  m[b] = r.ploidy;
  if (e < len) m[e] = after;
  // Merge neighbours of equal ploidy so split() returns maximal pieces.
  for (auto it = std::next(m.begin()); it != m.end();)
    it = std::prev(it)->second == it->second ? m.erase(it) : std::next(it);
}

std::vector<PloidyRegion> PloidyMap::split(const Interval& iv) const {
  const auto& m = starts_.at(size_t(iv.contig));
  std::vector<PloidyRegion> out;
  auto it = std::prev(m.upper_bound(iv.begin));
  int64_t p = iv.begin;
  while (p < iv.end) {
    const auto next = std::next(it);
    const int64_t piece_end = next == m.end() ? iv.end : std::min(iv.end, next->first);
    out.push_back({iv.contig, p, piece_end, it->second});
    p = piece_end;
    it = next;
  }
  return out;
}

PloidyMap build_ploidy_map(const Reference& ref, int default_ploidy, Sex sex, const std::string& ploidy_bed) {
  PloidyMap map(ref.contigs(), default_ploidy);
  for (const PloidyRegion& r : sex_ploidy_regions(ref.contigs(), sex)) map.paint(r);
  if (!ploidy_bed.empty())
    for (const PloidyRegion& r : read_ploidy_bed(ploidy_bed, ref)) map.paint(r);
  return map;
}

}  // namespace omicsd
