#pragma once
// The sequence store's file work (htslib): source files -> one unaligned CRAM 3.1, and the stored
// CRAM -> CRAM/BAM/FASTQ for export. Used by ReadSetStore; no database here.
#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace omicsd {

struct ReadImportStats {
  std::string source_format;  // FASTQ | BAM | CRAM | SAM
  bool paired = false;
  bool name_suffixes = false;  // FASTQ read names carried /1 and /2
  int64_t read_count = 0;
  int64_t base_count = 0;
  std::string reads_sha256;  // format-neutral checksum (see ReadSet::reads_sha256)
};

// Longest read accepted: a longer record (or a "huge line") fails the import instead of being
// stored. 10 Mbp covers ultra-long nanopore reads.
inline constexpr int64_t kMaxReadLength = 10'000'000;

// Reads every record of `sources` with htslib and writes them to `out_cram` (CRAM 3.1, no @SQ:
// unaligned, readable without a reference):
//  - one FASTQ: single-end, or interleaved pairs when the names of consecutive records carry /1, /2
//  - two FASTQ: read 1 and read 2, record by record (names must agree)
//  - one BAM/SAM/CRAM: primary records, turned back into sequencer orientation and unaligned;
//    auxiliary tags other than alignment tags (NM, MD, AS, ...) are kept
// Every record gets the read group `rg` ({"ID","SM",...}; ID and SM required) in the header and an
// RG tag. Throws InputError naming the file and the record (1-based) that is malformed: corrupt
// compression, truncation, unequal SEQ/QUAL, mismatched mates, a read over kMaxReadLength, an empty
// input. Throws ImportCanceled when *cancel becomes true.
ReadImportStats import_reads_to_cram(const std::vector<std::string>& sources, const std::string& out_cram,
                                     const nlohmann::json& rg, const std::atomic<bool>* cancel);

// Writes the reads of a stored CRAM as `format`: "bam" (unaligned BAM) or "fastq" (plain text; for
// pairs mate 0 = interleaved with /1, /2 names, 1 / 2 = that mate only, with /1, /2 back when
// name_suffixes).
void export_reads(const std::string& cram, const std::string& format, int mate, bool name_suffixes,
                  const std::string& out_path);

}  // namespace omicsd
