// FASTA (references registered or uploaded to the reference store, and run inputs): Reference::load,
// the validating reader behind the reference import (names, duplicates, IUPAC codes, line lengths),
// through a temp file as the importer reads it (htslib BGZF: plain, gzip or bgzip). Malformed input
// must be an InputError; a loaded reference is consistent.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "host/common/error.hpp"
#include "host/io/reference.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/omicsd-fuzz-" + std::to_string(::getpid()) + "-in.fa";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  try {
    const omicsd::Reference ref = omicsd::Reference::load(path);
    uint64_t total = 0;
    for (const auto& c : ref.contigs()) {
      if (c.name.empty()) __builtin_trap();
      total += c.length;
    }
    (void)total;
    (void)ref.digest();
  } catch (const omicsd::InputError&) {
  }
  return 0;
}
