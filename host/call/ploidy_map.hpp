#pragma once
// Which ploidy to call where: a default for the genome, sex-chromosome rules (--sex), and explicit
// per-region values from a BED (--ploidy-bed), later layers overriding earlier ones.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/call/bed.hpp"
#include "host/io/reference.hpp"

namespace omicsd {

// One region of constant ploidy (0-based, half-open). Ploidy 0: not called.
struct PloidyRegion {
  int32_t contig = 0;
  int64_t begin = 0, end = 0;
  int ploidy = 2;
};

enum class Sex { kUnspecified, kMale, kFemale };

// "male" / "female" (case-sensitive); "" is kUnspecified. Throws InputError otherwise.
Sex parse_sex(const std::string& text);

// Reads a ploidy BED: chrom, start, end, ploidy (0..kMaxPloidy) per line, tab or space separated;
// header/track/browser/comment lines skipped, extra columns ignored. Throws InputError naming the
// file and line for a malformed line, an unknown contig, an interval outside its contig, a ploidy
// that is not an integer in range, or two lines whose intervals overlap.
std::vector<PloidyRegion> read_ploidy_bed(const std::string& path, const Reference& ref);

// The regions --sex sets. The X and Y contigs are those named X / chrX and Y / chrY.
//  - male: X outside its pseudo-autosomal regions (PARs) and the whole of Y become haploid; the PARs
//    keep the default ploidy. The PARs are chosen by X's length: 155,270,560 (GRCh37/hg19) has PAR1
//    60,001-2,699,520 and PAR2 154,931,044-155,260,560; 156,040,895 (GRCh38) has PAR1
//    10,001-2,781,479 and PAR2 155,701,383-156,030,895 (1-based, inclusive). An X of any other
//    length has no known PARs: all of it becomes haploid (give the PARs with --ploidy-bed).
//  - female: Y gets ploidy 0 (not called); X keeps the default.
//  - unspecified: nothing.
// (Takes the contigs, not a Reference, so a GRCh38-sized X can be described without its bases.)
std::vector<PloidyRegion> sex_ploidy_regions(const std::vector<Contig>& contigs, Sex sex);

// Per-position ploidy of every contig: a default, then layers painted over it in order.
class PloidyMap {
 public:
  PloidyMap(const std::vector<Contig>& contigs, int default_ploidy);
  // Sets [begin, end) of the region's contig to its ploidy (overriding what was there).
  void paint(const PloidyRegion& region);
  // Splits an interval into pieces of constant ploidy, in order (ploidy 0 pieces included).
  std::vector<PloidyRegion> split(const Interval& interval) const;
  int default_ploidy() const { return default_; }

 private:
  int default_;
  std::vector<int64_t> lengths_;
  // Per contig: start position -> ploidy from there to the next key (or the contig end). Key 0 is
  // always present.
  std::vector<std::map<int64_t, int>> starts_;
};

// What the call options ask for: the default ploidy, then --sex, then the --ploidy-bed entries.
PloidyMap build_ploidy_map(const Reference& ref, int default_ploidy, Sex sex, const std::string& ploidy_bed);

}  // namespace omicsd
