// BED files (regions / targets / ploidy of a call run): read_bed and read_ploidy_bed against a small
// reference, through a temp file as the engine reads them (htslib BGZF: plain or gzip). Malformed input must
// be an InputError.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "host/call/bed.hpp"
#include "host/call/ploidy_genotypes.hpp"
#include "host/call/ploidy_map.hpp"
#include "host/common/error.hpp"
#include "host/io/reference.hpp"

namespace {
std::string temp_path(const char* what) {
  return "/tmp/omicsd-fuzz-" + std::to_string(::getpid()) + "-" + what;
}
const omicsd::Reference& reference() {
  static const omicsd::Reference ref = [] {
    const std::string fa = temp_path("ref.fa");
    std::ofstream(fa)
        << ">chrM\nGATCACAGGTCTATCACCCTATTAACCACTCACGGGAGCTCTCCATGCATTTGGTATTTTCGTCTGGGGGGTATGCACGCGATAGCATTG"
           "CGAGACGCTG\n"
           ">chr1\nACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGT\n"
           ">chr2\nTTTTGGGGCCCCAAAATTTTGGGGCCCCAAAATTTTGGGGCCCCAAAATTTTGGGGCCCCAAAATTTTGGGGCCCCAAAA\n";
    omicsd::Reference r = omicsd::Reference::load(fa);
    ::unlink(fa.c_str());
    return r;
  }();
  return ref;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const omicsd::Reference& ref = reference();
  static const std::string path = temp_path("in.bed");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  try {
    const auto intervals = omicsd::read_bed(path, ref);
    for (size_t i = 0; i < intervals.size(); ++i) {
      const auto& v = intervals[i];
      if (v.contig < 0 || size_t(v.contig) >= ref.contigs().size() || v.begin < 0 || v.begin >= v.end ||
          uint64_t(v.end) > ref.contigs()[size_t(v.contig)].length)
        __builtin_trap();  // read_bed promises intervals inside their contig
      (void)omicsd::overlaps(intervals, v.contig, v.begin, v.end);
    }
  } catch (const omicsd::InputError&) {
  }
  // The same bytes as a ploidy BED (chrom start end ploidy): regions inside their contig, sorted, not
  // overlapping, ploidy in range; painted over a map, every split covers its interval exactly.
  try {
    const auto regions = omicsd::read_ploidy_bed(path, ref);
    omicsd::PloidyMap map(ref.contigs(), 2);
    for (size_t i = 0; i < regions.size(); ++i) {
      const auto& r = regions[i];
      if (r.contig < 0 || size_t(r.contig) >= ref.contigs().size() || r.begin < 0 || r.begin >= r.end ||
          uint64_t(r.end) > ref.contigs()[size_t(r.contig)].length || r.ploidy < 0 ||
          r.ploidy > omicsd::kMaxPloidy)
        __builtin_trap();
      if (i > 0 && regions[i - 1].contig == r.contig && regions[i - 1].end > r.begin) __builtin_trap();
      map.paint(r);
    }
    for (size_t c = 0; c < ref.contigs().size(); ++c) {
      int64_t at = 0;
      for (const auto& piece : map.split({int32_t(c), 0, int64_t(ref.contigs()[c].length)})) {
        if (piece.begin != at || piece.end <= piece.begin) __builtin_trap();
        at = piece.end;
      }
      if (at != int64_t(ref.contigs()[c].length)) __builtin_trap();
    }
  } catch (const omicsd::InputError&) {
  }
  return 0;
}
