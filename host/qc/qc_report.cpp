#include "host/qc/qc_report.hpp"

#include <fcntl.h>
#include <htslib/sam.h>
#include <htslib/vcf.h>
#include <htslib/vcfutils.h>
#include <libdeflate.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <vector>

#include "host/common/durable_file.hpp"
#include "host/common/error.hpp"
#include "host/io/hts_handles.hpp"

namespace omicsd {
namespace {

constexpr uint32_t kRing = 1u << 17;  // positions held while reads still cover them
constexpr size_t kMaxDepthBin = 10000;

// Streaming depth: reads arrive sorted by start, so every position before the current read's start
// is final and moves into the histograms. Two tracks share the pass: the QC depth (track 0, reference
// bases that are not N) and `samtools stats`' coverage distribution (track 1, every position a read
// covers).
class DepthCounter {
 public:
  explicit DepthCounter(const Reference& ref)
      : ref_(ref),
        ring_(kRing, {0, 0}),
        hist_(kMaxDepthBin + 1, 0),
        coverage_(kMaxDepthBin + 1, 0),
        per_contig_(ref.contigs().size()),
        visited_(ref.contigs().size(), false) {}
  void start_contig(int contig) {
    finish_contig();
    contig_ = contig;
    flushed_ = 0;
    visited_[size_t(contig)] = true;
  }
  // The read's M/=/X bases into track 0 (`depth`) and/or track 1 (`coverage`).
  void add_read(const bam1_t* b, bool depth, bool coverage) {
    flush_to(b->core.pos);
    int64_t rp = b->core.pos;
    const uint32_t* cig = bam_get_cigar(b);
    for (uint32_t k = 0; k < b->core.n_cigar; ++k) {
      const int op = bam_cigar_op(cig[k]);
      const int64_t len = bam_cigar_oplen(cig[k]);
      if (op == BAM_CMATCH || op == BAM_CEQUAL || op == BAM_CDIFF) {
        for (int64_t i = 0; i < len; ++i, ++rp)
          if (rp - flushed_ < int64_t(kRing)) {
            auto& d = ring_[size_t(rp) & (kRing - 1)];
            d[0] += depth;
            d[1] += coverage;
          }
      } else if (bam_cigar_type(op) & 2) {
        rp += len;
      }
    }
  }
  void finish_contig() {
    if (contig_ >= 0) flush_to(ref_.contigs()[size_t(contig_)].length);
    contig_ = -1;
  }
  // Contigs no read reached are at depth 0 throughout.
  void finish() {
    finish_contig();
    for (size_t c = 0; c < visited_.size(); ++c)
      if (!visited_[c]) start_contig(int(c));
    finish_contig();
  }
  const std::vector<uint64_t>& histogram() const { return hist_; }
  // Track 1: positions by depth (the last bin: at least that deep); [0] is not counted.
  const std::vector<uint64_t>& coverage() const { return coverage_; }
  // (bases not N, summed depth) of each reference contig.
  const std::vector<std::pair<uint64_t, uint64_t>>& per_contig() const { return per_contig_; }

 private:
  void flush_to(int64_t pos) {
    const uint8_t* rc = ref_.codes() + ref_.contigs()[size_t(contig_)].offset;
    const int64_t len = ref_.contigs()[size_t(contig_)].length;
    for (; flushed_ < pos && flushed_ < len; ++flushed_) {
      auto& d = ring_[size_t(flushed_) & (kRing - 1)];
      if (rc[flushed_] < 4) {
        ++hist_[std::min<size_t>(d[0], kMaxDepthBin)];
        ++per_contig_[size_t(contig_)].first;
        per_contig_[size_t(contig_)].second += d[0];
      }
      if (d[1]) ++coverage_[std::min<size_t>(d[1], kMaxDepthBin)];
      d = {0, 0};
    }
  }
  const Reference& ref_;
  std::vector<std::array<uint32_t, 2>> ring_;
  std::vector<uint64_t> hist_, coverage_;
  std::vector<std::pair<uint64_t, uint64_t>> per_contig_;
  std::vector<bool> visited_;
  int contig_ = -1;
  int64_t flushed_ = 0;
};

// One record into `samtools flagstat`'s counts (bam_stat.c's rules).
void add_flagstat(FlagStat& f, const bam1_core_t& c) {
  const size_t w = (c.flag & BAM_FQCFAIL) ? 1 : 0;
  const bool unmapped = c.flag & BAM_FUNMAP;
  ++f.total[w];
  if (c.flag & BAM_FSECONDARY) {
    ++f.secondary[w];
  } else if (c.flag & BAM_FSUPPLEMENTARY) {
    ++f.supplementary[w];
  } else {
    ++f.primary[w];
    if (c.flag & BAM_FPAIRED) {
      ++f.paired[w];
      if ((c.flag & BAM_FPROPER_PAIR) && !unmapped) ++f.properly_paired[w];
      if (c.flag & BAM_FREAD1) ++f.read1[w];
      if (c.flag & BAM_FREAD2) ++f.read2[w];
      if ((c.flag & BAM_FMUNMAP) && !unmapped) ++f.singletons[w];
      if (!unmapped && !(c.flag & BAM_FMUNMAP)) {
        ++f.both_mapped[w];
        if (c.mtid != c.tid) {
          ++f.mate_other_contig[w];
          if (c.qual >= 5) ++f.mate_other_contig_mapq5[w];
        }
      }
    }
    if (!unmapped) ++f.primary_mapped[w];
    if (c.flag & BAM_FDUP) ++f.primary_duplicates[w];
  }
  if (!unmapped) ++f.mapped[w];
  if (c.flag & BAM_FDUP) ++f.duplicates[w];
}

// `samtools stats`' indel counts of one mapped record (stats.c count_indels): lengths, and the read
// cycle of each insertion's first base and of the base before each deletion.
void add_samtools_indels(SamtoolsStats& s, const bam1_t* b, int order) {
  const bool fwd = !(b->core.flag & BAM_FREVERSE);
  const int read_len = b->core.l_qseq;
  const uint32_t* cig = bam_get_cigar(b);
  int cycle = 0;
  for (uint32_t k = 0; k < b->core.n_cigar; ++k) {
    const int op = bam_cigar_op(cig[k]);
    const int len = int(bam_cigar_oplen(cig[k]));
    if (len == 0) continue;
    if (op == BAM_CINS || op == BAM_CDEL) {
      const int idx =
          op == BAM_CINS ? (fwd ? cycle : read_len - cycle - len) : (fwd ? cycle - 1 : read_len - cycle - 1);
      if (op == BAM_CINS) cycle += len;
      if (idx < 0) continue;
      if (order == 1 || order == 2) ++s.indel_cycles[idx][(op == BAM_CINS ? 0 : 2) + (order == 2 ? 1 : 0)];
      if (len <= SamtoolsStats::kMaxIndel) ++(op == BAM_CINS ? s.insertions : s.deletions)[size_t(len - 1)];
    } else if (op != BAM_CREF_SKIP && op != BAM_CHARD_CLIP && op != BAM_CPAD) {
      cycle += len;
    }
  }
}

// 4-bit base codes to A, C, G, T, N (0..4) and other (5: = and the ambiguity codes).
constexpr uint8_t kBaseClass[16] = {5, 0, 1, 5, 2, 5, 5, 5, 3, 5, 5, 5, 5, 5, 5, 4};

// One record into `samtools stats`' counts (stats.c collect_stats and collect_orig_read_stats with no
// options). Returns whether its aligned bases go into the coverage distribution (mapped, not
// secondary, with a sequence, while the file is still sorted).
bool add_samtools_stats(SamtoolsStats& s, const bam1_t* b) {
  const bam1_core_t& c = b->core;
  const char* name = bam_get_qname(b);
  s.chk_names += libdeflate_crc32(0, name, std::strlen(name));
  const int seq_len = c.l_qseq;
  if (seq_len > 0) {
    s.chk_seqs += libdeflate_crc32(0, bam_get_seq(b), size_t(seq_len + 1) / 2);
    s.chk_quals += libdeflate_crc32(0, bam_get_qual(b), size_t(seq_len + 1) / 2);  // sic: as stats.c
  }
  if (c.flag & BAM_FSECONDARY) {
    ++s.secondary;
    return false;
  }
  if (c.flag & BAM_FSUPPLEMENTARY) ++s.supplementary;
  if (seq_len == 0) return false;
  if (c.flag & BAM_FDUP) {
    s.total_len_dup += uint64_t(seq_len);
    ++s.duplicated;
  }
  const bool paired = c.flag & BAM_FPAIRED;
  // 1: first fragment (or unpaired), 2: last, 0 or 3: neither or both flags.
  const int order = paired ? ((c.flag & BAM_FREAD1) ? 1 : 0) + ((c.flag & BAM_FREAD2) ? 2 : 0) : 1;
  const uint32_t* cig = bam_get_cigar(b);
  int read_len = seq_len;  // unclipped
  for (uint32_t k = 0; k < c.n_cigar; ++k)
    if (bam_cigar_op(cig[k]) == BAM_CHARD_CLIP) read_len += int(bam_cigar_oplen(cig[k]));
  s.max_len = std::max(s.max_len, read_len);
  if (order == 1) s.max_len_1st = std::max(s.max_len_1st, read_len);
  if (order == 2) s.max_len_2nd = std::max(s.max_len_2nd, read_len);
  const bool unmapped = c.flag & BAM_FUNMAP;
  const bool mate_mapped = paired && !(c.flag & BAM_FMUNMAP);
  const bool original = !(c.flag & BAM_FSUPPLEMENTARY);
  int gc = 0;  // G and C bases of a first or last fragment's primary record
  if (original) {
    for (int k : {0, order == 1 ? 1 : order == 2 ? 2 : -1}) {
      if (k < 0) continue;
      auto& lengths = s.read_lengths[k];
      if (lengths.size() <= size_t(read_len)) lengths.resize(size_t(read_len) + 1, 0);
      ++lengths[size_t(read_len)];
    }
    s.total_len += uint64_t(seq_len);
    if (c.flag & BAM_FQCFAIL) ++s.qc_failed;
    if (paired) ++s.paired;
    if (order == 1 || order == 2) {
      const size_t m = size_t(order - 1);
      ++(m ? s.reads_2nd : s.reads_1st);
      (m ? s.total_len_2nd : s.total_len_1st) += uint64_t(seq_len);
      const uint8_t* seq = bam_get_seq(b);
      const bool reverse = c.flag & BAM_FREVERSE;
      auto& bases = s.cycle_bases[m];
      auto& oriented = s.cycle_bases_read_oriented;
      if (bases.size() < size_t(seq_len)) bases.resize(size_t(seq_len), {});
      if (oriented.size() < size_t(seq_len)) oriented.resize(size_t(seq_len), {});
      for (int i = 0; i < seq_len; ++i) {
        const size_t cycle = size_t(reverse ? seq_len - i - 1 : i);
        const uint8_t k = kBaseClass[bam_seqi(seq, i)];
        ++bases[cycle][size_t(k)];
        if (k < 4) ++oriented[cycle][size_t(reverse ? 3 - k : k)];
        gc += k == 1 || k == 2;
      }
      const int gc_min = gc * (SamtoolsStats::kGcBins - 1) / seq_len;
      const int gc_max =
          std::min((gc + 1) * (SamtoolsStats::kGcBins - 1) / seq_len, SamtoolsStats::kGcBins - 1);
      for (int i = gc_min; i < gc_max; ++i) ++s.gc[m][size_t(i)];
      // Base qualities by cycle (clipping ignored); a missing quality string counts as 255s.
      auto& hist = s.cycle_quals[m];
      if (hist.size() < size_t(seq_len) * SamtoolsStats::kQualRow)
        hist.resize(size_t(seq_len) * SamtoolsStats::kQualRow, 0);
      const uint8_t* qual = bam_get_qual(b);
      uint64_t sum = 0;  // integers: the same total as stats.c's per-base double sum
      int max_qual = s.max_qual;
      for (int i = 0; i < seq_len; ++i) {
        const uint8_t q = qual[reverse ? seq_len - i - 1 : i];
        max_qual = std::max<int>(max_qual, q);
        ++hist[size_t(i) * SamtoolsStats::kQualRow + q];
        sum += q;
      }
      s.max_qual = max_qual;
      s.sum_qual += double(sum);
    } else {
      ++s.reads_other;
    }
    if (unmapped) {
      ++s.unmapped;
    } else {
      s.bases_mapped += uint64_t(seq_len);
      if (c.qual == 0) ++s.mq0;
      if (!mate_mapped) {
        ++s.single_mapped;
      } else {
        ++s.paired_and_mapped;
        if (c.flag & BAM_FPROPER_PAIR) ++s.properly_paired;
        if (c.tid != c.mtid) ++s.other_chromosome;
      }
    }
  }
  if (unmapped) return false;
  add_samtools_indels(s, b, order);
  if (mate_mapped && original) {
    // Both mates count; a pair on two contigs only with a TLEN (which such pairs do not have).
    int32_t isize = int32_t(c.isize);
    if (isize < 0) isize = -isize;
    isize = std::min(isize, int32_t(SamtoolsStats::kMaxInsert));
    if (isize > 0 || c.tid == c.mtid) {
      const int64_t mate_ahead = c.mpos - c.pos;
      const int fst = (c.flag & BAM_FREAD1) ? 1 : -1, fwd = (c.flag & BAM_FREVERSE) ? -1 : 1,
                mfwd = (c.flag & BAM_FMREVERSE) ? -1 : 1;
      size_t kind = 2;  // other orientation: both mates on one strand
      if (fwd * mfwd < 0) kind = ((fst * mate_ahead >= 0) == (fst * fwd > 0)) ? 0 : 1;  // inward : outward
      ++s.insert_sizes[size_t(isize)][kind];
    }
  }
  if (const uint8_t* nm = bam_aux_get(b, "NM")) s.mismatches += uint64_t(bam_aux2i(nm));
  for (uint32_t k = 0; k < c.n_cigar; ++k) {
    const int op = bam_cigar_op(cig[k]);
    if (op == BAM_CMATCH || op == BAM_CINS || op == BAM_CEQUAL || op == BAM_CDIFF)
      s.bases_mapped_cigar += bam_cigar_oplen(cig[k]);
  }
  // Unsorted once a record starts before the previous one on the same contig; coverage stops there.
  if (s.prev_tid == c.tid && c.pos < s.prev_pos) s.is_sorted = false;
  s.prev_pos = c.pos;
  if (!s.is_sorted) return false;
  if (s.gc_depth_pos < 0 || s.prev_tid != c.tid || c.pos - s.gc_depth_pos > SamtoolsStats::kGcDepthBin) {
    s.gc_depth_pos = c.pos;
    s.gc_depth.emplace_back();
  }
  ++s.gc_depth.back().depth;
  s.gc_depth.back().gc += float(gc) / float(seq_len);
  s.prev_tid = c.tid;
  return true;
}

// One record into the `bcftools stats` summary: the record's types from htslib, as bcftools
// classifies them (a record can be both SNP and indel), substitutions and ts/tv over every SNP
// allele, indel lengths per allele (capped at 60 either way, like bcftools' table).
void add_vcf_stats(VcfStats& v, bcf1_t* rec) {
  constexpr int64_t kMaxIndelLength = 60;
  ++v.records;
  const int types = bcf_get_variant_types(rec);
  if (types == VCF_REF) ++v.no_alts;
  if (types & VCF_SNP) {
    ++v.snps;
    const int ref = bcf_acgt2int(*rec->d.allele[0]);
    for (int i = 1; ref >= 0 && i < rec->n_allele; ++i) {
      if (!(bcf_get_variant_type(rec, i) & VCF_SNP)) continue;
      const int alt = bcf_acgt2int(*rec->d.allele[i]);
      if (alt < 0 || alt == ref) continue;
      ++v.substitutions[size_t(ref << 2 | alt)];
      const bool ts = std::abs(ref - alt) == 2;  // A<->G, C<->T
      ++(ts ? v.ts : v.tv);
      if (i == 1) ++(ts ? v.ts_alt1 : v.tv_alt1);
    }
  }
  if (types & VCF_INDEL) {
    ++v.indels;
    for (int i = 1; i < rec->n_allele; ++i) {
      if (!(bcf_get_variant_type(rec, i) & VCF_INDEL)) continue;
      const int64_t len = rec->d.var[i].n;
      if (len != 0) ++v.indel_sites[std::clamp(len, -kMaxIndelLength, kMaxIndelLength)];
    }
  }
  if (types & VCF_MNP) ++v.mnps;
  if (types & VCF_OTHER) ++v.others;
  if (rec->n_allele > 2) {
    ++v.multiallelic;
    if (types == VCF_SNP) ++v.multiallelic_snps;
  }
}

void add_vcf(QcReport& q, const std::string& path) {
  const HtsFilePtr file(bcf_open(path.c_str(), "r"));
  if (!file) throw InputError(path + ": cannot open VCF: " + std::strerror(errno));
  const BcfHeaderPtr header(bcf_hdr_read(file.get()));
  if (!header) throw InputError(path + ": cannot read the VCF header");
  const BcfRecordPtr record(bcf_init());
  htsFile* fp = file.get();
  bcf_hdr_t* hdr = header.get();
  bcf1_t* rec = record.get();
  q.vcf_stats.samples = uint64_t(bcf_hdr_nsamples(hdr));
  q.gq_histogram.assign(100, 0);
  int32_t* gt = nullptr;
  int32_t* gq = nullptr;
  int ngt = 0, ngq = 0;
  int r;
  while ((r = bcf_read(fp, hdr, rec)) == 0) {
    bcf_unpack(rec, BCF_UN_ALL);
    add_vcf_stats(q.vcf_stats, rec);
    if (!bcf_has_filter(hdr, rec, const_cast<char*>("PASS"))) continue;
    // Any ploidy (the first sample): a haploid alt call counts as homozygous.
    const int ploidy = bcf_get_genotypes(hdr, rec, &gt, &ngt) / std::max(1, bcf_hdr_nsamples(hdr));
    if (ploidy < 1) continue;
    int alt = 0, lowest = std::numeric_limits<int>::max();
    bool missing = false;
    for (int i = 0; i < ploidy && gt[i] != bcf_int32_vector_end; ++i) {
      missing = missing || bcf_gt_is_missing(gt[i]);
      alt = std::max(alt, bcf_gt_allele(gt[i]));
      lowest = std::min(lowest, bcf_gt_allele(gt[i]));
    }
    if (missing || alt == 0) continue;
    const bool homozygous = lowest == alt;
    if (alt >= rec->n_allele) continue;
    const char* ref = rec->d.allele[0];
    const char* al = rec->d.allele[alt];
    if (al[0] == '<' || al[0] == '*') continue;
    (homozygous ? q.hom_alt : q.het) += 1;
    if (bcf_get_format_int32(hdr, rec, "GQ", &gq, &ngq) >= 1 && gq[0] != bcf_int32_missing &&
        gq[0] != bcf_int32_vector_end)
      ++q.gq_histogram[size_t(std::clamp(gq[0], 0, 99))];
    const int64_t ref_len = int64_t(std::strlen(ref)), alt_len = int64_t(std::strlen(al));
    if (ref_len == 1 && alt_len == 1) {
      ++q.snvs;
      const std::string pair = std::string(1, ref[0]) + al[0];
      const bool ti = pair == "AG" || pair == "GA" || pair == "CT" || pair == "TC";
      (ti ? q.transitions : q.transversions) += 1;
    } else if (ref_len != alt_len) {
      ++q.indels;
      ++q.indel_lengths[alt_len - ref_len];
    }
  }
  free(gt);
  free(gq);
  if (r < -1) throw InputError(path + ": truncated or corrupt VCF");
  q.have_vcf = true;
}

}  // namespace

QcReport compute_qc(const std::string& bam_path, const Reference& ref, const std::string& vcf_path) {
  QcReport q;
  const HtsFilePtr file(sam_open(bam_path.c_str(), "r"));
  if (!file) throw InputError(bam_path + ": cannot open: " + std::strerror(errno));
  htsFile* fp = file.get();
  hts_set_fai_filename(fp, ref.path().c_str());
  const SamHeaderPtr header(sam_hdr_read(fp));
  if (!header) throw InputError(bam_path + ": cannot read the header");
  const BamRecordPtr record(bam_init1());
  sam_hdr_t* hdr = header.get();
  bam1_t* b = record.get();
  DepthCounter depth(ref);
  std::vector<int> contig_of_tid(size_t(sam_hdr_nref(hdr)), -1);
  for (int t = 0; t < sam_hdr_nref(hdr); ++t)
    contig_of_tid[size_t(t)] = ref.find_contig(sam_hdr_tid2name(hdr, t));
  std::vector<int64_t> inserts;
  int cur_tid = -1, depth_tid = -1;
  int64_t last_pos = -1;
  std::set<std::tuple<int, int, int64_t>> at_pos;  // (strand, mate tid, mate pos) seen at last_pos
  uint64_t flagged_dups = 0, estimated_dups = 0;
  int r;
  while ((r = sam_read1(fp, hdr, b)) >= 0) {
    const bam1_core_t& c = b->core;
    add_flagstat(q.flagstat, c);
    const bool in_coverage = add_samtools_stats(q.samtools_stats, b);
    const bool in_depth = !(c.flag & (BAM_FSECONDARY | BAM_FSUPPLEMENTARY | BAM_FUNMAP)) && c.qual >= 1;
    if ((in_coverage || in_depth) && c.tid >= 0 && c.tid >= depth_tid && contig_of_tid[size_t(c.tid)] >= 0) {
      if (c.tid != depth_tid) depth.start_contig(contig_of_tid[size_t(c.tid)]);
      depth_tid = c.tid;
      depth.add_read(b, in_depth, in_coverage);
    }
    if (c.flag & (BAM_FSECONDARY | BAM_FSUPPLEMENTARY)) continue;
    ++q.reads;
    if (c.flag & BAM_FPAIRED) ++q.paired;
    if (c.flag & BAM_FUNMAP) continue;
    ++q.mapped;
    if ((c.flag & BAM_FPAIRED) && (c.flag & BAM_FPROPER_PAIR)) ++q.properly_paired;
    if (c.flag & BAM_FDUP) ++flagged_dups;
    if (c.tid != cur_tid) {
      if (c.tid < cur_tid) throw InputError(bam_path + ": not coordinate-sorted");
      cur_tid = c.tid;
      last_pos = -1;
    }
    if (c.pos != last_pos) {
      at_pos.clear();
      last_pos = c.pos;
    }
    const auto sig = std::make_tuple(int(bool(c.flag & BAM_FREVERSE)) | int((c.flag & BAM_FREAD2) ? 2 : 0),
                                     int(c.mtid), int64_t(c.mpos));
    if (!at_pos.insert(sig).second) ++estimated_dups;
    if ((c.flag & BAM_FPROPER_PAIR) && (c.flag & BAM_FREAD1) && c.isize != 0) {
      inserts.push_back(std::llabs(c.isize));
      ++q.insert_sizes[std::llabs(c.isize)];
    }
  }
  depth.finish();
  const auto& cov = depth.coverage();
  q.samtools_stats.coverage.assign(SamtoolsStats::kMaxCoverage + 2, 0);
  for (size_t d = 1; d < cov.size(); ++d)
    q.samtools_stats.coverage[std::min<size_t>(d, SamtoolsStats::kMaxCoverage + 1)] += cov[d];
  // Mean base quality by cycle from samtools stats' histograms (first / last fragments: primary records
  // with READ1 or unpaired / READ2); 255 is a missing quality string, left out.
  for (int m = 0; m < 2; ++m) {
    const auto& hist = q.samtools_stats.cycle_quals[m];
    std::vector<double>& mean = q.quality_by_cycle[m];
    for (size_t cycle = 0; cycle * SamtoolsStats::kQualRow < hist.size(); ++cycle) {
      uint64_t sum = 0, n = 0;
      for (size_t qv = 0; qv < 255; ++qv) {
        sum += qv * hist[cycle * SamtoolsStats::kQualRow + qv];
        n += hist[cycle * SamtoolsStats::kQualRow + qv];
      }
      if (n == 0) break;  // past the longest read with qualities
      mean.push_back(double(sum) / double(n));
    }
  }
  if (r < -1) throw InputError(bam_path + ": truncated or corrupt BAM");

  q.duplicates_estimated = flagged_dups == 0;
  q.duplicates = flagged_dups ? flagged_dups : estimated_dups;
  const auto& h = depth.histogram();
  const size_t last_bin =
      size_t(std::find_if(h.rbegin(), h.rend(), [](uint64_t n) { return n != 0; }).base() - h.begin());
  q.depth_histogram.assign(h.begin(), h.begin() + std::ptrdiff_t(last_bin));
  for (size_t i = 0; i < ref.contigs().size(); ++i)
    q.contig_depth.push_back(
        {ref.contigs()[i].name, depth.per_contig()[i].first, depth.per_contig()[i].second});
  uint64_t bases = 0, sum = 0, ge10 = 0, ge20 = 0;
  for (size_t d = 0; d < h.size(); ++d) {
    bases += h[d];
    sum += h[d] * d;
    if (d >= 10) ge10 += h[d];
    if (d >= 20) ge20 += h[d];
  }
  if (bases > 0) {
    q.mean_depth = double(sum) / double(bases);
    q.fraction_ge_10x = double(ge10) / double(bases);
    q.fraction_ge_20x = double(ge20) / double(bases);
    uint64_t acc = 0;
    for (size_t d = 0; d < h.size(); ++d) {
      acc += h[d];
      if (acc * 2 >= bases) {
        q.median_depth = double(d);
        break;
      }
    }
  }
  if (!inserts.empty()) {
    std::sort(inserts.begin(), inserts.end());
    q.insert_pairs = inserts.size();
    q.insert_median = double(inserts[inserts.size() / 2]);
    double s = 0, s2 = 0;
    for (int64_t v : inserts) {
      s += double(v);
      s2 += double(v) * double(v);
    }
    q.insert_mean = s / double(inserts.size());
    q.insert_sd = std::sqrt(std::max(0.0, s2 / double(inserts.size()) - q.insert_mean * q.insert_mean));
  }
  if (!vcf_path.empty()) add_vcf(q, vcf_path);
  return q;
}

std::string QcReport::to_json() const {
  auto pct = [](uint64_t a, uint64_t b) {
    return b ? std::round(10000.0 * double(a) / double(b)) / 100.0 : 0.0;
  };
  auto r3 = [](double v) { return std::round(v * 1000.0) / 1000.0; };
  nlohmann::ordered_json j;
  j["reads"] = reads;
  j["mapped"] = mapped;
  j["mapped_pct"] = pct(mapped, reads);
  j["paired"] = paired;
  j["properly_paired"] = properly_paired;
  j["properly_paired_pct"] = pct(properly_paired, paired);
  j["duplicates"] = duplicates;
  j["duplicate_pct"] = pct(duplicates, mapped);
  j["duplicates_estimated"] = duplicates_estimated;
  j["depth"] = {{"mean", r3(mean_depth)},
                {"median", median_depth},
                {"fraction_ge_10x", r3(fraction_ge_10x)},
                {"fraction_ge_20x", r3(fraction_ge_20x)}};
  j["insert_size"] = {
      {"pairs", insert_pairs}, {"median", insert_median}, {"mean", r3(insert_mean)}, {"sd", r3(insert_sd)}};
  if (have_vcf) {
    j["variants"] = {{"snvs", snvs},
                     {"indels", indels},
                     {"transitions", transitions},
                     {"transversions", transversions},
                     {"ti_tv", r3(ti_tv())},
                     {"het", het},
                     {"hom_alt", hom_alt},
                     {"het_hom_ratio", r3(het_hom())}};
  }
  // Distributions: [value, count] pairs where the values are sparse.
  nlohmann::ordered_json dist;
  dist["depth"] = depth_histogram;
  dist["contigs"] = nlohmann::ordered_json::array();
  for (const ContigDepth& c : contig_depth)
    dist["contigs"].push_back({{"name", c.name},
                               {"bases", c.bases},
                               {"mean_depth", r3(c.bases ? double(c.depth_sum) / double(c.bases) : 0.0)}});
  dist["insert_size"] = nlohmann::ordered_json::array();
  for (const auto& [size, n] : insert_sizes) dist["insert_size"].push_back({size, n});
  for (int m = 0; m < 2; ++m) {
    auto& cycles = dist["base_quality_by_cycle"][m == 0 ? "read1" : "read2"];
    cycles = nlohmann::ordered_json::array();
    for (double v : quality_by_cycle[m]) cycles.push_back(std::round(v * 100.0) / 100.0);
  }
  if (have_vcf) {
    dist["indel_length"] = nlohmann::ordered_json::array();
    for (const auto& [len, n] : indel_lengths) dist["indel_length"].push_back({len, n});
    dist["gq"] = gq_histogram;
  }
  j["distributions"] = std::move(dist);
  return j.dump(2) + "\n";
}

void write_qc_json(const QcReport& report, const std::string& path) {
  write_file_atomically(path, report.to_json());
}

}  // namespace omicsd
