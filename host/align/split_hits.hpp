#pragma once
// Which of a read's other placements are a second part of it (a supplementary alignment of a chimeric
// read) and which are alternatives to its primary (XA), as bwa mem decides: by how much they share
// the read. Host-side bookkeeping over the backends' results; the DP kernels are not involved.
#include <cstdint>
#include <string>
#include <vector>

#include "host/align/mapper.hpp"
#include "host/io/reference.hpp"

namespace omicsd {

// The part of the read a placement aligns, in the read's sequencing orientation: [begin, end).
struct QueryInterval {
  int32_t begin = 0, end = 0;
};
QueryInterval query_interval(const Placement& p, uint32_t read_length);

// True when two placements align mostly the same part of the read: their query overlap is at least
// half of the shorter one (bwa mem's mask_level 0.5).
bool same_read_part(const Placement& a, const Placement& b, uint32_t read_length);

// The supplementary part of a chimeric read: the best-scoring placement other than `primary` that
// aligns a mostly different part of the read; -1 when there is none.
int find_supplementary(const std::vector<Placement>& placements, int primary, uint32_t read_length);

// Alternative hits for XA (bwa -h 5): placements other than `primary` and `supplementary` that align
// the same part of the read scoring at least 80% of the primary's score; empty when there are more
// than `max_hits` of them (too repetitive to list, as bwa does).
std::vector<int> alternative_hits(const std::vector<Placement>& placements, int primary, int supplementary,
                                  uint32_t read_length, size_t max_hits = 5);

// The CIGAR with its leading and trailing soft clips made hard (bwa's supplementary records).
std::vector<uint32_t> hard_clipped(const std::vector<uint32_t>& cigar);

std::string cigar_text(const std::vector<uint32_t>& cigar);

// One SA:Z entry, "rname,pos,strand,CIGAR,mapQ,NM;" (1-based pos, soft-clipped CIGAR).
std::string sa_entry(const Reference& ref, const Placement& p, int mapq, int nm);
// One XA:Z entry, "rname,[+-]pos,CIGAR,NM;".
std::string xa_entry(const Reference& ref, const Placement& p, int nm);

}  // namespace omicsd
