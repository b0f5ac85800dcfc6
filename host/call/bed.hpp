#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "host/io/reference.hpp"

namespace omicsd {

struct Interval {
  int32_t contig = 0;
  int64_t begin = 0, end = 0;  // 0-based, half-open
};

// Reads a BED file (plain or gzip, via htslib): chrom, start, end; header/track/browser/comment lines
// skipped. Intervals are sorted by reference order and merged. Throws InputError naming the file and
// line for malformed lines, unknown contigs, or intervals outside a contig.
std::vector<Interval> read_bed(const std::string& path, const Reference& ref);

// Whether [pos, end) overlaps any of the sorted, merged intervals.
bool overlaps(const std::vector<Interval>& sorted, int32_t contig, int64_t pos, int64_t end);

}  // namespace omicsd
