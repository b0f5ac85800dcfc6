#pragma once
#include <cstdint>
#include <string>

#include "host/io/reference.hpp"

namespace omicsd {

// Sample QC from a coordinate-sorted BAM (and optionally its VCF), computed in one streaming pass
// with memory independent of the genome size.
struct QcReport {
  uint64_t reads = 0;  // primary records
  uint64_t mapped = 0, paired = 0, properly_paired = 0;
  uint64_t duplicates = 0;  // flagged 0x400, or (if none are flagged) estimated: a mapped primary
                            // read with the same contig, position, strand and mate position as
                            // an earlier one
  bool duplicates_estimated = false;
  double mean_depth = 0, median_depth = 0;          // over reference bases that are not N; M/=/X bases of
  double fraction_ge_10x = 0, fraction_ge_20x = 0;  // primary mapped reads with MAPQ >= 1
  uint64_t insert_pairs = 0;                        // properly paired read-1 records with a TLEN
  double insert_mean = 0, insert_sd = 0, insert_median = 0;
  // From the VCF (PASS records with a non-reference genotype).
  bool have_vcf = false;
  uint64_t snvs = 0, indels = 0, transitions = 0, transversions = 0, het = 0, hom_alt = 0;

  double ti_tv() const { return transversions ? double(transitions) / double(transversions) : 0; }
  double het_hom() const { return hom_alt ? double(het) / double(hom_alt) : 0; }
  std::string to_json() const;  // pretty-printed JSON object
};

// Throws InputError naming the file when a BAM/VCF cannot be read or the BAM is not sorted.
QcReport compute_qc(const std::string& bam_path, const Reference& ref, const std::string& vcf_path = "");

// Writes the report atomically (temp name, fsync, rename).
void write_qc_json(const QcReport& report, const std::string& path);

}  // namespace omicsd
