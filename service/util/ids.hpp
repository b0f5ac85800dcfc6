#pragma once
// Random identifiers: run, reference and read-set ids, lease tokens, temporary file names. From the
// kernel's CSPRNG (getrandom), so no id can be predicted from earlier ones.
#include <cstddef>
#include <string>

namespace omicsd {

// `digits` random lowercase hex digits ("run-" + 16 for run ids; lease tokens are 32). Throws
// omicsd::Error if the kernel cannot supply random bytes.
std::string random_hex(std::size_t digits);

}  // namespace omicsd
