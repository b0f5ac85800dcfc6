#pragma once
// QC in the text formats MultiQC already parses, so a lab's existing MultiQC report picks omicsd runs
// up without a plugin: `samtools flagstat`'s default output, `samtools stats` (SN and the
// distributions below) and the summary sections of `bcftools stats` (SN, TSTV, ST, IDD). The numbers are
// computed by compute_qc (host/qc/qc_report.hpp) with the same rules as those tools;
// tests/host/qc/test_qc_text_formats.cpp compares them with samtools and bcftools on the same files.
#include <string>

#include "host/qc/qc_report.hpp"

namespace omicsd {

std::string flagstat_text(const FlagStat& f);

// `samtools stats` without options, every section it writes: CHK, SN (every key), FFQ, LFQ, GCF, GCL,
// GCC, GCT, FBC, FTC, LBC, LTC, IS, RL, FRL, LRL, ID, IC, COV and GCD (MPC needs the reference, which
// samtools is given with -r). `bam_name` names the BAM in a comment line.
std::string samtools_stats_text(const SamtoolsStats& s, const std::string& bam_name);

// `vcf_name` names the VCF in the ID line (MultiQC's sample name for the file).
std::string bcftools_stats_text(const VcfStats& v, const std::string& vcf_name);

// Each written atomically (temp name, fsync, rename).
void write_flagstat(const FlagStat& f, const std::string& path);
void write_samtools_stats(const SamtoolsStats& s, const std::string& bam_name, const std::string& path);
void write_bcftools_stats(const VcfStats& v, const std::string& vcf_name, const std::string& path);

}  // namespace omicsd
