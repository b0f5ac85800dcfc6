#pragma once
#include <array>
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

// The counts behind `samtools stats` run without options (samtools 1.16 stats.c: no filters, no
// reference, insert sizes capped at 8000, coverage bins 1..1000), collected from every record as
// collect_stats() does; the derived numbers (insert size average over the main 99% bulk, rates) are
// computed when the text is written (host/qc/qc_text_formats.cpp).
struct SamtoolsStats {
  static constexpr int kMaxInsert = 8000;  // stats -i default: larger |TLEN| count as 8000
  static constexpr int kGcBins = 200;      // stats.c ngc
  static constexpr int kMaxIndel = 300;    // stats.c nindels (the initial read length buffer)
  static constexpr int kMaxCoverage = 1000;
  static constexpr int kGcDepthBin = 20000;             // stats.c gcd_bin_size
  uint32_t chk_names = 0, chk_seqs = 0, chk_quals = 0;  // CRC32 sums (CHK)
  uint64_t reads_1st = 0, reads_2nd = 0, reads_other = 0, duplicated = 0, unmapped = 0, single_mapped = 0,
           paired_and_mapped = 0, properly_paired = 0, paired = 0, other_chromosome = 0, mq0 = 0,
           qc_failed = 0, secondary = 0, supplementary = 0;
  uint64_t total_len = 0, total_len_1st = 0, total_len_2nd = 0, total_len_dup = 0, bases_mapped = 0,
           bases_mapped_cigar = 0, mismatches = 0;
  double sum_qual = 0;
  int max_len = 0, max_len_1st = 0, max_len_2nd = 0, max_qual = 0;
  bool is_sorted = true;
  int prev_tid = -1;  // the last mapped record's contig and position (the "is sorted" test)
  int64_t prev_pos = -1;
  // Each mate counts once here; samtools halves the counts (rounding down) when it writes them.
  std::vector<std::array<uint64_t, 3>> insert_sizes =
      std::vector<std::array<uint64_t, 3>>(kMaxInsert + 1);  // [|TLEN|]: inward, outward, other orientation
  std::vector<uint64_t> read_lengths[3];  // by unclipped length: every read, first, last fragments
  // Qualities by cycle, first / last fragments: [cycle * kQualRow + quality]. The rows are padded past
  // 256 so that successive cycles do not fall into the same cache set.
  static constexpr size_t kQualRow = 256 + 8;
  std::vector<uint64_t> cycle_quals[2];
  std::array<uint64_t, kGcBins> gc[2] = {};  // GC content bins: first, last fragments
  // Bases by cycle, first / last fragments: A, C, G, T, N, other; and read-oriented (A C G T of
  // reverse-strand reads complemented), both fragments.
  std::vector<std::array<uint64_t, 6>> cycle_bases[2];
  std::vector<std::array<uint64_t, 4>> cycle_bases_read_oriented;
  std::array<uint64_t, kMaxIndel> insertions = {}, deletions = {};  // [length - 1]
  std::map<int, std::array<uint64_t, 4>> indel_cycles;  // cycle: insertions 1st, 2nd, deletions 1st, 2nd
  // GC-depth: reads by start in bins of about kGcDepthBin (a new bin when a read starts further on or on
  // another contig), with the summed GC fraction of their sequences (stats.c without a reference: float
  // sums, as it keeps them). [0] is stats.c's first bin, never filled but sorted with the others.
  struct GcDepthBin {
    float gc = 0;
    uint32_t depth = 0;
  };
  std::vector<GcDepthBin> gc_depth = std::vector<GcDepthBin>(1);
  int64_t gc_depth_pos = -1;
  std::vector<uint64_t> coverage;  // [depth]: reference positions at that depth (> 0), the last at least
                                   // kMaxCoverage + 1; M/=/X bases of mapped, non-secondary records
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
                                              // unpaired reads), read 2; primary records (from
                                              // samtools_stats.cycle_quals)
  std::map<int64_t, uint64_t> indel_lengths;  // PASS non-reference indels: ALT minus REF length
  std::vector<uint64_t> gq_histogram;         // PASS non-reference calls by FORMAT/GQ (0..99)

  FlagStat flagstat;
  SamtoolsStats samtools_stats;
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
