// scripts/eval-giab.sh on the shared HG001 truth: the truth scored against itself is perfect, and a
// call set edited in known ways (one het SNP dropped, one hom genotype called het, one false SNP, one
// filtered false SNP) moves exactly the rows it should.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "tests/support/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;

fs::path hg001() { return shared_data_dir() / "hg001-chr20-100kb"; }

struct Row {
  int tp = -1, fp = -1, fn = -1, gt = -1;
  double f1 = -1;
};
// scope/type/subset/caller -> row, from eval-giab.sh --tsv.
using Rows = std::map<std::string, Row>;

Rows read_rows(const fs::path& tsv) {
  Rows rows;
  std::istringstream in(read_file(tsv));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string scope, type, subset, caller;
    Row r;
    double precision, recall;
    f >> scope >> type >> subset >> caller >> r.tp >> r.fp >> r.fn >> precision >> recall >> r.f1 >> r.gt;
    rows[scope + "/" + type + "/" + subset + "/" + caller] = r;
  }
  return rows;
}

struct EvalGiab : ::testing::Test {
  TempDir tmp;
  fs::path ref;
  void SetUp() override {
    if (!fs::exists(hg001() / "truth.vcf.gz")) GTEST_SKIP() << "shared data not found at " << hg001();
    if (run_command("bcftools --version && samtools --version") != 0)
      GTEST_SKIP() << "bcftools/samtools missing";
    ref = tmp.path / "chr20.fa";
    ASSERT_EQ(run_command("bgzip -dc " + (hg001() / "ucsc.hg19.chr20.unittest.fasta.gz").string() + " > " +
                          ref.string() + " && samtools faidx " + ref.string()),
              0);
  }
  Rows eval(const fs::path& calls, const std::string& extra = "") {
    const fs::path tsv = tmp.path / "rows.tsv";
    std::string log;
    EXPECT_EQ(run_command("bash " + std::string(OMICSD_SOURCE_DIR) + "/scripts/eval-giab.sh --window " +
                              (hg001() / "reads_window.bed").string() + " --tsv " + tsv.string() + " " +
                              extra + " " + ref.string() + " " + (hg001() / "truth.vcf.gz").string() + " " +
                              (hg001() / "confident.bed").string() + " " + calls.string(),
                          &log),
              0)
        << log;
    return read_rows(tsv);
  }
};

TEST_F(EvalGiab, TruthAgainstItselfIsPerfect) {
  const Rows rows = eval(hg001() / "truth.vcf.gz", "--names truth");
  const Row snp = rows.at("confident/SNP/all/truth"), indel = rows.at("confident/INDEL/all/truth");
  EXPECT_EQ(snp.tp, 45);
  EXPECT_EQ(indel.tp, 4);
  EXPECT_EQ(rows.at("window/SNP/all/truth").tp, 188);
  EXPECT_EQ(rows.at("window/INDEL/all/truth").tp, 35);
  for (const auto& [key, r] : rows) {
    EXPECT_EQ(r.fp, 0) << key;
    EXPECT_EQ(r.fn, 0) << key;
    EXPECT_EQ(r.gt, r.tp) << key;
  }
  // The length bins partition the indels; het + hom-alt partition each type.
  for (const std::string scope : {"confident", "window"}) {
    int bins = 0;
    for (const std::string b : {"1", "2-5", "6-15", ">15"})
      bins += rows.at(scope + "/INDEL/" + b + "/truth").tp;
    EXPECT_EQ(bins, rows.at(scope + "/INDEL/all/truth").tp) << scope;
    for (const std::string t : {"SNP", "INDEL"})
      EXPECT_EQ(rows.at(scope + "/" + t + "/het/truth").tp + rows.at(scope + "/" + t + "/homalt/truth").tp,
                rows.at(scope + "/" + t + "/all/truth").tp)
          << scope << " " << t;
  }
}

TEST_F(EvalGiab, EditedCallsMoveExactlyTheirRows) {
  // Inside confident interval chr20:10000847-10002407: drop the het SNP at 10001019, call the hom SNP at
  // 10001298 het, add a false het SNP at 10001100 and a false one at 10001200 that is FILTERed.
  const fs::path calls = tmp.path / "calls.vcf.gz";
  const std::string script =
      "set -e; cd " + tmp.path.string() + "; r1=$(samtools faidx " + ref.string() +
      " chr20:10001100-10001100 | tail -1); r2=$(samtools faidx " + ref.string() +
      " chr20:10001200-10001200 | tail -1); alt() { case $1 in A) echo C;; *) echo A;; esac; }; "
      "bcftools view -h " +
      (hg001() / "truth.vcf.gz").string() +
      " | sed '/^#CHROM/i ##FILTER=<ID=LowQual,Description=\"low\">' > calls.vcf; "
      "{ bcftools view -H " +
      (hg001() / "truth.vcf.gz").string() +
      " | awk -F'\\t' 'BEGIN{OFS=\"\\t\"} $2 == 10001019 {next} $2 == 10001298 {sub(/^1\\|1/, \"0/1\", $10)} "
      "{print}'; printf 'chr20\\t10001100\\t.\\t%s\\t%s\\t50\\tPASS\\t.\\tGT\\t0/1\\n' $r1 $(alt $r1); "
      "printf 'chr20\\t10001200\\t.\\t%s\\t%s\\t5\\tLowQual\\t.\\tGT\\t0/1\\n' $r2 $(alt $r2); } "
      "| sort -k2,2n >> calls.vcf; bgzip -f calls.vcf; tabix -f calls.vcf.gz";
  write_file(tmp.path / "edit.sh", script);
  std::string log;
  ASSERT_EQ(run_command("bash " + (tmp.path / "edit.sh").string(), &log), 0) << log;
  const Rows rows = eval(calls, "--names edited --against " + (hg001() / "truth.vcf.gz").string());
  const Row all = rows.at("confident/SNP/all/edited");
  EXPECT_EQ(all.tp, 44);
  EXPECT_EQ(all.fn, 1);
  EXPECT_EQ(all.fp, 1);   // the FILTERed false SNP is not a call
  EXPECT_EQ(all.gt, 43);  // 10001298 found, genotype wrong
  const Row het = rows.at("confident/SNP/het/edited"), hom = rows.at("confident/SNP/homalt/edited");
  EXPECT_EQ(het.fn, 1);   // 10001019 was het in the truth
  EXPECT_EQ(het.fp, 1);   // the false SNP was called het
  EXPECT_EQ(hom.tp, 33);  // 10001298 is hom in the truth: a TP of the hom-alt row ...
  EXPECT_EQ(hom.gt, 32);  // ... with a genotype mismatch
  EXPECT_EQ(hom.fp, 0);
  EXPECT_NEAR(all.f1, 44.0 / 45.0, 1e-4);  // precision = recall = 44/45
  // Indels untouched; the peer column (the truth itself) perfect.
  EXPECT_EQ(rows.at("confident/INDEL/all/edited").tp, 4);
  EXPECT_EQ(rows.at("confident/INDEL/all/edited").fp, 0);
  EXPECT_EQ(rows.at("window/SNP/all/truth").tp, 188);
  EXPECT_EQ(rows.at("window/SNP/all/truth").fp, 0);
  // With --all-records the FILTERed call counts as a false positive too.
  EXPECT_EQ(eval(calls, "--names edited --all-records").at("confident/SNP/all/edited").fp, 2);
}

}  // namespace
}  // namespace omicsd::test
