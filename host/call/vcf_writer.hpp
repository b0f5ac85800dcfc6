#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/io/reference.hpp"

namespace omicsd {

// A FILTER the caller may set on records (besides PASS, which is always declared).
struct VcfFilterDef {
  std::string id, description;
};

// An INFO field beyond the writer's own (DP, MQ, AC, AN, AF, END): declared in
// VcfWriterOptions::infos. number: "0" (Flag), "1", "A", "R", ... as in the VCF header; type: Flag,
// Integer, Float or String.
struct VcfInfoDef {
  std::string id, number, type, description;
};

// A value of a declared extra INFO field on one record: a Flag, Integer(s), a Float or a String.
struct VcfInfoValue {
  enum class Kind { kFlag, kInteger, kFloat, kString };
  std::string id;
  Kind kind = Kind::kFlag;
  std::vector<int> integers;  // kInteger: one or more values
  float float_value = 0;
  std::string string_value;
  static VcfInfoValue flag(std::string id) { return {std::move(id), Kind::kFlag, {}, 0, {}}; }
  static VcfInfoValue integer(std::string id, std::vector<int> v) {
    return {std::move(id), Kind::kInteger, std::move(v), 0, {}};
  }
  static VcfInfoValue real(std::string id, float v) { return {std::move(id), Kind::kFloat, {}, v, {}}; }
  static VcfInfoValue text(std::string id, std::string v) {
    return {std::move(id), Kind::kString, {}, 0, std::move(v)};
  }
};

// One variant record of the single sample. Alleles are indexed 0 = ref, 1.. = alts (in gVCF mode the
// writer appends <NON_REF> after the given alts; callers never pass it).
struct VcfRecord {
  int32_t contig = -1;  // index into Reference::contigs()
  int64_t pos = -1;     // 0-based position of the first REF base
  std::string ref;      // A/C/G/T/N, upper case; must match the reference (N where the reference has N/IUPAC)
  std::vector<std::string> alts;     // A/C/G/T/N strings or "*"; distinct, none equal to ref
  float qual = 0;                    // NaN: missing
  std::vector<std::string> filters;  // empty: PASS; otherwise ids declared in VcfWriterOptions::filters
  std::vector<int> gt{-1, -1};       // allele indices, one per chromosome copy (ploidy); -1 = missing
  bool phased = false;               // written as a|b
  int gq = -1, dp = -1;              // -1: not written
  std::vector<int> ad;               // empty, or one per allele (ref first); values >= 0
  std::vector<int> pl;               // empty, or one per genotype of gt.size() in VCF order; values >= 0
  // INFO: DP (total depth), MQ (RMS mapping quality); -1: not written. AC/AN/AF are computed from GT.
  int info_dp = -1;
  float info_mq = -1;
  std::vector<VcfInfoValue> info;  // extra INFO fields, written in this order after the writer's own
};

struct VcfWriterOptions {
  std::string path;          // final name: BGZF-compressed VCF (<path>.tbi is written beside it)
  std::string sample;        // sample column name; empty: "SAMPLE"
  std::string command_line;  // ##commandline header line (tabs/newlines become spaces)
  std::vector<VcfFilterDef> filters;
  std::vector<VcfInfoDef> infos;  // extra INFO fields records may carry (VcfRecord::info)
  bool gvcf = false;  // GATK-style gVCF: <NON_REF> on every record, reference blocks, INFO/END, FORMAT/MIN_DP
  int threads = 1;    // BGZF compression / indexing threads
};

// Single-sample VCF writer on htslib's bcf API (no hand-formatted text).
//
// Header: ##fileformat=VCFv4.2, ##fileDate, ##source=omicsd <version> (<git hash>),
// ##reference=file://<absolute FASTA path>, ##contig=<ID,length,md5> for every contig, ##commandline,
// FILTER PASS + the given filters, INFO DP/MQ/AC/AN/AF + the given infos, FORMAT GT/GQ/DP/AD/PL, and in gVCF
// mode also
// ##ALT=<ID=NON_REF>, INFO END and FORMAT MIN_DP.
//
// Records: QUAL as given (NaN: '.'), FILTER PASS when none, INFO DP/MQ when >= 0, AC (one per alt)
// and AN from the non-missing GT alleles, AF = AC/AN when AN > 0. FORMAT GT always; GQ/DP when >= 0;
// AD/PL when given; then each VcfRecord::info value (its id must be declared in VcfWriterOptions::infos
// with a matching type, else Error).
//
// gVCF mode (GATK HaplotypeCaller -ERC GVCF style):
//  - every variant record gets <NON_REF> as its last ALT allele. AD gets a 0 for it (no read is
//    counted as "some other allele"), AC/AF a 0. PL is extended to the genotypes of the larger allele
//    set: the genotypes without <NON_REF> keep their PLs, every genotype that contains <NON_REF> gets
//    the largest (worst) of the given PLs, i.e. "at least as unlikely as the least likely called
//    genotype". In VCF genotype order those are exactly the last entries (n_alleles+1 of them for a
//    diploid, 1 for a haploid: genotype_count(n+1, P) - genotype_count(n, P) for ploidy P).
//  - write_ref_block(contig, start, end_exclusive, base, min_dp, gq, ploidy) writes
//    REF=<base at start> ALT=<NON_REF> QUAL=. FILTER=. INFO/END=<end_exclusive (1-based inclusive end)>
//    GT=0/0 GQ=gq MIN_DP=min_dp DP=min_dp PL=0,gq,2*gq (gq < 0: GQ and PL omitted; min_dp < 0: MIN_DP
//    and DP omitted). 2*gq for NON_REF/NON_REF is a lower bound of the true value under the usual
//    per-read error model (a hom-alt genotype costs ~Q+4.8 per reference read, a het ~3), so it never
//    overstates confidence in the block. For ploidy P the GT has P zeros ("0" haploid, "0/0/0"
//    triploid) and PL has P+1 values, k*gq for the genotype with k NON_REF copies: the per-read cost of
//    k copies, -10 log10(1 - k/P), is convex in k, so k times the one-copy cost is a lower bound.
//
// Order: records (and blocks, by start) must come in reference order: contig index ascending, then
// position non-decreasing. Anything going backwards throws Error (callers shard and write in order).
// Invalid records (REF letters not A/C/G/T/N, REF not matching the reference, an ALT equal to REF or
// repeated, GT/AD/PL of the wrong shape, an undeclared FILTER, a position off the contig) throw Error
// naming the output path and the position; nothing is written for them.
//
// Output: BGZF VCF written to <path>.tmp.<pid>, closed and fsync'ed, tabix-indexed to
// <path>.tbi.tmp.<pid>, then the index is renamed to <path>.tbi, the data to <path>, and the directory
// fsync'ed. (A reference with a contig of 2^29 bases or more gets a CSI index, <path>.csi, instead:
// TBI cannot address such positions.) An unwritable destination throws from the constructor. A writer
// destroyed without finish() (or after a failed one) removes its temporary files and never touches <path>.
class VcfWriter {
 public:
  VcfWriter(const VcfWriterOptions& options, const Reference& ref);
  ~VcfWriter();
  VcfWriter(const VcfWriter&) = delete;
  VcfWriter& operator=(const VcfWriter&) = delete;

  void write(const VcfRecord& record);
  // gVCF only (throws otherwise): a hom-ref block covering [start, end_exclusive) of `contig`.
  void write_ref_block(int32_t contig, int64_t start, int64_t end_exclusive, const std::string& ref_base,
                       int min_dp, int gq, int ploidy = 2);
  void finish();
  // Records written so far (variant records plus reference blocks).
  size_t records_written() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace omicsd
