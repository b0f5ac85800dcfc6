#include <gtest/gtest.h>
#include <htslib/sam.h>

#include <cctype>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "host/align/sam_tags.hpp"
#include "host/common/dna.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

std::vector<uint8_t> codes(const std::string& s) {
  std::vector<uint8_t> out;
  for (char c : s) out.push_back(base_code(c));
  return out;
}

std::vector<uint32_t> parse_cigar(const std::string& s) {
  std::vector<uint32_t> out;
  uint32_t n = 0;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      n = n * 10 + uint32_t(c - '0');
    } else {
      int op = bam_cigar_table[static_cast<unsigned char>(c)];
      EXPECT_GE(op, 0) << "bad CIGAR op " << c;
      out.push_back(bam_cigar_gen(n, op));
      n = 0;
    }
  }
  return out;
}

std::string cigar_string(const std::vector<uint32_t>& cig) {
  std::string s;
  for (uint32_t c : cig) s += std::to_string(bam_cigar_oplen(c)) + bam_cigar_opchr(c);
  return s;
}

EditSummary nm_md(const std::string& query, const std::string& ref, const std::string& cigar) {
  auto q = codes(query);
  auto r = codes(ref);
  auto c = parse_cigar(cigar);
  return compute_nm_md(q.data(), r.data(), c.data(), uint32_t(c.size()));
}

#define EXPECT_NM_MD(query, ref, cigar, want_nm, want_md) \
  do {                                                    \
    EditSummary s_ = nm_md(query, ref, cigar);            \
    EXPECT_EQ(s_.nm, want_nm) << (cigar);                 \
    EXPECT_EQ(s_.md, want_md) << (cigar);                 \
  } while (0)

TEST(SamTags, AllMatch) {
  EXPECT_NM_MD("ACGTACGT", "ACGTACGT", "8M", 0, "8");
  EXPECT_NM_MD("A", "A", "1M", 0, "1");
}

TEST(SamTags, EmptyCigar) { EXPECT_NM_MD("", "", "", 0, "0"); }

TEST(SamTags, MismatchesAtEnds) {
  EXPECT_NM_MD("TCGT", "ACGT", "4M", 1, "0A3");
  EXPECT_NM_MD("ACGA", "ACGT", "4M", 1, "3T0");
  EXPECT_NM_MD("TCGA", "ACGT", "4M", 2, "0A2T0");
  EXPECT_NM_MD("AGTT", "ACGT", "4M", 2, "1C0G1");
  EXPECT_NM_MD("TGCA", "ACGT", "4M", 4, "0A0C0G0T0");
}

TEST(SamTags, Insertions) {
  EXPECT_NM_MD("ACGGGTA", "ACGTA", "3M2I2M", 2, "5");
  EXPECT_NM_MD("ACGTAA", "ACGT", "4M2I", 2, "4");
  EXPECT_NM_MD("TTACGT", "ACGT", "2I4M", 2, "4");
  // A mismatch right after an insertion.
  EXPECT_NM_MD("ACGGGAA", "ACGTA", "3M2I2M", 3, "3T1");
}

TEST(SamTags, Deletions) {
  EXPECT_NM_MD("ACTA", "ACGGTA", "2M2D2M", 2, "2^GG2");
  // Deletion followed by a mismatch needs a 0 between them.
  EXPECT_NM_MD(
      "AAAAAAAAAA"
      "G"
      "CCCCC",
      "AAAAAAAAAA"
      "AC"
      "T"
      "CCCCC",
      "10M2D6M", 3, "10^AC0T5");
  // Mismatch right before a deletion.
  EXPECT_NM_MD("TA", "AGA", "1M1D1M", 2, "0A0^G1");
  // Deletion at the very end and start of the aligned part.
  EXPECT_NM_MD("AC", "ACG", "2M1D", 1, "2^G0");
  EXPECT_NM_MD("CG", "ACG", "1D2M", 1, "0^A2");
  // Two deletions separated only by an insertion.
  EXPECT_NM_MD("ACTGCG", "ACATGCG", "2M1D1I1D3M", 3, "2^A0^T3");
}

TEST(SamTags, Clips) {
  EXPECT_NM_MD("NNACGTNN", "ACGT", "2S4M2S", 0, "4");
  EXPECT_NM_MD("ACGT", "ACGT", "3H4M5H", 0, "4");
  EXPECT_NM_MD("GGACTT", "ACGT", "2S4M", 1, "2G1");
  EXPECT_NM_MD("GGACGTC", "ACGTA", "1H2S4M1S", 0, "4");
}

TEST(SamTags, Ns) {
  EXPECT_NM_MD("NCGT", "ACGT", "4M", 1, "0A3");
  EXPECT_NM_MD("ACGT", "ACNT", "4M", 1, "2N1");
  EXPECT_NM_MD("ACNT", "ACNT", "4M", 1, "2N1");  // N vs N is a mismatch, as in samtools calmd
  EXPECT_NM_MD("AC", "ANAC", "1M2D1M", 2, "1^NA1");
  EXPECT_NM_MD("NN", "NANN", "1M2D1M", 4, "0N0^AN0N0");
}

TEST(SamTags, EqualDiffAndRefSkip) {
  EXPECT_NM_MD("ACTT", "ACGT", "2=1X1=", 1, "2G1");
  EXPECT_NM_MD("ACGT", "ACGGGGT", "2M3N2M", 0, "4");
}

// ---- property test -----------------------------------------------------------------------------

struct Alignment {
  std::string ref;    // reference letters from the first aligned base
  std::string query;  // read letters, clips included
  std::vector<uint32_t> cigar;
  int edits = 0;
};

void push_op(std::vector<uint32_t>& cig, int op, uint32_t len) {
  if (len == 0) return;
  if (!cig.empty() && bam_cigar_op(cig.back()) == uint32_t(op))
    cig.back() = bam_cigar_gen(bam_cigar_oplen(cig.back()) + len, op);
  else
    cig.push_back(bam_cigar_gen(len, op));
}

Alignment random_alignment(std::mt19937_64& rng) {
  const char* acgt = "ACGT";
  auto rnd = [&](int n) { return int(rng() % uint64_t(n)); };
  auto random_base = [&]() { return rnd(100) < 2 ? 'N' : acgt[rnd(4)]; };
  Alignment a;
  const int ref_len = 1 + rnd(300);
  for (int i = 0; i < ref_len; ++i) a.ref.push_back(random_base());

  const int lead_clip = rnd(3) == 0 ? rnd(6) : 0;
  const int hard = rnd(5) == 0 ? 1 + rnd(5) : 0;
  push_op(a.cigar, BAM_CHARD_CLIP, uint32_t(hard));
  for (int i = 0; i < lead_clip; ++i) a.query.push_back(random_base());
  push_op(a.cigar, BAM_CSOFT_CLIP, uint32_t(lead_clip));

  const int mismatch_pct = rnd(20);
  int r = 0;
  while (r < ref_len) {  // always ends on an aligned column
    const int roll = rnd(100);
    if (roll < 6 && r > 0) {  // insertion
      const int len = 1 + rnd(4);
      for (int i = 0; i < len; ++i) a.query.push_back(random_base());
      push_op(a.cigar, BAM_CINS, uint32_t(len));
      a.edits += len;
    } else if (roll < 12 && r > 0 && ref_len - r > 1) {  // deletion
      const int len = std::min(1 + rnd(4), ref_len - r - 1);
      r += len;
      push_op(a.cigar, BAM_CDEL, uint32_t(len));
      a.edits += len;
    } else {  // one aligned column
      const char rb = a.ref[size_t(r)];
      char qb = rb;
      if (rnd(100) < mismatch_pct) {
        if (rnd(10) == 0) {
          qb = 'N';
        } else {
          do qb = acgt[rnd(4)];
          while (qb == rb);
        }
      }
      a.query.push_back(qb);
      const int op = rnd(10) == 0 ? (qb == rb && qb != 'N' ? BAM_CEQUAL : BAM_CDIFF) : BAM_CMATCH;
      push_op(a.cigar, op, 1);
      if (qb != rb || qb == 'N') ++a.edits;
      ++r;
    }
  }
  const int trail_clip = rnd(3) == 0 ? rnd(6) : 0;
  for (int i = 0; i < trail_clip; ++i) a.query.push_back(random_base());
  push_op(a.cigar, BAM_CSOFT_CLIP, uint32_t(trail_clip));
  push_op(a.cigar, BAM_CHARD_CLIP, uint32_t(rnd(5) == 0 ? 1 + rnd(5) : 0));
  return a;
}

// Rebuilds the reference from query + CIGAR + MD the way a consumer of MD does, checking every claim
// on the way (a claimed match is a real non-N match, a claimed mismatch is a real mismatch), and
// returns the reconstructed reference and the NM those claims imply.
bool reconstruct(const Alignment& a, const std::string& md, std::string* ref_out, int* nm_out,
                 std::string* why) {
  static const std::regex grammar("^[0-9]+(([A-Z]|\\^[A-Z]+)[0-9]+)*$");
  if (!std::regex_match(md, grammar)) return *why = "MD grammar", false;
  // Tokenize.
  struct Tok {
    int kind;  // 0 number, 1 mismatch letter, 2 deletion
    uint32_t n;
    std::string s;
  };
  std::vector<Tok> toks;
  for (size_t i = 0; i < md.size();) {
    if (std::isdigit(static_cast<unsigned char>(md[i]))) {
      size_t j = i;
      while (j < md.size() && std::isdigit(static_cast<unsigned char>(md[j]))) ++j;
      if (j - i > 1 && md[i] == '0') return *why = "leading zero", false;
      toks.push_back({0, uint32_t(std::stoul(md.substr(i, j - i))), ""});
      i = j;
    } else if (md[i] == '^') {
      size_t j = i + 1;
      while (j < md.size() && std::isalpha(static_cast<unsigned char>(md[j]))) ++j;
      toks.push_back({2, 0, md.substr(i + 1, j - i - 1)});
      i = j;
    } else {
      toks.push_back({1, 0, std::string(1, md[i])});
      ++i;
    }
  }
  size_t t = 0;
  uint32_t pending = toks[0].n;  // matches still owed by the current number token
  ++t;
  std::string ref;
  int nm = 0;
  size_t q = 0;
  for (uint32_t c : a.cigar) {
    const uint32_t op = bam_cigar_op(c), len = bam_cigar_oplen(c);
    if (op == BAM_CMATCH || op == BAM_CEQUAL || op == BAM_CDIFF) {
      for (uint32_t k = 0; k < len; ++k, ++q) {
        const char qb = a.query[q];
        if (pending > 0) {
          if (qb == 'N') return *why = "match claimed for N", false;
          ref.push_back(qb);
          --pending;
          continue;
        }
        if (t >= toks.size() || toks[t].kind != 1) return *why = "expected mismatch letter", false;
        const char rb = toks[t].s[0];
        if (qb == rb && rb != 'N') return *why = "mismatch claimed for a match", false;
        ref.push_back(rb);
        ++nm;
        ++t;
        if (t >= toks.size() || toks[t].kind != 0) return *why = "no number after letter", false;
        pending = toks[t++].n;
      }
    } else if (op == BAM_CINS) {
      q += len;
      nm += int(len);
    } else if (op == BAM_CSOFT_CLIP) {
      q += len;
    } else if (op == BAM_CDEL) {
      if (pending != 0) return *why = "deletion inside a match run", false;
      if (t >= toks.size() || toks[t].kind != 2 || toks[t].s.size() != len)
        return *why = "deletion does not match MD", false;
      ref += toks[t].s;
      nm += int(len);
      ++t;
      if (t >= toks.size() || toks[t].kind != 0) return *why = "no number after deletion", false;
      pending = toks[t++].n;
    }
  }
  if (pending != 0 || t != toks.size()) return *why = "MD longer than the alignment", false;
  *ref_out = ref;
  *nm_out = nm;
  return true;
}

TEST(SamTags, RandomAlignmentsReconstructReference) {
  std::mt19937_64 rng(12345);
  for (int iter = 0; iter < 20000; ++iter) {
    Alignment a = random_alignment(rng);
    auto q = codes(a.query);
    auto r = codes(a.ref);
    EditSummary s = compute_nm_md(q.data(), r.data(), a.cigar.data(), uint32_t(a.cigar.size()));
    std::string rebuilt, why;
    int nm = -1;
    ASSERT_TRUE(reconstruct(a, s.md, &rebuilt, &nm, &why))
        << why << " md=" << s.md << " cigar=" << cigar_string(a.cigar) << " query=" << a.query
        << " ref=" << a.ref;
    ASSERT_EQ(rebuilt, a.ref) << "md=" << s.md << " cigar=" << cigar_string(a.cigar);
    ASSERT_EQ(s.nm, a.edits) << "md=" << s.md << " cigar=" << cigar_string(a.cigar);
    ASSERT_EQ(nm, a.edits);
  }
}

// The same kind of random alignments through the real `samtools calmd`, when it is installed.
TEST(SamTags, AgreesWithSamtoolsCalmd) {
  std::string out;
  if (test::run_command("samtools --version", &out) != 0) GTEST_SKIP() << "samtools not installed";
  std::mt19937_64 rng(777);
  test::TempDir dir;
  std::ostringstream fasta, header, body;
  header << "@HD\tVN:1.6\tSO:unsorted\n";
  constexpr int kCount = 500;
  std::vector<Alignment> alignments;
  for (int i = 0; i < kCount; ++i) {
    alignments.push_back(random_alignment(rng));
    const Alignment& a = alignments.back();
    // The aligned reference sits between random flanks.
    const size_t left = size_t(rng() % 20), right = size_t(rng() % 20);
    const std::string contig = std::string(left, 'A') + a.ref + std::string(right, 'C');
    fasta << ">c" << i << "\n" << contig << "\n";
    header << "@SQ\tSN:c" << i << "\tLN:" << contig.size() << "\n";
    body << "r" << i << "\t0\tc" << i << "\t" << left + 1 << "\t60\t" << cigar_string(a.cigar)
         << "\t*\t0\t0\t" << a.query << "\t*\n";
  }
  test::write_file(dir.path / "ref.fa", fasta.str());
  test::write_file(dir.path / "in.sam", header.str() + body.str());
  const std::string cmd = "samtools calmd " + (dir.path / "in.sam").string() + " " +
                          (dir.path / "ref.fa").string() + " 2>/dev/null";
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
  std::istringstream lines(out);
  std::string line;
  int checked = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '@') continue;
    const size_t tab = line.find('\t');
    const int i = std::stoi(line.substr(1, tab - 1));
    const Alignment& a = alignments[size_t(i)];
    auto q = codes(a.query);
    auto r = codes(a.ref);
    EditSummary s = compute_nm_md(q.data(), r.data(), a.cigar.data(), uint32_t(a.cigar.size()));
    const size_t nm_at = line.find("\tNM:i:");
    const size_t md_at = line.find("\tMD:Z:");
    ASSERT_NE(nm_at, std::string::npos) << line;
    ASSERT_NE(md_at, std::string::npos) << line;
    const int nm = std::stoi(line.substr(nm_at + 6));
    const size_t md_end = line.find('\t', md_at + 6);
    const std::string md =
        line.substr(md_at + 6, md_end == std::string::npos ? std::string::npos : md_end - md_at - 6);
    EXPECT_EQ(s.nm, nm) << line;
    EXPECT_EQ(s.md, md) << line;
    ++checked;
  }
  EXPECT_EQ(checked, kCount);
}

}  // namespace
}  // namespace omicsd
