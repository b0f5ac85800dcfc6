#include "host/qc/qc_html.hpp"

#include <algorithm>
#include <map>

#include "host/common/durable_file.hpp"
#include "host/qc/svg_plot.hpp"
#include "omicsd_version.hpp"

namespace omicsd {
namespace {

using ojson = nlohmann::ordered_json;

// Labels of the summary numbers (JSON paths of QcReport::to_json); a path without one shows as is.
const std::map<std::string, std::string>& labels() {
  static const std::map<std::string, std::string> m = {
      {"reads", "Reads (primary records)"},
      {"mapped", "Mapped reads"},
      {"mapped_pct", "Mapped (%)"},
      {"paired", "Paired reads"},
      {"properly_paired", "Properly paired reads"},
      {"properly_paired_pct", "Properly paired (% of paired)"},
      {"duplicates", "Duplicates"},
      {"duplicate_pct", "Duplicates (% of mapped)"},
      {"duplicates_estimated", "Duplicates estimated (none flagged)"},
      {"depth.mean", "Mean depth"},
      {"depth.median", "Median depth"},
      {"depth.fraction_ge_10x", "Fraction of bases at >= 10x"},
      {"depth.fraction_ge_20x", "Fraction of bases at >= 20x"},
      {"insert_size.pairs", "Insert size: pairs"},
      {"insert_size.median", "Insert size: median"},
      {"insert_size.mean", "Insert size: mean"},
      {"insert_size.sd", "Insert size: standard deviation"},
      {"variants.snvs", "SNVs (PASS)"},
      {"variants.indels", "Indels (PASS)"},
      {"variants.transitions", "Transitions"},
      {"variants.transversions", "Transversions"},
      {"variants.ti_tv", "Ti/Tv"},
      {"variants.het", "Heterozygous calls"},
      {"variants.hom_alt", "Homozygous alternate calls"},
      {"variants.het_hom_ratio", "Het/hom ratio"}};
  return m;
}

void summary_rows(const ojson& j, const std::string& prefix, std::string& out) {
  for (const auto& [k, v] : j.items()) {
    const std::string path = prefix.empty() ? k : prefix + "." + k;
    if (path == "distributions") continue;
    if (v.is_object()) {
      summary_rows(v, path, out);
      continue;
    }
    const auto l = labels().find(path);
    out += "<tr><th scope=\"row\">" + xml_escape(l == labels().end() ? path : l->second) +
           "</th><td data-qc=\"" + xml_escape(path) + "\">" + xml_escape(v.dump()) + "</td></tr>\n";
  }
}

std::string figure(const std::string& svg, const std::string& caption) {
  return "<figure>" + svg + "<figcaption>" + xml_escape(caption) + "</figcaption></figure>\n";
}

template <class Map>
PlotSeries series_of(const std::string& name, const Map& m) {
  PlotSeries s{name, {}};
  for (const auto& [x, n] : m) s.points.emplace_back(double(x), double(n));
  return s;
}

std::string plots(const QcReport& q) {
  std::string out;
  // Coverage: bases at each depth, as a share of the bases that are not N.
  uint64_t bases = 0;
  for (uint64_t n : q.depth_histogram) bases += n;
  PlotSeries depth{"bases", {}};
  for (size_t d = 0; d < q.depth_histogram.size(); ++d)
    depth.points.emplace_back(double(d), bases ? 100.0 * double(q.depth_histogram[d]) / double(bases) : 0.0);
  out += figure(svg_xy_plot({"Coverage distribution", "depth", "% of bases", true}, {depth}),
                "Share of reference bases (not N) at each depth, from primary reads with MAPQ >= 1.");
  // Per-contig depth: the 40 longest contigs (a human reference has thousands).
  std::vector<const QcReport::ContigDepth*> contigs;
  for (const auto& c : q.contig_depth) contigs.push_back(&c);
  std::stable_sort(contigs.begin(), contigs.end(), [](auto* a, auto* b) { return a->bases > b->bases; });
  if (contigs.size() > 40) contigs.resize(40);
  std::vector<std::pair<std::string, double>> per_contig;
  for (const auto* c : contigs)
    per_contig.emplace_back(c->name, c->bases ? double(c->depth_sum) / double(c->bases) : 0.0);
  out += figure(svg_category_bars({"Mean depth per contig", "contig", "mean depth", true}, per_contig),
                q.contig_depth.size() > 40
                    ? "The 40 longest of " + std::to_string(q.contig_depth.size()) + " contigs."
                    : "Every contig of the reference.");
  out += figure(
      svg_xy_plot({"Insert size", "insert size (bp)", "pairs", true}, {series_of("pairs", q.insert_sizes)}),
      "|TLEN| of properly paired read 1 records.");
  std::vector<PlotSeries> qual;
  for (int m = 0; m < 2; ++m) {
    PlotSeries s{m == 0 ? "read 1" : "read 2", {}};
    for (size_t i = 0; i < q.quality_by_cycle[m].size(); ++i)
      s.points.emplace_back(double(i + 1), q.quality_by_cycle[m][i]);
    if (!s.points.empty()) qual.push_back(std::move(s));
  }
  out += figure(svg_xy_plot({"Base quality by cycle", "cycle", "mean base quality", false}, qual),
                "Mean Phred base quality at each sequencing cycle (reverse-strand records reversed).");
  const auto pct = [](uint64_t a, uint64_t b) { return b ? 100.0 * double(a) / double(b) : 0.0; };
  out +=
      figure(svg_category_bars({"Read rates", "", "% of reads", false},
                               {{"mapped", pct(q.mapped, q.reads)},
                                {"properly paired", pct(q.properly_paired, q.paired)},
                                {"duplicates", pct(q.duplicates, q.mapped)}}),
             "Mapped (of primary reads), properly paired (of paired reads), duplicates (of mapped reads).");
  if (q.have_vcf) {
    out += figure(svg_category_bars({"Variants by type", "", "PASS calls", false},
                                    {{"SNVs", double(q.snvs)},
                                     {"indels", double(q.indels)},
                                     {"transitions", double(q.transitions)},
                                     {"transversions", double(q.transversions)},
                                     {"het", double(q.het)},
                                     {"hom alt", double(q.hom_alt)}}),
                  "PASS calls with a non-reference genotype.");
    out += figure(svg_xy_plot({"Indel length", "length (deletions negative)", "indels", true},
                              {series_of("indels", q.indel_lengths)}),
                  "ALT minus REF length of PASS indel calls.");
    std::map<size_t, uint64_t> gq;
    for (size_t i = 0; i < q.gq_histogram.size(); ++i)
      if (q.gq_histogram[i]) gq[i] = q.gq_histogram[i];
    out += figure(svg_xy_plot({"Genotype quality", "GQ", "calls", true}, {series_of("calls", gq)}),
                  "FORMAT/GQ of PASS calls with a non-reference genotype.");
  }
  return out;
}

}  // namespace

std::string qc_report_html(const QcReport& q, const std::string& sample, const nlohmann::json& provenance) {
  const ojson j = ojson::parse(q.to_json());
  std::string rows;
  summary_rows(j, "", rows);
  std::string html = R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>)" + xml_escape(sample) +
                     R"( · omicsd QC report</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1320px;padding:16px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
td[data-qc]{text-align:right;font-variant-numeric:tabular-nums}
.plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;max-width:100%}figure svg{max-width:100%;height:auto}
figcaption{font-size:.85em;color:#555;max-width:640px}pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:.85em}
</style>
</head>
<body>
<main>
<h1>QC report: <span id="sample">)" +
                     xml_escape(sample) + R"(</span></h1>
<p>Written by omicsd )" +
                     xml_escape(kVersion) + " (git " + xml_escape(kGitHash) +
                     R"(). Every number below is the QC JSON's.</p>
<h2 id="summary">Summary</h2>
<table aria-labelledby="summary">
<tbody>
)" + rows + R"(</tbody>
</table>
<h2>Plots</h2>
<div class="plots">
)" + plots(q) + R"(</div>
<h2 id="provenance">Provenance</h2>
<pre aria-labelledby="provenance">)" +
                     xml_escape(provenance.is_null() ? std::string("{}") : provenance.dump(2)) + R"(</pre>
</main>
</body>
</html>
)";
  return html;
}

void write_qc_report_html(const QcReport& q, const std::string& sample, const nlohmann::json& provenance,
                          const std::string& path) {
  write_file_atomically(path, qc_report_html(q, sample, provenance));
}

}  // namespace omicsd
