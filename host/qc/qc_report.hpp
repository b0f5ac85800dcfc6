#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/io/reference.hpp"

namespace omicsd {

// Counts of `samtools flagstat` over every record (secondary and supplementary included), split
// like it into QC-passed [0] and QC-failed [1] (flag 0x200) records.
struct FlagStat {
  uint64_t total[2] = {}, primary[2] = {}, secondary[2] = {}, supplementary[2] = {}, duplicates[2] = {},
           primary_duplicates[2] = {}, mapped[2] = {}, primary_mapped[2] = {}, paired[2] = {}, read1[2] = {},
           read2[2] = {}, properly_paired[2] = {}, both_mapped[2] = {}, singletons[2] = {},
           mate_other_contig[2] = {}, mate_other_contig_mapq5[2] = {};
};

// The summary sections of `bcftools stats` (SN, TSTV, ST, IDD) over every record of a VCF, classified
// by htslib's variant types as bcftools does.
struct VcfStats {
  uint64_t samples = 0, records = 0, no_alts = 0, snps = 0, mnps = 0, indels = 0, others = 0,
           multiallelic = 0, multiallelic_snps = 0;
  uint64_t ts = 0, tv = 0, ts_alt1 = 0, tv_alt1 = 0;
  uint64_t substitutions[16] = {};          // [ref << 2 | alt], A C G T = 0 1 2 3
  std::map<int64_t, uint64_t> indel_sites;  // length (deletions negative) -> alleles of that length
};

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

  // Distributions, for the plots of the HTML report.
  std::vector<uint64_t> depth_histogram;  // [d]: bases at depth d (the last bin: at least that deep)
  struct ContigDepth {
    std::string name;
    uint64_t bases = 0;      // not N
    uint64_t depth_sum = 0;  // summed depth over those bases
  };
  std::vector<ContigDepth> contig_depth;      // every reference contig, in reference order
  std::map<int64_t, uint64_t> insert_sizes;   // |TLEN| -> properly paired read-1 records
  std::vector<double> quality_by_cycle[2];    // mean base quality by sequencing cycle: read 1 (and
                                              // unpaired reads), read 2; primary records
  std::map<int64_t, uint64_t> indel_lengths;  // PASS non-reference indels: ALT minus REF length
  std::vector<uint64_t> gq_histogram;         // PASS non-reference calls by FORMAT/GQ (0..99)

  FlagStat flagstat;
  VcfStats vcf_stats;  // every VCF record, filtered or not (as `bcftools stats` counts them)

  double ti_tv() const { return transversions ? double(transitions) / double(transversions) : 0; }
  double het_hom() const { return hom_alt ? double(het) / double(hom_alt) : 0; }
  std::string to_json() const;  // pretty-printed JSON object
};

// Throws InputError naming the file when a BAM/VCF cannot be read or the BAM is not sorted.
QcReport compute_qc(const std::string& bam_path, const Reference& ref, const std::string& vcf_path = "");

// Writes the report atomically (temp name, fsync, rename).
void write_qc_json(const QcReport& report, const std::string& path);

}  // namespace omicsd
