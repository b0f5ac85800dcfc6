// End-to-end tests of ploidy and read groups through the real binary: an unaligned BAM's @RG lines
// and per-read RG tags survive `omicsd align` and `omicsd run`, haploid calls on the Ebola virus
// sample (ebov-g5012), multi-sample input refused with one line, ploidy BED errors naming the line.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "tests/support/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;

fs::path ebov() { return shared_data_dir() / "ebov-g5012"; }
fs::path tiny() { return shared_data_dir() / "na12878-chr22-tiny"; }

std::string lines_of(const std::string& cmd) {
  std::string out;
  EXPECT_EQ(run_command(cmd + " 2>/dev/null", &out), 0) << cmd;
  return out;
}
size_t count_lines(const std::string& s) { return size_t(std::count(s.begin(), s.end(), '\n')); }
// Runs `cmd` with stdout discarded; returns its exit status and its stderr in *err.
int run_for_stderr(const std::string& cmd, const fs::path& dir, std::string* err) {
  const fs::path file = dir / "stderr.txt";
  const int rc = run_command("(" + cmd + " >/dev/null 2>" + file.string() + ")");
  *err = read_file(file);
  return rc;
}
// "name RG:Z:id" of every primary record (mates share both), sorted and unique.
std::string read_groups_by_name(const fs::path& bam) {
  return lines_of("samtools view -F 0x900 " + bam.string() +
                  " | awk '{for (i = 12; i <= NF; i++) if ($i ~ /^RG:Z:/) print $1, $i}' | sort -u");
}

struct EbovFixture : ::testing::Test {
  TempDir tmp;
  fs::path ref, ubam;
  void SetUp() override {
    if (!fs::exists(ebov() / "G5012.3.testreads.bam")) GTEST_SKIP() << "shared data not found at " << ebov();
    ref = tmp.path / "ebov.fa";
    fs::copy_file(ebov() / "ebov-makona.fasta", ref);
    ubam = ebov() / "G5012.3.testreads.bam";
  }
};

TEST_F(EbovFixture, AlignKeepsEveryReadGroupLineAndTag) {
  const fs::path out = tmp.path / "a.bam";
  std::string log;
  ASSERT_EQ(run_command(
                omicsd_binary() + " align -t 2 " + ref.string() + " " + ubam.string() + " -o " + out.string(),
                &log),
            0)
      << log;
  const std::string in_rg = lines_of("samtools view -H " + ubam.string() + " | grep '^@RG'");
  const std::string out_rg = lines_of("samtools view -H " + out.string() + " | grep '^@RG'");
  EXPECT_EQ(count_lines(in_rg), 12u);
  EXPECT_EQ(out_rg, in_rg) << "the @RG lines, verbatim and in order";
  const std::string in_tags = read_groups_by_name(ubam), out_tags = read_groups_by_name(out);
  EXPECT_EQ(count_lines(in_tags), 9355u) << "18,710 reads in pairs";
  EXPECT_EQ(out_tags, in_tags) << "every read keeps its read group";
  // Every record (secondary, unmapped too) carries a declared read group.
  EXPECT_EQ(lines_of("samtools view " + out.string() + " | grep -vc 'RG:Z:' || true"), "0\n");

  // -R replaces them: one read group for every read.
  const fs::path one = tmp.path / "one.bam";
  ASSERT_EQ(run_command(omicsd_binary() + " align -t 2 -R '@RG\\tID:x\\tSM:s' " + ref.string() + " " +
                            ubam.string() + " -o " + one.string(),
                        &log),
            0)
      << log;
  EXPECT_EQ(lines_of("samtools view -H " + one.string() + " | grep '^@RG'"), "@RG\tID:x\tSM:s\n");
  EXPECT_EQ(lines_of("samtools view " + one.string() + " | grep -vc 'RG:Z:x' || true"), "0\n");
}

TEST_F(EbovFixture, RunPloidyOneCallsHaploidGenotypesNamedBySm) {
  const fs::path dir = tmp.path / "run";
  std::string log;
  ASSERT_EQ(run_command(omicsd_binary() + " run -t 2 --ploidy 1 " + ref.string() + " " + ubam.string() +
                            " -o " + dir.string(),
                        &log),
            0)
      << log;
  // Output names and the VCF sample come from the @RG SM; the BAM keeps the read groups.
  const fs::path vcf = dir / "G5012.3.vcf.gz", bam = dir / "G5012.3.bam";
  ASSERT_TRUE(fs::exists(vcf)) << log;
  EXPECT_EQ(lines_of("bcftools query -l " + vcf.string()), "G5012.3\n");
  EXPECT_EQ(count_lines(lines_of("samtools view -H " + bam.string() + " | grep '^@RG'")), 12u);
  EXPECT_EQ(read_groups_by_name(bam), read_groups_by_name(ubam));
  // QC counts haploid calls (hom-alt: one copy, the alt).
  const std::string qc = read_file(dir / "G5012.3.qc.json");
  for (const char* field : {"\"snvs\": 13", "\"indels\": 2", "\"het\": 0", "\"hom_alt\": 15"})
    EXPECT_NE(qc.find(field), std::string::npos) << field << "\n" << qc;
  // Every GT is one allele, PL has one value per allele, and the truth SNVs are there with GT 1.
  const std::string gts = lines_of("bcftools query -f '[%GT %PL]\\n' " + vcf.string());
  EXPECT_GT(count_lines(gts), 10u);
  std::istringstream in(gts);
  for (std::string line; std::getline(in, line);) {
    EXPECT_EQ(line.find_first_of("/|"), std::string::npos) << line;
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 1) << "biallelic haploid PL: 2 values: " << line;
  }
  const std::set<std::string> truth = vcf_snvs(ebov() / "truth.vcf.gz"), got = vcf_snvs(vcf);
  EXPECT_EQ(truth.size(), 13u);
  for (const std::string& t : truth) EXPECT_TRUE(got.count(t)) << "missing " << t;

  // The same calls for 1 thread; a haploid gVCF has haploid reference blocks with 2 PLs.
  const fs::path one = tmp.path / "t1.vcf.gz", gvcf = tmp.path / "g.vcf.gz";
  ASSERT_EQ(run_command(omicsd_binary() + " call -t 1 --ploidy 1 " + ref.string() + " " + bam.string() +
                            " -o " + one.string(),
                        &log),
            0)
      << log;
  EXPECT_EQ(lines_of("bcftools view -H " + one.string()), lines_of("bcftools view -H " + vcf.string()));
  ASSERT_EQ(run_command(omicsd_binary() + " call -t 2 --gvcf --ploidy 1 " + ref.string() + " " +
                            bam.string() + " -o " + gvcf.string(),
                        &log),
            0)
      << log;
  const std::string blocks = lines_of("bcftools query -f '%ALT [%GT %PL]\\n' " + gvcf.string() +
                                      " | grep '^<NON_REF> ' | cut -d' ' -f2- | sort -u");
  ASSERT_FALSE(blocks.empty());
  std::istringstream bin(blocks);
  for (std::string line; std::getline(bin, line);) {
    EXPECT_EQ(line.rfind("0 0,", 0), 0u) << "haploid block: GT 0, PL 0,GQ: " << line;
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 1) << line;
  }
  // A ploidy BED: ploidy 0 over the whole genome calls nothing.
  const fs::path none_bed = tmp.path / "none.bed", none = tmp.path / "none.vcf.gz";
  write_file(none_bed, "KJ660346.2\t0\t18959\t0\n");
  ASSERT_EQ(run_command(omicsd_binary() + " call --ploidy-bed " + none_bed.string() + " " + ref.string() +
                            " " + bam.string() + " -o " + none.string(),
                        &log),
            0)
      << log;
  EXPECT_EQ(lines_of("bcftools view -H " + none.string()), "");
}

struct TwoSampleFixture : ::testing::Test {
  TempDir tmp;
  fs::path ref, bam;
  void SetUp() override {
    if (!fs::exists(tiny() / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny();
    ref = tmp.path / "q.fa";
    fs::copy_file(tiny() / "q.fa", ref);
    // The tiny BAM with a second @RG line of another sample.
    bam = tmp.path / "two.bam";
    const fs::path header = tmp.path / "h.sam";
    ASSERT_EQ(run_command("samtools view -H " + (tiny() / "NA12878.chr22.tiny.bam").string() + " > " +
                          header.string() + " && printf '@RG\\tID:other\\tSM:NA12891\\n' >> " +
                          header.string() + " && samtools reheader " + header.string() + " " +
                          (tiny() / "NA12878.chr22.tiny.bam").string() + " > " + bam.string() +
                          " && samtools index " + bam.string()),
              0);
  }
};

TEST_F(TwoSampleFixture, RefusedWithOneLineUnlessAllowed) {
  const fs::path out = tmp.path / "o.vcf.gz";
  std::string err;
  EXPECT_NE(
      run_for_stderr(omicsd_binary() + " call " + ref.string() + " " + bam.string() + " -o " + out.string(),
                     tmp.path, &err),
      0);
  EXPECT_EQ(count_lines(err), 1u) << err;
  EXPECT_NE(err.find("2 samples"), std::string::npos) << err;
  EXPECT_NE(err.find("NA12891"), std::string::npos) << err;
  EXPECT_NE(err.find("--allow-multiple-samples"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(out));
  std::string log;
  ASSERT_EQ(run_command(omicsd_binary() + " call --allow-multiple-samples --sample trio " + ref.string() +
                            " " + bam.string() + " -o " + out.string(),
                        &log),
            0)
      << log;
  EXPECT_EQ(lines_of("bcftools query -l " + out.string()), "trio\n");
  // `omicsd run` refuses such an input before aligning.
  EXPECT_NE(run_for_stderr(omicsd_binary() + " run " + ref.string() + " " + bam.string() + " -o " +
                               (tmp.path / "run").string(),
                           tmp.path, &err),
            0);
  EXPECT_NE(err.find("--allow-multiple-samples"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(tmp.path / "run" / "1.bam"));
}

TEST_F(TwoSampleFixture, BadPloidyOptionsFailWithOneLine) {
  const fs::path bed = tmp.path / "bad.bed", out = tmp.path / "o.vcf.gz";
  write_file(bed, "q\t0\t100\t1\nq\t200\t300\tdiploid\n");
  const std::string base = omicsd_binary() + " call " + ref.string() + " " +
                           (tiny() / "NA12878.chr22.tiny.bam").string() + " -o " + out.string();
  std::string err;
  EXPECT_NE(run_for_stderr(base + " --ploidy-bed " + bed.string(), tmp.path, &err), 0);
  EXPECT_EQ(count_lines(err), 1u) << err;
  EXPECT_NE(err.find(bed.string() + ": line 2: ploidy 'diploid' is not an integer"), std::string::npos)
      << err;
  for (const char* bad : {" --ploidy 0", " --ploidy 11", " --sex m"}) {
    EXPECT_NE(run_for_stderr(base + bad, tmp.path, &err), 0) << bad;
    EXPECT_NE(err.find(std::string(bad).substr(1, std::string(bad).find(' ', 1) - 1)), std::string::npos)
        << bad << ": " << err;
  }
  EXPECT_FALSE(fs::exists(out));
}

// --sex on a contig renamed chrX / chrY (12,356 bp: neither GRCh37 nor GRCh38, so no PARs): a male's
// X is called haploid, a female's X diploid, a female's Y not at all; a ploidy BED overrides --sex.
TEST(SexChromosomes, MaleXHaploidFemaleYNotCalled) {
  if (!fs::exists(tiny() / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny();
  TempDir tmp;
  for (const char* chrom : {"chrX", "chrY"}) {
    const std::string name(chrom);
    const fs::path ref = tmp.path / (name + ".fa"), bam = tmp.path / (name + ".bam");
    ASSERT_EQ(run_command("sed 's/^>q/>" + name + "/' " + (tiny() / "q.fa").string() + " > " + ref.string() +
                          " && samtools view -H " + (tiny() / "NA12878.chr22.tiny.bam").string() +
                          " | sed 's/SN:q\t/SN:" + name + "\t/' > " + (tmp.path / "h.sam").string() +
                          " && samtools reheader " + (tmp.path / "h.sam").string() + " " +
                          (tiny() / "NA12878.chr22.tiny.bam").string() + " > " + bam.string() +
                          " && samtools index " + bam.string()),
              0);
    auto gts = [&](const std::string& options) {
      const fs::path out = tmp.path / "out.vcf.gz";
      std::string log;
      EXPECT_EQ(run_command(omicsd_binary() + " call -t 2 " + options + " " + ref.string() + " " +
                                bam.string() + " -o " + out.string(),
                            &log),
                0)
          << log;
      return lines_of("bcftools query -f '[%GT]\\n' " + out.string() + " | sort -u");
    };
    if (name == "chrX") {
      EXPECT_EQ(gts("--sex male"), "1\n");  // the hets of a diploid sample, called haploid: alt wins
      EXPECT_NE(gts("--sex female").find("0/1"), std::string::npos);
      const fs::path bed = tmp.path / "par.bed";
      write_file(bed, "chrX\t0\t12356\t2\n");  // as if all of it were pseudo-autosomal
      EXPECT_NE(gts("--sex male --ploidy-bed " + bed.string()).find("0/1"), std::string::npos);
    } else {
      EXPECT_EQ(gts("--sex female"), "");
      EXPECT_EQ(gts("--sex male").find('/'), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace omicsd::test
