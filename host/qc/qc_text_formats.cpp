#include "host/qc/qc_text_formats.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <vector>

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

std::string samtools_stats_text(const SamtoolsStats& s, const std::string& bam_name) {
  auto u = [](uint64_t n) { return (unsigned long long)n; };
  std::string out;
  // Insert sizes: each pair was counted by both mates, so halve (rounding down, as stats.c stores the
  // halves in integers); the average and deviation cover the main bulk, the sizes up to 99% of pairs.
  std::vector<std::array<uint64_t, 3>> is(s.insert_sizes.size());
  uint64_t nisize = 0, n_orient[3] = {};
  for (size_t i = 0; i < is.size(); ++i)
    for (size_t k = 0; k < 3; ++k) {
      is[i][k] = uint64_t(double(s.insert_sizes[i][k]) * 0.5);
      n_orient[k] += is[i][k];
      nisize += is[i][k];
    }
  size_t ibulk = 0;
  double bulk = 0, avg_isize = 0, sd_isize = 0;
  for (size_t i = 0; i < is.size(); ++i) {
    const uint64_t num = is[i][0] + is[i][1] + is[i][2];
    if (num > 0) ibulk = i + 1;
    bulk += double(num);
    avg_isize += double(uint64_t(i) * num);
    if (bulk / double(nisize) > double(0.99f)) {  // stats.c's isize_main_bulk is a float
      ibulk = i + 1;
      nisize = uint64_t(bulk);
      break;
    }
  }
  avg_isize /= double(nisize ? nisize : 1);
  for (size_t i = 1; i < ibulk; ++i) {
    const double d = double(i) - avg_isize;
    sd_isize += double(is[i][0] + is[i][1] + is[i][2]) * d * d / double(nisize ? nisize : 1);
  }
  sd_isize = std::sqrt(sd_isize);

  const uint64_t sequences = s.reads_1st + s.reads_2nd + s.reads_other;
  // MultiQC recognises the file by this first line's words.
  out += format(
      "# This file was produced by samtools stats-compatible omicsd qc (omicsd %s, git %s) and can be "
      "plotted "
      "using plot-bamstats\n",
      kVersion, kGitHash);
  out += "# This file contains statistics for all reads.\n";
  out += "# Computed by omicsd with the rules of `samtools stats` without options, from " + bam_name + "\n";
  out += "# CHK, Checksum\t[2]Read Names\t[3]Sequences\t[4]Qualities\n";
  out += "# CHK, CRC32 of reads which passed filtering followed by addition (32bit overflow)\n";
  out += format("CHK\t%08x\t%08x\t%08x\n", s.chk_names, s.chk_seqs, s.chk_quals);
  out += "# Summary Numbers. Use `grep ^SN | cut -f 2-` to extract this part.\n";
  auto sn = [&](const char* key, uint64_t v, const char* note = nullptr) {
    out += format("SN\t%s:\t%llu", key, u(v)) + (note ? std::string("\t# ") + note : "") + "\n";
  };
  sn("raw total sequences", sequences, "excluding supplementary and secondary reads");
  sn("filtered sequences", 0);
  sn("sequences", sequences);
  sn("is sorted", s.is_sorted ? 1 : 0);
  sn("1st fragments", s.reads_1st);
  sn("last fragments", s.reads_2nd);
  sn("reads mapped", s.paired_and_mapped + s.single_mapped);
  sn("reads mapped and paired", s.paired_and_mapped, "paired-end technology bit set + both mates mapped");
  sn("reads unmapped", s.unmapped);
  sn("reads properly paired", s.properly_paired, "proper-pair bit set");
  sn("reads paired", s.paired, "paired-end technology bit set");
  sn("reads duplicated", s.duplicated, "PCR or optical duplicate bit set");
  sn("reads MQ0", s.mq0, "mapped and MQ=0");
  sn("reads QC failed", s.qc_failed);
  sn("non-primary alignments", s.secondary);
  sn("supplementary alignments", s.supplementary);
  sn("total length", s.total_len, "ignores clipping");
  sn("total first fragment length", s.total_len_1st, "ignores clipping");
  sn("total last fragment length", s.total_len_2nd, "ignores clipping");
  sn("bases mapped", s.bases_mapped, "ignores clipping");
  sn("bases mapped (cigar)", s.bases_mapped_cigar, "more accurate");
  sn("bases trimmed", 0);
  sn("bases duplicated", s.total_len_dup);
  sn("mismatches", s.mismatches, "from NM fields");
  // stats.c's arithmetic, float where it is float, so the printed digits agree.
  out += format("SN\terror rate:\t%e\t# mismatches / bases mapped (cigar)\n",
                s.bases_mapped_cigar ? double(float(s.mismatches) / float(s.bases_mapped_cigar)) : 0.0);
  const float avg_read_length = float(sequences ? s.total_len / sequences : 0);
  out += format("SN\taverage length:\t%.0f\n", double(avg_read_length));
  out += format("SN\taverage first fragment length:\t%.0f\n",
                double(s.reads_1st ? float(s.total_len_1st) / float(s.reads_1st) : 0.0f));
  out += format("SN\taverage last fragment length:\t%.0f\n",
                double(s.reads_2nd ? float(s.total_len_2nd) / float(s.reads_2nd) : 0.0f));
  out += format("SN\tmaximum length:\t%d\n", s.max_len);
  out += format("SN\tmaximum first fragment length:\t%d\n", s.max_len_1st);
  out += format("SN\tmaximum last fragment length:\t%d\n", s.max_len_2nd);
  out += format("SN\taverage quality:\t%.1f\n", s.total_len ? s.sum_qual / double(s.total_len) : 0.0);
  out += format("SN\tinsert size average:\t%.1f\n", avg_isize);
  out += format("SN\tinsert size standard deviation:\t%.1f\n", sd_isize);
  sn("inward oriented pairs", n_orient[0]);
  sn("outward oriented pairs", n_orient[1]);
  sn("pairs with other orientation", n_orient[2]);
  sn("pairs on different chromosomes", s.other_chromosome / 2);
  out += format("SN\tpercentage of properly paired reads (%%):\t%.1f\n",
                double(sequences ? float(100 * s.properly_paired) / float(sequences) : 0.0f));

  // Qualities by cycle: the quality columns run to one past the highest quality seen.
  const int max_qual = s.max_qual + 1 < 256 ? s.max_qual + 1 : s.max_qual;
  const char* names[2] = {"First", "Last"};
  const char* tags[2] = {"FFQ", "LFQ"};
  for (size_t m = 0; m < 2; ++m) {
    out += format("# %s Fragment Qualities. Use `grep ^%s | cut -f 2-` to extract this part.\n", names[m],
                  tags[m]);
    out += "# Columns correspond to qualities and rows to cycles. First column is the cycle number.\n";
    const auto& hist = s.cycle_quals[m];
    for (int cycle = 0; cycle < (m ? s.max_len_2nd : s.max_len_1st); ++cycle) {
      out += format("%s\t%d", tags[m], cycle + 1);
      for (int q = 0; q <= max_qual; ++q) {
        const size_t at = size_t(cycle) * SamtoolsStats::kQualRow + size_t(q);
        out += format("\t%llu", u(at < hist.size() ? hist[at] : 0));
      }
      out += "\n";
    }
  }
  // GC content: runs of equal bins, each at the middle of its run (the last run is not written).
  const char* gc_tags[2] = {"GCF", "GCL"};
  for (size_t m = 0; m < 2; ++m) {
    out += format("# GC Content of %s fragments. Use `grep ^%s | cut -f 2-` to extract this part.\n",
                  m ? "last" : "first", gc_tags[m]);
    int prev = 0;
    for (int i = 0; i < SamtoolsStats::kGcBins; ++i) {
      if (s.gc[m][size_t(i)] == s.gc[m][size_t(prev)]) continue;
      out += format("%s\t%.2f\t%llu\n", gc_tags[m], (i + prev) * 0.5 * 100. / (SamtoolsStats::kGcBins - 1),
                    u(s.gc[m][size_t(prev)]));
      prev = i;
    }
  }
  // Base composition by cycle (cycles up to the longest read's).
  const auto bases_at = [&](size_t m, size_t cycle) {
    return cycle < s.cycle_bases[m].size() ? s.cycle_bases[m][cycle] : std::array<uint64_t, 6>{};
  };
  auto pct = [](uint64_t n, uint64_t total) { return 100. * double(n) / double(total); };
  out +=
      "# ACGT content per cycle. Use `grep ^GCC | cut -f 2-` to extract this part. The columns are: cycle; "
      "A,C,G,T base counts as a percentage of all A/C/G/T bases [%]; and N and O counts as a percentage of "
      "all "
      "A/C/G/T bases [%]\n";
  for (size_t cycle = 0; cycle < size_t(s.max_len); ++cycle) {
    const auto a = bases_at(0, cycle), b = bases_at(1, cycle);
    const uint64_t acgt = a[0] + a[1] + a[2] + a[3] + b[0] + b[1] + b[2] + b[3];
    if (!acgt) continue;
    out += format("GCC\t%d", int(cycle + 1));
    for (size_t k = 0; k < 6; ++k) out += format("\t%.2f", pct(a[k] + b[k], acgt));
    out += "\n";
  }
  out +=
      "# ACGT content per cycle, read oriented. Use `grep ^GCT | cut -f 2-` to extract this part. The "
      "columns "
      "are: cycle; A,C,G,T base counts as a percentage of all A/C/G/T bases [%]\n";
  for (size_t cycle = 0; cycle < size_t(s.max_len) && cycle < s.cycle_bases_read_oriented.size(); ++cycle) {
    const auto& o = s.cycle_bases_read_oriented[cycle];
    const uint64_t acgt = o[0] + o[1] + o[2] + o[3];
    if (!acgt) continue;
    out += format("GCT\t%d\t%.2f\t%.2f\t%.2f\t%.2f\n", int(cycle + 1), pct(o[0], acgt), pct(o[1], acgt),
                  pct(o[2], acgt), pct(o[3], acgt));
  }
  for (size_t m = 0; m < 2; ++m) {
    const char* which = m ? "last" : "first";
    const char* bc = m ? "LBC" : "FBC";
    const char* tc = m ? "LTC" : "FTC";
    out += format(
        "# ACGT content per cycle for %s fragments. Use `grep ^%s | cut -f 2-` to extract this part. The "
        "columns are: cycle; A,C,G,T base counts as a percentage of all A/C/G/T bases [%%]; and N and O "
        "counts "
        "as a percentage of all A/C/G/T bases [%%]\n",
        which, bc);
    uint64_t total[5] = {};
    for (size_t cycle = 0; cycle < size_t(s.max_len); ++cycle) {
      const auto a = bases_at(m, cycle);
      for (size_t k = 0; k < 5; ++k) total[k] += a[k];
      const uint64_t acgt = a[0] + a[1] + a[2] + a[3];
      if (!acgt) continue;
      out += format("%s\t%d", bc, int(cycle + 1));
      for (size_t k = 0; k < 6; ++k) out += format("\t%.2f", pct(a[k], acgt));
      out += "\n";
    }
    out += format(
        "# ACGT raw counters for %s fragments. Use `grep ^%s | cut -f 2-` to extract this part. The columns "
        "are: A,C,G,T,N base counters\n",
        which, tc);
    out += format("%s\t%llu\t%llu\t%llu\t%llu\t%llu\n", tc, u(total[0]), u(total[1]), u(total[2]),
                  u(total[3]), u(total[4]));
  }
  out +=
      "# Insert sizes. Use `grep ^IS | cut -f 2-` to extract this part. The columns are: insert size, pairs "
      "total, inward oriented pairs, outward oriented pairs, other pairs\n";
  for (size_t i = 0; i < ibulk; ++i)
    out += format("IS\t%d\t%llu\t%llu\t%llu\t%llu\n", int(i), u(is[i][0] + is[i][1] + is[i][2]), u(is[i][0]),
                  u(is[i][1]), u(is[i][2]));
  const char* rl_what[3] = {"", " - first fragments", " - last fragments"};
  const char* rl_tags[3] = {"RL", "FRL", "LRL"};
  for (size_t k = 0; k < 3; ++k) {
    out += format(
        "# Read lengths%s. Use `grep ^%s | cut -f 2-` to extract this part. The columns are: read length, "
        "count\n",
        rl_what[k], rl_tags[k]);
    for (size_t len = 1; len < s.read_lengths[k].size(); ++len)
      if (s.read_lengths[k][len])
        out += format("%s\t%d\t%llu\n", rl_tags[k], int(len), u(s.read_lengths[k][len]));
  }
  out +=
      "# Indel distribution. Use `grep ^ID | cut -f 2-` to extract this part. The columns are: length, "
      "number "
      "of insertions, number of deletions\n";
  for (size_t i = 0; i < s.insertions.size(); ++i)
    if (s.insertions[i] || s.deletions[i])
      out += format("ID\t%d\t%llu\t%llu\n", int(i + 1), u(s.insertions[i]), u(s.deletions[i]));
  out +=
      "# Indels per cycle. Use `grep ^IC | cut -f 2-` to extract this part. The columns are: cycle, number "
      "of "
      "insertions (fwd), .. (rev) , number of deletions (fwd), .. (rev)\n";
  for (const auto& [cycle, n] : s.indel_cycles)
    out += format("IC\t%d\t%llu\t%llu\t%llu\t%llu\n", cycle + 1, u(n[0]), u(n[1]), u(n[2]), u(n[3]));
  out += "# Coverage distribution. Use `grep ^COV | cut -f 2-` to extract this part.\n";
  for (size_t d = 1; d < s.coverage.size(); ++d) {
    if (!s.coverage[d]) continue;
    if (d <= size_t(SamtoolsStats::kMaxCoverage))
      out += format("COV\t[%d-%d]\t%d\t%llu\n", int(d), int(d), int(d), u(s.coverage[d]));
    else
      out += format("COV\t[%d<]\t%d\t%llu\n", SamtoolsStats::kMaxCoverage, SamtoolsStats::kMaxCoverage,
                    u(s.coverage[d]));
  }
  // GC-depth: the bins' GC in percent (all but the last bin, as stats.c does), sorted by GC and depth,
  // then per GC value the depth percentiles scaled to read depth; float arithmetic as stats.c's.
  std::vector<SamtoolsStats::GcDepthBin> gcd = s.gc_depth;
  const size_t ngcd = gcd.size() - 1;  // stats.c's igcd: the index of the last bin
  for (size_t i = 0; i < ngcd; ++i)
    if (gcd[i].depth) gcd[i].gc = float(std::rint(100. * double(gcd[i].gc) / double(gcd[i].depth)));
  std::sort(gcd.begin(), gcd.end(),
            [](const auto& a, const auto& b) { return a.gc < b.gc || (a.gc == b.gc && a.depth < b.depth); });
  auto percentile = [&](size_t from, int n_bins, int p) {
    const float n = float(p) * float(n_bins + 1) / 100.0f;
    const int k = int(n);
    if (k <= 0) return float(gcd[from].depth);
    if (k >= n_bins) return float(gcd[from + size_t(n_bins) - 1].depth);
    const float d = n - float(k);
    return float(gcd[from + size_t(k) - 1].depth) +
           d * float(uint32_t(gcd[from + size_t(k)].depth - gcd[from + size_t(k) - 1].depth));
  };
  out +=
      "# GC-depth. Use `grep ^GCD | cut -f 2-` to extract this part. The columns are: GC%, unique sequence "
      "percentiles, 10th, 25th, 50th, 75th and 90th depth percentile\n";
  for (size_t i = 0; i < ngcd;) {
    int n_bins = 0;
    const float g = gcd[i].gc;
    for (size_t t = i; t < ngcd && std::fabs(gcd[t].gc - g) < 0.1; ++t) ++n_bins;
    out += format("GCD\t%.1f\t%.3f", double(g), double(i + size_t(n_bins) + 1) * 100. / double(ngcd + 1));
    for (int p : {10, 25, 50, 75, 90})
      out += format("\t%.3f",
                    double(percentile(i, n_bins, p) * avg_read_length / float(SamtoolsStats::kGcDepthBin)));
    out += "\n";
    i += size_t(n_bins);
  }
  return out;
}

void write_flagstat(const FlagStat& f, const std::string& path) {
  write_file_atomically(path, flagstat_text(f));
}

void write_samtools_stats(const SamtoolsStats& s, const std::string& bam_name, const std::string& path) {
  write_file_atomically(path, samtools_stats_text(s, bam_name));
}

void write_bcftools_stats(const VcfStats& v, const std::string& vcf_name, const std::string& path) {
  write_file_atomically(path, bcftools_stats_text(v, vcf_name));
}

}  // namespace omicsd
