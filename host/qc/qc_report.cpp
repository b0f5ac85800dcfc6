#include "host/qc/qc_report.hpp"

#include <fcntl.h>
#include <htslib/sam.h>
#include <htslib/vcf.h>
#include <unistd.h>

#include <algorithm>
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
// is final and moves into the histogram.
class DepthCounter {
 public:
  explicit DepthCounter(const Reference& ref) : ref_(ref), ring_(kRing, 0), hist_(kMaxDepthBin + 1, 0) {}
  void start_contig(int contig) {
    finish_contig();
    contig_ = contig;
    flushed_ = 0;
  }
  void add_read(const bam1_t* b) {
    flush_to(b->core.pos);
    int64_t rp = b->core.pos;
    const uint32_t* cig = bam_get_cigar(b);
    for (uint32_t k = 0; k < b->core.n_cigar; ++k) {
      const int op = bam_cigar_op(cig[k]);
      const int64_t len = bam_cigar_oplen(cig[k]);
      if (op == BAM_CMATCH || op == BAM_CEQUAL || op == BAM_CDIFF) {
        for (int64_t i = 0; i < len; ++i, ++rp)
          if (rp - flushed_ < int64_t(kRing)) ++ring_[size_t(rp) & (kRing - 1)];
      } else if (bam_cigar_type(op) & 2) {
        rp += len;
      }
    }
  }
  void finish_contig() {
    if (contig_ >= 0) flush_to(ref_.contigs()[size_t(contig_)].length);
    contig_ = -1;
  }
  const std::vector<uint64_t>& histogram() const { return hist_; }

 private:
  void flush_to(int64_t pos) {
    const uint8_t* rc = ref_.codes() + ref_.contigs()[size_t(contig_)].offset;
    const int64_t len = ref_.contigs()[size_t(contig_)].length;
    for (; flushed_ < pos && flushed_ < len; ++flushed_) {
      uint32_t& d = ring_[size_t(flushed_) & (kRing - 1)];
      if (rc[flushed_] < 4) ++hist_[std::min<size_t>(d, kMaxDepthBin)];
      d = 0;
    }
  }
  const Reference& ref_;
  std::vector<uint32_t> ring_;
  std::vector<uint64_t> hist_;
  int contig_ = -1;
  int64_t flushed_ = 0;
};

void add_vcf(QcReport& q, const std::string& path) {
  const HtsFilePtr file(bcf_open(path.c_str(), "r"));
  if (!file) throw InputError(path + ": cannot open VCF: " + std::strerror(errno));
  const BcfHeaderPtr header(bcf_hdr_read(file.get()));
  if (!header) throw InputError(path + ": cannot read the VCF header");
  const BcfRecordPtr record(bcf_init());
  htsFile* fp = file.get();
  bcf_hdr_t* hdr = header.get();
  bcf1_t* rec = record.get();
  int32_t* gt = nullptr;
  int ngt = 0;
  int r;
  while ((r = bcf_read(fp, hdr, rec)) == 0) {
    bcf_unpack(rec, BCF_UN_ALL);
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
    if (std::strlen(ref) == 1 && std::strlen(al) == 1) {
      ++q.snvs;
      const std::string pair = std::string(1, ref[0]) + al[0];
      const bool ti = pair == "AG" || pair == "GA" || pair == "CT" || pair == "TC";
      (ti ? q.transitions : q.transversions) += 1;
    } else if (std::strlen(ref) != std::strlen(al)) {
      ++q.indels;
    }
  }
  free(gt);
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
  int cur_tid = -1;
  int64_t last_pos = -1;
  std::set<std::tuple<int, int, int64_t>> at_pos;  // (strand, mate tid, mate pos) seen at last_pos
  uint64_t flagged_dups = 0, estimated_dups = 0;
  int r;
  while ((r = sam_read1(fp, hdr, b)) >= 0) {
    const bam1_core_t& c = b->core;
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
      const int contig = contig_of_tid[size_t(c.tid)];
      if (contig >= 0) depth.start_contig(contig);
      last_pos = -1;
    }
    if (c.pos != last_pos) {
      at_pos.clear();
      last_pos = c.pos;
    }
    const auto sig = std::make_tuple(int(bool(c.flag & BAM_FREVERSE)) | int((c.flag & BAM_FREAD2) ? 2 : 0),
                                     int(c.mtid), int64_t(c.mpos));
    if (!at_pos.insert(sig).second) ++estimated_dups;
    if (c.qual >= 1 && contig_of_tid[size_t(c.tid)] >= 0) depth.add_read(b);
    if ((c.flag & BAM_FPROPER_PAIR) && (c.flag & BAM_FREAD1) && c.isize != 0)
      inserts.push_back(std::llabs(c.isize));
  }
  depth.finish_contig();
  if (r < -1) throw InputError(bam_path + ": truncated or corrupt BAM");

  q.duplicates_estimated = flagged_dups == 0;
  q.duplicates = flagged_dups ? flagged_dups : estimated_dups;
  const auto& h = depth.histogram();
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
  return j.dump(2) + "\n";
}

void write_qc_json(const QcReport& report, const std::string& path) {
  write_file_atomically(path, report.to_json());
}

}  // namespace omicsd
