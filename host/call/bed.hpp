#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "host/io/reference.hpp"

namespace omicsd {

struct Interval {
  int32_t contig = 0;
  int64_t begin = 0, end = 0;  // 0-based, half-open
};

// The line reader every BED-shaped input shares (regions, targets, --ploidy-bed): opens `path` (plain
// or gzip, via htslib) and calls on_line(text, line_number) for each data line, its '\r' removed;
// empty, '#', "track" and "browser" lines are skipped. Line numbers are 1-based. Throws InputError
// naming the file when it cannot be opened or read (truncated or corrupt).
void for_each_bed_line(const std::string& path,
                       const std::function<void(const std::string& line, uint64_t line_number)>& on_line);

// The contig of a BED interval [begin, end) on `chrom`, checked against the reference: InputError
// prefixed with `where` ("<path>: line N: ") for a contig the reference lacks or an interval beyond
// the contig's end.
int bed_interval_contig(const Reference& ref, const std::string& chrom, int64_t begin, int64_t end,
                        const std::string& where);

// Reads a BED file (plain or gzip, via htslib): chrom, start, end; header/track/browser/comment lines
// skipped. Intervals are sorted by reference order and merged. Throws InputError naming the file and
// line for malformed lines, unknown contigs, or intervals outside a contig.
std::vector<Interval> read_bed(const std::string& path, const Reference& ref);

// Whether [pos, end) overlaps any of the sorted, merged intervals.
bool overlaps(const std::vector<Interval>& sorted, int32_t contig, int64_t pos, int64_t end);

}  // namespace omicsd
