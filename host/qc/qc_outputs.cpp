#include "host/qc/qc_outputs.hpp"

#include <filesystem>

#include "host/qc/qc_html.hpp"
#include "host/qc/qc_text_formats.hpp"

namespace omicsd {

QcOutputPaths write_qc_outputs(const QcReport& q, const std::string& dir, const std::string& stem,
                               const std::string& sample, const std::string& vcf_name,
                               const nlohmann::json& provenance) {
  const std::filesystem::path base = std::filesystem::path(dir) / stem;
  QcOutputPaths p;
  p.json = base.string() + ".qc.json";
  p.report = base.string() + ".report.html";
  p.flagstat = base.string() + ".flagstat.txt";
  write_qc_json(q, p.json);
  write_qc_report_html(q, sample, provenance, p.report);
  write_flagstat(q.flagstat, p.flagstat);
  p.samtools_stats = base.string() + ".samtools_stats.txt";
  write_samtools_stats(q.samtools_stats, stem + ".bam", p.samtools_stats);
  if (q.have_vcf) {
    p.bcftools_stats = base.string() + ".bcftools_stats.txt";
    write_bcftools_stats(q.vcf_stats, vcf_name, p.bcftools_stats);
  }
  return p;
}

}  // namespace omicsd
