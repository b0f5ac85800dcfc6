// End-to-end tests of `omicsd call` (and omicsd align + call) on the shared NA12878 data with GIAB
// truth, plus the bad inputs that must fail with one clear line and no finished-looking VCF.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "tests/support/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;

fs::path tiny() { return shared_data_dir() / "na12878-chr22-tiny"; }

struct CallFixture : ::testing::Test {
  TempDir tmp;
  fs::path ref, bam;
  void SetUp() override {
    if (!fs::exists(tiny() / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny();
    ref = tmp.path / "q.fa";
    fs::copy_file(tiny() / "q.fa", ref);
    bam = tiny() / "NA12878.chr22.tiny.bam";
  }
  std::set<std::string> truth() {
    std::set<std::string> t = vcf_snvs(tiny() / "truth.vcf.gz");
    EXPECT_EQ(t.size(), 14u);
    return t;
  }
};

TEST_F(CallFixture, AllTruthSnvsWithTheRightGenotypeAndNoFalseSnvs) {
  const fs::path out = tmp.path / "calls.vcf.gz";
  std::string log;
  ASSERT_EQ(
      run_command(omicsd_binary() + " call -t 2 " + ref.string() + " " + bam.string() + " -o " + out.string(),
                  &log),
      0)
      << log;
  ASSERT_TRUE(fs::exists(out.string() + ".tbi"));
  EXPECT_EQ(vcf_snvs(out), truth());
  // The header tells users what they need: contigs with lengths, the filters, the sample from @RG SM.
  std::string h;
  ASSERT_EQ(run_command("bcftools view -h " + out.string(), &h), 0);
  EXPECT_NE(h.find("##contig=<ID=q,length=12356"), std::string::npos) << h;
  EXPECT_NE(h.find("##FILTER=<ID=LowQual"), std::string::npos);
  EXPECT_NE(h.find("\tFORMAT\t1\n"), std::string::npos) << "sample name from @RG SM:1";
  // REF matches the reference everywhere (bcftools norm -c e fails otherwise).
  std::string o;
  EXPECT_EQ(
      run_command("bcftools norm -c e -f " + ref.string() + " " + out.string() + " -Ou -o /dev/null", &o), 0)
      << o;
  // Same output whatever the thread count.
  const fs::path out1 = tmp.path / "t1.vcf.gz";
  ASSERT_EQ(
      run_command(
          omicsd_binary() + " call -t 1 " + ref.string() + " " + bam.string() + " -o " + out1.string(), &o),
      0);
  std::string a, b;
  run_command("bcftools view -H " + out.string() + " | md5sum", &a);
  run_command("bcftools view -H " + out1.string() + " | md5sum", &b);
  EXPECT_EQ(a, b);
}

TEST_F(CallFixture, OurAlignerPlusOurCallerFindTheSameSnvs) {
  const fs::path aligned = tmp.path / "a.bam", out = tmp.path / "e2e.vcf.gz";
  std::string log;
  ASSERT_EQ(run_command(omicsd_binary() + " align " + ref.string() + " " + bam.string() + " -o " +
                            aligned.string() + " -R '@RG\\tID:x\\tSM:NA12878'",
                        &log),
            0)
      << log;
  ASSERT_EQ(
      run_command(omicsd_binary() + " call " + ref.string() + " " + aligned.string() + " -o " + out.string(),
                  &log),
      0)
      << log;
  EXPECT_EQ(vcf_snvs(out), truth());
}

TEST_F(CallFixture, RegionsTargetsAndGvcf) {
  write_file(tmp.path / "r.bed", "q\t0\t2000\n");
  const fs::path out = tmp.path / "r.vcf.gz";
  std::string o;
  ASSERT_EQ(run_command(omicsd_binary() + " call --regions " + (tmp.path / "r.bed").string() + " " +
                            ref.string() + " " + bam.string() + " -o " + out.string(),
                        &o),
            0)
      << o;
  EXPECT_EQ(vcf_snvs(out), (std::set<std::string>{"186 T C 0/1", "1008 C T 0/1", "1817 G A 0/1",
                                                  "1820 C T 0/1", "1917 A G 0/1"}));
  write_file(tmp.path / "t.bed", "q\t1000\t1010\n");
  ASSERT_EQ(run_command(omicsd_binary() + " call --targets " + (tmp.path / "t.bed").string() + " " +
                            ref.string() + " " + bam.string() + " -o " + out.string(),
                        &o),
            0)
      << o;
  EXPECT_EQ(vcf_snvs(out), (std::set<std::string>{"1008 C T 0/1"}));
  // gVCF: variants carry <NON_REF>, blocks cover the rest of the contig without gaps or overlaps.
  const fs::path g = tmp.path / "g.g.vcf.gz";
  ASSERT_EQ(
      run_command(omicsd_binary() + " call --gvcf " + ref.string() + " " + bam.string() + " -o " + g.string(),
                  &o),
      0)
      << o;
  ASSERT_EQ(run_command("bcftools query -f '%POS\\t%END\\t%REF\\t%ALT\\n' " + g.string(), &o), 0) << o;
  std::istringstream in(o);
  std::string line;
  int64_t next = 1, variants = 0;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    int64_t pos;
    std::string end, r, alt;
    f >> pos >> end >> r >> alt;
    EXPECT_EQ(pos, next) << line;
    EXPECT_NE(alt.find("<NON_REF>"), std::string::npos) << line;
    next = alt == "<NON_REF>" ? std::stoll(end) + 1 : pos + int64_t(r.size());
    variants += alt != "<NON_REF>";
  }
  EXPECT_EQ(next, 12357);
  EXPECT_GE(variants, 14);
}

TEST_F(CallFixture, BadInputsFailCleanly) {
  std::string o;
  // Unsorted (name-collated) BAM, and a sorted one without an index.
  ASSERT_EQ(
      run_command("samtools collate -o " + (tmp.path / "unsorted.bam").string() + " " + bam.string(), &o), 0)
      << o;
  ASSERT_EQ(run_command("samtools sort -o " + (tmp.path / "noindex.bam").string() + " " + bam.string(), &o),
            0)
      << o;
  // Same reads against a reference of another length.
  write_file(tmp.path / "other.fa", ">q\nACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGT\n");
  write_file(tmp.path / "bad.bed", "q\t100\t99999999\n");
  struct Case {
    std::string name, args, expect;
  };
  const std::vector<Case> cases = {
      {"unsorted", ref.string() + " " + (tmp.path / "unsorted.bam").string(), "not coordinate-sorted"},
      {"unindexed", ref.string() + " " + (tmp.path / "noindex.bam").string(), "no index"},
      {"reference mismatch", (tmp.path / "other.fa").string() + " " + bam.string(), "another reference"},
      {"region outside contig",
       "--regions " + (tmp.path / "bad.bed").string() + " " + ref.string() + " " + bam.string(),
       "outside the contig"},
      {"missing BAM", ref.string() + " " + (tmp.path / "nope.bam").string(), "nope.bam"},
  };
  for (const auto& c : cases) {
    const fs::path out = tmp.path / "bad.vcf.gz";
    std::string err;
    const int rc =
        run_command(omicsd_binary() + " call --log-level off " + c.args + " -o " + out.string(), &err);
    EXPECT_NE(rc, 0) << c.name;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << c.name << ": " << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.name << ": " << err;
    for (const auto& e : fs::directory_iterator(tmp.path))
      EXPECT_EQ(e.path().filename().string().find("bad.vcf.gz"), std::string::npos)
          << c.name << " left " << e.path();
  }
}

}  // namespace
}  // namespace omicsd::test

namespace omicsd::test {
namespace {

// `omicsd run`: FASTQ pairs + reference -> BAM, VCF and QC JSON with the numbers users check first.
TEST_F(CallFixture, RunWritesBamVcfAndQc) {
  std::string o;
  ASSERT_EQ(
      run_command(
          "cd " + tmp.path.string() + " && samtools collate -u -O " + bam.string() +
              " tmpc | samtools fastq -n -1 s_1.fq.gz -2 s_2.fq.gz -0 /dev/null -s /dev/null - 2>/dev/null",
          &o),
      0)
      << o;
  const fs::path out = tmp.path / "out";
  ASSERT_EQ(
      run_command(omicsd_binary() + " run " + ref.string() + " " + (tmp.path / "s_1.fq.gz").string() + " " +
                      (tmp.path / "s_2.fq.gz").string() + " -o " + out.string() + " --sample NA12878",
                  &o),
      0)
      << o;
  for (const char* f :
       {"NA12878.bam", "NA12878.bam.bai", "NA12878.vcf.gz", "NA12878.vcf.gz.tbi", "NA12878.qc.json"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_EQ(vcf_snvs(out / "NA12878.vcf.gz"), truth());
  const std::string qc = read_file(out / "NA12878.qc.json");
  for (const char* key : {"\"reads\": 3266", "\"mapped_pct\": 99.", "\"properly_paired_pct\": 98.",
                          "\"duplicate_pct\"", "\"mean\": 38.", "\"fraction_ge_10x\"", "\"fraction_ge_20x\"",
                          "\"ti_tv\"", "\"het_hom_ratio\"", "\"snvs\": 14", "\"median\": 30"})
    EXPECT_NE(qc.find(key), std::string::npos) << key << "\n" << qc;
  ASSERT_EQ(run_command("bcftools view -h " + (out / "NA12878.vcf.gz").string() + " | tail -1", &o), 0);
  EXPECT_NE(o.find("\tNA12878"), std::string::npos) << o;
}

}  // namespace
}  // namespace omicsd::test
