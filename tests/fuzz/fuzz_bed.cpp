// BED files (regions / targets of a call run): read_bed against a small reference, through a temp
// file as the engine reads them (htslib BGZF: plain or gzip). Malformed input must be an InputError.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "host/call/bed.hpp"
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
  return 0;
}
