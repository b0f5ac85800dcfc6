#pragma once
// Every QC file of a sample, written side by side: the QC JSON, the HTML report, and the samtools
// flagstat / samtools stats / bcftools stats formats that MultiQC parses. `omicsd run` and the germline
// workflow's qc task both write them through this one function.
#include <nlohmann/json.hpp>
#include <string>

#include "host/qc/qc_report.hpp"

namespace omicsd {

struct QcOutputPaths {
  std::string json, report, flagstat, samtools_stats, bcftools_stats;  // bcftools_stats empty without a VCF
};

// <dir>/<stem>.qc.json, .report.html, .flagstat.txt, .samtools_stats.txt and .bcftools_stats.txt, each
// written atomically. `vcf_name` is the VCF's file name as the bcftools stats ID line shows it; the BAM's
// is <stem>.bam.
QcOutputPaths write_qc_outputs(const QcReport& q, const std::string& dir, const std::string& stem,
                               const std::string& sample, const std::string& vcf_name,
                               const nlohmann::json& provenance);

}  // namespace omicsd
