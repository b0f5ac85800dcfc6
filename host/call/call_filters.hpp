#pragma once
// Site annotations behind the caller's FILTERs (INFO QD, FS, SOR, MQ0F, MMF, and the repeat context STR,
// RU, RL) and the rules that set the FILTERs from them. Thresholds follow GATK's hard-filter
// recommendations where one exists (QD < 2; FS > 60 SNV / 200 indel; SOR > 3 SNV / 10 indel) and were
// checked on the shared real and simulated sets (docs/performance.md): none removes a true call there.
#include <cstdint>
#include <string>
#include <vector>

#include "host/call/repeat_context.hpp"
#include "host/call/strand_bias.hpp"
#include "host/call/vcf_writer.hpp"

namespace omicsd {

// What the genotyper counted at one site.
struct SiteEvidence {
  bool snv = true;               // every ALT a single-base substitution; otherwise indel thresholds apply
  double qual = 0;               // QUAL
  int depth = 0;                 // reads scored at the site (INFO/DP)
  StrandTable strand;            // informative reads: reference vs any ALT, forward vs reverse
  int mapq_zero = 0;             // reads with MAPQ 0 over the site (not scored: below min_mapq)
  int alt_reads = 0;             // informative reads supporting an ALT
  int alt_mismatch_heavy = 0;    // ... of which carry many other differences from the reference
  bool near_contig_end = false;  // within kContigEndMargin of a contig end (reads come from one side)
  RepeatContext repeat;          // tandem repeat at the site (indel context), period 0 if none
  std::string repeat_unit;       // its unit
};

struct SiteAnnotations {
  double qd = 0;    // QUAL / depth
  double fs = 0;    // FisherStrand
  double sor = 0;   // StrandOddsRatio
  double mq0f = 0;  // MAPQ-0 reads / (MAPQ-0 reads + depth)
  double mmf = 0;   // mismatch-heavy share of the ALT-supporting reads
};

struct CallFilterThresholds {
  double min_qual = 20;  // LowQual: QUAL below
  double min_qd = 2;     // LowQD: QD below
  double max_fs_snv = 60, max_fs_indel = 200;
  double max_sor_snv = 3, max_sor_indel = 10;
  double max_mq0f = 0.1;          // LowMQ: MQ0F above
  double max_mmf = 0.8;           // ExcessMismatch: MMF above ...
  int min_mismatch_reads = 3;     // ... with at least this many such reads
  int min_one_strand_reads = 11;  // OneStrand: at least this many informative reads, all on one strand
};

// OneStrand is not applied this close to a contig end, where pairs can only come from one side.
inline constexpr int64_t kContigEndMargin = 1000;

// A read counts as mismatch-heavy when it differs from the reference in more than this many events
// (base mismatches of quality >= 20, indel openings, soft clips) over its alignment: about 5% of a
// 100 bp read, far above the ~0.1% of true variants plus the ~0.5% of sequencing errors.
inline constexpr int kMismatchHeavyEvents = 5;

SiteAnnotations annotate_site(const SiteEvidence& e);

// FILTER ids for the site (empty: PASS), in a fixed order: LowQual, LowQD, StrandBias, LowMQ,
// ExcessMismatch, OneStrand. StrandBias: FS or SOR above the threshold of the site's type.
// OneStrand: every informative read (REF and ALT alike) on one strand, at least min_one_strand_reads
// of them (by chance: 2 * 0.5^11 < 0.001). Paired reads reach such a site from one side only: it sits
// next to sequence the reads cannot be aligned through (a tandem-repeat expansion, a breakpoint), where
// the alignments, and the calls made from them, are unreliable. FS and SOR do not see it: the reference
// reads are as one-sided as the ALT reads.
std::vector<std::string> site_filters(const SiteEvidence& e, const SiteAnnotations& a,
                                      const CallFilterThresholds& t = {});

// The ##FILTER and ##INFO definitions of the above (for VcfWriterOptions), describing the thresholds.
std::vector<VcfFilterDef> call_filter_definitions(const CallFilterThresholds& t = {});
std::vector<VcfInfoDef> call_info_definitions();

// Appends the INFO values (SB, QD, FS, SOR, MQ0F, MMF; STR, RU, RL when in a repeat) to the record.
void add_site_info(VcfRecord& rec, const SiteEvidence& e, const SiteAnnotations& a);

}  // namespace omicsd
