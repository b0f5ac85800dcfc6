// FASTQ (read-set sources, align inputs): the strict 4-line parser over htslib BGZF (plain, gzip
// and bgzip alike), through a temp file as the importer reads it. Malformed input must be an
// InputError; every parsed record has as many qualities as bases.
#include <htslib/bgzf.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "host/common/error.hpp"
#include "host/io/fastq_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/omicsd-fuzz-" + std::to_string(::getpid()) + "-in.fq";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  BGZF* fp = bgzf_open(path.c_str(), "r");
  if (!fp) return 0;
  try {
    omicsd::FastqReader reader(path, fp);
    std::string names, bases, quals;
    while (reader.next(names, bases, quals)) {
      if (bases.size() != quals.size()) __builtin_trap();
      if (reader.records() > 100000) break;
    }
  } catch (const omicsd::InputError&) {
  }
  return 0;
}
