// Variant store (service/stores/variant_store.hpp) and its routes, on SQLite and on PostgreSQL (skipped when
// no server binaries are installed): ingest rules, replacement, idempotency, paging, and a property
// test of every query against a brute-force model of random cohorts.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "service/db/sql_db.hpp"
#include "service/http/http_router.hpp"
#include "service/stores/variant_routes.hpp"
#include "service/stores/variant_store.hpp"
#include "tests/support/test_support.hpp"

using nlohmann::json;
using namespace omicsd;
namespace fs = std::filesystem;

namespace {

constexpr int64_t T0 = 1'700'000'000'000;

// VCF text: the header (contigs c1, c2, q) and one sample column.
std::string vcf_header(const std::string& sample = "S") {
  return "##fileformat=VCFv4.2\n"
         "##contig=<ID=c1,length=100000>\n##contig=<ID=c2,length=100000>\n##contig=<ID=q,length=12356>\n"
         "##FILTER=<ID=PASS,Description=\"All filters passed\">\n"
         "##FILTER=<ID=LowQual,Description=\"Low quality\">\n"
         "##ALT=<ID=NON_REF,Description=\"Any other allele\">\n"
         "##INFO=<ID=END,Number=1,Type=Integer,Description=\"End of block\">\n"
         "##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n"
         "##FORMAT=<ID=GQ,Number=1,Type=Integer,Description=\"Genotype quality\">\n"
         "##FORMAT=<ID=DP,Number=1,Type=Integer,Description=\"Depth\">\n"
         "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" +
         sample + "\n";
}
// One record: chrom pos ref alt filter gt [gq dp].
std::string rec(const std::string& chrom, int64_t pos, const std::string& ref, const std::string& alt,
                const std::string& filter, const std::string& gt, const std::string& gq = "50",
                const std::string& dp = "30", const std::string& info = ".") {
  return chrom + "\t" + std::to_string(pos) + "\t.\t" + ref + "\t" + alt + "\t50\t" + filter + "\t" + info +
         "\tGT:GQ:DP\t" + gt + ":" + gq + ":" + dp + "\n";
}

VariantSampleInfo sample(const std::string& id, const std::string& run,
                         std::map<std::string, std::string> tags = {}) {
  VariantSampleInfo s;
  s.sample_id = id;
  s.subject_id = "subj-" + id;
  s.run_id = run;
  s.readset_id = "rs-" + id;
  s.reference_id = "ref-1";
  s.tags = std::move(tags);
  return s;
}

class VariantStoreTest : public ::testing::TestWithParam<test::StoreBackend> {
 protected:
  void SetUp() override {
    url_ = test::store_database_url(GetParam(), dir_.path / "variants.db", pg_);
    if (url_.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
    reopen();
  }
  void reopen() {
    store_.reset();
    db_ = sql::open_db(url_, "variant store");
    store_ = std::make_unique<VariantStore>(*db_);
  }
  fs::path write_vcf(const std::string& name, const std::string& body, const std::string& sample = "S") {
    const fs::path p = dir_.path / name;
    test::write_file(p, vcf_header(sample) + body);
    return p;
  }
  VariantIngestResult ingest(const fs::path& vcf, const VariantSampleInfo& info, bool all_sites = false) {
    VariantIngestOptions o;
    o.all_sites = all_sites;
    return store_->ingest_vcf(vcf.string(), info, o, T0);
  }
  // Every carrier of v (all pages), as "sample:gt:zygosity:copies:gq:dp".
  std::vector<std::string> carriers(const std::string& v, int page_size = 0) {
    std::vector<std::string> out;
    VariantPageRequest page{page_size, ""};
    for (int guard = 0; guard < 10000; ++guard) {
      const CarrierPage p = store_->carriers(parse_variant(v), page);
      for (const auto& c : p.carriers)
        out.push_back(c.sample_id + ":" + c.gt + ":" + to_string(c.zygosity) + ":" +
                      std::to_string(c.alt_copies) + ":" + (c.gq ? std::to_string(*c.gq) : ".") + ":" +
                      (c.dp ? std::to_string(*c.dp) : "."));
      if (p.next_page_token.empty()) break;
      page.page_token = p.next_page_token;
    }
    return out;
  }
  AlleleCounts counts(const std::string& v) { return store_->frequencies(parse_variant(v), {}).sites.at(0); }

  test::TempDir dir_;
  std::unique_ptr<test::PostgresDatabase> pg_;
  std::string url_;
  std::unique_ptr<sql::Db> db_;
  std::unique_ptr<VariantStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, VariantStoreTest, test::store_backends(), test::StoreBackendName{});

TEST(VariantKeys, ParseAndNormalize) {
  EXPECT_EQ(parse_variant("chr22:123:a:g").to_string(), "chr22:123:A:G");
  EXPECT_EQ(parse_variant("HLA:X:5:A:T").chrom, "HLA:X");
  // Split multi-allelic indel ATT>AT is the deletion AT>A; shared leading bases move pos.
  EXPECT_EQ(parse_variant("c1:10:ATT:AT").to_string(), "c1:10:AT:A");
  EXPECT_EQ(parse_variant("c1:10:CAT:CAG").to_string(), "c1:12:T:G");
  for (const char* bad :
       {"chr22:123:A", "chr22:x:A:G", ":1:A:G", "c1:0:A:G", "c1:5:A:A", "c1:5:A:<DEL>", "c1:5::G"})
    EXPECT_THROW(parse_variant(bad), InputError) << bad;
  auto r = parse_region("chr1:1,000-2,000");
  EXPECT_EQ(r.chrom, "chr1");
  EXPECT_EQ(r.start, 1000);
  EXPECT_EQ(r.end, 2000);
  EXPECT_EQ(parse_region("chr1:5").end, 5);
  EXPECT_EQ(parse_region("chr1").end, INT64_MAX);
  EXPECT_EQ(parse_region("chr1:7-").start, 7);
  for (const char* bad : {"", "chr1:9-3", "chr1:a-b", ":1-2", "chr1:0-5"})
    EXPECT_THROW(parse_region(bad), InputError) << bad;
}

// Names with '*' and ':' (GRCh38's HLA alleles) follow samtools' rule through htslib: braces, and the
// whole text looked up as a name first.
TEST(VariantKeys, RegionsWithColonsInNames) {
  const auto hla = [](const std::string& c) { return c == "HLA-A*01:01:01:01" || c == "chr1"; };
  VariantRegion r = parse_region("HLA-A*01:01:01:01", hla);
  EXPECT_EQ(r.chrom, "HLA-A*01:01:01:01");
  EXPECT_EQ(r.start, 1);
  EXPECT_EQ(r.end, INT64_MAX);
  r = parse_region("{HLA-A*01:01:01:01}:100-200", hla);
  EXPECT_EQ(r.chrom, "HLA-A*01:01:01:01");
  EXPECT_EQ(r.start, 100);
  EXPECT_EQ(r.end, 200);
  // Only the prefix is a contig: the trailing range belongs to it.
  r = parse_region("HLA-A*01:01:01:01:100-200", hla);
  EXPECT_EQ(r.chrom, "HLA-A*01:01:01:01");
  EXPECT_EQ(r.start, 100);
  EXPECT_EQ(r.end, 200);
  r = parse_region("{chr1}:1,000-2,000", hla);
  EXPECT_EQ(r.chrom, "chr1");
  EXPECT_EQ(r.end, 2000);
  // Both readings name a contig: refused, with the braces spelled out.
  const auto both = [](const std::string& c) { return c == "HLA-A*01:01" || c == "HLA-A*01:01:100-200"; };
  try {
    parse_region("HLA-A*01:01:100-200", both);
    ADD_FAILURE() << "ambiguous region accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("{HLA-A*01:01}:100-200"), std::string::npos) << e.what();
  }
  // Unknown to the store: parsed by syntax (an empty page, not an error), braces or not.
  r = parse_region("{HLA-B*07:02:01:01}:5-9", hla);
  EXPECT_EQ(r.chrom, "HLA-B*07:02:01:01");
  EXPECT_EQ(r.start, 5);
  r = parse_region("chr9:5-9", hla);
  EXPECT_EQ(r.chrom, "chr9");
  EXPECT_EQ(r.end, 9);
  for (const char* bad : {"{HLA-A*01:01:01:01", "{chr1}:0-5", "{chr1}:9-3"})
    EXPECT_THROW(parse_region(bad, hla), InputError) << bad;
}

// Acceptance: the GIAB truth VCF of the NA12878 chr22 stretch; every truth SNV comes back with its GT.
TEST_P(VariantStoreTest, RealTruthVcf) {
  const fs::path truth = test::shared_data_dir() / "na12878-chr22-tiny" / "truth.vcf.gz";
  ASSERT_TRUE(fs::exists(truth)) << truth;
  const auto res = ingest(truth, sample("NA12878", "run-1"));
  EXPECT_EQ(res.records, 14);
  EXPECT_EQ(res.genotypes, 14);
  EXPECT_EQ(res.new_sites, 14);
  const std::set<std::string> snvs = test::vcf_snvs(truth);  // "POS REF ALT GT"
  ASSERT_EQ(snvs.size(), 14u);
  for (const std::string& line : snvs) {
    std::istringstream in(line);
    std::string pos, ref, alt, gt;
    in >> pos >> ref >> alt >> gt;
    const CarrierPage p = store_->carriers(parse_variant("q:" + pos + ":" + ref + ":" + alt), {});
    ASSERT_TRUE(p.site_known) << line;
    ASSERT_EQ(p.carriers.size(), 1u) << line;
    const VariantCall& c = p.carriers[0];
    EXPECT_EQ(c.sample_id, "NA12878");
    EXPECT_EQ(c.subject_id, "subj-NA12878");
    EXPECT_EQ(c.gt, gt) << line;
    const bool hom = gt == "1/1" || gt == "1|1";
    EXPECT_EQ(c.zygosity, hom ? Zygosity::hom_alt : Zygosity::het) << line;
    EXPECT_EQ(p.counts.ac, hom ? 2 : 1);
    EXPECT_EQ(p.counts.an, 2);
    EXPECT_FALSE(c.gq.has_value());  // the truth VCF carries GT only
  }
  const RegionPage all = store_->region(parse_region("q:1-12356"), std::string("NA12878"), {});
  EXPECT_EQ(all.genotypes.size(), 14u);
  EXPECT_TRUE(std::is_sorted(all.genotypes.begin(), all.genotypes.end(),
                             [](const auto& a, const auto& b) { return a.site.pos < b.site.pos; }));
  EXPECT_EQ(store_->carriers(parse_variant("q:186:T:G"), {}).carriers.size(), 0u);
  EXPECT_FALSE(store_->carriers(parse_variant("q:186:T:G"), {}).site_known);
  const auto s = store_->get_sample("NA12878");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->genotypes, 14);
  EXPECT_EQ(s->vcf_sample, "NA12878");
  EXPECT_EQ(s->run_id, "run-1");
  EXPECT_TRUE(store_->has_run("run-1"));
  EXPECT_EQ(store_->ingested_runs(), std::set<std::string>{"run-1"});
}

TEST_P(VariantStoreTest, ReingestReplacesAtomically) {
  ingest(
      write_vcf("a1.vcf", rec("c1", 100, "A", "G", "PASS", "0/1") + rec("c1", 200, "C", "T", "PASS", "1/1")),
      sample("S1", "r1"));
  ingest(write_vcf("b.vcf", rec("c1", 200, "C", "T", "PASS", "0/1")), sample("S2", "r2"));
  EXPECT_EQ(counts("c1:200:C:T").ac, 3);
  // A re-run of S1: c1:100 is gone, c1:200 is het now, c1:300 is new.
  const auto r = ingest(write_vcf("a2.vcf", rec("c1", 200, "C", "T", "PASS", "0/1", "60") +
                                                rec("c1", 300, "G", "A", "PASS", "0/1")),
                        sample("S1", "r3", {{"cohort", "x"}}));
  EXPECT_TRUE(r.replaced);
  EXPECT_EQ(r.new_sites, 1);
  EXPECT_TRUE(carriers("c1:100:A:G").empty());
  EXPECT_EQ(carriers("c1:200:C:T"), (std::vector<std::string>{"S1:0/1:HET:1:60:30", "S2:0/1:HET:1:50:30"}));
  EXPECT_EQ(carriers("c1:300:G:A").size(), 1u);
  const AlleleCounts c = counts("c1:200:C:T");
  EXPECT_EQ(c.ac, 2);
  EXPECT_EQ(c.an, 4);
  EXPECT_EQ(c.n_het, 2);
  EXPECT_EQ(c.n_hom_alt, 0);
  EXPECT_DOUBLE_EQ(c.af, 0.5);
  EXPECT_EQ(store_->sample_count(), 2);
  EXPECT_EQ(store_->get_sample("S1")->run_id, "r3");
  EXPECT_EQ(store_->get_sample("S1")->tags, (std::map<std::string, std::string>{{"cohort", "x"}}));
  EXPECT_EQ(store_->ingested_runs(), (std::set<std::string>{"r1", "r2", "r3"}));
  // Deleting keeps the runs recorded (a catch-up does not bring the sample back).
  EXPECT_TRUE(store_->delete_sample("S1"));
  EXPECT_FALSE(store_->delete_sample("S1"));
  EXPECT_EQ(carriers("c1:200:C:T"), (std::vector<std::string>{"S2:0/1:HET:1:50:30"}));
  EXPECT_EQ(counts("c1:200:C:T").an, 2);
  EXPECT_TRUE(store_->has_run("r3"));
  EXPECT_FALSE(store_->get_sample("S1"));
}

TEST_P(VariantStoreTest, SameRunIsIdempotent) {
  const fs::path v = write_vcf("a.vcf", rec("c1", 100, "A", "G", "PASS", "0/1"));
  const auto first = ingest(v, sample("S1", "r1"));
  EXPECT_FALSE(first.already_ingested);
  EXPECT_EQ(first.genotypes, 1);
  // The same run again (a redelivered completion, a catch-up after a crash): nothing changes, even
  // if the file were different.
  test::write_file(
      v, vcf_header() + rec("c1", 100, "A", "G", "PASS", "1/1") + rec("c1", 5, "A", "C", "PASS", "0/1"));
  const auto again = ingest(v, sample("S1", "r1"));
  EXPECT_TRUE(again.already_ingested);
  EXPECT_EQ(again.genotypes, 0);
  EXPECT_EQ(carriers("c1:100:A:G"), (std::vector<std::string>{"S1:0/1:HET:1:50:30"}));
  EXPECT_TRUE(carriers("c1:5:A:C").empty());
  EXPECT_EQ(counts("c1:100:A:G").ac, 1);
  // force re-reads it.
  VariantIngestOptions o;
  o.force = true;
  const auto forced = store_->ingest_vcf(v.string(), sample("S1", "r1"), o, T0 + 1);
  EXPECT_TRUE(forced.replaced);
  EXPECT_EQ(carriers("c1:100:A:G"), (std::vector<std::string>{"S1:1/1:HOM_ALT:2:50:30"}));
  EXPECT_EQ(counts("c1:100:A:G").ac, 2);
  EXPECT_EQ(store_->sample_count(), 1);
  // Survives reopening (schema migration is a no-op the second time).
  reopen();
  EXPECT_EQ(carriers("c1:5:A:C").size(), 1u);
}

TEST_P(VariantStoreTest, MultiAllelicRecordsSplitPerAlt) {
  ingest(write_vcf("m.vcf", rec("c1", 10, "A", "C,G", "PASS", "1/2") +         // het for C and for G
                                rec("c1", 20, "A", "C,T", "PASS", "2/2") +     // hom T, no C
                                rec("c1", 30, "ATT", "A,AT", "PASS", "1|2") +  // two deletions
                                rec("c1", 40, "G", "A,C", "PASS", "0/2")),
         sample("S1", "r1"));
  EXPECT_EQ(carriers("c1:10:A:C"), (std::vector<std::string>{"S1:1/2:HET:1:50:30"}));
  EXPECT_EQ(carriers("c1:10:A:G"), (std::vector<std::string>{"S1:1/2:HET:1:50:30"}));
  EXPECT_EQ(carriers("c1:20:A:T"), (std::vector<std::string>{"S1:2/2:HOM_ALT:2:50:30"}));
  EXPECT_TRUE(carriers("c1:20:A:C").empty());
  EXPECT_EQ(carriers("c1:30:ATT:A"), (std::vector<std::string>{"S1:1|2:HET:1:50:30"}));
  // ATT>AT is stored (and found) as its minimal form AT>A.
  EXPECT_EQ(carriers("c1:30:ATT:AT"), (std::vector<std::string>{"S1:1|2:HET:1:50:30"}));
  EXPECT_EQ(carriers("c1:30:AT:A"), (std::vector<std::string>{"S1:1|2:HET:1:50:30"}));
  EXPECT_EQ(carriers("c1:40:G:C").size(), 1u);
  EXPECT_TRUE(carriers("c1:40:G:A").empty());
  const RegionPage r = store_->region(parse_region("c1:1-100"), std::nullopt, {});
  std::vector<std::string> sites;
  for (const auto& g : r.genotypes) sites.push_back(g.site.to_string());
  EXPECT_EQ(sites, (std::vector<std::string>{"c1:10:A:C", "c1:10:A:G", "c1:20:A:T", "c1:30:AT:A",
                                             "c1:30:ATT:A", "c1:40:G:C"}));
}

TEST_P(VariantStoreTest, FilterHandling) {
  const std::string body = rec("c1", 1, "A", "G", "PASS", "0/1") + rec("c1", 2, "A", "G", ".", "0/1") +
                           rec("c1", 3, "A", "G", "LowQual", "0/1") +
                           rec("c1", 4, "A", "G", "LowQual;q10", "1/1");
  const auto r = ingest(write_vcf("f.vcf", body), sample("S1", "r1"));
  EXPECT_EQ(r.records, 4);
  EXPECT_EQ(r.skipped_filter, 2);
  EXPECT_EQ(r.genotypes, 2);
  EXPECT_EQ(carriers("c1:1:A:G").size(), 1u);
  EXPECT_EQ(carriers("c1:2:A:G").size(), 1u);
  EXPECT_TRUE(carriers("c1:3:A:G").empty());
  // all_sites keeps them, with the FILTER value reported.
  const auto all = ingest(write_vcf("f2.vcf", body), sample("S2", "r2"), true);
  EXPECT_EQ(all.genotypes, 4);
  const CarrierPage p = store_->carriers(parse_variant("c1:4:A:G"), {});
  ASSERT_EQ(p.carriers.size(), 1u);
  EXPECT_EQ(p.carriers[0].filters, "LowQual;q10");
  EXPECT_EQ(store_->carriers(parse_variant("c1:1:A:G"), {}).carriers.at(1).filters, "");
  EXPECT_TRUE(store_->get_sample("S2")->all_sites);
}

TEST_P(VariantStoreTest, GvcfBlocksHomRefAndMissingAreSkipped) {
  const std::string body =
      rec("c1", 1, "A", "<NON_REF>", ".", "0/0", "40", "20", "END=99") +  // reference block
      rec("c1", 100, "C", "T,<NON_REF>", ".", "0/1") +                    // variant in a gVCF
      rec("c1", 101, "G", "<NON_REF>", ".", "0/0", "40", "20", "END=150") +
      rec("c1", 151, "T", "C", "PASS", "0/0") +            // hom-ref
      rec("c1", 152, "T", "C", "PASS", "./.") +            // no call
      rec("c1", 153, "T", "C", "PASS", "./1", ".", ".") +  // half call: one copy
      rec("c1", 154, "T", "*,G", "PASS", "1/2") +          // spanning deletion allele is no site
      rec("c1", 155, "T", "<DEL>", "PASS", "0/1");
  const auto r = ingest(write_vcf("g.vcf", body), sample("S1", "r1"));
  EXPECT_EQ(r.records, 8);
  EXPECT_EQ(r.genotypes, 3);
  EXPECT_EQ(r.skipped_no_call, 5);
  EXPECT_EQ(carriers("c1:100:C:T"), (std::vector<std::string>{"S1:0/1:HET:1:50:30"}));
  EXPECT_EQ(carriers("c1:153:T:C"), (std::vector<std::string>{"S1:./1:HET:1:.:."}));
  EXPECT_EQ(carriers("c1:154:T:G"), (std::vector<std::string>{"S1:1/2:HET:1:50:30"}));
  const RegionPage all = store_->region(parse_region("c1"), std::nullopt, {});
  EXPECT_EQ(all.genotypes.size(), 3u);
}

TEST_P(VariantStoreTest, BadInputThrowsAndLeavesTheStoreUnchanged) {
  ingest(write_vcf("ok.vcf", rec("c1", 100, "A", "G", "PASS", "0/1")), sample("S1", "r1"));
  const std::string good = rec("c1", 200, "A", "G", "PASS", "0/1");
  struct Case {
    std::string name, text;
  };
  const std::vector<Case> cases = {
      {"badpos.vcf", vcf_header() + good + "c1\tnotanumber\t.\tA\tG\t50\tPASS\t.\tGT\t0/1\n"},
      {"badgt.vcf", vcf_header() + good + rec("c1", 300, "A", "G", "PASS", "0/7")},
      {"junk.vcf", "this is not a VCF\n\x01\x02\x03"},
      {"sitesonly.vcf",
       "##fileformat=VCFv4.2\n##contig=<ID=c1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"},
  };
  for (const auto& c : cases) {
    const fs::path p = dir_.path / c.name;
    test::write_file(p, c.text);
    try {
      ingest(p, sample("S1", "bad-" + c.name));
      ADD_FAILURE() << c.name << ": no error";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.name << ": not an InputError: " << e.what();
    }
  }
  // A bgzipped VCF cut in the middle of a block, and one cut at a block boundary (no EOF marker).
  std::string big;
  for (int i = 1; i <= 20000; ++i)
    big += rec("c1", i, "A", i % 2 ? "G" : "T", "PASS", "0/1", std::to_string(i % 97));
  const fs::path gz = dir_.path / "t.vcf.gz";
  ASSERT_EQ(test::run_command("bgzip -c " + write_vcf("big.vcf", big).string() + " > " + gz.string()), 0);
  const auto full = fs::file_size(gz);
  ASSERT_GT(full, 20000u);
  fs::resize_file(gz, full / 2);
  EXPECT_THROW(ingest(gz, sample("S1", "bad-gz")), InputError);
  ASSERT_EQ(test::run_command("bgzip -c " + (dir_.path / "big.vcf").string() + " > " + gz.string()), 0);
  fs::resize_file(gz, full - 28);  // the 28-byte EOF block
  EXPECT_THROW(ingest(gz, sample("S1", "bad-gz")), InputError);
  EXPECT_THROW(ingest(dir_.path / "missing.vcf", sample("S1", "bad-missing")), InputError);
  try {
    ingest(dir_.path / "badpos.vcf", sample("S1", "bad-again"));
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("record 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(carriers("c1:100:A:G"), (std::vector<std::string>{"S1:0/1:HET:1:50:30"}));
  EXPECT_TRUE(carriers("c1:200:A:G").empty());
  EXPECT_EQ(store_->get_sample("S1")->run_id, "r1");
  EXPECT_EQ(store_->ingested_runs(), std::set<std::string>{"r1"});
  // Missing ids and bad tags are refused before reading.
  EXPECT_THROW(ingest(dir_.path / "ok.vcf", sample("", "r9")), InputError);
  EXPECT_THROW(ingest(dir_.path / "ok.vcf", sample("S9", "r9", {{"bad key", "v"}})), InputError);
}

// Queries on a second connection see what the writer committed (and are not serialised behind it).
TEST_P(VariantStoreTest, SeparateQueryConnection) {
  auto writer = sql::open_db(url_, "variant store");
  auto reader = sql::open_db(url_, "variant store");
  VariantStore two(*writer, reader.get());
  VariantIngestOptions o;
  two.ingest_vcf(write_vcf("w.vcf", rec("c2", 9, "G", "T", "PASS", "1/1")).string(), sample("W", "rw"), o,
                 T0);
  ASSERT_EQ(two.carriers(parse_variant("c2:9:G:T"), {}).carriers.size(), 1u);
  EXPECT_TRUE(two.has_run("rw"));
  EXPECT_EQ(carriers("c2:9:G:T"),
            (std::vector<std::string>{"W:1/1:HOM_ALT:2:50:30"}));  // the fixture's store
  EXPECT_TRUE(two.delete_sample("W"));
  EXPECT_TRUE(two.carriers(parse_variant("c2:9:G:T"), {}).carriers.empty());
}

TEST_P(VariantStoreTest, MultiSampleVcfPicksTheNamedColumn) {
  const fs::path p = dir_.path / "multi.vcf";
  std::string h = vcf_header("A");
  h.pop_back();
  test::write_file(p, h + "\tB\nc1\t5\t.\tA\tG\t50\tPASS\t.\tGT\t0/1\t1/1\n");
  ingest(p, sample("B", "r1"));
  EXPECT_EQ(carriers("c1:5:A:G"), (std::vector<std::string>{"B:1/1:HOM_ALT:2:.:."}));
  EXPECT_THROW(ingest(p, sample("C", "r2")), InputError);
}

TEST_P(VariantStoreTest, PagingCoversEverythingExactlyOnce) {
  std::vector<std::string> want;
  for (int s = 0; s < 23; ++s) {
    std::string body;
    for (int pos = 1; pos <= 5; ++pos) body += rec("c1", pos * 10, "A", pos % 2 ? "G" : "C", "PASS", "0/1");
    body += rec("c2", 7, "A", "T", "PASS", "1/1");
    const std::string id = "S" + std::to_string(100 + s);
    ingest(write_vcf("p" + id + ".vcf", body), sample(id, "r" + id, {{"grp", s % 3 ? "a" : "b"}}));
    want.push_back(id + ":0/1:HET:1:50:30");
  }
  for (int ps : {1, 4, 7, 23, 100}) EXPECT_EQ(carriers("c1:10:A:G", ps), want) << ps;
  // Region: 5 sites x 23 samples, in pages of 6.
  std::vector<std::string> seen;
  VariantPageRequest page{6, ""};
  int pages = 0;
  for (;; ++pages) {
    const RegionPage r = store_->region(parse_region("c1:1-1000"), std::nullopt, page);
    EXPECT_LE(r.genotypes.size(), 6u);
    for (const auto& g : r.genotypes) seen.push_back(g.site.to_string() + "/" + g.call.sample_id);
    if (r.next_page_token.empty()) break;
    page.page_token = r.next_page_token;
  }
  EXPECT_EQ(seen.size(), 115u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 115u);
  EXPECT_EQ(pages + 1, 20);
  // Tokens are bound to their query.
  const CarrierPage first = store_->carriers(parse_variant("c1:10:A:G"), {5, ""});
  ASSERT_FALSE(first.next_page_token.empty());
  EXPECT_THROW(store_->carriers(parse_variant("c1:20:A:C"), {5, first.next_page_token}), InputError);
  EXPECT_THROW(store_->region(parse_region("c1"), std::nullopt, {5, first.next_page_token}), InputError);
  EXPECT_THROW(store_->carriers(parse_variant("c1:10:A:G"), {5, "zz"}), InputError);
  EXPECT_THROW(store_->carriers(parse_variant("c1:10:A:G"), {5, "abcd"}), InputError);
  // Page size is clamped.
  EXPECT_EQ(store_->carriers(parse_variant("c1:10:A:G"), {100000, ""}).carriers.size(), 23u);
  // Samples list and the frequencies of a region, paged.
  std::vector<std::string> listed;
  VariantPageRequest sp{5, ""};
  for (;;) {
    const SamplePage s = store_->list_samples(sp, {{"grp", "a"}});
    for (const auto& x : s.samples) listed.push_back(x.sample_id);
    if (s.next_page_token.empty()) break;
    sp.page_token = s.next_page_token;
  }
  EXPECT_EQ(listed.size(), 15u);
  std::vector<std::string> freq;
  VariantPageRequest fp{2, ""};
  for (;;) {
    const FrequencyPage f = store_->frequencies(parse_region("c1"), {}, fp);
    for (const auto& c : f.sites) {
      freq.push_back(c.site.to_string());
      EXPECT_EQ(c.ac, 23);
      EXPECT_EQ(c.an, 46);
    }
    if (f.next_page_token.empty()) break;
    fp.page_token = f.next_page_token;
  }
  EXPECT_EQ(freq,
            (std::vector<std::string>{"c1:10:A:G", "c1:20:A:C", "c1:30:A:G", "c1:40:A:C", "c1:50:A:G"}));
  // Cohort paging.
  CohortRule rule;
  rule.variants = {parse_variant("c1:10:A:G"), parse_variant("c2:7:A:T")};
  rule.match = CohortRule::Match::all;
  std::vector<std::string> cohort;
  VariantPageRequest cp{4, ""};
  for (;;) {
    const CohortPage c = store_->cohort(rule, cp);
    EXPECT_EQ(c.n_matching, 23);
    for (const auto& m : c.samples) {
      cohort.push_back(m.sample_id);
      EXPECT_EQ(m.matched.size(), 2u);
    }
    if (c.next_page_token.empty()) break;
    cp.page_token = c.next_page_token;
  }
  EXPECT_EQ(cohort.size(), 23u);
  rule.min_gq = 10;  // another rule: the old token is refused
  EXPECT_THROW(store_->cohort(rule, {4, store_->cohort(rule, {4, ""}).next_page_token + "00"}), InputError);
}

// ---- property test: random cohorts against a brute-force model

struct ModelCall {
  std::string gt;
  int zyg = 1, copies = 1;
  std::optional<int> gq, dp;
};
struct Model {
  std::vector<std::string> order;  // samples in store order
  std::map<std::string, std::map<std::string, std::string>> tags;
  std::map<std::string, std::map<VariantKey, ModelCall>> calls;  // sample -> site -> call

  void put(const std::string& s, std::map<VariantKey, ModelCall> c, std::map<std::string, std::string> t) {
    if (!calls.count(s)) order.push_back(s);
    calls[s] = std::move(c);
    tags[s] = std::move(t);
  }
  void erase(const std::string& s) {
    order.erase(std::find(order.begin(), order.end(), s));
    calls.erase(s);
    tags.erase(s);
  }
  bool has_tags(const std::string& s, const std::map<std::string, std::string>& want) const {
    for (const auto& [k, v] : want) {
      auto it = tags.at(s).find(k);
      if (it == tags.at(s).end() || it->second != v) return false;
    }
    return true;
  }
  AlleleCounts count(const VariantKey& k, const std::map<std::string, std::string>& t) const {
    AlleleCounts c;
    c.site = k;
    for (const auto& s : order) {
      if (!has_tags(s, t)) continue;
      ++c.n_samples;
      auto it = calls.at(s).find(k);
      if (it == calls.at(s).end()) continue;
      c.ac += it->second.copies;
      (it->second.zyg == 2 ? c.n_hom_alt : c.n_het)++;
    }
    c.an = 2 * c.n_samples;
    c.af = c.an ? double(c.ac) / double(c.an) : 0;
    return c;
  }
};

std::string call_str(const std::string& sample, const std::string& gt, int zyg, int copies,
                     std::optional<int> gq, std::optional<int> dp) {
  return sample + ":" + gt + ":" + std::to_string(zyg) + ":" + std::to_string(copies) + ":" +
         (gq ? std::to_string(*gq) : ".") + ":" + (dp ? std::to_string(*dp) : ".");
}
std::string call_str(const VariantCall& c) {
  return call_str(c.sample_id, c.gt, int(c.zygosity), c.alt_copies, c.gq, c.dp);
}
std::string counts_str(const AlleleCounts& c) {
  return c.site.to_string() + " ac=" + std::to_string(c.ac) + " an=" + std::to_string(c.an) +
         " het=" + std::to_string(c.n_het) + " hom=" + std::to_string(c.n_hom_alt) +
         " n=" + std::to_string(c.n_samples) + " af=" + std::to_string(c.af);
}

TEST_P(VariantStoreTest, PropertyRandomCohortsMatchBruteForce) {
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    if (seed > 1) {  // a fresh store per seed
      url_ = test::store_database_url(GetParam(), dir_.path / ("v" + std::to_string(seed) + ".db"), pg_);
      reopen();
    }
    std::mt19937 rng(seed);
    auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    // A pool of positions, each with one REF base and 1-3 ALT bases.
    struct Pos {
      std::string chrom;
      int64_t pos;
      std::string ref;
      std::vector<std::string> alts;
    };
    std::vector<Pos> pool;
    std::set<std::pair<std::string, int64_t>> used;
    const std::string bases = "ACGT";
    while (pool.size() < 40) {
      Pos p{uni(0, 2) ? "c1" : "c2", uni(1, 400), "", {}};
      if (!used.insert({p.chrom, p.pos}).second) continue;
      p.ref = std::string(1, bases[uni(0, 3)]);
      const int n = uni(1, 3);
      for (char b : bases)
        if (std::string(1, b) != p.ref && int(p.alts.size()) < n) p.alts.push_back(std::string(1, b));
      pool.push_back(p);
    }
    std::sort(pool.begin(), pool.end(),
              [](const Pos& a, const Pos& b) { return std::tie(a.chrom, a.pos) < std::tie(b.chrom, b.pos); });
    Model model;
    int run = 0;
    auto ingest_random = [&](const std::string& id) {
      std::string body;
      std::map<VariantKey, ModelCall> calls;
      const double density = 0.15 + 0.5 * uni(0, 100) / 100.0;
      for (const Pos& p : pool) {
        if (uni(0, 1000) > density * 1000) continue;
        const int n = int(p.alts.size());
        int a1 = uni(0, n), a2 = uni(0, n);
        if (uni(0, 3) == 0) a1 = 0;
        const std::string gt = std::to_string(a1) + (uni(0, 4) ? "/" : "|") + std::to_string(a2);
        std::optional<int> gq, dp;
        if (uni(0, 5)) gq = uni(0, 99);
        if (uni(0, 5)) dp = uni(1, 80);
        std::string alt;
        for (const auto& a : p.alts) alt += (alt.empty() ? "" : ",") + a;
        const bool fail = uni(0, 9) == 0;
        body += rec(p.chrom, p.pos, p.ref, alt, fail ? "LowQual" : "PASS", gt, gq ? std::to_string(*gq) : ".",
                    dp ? std::to_string(*dp) : ".");
        if (fail) continue;
        for (int a = 1; a <= n; ++a) {
          const int copies = int(a1 == a) + int(a2 == a);
          if (!copies) continue;
          calls[VariantKey{p.chrom, p.pos, p.ref, p.alts[size_t(a - 1)]}] = {gt, copies == 2 ? 2 : 1, copies,
                                                                             gq, dp};
        }
      }
      std::map<std::string, std::string> tags = {{"grp", uni(0, 1) ? "a" : "b"}};
      if (uni(0, 2) == 0) tags["site"] = "s" + std::to_string(uni(1, 2));
      const std::string run_id = "run-" + std::to_string(++run);
      ingest(write_vcf(id + "-" + run_id + ".vcf", body), sample(id, run_id, tags));
      model.put(id, std::move(calls), tags);
    };
    const int n_samples = uni(8, 14);
    for (int i = 0; i < n_samples; ++i) ingest_random("S" + std::to_string(i));
    for (int round = 0; round < 2; ++round) {
      if (round == 1) {  // re-runs of some samples, a deletion, a new sample
        for (int i = 0; i < 3; ++i) ingest_random("S" + std::to_string(uni(0, n_samples - 1)));
        const std::string gone = model.order[size_t(uni(0, int(model.order.size()) - 1))];
        EXPECT_TRUE(store_->delete_sample(gone));
        model.erase(gone);
        ingest_random("S-new");
      }
      std::vector<VariantKey> sites;
      for (const Pos& p : pool)
        for (const auto& a : p.alts) sites.push_back({p.chrom, p.pos, p.ref, a});

      // Carriers and counts of every site.
      for (const VariantKey& k : sites) {
        std::vector<std::string> want, got;
        for (const auto& s : model.order)
          if (auto it = model.calls[s].find(k); it != model.calls[s].end())
            want.push_back(
                call_str(s, it->second.gt, it->second.zyg, it->second.copies, it->second.gq, it->second.dp));
        VariantPageRequest page{uni(1, 5), ""};
        for (;;) {
          const CarrierPage p = store_->carriers(k, page);
          for (const auto& c : p.carriers) got.push_back(call_str(c));
          EXPECT_EQ(counts_str(p.counts), counts_str(model.count(k, {})));
          if (p.next_page_token.empty()) break;
          page.page_token = p.next_page_token;
        }
        ASSERT_EQ(got, want) << k.to_string();
        for (const auto& t : std::vector<std::map<std::string, std::string>>{
                 {}, {{"grp", "a"}}, {{"grp", "b"}, {"site", "s1"}}})
          EXPECT_EQ(counts_str(store_->frequencies(k, t).sites.at(0)), counts_str(model.count(k, t)));
      }
      // Random regions, with and without one sample; and region frequencies.
      for (int q = 0; q < 12; ++q) {
        const std::string chrom = uni(0, 1) ? "c1" : "c2";
        const int a = uni(1, 400), b = std::min(400, a + uni(0, 200));
        const VariantRegion region{chrom, a, b};
        std::optional<std::string> only;
        if (q % 2) only = model.order[size_t(uni(0, int(model.order.size()) - 1))];
        std::vector<std::string> want, got;
        std::vector<std::string> want_freq, got_freq;
        const std::map<std::string, std::string> tags = q % 3 == 0
                                                            ? std::map<std::string, std::string>{{"grp", "a"}}
                                                            : std::map<std::string, std::string>{};
        for (const VariantKey& k : sites) {  // sites are in (chrom, pos, ref, alt) order
          if (k.chrom != chrom || k.pos < a || k.pos > b) continue;
          for (const auto& s : model.order)
            if (!only || *only == s)
              if (auto it = model.calls[s].find(k); it != model.calls[s].end())
                want.push_back(k.to_string() + "/" +
                               call_str(s, it->second.gt, it->second.zyg, it->second.copies, it->second.gq,
                                        it->second.dp));
          const AlleleCounts c = model.count(k, tags);
          if (c.ac > 0) want_freq.push_back(counts_str(c));
        }
        VariantPageRequest page{uni(1, 9), ""};
        for (;;) {
          const RegionPage p = store_->region(region, only, page);
          for (const auto& g : p.genotypes) got.push_back(g.site.to_string() + "/" + call_str(g.call));
          if (p.next_page_token.empty()) break;
          page.page_token = p.next_page_token;
        }
        EXPECT_EQ(got, want) << chrom << ":" << a << "-" << b << " sample " << only.value_or("*");
        VariantPageRequest fpage{uni(1, 4), ""};
        for (;;) {
          const FrequencyPage f = store_->frequencies(region, tags, fpage);
          for (const auto& c : f.sites) got_freq.push_back(counts_str(c));
          if (f.next_page_token.empty()) break;
          fpage.page_token = f.next_page_token;
        }
        EXPECT_EQ(got_freq, want_freq) << chrom << ":" << a << "-" << b;
      }
      // Random cohort rules.
      for (int q = 0; q < 25; ++q) {
        CohortRule rule;
        const int nv = uni(1, 4);
        for (int i = 0; i < nv; ++i) rule.variants.push_back(sites[size_t(uni(0, int(sites.size()) - 1))]);
        if (uni(0, 4) == 0) rule.variants.push_back({"c1", 999, "A", "G"});  // never seen
        rule.match = uni(0, 1) ? CohortRule::Match::all : CohortRule::Match::any;
        rule.zygosity = CohortRule::Zyg(uni(0, 2));
        if (uni(0, 1)) rule.min_gq = uni(0, 99);
        if (uni(0, 2) == 0) rule.tags["grp"] = uni(0, 1) ? "a" : "b";
        std::set<VariantKey> distinct(rule.variants.begin(), rule.variants.end());
        std::vector<std::string> want;
        for (const auto& s : model.order) {
          if (!model.has_tags(s, rule.tags)) continue;
          std::string matched;
          size_t n = 0;
          for (const VariantKey& k : distinct) {
            auto it = model.calls[s].find(k);
            if (it == model.calls[s].end()) continue;
            const ModelCall& c = it->second;
            if (rule.zygosity == CohortRule::Zyg::het && c.zyg != 1) continue;
            if (rule.zygosity == CohortRule::Zyg::hom_alt && c.zyg != 2) continue;
            if (rule.min_gq && (!c.gq || *c.gq < *rule.min_gq)) continue;
            ++n;
            matched += " " + k.to_string() + "=" + c.gt;
          }
          if (n > 0 && (rule.match == CohortRule::Match::any || n == distinct.size()))
            want.push_back(s + matched);
        }
        std::vector<std::string> got;
        VariantPageRequest page{uni(1, 6), ""};
        for (;;) {
          const CohortPage p = store_->cohort(rule, page);
          EXPECT_EQ(p.n_matching, int64_t(want.size()));
          ASSERT_EQ(p.counts.size(), distinct.size());
          size_t i = 0;
          for (const VariantKey& k : distinct)
            EXPECT_EQ(counts_str(p.counts[i++]), counts_str(model.count(k, rule.tags)));
          for (const auto& m : p.samples) {
            std::string line = m.sample_id;
            for (const auto& [k, c] : m.matched) line += " " + k.to_string() + "=" + c.gt;
            got.push_back(line);
            EXPECT_EQ(m.tags, model.tags[m.sample_id]);
          }
          if (p.next_page_token.empty()) break;
          page.page_token = p.next_page_token;
        }
        EXPECT_EQ(got, want) << "rule " << q;
      }
    }
  }
}

// ---- routes, dispatched without a server

struct Answer {
  int status;
  json body;
};

class VariantRoutesTest : public VariantStoreTest {
 protected:
  void SetUp() override {
    VariantStoreTest::SetUp();
    if (IsSkipped()) return;
    add_variant_routes(router_, *store_);
    ingest(
        write_vcf("a.vcf", rec("c1", 100, "A", "G", "PASS", "0/1") + rec("c1", 200, "C", "T", "PASS", "1/1")),
        sample("S1", "r1", {{"grp", "a"}}));
    ingest(write_vcf("b.vcf", rec("c1", 100, "A", "G", "PASS", "1/1", "20")),
           sample("S2", "r2", {{"grp", "b"}}));
  }
  Answer call(const std::string& method, const std::string& target, const std::string& body = "") {
    http::Request req;
    req.method = method;
    req.target = target;
    const auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) {
      req.query_string = target.substr(q + 1);
      req.query = http::parse_query(req.query_string);
    }
    req.body = body;
    const http::Response r = router_.dispatch(req);
    return {r.status, r.body.empty() ? json() : json::parse(r.body)};
  }
  static std::string message(const Answer& a) { return a.body["error"]["message"].get<std::string>(); }
  http::Router router_;
};

INSTANTIATE_TEST_SUITE_P(Backends, VariantRoutesTest, test::store_backends(), test::StoreBackendName{});

TEST_P(VariantRoutesTest, CarriersRegionFrequencies) {
  Answer a = call("GET", "/v1/variants?chrom=c1&pos=100&ref=A&alt=G");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_TRUE(a.body["site_known"].get<bool>());
  ASSERT_EQ(a.body["carriers"].size(), 2u);
  EXPECT_EQ(a.body["carriers"][0]["sample_id"], "S1");
  EXPECT_EQ(a.body["carriers"][0]["zygosity"], "HET");
  EXPECT_EQ(a.body["carriers"][1]["zygosity"], "HOM_ALT");
  EXPECT_EQ(a.body["carriers"][1]["gq"], 20);
  EXPECT_EQ(a.body["counts"]["ac"], 3);
  EXPECT_EQ(a.body["counts"]["an"], 4);
  EXPECT_TRUE(a.body["next_page_token"].is_null());
  a = call("GET", "/v1/variants?variant=c1:100:A:G&page_size=1");
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(a.body["carriers"].size(), 1u);
  const std::string token = a.body["next_page_token"].get<std::string>();
  a = call("GET", "/v1/variants?variant=c1:100:A:G&page_size=1&page_token=" + token);
  EXPECT_EQ(a.body["carriers"][0]["sample_id"], "S2");
  EXPECT_TRUE(a.body["next_page_token"].is_null());

  a = call("GET", "/v1/variants?region=c1:1-1000&sample=S1");
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(a.body["genotypes"].size(), 2u);
  EXPECT_EQ(a.body["genotypes"][1]["pos"], 200);
  EXPECT_EQ(a.body["genotypes"][1]["gt"], "1/1");
  EXPECT_EQ(call("GET", "/v1/variants?region=c1").body["genotypes"].size(), 3u);

  a = call("GET", "/v1/variants/frequencies?variant=c1:100:A:G&tags=grp:b");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.body["n_samples"], 1);
  EXPECT_EQ(a.body["sites"][0]["ac"], 2);
  EXPECT_DOUBLE_EQ(a.body["sites"][0]["af"].get<double>(), 1.0);
  a = call("GET", "/v1/variants/frequencies?region=c1:1-1000");
  EXPECT_EQ(a.body["sites"].size(), 2u);
}

TEST_P(VariantRoutesTest, BadParametersAre400AndUnknownSample404) {
  for (const char* t :
       {"/v1/variants", "/v1/variants?chrom=c1&pos=100", "/v1/variants?variant=c1:x:A:G",
        "/v1/variants?region=c1:9-1", "/v1/variants?region=c1&variant=c1:1:A:G",
        "/v1/variants?variant=c1:100:A:G&page_size=0", "/v1/variants?variant=c1:100:A:G&page_size=x",
        "/v1/variants?variant=c1:100:A:G&page_token=nonsense", "/v1/variants?variant=c1:1:A:G&sample=S1",
        "/v1/variants/frequencies", "/v1/variants/frequencies?region=c1&tags=grp",
        "/v1/variant-samples?tags=bad%20key:x"}) {
    const Answer a = call("GET", t);
    EXPECT_EQ(a.status, 400) << t << " " << a.body;
    EXPECT_FALSE(message(a).empty()) << t;
  }
  EXPECT_NE(message(call("GET", "/v1/variants?chrom=c1&pos=100")).find("chrom, pos, ref and alt"),
            std::string::npos);
  EXPECT_EQ(call("GET", "/v1/variants?region=c1&sample=nobody").status, 404);
  EXPECT_EQ(call("GET", "/v1/variant-samples/nobody").status, 404);
  EXPECT_EQ(call("DELETE", "/v1/variant-samples/nobody").status, 404);
}

TEST_P(VariantRoutesTest, CohortQueryAndSamples) {
  Answer a = call("POST", "/v1/cohorts/query",
                  R"({"variants": [{"chrom": "c1", "pos": 100, "ref": "A", "alt": "G"}, "c1:200:C:T"],
                      "match": "any", "zygosity": "hom_alt"})");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.body["n_matching"], 2);
  EXPECT_EQ(a.body["n_cohort"], 2);
  ASSERT_EQ(a.body["samples"].size(), 2u);
  EXPECT_EQ(a.body["samples"][0]["sample_id"], "S1");
  EXPECT_EQ(a.body["samples"][0]["matched"].size(), 1u);
  EXPECT_EQ(a.body["samples"][0]["matched"][0]["pos"], 200);
  EXPECT_EQ(a.body["samples"][0]["tags"]["grp"], "a");
  EXPECT_EQ(a.body["counts"].size(), 2u);
  a = call("POST", "/v1/cohorts/query",
           R"({"variants": ["c1:100:A:G"], "min_gq": 30, "tags": {"grp": "b"}})");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.body["n_matching"], 0);
  EXPECT_EQ(a.body["n_cohort"], 1);
  EXPECT_EQ(a.body["counts"][0]["ac"], 2);
  for (const char* bad :
       {"", "{", "[]", R"({"variants": []})", R"({"variants": ["c1:1:A"]})",
        R"({"variants": ["c1:1:A:G"], "match": "most"})", R"({"variants": ["c1:1:A:G"], "zygosity": 2})",
        R"({"variants": ["c1:1:A:G"], "min_gq": -1})", R"({"variants": ["c1:1:A:G"], "tags": {"k": 1}})",
        R"({"variants": [{"chrom": "c1", "pos": "1", "ref": "A", "alt": "G"}]})",
        R"({"variants": ["c1:1:A:G"], "colour": "red"})", R"({"variants": ["c1:1:A:G"], "page_size": 0})"}) {
    const Answer b = call("POST", "/v1/cohorts/query", bad);
    EXPECT_EQ(b.status, 400) << bad << " " << b.body;
  }
  a = call("GET", "/v1/variant-samples?page_size=1");
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.body["samples"].size(), 1u);
  EXPECT_FALSE(a.body["next_page_token"].is_null());
  a = call("GET", "/v1/variant-samples?tags=grp:b");
  ASSERT_EQ(a.body["samples"].size(), 1u);
  EXPECT_EQ(a.body["samples"][0]["sample_id"], "S2");
  a = call("GET", "/v1/variant-samples/S1");
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.body["run_id"], "r1");
  EXPECT_EQ(a.body["genotypes"], 2);
  EXPECT_EQ(call("DELETE", "/v1/variant-samples/S1").status, 200);
  EXPECT_EQ(call("GET", "/v1/variant-samples/S1").status, 404);
  EXPECT_EQ(call("GET", "/v1/variants?variant=c1:100:A:G").body["counts"]["an"], 2);
}

}  // namespace
