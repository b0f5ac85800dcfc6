#include "host/io/bam_reads_source.hpp"

#include <htslib/bgzf.h>
#include <htslib/faidx.h>
#include <htslib/hts.h>
#include <htslib/kstring.h>
#include <htslib/sam.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string_view>

#include "host/common/error.hpp"
#include "host/io/fastq_reader.hpp"
#include "host/io/hts_format_name.hpp"

namespace omicsd {
namespace {

constexpr size_t kMaxBatchBytes = kFastqMaxBatchBytes;
constexpr size_t kMaxSpareNodes = 1024;

// Complement of a 4-bit nt16 code (=ACMGRSVTWYHKDBN): reversing the 4 bits swaps A<->T, C<->G and
// maps every IUPAC set onto its complement set.
constexpr uint8_t kNt16Comp[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};

// Appends the read's bases and qualities (Phred+33, capped at '~'; all '\xff' when absent) in
// sequencer orientation.
void append_read(const bam1_t* b, std::string& bases, std::string& quals) {
  const int n = b->core.l_qseq;
  if (n <= 0) return;
  const uint8_t* s = bam_get_seq(b);
  const uint8_t* q = bam_get_qual(b);
  const bool rev = (b->core.flag & BAM_FREVERSE) != 0;
  const size_t bo = bases.size();
  bases.resize(bo + size_t(n));
  char* ob = bases.data() + bo;
  if (!rev) {
    for (int i = 0; i < n; ++i) ob[i] = seq_nt16_str[bam_seqi(s, i)];
  } else {
    for (int i = 0; i < n; ++i) ob[i] = seq_nt16_str[kNt16Comp[bam_seqi(s, n - 1 - i)]];
  }
  const size_t qo = quals.size();
  quals.resize(qo + size_t(n));
  char* oq = quals.data() + qo;
  if (q[0] == 0xff) {
    std::fill(oq, oq + n, '\xff');
  } else if (!rev) {
    for (int i = 0; i < n; ++i) oq[i] = char(std::min<int>(q[i], 93) + 33);
  } else {
    for (int i = 0; i < n; ++i) oq[i] = char(std::min<int>(q[n - 1 - i], 93) + 33);
  }
}

void push_offsets(ReadBatch& batch) {
  batch.name_offsets.push_back(uint32_t(batch.names.size()));
  batch.base_offsets.push_back(uint32_t(batch.bases.size()));
}

}  // namespace

// The handles are members: a throw from here releases the file, header and record.
BamReadsSource::BamReadsSource(const ReadInputSpec& spec, htsFile* fp) : path_(spec.path1), fp_(fp) {
  const htsFormat* format = hts_get_format(fp_.get());
  if (format->format == cram && spec.reference) setup_cram_reference(*spec.reference);
  hdr_.reset(sam_hdr_read(fp_.get()));
  if (!hdr_)
    throw InputError(path_ + ": cannot read the " + hts_format_name(*format) +
                     " header: the file is truncated or corrupt");
  // @RG lines, kept for re-alignment.
  if (const char* text = sam_hdr_str(hdr_.get())) {
    std::string_view all(text);
    while (!all.empty()) {
      size_t nl = all.find('\n');
      std::string_view line = all.substr(0, nl);
      if (line.substr(0, 4) == "@RG\t") {
        if (!rg_lines_.empty()) rg_lines_ += '\n';
        rg_lines_.append(line);
        const size_t id = line.find("\tID:");
        if (id != std::string_view::npos) {
          const std::string_view rest = line.substr(id + 4);
          std::string name(rest.substr(0, rest.find('\t')));
          if (!rg_index_.count(name)) {
            rg_index_.emplace(name, int32_t(rg_ids_.size()));
            rg_ids_.push_back(std::move(name));
          }
        }
      }
      if (nl == std::string_view::npos) break;
      all.remove_prefix(nl + 1);
    }
  }
  if (spec.reference) check_reference(*spec.reference);
  b_.reset(bam_init1());
  if (!b_) throw Error("out of memory allocating a BAM record");
  if (read_primary()) {
    have_record_ = true;
    paired_ = (b_->core.flag & BAM_FPAIRED) != 0;
  }
}

void BamReadsSource::setup_cram_reference(const Reference& ref) {
  namespace fs = std::filesystem;
  const std::string& fasta = ref.path();
  const std::string fai = fasta + ".fai";
  std::error_code ec;
  if (!fs::exists(fai, ec)) {
    fs::path dir = fs::path(fasta).parent_path();
    if (dir.empty()) dir = ".";
    if (::access(dir.c_str(), W_OK) != 0)
      throw InputError(path_ + ": decoding this CRAM needs the FASTA index " + fai +
                       ", which does not exist and cannot be created (" + dir.string() +
                       " is not writable); create it with `samtools faidx " + fasta + "`");
    if (fai_build(fasta.c_str()) != 0)
      throw InputError(path_ + ": decoding this CRAM needs the FASTA index " + fai +
                       ", and building it failed (the reference must be plain or bgzip-compressed "
                       "FASTA; create it with `samtools faidx " +
                       fasta + "`)");
    spdlog::info("built FASTA index {} to decode CRAM {}", fai, path_);
  }
  if (hts_set_fai_filename(fp_.get(), fasta.c_str()) != 0)
    throw InputError(path_ + ": cannot use reference " + fasta + " to decode this CRAM");
}

void BamReadsSource::check_reference(const Reference& ref) {
  const int n = sam_hdr_nref(hdr_.get());
  kstring_t ks = KS_INITIALIZE;
  const std::string tail = ": input was aligned to another reference";
  for (int i = 0; i < n; ++i) {
    const char* name = sam_hdr_tid2name(hdr_.get(), i);
    const hts_pos_t len = sam_hdr_tid2len(hdr_.get(), i);
    const int ci = ref.find_contig(name);
    if (ci < 0) {
      ks_free(&ks);
      throw InputError(path_ + ": @SQ " + name + " (LN " + std::to_string(len) +
                       ") is not a contig of reference " + ref.path() + tail);
    }
    const Contig& c = ref.contigs()[size_t(ci)];
    if (hts_pos_t(c.length) != len) {
      ks_free(&ks);
      throw InputError(path_ + ": @SQ " + name + " (LN " + std::to_string(len) +
                       ") does not match reference " + ref.path() + " (" + c.name + " LN " +
                       std::to_string(c.length) + ")" + tail);
    }
    ks.l = 0;
    if (!c.md5.empty() && sam_hdr_find_tag_id(hdr_.get(), "SQ", "SN", name, "M5", &ks) == 0 && ks.l > 0 &&
        (ks.l != c.md5.size() || strncasecmp(ks.s, c.md5.c_str(), ks.l) != 0)) {
      std::string m5(ks.s, ks.l);
      ks_free(&ks);
      throw InputError(path_ + ": @SQ " + name + " (M5 " + m5 + ") does not match reference " + ref.path() +
                       " (" + c.name + " M5 " + c.md5 + ")" + tail);
    }
  }
  ks_free(&ks);
}

void BamReadsSource::fail_record(const std::string& what) const {
  throw InputError(path_ + ": record " + std::to_string(records_) + ": " + what);
}

bool BamReadsSource::read_primary() {
  for (;;) {
    const int r = sam_read1(fp_.get(), hdr_.get(), b_.get());
    if (r == -1) {
      eof_ = true;
      return false;
    }
    ++records_;
    if (r < -1) {
      std::string hint;
      if (hts_get_format(fp_.get())->format == cram)
        hint = " (a CRAM also fails to decode without the reference it was written against)";
      fail_record("cannot decode the record: the file is truncated or corrupt" + hint);
    }
    if (b_->core.flag & (BAM_FSECONDARY | BAM_FSUPPLEMENTARY)) continue;
    return true;
  }
}

int32_t BamReadsSource::read_group_of_record() {
  if (rg_ids_.empty()) return -1;
  const uint8_t* tag = bam_aux_get(b_.get(), "RG");
  if (!tag) return -1;
  const char* id = bam_aux2Z(tag);
  if (id) {
    const auto it = rg_index_.find(id);
    if (it != rg_index_.end()) return it->second;
  }
  if (undeclared_rg_++ == 0)
    spdlog::warn(
        "{}: record {} has a read group (RG:Z) that no @RG header line declares; such tags are "
        "dropped",
        path_, records_);
  return -1;
}

void BamReadsSource::finish() {
  finished_ = true;
  for (auto& [name, p] : pending_)
    singles_.push_back({p.record, name, std::move(p.bases), std::move(p.quals), p.read_group});
  const uint64_t orphans = pending_.size();
  std::sort(singles_.begin(), singles_.end(),
            [](const Single& a, const Single& b) { return a.record < b.record; });
  if (!singles_.empty()) {
    std::string what;
    if (orphans > 0) what = std::to_string(orphans) + " reads whose mate is not in the input";
    if (unpaired_ > 0)
      what += (what.empty() ? "" : " and ") + std::to_string(unpaired_) +
              " primary records without usable pairing flags (0x1 with exactly one of 0x40/0x80)";
    spdlog::info("{}: {} are aligned as single-end reads", path_, what);
  }
  pending_.clear();
  spare_nodes_.clear();
}

bool BamReadsSource::next_singles(ReadBatch& batch, size_t max_reads) {
  batch.paired = false;
  const size_t limit = std::max<size_t>(max_reads, 1);
  while (singles_next_ < singles_.size() && batch.size() < limit) {
    Single& s = singles_[singles_next_++];
    batch.add(s.name, s.bases, s.quals);
    push_read_group(batch, s.read_group);
    std::string().swap(s.bases);
    std::string().swap(s.quals);
  }
  emitted_ += batch.size();
  return !batch.empty();
}

bool BamReadsSource::next(ReadBatch& batch, size_t max_reads) {
  batch.clear();
  batch.paired = paired_;
  batch.first_index = emitted_;
  if (finished_) return next_singles(batch, max_reads);
  const size_t step = paired_ ? 2 : 1;
  const size_t limit = std::max(max_reads, step);  // a batch holds at least one read or pair
  while (batch.size() + step <= limit && batch.bases.size() < kMaxBatchBytes &&
         batch.names.size() < kMaxBatchBytes) {
    if (!have_record_ && !read_primary()) {
      finish();
      break;
    }
    have_record_ = false;
    const bam1_t* b = b_.get();
    name_.assign(fastq_strip_mate_suffix(bam_get_qname(b)));
    const int32_t rg = read_group_of_record();
    if (!paired_) {
      batch.names.append(name_);
      append_read(b, batch.bases, batch.quals);
      push_offsets(batch);
      push_read_group(batch, rg);
      if (batch.size() == 1) fastq_reserve_batch(batch, limit);
      continue;
    }
    const uint16_t flag = b->core.flag;
    const bool r1 = (flag & BAM_FREAD1) != 0;
    const bool r2 = (flag & BAM_FREAD2) != 0;
    if (!(flag & BAM_FPAIRED) || r1 == r2) {
      ++unpaired_;
      Single single{records_, name_, {}, {}, rg};
      append_read(b, single.bases, single.quals);
      singles_.push_back(std::move(single));
      continue;
    }
    auto it = pending_.find(name_);
    if (it == pending_.end()) {
      // Wait for the mate. Recycled nodes keep their string capacity.
      if (spare_nodes_.empty()) {
        Pending p;
        p.record = records_;
        p.read1 = r1;
        p.read_group = rg;
        append_read(b, p.bases, p.quals);
        pending_.emplace(name_, std::move(p));
      } else {
        PendingMap::node_type node = std::move(spare_nodes_.back());
        spare_nodes_.pop_back();
        node.key() = name_;
        Pending& p = node.mapped();
        p.record = records_;
        p.read1 = r1;
        p.read_group = rg;
        p.bases.clear();
        p.quals.clear();
        append_read(b, p.bases, p.quals);
        pending_.insert(std::move(node));
      }
      continue;
    }
    const Pending& mate = it->second;
    if (mate.read1 == r1)
      fail_record(std::string("a second primary ") + (r1 ? "read 1" : "read 2") + " named " +
                  fastq_quote(name_) + ": each pair must have one read 1 (0x40) and one read 2 (0x80)");
    if (r1) {
      batch.names.append(name_);
      append_read(b, batch.bases, batch.quals);
      push_offsets(batch);
      push_read_group(batch, rg);
      batch.names.append(name_);
      batch.bases.append(mate.bases);
      batch.quals.append(mate.quals);
      push_offsets(batch);
      push_read_group(batch, mate.read_group);
    } else {
      batch.names.append(name_);
      batch.bases.append(mate.bases);
      batch.quals.append(mate.quals);
      push_offsets(batch);
      push_read_group(batch, mate.read_group);
      batch.names.append(name_);
      append_read(b, batch.bases, batch.quals);
      push_offsets(batch);
      push_read_group(batch, rg);
    }
    if (batch.size() == 2) fastq_reserve_batch(batch, limit);
    PendingMap::node_type node = pending_.extract(it);
    if (spare_nodes_.size() < kMaxSpareNodes) spare_nodes_.push_back(std::move(node));
  }
  emitted_ += batch.size();
  if (finished_ && emitted_ == 0 && singles_.empty())
    throw InputError(path_ + ": no reads" +
                     (records_ > 0 ? " (no primary record" + std::string(paired_ ? " with its mate" : "") +
                                         " among " + std::to_string(records_) + " records)"
                                   : ""));
  // The pairs are done: reads without a mate follow in their own single-end batches.
  if (finished_ && batch.empty()) return next_singles(batch, max_reads);
  return !batch.empty();
}

uint64_t BamReadsSource::bytes_consumed() const {
  // BAM and compressed SAM read through BGZF; CRAM has no BGZF stream (progress unknown).
  return fp_->is_bgzf ? uint64_t(bgzf_tell(fp_->fp.bgzf)) >> 16 : 0;
}

}  // namespace omicsd
