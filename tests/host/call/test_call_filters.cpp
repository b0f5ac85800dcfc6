// Strand-bias statistics (FS against a brute-force hypergeometric sum, SOR by its formula), site
// annotations, FILTER assignment and the header definitions behind them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "host/call/call_filters.hpp"
#include "host/call/strand_bias.hpp"

namespace omicsd {
namespace {

double choose(int n, int k) {
  double r = 1;
  for (int i = 1; i <= k; ++i) r = r * double(n - k + i) / i;
  return r;
}

// Two-sided Fisher exact p: every table with the observed margins, probability by binomial
// coefficients, summed over those no more likely than the observed one.
double brute_fisher(int a, int b, int c, int d) {
  const int r1 = a + b, r2 = c + d, c1 = a + c, n = r1 + r2;
  const double total = choose(n, c1);
  auto prob = [&](int x) { return choose(r1, x) * choose(r2, c1 - x) / total; };
  const double observed = prob(a);
  double p = 0;
  for (int x = 0; x <= std::min(r1, c1); ++x)
    if (c1 - x <= r2 && prob(x) <= observed * (1 + 1e-7)) p += prob(x);
  return std::min(1.0, p);
}

TEST(StrandBias, FisherMatchesBruteForceOnSmallTables) {
  for (int a = 0; a <= 12; ++a)
    for (int b = 0; b <= 12; ++b)
      for (int c = 0; c <= 12; c += 2)
        for (int d = 0; d <= 12; d += 3) {
          const double want = a + b + c + d == 0 ? 1.0 : brute_fisher(a, b, c, d);
          EXPECT_NEAR(fisher_exact_two_sided(a, b, c, d), want, 1e-9 * std::max(1.0, want))
              << a << " " << b << " " << c << " " << d;
        }
}

TEST(StrandBias, FisherKnownValues) {
  // R: fisher.test(matrix(c(3, 1, 1, 3), 2))$p.value = 0.4857143
  EXPECT_NEAR(fisher_exact_two_sided(3, 1, 1, 3), 0.4857142857, 1e-9);
  // R: fisher.test(matrix(c(10, 0, 0, 10), 2))$p.value = 1.082509e-05
  EXPECT_NEAR(fisher_exact_two_sided(10, 0, 0, 10), 1.082508822e-05, 1e-12);
  EXPECT_DOUBLE_EQ(fisher_exact_two_sided(0, 0, 0, 0), 1.0);
}

TEST(StrandBias, FisherStrandIsPhredOfThePValueAndNormalisesDeepTables) {
  EXPECT_NEAR(fisher_strand(StrandTable{10, 10, 10, 10}), 0.0, 1e-9);
  EXPECT_NEAR(fisher_strand(StrandTable{10, 0, 0, 10}), -10 * std::log10(1.082508822e-05), 1e-6);
  // Above 400 reads the table is scaled to ~200 first (GATK): 1000x a balanced-ish table keeps a
  // moderate FS instead of an astronomical one.
  const StrandTable deep{2600, 2400, 2400, 2600};
  const StrandTable scaled{52, 48, 48, 52};  // 10000 reads / (10000 / 200)
  EXPECT_DOUBLE_EQ(fisher_strand(deep), fisher_strand(scaled));
  EXPECT_LT(fisher_strand(deep), 3.0);
  // Completely one-sided ALT against balanced REF at depth: capped by the 1e-320 floor, finite.
  const double fs = fisher_strand(StrandTable{100, 100, 200, 0});
  EXPECT_TRUE(std::isfinite(fs));
  EXPECT_GT(fs, 60);
}

TEST(StrandBias, StrandOddsRatioFormula) {
  auto sor = [](double rf, double rr, double af, double ar) {
    rf += 1, rr += 1, af += 1, ar += 1;
    const double r = (rf * ar) / (rr * af);
    return std::log(r + 1 / r) + std::log(std::min(rf, rr) / std::max(rf, rr)) -
           std::log(std::min(af, ar) / std::max(af, ar));
  };
  for (int rf : {0, 1, 5, 20})
    for (int rr : {0, 3, 20})
      for (int af : {0, 2, 15})
        for (int ar : {0, 1, 15})
          EXPECT_NEAR(strand_odds_ratio(StrandTable{rf, rr, af, ar}), sor(rf, rr, af, ar), 1e-12);
  EXPECT_NEAR(strand_odds_ratio(StrandTable{10, 10, 10, 10}), std::log(2.0), 1e-12);
  EXPECT_GT(strand_odds_ratio(StrandTable{20, 20, 20, 0}), 3.0);  // ALT on one strand only
}

SiteEvidence good_het_snv() {
  SiteEvidence e;
  e.snv = true;
  e.qual = 500;
  e.depth = 40;
  e.strand = {10, 10, 9, 11};
  e.alt_reads = 20;
  return e;
}

std::vector<std::string> filters_of(const SiteEvidence& e, const CallFilterThresholds& t = {}) {
  return site_filters(e, annotate_site(e), t);
}

TEST(CallFilters, AnnotationsAreTheirDefinitions) {
  SiteEvidence e = good_het_snv();
  e.mapq_zero = 10;
  e.alt_mismatch_heavy = 5;
  const SiteAnnotations a = annotate_site(e);
  EXPECT_DOUBLE_EQ(a.qd, 500.0 / 40);
  EXPECT_DOUBLE_EQ(a.mq0f, 10.0 / 50);
  EXPECT_DOUBLE_EQ(a.mmf, 5.0 / 20);
  EXPECT_DOUBLE_EQ(a.fs, fisher_strand(e.strand));
  EXPECT_DOUBLE_EQ(a.sor, strand_odds_ratio(e.strand));
  // No reads: nothing divides by zero.
  const SiteAnnotations none = annotate_site(SiteEvidence{});
  EXPECT_EQ(none.qd, 0);
  EXPECT_EQ(none.mq0f, 0);
  EXPECT_EQ(none.mmf, 0);
}

TEST(CallFilters, EachRuleFiresOnItsOwnAndPassOtherwise) {
  EXPECT_TRUE(filters_of(good_het_snv()).empty());

  SiteEvidence e = good_het_snv();
  e.qual = 15;
  EXPECT_EQ(filters_of(e), (std::vector<std::string>{"LowQual", "LowQD"}));

  e = good_het_snv();
  e.qual = 70;  // QD 1.75
  EXPECT_EQ(filters_of(e), (std::vector<std::string>{"LowQD"}));

  // ALT only on the forward strand: FS ~ 70 for an SNV ...
  e = good_het_snv();
  e.strand = {10, 10, 20, 0};
  EXPECT_EQ(filters_of(e), (std::vector<std::string>{"StrandBias"}));
  // ... but within the (laxer) indel thresholds.
  e.snv = false;
  EXPECT_TRUE(filters_of(e).empty()) << annotate_site(e).fs << " " << annotate_site(e).sor;
  // SOR alone: 6 / 4 REF against 1 / 14 ALT is FS ~ 8 but SOR ~ 4.3.
  e = good_het_snv();
  e.strand = {6, 4, 1, 14};
  EXPECT_LT(annotate_site(e).fs, 60);
  EXPECT_GT(annotate_site(e).sor, 4);
  EXPECT_EQ(filters_of(e), (std::vector<std::string>{"StrandBias"}));
  // A hom-alt site with no REF reads: SOR is inflated by the pseudo-counts and not used.
  e.strand = {0, 0, 16, 0};
  EXPECT_GT(annotate_site(e).sor, 4);
  EXPECT_TRUE(filters_of(e).empty());

  e = good_het_snv();
  e.mapq_zero = 41;  // MQ0F 41 / 81 > 0.5 ...
  e.rms_mapq = 29;   // ... and the scored reads weakly placed
  EXPECT_EQ(filters_of(e), (std::vector<std::string>{"LowMQ"}));
  e.rms_mapq = 30;  // well-placed distinguishing reads: a true variant in a repeat
  EXPECT_TRUE(filters_of(e).empty());
  e.rms_mapq = 20;
  e.mapq_zero = 40;  // exactly half
  EXPECT_TRUE(filters_of(e).empty());

  e = good_het_snv();
  e.alt_mismatch_heavy = 17;  // 0.85 of 20
  EXPECT_EQ(filters_of(e), (std::vector<std::string>{"ExcessMismatch"}));
  e.alt_reads = 2;  // a high share of too few reads is not enough
  e.alt_mismatch_heavy = 2;
  EXPECT_TRUE(filters_of(e).empty());

  e = good_het_snv();
  e.strand = {0, 12, 0, 6};  // every read reverse, REF and ALT alike: FS/SOR see nothing ...
  e.repeat_density = 0.7;    // ... in a dense tandem-repeat stretch
  EXPECT_EQ(filters_of(e), (std::vector<std::string>{"RepeatOneStrand"}));
  e.repeat_density = 0.4;  // one-sided coverage of unique sequence (next to an unplaceable repeat copy)
  EXPECT_TRUE(filters_of(e).empty());
  e.repeat_density = 0.7;
  e.near_contig_end = true;
  EXPECT_TRUE(filters_of(e).empty());
  e.near_contig_end = false;
  e.strand = {0, 6, 0, 4};  // 10 reads: one-sided by chance too often to filter
  EXPECT_TRUE(filters_of(e).empty());

  // Thresholds are parameters.
  CallFilterThresholds strict;
  strict.min_qd = 20;
  EXPECT_EQ(filters_of(good_het_snv(), strict), (std::vector<std::string>{"LowQD"}));
}

TEST(CallFilters, HeaderDefinitionsCoverEveryFilterAndInfo) {
  std::set<std::string> filter_ids;
  for (const VcfFilterDef& f : call_filter_definitions()) {
    EXPECT_FALSE(f.description.empty()) << f.id;
    EXPECT_TRUE(filter_ids.insert(f.id).second) << f.id;
  }
  EXPECT_EQ(filter_ids, (std::set<std::string>{"LowQual", "LowQD", "StrandBias", "LowMQ", "ExcessMismatch",
                                               "RepeatOneStrand"}));
  // The thresholds are stated in the descriptions users read.
  CallFilterThresholds t;
  t.min_qual = 30;
  EXPECT_EQ(call_filter_definitions(t)[0].description, "QUAL below 30");
  EXPECT_NE(call_filter_definitions()[2].description.find("FS above 60 (SNV) / 200 (indel)"),
            std::string::npos);

  const std::vector<VcfInfoDef> infos = call_info_definitions();
  std::set<std::string> info_ids;
  for (const VcfInfoDef& d : infos) info_ids.insert(d.id);
  // Every INFO a record gets is declared, with the declared type.
  SiteEvidence e = good_het_snv();
  e.repeat = RepeatContext{2, 100, 110};
  e.repeat_unit = "AT";
  VcfRecord rec;
  add_site_info(rec, e, annotate_site(e));
  std::set<std::string> written;
  for (const VcfInfoValue& v : rec.info) {
    written.insert(v.id);
    const auto def =
        std::find_if(infos.begin(), infos.end(), [&](const VcfInfoDef& d) { return d.id == v.id; });
    ASSERT_NE(def, infos.end()) << v.id;
    static const char* kTypeName[] = {"Flag", "Integer", "Float", "String"};
    EXPECT_EQ(def->type, kTypeName[int(v.kind)]) << v.id;
    if (v.kind == VcfInfoValue::Kind::kInteger)
      EXPECT_EQ(def->number, std::to_string(v.integers.size())) << v.id;
  }
  EXPECT_EQ(written, info_ids);
  // Outside a repeat: no STR/RU/RL.
  VcfRecord plain;
  add_site_info(plain, good_het_snv(), annotate_site(good_het_snv()));
  for (const VcfInfoValue& v : plain.info) EXPECT_TRUE(v.id != "STR" && v.id != "RU" && v.id != "RL") << v.id;
}

}  // namespace
}  // namespace omicsd
