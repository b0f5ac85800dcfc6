#include "host/io/read_source.hpp"

#include <htslib/bgzf.h>
#include <htslib/hfile.h>
#include <htslib/hts.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "host/common/error.hpp"
#include "host/io/bam_reads_source.hpp"
#include "host/io/fastq_reader.hpp"
#include "host/io/hts_format_name.hpp"

namespace omicsd {
namespace {

constexpr size_t kMaxBatchBytes = kFastqMaxBatchBytes;

void push_offsets(ReadBatch& batch) {
  batch.name_offsets.push_back(uint32_t(batch.names.size()));
  batch.base_offsets.push_back(uint32_t(batch.bases.size()));
}

bool batch_has_room(const ReadBatch& batch, size_t step, size_t limit) {
  return batch.size() + step <= limit && batch.bases.size() < kMaxBatchBytes &&
         batch.names.size() < kMaxBatchBytes;
}

// An opened input whose content has been sniffed.
struct OpenedInput {
  hFILE* hf = nullptr;
  htsFormat format{};
  bool alignment() const { return format.format == sam || format.format == bam || format.format == cram; }
};

OpenedInput open_input(const std::string& path) {
  if (path.empty()) throw InputError("no read file given");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(path + ": is a directory, not a FASTQ/BAM/CRAM file");
  OpenedInput in;
  errno = 0;
  in.hf = hopen(path.c_str(), "r");
  if (!in.hf) throw InputError(path + ": cannot open: " + (errno ? std::strerror(errno) : "unknown error"));
  errno = 0;
  if (hts_detect_format(in.hf, &in.format) < 0) {
    int err = errno;
    hclose_abruptly(in.hf);
    throw InputError(path + ": cannot read: " + (err ? std::strerror(err) : "unknown error"));
  }
  return in;
}

std::unique_ptr<FastqReader> make_fastq_reader(const std::string& path, OpenedInput& in) {
  BGZF* fp = bgzf_hopen(in.hf, "r");
  if (!fp) {
    int err = errno;
    hclose_abruptly(in.hf);
    throw InputError(path +
                     ": cannot open as FASTQ: " + (err ? std::strerror(err) : "corrupt compressed data"));
  }
  in.hf = nullptr;  // owned by the BGZF now
  return std::make_unique<FastqReader>(path, fp);
}

// One FASTQ file: single-end, or interleaved pairs (records 2i and 2i+1 are mates).
class FastqSource : public ReadSource {
 public:
  FastqSource(std::unique_ptr<FastqReader> reader, bool interleaved)
      : r_(std::move(reader)), interleaved_(interleaved) {}

  bool paired() const override { return interleaved_; }
  uint64_t bytes_consumed() const override { return r_->file_offset(); }

  bool next(ReadBatch& batch, size_t max_reads) override {
    batch.clear();
    batch.paired = interleaved_;
    batch.first_index = emitted_;
    if (done_) return false;
    const size_t step = interleaved_ ? 2 : 1;
    const size_t limit = std::max(max_reads, step);  // a batch holds at least one read or pair
    while (batch_has_room(batch, step, limit)) {
      if (!r_->next(batch.names, batch.bases, batch.quals)) {
        done_ = true;
        break;
      }
      push_offsets(batch);
      if (!interleaved_) {
        if (batch.size() == 1) fastq_reserve_batch(batch, limit);
        continue;
      }
      if (!r_->next(batch.names, batch.bases, batch.quals))
        throw InputError(r_->path() + ": record " + std::to_string(r_->records()) +
                         ": interleaved input has an odd number of records (" +
                         std::to_string(r_->records()) + "): the last record has no mate");
      push_offsets(batch);
      const size_t i = batch.size() - 2;
      if (batch.name(i) != batch.name(i + 1))
        throw InputError(r_->path() + ": record " + std::to_string(r_->records()) + " (line " +
                         std::to_string(r_->header_line()) + "): read name " +
                         fastq_quote(batch.name(i + 1)) + " differs from its mate's (record " +
                         std::to_string(r_->records() - 1) + ", " + fastq_quote(batch.name(i)) +
                         ") in interleaved input");
      if (batch.size() == 2) fastq_reserve_batch(batch, limit);
    }
    emitted_ += batch.size();
    if (done_ && emitted_ == 0) throw InputError(r_->path() + ": no reads");
    return !batch.empty();
  }

 private:
  std::unique_ptr<FastqReader> r_;
  bool interleaved_;
  bool done_ = false;
  uint64_t emitted_ = 0;
};

// Two FASTQ files read in lockstep: record i of the first is the mate of record i of the second.
class PairedFastqSource : public ReadSource {
 public:
  PairedFastqSource(std::unique_ptr<FastqReader> r1, std::unique_ptr<FastqReader> r2)
      : r1_(std::move(r1)), r2_(std::move(r2)) {}
  uint64_t bytes_consumed() const override { return r1_->file_offset() + r2_->file_offset(); }

  bool paired() const override { return true; }

  bool next(ReadBatch& batch, size_t max_reads) override {
    batch.clear();
    batch.paired = true;
    batch.first_index = emitted_;
    if (done_) return false;
    const size_t limit = std::max<size_t>(max_reads, 2);
    while (batch_has_room(batch, 2, limit)) {
      if (!r1_->next(batch.names, batch.bases, batch.quals)) {
        if (r2_->next(batch.names, batch.bases, batch.quals)) shorter(*r1_, *r2_);
        done_ = true;
        break;
      }
      push_offsets(batch);
      if (!r2_->next(batch.names, batch.bases, batch.quals)) shorter(*r2_, *r1_);
      push_offsets(batch);
      const size_t i = batch.size() - 2;
      if (batch.name(i) != batch.name(i + 1))
        throw InputError(r1_->path() + " and " + r2_->path() + ": record " + std::to_string(r1_->records()) +
                         " (line " + std::to_string(r1_->header_line()) + "): read names differ (" +
                         fastq_quote(batch.name(i)) + " vs " + fastq_quote(batch.name(i + 1)) +
                         "): the files are not mates of each other or are out of order");
      if (batch.size() == 2) fastq_reserve_batch(batch, limit);
    }
    emitted_ += batch.size();
    if (done_ && emitted_ == 0) throw InputError(r1_->path() + " and " + r2_->path() + ": no reads");
    return !batch.empty();
  }

 private:
  [[noreturn]] static void shorter(const FastqReader& ended, const FastqReader& other) {
    throw InputError(ended.path() + ": ends after " + std::to_string(ended.records()) +
                     " records, but its mate file " + other.path() + " has more (record " +
                     std::to_string(other.records()) + "): the paired files have different numbers of reads");
  }

  std::unique_ptr<FastqReader> r1_, r2_;
  bool done_ = false;
  uint64_t emitted_ = 0;
};

}  // namespace

std::unique_ptr<ReadSource> open_read_source(const ReadInputSpec& spec) {
  OpenedInput in1 = open_input(spec.path1);
  if (in1.alignment()) {
    if (!spec.path2.empty()) {
      hclose_abruptly(in1.hf);
      throw InputError(spec.path1 + ": is " + hts_format_name(in1.format) + ", but a second read file (" +
                       spec.path2 + ") is only accepted with two FASTQ files");
    }
    // Interleaving does not apply: pairs in SAM/BAM/CRAM come from the flags.
    htsFile* fp = hts_hopen(in1.hf, spec.path1.c_str(), "r");
    if (!fp) {
      int err = errno;
      hclose_abruptly(in1.hf);
      throw InputError(spec.path1 + ": cannot open as " + hts_format_name(in1.format) + ": " +
                       (err ? std::strerror(err) : "corrupt file"));
    }
    return std::make_unique<BamReadsSource>(spec, fp);
  }
  std::unique_ptr<FastqReader> r1 = make_fastq_reader(spec.path1, in1);
  if (spec.path2.empty()) return std::make_unique<FastqSource>(std::move(r1), spec.interleaved);

  if (spec.interleaved)
    throw InputError(spec.path1 + " and " + spec.path2 +
                     ": interleaved input is one file; two files are read 1 and read 2");
  OpenedInput in2 = open_input(spec.path2);
  if (in2.alignment()) {
    hclose_abruptly(in2.hf);
    throw InputError(spec.path2 + ": is " + hts_format_name(in2.format) +
                     ", but two read files must both be FASTQ");
  }
  std::unique_ptr<FastqReader> r2 = make_fastq_reader(spec.path2, in2);
  return std::make_unique<PairedFastqSource>(std::move(r1), std::move(r2));
}

}  // namespace omicsd
