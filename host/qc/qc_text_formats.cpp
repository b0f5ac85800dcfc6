#include "host/qc/qc_text_formats.hpp"

#include <cstdio>

#include "host/common/durable_file.hpp"
#include "omicsd_version.hpp"

namespace omicsd {
namespace {

std::string format(const char* fmt, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

// samtools' percent(): two decimals, or N/A when there is nothing to divide by.
std::string percent(uint64_t n, uint64_t total) {
  return total ? format("%.2f%%", 100.0 * double(n) / double(total)) : "N/A";
}

}  // namespace

std::string flagstat_text(const FlagStat& f) {
  std::string out;
  auto line = [&](const uint64_t(&v)[2], const char* what) {
    out += format("%llu + %llu %s\n", (unsigned long long)v[0], (unsigned long long)v[1], what);
  };
  auto line_pct = [&](const uint64_t(&v)[2], const char* what, const uint64_t(&of)[2]) {
    out += format("%llu + %llu %s (%s : %s)\n", (unsigned long long)v[0], (unsigned long long)v[1], what,
                  percent(v[0], of[0]).c_str(), percent(v[1], of[1]).c_str());
  };
  line(f.total, "in total (QC-passed reads + QC-failed reads)");
  line(f.primary, "primary");
  line(f.secondary, "secondary");
  line(f.supplementary, "supplementary");
  line(f.duplicates, "duplicates");
  line(f.primary_duplicates, "primary duplicates");
  line_pct(f.mapped, "mapped", f.total);
  line_pct(f.primary_mapped, "primary mapped", f.primary);
  line(f.paired, "paired in sequencing");
  line(f.read1, "read1");
  line(f.read2, "read2");
  line_pct(f.properly_paired, "properly paired", f.paired);
  line(f.both_mapped, "with itself and mate mapped");
  line_pct(f.singletons, "singletons", f.paired);
  line(f.mate_other_contig, "with mate mapped to a different chr");
  line(f.mate_other_contig_mapq5, "with mate mapped to a different chr (mapQ>=5)");
  return out;
}

std::string bcftools_stats_text(const VcfStats& v, const std::string& vcf_name) {
  auto u = [](uint64_t n) { return (unsigned long long)n; };
  auto ratio = [](uint64_t a, uint64_t b) { return b ? double(a) / double(b) : 0.0; };
  std::string out;
  // MultiQC recognises the file by this first line's words.
  out += format(
      "# This file was produced by bcftools stats-compatible omicsd qc (omicsd %s, git %s): the SN, "
      "TSTV, ST and IDD sections, computed by omicsd.\n",
      kVersion, kGitHash);
  out += "# Definition of sets:\n# ID\t[2]id\t[3]tab-separated file names\n";
  out += "ID\t0\t" + vcf_name + "\n";
  out += "# SN, Summary numbers:\n# SN\t[2]id\t[3]key\t[4]value\n";
  const std::pair<const char*, uint64_t> sn[] = {{"number of samples:", v.samples},
                                                 {"number of records:", v.records},
                                                 {"number of no-ALTs:", v.no_alts},
                                                 {"number of SNPs:", v.snps},
                                                 {"number of MNPs:", v.mnps},
                                                 {"number of indels:", v.indels},
                                                 {"number of others:", v.others},
                                                 {"number of multiallelic sites:", v.multiallelic},
                                                 {"number of multiallelic SNP sites:", v.multiallelic_snps}};
  for (const auto& [key, n] : sn) out += format("SN\t0\t%s\t%llu\n", key, u(n));
  out +=
      "# TSTV, transitions/transversions:\n# TSTV\t[2]id\t[3]ts\t[4]tv\t[5]ts/tv\t[6]ts (1st ALT)\t[7]tv "
      "(1st "
      "ALT)\t[8]ts/tv (1st ALT)\n";
  out += format("TSTV\t0\t%llu\t%llu\t%.2f\t%llu\t%llu\t%.2f\n", u(v.ts), u(v.tv), ratio(v.ts, v.tv),
                u(v.ts_alt1), u(v.tv_alt1), ratio(v.ts_alt1, v.tv_alt1));
  out +=
      "# IDD, InDel distribution:\n# IDD\t[2]id\t[3]length (deletions negative)\t[4]number of "
      "sites\t[5]number "
      "of genotypes\t[6]mean VAF\n";
  for (const auto& [len, n] : v.indel_sites)
    out += format("IDD\t0\t%lld\t%llu\t0\t.\n", (long long)len, u(n));
  out += "# ST, Substitution types:\n# ST\t[2]id\t[3]type\t[4]count\n";
  const char bases[] = "ACGT";
  for (int ref = 0; ref < 4; ++ref)
    for (int alt = 0; alt < 4; ++alt)
      if (ref != alt)
        out += format("ST\t0\t%c>%c\t%llu\n", bases[ref], bases[alt], u(v.substitutions[ref << 2 | alt]));
  return out;
}

void write_flagstat(const FlagStat& f, const std::string& path) {
  write_file_atomically(path, flagstat_text(f));
}

void write_bcftools_stats(const VcfStats& v, const std::string& vcf_name, const std::string& path) {
  write_file_atomically(path, bcftools_stats_text(v, vcf_name));
}

}  // namespace omicsd
