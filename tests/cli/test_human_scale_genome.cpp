// The human-scale test genome (scripts/make-human-scale-ref.sh, issue 21) at its CI size: built twice
// to the same bytes (sha256 as recorded), GRCh38-style names (HLA alleles with '*' and ':') kept
// through index, align (BAM header and records), call (VCF contig lines and records) and region
// strings; the index is validated against its reference; simulated reads are placed correctly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "host/common/error.hpp"
#include "host/index/minimizer_index.hpp"
#include "host/io/reference.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;

std::string script(const std::string& name) {
  return (fs::path(OMICSD_SOURCE_DIR) / "scripts" / name).string();
}

bool source_installed() {
  return run_command("dpkg -L vt-examples 2>/dev/null | grep -q '/ref/20.fa.gz$'") == 0;
}

std::string sha256_of(const fs::path& p) {
  std::string out;
  EXPECT_EQ(run_command("sha256sum " + p.string() + " | cut -d' ' -f1", &out), 0);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

// One genome for the whole suite (built in a private cache, so CI tests the generator, not a cache).
class HumanScaleGenome : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!source_installed()) return;
    dir_ = new TempDir;
    fasta_ = dir_->path / "small.fa";
    std::string log;
    build_rc_ =
        run_command("OMICSD_DATA_DIR=" + (dir_->path / "cache").string() + " bash " +
                        script("make-human-scale-ref.sh") + " --size small " + fasta_.string() + " 2>&1",
                    &log);
    build_log_ = log;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!source_installed()) GTEST_SKIP() << "vt-examples not installed (scripts/setup.sh)";
    ASSERT_EQ(build_rc_, 0) << build_log_;
  }
  int omicsd(const std::string& args, std::string* out = nullptr) {
    return run_command(omicsd_binary() + " " + args + " 2>&1", out);
  }
  std::string first_hla() {
    std::ifstream in(fasta_.string() + ".fai");
    for (std::string l; std::getline(in, l);)
      if (l.rfind("HLA-A*", 0) == 0) return l.substr(0, l.find('\t'));
    return "";
  }
  static TempDir* dir_;
  static fs::path fasta_;
  static int build_rc_;
  static std::string build_log_;
};
TempDir* HumanScaleGenome::dir_ = nullptr;
fs::path HumanScaleGenome::fasta_;
int HumanScaleGenome::build_rc_ = -1;
std::string HumanScaleGenome::build_log_;

TEST_F(HumanScaleGenome, DeterministicWithTheRecordedChecksum) {
  std::string expected;
  {
    std::ifstream in(fs::path(OMICSD_SOURCE_DIR) / "scripts" / "lib" / "human-scale-ref.sha256");
    for (std::string l; std::getline(in, l);)
      if (l.size() > 66 && l.substr(66) == "v1-small") expected = l.substr(0, 64);
  }
  ASSERT_EQ(expected.size(), 64u);
  EXPECT_EQ(sha256_of(fasta_), expected);
  // A second build in another cache writes the same bytes.
  TempDir again;
  std::string log;
  ASSERT_EQ(
      run_command("OMICSD_DATA_DIR=" + again.path.string() + " bash " + script("make-human-scale-ref.sh") +
                      " --size small " + (again.path / "b.fa").string() + " 2>&1",
                  &log),
      0)
      << log;
  EXPECT_EQ(sha256_of(again.path / "b.fa"), expected);
  EXPECT_NE(run_command("bash " + script("make-human-scale-ref.sh") + " --size huge x.fa 2>&1", &log), 0);
  EXPECT_NE(log.find("unknown size 'huge'"), std::string::npos) << log;
}

TEST_F(HumanScaleGenome, NamedLikeGrch38) {
  const std::vector<std::string> fai = lines_of(read_file(fasta_.string() + ".fai"));
  std::map<std::string, int> kinds;
  std::set<std::string> names;
  for (const std::string& l : fai) {
    const std::string n = l.substr(0, l.find('\t'));
    EXPECT_TRUE(names.insert(n).second) << "repeated name " << n;
    if (n.rfind("HLA-", 0) == 0 && n.find('*') != std::string::npos && n.find(':') != std::string::npos)
      ++kinds["hla"];
    else if (n.size() > 7 && n.substr(n.size() - 7) == "_random")
      ++kinds["random"];
    else if (n.size() > 4 && n.substr(n.size() - 4) == "_alt")
      ++kinds["alt"];
    else if (n.size() > 6 && n.substr(n.size() - 6) == "_decoy")
      ++kinds["decoy"];
    else if (n.rfind("chrUn_", 0) == 0)
      ++kinds["unplaced"];
  }
  for (const char* c : {"chr1", "chr2", "chr20", "chr22", "chrX", "chrY", "chrM", "chrEBV"})
    EXPECT_TRUE(names.count(c)) << c;
  EXPECT_GE(fai.size(), 300u);
  for (const char* k : {"hla", "random", "alt", "decoy", "unplaced"}) EXPECT_GT(kinds[k], 5) << k;
  // samtools agrees with the .fai the generator wrote, and finds HLA names with braces and without.
  std::string out;
  ASSERT_EQ(
      run_command("samtools faidx --fai-idx " + (dir_->path / "check.fai").string() + " " + fasta_.string() +
                      " && cmp " + (dir_->path / "check.fai").string() + " " + fasta_.string() + ".fai",
                  &out),
      0)
      << out;
  const std::string hla = first_hla();
  ASSERT_EQ(run_command("samtools faidx " + fasta_.string() + " '{" + hla + "}:1-10' | tail -1", &out), 0)
      << out;
  EXPECT_EQ(out.size(), 11u) << out;
}

TEST_F(HumanScaleGenome, IndexIsValidatedAgainstItsReference) {
  const Reference ref = Reference::load(fasta_.string());
  EXPECT_GE(ref.find_contig(first_hla()), 0);
  const std::string omi = MinimizerIndex::build(ref, IndexParams{}, (dir_->path / "small.omi").string());
  const MinimizerIndex index = MinimizerIndex::open(omi, ref);
  EXPECT_GT(index.num_positions(), ref.total_length() / 10);
  // Another reference (the same genome less its last contig) and a truncated file are refused.
  const fs::path other = dir_->path / "other.fa";
  {
    const std::vector<std::string> fai = lines_of(read_file(fasta_.string() + ".fai"));
    std::string names;
    for (size_t i = 0; i + 1 < fai.size(); ++i) names += fai[i].substr(0, fai[i].find('\t')) + "\n";
    write_file(dir_->path / "names.txt", names);  // whole names: samtools looks each up as a name first
  }
  ASSERT_EQ(run_command("samtools faidx -r " + (dir_->path / "names.txt").string() + " " + fasta_.string() +
                        " > " + other.string()),
            0);
  const Reference other_ref = Reference::load(other.string());
  EXPECT_EQ(other_ref.contigs().size() + 1, ref.contigs().size());
  try {
    MinimizerIndex::open(omi, other_ref);
    ADD_FAILURE() << "index opened against another reference";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("another reference"), std::string::npos) << e.what();
  }
  const fs::path cut = dir_->path / "cut.omi";
  fs::copy_file(omi, cut);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  EXPECT_THROW(MinimizerIndex::open(cut.string(), ref), InputError);
}

// Reads simulated from the whole genome (dwgsim, fixed seed) land where they came from; reads from one
// HLA allele at high depth give records and calls on the HLA names, found again by region strings.
TEST_F(HumanScaleGenome, AlignAndCallKeepNamesAndPlaceReads) {
  const fs::path d = dir_->path;
  std::string out;
  ASSERT_EQ(
      run_command("cd " + d.string() + " && dwgsim -z 21 -N 20000 -1 150 -2 150 -d 400 -s 50 -e 0.002 " +
                      "-E 0.002 -r 0.001 -R 0.15 -y 0 -n 0 " + fasta_.string() + " genome > /dev/null 2>&1",
                  &out),
      0)
      << out;
  const fs::path bam = d / "genome.bam";
  ASSERT_EQ(omicsd("align -t 2 " + fasta_.string() + " " + (d / "genome.bwa.read1.fastq.gz").string() + " " +
                       (d / "genome.bwa.read2.fastq.gz").string() + " -o " + bam.string(),
                   &out),
            0)
      << out;
  ASSERT_EQ(
      run_command("samtools view -h " + bam.string() + " | python3 " + script("lib/eval_sim_sam.py") +
                      " --no-calibration --json " + (d / "eval.json").string() + " omicsd=- > /dev/null",
                  &out),
      0)
      << out;
  const std::string js = read_file(d / "eval.json");
  auto number = [&](const std::string& key) {
    const size_t at = js.find("\"" + key + "\"");
    EXPECT_NE(at, std::string::npos) << key;
    return std::stod(js.substr(js.find(':', at) + 1));
  };
  // Paralogs at 0.1% divergence cap what any aligner can place confidently: on this genome omicsd
  // places ~97.3% of reads correctly at MAPQ >= 20 (bwa mem 97.1%). The 4 wrong there (1.0e-4; bwa: 2)
  // are pairs whose one sequencing error falls where two copies differ, at MAPQ 24-27 as bwa gives
  // them; none is wrong at MAPQ >= 30. Before the seeder chained by diagonal and MAPQ counted tandem
  // shifts and near-equal copies, 6 were wrong, all at MAPQ 30-40. Aligning the chains that pair with
  // the mate's among paralog copies (issue 21, third part) leaves these reads as they were (97.25%, the
  // same 4); on the quarter genome it took the wrong ones at MAPQ >= 20 from 175 to 34.
  EXPECT_GT(number("correct_hq_frac"), 0.97);
  EXPECT_LT(number("error_rate_hq"), 2e-4);
  const nlohmann::json eval = nlohmann::json::parse(js).at("omicsd");
  int wrong_at_30 = 0;
  for (const auto& bin : eval.at("calibration"))
    if (std::stoi(bin.at("mapq").get<std::string>()) >= 30) wrong_at_30 += bin.at("wrong").get<int>();
  EXPECT_EQ(wrong_at_30, 0) << js;

  // HLA: one allele's reads at ~100x, aligned to the whole genome and called.
  const std::string hla = first_hla();
  ASSERT_EQ(
      run_command("cd " + d.string() + " && samtools faidx " + fasta_.string() + " '" + hla +
                      "' > hla.fa && dwgsim -z 22 -N 2000 -1 150 -2 150 -d 400 -s 50 -e 0.002 -E 0.002 " +
                      "-r 0.003 -R 0 -y 0 -n 0 hla.fa hla > /dev/null 2>&1",
                  &out),
      0)
      << out;
  const fs::path hbam = d / "hla.bam";
  ASSERT_EQ(omicsd("align -t 2 " + fasta_.string() + " " + (d / "hla.bwa.read1.fastq.gz").string() + " " +
                       (d / "hla.bwa.read2.fastq.gz").string() + " -o " + hbam.string(),
                   &out),
            0)
      << out;
  ASSERT_EQ(run_command("samtools view -H " + hbam.string() + " | grep -c -F 'SN:" + hla + "'", &out), 0);
  EXPECT_EQ(out, "1\n");
  ASSERT_EQ(run_command("samtools view -c " + hbam.string() + " '{" + hla + "}:1-100000'", &out), 0) << out;
  EXPECT_GT(std::stoi(out), 1000) << "reads of " << hla << " not placed on it";
  EXPECT_EQ(run_command("samtools view " + hbam.string() + " '" + hla + "' | cut -f3 | sort -u", &out), 0);
  EXPECT_EQ(out, hla + "\n");

  const fs::path bed = d / "hla.bed";
  write_file(bed, hla + "\t0\t2000\n");
  const fs::path vcf = d / "hla.vcf.gz";
  ASSERT_EQ(omicsd("call -t 2 --regions " + bed.string() + " " + fasta_.string() + " " + hbam.string() +
                       " -o " + vcf.string(),
                   &out),
            0)
      << out;
  ASSERT_EQ(
      run_command("bcftools view -h " + vcf.string() + " | grep -c -F '##contig=<ID=" + hla + ",'", &out), 0);
  EXPECT_EQ(out, "1\n");
  // tabix reads regions with htslib's rule (braces); bcftools 1.16's own -r parser cannot parse such names.
  ASSERT_EQ(run_command("tabix " + vcf.string() + " '{" + hla + "}:1-2000' | cut -f1 | sort | uniq -c", &out),
            0)
      << out;
  EXPECT_NE(out.find(" " + hla + "\n"), std::string::npos) << "no calls on " << hla << ": " << out;
}

}  // namespace
}  // namespace omicsd::test
