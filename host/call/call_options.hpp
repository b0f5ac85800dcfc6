#pragma once
#include <cstdint>
#include <string>

#include "host/call/genotype_backend.hpp"

namespace omicsd {

// Which reads and bases count as evidence, and when a position becomes a candidate. Defaults follow
// bcftools mpileup / GATK conventions where users expect them.
struct CallParams {
  int min_mapq = 20;  // reads below are ignored (bcftools -q 0, GATK 20)
  // Bases below do not make candidates. 20 rather than bcftools' 13: without BAQ, Q15 bases in
  // homopolymer runs (Illumina phasing errors) otherwise pile up into false SNVs.
  int min_baseq = 20;
  bool keep_duplicates = false;    // 0x400
  bool keep_secondary = false;     // 0x100 / 0x800
  bool keep_qcfail = false;        // 0x200
  int min_alt_reads = 2;           // a candidate allele needs this many supporting reads...
  double min_alt_fraction = 0.1;   // ...and this share of the reads covering it
  int cluster_distance = 12;       // candidates closer than this are genotyped together (haplotypes)
  int max_cluster_alleles = 6;     // more candidates than this in a cluster are split into groups
  int window_pad = 40;             // reference padding around a cluster for the haplotypes
  int max_reads_per_window = 400;  // deterministic downsampling beyond this depth
  double min_qual = 20;            // records below get FILTER LowQual
  double emit_qual = 3;            // records below are not written at all
  int64_t shard_size = 1000000;    // bases per parallel shard (fixed: output never depends on threads)
};

struct CallOptions {
  std::string reference;
  std::string bam;
  std::string output;       // .vcf.gz (bgzip) + .tbi
  std::string regions_bed;  // call only inside these intervals (reads are fetched there)
  std::string targets_bed;  // report only records inside these intervals (panels)
  bool gvcf = false;
  int threads = 0;
  // The genotyping backend (CPU or CUDA, chosen above the engine:
  // backends/genotype_backend_select.hpp); empty: the CPU backend.
  GenotypeBackendFactory make_backend;
  std::string command_line;
  std::string sample;  // default: SM of the BAM's @RG lines, else the file's base name
  // Several SM values among the @RG lines are refused unless this is set; then they are called
  // together as one sample (named by `sample`, else the first SM).
  bool allow_multiple_samples = false;
  // Ploidy (ploidy_map.hpp): the default, then --sex rules (male/female/""), then a BED of
  // "chrom start end ploidy" lines overriding both (ploidy 0: not called).
  int ploidy = 2;
  std::string sex;
  std::string ploidy_bed;
  CallParams params;
};

struct CallStats {
  uint64_t candidates = 0, windows = 0, hmm_pairs = 0, records = 0, snps = 0, indels = 0;
  double seconds = 0;
  std::string backend;
};

CallStats run_call(const CallOptions& options);

}  // namespace omicsd
