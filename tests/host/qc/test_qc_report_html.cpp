// The HTML report (host/qc/qc_html.hpp) of real NA12878 reads and omicsd's calls on them: every summary
// number the QC JSON holds appears once, as the JSON writes it, and nothing else claims to be one; the plots
// are inline SVG with data in them; the file needs nothing outside itself (no scripts, no external URLs).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "host/call/call_options.hpp"
#include "host/io/reference.hpp"
#include "host/qc/qc_html.hpp"
#include "host/qc/qc_report.hpp"
#include "tests/support/test_support.hpp"

using namespace omicsd;
namespace fs = std::filesystem;

namespace {

void flatten(const nlohmann::ordered_json& j, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  for (const auto& [k, v] : j.items()) {
    const std::string path = prefix.empty() ? k : prefix + "." + k;
    if (path == "distributions") continue;
    if (v.is_object())
      flatten(v, path, out);
    else
      out[path] = v.dump();
  }
}

std::string unescape(std::string s) {
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"&quot;", "\""}, {"&#39;", "'"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}}) {
    for (size_t p; (p = s.find(from)) != std::string::npos;) s.replace(p, from.size(), to);
  }
  return s;
}

TEST(QcReportHtml, NumbersAreTheQcJsonsAndThePageStandsAlone) {
  const fs::path tiny = test::shared_data_dir() / "na12878-chr22-tiny";
  if (!fs::exists(tiny / "NA12878.chr22.tiny.bam")) GTEST_SKIP() << "shared data missing";
  test::TempDir dir;
  CallOptions c;
  c.reference = (tiny / "q.fa").string();
  c.bam = (tiny / "NA12878.chr22.tiny.bam").string();
  c.output = (dir.path / "calls.vcf.gz").string();
  c.threads = 2;
  run_call(c);
  const QcReport q = compute_qc(c.bam, Reference::load(c.reference), c.output);
  const nlohmann::json prov = {{"sample", "NA12878 <&>"}, {"inputs", {{"bam", "x.bam"}}}};
  const std::string html = qc_report_html(q, "NA12878 <&>", prov);

  std::map<std::string, std::string> want;
  flatten(nlohmann::ordered_json::parse(q.to_json()), "", want);
  ASSERT_GT(want.size(), 20u);
  std::map<std::string, std::string> got;
  const std::regex cell(R"re(data-qc="([^"]+)">([^<]*)<)re");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), cell); it != std::sregex_iterator(); ++it) {
    const std::string key = unescape((*it)[1]);
    EXPECT_FALSE(got.count(key)) << key << " shown twice";
    got[key] = unescape((*it)[2]);
  }
  EXPECT_EQ(got, want);

  // Plots: inline SVG with bars/lines, and the distributions behind them are not empty.
  size_t svgs = 0;
  for (size_t p = 0; (p = html.find("<svg ", p)) != std::string::npos; ++p) ++svgs;
  EXPECT_GE(svgs, 8u);
  EXPECT_NE(html.find("<rect "), std::string::npos);
  EXPECT_NE(html.find("<polyline "), std::string::npos);
  EXPECT_FALSE(q.depth_histogram.empty());
  EXPECT_FALSE(q.insert_sizes.empty());
  EXPECT_EQ(q.quality_by_cycle[0].size(), 151u);  // HiSeq X 151 bp reads
  EXPECT_EQ(q.contig_depth.size(), 1u);
  uint64_t gq = 0;
  for (uint64_t n : q.gq_histogram) gq += n;
  EXPECT_GT(q.snvs, 10u);
  EXPECT_EQ(gq, q.het + q.hom_alt);  // every call omicsd makes carries GQ

  // Self-contained and escaped: no scripts, nothing fetched, the sample name escaped.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(std::regex_search(html, std::regex(R"((src|href)=)")), false);
  EXPECT_EQ(html.find("NA12878 <&>"), std::string::npos);
  EXPECT_NE(html.find("NA12878 &lt;&amp;&gt;"), std::string::npos);
}

TEST(QcReportHtml, ReadsWithoutCallsGiveAPageWithoutVariantNumbers) {
  const fs::path tiny = test::shared_data_dir() / "na12878-chr22-tiny";
  if (!fs::exists(tiny / "NA12878.chr22.tiny.bam")) GTEST_SKIP() << "shared data missing";
  const QcReport q =
      compute_qc((tiny / "NA12878.chr22.tiny.bam").string(), Reference::load((tiny / "q.fa").string()));
  const std::string html = qc_report_html(q, "s", nullptr);
  EXPECT_EQ(html.find("data-qc=\"variants."), std::string::npos);
  EXPECT_NE(html.find("data-qc=\"depth.mean\""), std::string::npos);
}

}  // namespace
