// htsget byte ranges (service/stores/htsget_slices.hpp) on real files written by other tools (bwa +
// samtools BAM, bgzip'd GIAB VCF: headers that share a BGZF block with the first records): the
// pieces, reassembled with the EOF block, decode to a file whose records overlapping each region are
// exactly those htslib's own index query gives on the original.
#include <gtest/gtest.h>
#include <htslib/hts.h>
#include <htslib/kstring.h>
#include <htslib/sam.h>
#include <htslib/tbx.h>
#include <htslib/vcf.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "service/stores/htsget_slices.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {
namespace fs = std::filesystem;

fs::path tiny() { return test::shared_data_dir() / "na12878-chr22-tiny"; }

std::string read_bytes(const fs::path& p, uint64_t begin, uint64_t end) {
  std::ifstream in(p, std::ios::binary);
  in.seekg(std::streamoff(begin));
  std::string s(end - begin, '\0');
  in.read(s.data(), std::streamsize(s.size()));
  return s;
}

fs::path reassemble(const fs::path& file, const HtsgetSlices& slices, bool header_only,
                    const std::string& name) {
  std::string bytes;
  auto add = [&](const HtsgetPiece& p) {
    bytes += p.inline_bgzf.empty() ? read_bytes(file, p.range.begin, p.range.end) : p.inline_bgzf;
  };
  for (const auto& p : slices.header) add(p);
  if (!header_only)
    for (const auto& p : slices.data) add(p);
  bytes += bgzf_eof_block();
  const fs::path out =
      fs::temp_directory_path() / ("omicsd-htsget-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(out, std::ios::binary) << bytes;
  return out;
}

// SAM lines of the records overlapping [beg, end) of `contig`: every record read sequentially
// (index == false) or the index query's (index == true).
std::vector<std::string> bam_lines(const fs::path& p, const std::string& contig, int64_t beg, int64_t end,
                                   bool index, std::string* header_text = nullptr) {
  htsFile* fp = hts_open(p.c_str(), "r");
  EXPECT_NE(fp, nullptr) << p;
  sam_hdr_t* h = sam_hdr_read(fp);
  EXPECT_NE(h, nullptr) << p;
  if (header_text) *header_text = sam_hdr_str(h);
  bam1_t* b = bam_init1();
  kstring_t ks = KS_INITIALIZE;
  std::vector<std::string> out;
  const int tid = sam_hdr_name2tid(h, contig.c_str());
  auto keep = [&] {
    if (b->core.tid != tid || b->core.pos >= end || bam_endpos(b) <= beg) return;
    if (sam_format1(h, b, &ks) >= 0) out.emplace_back(ks.s, ks.l);
  };
  if (index) {
    hts_idx_t* idx = sam_index_load(fp, p.c_str());
    hts_itr_t* itr = sam_itr_queryi(idx, tid, beg, end);
    while (sam_itr_next(fp, itr, b) >= 0) keep();
    hts_itr_destroy(itr);
    hts_idx_destroy(idx);
  } else {
    int r;
    while ((r = sam_read1(fp, h, b)) >= 0) keep();
    EXPECT_EQ(r, -1) << p << ": truncated or corrupt";
  }
  ks_free(&ks);
  bam_destroy1(b);
  sam_hdr_destroy(h);
  hts_close(fp);
  return out;
}

std::vector<std::string> vcf_lines(const fs::path& p, const std::string& contig, int64_t beg, int64_t end,
                                   bool index, std::string* header_text = nullptr) {
  htsFile* fp = hts_open(p.c_str(), "r");
  EXPECT_NE(fp, nullptr) << p;
  bcf_hdr_t* h = bcf_hdr_read(fp);
  EXPECT_NE(h, nullptr) << p;
  kstring_t ks = KS_INITIALIZE;
  if (header_text) {
    bcf_hdr_format(h, 0, &ks);
    *header_text = std::string(ks.s, ks.l);
    ks.l = 0;
  }
  bcf1_t* rec = bcf_init();
  std::vector<std::string> out;
  const int rid = bcf_hdr_name2id(h, contig.c_str());
  auto keep = [&] {
    if (rec->rid != rid || rec->pos >= end || rec->pos + rec->rlen <= beg) return;
    ks.l = 0;
    if (vcf_format(h, rec, &ks) >= 0) out.emplace_back(ks.s, ks.l);
  };
  if (index) {
    tbx_t* tbx = tbx_index_load(p.c_str());
    hts_itr_t* itr = tbx_itr_queryi(tbx, tbx_name2id(tbx, contig.c_str()), beg, end);
    kstring_t line = KS_INITIALIZE;
    while (tbx_itr_next(fp, tbx, itr, &line) >= 0) {
      vcf_parse1(&line, h, rec);
      keep();
    }
    ks_free(&line);
    hts_itr_destroy(itr);
    tbx_destroy(tbx);
  } else {
    int r;
    while ((r = bcf_read(fp, h, rec)) >= 0) keep();
    EXPECT_EQ(r, -1) << p << ": truncated or corrupt";
  }
  ks_free(&ks);
  bcf_destroy(rec);
  bcf_hdr_destroy(h);
  hts_close(fp);
  return out;
}

TEST(HtsgetSlices, MergeByteRanges) {
  EXPECT_TRUE(merge_byte_ranges({}).empty());
  const auto m = merge_byte_ranges({{50, 60}, {0, 10}, {10, 20}, {55, 70}, {30, 30}, {80, 90}});
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].begin, 0u);
  EXPECT_EQ(m[0].end, 20u);
  EXPECT_EQ(m[1].begin, 50u);
  EXPECT_EQ(m[1].end, 70u);
  EXPECT_EQ(m[2].begin, 80u);
}

// Random regions of a real BAM: the reassembled file, read from start to end, holds exactly the
// index query's records for the region (plus others outside it), and its header is the original's.
TEST(HtsgetSlices, BamRegionsReassembleToTheIndexQuery) {
  const fs::path bam = tiny() / "NA12878.chr22.tiny.bam";
  if (!fs::exists(bam)) GTEST_SKIP() << bam << " missing";
  std::string want_header;
  bam_lines(bam, "q", 0, 1, false, &want_header);
  std::mt19937 rng(18);
  for (int i = 0; i < 21; ++i) {  // 20 random regions, then the whole contig (its last records)
    int64_t beg = std::uniform_int_distribution<int64_t>(0, 12000)(rng);
    int64_t end = beg + std::uniform_int_distribution<int64_t>(1, 3000)(rng);
    if (i == 20) beg = 0, end = 12356;
    const HtsgetSlices s = plan_htsget_slices(bam, fs::path(bam.string() + ".bai"), HtsgetFileKind::bam,
                                              {HtsgetRegion{"q", beg, end}});
    const fs::path got = reassemble(bam, s, false, "r.bam");
    std::string got_header;
    EXPECT_EQ(bam_lines(got, "q", beg, end, false, &got_header), bam_lines(bam, "q", beg, end, true))
        << "q:" << beg << "-" << end;
    EXPECT_EQ(got_header, want_header);
    fs::remove(got);
  }
  const HtsgetSlices header =
      plan_htsget_slices(bam, fs::path(bam.string() + ".bai"), HtsgetFileKind::bam, {});
  const fs::path got = reassemble(bam, header, true, "h.bam");
  std::string got_header;
  EXPECT_TRUE(bam_lines(got, "q", 0, 1 << 30, false, &got_header).empty());
  EXPECT_EQ(got_header, want_header);
  fs::remove(got);
}

// The bgzip'd GIAB VCF: its header ends inside a BGZF block shared with records, split in two
// recompressed blocks.
TEST(HtsgetSlices, VcfRegionsReassembleToTheIndexQuery) {
  const fs::path vcf = tiny() / "truth.vcf.gz";
  if (!fs::exists(vcf)) GTEST_SKIP() << vcf << " missing";
  const fs::path tbi(vcf.string() + ".tbi");
  std::string want_header;
  vcf_lines(vcf, "q", 0, 1, false, &want_header);
  std::mt19937 rng(18);
  int nonempty = 0;
  for (int i = 0; i < 20; ++i) {
    const int64_t beg = std::uniform_int_distribution<int64_t>(0, 12000)(rng);
    const int64_t end = beg + std::uniform_int_distribution<int64_t>(1, 4000)(rng);
    const HtsgetSlices s =
        plan_htsget_slices(vcf, tbi, HtsgetFileKind::vcf_gz, {HtsgetRegion{"q", beg, end}});
    const fs::path got = reassemble(vcf, s, false, "r.vcf.gz");
    std::string got_header;
    const auto want = vcf_lines(vcf, "q", beg, end, true);
    nonempty += !want.empty();
    EXPECT_EQ(vcf_lines(got, "q", beg, end, false, &got_header), want) << "q:" << beg << "-" << end;
    EXPECT_EQ(got_header, want_header);
    fs::remove(got);
  }
  EXPECT_GT(nonempty, 0);
  const HtsgetSlices all = plan_htsget_slices(vcf, tbi, HtsgetFileKind::vcf_gz, {});
  const fs::path got = reassemble(vcf, all, true, "h.vcf.gz");
  std::string got_header;
  EXPECT_TRUE(vcf_lines(got, "q", 0, 1 << 30, false, &got_header).empty());
  EXPECT_EQ(got_header, want_header);
  fs::remove(got);
}

// On a 100-kb window of real reads (several 16-kb BAI bins), a small region is answered with a small
// part of the file, and still with every record the index query gives.
TEST(HtsgetSlices, SmallRegionsSendAPartOfTheFile) {
  const fs::path bam = test::shared_data_dir() / "hg001-chr20-100kb" / "NA12878_S1.chr20.10_10p1mb.bam";
  if (!fs::exists(bam)) GTEST_SKIP() << bam << " missing";
  const uint64_t size = fs::file_size(bam);
  for (int64_t beg : {10'000'000, 10'030'000, 10'060'000, 10'099'000}) {
    const HtsgetSlices s = plan_htsget_slices(bam, fs::path(bam.string() + ".bai"), HtsgetFileKind::bam,
                                              {HtsgetRegion{"chr20", beg, beg + 1000}});
    uint64_t sent = 0;
    for (const auto& p : s.data) sent += p.range.end - p.range.begin + p.inline_bgzf.size();
    EXPECT_GT(sent, 0u);
    EXPECT_LT(sent, size / 4) << "chr20:" << beg;
    const fs::path got = reassemble(bam, s, false, "part.bam");
    EXPECT_EQ(bam_lines(got, "chr20", beg, beg + 1000, false),
              bam_lines(bam, "chr20", beg, beg + 1000, true));
    fs::remove(got);
  }
}

TEST(HtsgetSlices, RegionErrorsNameTheSpecError) {
  const fs::path bam = tiny() / "NA12878.chr22.tiny.bam";
  if (!fs::exists(bam)) GTEST_SKIP() << bam << " missing";
  const fs::path bai(bam.string() + ".bai");
  auto error_of = [&](HtsgetRegion r) {
    try {
      plan_htsget_slices(bam, bai, HtsgetFileKind::bam, {r});
    } catch (const HtsgetError& e) {
      return e.name();
    }
    return std::string("none");
  };
  EXPECT_EQ(error_of({"nope", std::nullopt, std::nullopt}), "NotFound");
  EXPECT_EQ(error_of({"q", 12356, 12400}), "InvalidRange");  // q is 12,356 bp long
  EXPECT_EQ(error_of({"q", 500, 100}), "InvalidRange");
  EXPECT_EQ(error_of({"q", 12355, 12356}), "none");  // the last base
  EXPECT_EQ(HtsgetError("InvalidRange", "").status(), 400);
  EXPECT_EQ(HtsgetError("NotFound", "").status(), 404);
}

}  // namespace
}  // namespace omicsd
