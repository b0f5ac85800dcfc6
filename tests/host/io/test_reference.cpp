#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "host/common/dna.hpp"
#include "host/common/error.hpp"
#include "host/io/reference.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> codes_of(const Reference& ref) {
  return std::vector<uint8_t>(ref.codes(), ref.codes() + ref.total_length());
}

std::vector<uint8_t> codes_of(const std::string& seq) {
  std::vector<uint8_t> v;
  for (char c : seq) v.push_back(base_code(c));
  return v;
}

// MD5 hex of a string computed by the system's md5sum: an oracle independent of htslib.
std::string md5sum(const test::TempDir& dir, const std::string& data) {
  const fs::path p = dir.path / "md5-input";
  test::write_file(p, data);
  std::string out;
  EXPECT_EQ(test::run_command("md5sum " + p.string(), &out), 0) << out;
  return out.substr(0, 32);
}

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

TEST(Reference, MultiContigLowercaseNRunsCrlfAndBlankLines) {
  test::TempDir dir;
  const fs::path fa = dir.path / "ref.fa";
  test::write_file(fa,
                   "\n"
                   ">chr1 first contig\r\n"
                   "ACGTacgt\r\n"
                   "NNNNnnnn\r\n"
                   "\r\n"
                   "GATTACA\r\n"
                   ">chr2\tdescription with\ttabs\n"
                   "ryKMswBDHVN-*u\n"
                   "\n"
                   "\n"
                   ">chr3\n"
                   "T");  // no final newline
  const Reference ref = Reference::load(fa.string());
  EXPECT_EQ(ref.path(), fa.string());
  ASSERT_EQ(ref.contigs().size(), 3u);
  const std::string s1 = "ACGTacgtNNNNnnnnGATTACA", s2 = "ryKMswBDHVN-*u", s3 = "T";
  EXPECT_EQ(ref.contigs()[0].name, "chr1");
  EXPECT_EQ(ref.contigs()[1].name, "chr2");
  EXPECT_EQ(ref.contigs()[2].name, "chr3");
  EXPECT_EQ(ref.contigs()[0].offset, 0u);
  EXPECT_EQ(ref.contigs()[0].length, s1.size());
  EXPECT_EQ(ref.contigs()[1].offset, s1.size());
  EXPECT_EQ(ref.contigs()[1].length, s2.size());
  EXPECT_EQ(ref.contigs()[2].offset, s1.size() + s2.size());
  EXPECT_EQ(ref.contigs()[2].length, 1u);
  EXPECT_EQ(ref.total_length(), s1.size() + s2.size() + s3.size());

  std::vector<uint8_t> expect = codes_of(s1 + s2 + s3);
  EXPECT_EQ(codes_of(ref), expect);
  // Everything that is not A/C/G/T in either case is N (4).
  for (size_t i = 0; i < s2.size(); ++i) EXPECT_EQ(ref.codes()[s1.size() + i], kBaseN) << i;

  // SAM M5: MD5 of the upper-cased sequence; digest: MD5 of the concatenated per-contig MD5s.
  EXPECT_EQ(ref.contigs()[0].md5, md5sum(dir, upper(s1)));
  EXPECT_EQ(ref.contigs()[1].md5, md5sum(dir, upper(s2)));
  EXPECT_EQ(ref.contigs()[2].md5, md5sum(dir, upper(s3)));
  EXPECT_EQ(ref.digest(), md5sum(dir, ref.contigs()[0].md5 + ref.contigs()[1].md5 + ref.contigs()[2].md5));

  EXPECT_EQ(ref.find_contig("chr1"), 0);
  EXPECT_EQ(ref.find_contig("chr2"), 1);
  EXPECT_EQ(ref.find_contig("chr3"), 2);
  EXPECT_EQ(ref.find_contig("chr4"), -1);
  EXPECT_EQ(ref.find_contig("chr1 first"), -1);
  EXPECT_EQ(ref.find_contig(""), -1);
  for (uint64_t g = 0; g < ref.total_length(); ++g) {
    const int expect_contig = g < s1.size() ? 0 : g < s1.size() + s2.size() ? 1 : 2;
    EXPECT_EQ(ref.contig_of(g), expect_contig) << g;
  }
}

// Contigs of A/C/G/T/N get their MD5 from their codes after the file is read (several threads); a
// contig switches to MD5 line by line at its first other letter, mid-line and after plain lines too.
TEST(Reference, Md5OfEveryContigMatchesMd5sumWhereverAmbiguityCodesStart) {
  test::TempDir dir;
  const std::vector<std::pair<std::string, std::vector<std::string>>> contigs = {
      {"plain", {"ACGTNacgtn", "GGCC"}},
      {"late_iupac", {"acgtACGT", "ACGTN", "ACrYgt", "tt"}},
      {"first_iupac", {"Racgt"}},
      {"gap_and_u", {"ACGT", "AC-GT*U"}},
      {"last_letter", {"ACGTACGT", "ACGw"}},
      {"plain2", {"T"}},
  };
  std::string fasta;
  for (const auto& [name, lines] : contigs) {
    fasta += ">" + name + "\n";
    for (const std::string& l : lines) fasta += l + "\n";
  }
  test::write_file(dir.path / "m.fa", fasta);
  const Reference ref = Reference::load((dir.path / "m.fa").string());
  ASSERT_EQ(ref.contigs().size(), contigs.size());
  std::string all;
  for (size_t i = 0; i < contigs.size(); ++i) {
    std::string seq;
    for (const std::string& l : contigs[i].second) seq += l;
    EXPECT_EQ(ref.contigs()[i].md5, md5sum(dir, upper(seq))) << contigs[i].first;
    all += ref.contigs()[i].md5;
  }
  EXPECT_EQ(ref.digest(), md5sum(dir, all));
}

TEST(Reference, LowercaseHasSameMd5AsUppercase) {
  test::TempDir dir;
  test::write_file(dir.path / "lo.fa", ">x\nacgtnnacgt\n");
  test::write_file(dir.path / "up.fa", ">x\nACGT\nNNACGT\n");
  const Reference lo = Reference::load((dir.path / "lo.fa").string());
  const Reference up = Reference::load((dir.path / "up.fa").string());
  EXPECT_EQ(lo.contigs()[0].md5, up.contigs()[0].md5);
  EXPECT_EQ(lo.digest(), up.digest());
  EXPECT_EQ(codes_of(lo), codes_of(up));
}

TEST(Reference, SharedTinyReferenceMatchesSamM5) {
  const fs::path fa = test::shared_data_dir() / "na12878-chr22-tiny" / "q.fa";
  ASSERT_TRUE(fs::exists(fa)) << fa;
  const Reference ref = Reference::load(fa.string());
  ASSERT_EQ(ref.contigs().size(), 1u);
  EXPECT_EQ(ref.contigs()[0].name, "q");
  EXPECT_EQ(ref.contigs()[0].length, 12356u);
  EXPECT_EQ(ref.total_length(), 12356u);
  EXPECT_EQ(ref.contigs()[0].md5, "ee5a2decc990ba0220728d924ddd4dba");
  EXPECT_EQ(ref.digest().size(), 32u);
}

TEST(Reference, PlainGzipAndBgzipGiveIdenticalReferences) {
  test::TempDir dir;
  std::mt19937_64 rng(7);
  std::string text;
  std::vector<std::string> seqs;
  for (int c = 0; c < 5; ++c) {
    std::string s;
    const size_t len = 1000 + rng() % 90000;
    for (size_t i = 0; i < len; ++i) {
      const uint64_t r = rng() % 100;
      s += r < 2 ? 'N' : r < 50 ? "ACGT"[rng() % 4] : "acgt"[rng() % 4];
    }
    seqs.push_back(s);
    text += ">ctg" + std::to_string(c) + " len=" + std::to_string(len) + (c % 2 ? "\r\n" : "\n");
    const size_t width = c == 3 ? 80 : 60;
    for (size_t i = 0; i < len; i += width) text += s.substr(i, width) + (c % 2 ? "\r\n" : "\n");
  }
  const fs::path fa = dir.path / "r.fa";
  test::write_file(fa, text);
  std::string out;
  ASSERT_EQ(test::run_command("gzip -c " + fa.string() + " > " + fa.string() + ".gz", &out), 0) << out;
  ASSERT_EQ(test::run_command("bgzip -c " + fa.string() + " > " + fa.string() + ".bgz", &out), 0) << out;

  const Reference plain = Reference::load(fa.string());
  const Reference gz = Reference::load(fa.string() + ".gz");
  const Reference bgz = Reference::load(fa.string() + ".bgz");
  std::string all;
  for (const auto& s : seqs) all += s;
  EXPECT_EQ(codes_of(plain), codes_of(all));
  for (const Reference* r : {&gz, &bgz}) {
    EXPECT_EQ(codes_of(*r), codes_of(plain));
    EXPECT_EQ(r->digest(), plain.digest());
    ASSERT_EQ(r->contigs().size(), plain.contigs().size());
    for (size_t i = 0; i < plain.contigs().size(); ++i) {
      EXPECT_EQ(r->contigs()[i].name, plain.contigs()[i].name);
      EXPECT_EQ(r->contigs()[i].offset, plain.contigs()[i].offset);
      EXPECT_EQ(r->contigs()[i].length, plain.contigs()[i].length);
      EXPECT_EQ(r->contigs()[i].md5, plain.contigs()[i].md5);
    }
  }
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(plain.contigs()[i].md5, md5sum(dir, upper(seqs[i])));
}

// Expects Reference::load(path) to throw InputError whose message names the file, the given line
// (when line > 0) and contains `what`.
void expect_load_error(const fs::path& path, int line, const std::string& what) {
  try {
    Reference::load(path.string());
    ADD_FAILURE() << "no error for " << path;
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    if (line > 0) {
      EXPECT_NE(msg.find("line " + std::to_string(line) + ":"), std::string::npos) << msg;
    }
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
  }
}

struct ErrorCase {
  const char* name;
  const char* content;
  int line;
  const char* what;
};

TEST(Reference, MalformedInputsNameFileAndLine) {
  const ErrorCase cases[] = {
      {"empty", "", 1, "empty file"},
      {"blank_only", "\n\n\r\n", 3, "no FASTA records"},
      {"seq_before_header", "ACGT\n>a\nACGT\n", 1, "before the first '>'"},
      {"seq_before_header_after_blank", "\n\nACGT\n>a\nACGT\n", 3, "before the first '>'"},
      {"empty_name", ">a\nAC\n>\nAC\n", 3, "without a sequence name"},
      {"empty_name_space", "> desc\nAC\n", 1, "without a sequence name"},
      {"duplicate", ">a x\nAC\n>b\nGG\n>a y\nTT\n", 5, "duplicate contig name 'a'"},
      {"zero_length_first", ">a\n>b\nAC\n", 1, "contig 'a' has no sequence"},
      {"zero_length_last", ">a\nAC\n>b\n\n", 3, "contig 'b' has no sequence"},
      {"zero_length_middle", ">a\nAC\n>b\n\n\n>c\nA\n", 3, "contig 'b' has no sequence"},
      {"digit", ">a\nACGT\nAC1T\n", 3, "invalid character '1' at column 3"},
      {"protein_x", ">a\nACGT\r\nACGT\r\nMKXL\r\n", 4, "invalid character 'X'"},
      {"dot", ">a\nAC.T\n", 2, "invalid character '.'"},
      {"control", ">a\nAC\x01T\n", 2, "invalid character 0x01"},
      {"binary", ">a\nAC\xff\n", 2, "invalid character 0xFF"},
  };
  test::TempDir dir;
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path p = dir.path / (std::string(c.name) + ".fa");
    test::write_file(p, c.content);
    expect_load_error(p, c.line, c.what);
  }
}

TEST(Reference, MissingFileAndDirectory) {
  test::TempDir dir;
  expect_load_error(dir.path / "nope.fa", 0, "not found");
  expect_load_error(dir.path, 0, "directory");
}

TEST(Reference, TruncatedOrCorruptCompressedInput) {
  test::TempDir dir;
  std::mt19937_64 rng(3);
  std::string text = ">a\n";
  for (int line = 0; line < 20000; ++line) {
    for (int i = 0; i < 60; ++i) text += "ACGT"[rng() % 4];
    text += '\n';
  }
  const fs::path fa = dir.path / "big.fa";
  test::write_file(fa, text);
  std::string out;
  ASSERT_EQ(test::run_command("gzip -c " + fa.string() + " > " + fa.string() + ".gz", &out), 0) << out;
  ASSERT_EQ(test::run_command("bgzip -c " + fa.string() + " > " + fa.string() + ".bgz", &out), 0) << out;
  const std::string gz = test::read_file(fa.string() + ".gz");
  const std::string bgz = test::read_file(fa.string() + ".bgz");
  ASSERT_GT(gz.size(), 100000u);
  ASSERT_GT(bgz.size(), 100000u);

  auto check = [&](const std::string& name, const std::string& bytes, const std::string& what) {
    SCOPED_TRACE(name);
    const fs::path p = dir.path / name;
    test::write_file(p, bytes);
    try {
      Reference::load(p.string());
      ADD_FAILURE() << "no error for " << name;
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
      EXPECT_NE(msg.find(": line "), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  };
  check("cut.fa.gz", gz.substr(0, gz.size() / 2), "corrupt compressed data");
  check("cut.fa.bgz", bgz.substr(0, bgz.size() / 2), "corrupt compressed data");
  // Cut exactly before the 28-byte BGZF EOF block: every block reads fine, only the marker is gone.
  check("noeof.fa.bgz", bgz.substr(0, bgz.size() - 28), "EOF marker missing");
  std::string flipped = gz;
  flipped[flipped.size() / 2] ^= 0x5a;
  check("flip.fa.gz", flipped, "");
  flipped = bgz;
  flipped[flipped.size() / 2] ^= 0x5a;
  check("flip.fa.bgz", flipped, "corrupt compressed data");
  std::string crc = gz;
  crc[crc.size() - 6] ^= 0x01;  // gzip trailer CRC32: data inflates, the check fails at the end
  check("crc.fa.gz", crc, "corrupt compressed data");
}

}  // namespace
}  // namespace omicsd
