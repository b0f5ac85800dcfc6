#include <gtest/gtest.h>
#include <htslib/faidx.h>
#include <htslib/hts.h>
#include <htslib/kstring.h>
#include <htslib/tbx.h>
#include <htslib/vcf.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "host/call/vcf_writer.hpp"
#include "host/common/error.hpp"
#include "host/io/hts_handles.hpp"
#include "omicsd_version.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;

using HdrPtr = BcfHeaderPtr;
using RecPtr = BcfRecordPtr;

bool have_bcftools() {
  static const bool have = test::run_command("bcftools --version") == 0;
  return have;
}

// A small random reference: three contigs; chr2 has a run of N.
struct Fixture {
  test::TempDir dir;
  fs::path fasta;
  std::vector<std::string> seqs;
  Reference ref;

  Fixture() {
    std::mt19937_64 rng(7);
    const char* names[] = {"chr1", "chr2", "chrM"};
    const size_t lengths[] = {60000, 20000, 500};
    std::string text;
    for (size_t c = 0; c < 3; ++c) {
      std::string s;
      for (size_t i = 0; i < lengths[c]; ++i) s.push_back("ACGT"[rng() % 4]);
      if (c == 1) s.replace(1000, 50, std::string(50, 'N'));
      seqs.push_back(s);
      text += std::string(">") + names[c] + " test contig\n";
      for (size_t i = 0; i < s.size(); i += 60) text += s.substr(i, 60) + "\n";
    }
    fasta = dir.path / "ref.fa";
    test::write_file(fasta, text);
    EXPECT_EQ(fai_build(fasta.c_str()), 0);
    ref = Reference::load(fasta.string());
  }

  std::string at(int contig, int64_t pos, size_t len = 1) const {
    return seqs[size_t(contig)].substr(size_t(pos), len);
  }
  // A base different from the reference base at (contig, pos).
  std::string other(int contig, int64_t pos, int shift = 1) const {
    const std::string acgt = "ACGT";
    const size_t i = acgt.find(seqs[size_t(contig)][size_t(pos)]);
    return std::string(1, acgt[(i + size_t(shift)) % 4]);
  }
  std::string out(const std::string& name = "out.vcf.gz") const { return (dir.path / name).string(); }
};

std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

VcfWriterOptions options(const std::string& path, bool gvcf = false) {
  VcfWriterOptions o;
  o.path = path;
  o.sample = "NA12878";
  o.command_line = "omicsd call ref.fa in.bam -o out.vcf.gz";
  o.filters = {{"LowQual", "Low quality"}, {"LowDepth", "Depth below \"10\""}};
  o.gvcf = gvcf;
  return o;
}

VcfRecord snp(const Fixture& fx, int contig, int64_t pos, int g0, int g1) {
  VcfRecord r;
  r.contig = contig;
  r.pos = pos;
  r.ref = fx.at(contig, pos);
  r.alts = {fx.other(contig, pos)};
  r.qual = 50.5f;
  r.gt[0] = g0;
  r.gt[1] = g1;
  r.gq = 45;
  r.dp = 30;
  r.ad = {15, 15};
  r.pl = {400, 0, 380};
  r.info_dp = 31;
  r.info_mq = 59.5f;
  return r;
}

struct ReadBack {
  HdrPtr hdr;
  std::vector<RecPtr> recs;
  std::string header_text;
};

ReadBack read_vcf(const std::string& path) {
  ReadBack rb;
  htsFile* fp = bcf_open(path.c_str(), "r");
  EXPECT_NE(fp, nullptr) << path;
  if (!fp) return rb;
  EXPECT_EQ(hts_get_format(fp)->compression, bgzf) << path;
  rb.hdr.reset(bcf_hdr_read(fp));
  EXPECT_NE(rb.hdr, nullptr);
  kstring_t ks = KS_INITIALIZE;
  EXPECT_EQ(bcf_hdr_format(rb.hdr.get(), 0, &ks), 0);
  rb.header_text.assign(ks.s ? ks.s : "", ks.l);
  ks_free(&ks);
  for (;;) {
    RecPtr r(bcf_init());
    const int rc = bcf_read(fp, rb.hdr.get(), r.get());
    if (rc < 0) {
      EXPECT_EQ(rc, -1) << "read error in " << path;
      break;
    }
    bcf_unpack(r.get(), BCF_UN_ALL);
    rb.recs.push_back(std::move(r));
  }
  EXPECT_EQ(hts_close(fp), 0);
  return rb;
}

std::vector<std::string> alleles_of(const bcf1_t* r) {
  std::vector<std::string> a;
  for (int i = 0; i < r->n_allele; ++i) a.emplace_back(r->d.allele[i]);
  return a;
}

std::vector<int> fmt_ints(const ReadBack& rb, bcf1_t* r, const char* key) {
  int32_t* v = nullptr;
  int n = 0;
  const int got = bcf_get_format_int32(rb.hdr.get(), r, key, &v, &n);
  std::vector<int> out;
  for (int i = 0; i < got; ++i) out.push_back(v[i] == bcf_int32_missing ? -999 : v[i]);
  free(v);
  return out;
}

std::vector<int> info_ints(const ReadBack& rb, bcf1_t* r, const char* key) {
  int32_t* v = nullptr;
  int n = 0;
  const int got = bcf_get_info_int32(rb.hdr.get(), r, key, &v, &n);
  std::vector<int> out(v, v + std::max(got, 0));
  free(v);
  return out;
}

std::vector<float> info_floats(const ReadBack& rb, bcf1_t* r, const char* key) {
  float* v = nullptr;
  int n = 0;
  const int got = bcf_get_info_float(rb.hdr.get(), r, key, &v, &n);
  std::vector<float> out(v, v + std::max(got, 0));
  free(v);
  return out;
}

// GT as text ("0/1", "1|2", "./.").
std::string gt_text(const ReadBack& rb, bcf1_t* r) {
  int32_t* gt = nullptr;
  int n = 0;
  const int got = bcf_get_genotypes(rb.hdr.get(), r, &gt, &n);
  std::string s;
  for (int i = 0; i < got; ++i) {
    if (i) s += bcf_gt_is_phased(gt[i]) ? '|' : '/';
    s += bcf_gt_is_missing(gt[i]) ? std::string(".") : std::to_string(bcf_gt_allele(gt[i]));
  }
  free(gt);
  return s;
}

std::string filters_of(const ReadBack& rb, const bcf1_t* r) {
  std::string s;
  for (int i = 0; i < r->d.n_flt; ++i) {
    if (i) s += ';';
    s += bcf_hdr_int2id(rb.hdr.get(), BCF_DT_ID, r->d.flt[i]);
  }
  return s;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Records a tabix query returns, through htslib.
int tabix_count(const std::string& path, const std::string& region) {
  htsFile* fp = hts_open(path.c_str(), "r");
  EXPECT_NE(fp, nullptr);
  tbx_t* tbx = tbx_index_load3(path.c_str(), nullptr, 0);
  EXPECT_NE(tbx, nullptr) << path;
  if (!fp || !tbx) return -1;
  hts_itr_t* itr = tbx_itr_querys(tbx, region.c_str());
  int n = 0;
  if (itr) {
    kstring_t ks = KS_INITIALIZE;
    while (tbx_itr_next(fp, tbx, itr, &ks) >= 0) ++n;
    ks_free(&ks);
    tbx_itr_destroy(itr);
  }
  tbx_destroy(tbx);
  hts_close(fp);
  return n;
}

// ---- plain VCF ---------------------------------------------------------------------------------

TEST(VcfWriter, RecordsRoundTripWithHeaderIndexAndReferenceCheck) {
  Fixture fx;
  const std::string path = fx.out();
  std::vector<VcfRecord> recs;
  recs.push_back(snp(fx, 0, 100, 0, 1));  // het SNP, everything set
  {
    VcfRecord r = snp(fx, 0, 250, 1, 1);  // hom-alt, filtered
    r.qual = 12;
    r.filters = {"LowQual"};
    r.pl = {300, 90, 0};
    r.ad = {0, 30};
    recs.push_back(r);
  }
  {
    VcfRecord r = snp(fx, 0, 500, 1, 2);  // multi-allelic, phased
    r.alts = {fx.other(0, 500, 1), fx.other(0, 500, 2)};
    r.phased = true;
    r.ad = {1, 14, 15};
    r.pl = {500, 200, 300, 210, 0, 320};
    r.info_mq = -1;
    recs.push_back(r);
  }
  {
    VcfRecord r = snp(fx, 0, 800, 0, 1);  // deletion of 3 bases
    r.ref = fx.at(0, 800, 4);
    r.alts = {fx.at(0, 800)};
    recs.push_back(r);
  }
  {
    VcfRecord r = snp(fx, 0, 800, 0, 1);  // a second record at the same position is fine
    recs.push_back(r);
  }
  {
    VcfRecord r = snp(fx, 1, 10, 0, 1);  // insertion on chr2
    r.alts = {fx.at(1, 10) + "TTG"};
    r.gq = -1;
    r.dp = -1;
    r.ad.clear();
    r.pl.clear();
    r.info_dp = -1;
    recs.push_back(r);
  }
  {
    VcfRecord r = snp(fx, 1, 1020, -1, -1);  // inside the N run: REF N, no call, two filters
    r.ref = "N";
    r.alts = {"A"};
    r.qual = std::numeric_limits<float>::quiet_NaN();
    r.filters = {"LowQual", "LowDepth"};
    recs.push_back(r);
  }
  recs.push_back(snp(fx, 2, 499, 0, 1));  // last base of the last contig
  {
    VcfWriter w(options(path), fx.ref);
    for (const auto& r : recs) w.write(r);
    EXPECT_EQ(w.records_written(), recs.size());
    w.finish();
    EXPECT_EQ(w.records_written(), recs.size());
  }
  EXPECT_EQ(files_in(fx.dir.path),
            (std::set<std::string>{"ref.fa", "ref.fa.fai", "out.vcf.gz", "out.vcf.gz.tbi"}));

  ReadBack rb = read_vcf(path);
  ASSERT_EQ(rb.recs.size(), recs.size());
  // Header.
  const std::string& h = rb.header_text;
  EXPECT_EQ(h.rfind("##fileformat=VCFv4.2\n", 0), 0u) << h;
  EXPECT_NE(h.find("##fileDate=20"), std::string::npos) << h;
  EXPECT_NE(h.find(std::string("##source=omicsd ") + kVersion + " (git " + kGitHash + ")\n"),
            std::string::npos)
      << h;
  EXPECT_NE(h.find("##reference=file://" + fs::absolute(fx.fasta).lexically_normal().string() + "\n"),
            std::string::npos)
      << h;
  EXPECT_NE(h.find("##commandline=omicsd call ref.fa in.bam -o out.vcf.gz\n"), std::string::npos) << h;
  EXPECT_NE(h.find("##FILTER=<ID=PASS,"), std::string::npos) << h;
  EXPECT_NE(h.find("##FILTER=<ID=LowQual,Description=\"Low quality\">"), std::string::npos) << h;
  EXPECT_NE(h.find("##FILTER=<ID=LowDepth,Description=\"Depth below '10'\">"), std::string::npos) << h;
  for (const char* id : {"DP", "MQ", "AC", "AN", "AF"})
    EXPECT_NE(h.find(std::string("##INFO=<ID=") + id + ","), std::string::npos) << id;
  for (const char* id : {"GT", "GQ", "DP", "AD", "PL"})
    EXPECT_NE(h.find(std::string("##FORMAT=<ID=") + id + ","), std::string::npos) << id;
  EXPECT_EQ(h.find("END"), std::string::npos);
  EXPECT_EQ(h.find("NON_REF"), std::string::npos);
  EXPECT_EQ(h.find("MIN_DP"), std::string::npos);
  EXPECT_NE(h.find("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tNA12878\n"), std::string::npos)
      << h;
  ASSERT_EQ(bcf_hdr_nsamples(rb.hdr.get()), 1);
  EXPECT_STREQ(rb.hdr->samples[0], "NA12878");
  for (const Contig& c : fx.ref.contigs()) {
    EXPECT_NE(
        h.find("##contig=<ID=" + c.name + ",length=" + std::to_string(c.length) + ",md5=" + c.md5 + ">"),
        std::string::npos)
        << c.name;
    EXPECT_EQ(c.md5.size(), 32u);
  }

  // Records.
  for (size_t i = 0; i < recs.size(); ++i) {
    const VcfRecord& w = recs[i];
    bcf1_t* r = rb.recs[i].get();
    SCOPED_TRACE("record " + std::to_string(i));
    EXPECT_STREQ(bcf_hdr_id2name(rb.hdr.get(), r->rid), fx.ref.contigs()[size_t(w.contig)].name.c_str());
    EXPECT_EQ(r->pos, w.pos);
    std::vector<std::string> want_alleles{w.ref};
    want_alleles.insert(want_alleles.end(), w.alts.begin(), w.alts.end());
    EXPECT_EQ(alleles_of(r), want_alleles);
    if (std::isnan(w.qual))
      EXPECT_TRUE(bcf_float_is_missing(r->qual));
    else
      EXPECT_FLOAT_EQ(r->qual, w.qual);
    EXPECT_EQ(fmt_ints(rb, r, "GQ"), w.gq < 0 ? std::vector<int>{} : std::vector<int>{w.gq});
    EXPECT_EQ(fmt_ints(rb, r, "DP"), w.dp < 0 ? std::vector<int>{} : std::vector<int>{w.dp});
    EXPECT_EQ(fmt_ints(rb, r, "AD"), w.ad);
    EXPECT_EQ(fmt_ints(rb, r, "PL"), w.pl);
    EXPECT_EQ(info_ints(rb, r, "DP"), w.info_dp < 0 ? std::vector<int>{} : std::vector<int>{w.info_dp});
    EXPECT_EQ(info_floats(rb, r, "MQ"), w.info_mq < 0 ? std::vector<float>{} : std::vector<float>{w.info_mq});
  }
  EXPECT_EQ(gt_text(rb, rb.recs[0].get()), "0/1");
  EXPECT_EQ(gt_text(rb, rb.recs[1].get()), "1/1");
  EXPECT_EQ(gt_text(rb, rb.recs[2].get()), "1|2");
  EXPECT_EQ(gt_text(rb, rb.recs[6].get()), "./.");
  EXPECT_EQ(filters_of(rb, rb.recs[0].get()), "PASS");
  EXPECT_EQ(filters_of(rb, rb.recs[1].get()), "LowQual");
  EXPECT_EQ(filters_of(rb, rb.recs[6].get()), "LowQual;LowDepth");
  EXPECT_EQ(info_ints(rb, rb.recs[0].get(), "AC"), (std::vector<int>{1}));
  EXPECT_EQ(info_ints(rb, rb.recs[0].get(), "AN"), (std::vector<int>{2}));
  EXPECT_EQ(info_floats(rb, rb.recs[0].get(), "AF"), (std::vector<float>{0.5f}));
  EXPECT_EQ(info_ints(rb, rb.recs[1].get(), "AC"), (std::vector<int>{2}));
  EXPECT_EQ(info_floats(rb, rb.recs[1].get(), "AF"), (std::vector<float>{1.0f}));
  EXPECT_EQ(info_ints(rb, rb.recs[2].get(), "AC"), (std::vector<int>{1, 1}));
  EXPECT_EQ(info_floats(rb, rb.recs[2].get(), "AF"), (std::vector<float>{0.5f, 0.5f}));
  EXPECT_EQ(info_ints(rb, rb.recs[6].get(), "AC"), (std::vector<int>{0}));
  EXPECT_EQ(info_ints(rb, rb.recs[6].get(), "AN"), (std::vector<int>{0}));
  EXPECT_TRUE(info_floats(rb, rb.recs[6].get(), "AF").empty());

  // The index answers region queries.
  EXPECT_EQ(tabix_count(path, "chr1"), 5);
  EXPECT_EQ(tabix_count(path, "chr1:200-600"), 2);
  EXPECT_EQ(tabix_count(path, "chr1:802-803"), 1);  // inside the deletion's REF span
  EXPECT_EQ(tabix_count(path, "chr2"), 2);
  EXPECT_EQ(tabix_count(path, "chrM:500"), 1);

  if (!have_bcftools()) GTEST_SKIP() << "bcftools not installed";
  std::string out;
  ASSERT_EQ(test::run_command("bcftools view -H " + path, &out), 0) << out;
  EXPECT_EQ(count_lines(out), int(recs.size())) << out;
  ASSERT_EQ(
      test::run_command("bcftools query -f '%CHROM:%POS %REF %ALT %QUAL %FILTER %INFO/AC %INFO/AN %INFO/AF "
                        "%INFO/DP %INFO/MQ[ %GT %GQ %DP %AD %PL]\\n' " +
                            path,
                        &out),
      0)
      << out;
  std::istringstream lines(out);
  std::string line;
  std::vector<std::string> got;
  while (std::getline(lines, line)) got.push_back(line);
  ASSERT_EQ(got.size(), recs.size()) << out;
  const std::string r0 = fx.at(0, 100), a0 = fx.other(0, 100);
  EXPECT_EQ(got[0], "chr1:101 " + r0 + " " + a0 + " 50.5 PASS 1 2 0.5 31 59.5 0/1 45 30 15,15 400,0,380");
  EXPECT_EQ(got[2], "chr1:501 " + fx.at(0, 500) + " " + fx.other(0, 500, 1) + "," + fx.other(0, 500, 2) +
                        " 50.5 PASS 1,1 2 0.5,0.5 31 . 1|2 45 30 1,14,15 500,200,300,210,0,320");
  EXPECT_EQ(got[5],
            "chr2:11 " + fx.at(1, 10) + " " + fx.at(1, 10) + "TTG 50.5 PASS 1 2 0.5 . 59.5 0/1 . . . .");
  EXPECT_EQ(got[6], "chr2:1021 N A . LowQual;LowDepth 0 0 . 31 59.5 ./. 45 30 15,15 400,0,380");

  ASSERT_EQ(test::run_command("bcftools view -H -r chr1:200-600,chrM " + path, &out), 0) << out;
  EXPECT_EQ(count_lines(out), 3) << out;
  ASSERT_EQ(test::run_command("tabix " + path + " chr2:1-20", &out), 0) << out;
  EXPECT_EQ(count_lines(out), 1) << out;
  // bcftools' own index of the file agrees with ours.
  ASSERT_EQ(
      test::run_command("bcftools index -t -f -o " + (fx.dir.path / "again.tbi").string() + " " + path, &out),
      0)
      << out;
  ASSERT_EQ(test::run_command("bcftools index -n " + path, &out), 0) << out;
  EXPECT_EQ(out, std::to_string(recs.size()) + "\n");
  // REF matches the reference: -c e makes bcftools fail on any mismatch.
  ASSERT_EQ(
      test::run_command("bcftools norm -c e -f " + fx.fasta.string() + " -Ov -o /dev/null " + path, &out), 0)
      << out;
}

TEST(VcfWriter, NormCheckCatchesAWrongReference) {
  // The positive check above means something: a file written against one reference fails
  // `bcftools norm -c e` against a different one.
  if (!have_bcftools()) GTEST_SKIP() << "bcftools not installed";
  Fixture fx;
  const std::string path = fx.out();
  {
    VcfWriter w(options(path), fx.ref);
    for (int64_t p = 10; p < 2000; p += 37) w.write(snp(fx, 0, p, 0, 1));
    w.finish();
  }
  std::string seq = fx.seqs[0];
  for (char& c : seq) c = c == 'A' ? 'C' : c == 'C' ? 'G' : c == 'G' ? 'T' : 'A';
  const fs::path other = fx.dir.path / "other.fa";
  test::write_file(other, ">chr1\n" + seq + "\n>chr2\n" + fx.seqs[1] + "\n>chrM\n" + fx.seqs[2] + "\n");
  std::string out;
  EXPECT_NE(test::run_command("bcftools norm -c e -f " + other.string() + " -Ov -o /dev/null " + path, &out),
            0)
      << out;
}

// ---- gVCF --------------------------------------------------------------------------------------

TEST(VcfWriter, GvcfBlocksAndNonRef) {
  Fixture fx;
  const std::string path = fx.out("out.g.vcf.gz");
  {
    VcfWriter w(options(path, true), fx.ref);
    w.write_ref_block(0, 0, 100, fx.at(0, 0), 20, 40);
    VcfRecord v = snp(fx, 0, 100, 0, 1);
    v.ad = {10, 12};
    v.pl = {200, 0, 150};
    w.write(v);
    w.write_ref_block(0, 101, 60000, fx.at(0, 101), 5, 0);
    VcfRecord m = snp(fx, 1, 5, 1, 2);  // multi-allelic: PL grows from 6 to 10 values
    m.alts = {fx.other(1, 5, 1), fx.other(1, 5, 3)};
    m.ad = {0, 7, 9};
    m.pl = {500, 200, 300, 210, 0, 320};
    w.write(m);
    w.write_ref_block(1, 6, 20000, fx.at(1, 6), -1, -1);  // no depth, no GQ
    w.write_ref_block(2, 0, 1, fx.at(2, 0), 3, 9);        // one-base block
    w.finish();
    EXPECT_EQ(w.records_written(), 6u);
  }
  ReadBack rb = read_vcf(path);
  ASSERT_EQ(rb.recs.size(), 6u);
  const std::string& h = rb.header_text;
  EXPECT_NE(h.find("##ALT=<ID=NON_REF,"), std::string::npos) << h;
  EXPECT_NE(h.find("##INFO=<ID=END,Number=1,Type=Integer,"), std::string::npos) << h;
  EXPECT_NE(h.find("##FORMAT=<ID=MIN_DP,Number=1,Type=Integer,"), std::string::npos) << h;

  bcf1_t* b0 = rb.recs[0].get();
  EXPECT_EQ(b0->pos, 0);
  EXPECT_EQ(alleles_of(b0), (std::vector<std::string>{fx.at(0, 0), "<NON_REF>"}));
  EXPECT_TRUE(bcf_float_is_missing(b0->qual));
  EXPECT_EQ(info_ints(rb, b0, "END"), (std::vector<int>{100}));
  EXPECT_EQ(b0->rlen, 100);
  EXPECT_EQ(gt_text(rb, b0), "0/0");
  EXPECT_EQ(fmt_ints(rb, b0, "GQ"), (std::vector<int>{40}));
  EXPECT_EQ(fmt_ints(rb, b0, "MIN_DP"), (std::vector<int>{20}));
  EXPECT_EQ(fmt_ints(rb, b0, "DP"), (std::vector<int>{20}));
  EXPECT_EQ(fmt_ints(rb, b0, "PL"), (std::vector<int>{0, 40, 80}));
  EXPECT_TRUE(info_ints(rb, b0, "AC").empty());

  bcf1_t* v = rb.recs[1].get();
  EXPECT_EQ(alleles_of(v), (std::vector<std::string>{fx.at(0, 100), fx.other(0, 100), "<NON_REF>"}));
  EXPECT_EQ(gt_text(rb, v), "0/1");
  EXPECT_EQ(fmt_ints(rb, v, "AD"), (std::vector<int>{10, 12, 0}));
  EXPECT_EQ(fmt_ints(rb, v, "PL"), (std::vector<int>{200, 0, 150, 200, 200, 200}));
  EXPECT_EQ(info_ints(rb, v, "AC"), (std::vector<int>{1, 0}));
  EXPECT_EQ(info_ints(rb, v, "AN"), (std::vector<int>{2}));
  EXPECT_EQ(info_floats(rb, v, "AF"), (std::vector<float>{0.5f, 0.0f}));
  EXPECT_TRUE(info_ints(rb, v, "END").empty());

  EXPECT_EQ(info_ints(rb, rb.recs[2].get(), "END"), (std::vector<int>{60000}));
  EXPECT_EQ(fmt_ints(rb, rb.recs[2].get(), "PL"), (std::vector<int>{0, 0, 0}));

  bcf1_t* m = rb.recs[3].get();
  EXPECT_EQ(alleles_of(m).size(), 4u);
  EXPECT_EQ(alleles_of(m).back(), "<NON_REF>");
  EXPECT_EQ(gt_text(rb, m), "1/2");
  EXPECT_EQ(fmt_ints(rb, m, "AD"), (std::vector<int>{0, 7, 9, 0}));
  EXPECT_EQ(fmt_ints(rb, m, "PL"), (std::vector<int>{500, 200, 300, 210, 0, 320, 500, 500, 500, 500}));
  EXPECT_EQ(info_ints(rb, m, "AC"), (std::vector<int>{1, 1, 0}));

  bcf1_t* b4 = rb.recs[4].get();
  EXPECT_EQ(info_ints(rb, b4, "END"), (std::vector<int>{20000}));
  EXPECT_TRUE(fmt_ints(rb, b4, "GQ").empty());
  EXPECT_TRUE(fmt_ints(rb, b4, "MIN_DP").empty());
  EXPECT_TRUE(fmt_ints(rb, b4, "PL").empty());
  EXPECT_EQ(info_ints(rb, rb.recs[5].get(), "END"), (std::vector<int>{1}));

  // Blocks are indexed by their END: a query in the middle of a block finds it.
  EXPECT_EQ(tabix_count(path, "chr1:30000-30001"), 1);
  EXPECT_EQ(tabix_count(path, "chr1:100-101"), 2);  // end of the first block + the SNP
  EXPECT_EQ(tabix_count(path, "chr2:19999"), 1);

  if (!have_bcftools()) GTEST_SKIP() << "bcftools not installed";
  std::string out;
  ASSERT_EQ(test::run_command("bcftools view -H " + path, &out), 0) << out;
  EXPECT_EQ(count_lines(out), 6) << out;
  ASSERT_EQ(
      test::run_command(
          "bcftools query -f '%POS %REF %ALT %INFO/END[ %GT %GQ %MIN_DP %DP %PL]\\n' -r chr1 " + path, &out),
      0)
      << out;
  EXPECT_EQ(out, "1 " + fx.at(0, 0) + " <NON_REF> 100 0/0 40 20 20 0,40,80\n" + "101 " + fx.at(0, 100) + " " +
                     fx.other(0, 100) + ",<NON_REF> . 0/1 45 . 30 200,0,150,200,200,200\n" + "102 " +
                     fx.at(0, 101) + " <NON_REF> 60000 0/0 0 5 5 0,0,0\n");
  ASSERT_EQ(test::run_command("bcftools view -H -r chr1:30000 " + path, &out), 0) << out;
  EXPECT_EQ(count_lines(out), 1) << out;
  ASSERT_EQ(
      test::run_command("bcftools norm -c e -f " + fx.fasta.string() + " -Ov -o /dev/null " + path, &out), 0)
      << out;
  // bcftools expands the blocks back to one record per covered base: every covered base.
  ASSERT_EQ(test::run_command("bcftools convert --gvcf2vcf -f " + fx.fasta.string() + " " + path +
                                  " | bcftools view -H | wc -l",
                              &out),
            0)
      << out;
  EXPECT_EQ(std::stoul(out), 60000u + (20000u - 5u) + 1u) << out;  // chr2:1-5 not covered
}

// Any ploidy: GT of P alleles, PL of C(N+P-1, P) values, AC/AN over the P copies; gVCF NON_REF PLs
// and reference blocks of the record's ploidy.
TEST(VcfWriter, HaploidAndTriploidRecordsAndBlocks) {
  Fixture fx;
  const std::string path = fx.out("ploidy.g.vcf.gz");
  {
    VcfWriter w(options(path, true), fx.ref);
    w.write_ref_block(0, 0, 100, fx.at(0, 0), 20, 40, 1);
    VcfRecord h = snp(fx, 0, 100, 1, 1);
    h.gt = {1};
    h.pl = {300, 0};
    w.write(h);
    VcfRecord t = snp(fx, 0, 200, 0, 1);
    t.gt = {0, 1, 1};
    t.pl = {90, 20, 0, 40};
    w.write(t);
    w.write_ref_block(0, 300, 400, fx.at(0, 300), 10, 17, 3);
    VcfRecord bad = snp(fx, 0, 500, 0, 1);
    bad.gt = {0, 1, 1};  // a diploid PL for a triploid GT
    EXPECT_THROW(w.write(bad), Error);
    bad.gt = {};
    EXPECT_THROW(w.write(bad), Error);
    w.finish();
  }
  ReadBack rb = read_vcf(path);
  ASSERT_EQ(rb.recs.size(), 4u);
  bcf1_t* b0 = rb.recs[0].get();
  EXPECT_EQ(gt_text(rb, b0), "0");
  EXPECT_EQ(fmt_ints(rb, b0, "PL"), (std::vector<int>{0, 40}));
  bcf1_t* h = rb.recs[1].get();
  EXPECT_EQ(gt_text(rb, h), "1");
  EXPECT_EQ(fmt_ints(rb, h, "PL"), (std::vector<int>{300, 0, 300}));  // + NON_REF: C(3, 1) = 3 genotypes
  EXPECT_EQ(info_ints(rb, h, "AC"), (std::vector<int>{1, 0}));
  EXPECT_EQ(info_ints(rb, h, "AN"), (std::vector<int>{1}));
  bcf1_t* t = rb.recs[2].get();
  EXPECT_EQ(gt_text(rb, t), "0/1/1");
  // C(5, 3) = 10 genotypes with NON_REF: the 4 given, then the 6 containing NON_REF at the worst PL.
  EXPECT_EQ(fmt_ints(rb, t, "PL"), (std::vector<int>{90, 20, 0, 40, 90, 90, 90, 90, 90, 90}));
  EXPECT_EQ(info_ints(rb, t, "AC"), (std::vector<int>{2, 0}));
  EXPECT_EQ(info_ints(rb, t, "AN"), (std::vector<int>{3}));
  bcf1_t* b3 = rb.recs[3].get();
  EXPECT_EQ(gt_text(rb, b3), "0/0/0");
  EXPECT_EQ(fmt_ints(rb, b3, "PL"), (std::vector<int>{0, 17, 34, 51}));
}

TEST(VcfWriter, RefBlocksNeedGvcfMode) {
  Fixture fx;
  VcfWriter w(options(fx.out()), fx.ref);
  EXPECT_THROW(w.write_ref_block(0, 0, 10, fx.at(0, 0), 10, 30), Error);
  VcfRecord r = snp(fx, 0, 5, 0, 1);
  r.alts = {"<NON_REF>"};
  EXPECT_THROW(w.write(r), Error);
}

// ---- order and validation ----------------------------------------------------------------------

TEST(VcfWriter, OutOfOrderWriteThrows) {
  Fixture fx;
  const std::string path = fx.out("order.g.vcf.gz");
  VcfWriter w(options(path, true), fx.ref);
  w.write(snp(fx, 0, 500, 0, 1));
  w.write(snp(fx, 0, 500, 1, 1));  // same position: fine
  try {
    w.write(snp(fx, 0, 499, 0, 1));
    FAIL() << "no throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("chr1:500"), std::string::npos) << msg;
    EXPECT_NE(msg.find("order"), std::string::npos) << msg;
  }
  EXPECT_THROW(w.write_ref_block(0, 100, 200, fx.at(0, 100), 10, 20), Error);
  w.write_ref_block(0, 501, 600, fx.at(0, 501), 10, 20);
  w.write(snp(fx, 1, 10, 0, 1));
  EXPECT_THROW(w.write(snp(fx, 0, 700, 0, 1)), Error);  // back to an earlier contig
  w.write(snp(fx, 2, 0, 0, 1));
  EXPECT_THROW(w.write_ref_block(1, 50, 60, fx.at(1, 50), 10, 20), Error);
  w.finish();
  EXPECT_EQ(w.records_written(), 5u);
  EXPECT_EQ(read_vcf(path).recs.size(), 5u);
}

TEST(VcfWriter, InvalidRecordsThrowAndWriteNothing) {
  Fixture fx;
  const std::string path = fx.out();
  VcfWriter w(options(path), fx.ref);
  auto expect_bad = [&](VcfRecord r, const std::string& what) {
    try {
      w.write(r);
      ADD_FAILURE() << "no throw for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  const VcfRecord good = snp(fx, 0, 1000, 0, 1);
  VcfRecord r = good;
  r.ref = "X";
  expect_bad(r, "REF letter");
  r = good;
  for (char& c : r.ref) c = char(std::tolower(c));
  expect_bad(r, "lower-case REF");
  r = good;
  r.ref = fx.other(0, 1000);
  r.alts = {fx.other(0, 1000, 2)};
  expect_bad(r, "REF mismatch");
  r = good;
  r.ref = fx.at(0, 1000) + fx.other(0, 1001);
  expect_bad(r, "REF mismatch at the second base");
  r = good;
  r.ref = "";
  expect_bad(r, "empty REF");
  r = good;
  r.alts = {r.ref};
  expect_bad(r, "ALT == REF");
  r = good;
  r.alts = {fx.other(0, 1000), fx.other(0, 1000)};
  r.ad.clear();
  r.pl.clear();
  expect_bad(r, "duplicate ALT");
  r = good;
  r.alts = {"A,C"};
  expect_bad(r, "ALT with a comma");
  r = good;
  r.alts = {""};
  expect_bad(r, "empty ALT");
  r = good;
  r.gt[1] = 2;
  expect_bad(r, "GT allele out of range");
  r = good;
  r.gt[0] = -2;
  expect_bad(r, "GT allele below -1");
  r = good;
  r.ad = {1, 2, 3};
  expect_bad(r, "AD size");
  r = good;
  r.pl = {0, 1};
  expect_bad(r, "PL size");
  r = good;
  r.pl = {0, -1, 3};
  expect_bad(r, "negative PL");
  r = good;
  r.filters = {"NoSuchFilter"};
  expect_bad(r, "undeclared filter");
  r = good;
  r.filters = {"PASS", "LowQual"};
  expect_bad(r, "PASS with another filter");
  r = good;
  r.pos = 60000;
  expect_bad(r, "position past the contig end");
  r = good;
  r.pos = -1;
  expect_bad(r, "negative position");
  r = good;
  r.contig = 3;
  expect_bad(r, "contig index");
  r = snp(fx, 2, 498, 0, 1);
  r.ref = fx.at(2, 498, 2) + "A";
  expect_bad(r, "REF past the contig end");

  w.write(good);  // the writer is still usable
  w.finish();
  EXPECT_EQ(w.records_written(), 1u);
  EXPECT_THROW(w.write(good), Error);  // after finish
  EXPECT_EQ(read_vcf(path).recs.size(), 1u);
}

TEST(VcfWriter, BadOptionsThrow) {
  Fixture fx;
  VcfWriterOptions o = options(fx.out());
  o.filters = {{"bad id", "x"}};
  EXPECT_THROW(VcfWriter(o, fx.ref), Error);
  o.filters = {{"A", "x"}, {"A", "y"}};
  EXPECT_THROW(VcfWriter(o, fx.ref), Error);
  o = options(fx.out());
  o.sample = "two\tcolumns";
  EXPECT_THROW(VcfWriter(o, fx.ref), Error);
  o = options("");
  EXPECT_THROW(VcfWriter(o, fx.ref), Error);
  EXPECT_EQ(files_in(fx.dir.path), (std::set<std::string>{"ref.fa", "ref.fa.fai"}));
}

// ---- files -------------------------------------------------------------------------------------

TEST(VcfWriter, DestructionWithoutFinishLeavesNoFiles) {
  Fixture fx;
  const std::string path = fx.out();
  {
    VcfWriter w(options(path, true), fx.ref);
    w.write_ref_block(0, 0, 100, fx.at(0, 0), 20, 40);
    for (int64_t p = 100; p < 50000; p += 11) w.write(snp(fx, 0, p, 0, 1));
    EXPECT_EQ(files_in(fx.dir.path).size(), 3u);  // ref.fa, .fai and the temporary output
  }
  EXPECT_EQ(files_in(fx.dir.path), (std::set<std::string>{"ref.fa", "ref.fa.fai"}));

  // An existing output is left untouched by a writer that never finishes.
  test::write_file(path, "old data");
  test::write_file(path + ".tbi", "old index");
  {
    VcfWriter w(options(path), fx.ref);
    w.write(snp(fx, 0, 100, 0, 1));
  }
  EXPECT_EQ(test::read_file(path), "old data");
  EXPECT_EQ(test::read_file(path + ".tbi"), "old index");
  // ... and replaced by one that does.
  {
    VcfWriter w(options(path), fx.ref);
    w.write(snp(fx, 0, 100, 0, 1));
    w.finish();
  }
  EXPECT_EQ(read_vcf(path).recs.size(), 1u);
  EXPECT_EQ(tabix_count(path, "chr1"), 1);
  EXPECT_EQ(files_in(fx.dir.path),
            (std::set<std::string>{"ref.fa", "ref.fa.fai", "out.vcf.gz", "out.vcf.gz.tbi"}));
}

TEST(VcfWriter, UnwritableDestinationThrowsNamingThePath) {
  Fixture fx;
  const std::string path = (fx.dir.path / "no-such-dir" / "out.vcf.gz").string();
  try {
    VcfWriter w(options(path), fx.ref);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  // A regular file where a directory should be.
  const std::string under_file = (fx.fasta / "out.vcf.gz").string();
  try {
    VcfWriter w(options(under_file), fx.ref);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(under_file), std::string::npos) << e.what();
  }
  EXPECT_EQ(files_in(fx.dir.path), (std::set<std::string>{"ref.fa", "ref.fa.fai"}));
}

TEST(VcfWriter, EmptyOutputIsValidAndIndexed) {
  Fixture fx;
  const std::string path = fx.out();
  {
    VcfWriter w(options(path), fx.ref);
    w.finish();
    w.finish();  // idempotent
    EXPECT_EQ(w.records_written(), 0u);
  }
  ReadBack rb = read_vcf(path);
  EXPECT_TRUE(rb.recs.empty());
  EXPECT_TRUE(fs::exists(path + ".tbi"));
  EXPECT_EQ(tabix_count(path, "chr1"), 0);
}

TEST(VcfWriter, ThreadedOutputHasTheSameRecords) {
  Fixture fx;
  auto write_all = [&](const std::string& path, int threads) {
    VcfWriterOptions o = options(path);
    o.threads = threads;
    VcfWriter w(o, fx.ref);
    for (int c = 0; c < 3; ++c)
      for (int64_t p = 0; p < int64_t(fx.seqs[size_t(c)].size()); p += 3) {
        if (fx.seqs[size_t(c)][size_t(p)] == 'N') continue;
        VcfRecord r = snp(fx, c, p, int(p % 2), 1);
        r.qual = float(p % 997) / 4.0f;
        w.write(r);
      }
    w.finish();
    return w.records_written();
  };
  const std::string one = fx.out("one.vcf.gz"), three = fx.out("three.vcf.gz");
  const size_t n = write_all(one, 1);
  EXPECT_EQ(write_all(three, 3), n);
  EXPECT_GT(n, 26000u);
  ReadBack a = read_vcf(one), b = read_vcf(three);
  ASSERT_EQ(a.recs.size(), n);
  ASSERT_EQ(b.recs.size(), n);
  kstring_t ka = KS_INITIALIZE, kb = KS_INITIALIZE;
  for (size_t i = 0; i < n; ++i) {
    ka.l = kb.l = 0;
    ASSERT_EQ(vcf_format(a.hdr.get(), a.recs[i].get(), &ka), 0);
    ASSERT_EQ(vcf_format(b.hdr.get(), b.recs[i].get(), &kb), 0);
    ASSERT_EQ(std::string(ka.s, ka.l), std::string(kb.s, kb.l)) << i;
  }
  ks_free(&ka);
  ks_free(&kb);
  EXPECT_EQ(tabix_count(three, "chr2:1-3000"), 1000 - 50 / 3);
}

// ---- real data: the GIAB truth calls written back out score F1 1 with scripts/eval-vcf.sh ------

TEST(VcfWriter, TruthCallsRewrittenScorePerfectly) {
  const fs::path data = test::shared_data_dir() / "na12878-chr22-tiny";
  if (!fs::exists(data / "truth.vcf.gz")) GTEST_SKIP() << "shared test data not found at " << data;
  if (!have_bcftools()) GTEST_SKIP() << "bcftools not installed";
  const std::string fasta = (data / "q.fa").string();
  const std::string truth = (data / "truth.vcf.gz").string();
  const Reference ref = Reference::load(fasta);
  test::TempDir dir;
  const std::string path = (dir.path / "calls.vcf.gz").string();
  ReadBack rb = read_vcf(truth);
  ASSERT_EQ(rb.recs.size(), 14u);
  {
    VcfWriterOptions o = options(path);
    VcfWriter w(o, ref);
    for (const RecPtr& t : rb.recs) {
      bcf1_t* r = t.get();
      VcfRecord v;
      v.contig = ref.find_contig(bcf_hdr_id2name(rb.hdr.get(), r->rid));
      v.pos = r->pos;
      v.ref = r->d.allele[0];
      for (int a = 1; a < r->n_allele; ++a) v.alts.emplace_back(r->d.allele[a]);
      v.qual = 60;
      const std::string gt = gt_text(rb, r);
      ASSERT_EQ(gt.size(), 3u) << gt;
      v.gt[0] = gt[0] - '0';
      v.gt[1] = gt[2] - '0';
      v.phased = gt[1] == '|';
      w.write(v);
    }
    w.finish();
  }
  const std::string script = std::string(OMICSD_SOURCE_DIR) + "/scripts/eval-vcf.sh";
  const std::string json = (dir.path / "eval.json").string();
  std::string out;
  ASSERT_EQ(
      test::run_command("bash " + script + " --json " + json + " " + fasta + " " + truth + " " + path, &out),
      0)
      << out;
  const std::string want =
      "SNP tp=14 fp=0 fn=0 precision=1.0000 recall=1.0000 F1=1.0000 gt_match=14/14\n"
      "INDEL tp=0 fp=0 fn=0 precision=0.0000 recall=0.0000 F1=0.0000 gt_match=0/0\n";
  EXPECT_EQ(out, want);
  EXPECT_NE(test::read_file(json).find("\"SNP\": {\"tp\": 14, \"fp\": 0, \"fn\": 0, \"precision\": 1.0000, "
                                       "\"recall\": 1.0000, \"f1\": 1.0000, \"gt_match\": 14}"),
            std::string::npos)
      << test::read_file(json);
  // The project's evaluator and the shared reference one agree.
  const fs::path shared_tool = test::shared_data_dir() / ".." / "tools" / "eval_vcf.sh";
  if (fs::exists(shared_tool)) {
    ASSERT_EQ(
        test::run_command("bash " + shared_tool.string() + " " + fasta + " " + truth + " " + path, &out), 0)
        << out;
    EXPECT_EQ(out, want);
  }
}

}  // namespace
}  // namespace omicsd

namespace omicsd {
namespace {

// Extra INFO fields (the caller's site annotations): declared in the header as given, written per
// record with their types, rejected when undeclared or of another type.
TEST(VcfWriter, ExtraInfoFieldsRoundTrip) {
  Fixture fx;
  const std::string path = fx.out();
  VcfWriterOptions o = options(path);
  o.infos = {{"QD", "1", "Float", "QUAL / DP"},
             {"SB", "4", "Integer", "Strand table"},
             {"STR", "0", "Flag", "In a tandem repeat"},
             {"RU", "1", "String", "Repeat unit"}};
  {
    VcfWriter w(o, fx.ref);
    VcfRecord r = snp(fx, 0, 100, 0, 1);
    r.info = {VcfInfoValue::real("QD", 12.5f), VcfInfoValue::integer("SB", {1, 2, 3, 4}),
              VcfInfoValue::flag("STR"), VcfInfoValue::text("RU", "AT")};
    w.write(r);
    VcfRecord plain = snp(fx, 0, 200, 0, 1);  // no extra INFO at all
    w.write(plain);
    VcfRecord undeclared = snp(fx, 0, 300, 0, 1);
    undeclared.info = {VcfInfoValue::real("FS", 1.0f)};
    EXPECT_THROW(w.write(undeclared), Error);
    VcfRecord wrong_type = snp(fx, 0, 300, 0, 1);
    wrong_type.info = {VcfInfoValue::text("QD", "high")};
    EXPECT_THROW(w.write(wrong_type), Error);
    VcfRecord bad_string = snp(fx, 0, 300, 0, 1);
    bad_string.info = {VcfInfoValue::text("RU", "A;T")};
    EXPECT_THROW(w.write(bad_string), Error);
    w.finish();
  }
  ReadBack rb = read_vcf(path);
  ASSERT_EQ(rb.recs.size(), 2u);
  const std::string& h = rb.header_text;
  EXPECT_NE(h.find("##INFO=<ID=QD,Number=1,Type=Float,Description=\"QUAL / DP\">"), std::string::npos) << h;
  EXPECT_NE(h.find("##INFO=<ID=SB,Number=4,Type=Integer,Description=\"Strand table\">"), std::string::npos);
  EXPECT_NE(h.find("##INFO=<ID=STR,Number=0,Type=Flag,Description=\"In a tandem repeat\">"),
            std::string::npos);
  bcf1_t* r = rb.recs[0].get();
  float* qd = nullptr;
  int n = 0;
  ASSERT_EQ(bcf_get_info_float(rb.hdr.get(), r, "QD", &qd, &n), 1);
  EXPECT_EQ(qd[0], 12.5f);
  free(qd);
  int32_t* sb = nullptr;
  n = 0;
  ASSERT_EQ(bcf_get_info_int32(rb.hdr.get(), r, "SB", &sb, &n), 4);
  EXPECT_EQ(std::vector<int32_t>(sb, sb + 4), (std::vector<int32_t>{1, 2, 3, 4}));
  free(sb);
  EXPECT_EQ(bcf_get_info_flag(rb.hdr.get(), r, "STR", nullptr, nullptr), 1);
  char* ru = nullptr;
  n = 0;
  ASSERT_GT(bcf_get_info_string(rb.hdr.get(), r, "RU", &ru, &n), 0);
  EXPECT_EQ(std::string(ru), "AT");
  free(ru);
  EXPECT_EQ(bcf_get_info_flag(rb.hdr.get(), rb.recs[1].get(), "STR", nullptr, nullptr), 0);
}

}  // namespace
}  // namespace omicsd
