#pragma once
// Site annotations behind the caller's FILTERs (INFO SB, QD, FS, SOR, MQ0F, MMF, TRD and the repeat
// context STR, RU, RL) and the rules that set the FILTERs from them. Thresholds follow GATK's
// hard-filter recommendations where one exists (QD < 2; FS > 60 SNV / 200 indel; SOR, see below) and
// were checked on the shared real and simulated sets (docs/performance.md): none removes a true call
// there.
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
  double rms_mapq = 0;           // RMS MAPQ of those reads (INFO/MQ)
  StrandTable strand;            // informative reads: reference vs any ALT, forward vs reverse
  int mapq_zero = 0;             // reads with MAPQ 0 over the site (not scored: below min_mapq)
  int alt_reads = 0;             // informative reads supporting an ALT
  int alt_mismatch_heavy = 0;    // ... of which carry many other differences from the reference
  bool near_contig_end = false;  // within kContigEndMargin of a contig end (pairs come from one side)
  double repeat_density = 0;     // tandem_repeat_density of the kRepeatDensityFlank bases either side
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
  // SOR above these with at least min_sor_ref_reads reference reads. GATK suggests 3 for SNVs; on the
  // simulated set true heterozygous SNVs reach 3.8, so 4. Without reference reads (hom-alt sites) the
  // +1 pseudo-counts alone push SOR above 4 at modest depth, so it is not used there.
  double max_sor_snv = 4, max_sor_indel = 10;
  int min_sor_ref_reads = 5;
  // LowMQ: most reads over the site unplaceable (MQ0F above) and the scored ones weakly placed (MQ
  // below). MQ0F alone would remove true variants in repeats, whose distinguishing reads do place.
  double max_mq0f = 0.5, min_mq = 30;
  double max_mmf = 0.8;             // ExcessMismatch: MMF above ...
  int min_mismatch_reads = 3;       // ... with at least this many such reads
  int min_one_strand_reads = 11;    // RepeatOneStrand: at least this many informative reads on one strand
  double min_repeat_density = 0.5;  // ... in a stretch at least this dense in tandem repeats
};

// RepeatOneStrand is not applied this close to a contig end, where pairs come from one side only.
inline constexpr int64_t kContigEndMargin = 1000;
// SiteEvidence::repeat_density looks this far either side of the site.
inline constexpr int64_t kRepeatDensityFlank = 50;

// A read counts as mismatch-heavy when it differs from the reference in more than this many events
// (base mismatches of quality >= 20, indel openings, soft clips) over its alignment: about 5% of a
// 100 bp read, far above the ~0.1% of true variants plus the ~0.5% of sequencing errors.
inline constexpr int kMismatchHeavyEvents = 5;

SiteAnnotations annotate_site(const SiteEvidence& e);

// FILTER ids for the site (empty: PASS), in a fixed order: LowQual, LowQD, StrandBias, LowMQ,
// ExcessMismatch, RepeatOneStrand.
// RepeatOneStrand: every informative read (REF and ALT alike) on one strand, at least
// min_one_strand_reads of them (by chance: 2 * 0.5^11 < 0.001), in a stretch dense in tandem repeats.
// Paired reads reach such a site from one side only: the repeat cannot be aligned through (an
// expansion of it in the sample), and the calls made from the alignments that end in it are
// unreliable. FS and SOR do not see it: the reference reads are as one-sided as the ALT reads.
std::vector<std::string> site_filters(const SiteEvidence& e, const SiteAnnotations& a,
                                      const CallFilterThresholds& t = {});

// The ##FILTER and ##INFO definitions of the above (for VcfWriterOptions), describing the thresholds.
std::vector<VcfFilterDef> call_filter_definitions(const CallFilterThresholds& t = {});
std::vector<VcfInfoDef> call_info_definitions();

// Appends the INFO values (SB, QD, FS, SOR, MQ0F, MMF, TRD; STR, RU, RL when in a repeat) to the record.
void add_site_info(VcfRecord& rec, const SiteEvidence& e, const SiteAnnotations& a);

}  // namespace omicsd
