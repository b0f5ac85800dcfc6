#pragma once
#include <htslib/hts.h>

#include <string>

namespace omicsd {

// "SAM", "BAM", "CRAM", or htslib's extension for other formats: for error messages.
inline std::string hts_format_name(const htsFormat& f) {
  switch (f.format) {
    case sam:
      return "SAM";
    case bam:
      return "BAM";
    case cram:
      return "CRAM";
    default:
      return hts_format_file_extension(&f);
  }
}

}  // namespace omicsd
