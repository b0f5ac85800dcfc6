// End-to-end tests of the real binary: `omicsd align` on the shared NA12878 data, output checked with
// samtools, and bad inputs that must fail with one line, a non-zero exit and no finished-looking output.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include "cuda/device_info.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;

fs::path tiny() { return shared_data_dir() / "na12878-chr22-tiny"; }

struct AlignFixture : ::testing::Test {
  TempDir tmp;
  fs::path ref;
  void SetUp() override {
    if (!fs::exists(tiny() / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny();
    ref = tmp.path / "q.fa";
    fs::copy_file(tiny() / "q.fa", ref);  // shared/ is read-only; the index is written next to the FASTA
  }
  int omicsd(const std::string& args, std::string* out = nullptr) {
    return run_command(omicsd_binary() + " " + args, out);
  }
  // name/flag-12-bits -> "seq qual" in sequencer orientation, from samtools fastq.
  std::multiset<std::string> fastq_records(const fs::path& bam) {
    std::string out;
    EXPECT_EQ(run_command("samtools fastq -n -F 0x900 " + bam.string() + " 2>/dev/null", &out), 0);
    std::multiset<std::string> recs;
    std::istringstream in(out);
    std::string h, s, p, q;
    while (std::getline(in, h) && std::getline(in, s) && std::getline(in, p) && std::getline(in, q))
      recs.insert(h + "\n" + s + "\n" + q);
    return recs;
  }
};

TEST_F(AlignFixture, VersionAndHelp) {
  std::string out;
  ASSERT_EQ(omicsd("--version", &out), 0);
  EXPECT_NE(out.find("omicsd"), std::string::npos);
  EXPECT_NE(out.find("git"), std::string::npos);
  // The backends line names CUDA exactly when the CUDA backends are linked in (with the architectures).
  EXPECT_NE(out.find(cuda_backend_compiled() ? "backends: cpu, cuda (CUDA " : "backends: cpu\n"),
            std::string::npos)
      << out;
  ASSERT_EQ(omicsd("align --help", &out), 0);
  EXPECT_NE(out.find("--read-group"), std::string::npos);
}

TEST_F(AlignFixture, RealignsTheSharedBamSortedIndexedAndLossless) {
  const fs::path out = tmp.path / "out.bam";
  std::string log;
  ASSERT_EQ(omicsd("align -t 2 " + ref.string() + " " + (tiny() / "NA12878.chr22.tiny.bam").string() +
                       " -o " + out.string() + " -R '@RG\\tID:rg1\\tSM:NA12878'",
                   &log),
            0)
      << log;
  ASSERT_TRUE(fs::exists(out));
  ASSERT_TRUE(fs::exists(out.string() + ".bai"));
  std::string o;
  EXPECT_EQ(run_command("samtools quickcheck " + out.string(), &o), 0) << o;
  // Coordinate-sorted: samtools sort of our output is identical record for record.
  ASSERT_EQ(run_command("samtools view " + out.string() + " > " + (tmp.path / "a.sam").string() +
                            " && samtools sort -O sam " + out.string() + " | grep -v '^@' > " +
                            (tmp.path / "b.sam").string() + " && cmp " + (tmp.path / "a.sam").string() + " " +
                            (tmp.path / "b.sam").string(),
                        &o),
            0)
      << o;
  ASSERT_EQ(run_command("samtools view -H " + out.string(), &o), 0);
  EXPECT_NE(o.find("SO:coordinate"), std::string::npos);
  EXPECT_NE(o.find("M5:ee5a2decc990ba0220728d924ddd4dba"), std::string::npos) << o;
  EXPECT_NE(o.find("@RG\tID:rg1\tSM:NA12878"), std::string::npos) << o;
  EXPECT_NE(o.find("@PG\tID:omicsd"), std::string::npos) << o;
  // Names, sequences and qualities round-trip exactly (the input's secondary records aside).
  EXPECT_EQ(fastq_records(out), fastq_records(tiny() / "NA12878.chr22.tiny.bam"));
  // Nearly everything maps, nearly all pairs are proper.
  ASSERT_EQ(run_command("samtools flagstat " + out.string(), &o), 0);
  EXPECT_NE(o.find("paired in sequencing"), std::string::npos);
  ASSERT_EQ(run_command("samtools view -c -F 0x4 " + out.string(), &o), 0);
  EXPECT_GT(std::stol(o), 3200);
  ASSERT_EQ(run_command("samtools view -c -f 0x2 " + out.string(), &o), 0);
  EXPECT_GT(std::stol(o), 3100);
  // Every mapped record carries NM, MD, AS and the read group.
  ASSERT_EQ(run_command("samtools view -F 0x4 " + out.string() +
                            " | awk '!/\\tNM:i:/ || !/\\tMD:Z:/ || !/\\tAS:i:/ || !/\\tRG:Z:rg1/' | wc -l",
                        &o),
            0);
  EXPECT_EQ(std::stol(o), 0) << "records without tags";
  // MD and NM agree with samtools calmd.
  ASSERT_EQ(run_command("samtools calmd " + out.string() + " " + ref.string() +
                            " 2>&1 >/dev/null | grep -c 'different' || true",
                        &o),
            0);
  EXPECT_EQ(std::stol(o), 0) << "calmd disagrees with our NM/MD";
}

TEST_F(AlignFixture, PairedFastqGzAndThreadCountGiveIdenticalOutput) {
  std::string o;
  const std::string bam = (tiny() / "NA12878.chr22.tiny.bam").string();
  ASSERT_EQ(
      run_command(
          "cd " + tmp.path.string() + " && samtools collate -u -O " + bam +
              " tmpc | samtools fastq -n -1 r1.fq.gz -2 r2.fq.gz -0 /dev/null -s /dev/null - 2>/dev/null",
          &o),
      0)
      << o;
  const std::string r1 = (tmp.path / "r1.fq.gz").string(), r2 = (tmp.path / "r2.fq.gz").string();
  ASSERT_EQ(
      omicsd("align -t 1 " + ref.string() + " " + r1 + " " + r2 + " -o " + (tmp.path / "t1.bam").string(),
             &o),
      0)
      << o;
  ASSERT_EQ(omicsd("align -t 2 --batch-size 1000 --sort-memory 200K " + ref.string() + " " + r1 + " " + r2 +
                       " -o " + (tmp.path / "t2.bam").string(),
                   &o),
            0)
      << o;
  std::string a, b;
  run_command("samtools view " + (tmp.path / "t1.bam").string() + " | md5sum", &a);
  run_command("samtools view " + (tmp.path / "t2.bam").string() + " | md5sum", &b);
  EXPECT_EQ(a, b) << "threads/batching changed the records";
  // CRAM output with its index.
  ASSERT_EQ(
      omicsd("align --cram " + ref.string() + " " + r1 + " " + r2 + " -o " + (tmp.path / "c.cram").string(),
             &o),
      0)
      << o;
  EXPECT_TRUE(fs::exists(tmp.path / "c.cram.crai"));
  ASSERT_EQ(
      run_command(
          "samtools view -c -T " + ref.string() + " " + (tmp.path / "c.cram").string() + " 2>/dev/null", &o),
      0)
      << o;
  EXPECT_GT(std::stol(o), 3000);
}

// Each bad input: exit code != 0, exactly one line on stderr naming the file, and no output BAM.
struct BadInput {
  std::string name, reads, expect;
};

TEST_F(AlignFixture, BadInputsFailCleanly) {
  const fs::path good = tmp.path / "good.fq";
  write_file(good, "@r1\nACGTACGTAC\n+\nIIIIIIIIII\n");
  write_file(tmp.path / "mismatch.fq", "@r1\nACGTACGTAC\n+\nIIIIIIIIII\n@r2\nACGTACGT\n+\nIIIIIIIIII\n");
  write_file(tmp.path / "binary.fq", std::string("@r1\nAC\0\x01TACGTAC\n+\nIIIIIIIIII\n", 29));
  write_file(tmp.path / "empty.fq", "");
  write_file(tmp.path / "two.fq", "@a\nACGT\n+\nIIII\n@b\nACGT\n+\nIIII\n");
  std::string o;
  ASSERT_EQ(run_command("cd " + tmp.path.string() +
                            " && (for i in $(seq 2000); do printf "
                            "'@r%d\\nACGTACGTACGTACGTACGT\\n+\\nIIIIIIIIIIIIIIIIIIII\\n' $i; done) | gzip > "
                            "full.fq.gz && head -c 300 full.fq.gz > truncated.fq.gz",
                        &o),
            0);
  const std::vector<BadInput> cases = {
      {"length mismatch", (tmp.path / "mismatch.fq").string(), "mismatch.fq"},
      {"binary junk", (tmp.path / "binary.fq").string(), "binary.fq"},
      {"empty input", (tmp.path / "empty.fq").string(), "empty.fq"},
      {"truncated gzip", (tmp.path / "truncated.fq.gz").string(), "truncated.fq.gz"},
      {"mismatched pair files", good.string() + " " + (tmp.path / "two.fq").string(), "fq"},
      {"missing reads", (tmp.path / "nope.fq").string(), "nope.fq"},
  };
  for (const auto& c : cases) {
    const fs::path out = tmp.path / "bad.bam";
    std::string err;
    const int rc = run_command(
        omicsd_binary() + " align --log-level off " + ref.string() + " " + c.reads + " -o " + out.string(),
        &err);
    EXPECT_NE(rc, 0) << c.name;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << c.name << ": " << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.name << ": " << err;
    EXPECT_FALSE(fs::exists(out)) << c.name;
    for (const auto& e : fs::directory_iterator(tmp.path))
      EXPECT_EQ(e.path().filename().string().find("bad.bam"), std::string::npos)
          << c.name << " left " << e.path();
  }
  // Missing reference.
  std::string err;
  EXPECT_NE(run_command(omicsd_binary() + " align --log-level off " + (tmp.path / "no.fa").string() + " " +
                            good.string() + " -o " + (tmp.path / "x.bam").string(),
                        &err),
            0);
  EXPECT_NE(err.find("no.fa"), std::string::npos) << err;
  // Aligned BAM against the wrong reference.
  write_file(tmp.path / "other.fa", ">q\nACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGT\n");
  EXPECT_NE(
      run_command(omicsd_binary() + " align --log-level off " + (tmp.path / "other.fa").string() + " " +
                      (tiny() / "NA12878.chr22.tiny.bam").string() + " -o " + (tmp.path / "y.bam").string(),
                  &err),
      0);
  EXPECT_NE(err.find("NA12878.chr22.tiny.bam"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(tmp.path / "y.bam"));
}

}  // namespace
}  // namespace omicsd::test
