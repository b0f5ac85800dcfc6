// Streaming read input: FASTQ (plain, gzip, bgzip; single, paired, interleaved) and SAM/BAM/CRAM.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "host/common/error.hpp"
#include "host/io/read_groups.hpp"
#include "host/io/read_source.hpp"
#include "host/io/reference.hpp"
#include "tests/support/test_support.hpp"

namespace fs = std::filesystem;
using omicsd::InputError;
using omicsd::ReadBatch;
using omicsd::ReadInputSpec;
using omicsd::test::run_command;
using omicsd::test::TempDir;
using omicsd::test::write_file;

namespace {

using Read = std::tuple<std::string, std::string, std::string>;  // name, bases, quals

std::string q(const fs::path& p) {
  std::string s = "'";
  s += p.string();
  s += '\'';
  return s;
}

ReadInputSpec single(const fs::path& p) {
  ReadInputSpec s;
  s.path1 = p.string();
  return s;
}
ReadInputSpec pair_spec(const fs::path& a, const fs::path& b) {
  ReadInputSpec s;
  s.path1 = a.string();
  s.path2 = b.string();
  return s;
}
ReadInputSpec interleaved(const fs::path& p) {
  ReadInputSpec s;
  s.path1 = p.string();
  s.interleaved = true;
  return s;
}

// Reads everything, checking the batch invariants on the way.
std::vector<Read> read_all(const ReadInputSpec& spec, size_t max_reads = 1000, size_t* batches = nullptr) {
  auto src = omicsd::open_read_source(spec);
  std::vector<Read> out;
  ReadBatch batch;
  size_t n = 0;
  bool singles_started = false;
  while (src->next(batch, max_reads)) {
    ++n;
    EXPECT_FALSE(batch.empty());
    // A paired source may end with single-end batches (reads without a mate), never the reverse.
    if (!src->paired()) EXPECT_FALSE(batch.paired);
    if (singles_started) EXPECT_FALSE(batch.paired) << "a paired batch after the single-end tail";
    singles_started = singles_started || !batch.paired;
    EXPECT_EQ(batch.first_index, out.size());
    EXPECT_EQ(batch.name_offsets.size(), batch.size() + 1);
    EXPECT_EQ(batch.base_offsets.size(), batch.size() + 1);
    EXPECT_EQ(batch.bases.size(), batch.quals.size());
    EXPECT_LE(batch.size(), std::max<size_t>(max_reads, src->paired() ? 2 : 1));
    if (batch.paired) {
      EXPECT_EQ(batch.size() % 2, 0u) << "a pair was split";
      for (size_t i = 0; i + 1 < batch.size(); i += 2) EXPECT_EQ(batch.name(i), batch.name(i + 1));
    }
    for (size_t i = 0; i < batch.size(); ++i)
      out.emplace_back(std::string(batch.name(i)), std::string(batch.seq(i)), std::string(batch.qual(i)));
  }
  EXPECT_FALSE(src->next(batch, max_reads)) << "next() after the end must stay false";
  EXPECT_TRUE(batch.empty());
  if (batches) *batches = n;
  return out;
}

// Expects InputError (from opening or reading) whose one-line message contains every part.
void expect_input_error(const ReadInputSpec& spec, std::initializer_list<std::string> parts,
                        size_t max_reads = 1000) {
  try {
    auto src = omicsd::open_read_source(spec);
    ReadBatch batch;
    while (src->next(batch, max_reads)) {
    }
    ADD_FAILURE() << "no InputError for " << spec.path1 << " " << spec.path2;
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& part : parts)
      EXPECT_NE(msg.find(part), std::string::npos) << "message lacks '" << part << "': " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an InputError: " << e.what();
  }
}

std::string fastq_record(const std::string& name, const std::string& seq, const std::string& qual) {
  return "@" + name + "\n" + seq + "\n+\n" + qual + "\n";
}

// Deterministic pseudo-random reads.
std::vector<Read> make_reads(size_t n, const std::string& suffix, uint32_t seed) {
  std::vector<Read> reads;
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    size_t len = 20 + (i * 7) % 60;
    std::string s, ql;
    for (size_t j = 0; j < len; ++j) {
      x = x * 1664525u + 1013904223u;
      s += "ACGT"[(x >> 16) & 3];
      ql += char('!' + ((x >> 8) % 42));
    }
    reads.emplace_back("read" + std::to_string(i) + suffix, s, ql);
  }
  return reads;
}

std::string to_fastq(const std::vector<Read>& reads) {
  std::string text;
  for (const auto& [n, s, ql] : reads) text += fastq_record(n, s, ql);
  return text;
}

fs::path tiny_dir() { return omicsd::test::shared_data_dir() / "na12878-chr22-tiny"; }
fs::path tiny_bam() { return tiny_dir() / "NA12878.chr22.tiny.bam"; }

std::multiset<Read> parse_fastq_file(const fs::path& p) {
  std::ifstream in(p);
  std::multiset<Read> out;
  std::string h, s, plus, ql;
  while (std::getline(in, h) && std::getline(in, s) && std::getline(in, plus) && std::getline(in, ql))
    out.emplace(h.substr(1, h.find_first_of(" \t") - 1), s, ql);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// FASTQ parsing

TEST(ReadSourceFastq, SingleEndParsesNamesBasesQualities) {
  TempDir tmp;
  auto p = tmp.path / "reads.fq";
  write_file(p,
             "@r1/1 comment here\nACGTacgt\n+\nIIIIHHHH\n"
             "@r2\tBC:Z:xx\r\nAC.Nn-*g\r\n+r2\r\n!!~~#$%&\r\n"
             "@r3/2\nRYKMbdhv\n+\n########\n"
             "@r4/3\nA\n+\n5");  // last record without a trailing newline
  auto src = omicsd::open_read_source(single(p));
  EXPECT_FALSE(src->paired());
  EXPECT_EQ(src->read_group_lines(), "");
  auto reads = read_all(single(p));
  ASSERT_EQ(reads.size(), 4u);
  EXPECT_EQ(reads[0], Read("r1", "ACGTACGT", "IIIIHHHH"));
  EXPECT_EQ(reads[1], Read("r2", "ACNNNNNG", "!!~~#$%&"));
  EXPECT_EQ(reads[2], Read("r3", "RYKMBDHV", "########"));
  EXPECT_EQ(reads[3], Read("r4/3", "A", "5"));
}

TEST(ReadSourceFastq, TrailingEmptyLinesAndEmptyReadsAreFine) {
  TempDir tmp;
  auto p = tmp.path / "reads.fq";
  write_file(p, "@a\nACGT\n+\nIIII\n@empty\n\n+\n\n\n\n");
  auto reads = read_all(single(p));
  ASSERT_EQ(reads.size(), 2u);
  EXPECT_EQ(reads[1], Read("empty", "", ""));
}

TEST(ReadSourceFastq, GzipAndBgzipReadLikePlain) {
  TempDir tmp;
  auto reads = make_reads(5000, "", 1);
  auto plain = tmp.path / "reads.fq";
  write_file(plain, to_fastq(reads));
  ASSERT_EQ(run_command("gzip -c " + q(plain) + " > " + q(tmp.path / "reads.fq.gz")), 0);
  ASSERT_EQ(run_command("bgzip -c " + q(plain) + " > " + q(tmp.path / "reads.bgz")), 0);
  // A gzip file named like plain text: the content decides.
  ASSERT_EQ(run_command("gzip -c " + q(plain) + " > " + q(tmp.path / "disguised.txt")), 0);
  EXPECT_EQ(read_all(single(plain)), reads);
  EXPECT_EQ(read_all(single(tmp.path / "reads.fq.gz"), 333), reads);
  EXPECT_EQ(read_all(single(tmp.path / "reads.bgz"), 4096), reads);
  EXPECT_EQ(read_all(single(tmp.path / "disguised.txt")), reads);
}

TEST(ReadSourceFastq, PairedFilesInLockstep) {
  TempDir tmp;
  auto r1 = make_reads(300, "/1", 2), r2 = make_reads(300, "/2", 3);
  write_file(tmp.path / "r1.fq", to_fastq(r1));
  write_file(tmp.path / "r2.fq", to_fastq(r2));
  ASSERT_EQ(run_command("gzip " + q(tmp.path / "r2.fq")), 0);  // mixed compression is fine
  auto spec = pair_spec(tmp.path / "r1.fq", tmp.path / "r2.fq.gz");
  EXPECT_TRUE(omicsd::open_read_source(spec)->paired());
  auto reads = read_all(spec, 64);
  ASSERT_EQ(reads.size(), 600u);
  for (size_t i = 0; i < 300; ++i) {
    EXPECT_EQ(std::get<0>(reads[2 * i]), "read" + std::to_string(i));
    EXPECT_EQ(std::get<1>(reads[2 * i]), std::get<1>(r1[i]));
    EXPECT_EQ(std::get<2>(reads[2 * i]), std::get<2>(r1[i]));
    EXPECT_EQ(std::get<1>(reads[2 * i + 1]), std::get<1>(r2[i]));
    EXPECT_EQ(std::get<2>(reads[2 * i + 1]), std::get<2>(r2[i]));
  }
}

TEST(ReadSourceFastq, InterleavedSingleFile) {
  TempDir tmp;
  auto r1 = make_reads(50, "/1", 4), r2 = make_reads(50, "/2", 5);
  std::vector<Read> mixed;
  for (size_t i = 0; i < 50; ++i) {
    mixed.push_back(r1[i]);
    mixed.push_back(r2[i]);
  }
  auto p = tmp.path / "inter.fq";
  write_file(p, to_fastq(mixed));
  EXPECT_TRUE(omicsd::open_read_source(interleaved(p))->paired());
  EXPECT_FALSE(omicsd::open_read_source(single(p))->paired());
  auto reads = read_all(interleaved(p), 10);
  ASSERT_EQ(reads.size(), 100u);
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_EQ(std::get<0>(reads[i]), "read" + std::to_string(i / 2));
    EXPECT_EQ(std::get<1>(reads[i]), std::get<1>(mixed[i]));
  }
}

TEST(ReadSourceFastq, BatchesNeverSplitPairsAndCoverTheInput) {
  TempDir tmp;
  auto r1 = make_reads(101, "/1", 6), r2 = make_reads(101, "/2", 7);
  write_file(tmp.path / "r1.fq", to_fastq(r1));
  write_file(tmp.path / "r2.fq", to_fastq(r2));
  std::vector<Read> mixed;
  for (size_t i = 0; i < 101; ++i) {
    mixed.push_back(r1[i]);
    mixed.push_back(r2[i]);
  }
  write_file(tmp.path / "inter.fq", to_fastq(mixed));
  auto expected = read_all(pair_spec(tmp.path / "r1.fq", tmp.path / "r2.fq"), 1u << 20);
  ASSERT_EQ(expected.size(), 202u);
  for (size_t max_reads : {0u, 1u, 2u, 3u, 7u, 64u, 201u, 202u, 203u}) {
    SCOPED_TRACE(max_reads);
    size_t batches = 0;
    EXPECT_EQ(read_all(pair_spec(tmp.path / "r1.fq", tmp.path / "r2.fq"), max_reads, &batches), expected);
    size_t per = std::max<size_t>(2, max_reads - max_reads % 2);
    EXPECT_EQ(batches, (202 + per - 1) / per);
    EXPECT_EQ(read_all(interleaved(tmp.path / "inter.fq"), max_reads), expected);
  }
  // Single-end: batches of exactly max_reads but the last.
  size_t batches = 0;
  auto reads = read_all(single(tmp.path / "r1.fq"), 7, &batches);
  EXPECT_EQ(reads.size(), 101u);
  EXPECT_EQ(batches, 15u);
}

// ---------------------------------------------------------------------------------------------
// FASTQ errors: InputError naming the file, the record and what is wrong

class ReadSourceFastqErrors : public ::testing::Test {
 protected:
  fs::path file(const std::string& name, const std::string& content) {
    auto p = tmp.path / name;
    write_file(p, content);
    return p;
  }
  TempDir tmp;
  const std::string good = fastq_record("ok1", "ACGT", "IIII") + fastq_record("ok2", "GGCC", "####");
};

TEST_F(ReadSourceFastqErrors, HeaderWithoutAt) {
  auto p = file("bad_header.fq", good + "r3\nACGT\n+\nIIII\n");
  expect_input_error(single(p), {p.string(), "record 3", "line 9", "'@'"});
}

TEST_F(ReadSourceFastqErrors, FastaIsNotFastq) {
  auto p = file("ref.fa", ">chr1\nACGT\n");
  expect_input_error(single(p), {p.string(), "record 1", "line 1", "'@'"});
}

TEST_F(ReadSourceFastqErrors, MissingPlusLine) {
  auto p = file("no_plus.fq", good + "@r3\nACGT\nIIII\n@r4\nACGT\n+\nIIII\n");
  expect_input_error(single(p), {p.string(), "record 3", "line 11", "'+'"});
}

TEST_F(ReadSourceFastqErrors, LengthMismatch) {
  auto p = file("len.fq", good + "@r3\nACGTA\n+\nIIII\n");
  expect_input_error(single(p), {p.string(), "record 3", "line 12", "sequence length 5", "quality length 4"});
}

TEST_F(ReadSourceFastqErrors, TruncatedRecordAtEnd) {
  for (const char* tail : {"@r3\n", "@r3\nACGT\n", "@r3\nACGT\n+\n", "@r3\nACGT"}) {
    SCOPED_TRACE(tail);
    auto p = file("trunc.fq", good + tail);
    expect_input_error(single(p), {p.string(), "record 3", "truncated record at end of file"});
  }
  auto p = file("multi.fq", good + "@r3\nACGT\nACGT\n+\nIIIIIIII\n");
  expect_input_error(single(p), {p.string(), "record 3", "line 11", "multi-line"});
  p = file("trunc_q.fq", good + "@r3\nACGT\n+\nII");  // cut inside the quality line
  expect_input_error(single(p), {p.string(), "record 3", "line 12", "quality length 2", "truncated"});
}

TEST_F(ReadSourceFastqErrors, InvalidSequenceCharacter) {
  auto p = file("seq.fq", good + "@r3\nAC1T\n+\nIIII\n");
  expect_input_error(single(p), {p.string(), "record 3", "line 10", "invalid character '1'", "column 3"});
  p = file("seq_space.fq", "@r1\nAC T\n+\nIIII\n");
  expect_input_error(single(p), {p.string(), "record 1", "line 2", "invalid character ' '"});
}

TEST_F(ReadSourceFastqErrors, NonPrintableBytes) {
  auto p = file("nul.fq", good + std::string("@r3\0x\nACGT\n+\nIIII\n", 19));
  expect_input_error(single(p), {p.string(), "record 3", "line 9", "non-printable byte 0x00"});
  p = file("hi.fq", good + "@r3\nAC\xc3\xa9T\n+\nIIIII\n");
  expect_input_error(single(p), {p.string(), "record 3", "line 10", "non-printable byte 0xc3"});
  p = file("del.fq", good + "@r3\nACGT\n+\nII\x7fI\n");
  expect_input_error(single(p), {p.string(), "record 3", "line 12", "non-printable byte 0x7f"});
  p = file("plus.fq", good + "@r3\nACGT\n+\x01\nIIII\n");
  expect_input_error(single(p), {p.string(), "record 3", "line 11", "non-printable byte 0x01"});
  // A binary file (here: a BAM index) is not FASTQ.
  p = tmp.path / "x.bai";
  fs::copy_file(tiny_dir() / "NA12878.chr22.tiny.bam.bai", p);
  expect_input_error(single(p), {p.string(), "record 1"});
}

TEST_F(ReadSourceFastqErrors, QualityOutOfRange) {
  auto p = file("qual.fq", good + "@r3\nACGT\n+\nII I\n");
  expect_input_error(single(p), {p.string(), "record 3", "line 12", "quality character ' '", "'!'..'~'"});
}

TEST_F(ReadSourceFastqErrors, EmptyLineInTheMiddle) {
  auto p = file("blank.fq", fastq_record("ok1", "ACGT", "IIII") + "\n" + fastq_record("r2", "A", "I"));
  expect_input_error(single(p), {p.string(), "record 2", "line 5", "empty line"});
}

TEST_F(ReadSourceFastqErrors, TruncatedCompressedInput) {
  auto text = to_fastq(make_reads(20000, "", 8));
  for (const std::string tool : {"gzip", "bgzip"}) {
    SCOPED_TRACE(tool);
    auto plain = file("big.fq", text);
    auto gz = tmp.path / ("big." + tool + ".gz");
    ASSERT_EQ(run_command(tool + " -c " + q(plain) + " > " + q(gz)), 0);
    auto size = fs::file_size(gz);
    fs::resize_file(gz, size / 2);
    expect_input_error(single(gz), {gz.string(), "record "});
    // Corrupt bytes in the middle of the compressed stream.
    ASSERT_EQ(run_command(tool + " -c " + q(plain) + " > " + q(gz)), 0);
    {
      std::fstream f(gz, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(std::streamoff(size / 2));
      std::string junk(64, '\x5a');
      f.write(junk.data(), std::streamsize(junk.size()));
    }
    expect_input_error(single(gz), {gz.string(), "record "});
  }
}

TEST_F(ReadSourceFastqErrors, EmptyInputHasNoReads) {
  auto p = file("empty.fq", "");
  expect_input_error(single(p), {p.string(), "no reads"});
  auto gz = tmp.path / "empty.fq.gz";
  ASSERT_EQ(run_command("gzip -c " + q(p) + " > " + q(gz)), 0);
  expect_input_error(single(gz), {gz.string(), "no reads"});
  expect_input_error(pair_spec(p, gz), {p.string(), gz.string(), "no reads"});
  expect_input_error(interleaved(p), {p.string(), "no reads"});
  auto blank = file("blank.fq", "\n\n");
  expect_input_error(single(blank), {blank.string(), "no reads"});
}

TEST_F(ReadSourceFastqErrors, MissingOrUnreadableFile) {
  auto missing = tmp.path / "missing.fq";
  expect_input_error(single(missing), {missing.string(), "No such file"});
  expect_input_error(pair_spec(file("a.fq", good), missing), {missing.string(), "No such file"});
  expect_input_error(single(tmp.path), {tmp.path.string(), "directory"});
  if (geteuid() != 0) {  // root reads anything
    auto locked = file("locked.fq", good);
    fs::permissions(locked, fs::perms::none);
    expect_input_error(single(locked), {locked.string(), "Permission denied"});
  }
}

TEST_F(ReadSourceFastqErrors, PairedNamesMustMatch) {
  auto a = file("a_1.fq", good + fastq_record("x/1", "ACGT", "IIII"));
  auto b = file("a_2.fq", good + fastq_record("y/2", "ACGT", "IIII"));
  expect_input_error(pair_spec(a, b), {a.string(), b.string(), "record 3", "'x'", "'y'"});
}

TEST_F(ReadSourceFastqErrors, PairedFileEndsEarly) {
  auto longer = file("long.fq", good + fastq_record("ok3", "ACGT", "IIII"));
  auto shorter = file("short.fq", good);
  expect_input_error(pair_spec(longer, shorter), {shorter.string(), "ends after 2 records", "record 3"});
  expect_input_error(pair_spec(shorter, longer), {shorter.string(), "ends after 2 records", "record 3"});
  // Small batches: the error still comes, whichever batch meets it.
  expect_input_error(pair_spec(shorter, longer), {shorter.string()}, 2);
}

TEST_F(ReadSourceFastqErrors, InterleavedMatesAndOddCount) {
  auto p = file("odd.fq", fastq_record("a/1", "A", "I") + fastq_record("a/2", "A", "I") +
                              fastq_record("b/1", "A", "I"));
  expect_input_error(interleaved(p), {p.string(), "record 3", "odd number"});
  auto m = file("mismatch.fq", fastq_record("a/1", "A", "I") + fastq_record("a/2", "A", "I") +
                                   fastq_record("b/1", "A", "I") + fastq_record("c/2", "A", "I"));
  expect_input_error(interleaved(m), {m.string(), "record 4", "line 13", "'c'", "'b'"});
}

// ---------------------------------------------------------------------------------------------
// SAM / BAM / CRAM

TEST(ReadSourceBam, SharedBamMatchesSamtoolsFastq) {
  if (!fs::exists(tiny_bam())) GTEST_SKIP() << "no shared data at " << tiny_bam();
  TempDir tmp;
  std::string out;
  ASSERT_EQ(run_command("samtools collate -O -u " + q(tiny_bam()) + " " + q(tmp.path / "coll") +
                            " | samtools fastq -1 " + q(tmp.path / "r1.fq") + " -2 " + q(tmp.path / "r2.fq") +
                            " -s " + q(tmp.path / "single.fq") + " -",
                        &out),
            0)
      << out;
  auto expected = parse_fastq_file(tmp.path / "r1.fq");
  auto expected2 = parse_fastq_file(tmp.path / "r2.fq");
  ASSERT_EQ(expected.size(), expected2.size());
  ASSERT_GT(expected.size(), 1000u);
  // Which of the two is read 1 matters too: keep them apart.
  auto ref = omicsd::Reference::load((tiny_dir() / "q.fa").string());
  ReadInputSpec spec = single(tiny_bam());
  spec.reference = &ref;
  auto src = omicsd::open_read_source(spec);
  EXPECT_TRUE(src->paired());
  EXPECT_NE(src->read_group_lines().find("@RG\tID:NA12878D_HiSeqX_R1.fastq.gz\tPL:ILLUMINA"),
            std::string::npos);
  EXPECT_EQ(src->read_group_lines().find('\n'), std::string::npos);  // one @RG line

  const auto expected_single = parse_fastq_file(tmp.path / "single.fq");
  ASSERT_EQ(expected_single.size(), 61u);
  for (size_t max_reads : {size_t(2), size_t(999), size_t(1) << 20}) {
    // 3333 records - 6 secondary: 3266 reads in pairs, then the 61 whose mate is not in the file
    // (samtools fastq's singletons) as single-end reads.
    auto reads = read_all(spec, max_reads);
    ASSERT_EQ(reads.size(), 3333u - 6);
    std::multiset<Read> got1, got2, got_single;
    for (size_t i = 0; i < reads.size(); ++i) (i >= 3266 ? got_single : i % 2 ? got2 : got1).insert(reads[i]);
    EXPECT_EQ(got1, expected);
    EXPECT_EQ(got2, expected2);
    EXPECT_EQ(got_single, expected_single);
  }
  // Without a reference too.
  EXPECT_EQ(read_all(single(tiny_bam())).size(), 3333u - 6);
}

TEST(ReadSourceBam, CramWithReference) {
  if (!fs::exists(tiny_bam())) GTEST_SKIP() << "no shared data at " << tiny_bam();
  TempDir tmp;
  // The reference copied into a writable directory without its .fai: it is built on demand.
  fs::copy_file(tiny_dir() / "q.fa", tmp.path / "q.fa");
  auto cram = tmp.path / "reads.cram";
  std::string out;
  ASSERT_EQ(run_command(
                "samtools view -C -T " + q(tmp.path / "q.fa") + " -o " + q(cram) + " " + q(tiny_bam()), &out),
            0)
      << out;
  fs::remove(tmp.path / "q.fa.fai");
  auto ref = omicsd::Reference::load((tmp.path / "q.fa").string());
  ReadInputSpec spec = single(cram);
  spec.reference = &ref;
  auto from_cram = read_all(spec);
  EXPECT_TRUE(fs::exists(tmp.path / "q.fa.fai"));
  auto from_bam = read_all(single(tiny_bam()));
  EXPECT_EQ(std::multiset<Read>(from_cram.begin(), from_cram.end()),
            std::multiset<Read>(from_bam.begin(), from_bam.end()));

  // The shared (read-only) copy of q.fa has its .fai: usable as is.
  auto shared_ref = omicsd::Reference::load((tiny_dir() / "q.fa").string());
  spec.reference = &shared_ref;
  EXPECT_EQ(read_all(spec).size(), from_bam.size());

  // A reference without .fai in a directory we cannot write: a clear error (root writes anywhere).
  if (geteuid() != 0) {
    fs::create_directory(tmp.path / "ro");
    fs::copy_file(tiny_dir() / "q.fa", tmp.path / "ro" / "q.fa");
    auto ro_ref = omicsd::Reference::load((tmp.path / "ro" / "q.fa").string());
    fs::permissions(tmp.path / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    spec.reference = &ro_ref;
    expect_input_error(spec, {cram.string(), "q.fa.fai", "samtools faidx"});
    fs::permissions(tmp.path / "ro", fs::perms::owner_all);
  }
}

TEST(ReadSourceBam, HeaderFromAnotherReferenceIsRejected) {
  if (!fs::exists(tiny_bam())) GTEST_SKIP() << "no shared data at " << tiny_bam();
  TempDir tmp;
  auto ref = omicsd::Reference::load((tiny_dir() / "q.fa").string());
  auto reheader = [&](const std::string& sed, const std::string& name) {
    auto hdr = tmp.path / (name + ".sam");
    auto bam = tmp.path / (name + ".bam");
    std::string out;
    EXPECT_EQ(run_command("samtools view -H " + q(tiny_bam()) + " | sed '" + sed + "' > " + q(hdr) +
                              " && samtools reheader " + q(hdr) + " " + q(tiny_bam()) + " > " + q(bam),
                          &out),
              0)
        << out;
    return bam;
  };
  ReadInputSpec spec;
  spec.reference = &ref;
  spec.path1 = reheader("s/LN:12356/LN:20000/", "ln").string();
  expect_input_error(spec, {spec.path1, "@SQ q (LN 20000)", "does not match reference", "(q LN 12356)",
                            "aligned to another reference"});
  spec.path1 = reheader("s/M5:ee5a2d/M5:000000/", "m5").string();
  expect_input_error(spec, {spec.path1, "@SQ q", "M5 000000", "aligned to another reference"});
  spec.path1 = reheader("s/SN:q/SN:chr22/", "name").string();
  // Renaming the contig in the header breaks decoding nothing; the reference check catches it.
  expect_input_error(spec, {spec.path1, "@SQ chr22", "aligned to another reference"});
  // Without a reference there is nothing to check.
  EXPECT_EQ(read_all(single(tmp.path / "ln.bam")).size(), 3333u - 6);
}

TEST(ReadSourceBam, FlagsOrientationQualitiesAndOrphans) {
  TempDir tmp;
  auto sam = tmp.path / "reads.sam";
  // p1: read 2 arrives first, reverse strand. p2: read 1 reverse. sec/supp records are skipped.
  // orphan: mate missing. unp: no pairing flags in a paired file.
  write_file(sam,
             "@HD\tVN:1.6\tSO:coordinate\n"
             "@SQ\tSN:c\tLN:100\n"
             "@RG\tID:a\tSM:x\n"
             "@RG\tID:b\tSM:y\n"
             "p1\t147\tc\t1\t60\t4M\t=\t10\t0\tAACG\tABCD\n"
             "p1\t355\tc\t5\t0\t4M\t=\t10\t0\tTTTT\tIIII\n"  // secondary (0x100)
             "p2\t83\tc\t2\t60\t5M\t=\t10\t0\tACGTN\t!!#$%\n"
             "orphan\t73\tc\t3\t60\t3M\t=\t3\t0\tGGG\tIII\n"
             "unp\t0\tc\t4\t60\t2M\t*\t0\t0\tAC\tII\n"
             "p1\t99\tc\t10\t60\t3M\t=\t1\t0\tCCA\t*\n"
             "p2\t2211\tc\t20\t60\t2H3M\t=\t2\t0\tGTN\tIII\n"  // supplementary (0x800)
             "p2\t163\tc\t20\t60\t3M\t=\t2\t0\tRYN\tFGH\n");
  auto src = omicsd::open_read_source(single(sam));
  EXPECT_TRUE(src->paired());
  EXPECT_EQ(src->read_group_lines(), "@RG\tID:a\tSM:x\n@RG\tID:b\tSM:y");
  auto reads = read_all(single(sam));
  ASSERT_EQ(reads.size(), 6u);
  // p1 completes first (its read 1 is record 6), read 1 first.
  EXPECT_EQ(reads[0], Read("p1", "CCA", std::string(3, '\xff')));
  EXPECT_EQ(reads[1], Read("p1", "CGTT", "DCBA"));
  EXPECT_EQ(reads[2], Read("p2", "NACGT", "%$#!!"));
  EXPECT_EQ(reads[3], Read("p2", "RYN", "FGH"));
  // Then the reads without a mate, single-end, in input order: nothing is lost.
  EXPECT_EQ(reads[4], Read("orphan", "GGG", "III"));
  EXPECT_EQ(reads[5], Read("unp", "AC", "II"));

  // A single-end SAM: every primary record, reverse ones turned around.
  auto se = tmp.path / "se.sam";
  write_file(se,
             "@SQ\tSN:c\tLN:100\n"
             "a\t0\tc\t1\t60\t4M\t*\t0\t0\tacgt\tABCD\n"
             "b\t16\tc\t1\t60\t4M\t*\t0\t0\tAACC\t*\n"
             "c\t4\t*\t0\t0\t*\t*\t0\t0\tGATTACA\tIIIIIII\n");
  auto src2 = omicsd::open_read_source(single(se));
  EXPECT_FALSE(src2->paired());
  EXPECT_EQ(src2->read_group_lines(), "");
  auto r2 = read_all(single(se), 1);
  ASSERT_EQ(r2.size(), 3u);
  EXPECT_EQ(r2[0], Read("a", "ACGT", "ABCD"));
  EXPECT_EQ(r2[1], Read("b", "GGTT", std::string(4, '\xff')));
  EXPECT_EQ(r2[2], Read("c", "GATTACA", "IIIIIII"));
}

TEST(ReadSourceBam, UnalignedBamFromFastq) {
  TempDir tmp;
  auto r1 = make_reads(200, "/1", 9), r2 = make_reads(200, "/2", 10);
  write_file(tmp.path / "r1.fq", to_fastq(r1));
  write_file(tmp.path / "r2.fq", to_fastq(r2));
  auto ubam = tmp.path / "u.bam";
  std::string out;
  ASSERT_EQ(run_command("samtools import -1 " + q(tmp.path / "r1.fq") + " -2 " + q(tmp.path / "r2.fq") +
                            " -o " + q(ubam),
                        &out),
            0)
      << out;
  auto from_fastq = read_all(pair_spec(tmp.path / "r1.fq", tmp.path / "r2.fq"));
  auto from_bam = read_all(single(ubam), 10);
  EXPECT_EQ(from_bam, from_fastq);
  // An unaligned BAM has no @SQ: a reference check has nothing to compare and passes.
  auto ref_fa = tmp.path / "ref.fa";
  write_file(ref_fa, ">x\nACGTACGT\n");
  auto ref = omicsd::Reference::load(ref_fa.string());
  ReadInputSpec spec = single(ubam);
  spec.reference = &ref;
  EXPECT_EQ(read_all(spec).size(), 400u);
}

TEST(ReadSourceBam, Errors) {
  if (!fs::exists(tiny_bam())) GTEST_SKIP() << "no shared data at " << tiny_bam();
  TempDir tmp;
  // A BAM cut in half.
  auto cut = tmp.path / "cut.bam";
  fs::copy_file(tiny_bam(), cut);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  expect_input_error(single(cut), {cut.string(), "record "});
  // A BAM cannot be the first of two read files.
  expect_input_error(pair_spec(tiny_bam(), tmp.path / "x.fq"), {tiny_bam().string(), "FASTQ"});
  // A header without any reads.
  auto hdr_only = tmp.path / "empty.bam";
  ASSERT_EQ(run_command("samtools view -H -b -o " + q(hdr_only) + " " + q(tiny_bam())), 0);
  expect_input_error(single(hdr_only), {hdr_only.string(), "no reads"});
  // Two read 1 records under one name.
  auto dup = tmp.path / "dup.sam";
  write_file(dup,
             "@SQ\tSN:c\tLN:100\n"
             "p\t65\tc\t1\t60\t2M\t=\t1\t0\tAC\tII\n"
             "p\t65\tc\t2\t60\t2M\t=\t1\t0\tAC\tII\n");
  expect_input_error(single(dup), {dup.string(), "record 2", "read 1", "'p'"});
  // Paired, but every mate missing: the read still comes out, single-end.
  auto orphans = tmp.path / "orphans.sam";
  write_file(orphans, "@SQ\tSN:c\tLN:100\np\t65\tc\t1\t60\t2M\t=\t1\t0\tAC\tII\n");
  auto src_o = omicsd::open_read_source(single(orphans));
  ReadBatch ob;
  ASSERT_TRUE(src_o->next(ob, 10));
  EXPECT_FALSE(ob.paired);
  ASSERT_EQ(ob.size(), 1u);
  EXPECT_EQ(ob.name(0), "p");
  EXPECT_FALSE(src_o->next(ob, 10));
}

// A large FASTQ streamed in many batches: counts are exact. (Speed is measured by the benchmarks,
// never by tests.)
TEST(ReadSourceLarge, PlainFastqManyBatches) {
  TempDir tmp;
  const size_t n = 200000;
  {
    std::ofstream out(tmp.path / "big.fq", std::ios::binary);
    std::string seq(150, 'A'), qual(150, 'I');
    for (size_t i = 0; i < n; ++i) {
      seq[i % 150] = "ACGT"[i % 4];
      out << "@SRR000000." << i << " " << i << "/1\n" << seq << "\n+\n" << qual << "\n";
    }
  }
  auto src = omicsd::open_read_source(single(tmp.path / "big.fq"));
  ReadBatch batch;
  size_t reads = 0, bases = 0, batches = 0;
  while (src->next(batch, 30000)) {
    EXPECT_EQ(batch.first_index, reads);
    reads += batch.size();
    bases += batch.bases.size();
    ++batches;
  }
  EXPECT_EQ(reads, n);
  EXPECT_EQ(bases, n * 150);
  EXPECT_EQ(batches, 7u);
}

namespace {

// Each read keeps its read group through pairing and the single-end tail (ReadBatch::read_groups
// indexes read_group_ids()); a tag no @RG line declares is dropped; a header without @RG lines gives
// no per-read read groups at all.
TEST(ReadSourceBam, PerReadReadGroupsFollowTheirReads) {
  TempDir tmp;
  auto sam = tmp.path / "rg.sam";
  write_file(sam,
             "@SQ\tSN:c\tLN:100\n"
             "@RG\tID:a\tSM:x\n"
             "@RG\tID:b\tSM:x\tLB:l2\n"
             "p1\t147\tc\t1\t60\t4M\t=\t10\t0\tAACG\tABCD\tRG:Z:b\n"
             "p2\t83\tc\t2\t60\t5M\t=\t10\t0\tACGTN\t!!#$%\tRG:Z:a\n"
             "orphan\t73\tc\t3\t60\t3M\t=\t3\t0\tGGG\tIII\tRG:Z:zz\n"
             "unp\t0\tc\t4\t60\t2M\t*\t0\t0\tAC\tII\tRG:Z:b\n"
             "p1\t99\tc\t10\t60\t3M\t=\t1\t0\tCCA\t*\tRG:Z:b\n"
             "p2\t163\tc\t20\t60\t3M\t=\t2\t0\tRYN\tFGH\tRG:Z:a\n");
  auto src = omicsd::open_read_source(single(sam));
  EXPECT_EQ(src->read_group_ids(), (std::vector<std::string>{"a", "b"}));
  std::vector<std::pair<std::string, int32_t>> got;
  ReadBatch batch;
  while (src->next(batch, 1000)) {
    ASSERT_EQ(batch.read_groups.size(), batch.size());
    for (size_t i = 0; i < batch.size(); ++i) got.emplace_back(batch.name(i), batch.read_groups[i]);
  }
  EXPECT_EQ(got, (std::vector<std::pair<std::string, int32_t>>{
                     {"p1", 1}, {"p1", 1}, {"p2", 0}, {"p2", 0}, {"orphan", -1}, {"unp", 1}}));

  auto plain = tmp.path / "plain.sam";
  write_file(plain, "@SQ\tSN:c\tLN:100\nr\t0\tc\t1\t60\t2M\t*\t0\t0\tAC\tII\tRG:Z:a\n");
  auto src2 = omicsd::open_read_source(single(plain));
  ASSERT_TRUE(src2->next(batch, 10));
  EXPECT_TRUE(batch.read_groups.empty());
  EXPECT_TRUE(src2->read_group_ids().empty());
}

TEST(ReadGroups, SamplesOfHeaderLinesDistinctInOrder) {
  EXPECT_EQ(
      omicsd::read_group_samples("@HD\tVN:1.6\n@RG\tID:a\tSM:s2\n@RG\tID:b\tPL:x\tSM:s1\n@RG\tID:c\tSM:s2\n"
                                 "@RG\tID:d\n@CO\tSM:no"),
      (std::vector<std::string>{"s2", "s1"}));
  EXPECT_TRUE(omicsd::read_group_samples("").empty());
  TempDir tmp;
  auto sam = tmp.path / "h.sam", fq = tmp.path / "r.fq";
  write_file(sam, "@SQ\tSN:c\tLN:100\n@RG\tID:a\tSM:x\n@RG\tID:b\tSM:y\n");
  write_file(fq, "@r\nACGT\n+\nIIII\n");
  EXPECT_EQ(omicsd::read_group_lines_of_file(sam.string()), "@RG\tID:a\tSM:x\n@RG\tID:b\tSM:y");
  EXPECT_EQ(omicsd::read_group_lines_of_file(fq.string()), "");
  EXPECT_THROW(omicsd::read_group_lines_of_file((tmp.path / "missing.bam").string()), InputError);
}

}  // namespace
