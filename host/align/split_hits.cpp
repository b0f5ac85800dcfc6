#include "host/align/split_hits.hpp"

#include <htslib/sam.h>

#include <algorithm>

namespace omicsd {

QueryInterval query_interval(const Placement& p, uint32_t read_length) {
  // From the CIGAR's clips, which are what the records show.
  int32_t lead = 0, trail = 0;
  if (!p.cigar.empty() && bam_cigar_op(p.cigar.front()) == BAM_CSOFT_CLIP)
    lead = int32_t(bam_cigar_oplen(p.cigar.front()));
  if (p.cigar.size() > 1 && bam_cigar_op(p.cigar.back()) == BAM_CSOFT_CLIP)
    trail = int32_t(bam_cigar_oplen(p.cigar.back()));
  const int32_t len = int32_t(read_length);
  if (!p.reverse) return {lead, len - trail};
  return {trail, len - lead};
}

bool same_read_part(const Placement& a, const Placement& b, uint32_t read_length) {
  const QueryInterval x = query_interval(a, read_length), y = query_interval(b, read_length);
  const int32_t overlap = std::min(x.end, y.end) - std::max(x.begin, y.begin);
  const int32_t shorter = std::min(x.end - x.begin, y.end - y.begin);
  return overlap > 0 && overlap * 2 >= shorter;
}

int find_supplementary(const std::vector<Placement>& placements, int primary, uint32_t read_length) {
  int best = -1;
  for (int j = 0; j < int(placements.size()); ++j) {
    if (j == primary || same_read_part(placements[size_t(primary)], placements[size_t(j)], read_length))
      continue;
    if (best < 0 || placements[size_t(j)].score > placements[size_t(best)].score) best = j;
  }
  return best;
}

std::vector<int> alternative_hits(const std::vector<Placement>& placements, int primary, int supplementary,
                                  uint32_t read_length, size_t max_hits) {
  std::vector<int> out;
  const Placement& p = placements[size_t(primary)];
  for (int j = 0; j < int(placements.size()); ++j) {
    if (j == primary || j == supplementary) continue;
    const Placement& x = placements[size_t(j)];
    if (!same_read_part(p, x, read_length) || int64_t(x.score) * 5 < int64_t(p.score) * 4) continue;
    out.push_back(j);
  }
  if (out.size() > max_hits) out.clear();
  return out;
}

std::vector<uint32_t> hard_clipped(const std::vector<uint32_t>& cigar) {
  std::vector<uint32_t> c = cigar;
  for (size_t i : {size_t(0), c.size() - 1})
    if (!c.empty() && bam_cigar_op(c[i]) == BAM_CSOFT_CLIP)
      c[i] = bam_cigar_gen(bam_cigar_oplen(c[i]), BAM_CHARD_CLIP);
  return c;
}

std::string cigar_text(const std::vector<uint32_t>& cigar) {
  std::string s;
  for (uint32_t op : cigar) {
    s += std::to_string(bam_cigar_oplen(op));
    s += bam_cigar_opchr(op);
  }
  return s;
}

std::string sa_entry(const Reference& ref, const Placement& p, int mapq, int nm) {
  return ref.contigs()[size_t(p.contig)].name + "," + std::to_string(p.pos + 1) + "," +
         (p.reverse ? "-" : "+") + "," + cigar_text(p.cigar) + "," + std::to_string(mapq) + "," +
         std::to_string(nm) + ";";
}

std::string xa_entry(const Reference& ref, const Placement& p, int nm) {
  return ref.contigs()[size_t(p.contig)].name + "," + (p.reverse ? "-" : "+") + std::to_string(p.pos + 1) +
         "," + cigar_text(p.cigar) + "," + std::to_string(nm) + ";";
}

}  // namespace omicsd
