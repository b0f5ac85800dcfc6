#pragma once
// The import pass of the reference store (reference_store.cpp): what it writes is the stored FASTA.
#include <filesystem>
#include <string>

#include "service/stores/reference_store.hpp"

namespace omicsd {

// Bases per line of the stored FASTA (as samtools faidx writes).
inline constexpr int kStoredFastaLineWidth = 60;

// Streams `src` (plain, gzip or BGZF) into `dst` as BGZF, re-wrapping sequence lines at kStoredFastaLineWidth
// and dropping blank lines and whitespace inside sequences (as Reference::load ignores them), so
// that the .fai always describes it: samtools needs equal line lengths within a record, which
// FASTA in the wild does not promise. Headers are kept as written (trailing blanks removed).
// Never holds more than one header line in memory, whatever the input: this pass is what turns a
// "huge line" or a binary file into a clear failure before Reference::load buffers lines. Sequence
// characters are copied as they are; Reference::load on the source validates them afterwards.
// Throws InputError ("<shown>: line N: ...") for input faults, Error for write failures.
void write_normalized_fasta(const std::filesystem::path& src, const std::string& shown,
                            const std::filesystem::path& dst, const ReferenceStoreOptions& options);

}  // namespace omicsd
