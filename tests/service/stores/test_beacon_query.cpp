// Beacon v2 queries (service/stores/beacon_query.hpp): request parameters of GET and POST read alike and
// refused when malformed, and a property test of beacon_match against a brute-force model of random
// cohorts, on SQLite and on PostgreSQL (skipped when no server binaries are installed).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "service/db/sql_db.hpp"
#include "service/stores/beacon_query.hpp"
#include "service/stores/variant_store.hpp"
#include "tests/support/test_support.hpp"

using nlohmann::json;
using namespace omicsd;
namespace fs = std::filesystem;

namespace {

TEST(BeaconQuery, GetAndPostReadAlike) {
  const BeaconRequest g = beacon_request_from_query({{"referenceName", "q"},
                                                     {"start", "99"},
                                                     {"end", "200"},
                                                     {"variantType", "indel"},
                                                     {"alternateBases", "acn"},
                                                     {"requestedGranularity", "record"},
                                                     {"skip", "2"},
                                                     {"limit", "0"}});
  const BeaconRequest p = beacon_request_from_body({{"meta", {{"apiVersion", "v2.0.1"}}},
                                                    {"query",
                                                     {{"requestParameters",
                                                       {{"referenceName", "q"},
                                                        {"start", {99}},
                                                        {"end", {200}},
                                                        {"variantType", "INDEL"},
                                                        {"alternateBases", "ACN"}}},
                                                      {"requestedGranularity", "record"},
                                                      {"pagination", {{"skip", 2}, {"limit", 0}}}}}});
  for (const BeaconRequest* r : {&g, &p}) {
    EXPECT_EQ(r->query.reference_name, "q");
    EXPECT_EQ(r->query.start, 99);
    EXPECT_EQ(r->query.end, 200);
    EXPECT_EQ(r->query.variant_type, "INDEL");
    EXPECT_EQ(r->query.alternate_bases, "ACN");
    EXPECT_EQ(r->granularity, BeaconGranularity::record);
    EXPECT_EQ(r->skip, 2);
    EXPECT_EQ(r->limit, kBeaconMaxLimit);  // 0: the most the Beacon allows
  }
  EXPECT_EQ(p.api_version, "v2.0.1");
  EXPECT_EQ(beacon_request_from_query({{"referenceName", "q"}, {"start", "5"}, {"alternateBases", "G"}})
                .granularity,
            BeaconGranularity::boolean);
}

TEST(BeaconQuery, BadParametersAreInputErrors) {
  const std::map<std::string, std::string> good = {
      {"referenceName", "q"}, {"start", "5"}, {"alternateBases", "G"}};
  auto with = [&](const std::string& k, const std::string& v) {
    auto m = good;
    m[k] = v;
    return m;
  };
  for (const auto& bad :
       std::vector<std::map<std::string, std::string>>{{{"start", "5"}, {"alternateBases", "G"}},
                                                       {{"referenceName", "q"}, {"alternateBases", "G"}},
                                                       {{"referenceName", "q"}, {"start", "5"}},
                                                       with("start", "x"),
                                                       with("start", "-1"),
                                                       with("start", "1,2"),
                                                       with("start", ""),
                                                       with("end", "5"),
                                                       with("end", "3"),
                                                       with("alternateBases", ""),
                                                       with("alternateBases", "A C"),
                                                       with("alternateBases", std::string("A\0C", 3)),
                                                       with("referenceBases", "<DEL>"),
                                                       with("variantType", "BND"),
                                                       with("geneId", "BRCA1"),
                                                       with("filters", "x:y"),
                                                       with("requestedGranularity", "full"),
                                                       with("limit", "ten"),
                                                       with("includeResultsetResponses", "x")})
    EXPECT_THROW(beacon_request_from_query(bad), InputError);
  for (const json& bad :
       {json::array(), json{{"meta", {}}}, json{{"query", {{"requestParameters", "q"}}}},
        json{{"query", {{"requestParameters", {{"referenceName", "q"}, {"start", json::array()}}}}}},
        json{
            {"query", {{"requestParameters", {{"referenceName", "q"}, {"start", {1, 2}}, {"end", {5, 6}}}}}}},
        json{{"query", {{"requestParameters", {{"referenceName", 7}, {"start", {1}}, {"end", {5}}}}}}},
        json{{"query",
              {{"requestParameters", {{"referenceName", "q"}, {"start", {1}}, {"end", {5}}}}, {"x", 1}}}},
        json{{"query",
              {{"requestParameters", {{"referenceName", "q"}, {"start", {1}}, {"end", {5}}}},
               {"pagination", {{"limit", -1}}}}}},
        json{{"query",
              {{"requestParameters", {{"referenceName", "q"}, {"start", {1}}, {"end", {5}}}},
               {"filters", {"NCIT:C1"}}}}}})
    EXPECT_THROW(beacon_request_from_body(bad), InputError) << bad.dump();
}

TEST(BeaconQuery, VariantTypes) {
  EXPECT_EQ(beacon_variant_type({"c", 1, "A", "G"}), "SNP");
  EXPECT_EQ(beacon_variant_type({"c", 1, "AC", "GT"}), "MNP");
  EXPECT_EQ(beacon_variant_type({"c", 1, "AC", "A"}), "DEL");
  EXPECT_EQ(beacon_variant_type({"c", 1, "A", "ACG"}), "INS");
}

class BeaconMatchTest : public ::testing::TestWithParam<test::StoreBackend> {
 protected:
  void SetUp() override {
    url_ = test::store_database_url(GetParam(), dir_.path / "variants.db", pg_);
    if (url_.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
    db_ = sql::open_db(url_, "variant store");
    store_ = std::make_unique<VariantStore>(*db_);
  }
  test::TempDir dir_;
  std::unique_ptr<test::PostgresDatabase> pg_;
  std::string url_;
  std::unique_ptr<sql::Db> db_;
  std::unique_ptr<VariantStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, BeaconMatchTest, test::store_backends(), test::StoreBackendName{});

// Random cohorts of SNVs, MNPs and indels on two contigs; random sequence and range queries with
// allele, wildcard and type filters; beacon_match equals the sites the model says are carried.
TEST_P(BeaconMatchTest, MatchesBruteForce) {
  std::mt19937 rng(18);
  const std::string bases = "ACGT";
  auto rand_bases = [&](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += bases[rng() % 4];
    return s;
  };
  // The model: carried minimal sites -> carriers.
  std::map<VariantKey, int> carried;
  std::vector<VariantKey> pool;
  for (int i = 0; i < 60; ++i) {
    const std::string chrom = i % 5 == 0 ? "c2" : "c1";
    const int64_t pos = 1 + int64_t(rng() % 300);
    std::string ref = rand_bases(1 + int(rng() % 3)), alt = rand_bases(1 + int(rng() % 3));
    if (ref == alt) alt = ref + "A";
    const VariantKey k = normalize_variant({chrom, pos, ref, alt});
    // One record per position in each VCF: keep only the first key at a (chrom, pos) of the raw record.
    // ... and no two records that normalise to one site (a sample would then carry it twice).
    bool clash = false;
    for (const auto& p : pool) clash |= (p.chrom == chrom && p.pos == pos) || normalize_variant(p) == k;
    if (!clash) pool.push_back({chrom, pos, ref, alt});
  }
  std::sort(pool.begin(), pool.end(), [](const VariantKey& a, const VariantKey& b) {
    return std::tie(a.chrom, a.pos) < std::tie(b.chrom, b.pos);
  });
  for (int s = 0; s < 9; ++s) {
    std::string vcf =
        "##fileformat=VCFv4.2\n##contig=<ID=c1,length=1000>\n##contig=<ID=c2,length=1000>\n"
        "##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n";
    for (const auto& k : pool) {
      if (rng() % 3 == 0) continue;
      const bool hom = rng() % 4 == 0;
      vcf += k.chrom + "\t" + std::to_string(k.pos) + "\t.\t" + k.ref + "\t" + k.alt + "\t50\tPASS\t.\tGT\t" +
             (hom ? "1/1" : "0/1") + "\n";
      carried[normalize_variant(k)]++;
    }
    const fs::path p = dir_.path / ("s" + std::to_string(s) + ".vcf");
    test::write_file(p, vcf);
    VariantSampleInfo info;
    info.sample_id = "S" + std::to_string(s);
    info.run_id = "run-" + std::to_string(s);
    store_->ingest_vcf(p.string(), info, {}, 1'700'000'000'000);
  }
  auto matches = [](const std::string& pattern, const std::string& b) {
    if (pattern.empty()) return true;
    if (pattern.size() != b.size()) return false;
    for (size_t i = 0; i < b.size(); ++i)
      if (pattern[i] != 'N' && pattern[i] != b[i]) return false;
    return true;
  };
  const std::vector<std::string> types = {"", "SNP", "MNP", "INS", "DEL", "INDEL"};
  int nonempty = 0;
  for (int t = 0; t < 400; ++t) {
    BeaconVariantQuery q;
    q.reference_name = rng() % 8 == 0 ? "c2" : rng() % 20 == 0 ? "c3" : "c1";
    std::vector<VariantKey> want;
    if (t % 2 == 0) {
      // A sequence query at a pooled site (or a random place), with or without REF, with wildcards.
      const VariantKey k = rng() % 4 ? normalize_variant(pool[rng() % pool.size()])
                                     : VariantKey{"c1", 1 + int64_t(rng() % 300), "A", "G"};
      q.reference_name = k.chrom;
      q.start = k.pos - 1;
      q.alternate_bases = k.alt;
      if (rng() % 2) q.reference_bases = k.ref;
      if (rng() % 4 == 0) q.alternate_bases[rng() % q.alternate_bases.size()] = 'N';
      for (const auto& [site, n] : carried) {
        if (site.chrom != q.reference_name || site.pos != k.pos || !matches(q.alternate_bases, site.alt))
          continue;
        if (!q.reference_bases.empty() && site.ref != q.reference_bases) continue;
        want.push_back(site);
      }
    } else {
      q.start = int64_t(rng() % 300);
      q.end = q.start + 1 + int64_t(rng() % 120);
      q.variant_type = types[rng() % types.size()];
      if (rng() % 4 == 0) q.alternate_bases = std::string(1 + rng() % 2, 'N');
      for (const auto& [site, n] : carried) {
        if (site.chrom != q.reference_name || site.pos < q.start + 1 || site.pos > *q.end) continue;
        const std::string vt = beacon_variant_type(site);
        if (!q.variant_type.empty() && vt != q.variant_type &&
            !(q.variant_type == "INDEL" && (vt == "INS" || vt == "DEL")))
          continue;
        if (!matches(q.alternate_bases, site.alt)) continue;
        want.push_back(site);
      }
    }
    const std::vector<AlleleCounts> got = beacon_match(*store_, q, "");
    std::vector<VariantKey> got_keys;
    for (const auto& c : got) {
      got_keys.push_back(c.site);
      EXPECT_EQ(c.n_het + c.n_hom_alt, carried[c.site]) << c.site.to_string();
      EXPECT_EQ(c.n_samples, 9);
    }
    std::sort(got_keys.begin(), got_keys.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got_keys.size(), want.size()) << "query " << t;
    EXPECT_TRUE(got_keys == want) << "query " << t;
    nonempty += !want.empty();
    // Another assembly than the store's matches nothing; the same one (any case) matches alike.
    q.assembly_id = "GRCh38";
    EXPECT_TRUE(beacon_match(*store_, q, "GRCh37").empty());
    EXPECT_EQ(beacon_match(*store_, q, "grch38").size(), want.size());
  }
  EXPECT_GT(nonempty, 100);
}

}  // namespace
