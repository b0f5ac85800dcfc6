#include "host/call/vcf_writer.hpp"

#include <fcntl.h>
#include <htslib/hts.h>
#include <htslib/tbx.h>
#include <htslib/vcf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "host/call/ploidy_genotypes.hpp"
#include "host/common/dna.hpp"
#include "host/common/durable_file.hpp"
#include "host/common/error.hpp"
#include "host/io/hts_handles.hpp"
#include "omicsd_version.hpp"

namespace omicsd {

namespace fs = std::filesystem;

namespace {

constexpr const char* kNonRef = "<NON_REF>";

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

// Text inside a quoted header Description: no quotes, backslashes or line breaks.
std::string quoted_safe(std::string s) {
  s = one_line(std::move(s));
  for (char& c : s)
    if (c == '"')
      c = '\'';
    else if (c == '\\')
      c = '/';
  return s;
}

bool valid_id(std::string_view id) {
  if (id.empty()) return false;
  for (char c : id) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 32 || u >= 127 || c == ';' || c == ',' || c == '=' || c == '<' || c == '>' || c == '"')
      return false;
  }
  return true;
}

bool is_base(char c) { return c == 'A' || c == 'C' || c == 'G' || c == 'T' || c == 'N'; }

bool all_bases(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), is_base);
}

std::string today_utc() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y%m%d", &tm);
  return buf;
}

}  // namespace

struct VcfWriter::Impl {
  VcfWriterOptions opt;
  const Reference* ref = nullptr;
  BcfHeaderPtr hdr;
  BcfRecordPtr rec;
  HtsFilePtr fp;
  std::vector<int> rid_of_contig;  // Reference contig index -> header contig id
  int pass_id = -1;

  std::string out_tmp;    // <path>.tmp.<pid>
  int csi_shift = 0;      // 0: tabix (.tbi); 14: CSI (.csi) when a contig is too long for TBI
  std::string idx_final;  // <path>.tbi (or .csi)
  std::string idx_tmp;    // <idx_final>.tmp.<pid>

  int32_t last_contig = -1;
  int64_t last_pos = -1;
  size_t written = 0;
  bool finished = false;
  bool failed = false;

  // Scratch buffers reused across records.
  std::vector<const char*> alleles;
  std::vector<int32_t> ibuf;
  std::vector<float> fbuf;

  ~Impl() {
    fp.reset();  // closes (result ignored) before the temp name is removed
    if (!finished) {
      ::unlink(out_tmp.c_str());
      ::unlink(idx_tmp.c_str());
    }
  }

  std::string where(int32_t contig, int64_t pos) const {
    // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on "literal" + std::string&&.
    std::string s = "VCF ";
    s += opt.path;
    s += ": record at ";
    if (contig >= 0 && size_t(contig) < ref->contigs().size()) {
      s += ref->contigs()[size_t(contig)].name;
    } else {
      s += "contig #";
      s += std::to_string(contig);
    }
    s += ':';
    s += std::to_string(pos + 1);
    return s;
  }

  [[noreturn]] void bad(int32_t contig, int64_t pos, const std::string& why) const {
    throw Error(where(contig, pos) + ": " + why);
  }

  void append_header(const std::string& line) {
    if (bcf_hdr_append(hdr.get(), line.c_str()) < 0)
      throw Error("cannot build the VCF header for " + opt.path + ": htslib rejected '" + line + "'");
  }

  void build_header() {
    hdr.reset(bcf_hdr_init("w"));  // ##fileformat and FILTER PASS
    if (!hdr) throw Error("cannot allocate a VCF header for " + opt.path);
    if (bcf_hdr_set_version(hdr.get(), "VCFv4.2") < 0)
      throw Error("cannot set the VCF version for " + opt.path);
    append_header("##fileDate=" + today_utc());
    append_header(std::string("##source=omicsd ") + kVersion + " (git " + kGitHash + ")");
    std::error_code ec;
    const fs::path abs = fs::absolute(ref->path(), ec);
    append_header("##reference=file://" + (ec ? ref->path() : abs.lexically_normal().string()));
    for (const Contig& c : ref->contigs()) {
      std::string line = "##contig=<ID=" + c.name + ",length=" + std::to_string(c.length);
      if (!c.md5.empty()) line += ",md5=" + c.md5;
      line += ">";
      append_header(line);
    }
    if (opt.gvcf)
      append_header(
          std::string("##ALT=<ID=NON_REF,Description=\"Represents any possible alternative allele not "
                      "already represented at this location by REF and ALT\">"));
    std::string cl = one_line(opt.command_line);
    if (!cl.empty()) {
      if (cl[0] == '<') cl[0] = '[';  // a leading '<' would make it a structured line
      append_header("##commandline=" + cl);
    }
    std::vector<std::string> seen;
    for (const VcfFilterDef& f : opt.filters) {
      if (f.id == "PASS") continue;  // always declared
      if (!valid_id(f.id) || f.id == "0")
        throw Error("VCF " + opt.path + ": invalid FILTER id '" + f.id + "'");
      if (std::find(seen.begin(), seen.end(), f.id) != seen.end())
        throw Error("VCF " + opt.path + ": FILTER id '" + f.id + "' declared twice");
      seen.push_back(f.id);
      append_header("##FILTER=<ID=" + f.id + ",Description=\"" + quoted_safe(f.description) + "\">");
    }
    append_header("##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Total read depth at the locus\">");
    append_header(
        "##INFO=<ID=MQ,Number=1,Type=Float,Description=\"RMS mapping quality of the reads at the locus\">");
    append_header(
        "##INFO=<ID=AC,Number=A,Type=Integer,Description=\"Allele count in genotypes, for each ALT "
        "allele, in the same order as listed\">");
    append_header(
        "##INFO=<ID=AN,Number=1,Type=Integer,Description=\"Total number of alleles in called genotypes\">");
    append_header(
        "##INFO=<ID=AF,Number=A,Type=Float,Description=\"Allele frequency in called genotypes, for each "
        "ALT allele, in the same order as listed\">");
    for (const VcfInfoDef& d : opt.infos) {
      if (!valid_id(d.id)) throw Error("VCF " + opt.path + ": invalid INFO id '" + d.id + "'");
      append_header("##INFO=<ID=" + d.id + ",Number=" + d.number + ",Type=" + d.type + ",Description=\"" +
                    quoted_safe(d.description) + "\">");
    }
    if (opt.gvcf)
      append_header(
          "##INFO=<ID=END,Number=1,Type=Integer,Description=\"Stop position of the reference block "
          "(1-based, inclusive)\">");
    append_header("##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">");
    append_header("##FORMAT=<ID=GQ,Number=1,Type=Integer,Description=\"Genotype quality (phred-scaled)\">");
    append_header(
        "##FORMAT=<ID=DP,Number=1,Type=Integer,Description=\"Read depth of the sample at the locus\">");
    append_header(
        "##FORMAT=<ID=AD,Number=R,Type=Integer,Description=\"Allelic depths for the REF and ALT alleles "
        "in the order listed\">");
    append_header(
        "##FORMAT=<ID=PL,Number=G,Type=Integer,Description=\"Phred-scaled genotype likelihoods, "
        "normalised so the most likely genotype is 0\">");
    if (opt.gvcf)
      append_header(
          "##FORMAT=<ID=MIN_DP,Number=1,Type=Integer,Description=\"Minimum DP observed within the "
          "reference block\">");

    std::string sample = opt.sample.empty() ? std::string("SAMPLE") : opt.sample;
    for (char c : sample)
      if (c == '\t' || c == '\n' || c == '\r')
        throw Error("VCF " + opt.path + ": sample name contains a tab or line break: '" + one_line(sample) +
                    "'");
    if (bcf_hdr_add_sample(hdr.get(), sample.c_str()) < 0)
      throw Error("VCF " + opt.path + ": cannot add sample '" + sample + "'");
    if (bcf_hdr_sync(hdr.get()) < 0) throw Error("cannot finalise the VCF header for " + opt.path);

    rid_of_contig.resize(ref->contigs().size());
    for (size_t i = 0; i < ref->contigs().size(); ++i) {
      rid_of_contig[i] = bcf_hdr_name2id(hdr.get(), ref->contigs()[i].name.c_str());
      if (rid_of_contig[i] < 0)
        throw Error("VCF " + opt.path + ": contig '" + ref->contigs()[i].name +
                    "' is not a valid VCF contig name");
    }
    pass_id = bcf_hdr_id2int(hdr.get(), BCF_DT_ID, "PASS");
  }

  // ---- validation ---------------------------------------------------------------------------------

  void check_usable(const char* what) const {
    if (finished) throw Error("VcfWriter::" + std::string(what) + " after finish for " + opt.path);
    if (failed) throw Error("VcfWriter::" + std::string(what) + " after a write failure for " + opt.path);
  }

  // Position on the contig, REF letters and REF == reference.
  void check_ref(int32_t contig, int64_t pos, const std::string& ref_allele) const {
    if (contig < 0 || size_t(contig) >= ref->contigs().size())
      bad(contig, pos,
          "contig index out of range (reference has " + std::to_string(ref->contigs().size()) + " contigs)");
    const Contig& c = ref->contigs()[size_t(contig)];
    if (pos < 0 || pos >= int64_t(c.length))
      bad(contig, pos, "position outside the contig (length " + std::to_string(c.length) + ")");
    if (!all_bases(ref_allele)) bad(contig, pos, "REF '" + ref_allele + "' must be A/C/G/T/N letters");
    if (pos + int64_t(ref_allele.size()) > int64_t(c.length))
      bad(contig, pos, "REF '" + ref_allele + "' runs past the contig end");
    const uint8_t* codes = ref->codes() + c.offset + uint64_t(pos);
    for (size_t i = 0; i < ref_allele.size(); ++i)
      if (base_code(ref_allele[i]) != codes[i])
        bad(contig, pos,
            "REF '" + ref_allele + "' does not match the reference (base " + std::to_string(i + 1) + " is " +
                kCodeToBase[codes[i] <= kBaseN ? codes[i] : kBaseN] + ")");
  }

  void check_order(int32_t contig, int64_t pos) const {
    if (contig < last_contig || (contig == last_contig && pos < last_pos)) {
      std::string prev = ref->contigs()[size_t(last_contig)].name + ":" + std::to_string(last_pos + 1);
      bad(contig, pos, "out of coordinate order (previous record at " + prev + ")");
    }
  }

  void set_qual_missing() { bcf_float_set_missing(rec->qual); }

  // ---- writing ------------------------------------------------------------------------------------

  void emit(int32_t contig, int64_t pos) {
    errno = 0;
    if (bcf_write(fp.get(), hdr.get(), rec.get()) < 0) {
      failed = true;
      fail_io("write", out_tmp, errno);
    }
    last_contig = contig;
    last_pos = pos;
    ++written;
  }

  void update_info_i(const char* key, const int32_t* v, int n, int32_t contig, int64_t pos) {
    if (bcf_update_info_int32(hdr.get(), rec.get(), key, v, n) < 0)
      bad(contig, pos, std::string("cannot set INFO/") + key);
  }
  void update_fmt_i(const char* key, const int32_t* v, int n, int32_t contig, int64_t pos) {
    if (bcf_update_format_int32(hdr.get(), rec.get(), key, v, n) < 0)
      bad(contig, pos, std::string("cannot set FORMAT/") + key);
  }

  // One extra INFO value; its header type must match (htslib would otherwise write it as declared).
  void write_extra_info(const VcfInfoValue& v, int32_t contig, int64_t pos) {
    static constexpr int kTypeOf[] = {BCF_HT_FLAG, BCF_HT_INT, BCF_HT_REAL, BCF_HT_STR};
    const int id = bcf_hdr_id2int(hdr.get(), BCF_DT_ID, v.id.c_str());
    if (id < 0 || !bcf_hdr_idinfo_exists(hdr.get(), BCF_HL_INFO, id))
      bad(contig, pos, "INFO '" + v.id + "' is not declared in the header");
    if (bcf_hdr_id2type(hdr.get(), BCF_HL_INFO, id) != uint32_t(kTypeOf[int(v.kind)]))
      bad(contig, pos, "INFO '" + v.id + "' has a value of another type than its header declares");
    int rc = 0;
    switch (v.kind) {
      case VcfInfoValue::Kind::kFlag:
        rc = bcf_update_info_flag(hdr.get(), rec.get(), v.id.c_str(), nullptr, 1);
        break;
      case VcfInfoValue::Kind::kInteger: {
        if (v.integers.empty()) bad(contig, pos, "INFO '" + v.id + "' has no value");
        ibuf.assign(v.integers.begin(), v.integers.end());
        rc = bcf_update_info_int32(hdr.get(), rec.get(), v.id.c_str(), ibuf.data(), int(ibuf.size()));
        break;
      }
      case VcfInfoValue::Kind::kFloat: {
        const float x = v.float_value;
        rc = bcf_update_info_float(hdr.get(), rec.get(), v.id.c_str(), &x, 1);
        break;
      }
      case VcfInfoValue::Kind::kString:
        if (v.string_value.empty() || v.string_value.find_first_of(" ;=,\t\n") != std::string::npos)
          bad(contig, pos, "INFO '" + v.id + "' value '" + v.string_value + "' is empty or has separators");
        rc = bcf_update_info_string(hdr.get(), rec.get(), v.id.c_str(), v.string_value.c_str());
        break;
    }
    if (rc < 0) bad(contig, pos, "cannot set INFO/" + v.id);
  }

  void write(const VcfRecord& r) {
    check_usable("write");
    const int32_t contig = r.contig;
    const int64_t pos = r.pos;
    check_ref(contig, pos, r.ref);
    check_order(contig, pos);

    // Alleles.
    const size_t n_alts = r.alts.size();
    for (size_t i = 0; i < n_alts; ++i) {
      const std::string& a = r.alts[i];
      if (a == kNonRef)
        bad(contig, pos,
            opt.gvcf ? "ALT <NON_REF> is added by the writer; do not pass it"
                     : "ALT <NON_REF> is only allowed in gVCF mode (and is added by the writer)");
      if (a != "*" && !all_bases(a)) bad(contig, pos, "ALT '" + a + "' must be A/C/G/T/N letters or '*'");
      if (a == r.ref) bad(contig, pos, "ALT '" + a + "' equals REF");
      for (size_t j = 0; j < i; ++j)
        if (r.alts[j] == a) bad(contig, pos, "ALT '" + a + "' is listed twice");
    }
    const int n_called = int(n_alts) + 1;             // alleles the caller knows about
    const int n_out = n_called + (opt.gvcf ? 1 : 0);  // alleles written
    const int ploidy = int(r.gt.size());
    if (ploidy < 1 || ploidy > kMaxPloidy)
      bad(contig, pos,
          "GT has " + std::to_string(ploidy) + " alleles, expected 1 to " + std::to_string(kMaxPloidy));
    for (int k = 0; k < ploidy; ++k)
      if (r.gt[size_t(k)] < -1 || r.gt[size_t(k)] >= n_called)
        bad(contig, pos,
            "GT allele " + std::to_string(r.gt[size_t(k)]) + " out of range (" + std::to_string(n_called) +
                " alleles)");
    if (!r.ad.empty() && r.ad.size() != size_t(n_called))
      bad(contig, pos,
          "AD has " + std::to_string(r.ad.size()) + " values, expected " + std::to_string(n_called));
    const size_t g_called = genotype_count(size_t(n_called), ploidy);
    if (!r.pl.empty() && r.pl.size() != g_called)
      bad(contig, pos,
          "PL has " + std::to_string(r.pl.size()) + " values, expected " + std::to_string(g_called));
    for (int v : r.ad)
      if (v < 0) bad(contig, pos, "negative AD value");
    for (int v : r.pl)
      if (v < 0) bad(contig, pos, "negative PL value");
    std::vector<int> filter_ids;
    filter_ids.reserve(r.filters.size());
    for (const std::string& f : r.filters) {
      const int id = f == "PASS" ? pass_id : bcf_hdr_id2int(hdr.get(), BCF_DT_ID, f.c_str());
      if (id < 0 || !bcf_hdr_idinfo_exists(hdr.get(), BCF_HL_FLT, id))
        bad(contig, pos, "FILTER '" + f + "' is not declared in the header");
      if (std::find(filter_ids.begin(), filter_ids.end(), id) == filter_ids.end()) filter_ids.push_back(id);
    }
    if (filter_ids.size() > 1 && std::find(filter_ids.begin(), filter_ids.end(), pass_id) != filter_ids.end())
      bad(contig, pos, "FILTER PASS combined with other filters");
    if (filter_ids.empty()) filter_ids.push_back(pass_id);

    bcf_clear(rec.get());
    rec->rid = rid_of_contig[size_t(contig)];
    rec->pos = pos;
    alleles.clear();
    alleles.push_back(r.ref.c_str());
    for (const std::string& a : r.alts) alleles.push_back(a.c_str());
    if (opt.gvcf) alleles.push_back(kNonRef);
    if (bcf_update_alleles(hdr.get(), rec.get(), alleles.data(), int(alleles.size())) < 0)
      bad(contig, pos, "cannot set the alleles");
    if (std::isnan(r.qual))
      set_qual_missing();
    else
      rec->qual = r.qual;
    if (bcf_update_filter(hdr.get(), rec.get(), filter_ids.data(), int(filter_ids.size())) < 0)
      bad(contig, pos, "cannot set FILTER");

    // INFO.
    if (r.info_dp >= 0) {
      const int32_t v = r.info_dp;
      update_info_i("DP", &v, 1, contig, pos);
    }
    if (r.info_mq >= 0) {  // false for NaN too
      const float v = r.info_mq;
      if (bcf_update_info_float(hdr.get(), rec.get(), "MQ", &v, 1) < 0)
        bad(contig, pos, "cannot set INFO/MQ");
    }
    int32_t an = 0;
    ibuf.assign(size_t(n_out - 1), 0);  // AC, one per written ALT (NON_REF included: always 0)
    for (const int a : r.gt) {
      if (a < 0) continue;
      ++an;
      if (a > 0) ++ibuf[size_t(a - 1)];
    }
    if (n_out > 1) update_info_i("AC", ibuf.data(), int(ibuf.size()), contig, pos);
    update_info_i("AN", &an, 1, contig, pos);
    if (an > 0 && n_out > 1) {
      fbuf.resize(ibuf.size());
      for (size_t i = 0; i < ibuf.size(); ++i) fbuf[i] = float(ibuf[i]) / float(an);
      if (bcf_update_info_float(hdr.get(), rec.get(), "AF", fbuf.data(), int(fbuf.size())) < 0)
        bad(contig, pos, "cannot set INFO/AF");
    }

    for (const VcfInfoValue& v : r.info) write_extra_info(v, contig, pos);

    // FORMAT.
    ibuf.resize(size_t(ploidy));
    for (size_t k = 0; k < size_t(ploidy); ++k) {
      ibuf[k] = r.gt[k] < 0 ? bcf_gt_missing : bcf_gt_unphased(r.gt[k]);
      if (r.phased && k > 0) ibuf[k] = r.gt[k] < 0 ? bcf_gt_missing | 1 : bcf_gt_phased(r.gt[k]);
    }
    if (bcf_update_genotypes(hdr.get(), rec.get(), ibuf.data(), ploidy) < 0)
      bad(contig, pos, "cannot set GT");
    if (r.gq >= 0) {
      const int32_t v = r.gq;
      update_fmt_i("GQ", &v, 1, contig, pos);
    }
    if (r.dp >= 0) {
      const int32_t v = r.dp;
      update_fmt_i("DP", &v, 1, contig, pos);
    }
    if (!r.ad.empty()) {
      ibuf.assign(r.ad.begin(), r.ad.end());
      if (opt.gvcf) ibuf.push_back(0);  // no read counted for "any other allele"
      update_fmt_i("AD", ibuf.data(), int(ibuf.size()), contig, pos);
    }
    if (!r.pl.empty()) {
      ibuf.assign(r.pl.begin(), r.pl.end());
      if (opt.gvcf) {
        // Genotypes containing NON_REF (allele n_called) are the last ones in VCF order: n_called+1
        // of them for a diploid.
        const int32_t worst = *std::max_element(r.pl.begin(), r.pl.end());
        ibuf.insert(ibuf.end(), genotype_count(size_t(n_out), ploidy) - g_called, worst);
      }
      update_fmt_i("PL", ibuf.data(), int(ibuf.size()), contig, pos);
    }
    emit(contig, pos);
  }

  void write_ref_block(int32_t contig, int64_t start, int64_t end_exclusive, const std::string& ref_base,
                       int min_dp, int gq, int ploidy) {
    check_usable("write_ref_block");
    if (ploidy < 1 || ploidy > kMaxPloidy)
      bad(contig, start, "reference block ploidy " + std::to_string(ploidy) + " out of range");
    if (!opt.gvcf) bad(contig, start, "reference blocks need gVCF mode");
    if (ref_base.size() != 1)
      bad(contig, start, "reference block base '" + ref_base + "' must be one letter");
    check_ref(contig, start, ref_base);
    const int64_t len = ref->contigs()[size_t(contig)].length;
    if (end_exclusive <= start || end_exclusive > len)
      bad(contig, start,
          "reference block end " + std::to_string(end_exclusive) + " must be in (" + std::to_string(start) +
              ", " + std::to_string(len) + "]");
    check_order(contig, start);

    bcf_clear(rec.get());
    rec->rid = rid_of_contig[size_t(contig)];
    rec->pos = start;
    alleles.assign({ref_base.c_str(), kNonRef});
    if (bcf_update_alleles(hdr.get(), rec.get(), alleles.data(), 2) < 0)
      bad(contig, start, "cannot set the alleles");
    set_qual_missing();
    const int32_t end = int32_t(end_exclusive);  // 1-based inclusive end
    update_info_i("END", &end, 1, contig, start);
    ibuf.assign(size_t(ploidy), bcf_gt_unphased(0));
    if (bcf_update_genotypes(hdr.get(), rec.get(), ibuf.data(), ploidy) < 0)
      bad(contig, start, "cannot set GT");
    if (gq >= 0) {
      const int32_t v = gq;
      update_fmt_i("GQ", &v, 1, contig, start);
    }
    if (min_dp >= 0) {
      const int32_t v = min_dp;
      update_fmt_i("MIN_DP", &v, 1, contig, start);
      update_fmt_i("DP", &v, 1, contig, start);
    }
    if (gq >= 0) {
      ibuf.resize(size_t(ploidy) + 1);  // k NON_REF copies: k * gq (see the header)
      for (size_t k = 0; k <= size_t(ploidy); ++k)
        ibuf[k] = int32_t(std::min<int64_t>(int64_t(gq) * int64_t(k), INT32_MAX / 2));
      update_fmt_i("PL", ibuf.data(), ploidy + 1, contig, start);
    }
    emit(contig, start);
  }

  void finish() {
    if (finished) return;
    if (failed) throw Error("VcfWriter::finish called again after a failure for " + opt.path);
    failed = true;  // cleared at the end; any throw leaves the writer failed (destructor cleans up)

    errno = 0;
    if (hts_close(fp.release()) < 0) fail_io("write", out_tmp, errno);
    fsync_path(out_tmp, false);

    errno = 0;
    if (tbx_index_build3(out_tmp.c_str(), idx_tmp.c_str(), csi_shift, std::max(1, opt.threads),
                         &tbx_conf_vcf) < 0)
      fail_io("index", out_tmp, errno);
    fsync_path(idx_tmp, false);
    if (::rename(idx_tmp.c_str(), idx_final.c_str()) != 0)
      fail_io("rename " + idx_tmp + " to", idx_final, errno);
    if (::rename(out_tmp.c_str(), opt.path.c_str()) != 0) {
      const int err = errno;
      ::unlink(idx_final.c_str());  // never leave a new index beside old data
      fail_io("rename " + out_tmp + " to", opt.path, err);
    }
    const std::string dir = fs::path(opt.path).parent_path().string();
    fsync_path(dir.empty() ? "." : dir, true);

    finished = true;
    failed = false;
  }
};

VcfWriter::VcfWriter(const VcfWriterOptions& options, const Reference& ref)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opt = options;
  m.ref = &ref;
  if (m.opt.path.empty()) throw Error("VcfWriter: empty output path");
  const std::string pid = std::to_string(::getpid());
  m.out_tmp = m.opt.path + ".tmp." + pid;
  // TBI addresses positions below 2^29; a longer contig needs a CSI index (as bcftools index does).
  for (const Contig& c : ref.contigs())
    if (c.length >= (uint32_t(1) << 29)) m.csi_shift = 14;
  m.idx_final = m.opt.path + (m.csi_shift ? ".csi" : ".tbi");
  m.idx_tmp = m.idx_final + ".tmp." + pid;

  m.build_header();
  m.rec.reset(bcf_init());
  if (!m.rec) throw Error("cannot allocate a VCF record for " + m.opt.path);

  // Open the output now so an unwritable destination fails before any work is done.
  errno = 0;
  m.fp.reset(hts_open(m.out_tmp.c_str(), "wz"));
  if (!m.fp) fail_io("create", m.out_tmp, errno);
  if (m.opt.threads > 1 && hts_set_threads(m.fp.get(), m.opt.threads) < 0)
    throw Error("cannot start " + std::to_string(m.opt.threads) + " compression threads for " + m.opt.path);
  errno = 0;
  if (bcf_hdr_write(m.fp.get(), m.hdr.get()) < 0) {
    m.failed = true;
    fail_io("write the header of", m.out_tmp, errno);
  }
}

VcfWriter::~VcfWriter() = default;

void VcfWriter::write(const VcfRecord& record) { impl_->write(record); }

void VcfWriter::write_ref_block(int32_t contig, int64_t start, int64_t end_exclusive,
                                const std::string& ref_base, int min_dp, int gq, int ploidy) {
  impl_->write_ref_block(contig, start, end_exclusive, ref_base, min_dp, gq, ploidy);
}

void VcfWriter::finish() { impl_->finish(); }

size_t VcfWriter::records_written() const { return impl_->written; }

}  // namespace omicsd
