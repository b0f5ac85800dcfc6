#include "host/call/evidence_reads.hpp"

#include <htslib/hts.h>
#include <htslib/kstring.h>
#include <htslib/sam.h>

#include <cstring>
#include <functional>
#include <string_view>

#include "host/common/dna.hpp"
#include "host/common/error.hpp"
#include "host/io/read_groups.hpp"

namespace omicsd {
namespace {

std::string header_tag(sam_hdr_t* hdr, const char* type, const char* id_key, const char* id,
                       const char* key) {
  kstring_t ks = {0, 0, nullptr};
  std::string value;
  if (sam_hdr_find_tag_id(hdr, type, id_key, id, key, &ks) == 0) value.assign(ks.s, ks.l);
  ks_free(&ks);
  return value;
}

}  // namespace

AlignmentFile::AlignmentFile(const std::string& path, const Reference& ref) : path_(path) {
  fp_.reset(sam_open(path.c_str(), "r"));
  if (!fp_) throw InputError(path + ": cannot open: " + std::strerror(errno));
  // The handles are members: a throw here releases what is open.
  auto fail = [&](const std::string& what) -> void { throw InputError(path + ": " + what); };
  const htsFormat* fmt = hts_get_format(fp_.get());
  if (fmt->category != sequence_data || (fmt->format != bam && fmt->format != cram && fmt->format != sam))
    fail("not a BAM/CRAM/SAM file");
  if (fmt->format == cram && hts_set_fai_filename(fp_.get(), ref.path().c_str()) != 0)
    fail("cannot use reference " + ref.path() + " to decode CRAM");
  hdr_.reset(sam_hdr_read(fp_.get()));
  if (!hdr_) fail("cannot read the header");
  // Sorted by coordinate: region queries and the pileup both rely on it.
  kstring_t ks = {0, 0, nullptr};
  std::string so;
  if (sam_hdr_find_tag_hd(hdr_.get(), "SO", &ks) == 0) so.assign(ks.s, ks.l);
  ks_free(&ks);
  if (so != "coordinate")
    fail("not coordinate-sorted (@HD SO:" + (so.empty() ? std::string("missing") : so) +
         "); sort it with `samtools sort` or align with `omicsd align`");
  idx_.reset(sam_index_load(fp_.get(), path.c_str()));
  if (!idx_) fail("no index (.bai/.csi/.crai) found; create one with `samtools index`");
  // Every @SQ that names one of our contigs must be that contig; contigs absent from the reference
  // mean the BAM was aligned to another assembly.
  tid_of_contig_.assign(ref.contigs().size(), -1);
  const int n = sam_hdr_nref(hdr_.get());
  if (n == 0) fail("no @SQ lines: the reads are not aligned");
  for (int tid = 0; tid < n; ++tid) {
    const char* name = sam_hdr_tid2name(hdr_.get(), tid);
    const int ci = ref.find_contig(name);
    if (ci < 0)
      fail("@SQ " + std::string(name) + " is not in reference " + ref.path() +
           ": aligned to another reference");
    const Contig& c = ref.contigs()[size_t(ci)];
    if (sam_hdr_tid2len(hdr_.get(), tid) != hts_pos_t(c.length))
      fail("@SQ " + std::string(name) + " has LN " + std::to_string(sam_hdr_tid2len(hdr_.get(), tid)) +
           " but reference " + ref.path() + " has " + std::to_string(c.length) +
           ": aligned to another reference");
    const std::string m5 = header_tag(hdr_.get(), "SQ", "SN", name, "M5");
    if (!m5.empty() && !c.md5.empty() && strcasecmp(m5.c_str(), c.md5.c_str()) != 0)
      fail("@SQ " + std::string(name) + " has M5 " + m5 + " but reference " + ref.path() + " has " + c.md5 +
           ": aligned to another reference");
    tid_of_contig_[size_t(ci)] = tid;
  }
  b_.reset(bam_init1());
}

std::string AlignmentFile::sample_name() const {
  kstring_t ks = {0, 0, nullptr};
  std::string sm;
  if (sam_hdr_find_tag_pos(hdr_.get(), "RG", 0, "SM", &ks) == 0) sm.assign(ks.s, ks.l);
  ks_free(&ks);
  return sm;
}

std::vector<std::string> AlignmentFile::sample_names() const {
  const char* text = sam_hdr_str(hdr_.get());
  return text ? read_group_samples(text) : std::vector<std::string>{};
}

void AlignmentFile::fetch(int contig, int64_t begin, int64_t end, const CallParams& p,
                          std::vector<EvidenceRead>& out) {
  const int tid = tid_of_contig_[size_t(contig)];
  if (tid < 0) return;
  const HtsIteratorPtr itr(sam_itr_queryi(idx_.get(), tid, begin, end));
  if (!itr)
    throw InputError(path_ + ": index query failed for " + std::string(sam_hdr_tid2name(hdr_.get(), tid)));
  int r;
  uint64_t record = 0;
  while ((r = sam_itr_next(fp_.get(), itr.get(), b_.get())) >= 0) {
    ++record;
    const bam1_core_t& c = b_->core;
    if (c.flag & BAM_FUNMAP) continue;
    if (!p.keep_secondary && (c.flag & (BAM_FSECONDARY | BAM_FSUPPLEMENTARY))) continue;
    if (!p.keep_duplicates && (c.flag & BAM_FDUP)) continue;
    if (!p.keep_qcfail && (c.flag & BAM_FQCFAIL)) continue;
    if (c.qual < p.min_mapq || c.qual == 255) continue;
    if (c.n_cigar == 0 || c.l_qseq == 0) continue;
    EvidenceRead e;
    e.pos = c.pos;
    e.end = bam_endpos(b_.get());
    e.mapq = uint8_t(c.qual);
    e.reverse = (c.flag & BAM_FREVERSE) != 0;
    const uint32_t* cig = bam_get_cigar(b_.get());
    e.cigar.assign(cig, cig + c.n_cigar);
    e.bases.resize(size_t(c.l_qseq));
    e.quals.resize(size_t(c.l_qseq));
    const uint8_t* seq = bam_get_seq(b_.get());
    const uint8_t* qual = bam_get_qual(b_.get());
    for (int i = 0; i < c.l_qseq; ++i) {
      e.bases[size_t(i)] = base_code(seq_nt16_str[bam_seqi(seq, i)]);
      e.quals[size_t(i)] = qual[0] == 0xff ? 30 : qual[i];
    }
    e.pair_key = std::hash<std::string_view>{}(bam_get_qname(b_.get()));
    out.push_back(std::move(e));
  }
  if (r < -1)
    throw InputError(path_ + ": cannot decode a record in " + std::string(sam_hdr_tid2name(hdr_.get(), tid)) +
                     ":" + std::to_string(begin + 1) + "-" + std::to_string(end) + " (truncated or corrupt)");
}

}  // namespace omicsd
