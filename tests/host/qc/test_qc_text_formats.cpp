// The QC texts MultiQC parses (host/qc/qc_text_formats.hpp) against the tools whose formats they
// take: `samtools flagstat`, the CHK, SN and distribution lines of `samtools stats`, and the SN, TSTV,
// IDD and ST lines of `bcftools stats`, on the same files: the real NA12878 reads and truth sets of
// ../shared/data and crafted files with every flag and variant type those counts distinguish.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "host/io/reference.hpp"
#include "host/qc/qc_report.hpp"
#include "host/qc/qc_text_formats.hpp"
#include "tests/support/test_support.hpp"

using namespace omicsd;
namespace fs = std::filesystem;

namespace {

bool have_tools() { return test::run_command("samtools --version && bcftools --version") == 0; }

fs::path tiny() { return test::shared_data_dir() / "na12878-chr22-tiny"; }

std::string tool_output(const std::string& cmd) {
  std::string out;
  EXPECT_EQ(test::run_command(cmd + " 2>/dev/null", &out), 0) << cmd;
  return out;
}

// The lines of `text` whose first field is one of `sections`, id column kept.
std::vector<std::string> section_lines(const std::string& text, const std::vector<std::string>& sections) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    for (const auto& s : sections)
      if (line.rfind(s + "\t", 0) == 0) out.push_back(line);
  return out;
}

// A small two-contig reference (indexed) for the crafted files.
fs::path write_reference(const fs::path& dir) {
  const fs::path fa = dir / "ref.fa";
  std::string seq;
  for (int i = 0; i < 250; ++i) seq += "ACGT";
  test::write_file(fa, ">c1\n" + seq + "\n>c2\n" + seq + "\n");
  EXPECT_EQ(test::run_command("samtools faidx " + fa.string()), 0);
  return fa;
}

TEST(QcTextFormats, FlagstatEqualsSamtoolsOnRealReads) {
  if (!have_tools() || !fs::exists(tiny() / "NA12878.chr22.tiny.bam"))
    GTEST_SKIP() << "samtools or shared data missing";
  const fs::path bam = tiny() / "NA12878.chr22.tiny.bam";
  const QcReport q = compute_qc(bam.string(), Reference::load((tiny() / "q.fa").string()));
  EXPECT_EQ(flagstat_text(q.flagstat), tool_output("samtools flagstat " + bam.string()));
}

// Every case bam_stat.c counts apart: QC-failed, secondary, supplementary, duplicates (primary and
// not), singletons, mates on another contig below and above MAPQ 5, unmapped pairs and reads.
TEST(QcTextFormats, FlagstatEqualsSamtoolsOnEveryFlagCase) {
  if (!have_tools()) GTEST_SKIP() << "samtools not installed";
  test::TempDir dir;
  const fs::path fa = write_reference(dir.path);
  const std::string s = "\tACGTACGTAC\tIIIIIIIIII\n";
  const std::string sam =
      "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:c1\tLN:1000\n@SQ\tSN:c2\tLN:1000\n"
      "p1\t99\tc1\t100\t60\t10M\t=\t200\t110" +
      s + "d1\t1123\tc1\t100\t60\t10M\t=\t200\t110" + s + "x1\t65\tc1\t150\t3\t10M\tc2\t300\t0" + s +
      "x2\t65\tc1\t160\t10\t10M\tc2\t310\t0" + s + "s1\t73\tc1\t170\t60\t10M\t=\t170\t0" + s +
      "s1\t133\tc1\t170\t0\t*\t=\t170\t0" + s + "p1\t147\tc1\t200\t60\t10M\t=\t100\t-110" + s +
      "d1\t1171\tc1\t200\t60\t10M\t=\t100\t-110" + s + "sup\t2048\tc1\t250\t60\t5S5M\t*\t0\t0" + s +
      "sec\t256\tc1\t260\t0\t10M\t*\t0\t0" + s + "sd\t1280\tc1\t265\t0\t10M\t*\t0\t0" + s +
      "qf\t512\tc1\t270\t20\t10M\t*\t0\t0" + s + "qfd\t1536\tc1\t280\t20\t10M\t*\t0\t0" + s +
      "qfp\t611\tc1\t290\t20\t10M\t=\t300\t20" + s + "qfp\t659\tc1\t300\t20\t10M\t=\t290\t-20" + s +
      "x1\t129\tc2\t300\t40\t10M\tc1\t150\t0" + s + "x2\t129\tc2\t310\t40\t10M\tc1\t160\t0" + s +
      "u2\t77\t*\t0\t0\t*\t*\t0\t0" + s + "u2\t141\t*\t0\t0\t*\t*\t0\t0" + s + "u1\t4\t*\t0\t0\t*\t*\t0\t0" +
      s;
  const fs::path path = dir.path / "flags.sam";
  test::write_file(path, sam);
  const QcReport q = compute_qc(path.string(), Reference::load(fa.string()));
  const std::string ours = flagstat_text(q.flagstat);
  EXPECT_EQ(ours, tool_output("samtools flagstat " + path.string()));
  EXPECT_NE(ours.find("3 + 1 duplicates"), std::string::npos) << ours;  // the case list is what it says
}

// Every SN key `samtools stats` (1.16, no options) writes; all of them are compared, values and
// comments, with nothing left out.
const std::vector<std::string> kSamtoolsSnKeys = {"raw total sequences",
                                                  "filtered sequences",
                                                  "sequences",
                                                  "is sorted",
                                                  "1st fragments",
                                                  "last fragments",
                                                  "reads mapped",
                                                  "reads mapped and paired",
                                                  "reads unmapped",
                                                  "reads properly paired",
                                                  "reads paired",
                                                  "reads duplicated",
                                                  "reads MQ0",
                                                  "reads QC failed",
                                                  "non-primary alignments",
                                                  "supplementary alignments",
                                                  "total length",
                                                  "total first fragment length",
                                                  "total last fragment length",
                                                  "bases mapped",
                                                  "bases mapped (cigar)",
                                                  "bases trimmed",
                                                  "bases duplicated",
                                                  "mismatches",
                                                  "error rate",
                                                  "average length",
                                                  "average first fragment length",
                                                  "average last fragment length",
                                                  "maximum length",
                                                  "maximum first fragment length",
                                                  "maximum last fragment length",
                                                  "average quality",
                                                  "insert size average",
                                                  "insert size standard deviation",
                                                  "inward oriented pairs",
                                                  "outward oriented pairs",
                                                  "pairs with other orientation",
                                                  "pairs on different chromosomes",
                                                  "percentage of properly paired reads (%)"};

// The sections of `samtools stats` we write: the checksums, the summary numbers and the distributions
// (qualities by cycle, GC content, base composition by cycle, insert sizes, read lengths, indels,
// coverage, GC-depth): every section samtools writes without a reference.
const std::vector<std::string> kSamtoolsSections = {"CHK", "SN",  "FFQ", "LFQ", "GCF", "GCL", "GCC",
                                                    "GCT", "FBC", "FTC", "LBC", "LTC", "IS",  "RL",
                                                    "FRL", "LRL", "ID",  "IC",  "COV", "GCD"};

// Every line of `text` but the comments.
std::vector<std::string> data_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.starts_with("#")) out.push_back(line);
  return out;
}

// Our `samtools stats` text of `bam` equals samtools' own: section by section, SN key by key, and as a
// whole (every line but the comments, in order: no section left out).
std::string expect_samtools_stats_equal(const fs::path& bam, const fs::path& fa) {
  const QcReport q = compute_qc(bam.string(), Reference::load(fa.string()));
  const std::string ours = samtools_stats_text(q.samtools_stats, bam.filename().string());
  const std::string theirs = tool_output("samtools stats " + bam.string());
  std::vector<std::string> keys;
  for (const auto& line : section_lines(theirs, {"SN"})) keys.push_back(line.substr(3, line.find(":\t") - 3));
  EXPECT_EQ(keys, kSamtoolsSnKeys) << "samtools writes other SN keys than those compared";
  for (const std::string& section : kSamtoolsSections)
    EXPECT_EQ(section_lines(ours, {section}), section_lines(theirs, {section}))
        << bam << ": section " << section;
  EXPECT_EQ(data_lines(ours), data_lines(theirs)) << bam;
  EXPECT_EQ(ours.rfind("# This file was produced by samtools stats", 0), 0u);  // MultiQC's marker
  return ours;
}

TEST(QcTextFormats, SamtoolsStatsEqualSamtoolsOnRealReads) {
  if (!have_tools() || !fs::exists(tiny() / "NA12878.chr22.tiny.bam"))
    GTEST_SKIP() << "samtools or shared data missing";
  expect_samtools_stats_equal(tiny() / "NA12878.chr22.tiny.bam", tiny() / "q.fa");
  // Unaligned and empty BAMs: no insert sizes, coverage or GC-depth bins to divide by.
  for (const char* name : {"almost-empty.bam", "almost-empty-2.bam", "empty.bam"}) {
    const fs::path bam = test::shared_data_dir() / "edge-cases" / "viral-ngs" / name;
    if (fs::exists(bam)) expect_samtools_stats_equal(bam, tiny() / "q.fa");
  }
  const fs::path chr20 = test::shared_data_dir() / "hg001-chr20-100kb";
  if (fs::exists(chr20 / "NA12878_S1.chr20.10_10p1mb.bam"))
    expect_samtools_stats_equal(chr20 / "NA12878_S1.chr20.10_10p1mb.bam",
                                chr20 / "ucsc.hg19.chr20.unittest.fasta.gz");
}

// Every case stats.c counts apart: duplicates (primary, supplementary, unmapped), unmapped reads and
// pairs, secondary and supplementary records (hard-clipped: the unclipped length), QC-failed reads,
// MAPQ 0, pairs on different chromosomes, inward / outward / same-strand pairs, a TLEN past the 8000 cap,
// a read with neither or both of READ1/READ2, unpaired reads, a record without SEQ, a missing
// quality string, N and ambiguity codes, insertions and deletions on both strands, soft clips, and coverage
// above 1000x.
TEST(QcTextFormats, SamtoolsStatsEqualSamtoolsOnEveryFlagCase) {
  if (!have_tools()) GTEST_SKIP() << "samtools not installed";
  test::TempDir dir;
  const fs::path fa = write_reference(dir.path);
  const std::string s = "\tACGTACGTAC\tIIIIIIIIII\n";
  const std::string t = "\tGGCCGGTTAA\t#+5?IIIIII\tNM:i:2\n";
  std::string sam =
      "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:c1\tLN:1000\n@SQ\tSN:c2\tLN:1000\n"
      "p1\t99\tc1\t100\t60\t10M\t=\t200\t110" +
      s + "d1\t1123\tc1\t100\t60\t10M\t=\t200\t110" + t + "o1\t83\tc1\t120\t60\t4M2I4M\t=\t300\t190" + t +
      "x1\t65\tc1\t150\t3\t10M\tc2\t300\t0" + s + "x2\t65\tc1\t160\t10\t10M\tc2\t310\t0" + s +
      "s1\t73\tc1\t170\t60\t10M\t=\t170\t0" + s + "s1\t133\tc1\t170\t0\t*\t=\t170\t0" + s +
      "f1\t97\tc1\t180\t0\t3S7M\t=\t400\t9000" + t + "p1\t147\tc1\t200\t60\t10M\t=\t100\t-110" + s +
      "d1\t1171\tc1\t200\t60\t10M\t=\t100\t-110" + s +
      "sup\t2048\tc1\t250\t60\t5H5M\t*\t0\t0\tACGTA\tIIIII\n" +
      "sud\t3072\tc1\t252\t60\t3M4H\t*\t0\t0\tACG\tIII\tNM:i:1\n" + "sec\t256\tc1\t260\t0\t10M\t*\t0\t0" + s +
      "sd\t1280\tc1\t265\t0\t10M\t*\t0\t0" + s + "qf\t512\tc1\t270\t20\t10M\t*\t0\t0" + s +
      "qfd\t1536\tc1\t280\t20\t10M\t*\t0\t0" + s + "qfp\t611\tc1\t290\t20\t10M\t=\t300\t20" + s +
      "qfp\t659\tc1\t300\t20\t10M\t=\t290\t-20" + s + "o1\t163\tc1\t300\t60\t3M1D7M\t=\t120\t-190" + t +
      "ss\t67\tc1\t310\t60\t10M\t=\t320\t20" + s + "ss\t131\tc1\t320\t60\t10M\t=\t310\t-20" + s +
      "nq\t0\tc1\t330\t60\t10M\t*\t0\t0\tACGTACGTAC\t*\n" + "ns\t0\tc1\t335\t60\t10M\t*\t0\t0\t*\t*\n" +
      "nb\t1\tc1\t340\t60\t10M\t*\t0\t0" + s + "bb\t193\tc1\t345\t60\t10M\t*\t0\t0" + s +
      "rv\t16\tc1\t350\t60\t2M3I5M\t*\t0\t0" + t + "rd\t16\tc1\t355\t60\t4M2D6M\t*\t0\t0" + t +
      "amb\t16\tc1\t360\t60\t10M\t*\t0\t0\tACNTRCGTMC\tIIIIIIIIII\n" +
      "f1\t145\tc1\t400\t60\t10M\t=\t180\t-9000" + t;
  for (int i = 0; i < 1100; ++i) sam += "deep" + std::to_string(i) + "\t0\tc1\t600\t60\t10M\t*\t0\t0" + s;
  sam += "x1\t129\tc2\t300\t40\t10M\tc1\t150\t0" + s + "x2\t129\tc2\t310\t40\t10M\tc1\t160\t0" + s +
         "ud\t1093\tc2\t320\t0\t*\t=\t320\t0" + s + "ud\t1161\tc2\t320\t60\t10M\t=\t320\t0" + s +
         "u2\t77\t*\t0\t0\t*\t*\t0\t0" + s + "u2\t141\t*\t0\t0\t*\t*\t0\t0" + s +
         "u1\t4\t*\t0\t0\t*\t*\t0\t0" + s;
  const fs::path path = dir.path / "flags.sam";
  test::write_file(path, sam);
  const std::string ours = expect_samtools_stats_equal(path, fa);
  // The case list is what it says: duplicates d1 (both mates), sud (supplementary), qfd, ud (both, one
  // unmapped); different chromosomes x1, x2 and the pairs nb and bb whose mate has no contig (stats.c
  // counts a mapped mate on contig -1 as another chromosome).
  EXPECT_NE(ours.find("SN\treads duplicated:\t6\t"), std::string::npos) << ours;
  EXPECT_NE(ours.find("SN\tpairs on different chromosomes:\t3\n"), std::string::npos) << ours;
  EXPECT_NE(ours.find("COV\t[1000<]\t1000\t"), std::string::npos) << ours;
}

std::vector<std::string> bcftools_sections(const std::string& text) {
  return section_lines(text, {"SN", "TSTV", "IDD", "ST"});
}

void expect_vcf_stats_equal(const fs::path& vcf) {
  const QcReport q = compute_qc((tiny() / "NA12878.chr22.tiny.bam").string(),
                                Reference::load((tiny() / "q.fa").string()), vcf.string());
  const std::string ours = bcftools_stats_text(q.vcf_stats, vcf.filename().string());
  const auto want = bcftools_sections(tool_output("bcftools stats " + vcf.string()));
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(bcftools_sections(ours), want) << vcf;
  EXPECT_NE(ours.find("This file was produced by bcftools stats"), std::string::npos);  // MultiQC's marker
  EXPECT_NE(ours.find("\nID\t0\t" + vcf.filename().string() + "\n"), std::string::npos);
}

TEST(QcTextFormats, BcftoolsStatsEqualBcftoolsOnTruthSets) {
  if (!have_tools() || !fs::exists(tiny() / "NA12878.chr22.tiny.bam"))
    GTEST_SKIP() << "bcftools or shared data missing";
  expect_vcf_stats_equal(tiny() / "truth.vcf.gz");
  for (const auto& e : fs::recursive_directory_iterator(test::shared_data_dir())) {
    const std::string name = e.path().filename().string();
    if (name.size() > 7 && name.ends_with(".vcf.gz") && e.path().parent_path().filename() != "edge-cases" &&
        e.path() != tiny() / "truth.vcf.gz")
      expect_vcf_stats_equal(e.path());
  }
}

// Multiallelic SNPs, MNPs, a record both SNP and indel, deletions and an insertion past the 60-base
// cap, a REF of N, no-ALT and gVCF reference records, a symbolic SV, a filtered record.
TEST(QcTextFormats, BcftoolsStatsEqualBcftoolsOnEveryVariantType) {
  if (!have_tools() || !fs::exists(tiny() / "NA12878.chr22.tiny.bam"))
    GTEST_SKIP() << "bcftools or shared data missing";
  test::TempDir dir;
  const std::string long_ins = "T" + std::string(70, 'A');
  const std::string vcf =
      "##fileformat=VCFv4.2\n##contig=<ID=c1,length=1000>\n"
      "##FILTER=<ID=LowQual,Description=\"low\">\n"
      "##ALT=<ID=DEL,Description=\"deletion\">\n##ALT=<ID=NON_REF,Description=\"any\">\n"
      "##FORMAT=<ID=GT,Number=1,Type=String,Description=\"genotype\">\n"
      "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n"
      "c1\t10\t.\tA\tG\t50\tPASS\t.\tGT\t0/1\t1/1\n"
      "c1\t20\t.\tA\tC,T\t50\tPASS\t.\tGT\t1/2\t0/1\n"
      "c1\t25\t.\tC\tT,G,A\t50\tPASS\t.\tGT\t1/2\t0/3\n"
      "c1\t30\t.\tAC\tGT\t50\tPASS\t.\tGT\t0/1\t0/0\n"
      "c1\t40\t.\tA\tAT,G\t50\tPASS\t.\tGT\t1/2\t0/1\n"
      "c1\t50\t.\tACGT\tA\t50\tPASS\t.\tGT\t0/1\t./.\n"
      "c1\t60\t.\tG\t.\t50\tPASS\t.\tGT\t0/0\t0/0\n"
      "c1\t70\t.\tG\t<*>\t.\tPASS\t.\tGT\t0/0\t0/0\n"
      "c1\t80\t.\tG\t<NON_REF>\t.\tPASS\t.\tGT\t0/0\t0/0\n"
      "c1\t90\t.\tT\t" +
      long_ins +
      "\t50\tPASS\t.\tGT\t0/1\t0/0\n"
      "c1\t95\t.\tN\tA\t50\tPASS\t.\tGT\t0/1\t0/0\n"
      "c1\t100\t.\tA\t<DEL>\t50\tPASS\t.\tGT\t0/1\t0/0\n"
      "c1\t110\t.\tC\tT\t3\tLowQual\t.\tGT\t0/1\t0/0\n"
      "c1\t120\t.\tG\tA,GTT,<NON_REF>\t50\tPASS\t.\tGT\t1/2\t0/0\n"
      "c1\t130\t.\tTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT\tT\t50\tPASS\t."
      "\tGT\t0/1\t0/0\n";
  const fs::path path = dir.path / "types.vcf";
  test::write_file(path, vcf);
  expect_vcf_stats_equal(path);
}

}  // namespace
