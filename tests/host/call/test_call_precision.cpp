// Genotyping with repeat-context gap penalties on real reads: NA12878 over the TA-rich tandem repeat
// at hg19 chr20:10,098,200-10,098,700 and its flanks (shared/data/hg001-chr20-100kb). Windows there
// are scored in several gap-open batches; the scalar CPU backend and the lane-vector (CUDA algorithm)
// backend must still give identical records, and the one-strand repeat calls are filtered.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "host/call/call_filters.hpp"
#include "host/call/candidates.hpp"
#include "host/call/evidence_reads.hpp"
#include "host/call/genotype_backend.hpp"
#include "host/call/genotyper.hpp"
#include "host/call/repeat_context.hpp"
#include "host/io/reference.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;

fs::path hg001() { return test::shared_data_dir() / "hg001-chr20-100kb"; }

struct Genotyped {
  std::vector<VcfRecord> records;
  GenotypeCounters counters;
};

Genotyped genotype_region(const Reference& ref, const fs::path& sorted_bam, GenotypeBackend& backend,
                          int64_t begin, int64_t end) {
  CallParams p;
  AlignmentFile bam(sorted_bam.string(), ref);
  const int contig = ref.find_contig("chr20");
  std::vector<EvidenceRead> reads;
  bam.fetch(contig, begin - 400, end + 400, p, reads);
  const std::vector<Candidate> cands = find_candidates(ref, contig, begin, end, reads, p);
  const std::vector<CallWindow> windows = make_windows(ref, cands, p);
  WindowGenotyper g(ref, backend, p, 2);
  Genotyped out;
  g.genotype(windows, reads, out.records);
  out.counters = g.counters();
  return out;
}

bool same_info(const VcfInfoValue& a, const VcfInfoValue& b) {
  return a.id == b.id && a.kind == b.kind && a.integers == b.integers &&
         std::memcmp(&a.float_value, &b.float_value, sizeof(float)) == 0 && a.string_value == b.string_value;
}

TEST(CallPrecision, RepeatGapBatchesGiveIdenticalRecordsOnEveryCpuBackend) {
  if (!fs::exists(hg001() / "truth.vcf.gz")) GTEST_SKIP() << "shared data not found at " << hg001();
  // The reads as the check script aligns them: back to FASTQ, `omicsd align` against chr20 (the shared
  // BAM's header names every hg19 contig and no sort order).
  test::TempDir tmp;
  const fs::path fa = tmp.path / "chr20.fa", bam = tmp.path / "omicsd.bam";
  const std::string reads = (hg001() / "NA12878_S1.chr20.10_10p1mb.bam").string();
  std::string log;
  ASSERT_EQ(
      test::run_command(
          "bgzip -dc " + (hg001() / "ucsc.hg19.chr20.unittest.fasta.gz").string() + " > " + fa.string() +
              " && samtools faidx " + fa.string() + " && samtools collate -u -O " + reads + " " +
              (tmp.path / "c").string() + " | samtools fastq -1 " + (tmp.path / "r1.fq").string() + " -2 " +
              (tmp.path / "r2.fq").string() + " -0 /dev/null -s /dev/null -n - && " + test::omicsd_binary() +
              " --log-level warn align -t 2 " + fa.string() + " " + (tmp.path / "r1.fq").string() + " " +
              (tmp.path / "r2.fq").string() + " -o " + bam.string(),
          &log),
      0)
      << log;
  const Reference ref = Reference::load(fa.string());
  const int64_t begin = 10097000, end = 10099300;  // 0-based; the STR and a few kb around it
  auto scalar = make_cpu_genotype_backend(1);
  auto warp = make_simt_cpu_genotype_backend(2);
  const Genotyped a = genotype_region(ref, bam, *scalar, begin, end);
  const Genotyped b = genotype_region(ref, bam, *warp, begin, end);
  // Several gap-open penalties, so several batches, in this repetitive stretch.
  EXPECT_GT(a.counters.hmm_batches, 1u);
  EXPECT_EQ(a.counters.hmm_batches, b.counters.hmm_batches);
  EXPECT_EQ(a.counters.hmm_pairs, b.counters.hmm_pairs);
  ASSERT_EQ(a.records.size(), b.records.size());
  ASSERT_GT(a.records.size(), 10u);
  for (size_t i = 0; i < a.records.size(); ++i) {
    const VcfRecord &x = a.records[i], &y = b.records[i];
    ASSERT_EQ(x.pos, y.pos);
    EXPECT_EQ(x.ref, y.ref);
    EXPECT_EQ(x.alts, y.alts);
    EXPECT_EQ(std::memcmp(&x.qual, &y.qual, sizeof(float)), 0) << x.pos << ": " << x.qual << " vs " << y.qual;
    EXPECT_EQ(x.pl, y.pl);
    EXPECT_EQ(x.ad, y.ad);
    EXPECT_EQ(x.filters, y.filters);
    ASSERT_EQ(x.info.size(), y.info.size());
    for (size_t k = 0; k < x.info.size(); ++k) EXPECT_TRUE(same_info(x.info[k], y.info[k])) << x.pos;
  }
  // The annotations agree with the reference: RU/RL describe a tract at the record, and calls inside the
  // TA-rich repeat reached by reads from one side only are filtered RepeatOneStrand.
  const uint8_t* rc = ref.codes() + ref.contigs()[size_t(ref.find_contig("chr20"))].offset;
  const int64_t len = ref.contigs()[size_t(ref.find_contig("chr20"))].length;
  size_t one_strand = 0;
  for (const VcfRecord& r : a.records) {
    const RepeatContext ctx = find_indel_repeat_context(rc, len, r.pos);
    bool has_ru = false;
    for (const VcfInfoValue& v : r.info)
      if (v.id == "RU") {
        has_ru = true;
        EXPECT_EQ(v.string_value, repeat_unit(rc, ctx)) << r.pos;
      }
    EXPECT_EQ(has_ru, ctx.period > 0) << r.pos;
    for (const std::string& f : r.filters)
      if (f == "RepeatOneStrand") {
        ++one_strand;
        EXPECT_GE(r.pos, 10098200 - kRepeatDensityFlank);
        EXPECT_LT(r.pos, 10098800 + kRepeatDensityFlank);
      }
  }
  EXPECT_GT(one_strand, 0u);
}

}  // namespace
}  // namespace omicsd
