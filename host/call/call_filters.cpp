#include "host/call/call_filters.hpp"

#include <cmath>

namespace omicsd {
namespace {

std::string fmt(double v) {
  std::string s = std::to_string(v);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// Two decimals, as GATK prints its annotations (keeps the VCF body short and stable).
float round2(double v) { return float(std::round(v * 100.0) / 100.0); }

}  // namespace

SiteAnnotations annotate_site(const SiteEvidence& e) {
  SiteAnnotations a;
  a.qd = e.depth > 0 ? e.qual / e.depth : 0;
  a.fs = fisher_strand(e.strand);
  a.sor = strand_odds_ratio(e.strand);
  a.mq0f = e.mapq_zero + e.depth > 0 ? double(e.mapq_zero) / (e.mapq_zero + e.depth) : 0;
  a.mmf = e.alt_reads > 0 ? double(e.alt_mismatch_heavy) / e.alt_reads : 0;
  return a;
}

std::vector<std::string> site_filters(const SiteEvidence& e, const SiteAnnotations& a,
                                      const CallFilterThresholds& t) {
  std::vector<std::string> f;
  if (e.qual < t.min_qual) f.push_back("LowQual");
  if (e.depth > 0 && a.qd < t.min_qd) f.push_back("LowQD");
  const int ref_reads = e.strand.ref_fwd + e.strand.ref_rev;
  if (a.fs > (e.snv ? t.max_fs_snv : t.max_fs_indel) ||
      (ref_reads >= t.min_sor_ref_reads && a.sor > (e.snv ? t.max_sor_snv : t.max_sor_indel)))
    f.push_back("StrandBias");
  if (a.mq0f > t.max_mq0f && e.rms_mapq < t.min_mq) f.push_back("LowMQ");
  if (a.mmf > t.max_mmf && e.alt_mismatch_heavy >= t.min_mismatch_reads) f.push_back("ExcessMismatch");
  const int fwd = e.strand.ref_fwd + e.strand.alt_fwd, rev = e.strand.ref_rev + e.strand.alt_rev;
  if (!e.near_contig_end && (fwd == 0 || rev == 0) && fwd + rev >= t.min_one_strand_reads &&
      e.repeat_density >= t.min_repeat_density)
    f.push_back("RepeatOneStrand");
  return f;
}

std::vector<VcfFilterDef> call_filter_definitions(const CallFilterThresholds& t) {
  return {
      {"LowQual", "QUAL below " + fmt(t.min_qual)},
      {"LowQD", "QD (QUAL / DP) below " + fmt(t.min_qd)},
      {"StrandBias", "Strand bias: FS above " + fmt(t.max_fs_snv) + " (SNV) / " + fmt(t.max_fs_indel) +
                         " (indel), or SOR above " + fmt(t.max_sor_snv) + " (SNV) / " + fmt(t.max_sor_indel) +
                         " (indel) with at least " + std::to_string(t.min_sor_ref_reads) +
                         " reference reads"},
      {"LowMQ", "MQ0F (share of MAPQ 0 reads) above " + fmt(t.max_mq0f) + " and MQ below " + fmt(t.min_mq)},
      {"ExcessMismatch", "MMF (share of ALT-supporting reads with more than " +
                             std::to_string(kMismatchHeavyEvents) +
                             " other differences from the reference) above " + fmt(t.max_mmf) +
                             " with at least " + std::to_string(t.min_mismatch_reads) + " such reads"},
      {"RepeatOneStrand", "All informative reads (at least " + std::to_string(t.min_one_strand_reads) +
                              ") on one strand in a stretch dense in tandem repeats (TRD at least " +
                              fmt(t.min_repeat_density) +
                              "): reads reach it from one side only; not applied within " +
                              std::to_string(kContigEndMargin) + " bp of a contig end"},
  };
}

std::vector<VcfInfoDef> call_info_definitions() {
  return {
      {"SB", "4", "Integer",
       "Informative reads supporting REF on the forward and reverse strand, then any ALT on the forward "
       "and reverse strand (the table behind FS and SOR)"},
      {"QD", "1", "Float", "Variant confidence by depth: QUAL / DP"},
      {"FS", "1", "Float", "Phred-scaled Fisher exact test p-value for strand bias (GATK FisherStrand)"},
      {"SOR", "1", "Float", "Symmetric odds ratio of the strand table (GATK StrandOddsRatio)"},
      {"MQ0F", "1", "Float", "Share of the reads over the site with mapping quality 0"},
      {"MMF", "1", "Float",
       "Share of the ALT-supporting reads with more than " + std::to_string(kMismatchHeavyEvents) +
           " other differences (mismatches, indel openings, soft clips) from the reference"},
      {"TRD", "1", "Float",
       "Share of the " + std::to_string(2 * kRepeatDensityFlank + 1) +
           " bases around the site in tandem-repeat tracts of at least " + std::to_string(kMinDenseTract) +
           " bases"},
      {"STR", "0", "Flag", "The variant lies in a short tandem repeat (period 1-6, at least two copies)"},
      {"RU", "1", "String", "Tandem repeat unit"},
      {"RL", "1", "Integer", "Length in reference bases of the tandem repeat tract"},
  };
}

void add_site_info(VcfRecord& rec, const SiteEvidence& e, const SiteAnnotations& a) {
  rec.info.push_back(
      VcfInfoValue::integer("SB", {e.strand.ref_fwd, e.strand.ref_rev, e.strand.alt_fwd, e.strand.alt_rev}));
  rec.info.push_back(VcfInfoValue::real("QD", round2(a.qd)));
  rec.info.push_back(VcfInfoValue::real("FS", round2(a.fs)));
  rec.info.push_back(VcfInfoValue::real("SOR", round2(a.sor)));
  rec.info.push_back(VcfInfoValue::real("MQ0F", round2(a.mq0f)));
  rec.info.push_back(VcfInfoValue::real("MMF", round2(a.mmf)));
  rec.info.push_back(VcfInfoValue::real("TRD", round2(e.repeat_density)));
  if (e.repeat.period > 0) {
    rec.info.push_back(VcfInfoValue::flag("STR"));
    rec.info.push_back(VcfInfoValue::text("RU", e.repeat_unit));
    rec.info.push_back(VcfInfoValue::integer("RL", {int(e.repeat.length())}));
  }
}

}  // namespace omicsd
