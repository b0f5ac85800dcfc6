#include <gtest/gtest.h>
#include <htslib/hts.h>
#include <htslib/kstring.h>
#include <htslib/sam.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "host/common/error.hpp"
#include "host/io/bam_output.hpp"
#include "host/io/hts_handles.hpp"
#include "omicsd_version.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;

using BamPtr = BamRecordPtr;
using HdrPtr = SamHeaderPtr;

const char* kRg = "@RG\\tID:grp1\\tSM:sample1\\tPL:ILLUMINA";

// A small random reference: three contigs.
struct Fixture {
  test::TempDir dir;
  fs::path fasta;
  std::vector<std::string> contigs;
  Reference ref;
  HdrPtr hdr;

  Fixture() {
    std::mt19937_64 rng(99);
    const char* acgt = "ACGT";
    const size_t lengths[] = {6000, 4000, 2500};
    std::string text;
    for (size_t c = 0; c < 3; ++c) {
      std::string s;
      for (size_t i = 0; i < lengths[c]; ++i) s.push_back(acgt[rng() % 4]);
      contigs.push_back(s);
      text += ">chr" + std::to_string(c + 1) + " test contig\n";
      for (size_t i = 0; i < s.size(); i += 60) text += s.substr(i, 60) + "\n";
    }
    fasta = dir.path / "ref.fa";
    test::write_file(fasta, text);
    ref = Reference::load(fasta.string());
    hdr.reset(build_bam_header(ref, kRg, "omicsd align ref.fa reads.fq"));
  }
};

// Records with random placement: mostly mapped (both strands), some unmapped placed next to a mate
// (tid/pos set, flag 4) and some unmapped without any position.
std::vector<BamPtr> random_records(const Fixture& fx, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<BamPtr> out;
  out.reserve(n);
  const std::string rg_id = read_group_id(kRg);
  for (size_t i = 0; i < n; ++i) {
    const int kind = int(rng() % 100);
    const int len = 30 + int(rng() % 90);
    int32_t tid = -1;
    int64_t pos = -1;
    uint16_t flag = 0;
    std::string seq;
    if (kind < 95) {
      tid = int32_t(rng() % 3);
      // Few distinct positions so many records tie on (tid, pos, strand).
      pos = int64_t(rng() % (fx.contigs[size_t(tid)].size() - size_t(len)) / 7 * 7);
      if (rng() % 2) flag |= BAM_FREVERSE;
      seq = fx.contigs[size_t(tid)].substr(size_t(pos), size_t(len));
      if (rng() % 4 == 0) seq[rng() % seq.size()] = 'A';
      if (kind >= 90) flag = BAM_FUNMAP | BAM_FPAIRED | BAM_FMREVERSE;  // placed unmapped
    } else {
      flag = BAM_FUNMAP;
      for (int k = 0; k < len; ++k) seq.push_back("ACGT"[rng() % 4]);
    }
    std::string qual(size_t(len), char(20 + rng() % 20));
    const std::string name = std::string("r").append(std::to_string(i));
    const uint32_t cigar = bam_cigar_gen(uint32_t(len), BAM_CMATCH);
    const bool mapped = !(flag & BAM_FUNMAP);
    BamPtr b(bam_init1());
    int rc = bam_set1(b.get(), name.size(), name.c_str(), flag, tid, pos, mapped ? 60 : 0, mapped ? 1 : 0,
                      &cigar, -1, -1, 0, seq.size(), seq.c_str(), qual.c_str(), 0);
    EXPECT_GE(rc, 0);
    EXPECT_EQ(bam_aux_append(b.get(), "RG", 'Z', int(rg_id.size() + 1),
                             reinterpret_cast<const uint8_t*>(rg_id.c_str())),
              0);
    out.push_back(std::move(b));
  }
  return out;
}

bool key_less(const bam1_t* a, const bam1_t* b) {
  const uint32_t ta = uint32_t(a->core.tid), tb = uint32_t(b->core.tid);
  if (ta != tb) return ta < tb;
  if (a->core.pos != b->core.pos) return a->core.pos < b->core.pos;
  return bam_is_rev(a) < bam_is_rev(b);
}

std::vector<const bam1_t*> expected_order(const std::vector<BamPtr>& recs) {
  std::vector<const bam1_t*> v;
  for (const auto& b : recs) v.push_back(b.get());
  std::stable_sort(v.begin(), v.end(), key_less);
  return v;
}

struct ReadBack {
  HdrPtr hdr;
  std::vector<BamPtr> recs;
};

ReadBack read_all(const fs::path& path, const std::string& fasta = "") {
  ReadBack rb;
  htsFile* fp = hts_open(path.c_str(), "r");
  EXPECT_NE(fp, nullptr) << path;
  if (!fp) return rb;
  if (!fasta.empty()) {
    EXPECT_EQ(hts_set_fai_filename(fp, fasta.c_str()), 0);
  }
  rb.hdr.reset(sam_hdr_read(fp));
  EXPECT_NE(rb.hdr, nullptr);
  for (;;) {
    BamPtr b(bam_init1());
    int r = sam_read1(fp, rb.hdr.get(), b.get());
    if (r < 0) {
      EXPECT_EQ(r, -1) << "read error in " << path;
      break;
    }
    rb.recs.push_back(std::move(b));
  }
  EXPECT_EQ(hts_close(fp), 0);
  return rb;
}

void expect_same_records(const std::vector<const bam1_t*>& want, const std::vector<BamPtr>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const bam1_t* a = want[i];
    const bam1_t* b = got[i].get();
    ASSERT_STREQ(bam_get_qname(a), bam_get_qname(b)) << "record " << i;
    ASSERT_EQ(a->core.tid, b->core.tid);
    ASSERT_EQ(a->core.pos, b->core.pos);
    ASSERT_EQ(a->core.flag, b->core.flag);
    ASSERT_EQ(a->core.qual, b->core.qual);
    ASSERT_EQ(a->core.mtid, b->core.mtid);
    ASSERT_EQ(a->core.mpos, b->core.mpos);
    ASSERT_EQ(a->l_data, b->l_data) << bam_get_qname(a);
    ASSERT_EQ(std::memcmp(a->data, b->data, size_t(a->l_data)), 0) << bam_get_qname(a);
  }
}

std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

size_t count_spill_files(const fs::path& dir) {
  size_t n = 0;
  const std::string marker = ".tmp." + std::to_string(getpid()) + ".";
  for (const auto& name : files_in(dir))
    if (name.find(marker) != std::string::npos && name.size() > 4 && name.substr(name.size() - 4) == ".bam")
      ++n;
  return n;
}

std::string hdr_text(const sam_hdr_t* h) { return sam_hdr_str(const_cast<sam_hdr_t*>(h)); }

// ---- header ------------------------------------------------------------------------------------

TEST(BamHeader, HasSqM5RgAndPg) {
  Fixture fx;
  const std::string text = hdr_text(fx.hdr.get());
  EXPECT_EQ(text.rfind("@HD\tVN:1.6\tSO:coordinate\n", 0), 0u) << text;
  EXPECT_EQ(sam_hdr_nref(fx.hdr.get()), 3);
  EXPECT_STREQ(sam_hdr_tid2name(fx.hdr.get(), 1), "chr2");
  EXPECT_EQ(sam_hdr_tid2len(fx.hdr.get(), 2), 2500);
  kstring_t ks = KS_INITIALIZE;
  for (const Contig& c : fx.ref.contigs()) {
    ASSERT_EQ(sam_hdr_find_tag_id(fx.hdr.get(), "SQ", "SN", c.name.c_str(), "M5", &ks), 0);
    EXPECT_EQ(std::string(ks.s), c.md5);
    EXPECT_EQ(c.md5.size(), 32u);
    ASSERT_EQ(sam_hdr_find_tag_id(fx.hdr.get(), "SQ", "SN", c.name.c_str(), "UR", &ks), 0);
    EXPECT_TRUE(fs::path(ks.s).is_absolute()) << ks.s;
    EXPECT_TRUE(fs::equivalent(ks.s, fx.fasta)) << ks.s;
  }
  ASSERT_EQ(sam_hdr_find_tag_id(fx.hdr.get(), "RG", "ID", "grp1", "SM", &ks), 0);
  EXPECT_STREQ(ks.s, "sample1");
  ASSERT_EQ(sam_hdr_find_tag_id(fx.hdr.get(), "PG", "ID", "omicsd", "VN", &ks), 0);
  EXPECT_STREQ(ks.s, kVersion);
  ASSERT_EQ(sam_hdr_find_tag_id(fx.hdr.get(), "PG", "ID", "omicsd", "PN", &ks), 0);
  EXPECT_STREQ(ks.s, "omicsd");
  ASSERT_EQ(sam_hdr_find_tag_id(fx.hdr.get(), "PG", "ID", "omicsd", "CL", &ks), 0);
  EXPECT_STREQ(ks.s, "omicsd align ref.fa reads.fq");
  ks_free(&ks);
  EXPECT_NE(text.find("@RG\tID:grp1\tSM:sample1\tPL:ILLUMINA\n"), std::string::npos) << text;
}

TEST(BamHeader, M5MatchesSamtoolsDict) {
  Fixture fx;
  std::string out;
  if (test::run_command("samtools --version", &out) != 0) GTEST_SKIP() << "samtools not installed";
  ASSERT_EQ(test::run_command("samtools dict " + fx.fasta.string(), &out), 0) << out;
  for (const Contig& c : fx.ref.contigs()) EXPECT_NE(out.find("M5:" + c.md5), std::string::npos) << out;
}

TEST(BamHeader, ReadGroupParsing) {
  Fixture fx;
  EXPECT_EQ(read_group_id("@RG\\tID:foo\\tSM:bar"), "foo");
  EXPECT_EQ(read_group_id("@RG\tID:foo\tSM:bar"), "foo");  // real tabs
  EXPECT_EQ(read_group_id("@RG\\tSM:bar\\tID:x.1"), "x.1");
  EXPECT_EQ(read_group_id(""), "");
  EXPECT_THROW(read_group_id("ID:foo\\tSM:bar"), InputError);
  EXPECT_THROW(read_group_id("@RG\\tSM:bar"), InputError);
  EXPECT_THROW(read_group_id("@RG\\tID:foo\nSM:bar"), InputError);
  EXPECT_THROW(read_group_id("@RG\\tID:foo\\tbad"), InputError);
  EXPECT_THROW(read_group_id("@RG ID:foo"), InputError);
  EXPECT_THROW(build_bam_header(fx.ref, "@RG\\tSM:bar", "x"), InputError);
  EXPECT_THROW(build_bam_header(fx.ref, "@XX\\tID:foo", "x"), InputError);
  EXPECT_THROW(build_bam_header(fx.ref, "@RG\\tID:a\\nSM:b\n", "x"), InputError);

  HdrPtr none(build_bam_header(fx.ref, "", "cmd\twith\ttabs\nand newline"));
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(sam_hdr_count_lines(none.get(), "RG"), 0);
  EXPECT_EQ(sam_hdr_count_lines(none.get(), "PG"), 1);
  const std::string text = hdr_text(none.get());
  EXPECT_NE(text.find("CL:cmd with tabs and newline\n"), std::string::npos) << text;
}

// ---- sorted writer -----------------------------------------------------------------------------

TEST(SortedBamWriter, SpillingMatchesStableSortAndInMemoryOutput) {
  Fixture fx;
  const auto recs = random_records(fx, 50000, 1);
  const auto want = expected_order(recs);
  const fs::path spilled = fx.dir.path / "spilled.bam";
  const fs::path direct = fx.dir.path / "direct.bam";
  {
    BamOutputOptions opt;
    opt.path = spilled.string();
    opt.sort_memory_bytes = 512 << 10;
    SortedBamWriter w(opt, fx.hdr.get());
    for (const auto& b : recs) w.add(b.get());
    EXPECT_GE(count_spill_files(fx.dir.path), 5u);  // several sorted runs were spilled
    w.finish();
    EXPECT_EQ(w.records_written(), recs.size());
  }
  {
    BamOutputOptions opt;
    opt.path = direct.string();
    SortedBamWriter w(opt, fx.hdr.get());
    for (const auto& b : recs) w.add(b.get());
    EXPECT_EQ(count_spill_files(fx.dir.path), 0u);
    w.finish();
    EXPECT_EQ(w.records_written(), recs.size());
  }
  // Only the outputs and their indexes remain.
  EXPECT_EQ(files_in(fx.dir.path), (std::set<std::string>{"ref.fa", "spilled.bam", "spilled.bam.bai",
                                                          "direct.bam", "direct.bam.bai"}));
  ReadBack rb = read_all(spilled);
  expect_same_records(want, rb.recs);
  for (size_t i = 1; i < rb.recs.size(); ++i)
    ASSERT_FALSE(key_less(rb.recs[i].get(), rb.recs[i - 1].get())) << "unsorted at " << i;
  // The output header is the one given.
  EXPECT_EQ(hdr_text(rb.hdr.get()), hdr_text(fx.hdr.get()));
  // Same bytes whether or not the sort spilled.
  EXPECT_EQ(test::read_file(spilled), test::read_file(direct));

  // The index works: a region query returns exactly the records on that contig.
  htsFile* fp = hts_open(spilled.c_str(), "r");
  ASSERT_NE(fp, nullptr);
  HdrPtr h(sam_hdr_read(fp));
  hts_idx_t* idx = sam_index_load(fp, spilled.c_str());
  ASSERT_NE(idx, nullptr);
  for (int tid = 0; tid < 3; ++tid) {
    hts_itr_t* itr = sam_itr_queryi(idx, tid, 0, 1 << 20);
    ASSERT_NE(itr, nullptr);
    BamPtr b(bam_init1());
    size_t n = 0;
    while (sam_itr_next(fp, itr, b.get()) >= 0) ++n;
    hts_itr_destroy(itr);
    EXPECT_EQ(n, size_t(std::count_if(want.begin(), want.end(),
                                      [&](const bam1_t* r) { return r->core.tid == tid; })));
  }
  hts_idx_destroy(idx);
  hts_close(fp);

  std::string out;
  if (test::run_command("samtools --version", &out) == 0) {
    EXPECT_EQ(test::run_command("samtools quickcheck -v " + spilled.string(), &out), 0) << out;
    ASSERT_EQ(test::run_command("samtools view -c " + spilled.string(), &out), 0) << out;
    EXPECT_EQ(std::stoul(out), recs.size());
    // samtools' own sort agrees (its order for ties is by input order too).
    const fs::path resorted = fx.dir.path / "resorted.bam";
    ASSERT_EQ(test::run_command("samtools sort -l 0 -o " + resorted.string() + " " + spilled.string(), &out),
              0)
        << out;
    ReadBack again = read_all(resorted);
    expect_same_records(want, again.recs);
  }
}

TEST(SortedBamWriter, MultiLevelMergeWithFewDescriptors) {
  Fixture fx;
  const auto recs = random_records(fx, 20000, 2);
  const auto want = expected_order(recs);
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  struct rlimit low = old;
  low.rlim_cur = 64;  // fan-in 16 with ~100 runs: two merge levels
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  const fs::path path = fx.dir.path / "out.bam";
  try {
    BamOutputOptions opt;
    opt.path = path.string();
    opt.sort_memory_bytes = 32 << 10;
    SortedBamWriter w(opt, fx.hdr.get());
    for (const auto& b : recs) w.add(b.get());
    EXPECT_GE(count_spill_files(fx.dir.path), 50u);
    w.finish();
    EXPECT_EQ(w.records_written(), recs.size());
  } catch (...) {
    setrlimit(RLIMIT_NOFILE, &old);
    throw;
  }
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_EQ(files_in(fx.dir.path), (std::set<std::string>{"ref.fa", "out.bam", "out.bam.bai"}));
  expect_same_records(want, read_all(path).recs);
}

TEST(SortedBamWriter, ThreadsAndTmpDir) {
  Fixture fx;
  const auto recs = random_records(fx, 20000, 3);
  const auto want = expected_order(recs);
  const fs::path out_dir = fx.dir.path / "out";
  const fs::path tmp_dir = fx.dir.path / "tmp";
  fs::create_directory(out_dir);
  fs::create_directory(tmp_dir);
  BamOutputOptions opt;
  opt.path = (out_dir / "x.bam").string();
  opt.tmp_dir = tmp_dir.string();
  opt.threads = 3;
  opt.sort_memory_bytes = 256 << 10;
  SortedBamWriter w(opt, fx.hdr.get());
  for (const auto& b : recs) w.add(b.get());
  EXPECT_GE(count_spill_files(tmp_dir), 3u);
  EXPECT_EQ(count_spill_files(out_dir), 0u);
  w.finish();
  EXPECT_TRUE(fs::is_empty(tmp_dir));
  EXPECT_EQ(files_in(out_dir), (std::set<std::string>{"x.bam", "x.bam.bai"}));
  expect_same_records(want, read_all(out_dir / "x.bam").recs);
}

TEST(SortedBamWriter, EmptyOutputAndNoIndexOption) {
  Fixture fx;
  const fs::path path = fx.dir.path / "empty.bam";
  {
    BamOutputOptions opt;
    opt.path = path.string();
    SortedBamWriter w(opt, fx.hdr.get());
    w.finish();
    EXPECT_EQ(w.records_written(), 0u);
  }
  EXPECT_TRUE(fs::exists(path.string() + ".bai"));
  ReadBack rb = read_all(path);
  EXPECT_TRUE(rb.recs.empty());
  // Rewriting without an index replaces the file and removes the now stale index.
  const auto recs = random_records(fx, 100, 4);
  {
    BamOutputOptions opt;
    opt.path = path.string();
    opt.write_index = false;
    SortedBamWriter w(opt, fx.hdr.get());
    for (const auto& b : recs) w.add(b.get());
    w.finish();
    EXPECT_EQ(w.records_written(), 100u);
  }
  EXPECT_EQ(files_in(fx.dir.path), (std::set<std::string>{"ref.fa", "empty.bam"}));
  expect_same_records(expected_order(recs), read_all(path).recs);
}

TEST(SortedBamWriter, CramWithReference) {
  Fixture fx;
  const auto recs = random_records(fx, 20000, 5);
  const auto want = expected_order(recs);
  const fs::path path = fx.dir.path / "out.cram";
  {
    BamOutputOptions opt;
    opt.path = path.string();
    opt.cram = true;
    opt.reference_fasta = fx.fasta.string();
    opt.sort_memory_bytes = 256 << 10;
    opt.threads = 2;
    SortedBamWriter w(opt, fx.hdr.get());
    for (const auto& b : recs) w.add(b.get());
    EXPECT_GE(count_spill_files(fx.dir.path), 3u);
    w.finish();
    EXPECT_EQ(w.records_written(), recs.size());
  }
  // fai_build made ref.fa.fai for the CRAM encoder.
  EXPECT_EQ(files_in(fx.dir.path),
            (std::set<std::string>{"ref.fa", "ref.fa.fai", "out.cram", "out.cram.crai"}));
  ReadBack rb = read_all(path, fx.fasta.string());
  ASSERT_EQ(rb.recs.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const bam1_t* a = want[i];
    const bam1_t* b = rb.recs[i].get();
    ASSERT_STREQ(bam_get_qname(a), bam_get_qname(b)) << i;
    ASSERT_EQ(a->core.tid, b->core.tid);
    ASSERT_EQ(a->core.pos, b->core.pos);
    ASSERT_EQ(a->core.flag, b->core.flag);
    ASSERT_EQ(a->core.l_qseq, b->core.l_qseq);
    for (int k = 0; k < a->core.l_qseq; ++k)
      ASSERT_EQ(bam_seqi(bam_get_seq(a), k), bam_seqi(bam_get_seq(b), k)) << bam_get_qname(a);
    ASSERT_EQ(std::memcmp(bam_get_qual(a), bam_get_qual(b), size_t(a->core.l_qseq)), 0);
  }
  const std::string text = hdr_text(rb.hdr.get());
  EXPECT_NE(text.find("@RG\tID:grp1\tSM:sample1"), std::string::npos) << text;
  EXPECT_NE(text.find("@PG\tID:omicsd"), std::string::npos) << text;
  EXPECT_NE(text.find("\tM5:"), std::string::npos) << text;

  std::string out;
  if (test::run_command("samtools --version", &out) == 0) {
    EXPECT_EQ(test::run_command("samtools quickcheck -v " + path.string(), &out), 0) << out;
    ASSERT_EQ(test::run_command("samtools view -c -T " + fx.fasta.string() + " " + path.string(), &out), 0)
        << out;
    EXPECT_EQ(std::stoul(out), recs.size());
    ASSERT_EQ(
        test::run_command("samtools view -c -T " + fx.fasta.string() + " " + path.string() + " chr2", &out),
        0)
        << out;
    EXPECT_EQ(std::stoul(out), size_t(std::count_if(want.begin(), want.end(),
                                                    [](const bam1_t* r) { return r->core.tid == 1; })));
  }
}

TEST(SortedBamWriter, CramNeedsReference) {
  Fixture fx;
  BamOutputOptions opt;
  opt.path = (fx.dir.path / "out.cram").string();
  opt.cram = true;
  EXPECT_THROW(SortedBamWriter(opt, fx.hdr.get()), Error);
  EXPECT_EQ(files_in(fx.dir.path), (std::set<std::string>{"ref.fa"}));
}

TEST(SortedBamWriter, DestructionWithoutFinishRemovesEverything) {
  Fixture fx;
  const auto recs = random_records(fx, 20000, 6);
  {
    BamOutputOptions opt;
    opt.path = (fx.dir.path / "out.bam").string();
    opt.sort_memory_bytes = 128 << 10;
    SortedBamWriter w(opt, fx.hdr.get());
    for (const auto& b : recs) w.add(b.get());
    EXPECT_GE(count_spill_files(fx.dir.path), 3u);
  }
  EXPECT_EQ(files_in(fx.dir.path), (std::set<std::string>{"ref.fa"}));
  {
    BamOutputOptions opt;
    opt.path = (fx.dir.path / "out.bam").string();
    SortedBamWriter w(opt, fx.hdr.get());
  }
  EXPECT_EQ(files_in(fx.dir.path), (std::set<std::string>{"ref.fa"}));
}

void expect_error_naming(const std::string& path, const sam_hdr_t* hdr, const bam1_t* rec) {
  BamOutputOptions opt;
  opt.path = path;
  try {
    SortedBamWriter w(opt, hdr);
    w.add(rec);
    w.finish();
    FAIL() << "no error writing " << path;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(SortedBamWriter, UnwritableDestinationThrowsNamingThePath) {
  Fixture fx;
  const auto recs = random_records(fx, 10, 7);
  expect_error_naming((fx.dir.path / "missing" / "out.bam").string(), fx.hdr.get(), recs[0].get());
  // A directory component that is a regular file.
  expect_error_naming((fx.dir.path / "ref.fa" / "out.bam").string(), fx.hdr.get(), recs[0].get());
  // A read-only directory (permissions do not stop root).
  if (geteuid() != 0) {
    const fs::path ro = fx.dir.path / "ro";
    fs::create_directory(ro);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
    expect_error_naming((ro / "out.bam").string(), fx.hdr.get(), recs[0].get());
    fs::permissions(ro, fs::perms::owner_all);
  }
  // An unwritable spill directory fails at the first spill and names the spill file.
  BamOutputOptions opt;
  opt.path = (fx.dir.path / "out.bam").string();
  opt.tmp_dir = (fx.dir.path / "no-such-tmp").string();
  opt.sort_memory_bytes = 1;
  try {
    SortedBamWriter w(opt, fx.hdr.get());
    w.add(recs[0].get());
    FAIL() << "spill into a missing directory succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(opt.tmp_dir), std::string::npos) << e.what();
  }
  EXPECT_EQ(files_in(fx.dir.path), (std::set<std::string>{"ref.fa"}));
}

}  // namespace
}  // namespace omicsd
