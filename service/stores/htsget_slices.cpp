// htsget byte ranges through htslib indexes (htsget_slices.hpp).
#include "service/stores/htsget_slices.hpp"

#include <htslib/bgzf.h>
#include <htslib/hts.h>
#include <htslib/sam.h>
#include <htslib/tbx.h>
#include <htslib/vcf.h>

#include <algorithm>
#include <fstream>
#include <memory>

#include "host/common/error.hpp"

namespace omicsd {
namespace {

constexpr unsigned char kEofBlock[28] = {0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, 0x42, 0x43,
                                         0x02, 0,    0x1b, 0,    3, 0, 0, 0, 0, 0,    0,    0, 0,    0};

struct HtsFileCloser {
  void operator()(htsFile* f) const { hts_close(f); }
};
struct BgzfCloser {
  void operator()(BGZF* f) const { bgzf_close(f); }
};
struct IdxFree {
  void operator()(hts_idx_t* i) const { hts_idx_destroy(i); }
};
struct ItrFree {
  void operator()(hts_itr_t* i) const { hts_itr_destroy(i); }
};
struct SamHdrFree {
  void operator()(sam_hdr_t* h) const { sam_hdr_destroy(h); }
};
struct BcfHdrFree {
  void operator()(bcf_hdr_t* h) const { bcf_hdr_destroy(h); }
};
struct TbxFree {
  void operator()(tbx_t* t) const { tbx_destroy(t); }
};

uint64_t file_size_of(const std::filesystem::path& p) { return std::filesystem::file_size(p); }

// The compressed size of the BGZF block at `coffset` (its BSIZE field + 1).
uint64_t block_size_at(std::ifstream& in, const std::filesystem::path& file, uint64_t coffset) {
  unsigned char h[18];
  in.clear();
  in.seekg(std::streamoff(coffset));
  if (!in.read(reinterpret_cast<char*>(h), sizeof h) || h[0] != 0x1f || h[1] != 0x8b || h[12] != 'B' ||
      h[13] != 'C')
    throw Error(file.string() + ": no BGZF block at offset " + std::to_string(coffset));
  return uint64_t(h[16] | (h[17] << 8)) + 1;
}

// The uncompressed bytes of the BGZF block at `coffset`.
std::string block_bytes_at(const std::filesystem::path& file, uint64_t coffset) {
  std::unique_ptr<BGZF, BgzfCloser> fp(bgzf_open(file.c_str(), "r"));
  if (!fp || bgzf_seek(fp.get(), int64_t(coffset << 16), SEEK_SET) < 0)
    throw Error(file.string() + ": cannot seek to BGZF block " + std::to_string(coffset));
  if (bgzf_read_block(fp.get()) < 0) throw Error(file.string() + ": cannot read BGZF block");
  return std::string(static_cast<const char*>(fp->uncompressed_block), std::size_t(fp->block_length));
}

std::string compress_block(std::string_view bytes, const std::filesystem::path& file) {
  std::string out(BGZF_MAX_BLOCK_SIZE, '\0');
  std::size_t len = out.size();
  if (bgzf_compress(out.data(), &len, bytes.data(), bytes.size(), 6) != 0)
    throw Error(file.string() + ": cannot recompress a BGZF block");
  out.resize(len);
  return out;
}

// Index chunks [u, v) (virtual offsets) -> whole compressed blocks.
void add_chunks(const hts_itr_t* itr, std::ifstream& in, const std::filesystem::path& file,
                std::vector<ByteRange>& out) {
  for (int i = 0; i < itr->n_off; ++i) {
    const uint64_t u = itr->off[i].u, v = itr->off[i].v;
    if (v <= u) continue;
    const uint64_t begin = u >> 16;
    uint64_t end = v >> 16;
    if ((v & 0xffff) != 0) end += block_size_at(in, file, end);
    out.push_back({begin, end});
  }
}

void check_interval(const HtsgetRegion& r, int64_t contig_length) {
  const int64_t start = r.start.value_or(0);
  if (start < 0 || (r.end && *r.end < 0)) throw HtsgetError("InvalidInput", "start and end must be >= 0");
  if (r.end && start > *r.end)
    throw HtsgetError("InvalidRange", "start " + std::to_string(start) + " > end " + std::to_string(*r.end));
  if (contig_length > 0 && start >= contig_length)
    throw HtsgetError("InvalidRange", "start " + std::to_string(start) + " is outside " + r.reference_name +
                                          " (length " + std::to_string(contig_length) + ")");
}

int64_t query_end(const HtsgetRegion& r) { return r.end.value_or(HTS_POS_MAX); }

}  // namespace

int HtsgetError::status() const {
  if (name_ == "InvalidAuthentication") return 401;
  if (name_ == "PermissionDenied") return 403;
  if (name_ == "NotFound") return 404;
  if (name_ == "PayloadTooLarge") return 413;
  return 400;  // UnsupportedFormat, InvalidInput, InvalidRange
}

std::string bgzf_eof_block() {
  return std::string(reinterpret_cast<const char*>(kEofBlock), sizeof kEofBlock);
}

std::vector<ByteRange> merge_byte_ranges(std::vector<ByteRange> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const ByteRange& a, const ByteRange& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  std::vector<ByteRange> out;
  for (const ByteRange& r : ranges) {
    if (r.end <= r.begin) continue;
    if (!out.empty() && r.begin <= out.back().end)
      out.back().end = std::max(out.back().end, r.end);
    else
      out.push_back(r);
  }
  return out;
}

HtsgetSlices plan_htsget_slices(const std::filesystem::path& file, const std::filesystem::path& index,
                                HtsgetFileKind kind, const std::vector<HtsgetRegion>& regions) {
  std::unique_ptr<htsFile, HtsFileCloser> fp(hts_open(file.c_str(), "r"));
  if (!fp) throw Error(file.string() + ": cannot open");
  BGZF* bgzf = hts_get_bgzfp(fp.get());
  if (!bgzf) throw Error(file.string() + ": not BGZF-compressed");
  std::ifstream in(file, std::ios::binary);
  const uint64_t size = file_size_of(file);
  const bool has_eof = size >= sizeof kEofBlock && [&] {
    std::string tail(sizeof kEofBlock, '\0');
    in.seekg(std::streamoff(size - sizeof kEofBlock));
    return bool(in.read(tail.data(), std::streamsize(tail.size()))) && tail == bgzf_eof_block();
  }();
  const uint64_t data_limit = has_eof ? size - sizeof kEofBlock : size;

  std::vector<ByteRange> ranges;
  int64_t header_voffset = 0;
  if (kind == HtsgetFileKind::bam) {
    std::unique_ptr<sam_hdr_t, SamHdrFree> hdr(sam_hdr_read(fp.get()));
    if (!hdr) throw Error(file.string() + ": cannot read the BAM header");
    header_voffset = bgzf_tell(bgzf);
    if (regions.empty()) ranges.push_back({uint64_t(header_voffset) >> 16, data_limit});
    if (!regions.empty()) {
      std::unique_ptr<hts_idx_t, IdxFree> idx(sam_index_load2(fp.get(), file.c_str(), index.c_str()));
      if (!idx) throw Error(index.string() + ": cannot load the BAM index");
      for (const HtsgetRegion& r : regions) {
        if (r.reference_name == "*") {
          if (r.start || r.end)
            throw HtsgetError("InvalidInput", "start/end cannot be given for referenceName '*'");
          // The unplaced reads follow the last placed one: from the largest chunk end in the
          // index to the end of the data.
          uint64_t from = uint64_t(header_voffset);
          for (int tid = 0; tid < sam_hdr_nref(hdr.get()); ++tid) {
            std::unique_ptr<hts_itr_t, ItrFree> itr(sam_itr_queryi(idx.get(), tid, 0, HTS_POS_MAX));
            if (itr)
              for (int i = 0; i < itr->n_off; ++i) from = std::max<uint64_t>(from, itr->off[i].v);
          }
          uint64_t begin = from >> 16;
          if (begin < data_limit) ranges.push_back({begin, data_limit});
          continue;
        }
        const int tid = sam_hdr_name2tid(hdr.get(), r.reference_name.c_str());
        if (tid < 0)
          throw HtsgetError("NotFound",
                            "no reference '" + r.reference_name + "' in " + file.filename().string());
        check_interval(r, int64_t(sam_hdr_tid2len(hdr.get(), tid)));
        std::unique_ptr<hts_itr_t, ItrFree> itr(
            sam_itr_queryi(idx.get(), tid, r.start.value_or(0), query_end(r)));
        if (!itr) throw Error(file.string() + ": index query failed for " + r.reference_name);
        add_chunks(itr.get(), in, file, ranges);
      }
    }
  } else {
    std::unique_ptr<bcf_hdr_t, BcfHdrFree> hdr(bcf_hdr_read(fp.get()));
    if (!hdr) throw Error(file.string() + ": cannot read the VCF header");
    header_voffset = bgzf_tell(bgzf);
    if (regions.empty()) ranges.push_back({uint64_t(header_voffset) >> 16, data_limit});
    if (!regions.empty()) {
      std::unique_ptr<tbx_t, TbxFree> tbx(tbx_index_load2(file.c_str(), index.c_str()));
      if (!tbx) throw Error(index.string() + ": cannot load the VCF index");
      for (const HtsgetRegion& r : regions) {
        const int rid = bcf_hdr_id2int(hdr.get(), BCF_DT_CTG, r.reference_name.c_str());
        if (rid < 0)
          throw HtsgetError("NotFound",
                            "no contig '" + r.reference_name + "' in " + file.filename().string());
        check_interval(r, int64_t(hdr->id[BCF_DT_CTG][rid].val->info[0]));  // 0 when the length is not given
        const int tid = tbx_name2id(tbx.get(), r.reference_name.c_str());
        if (tid < 0) continue;  // a contig of the header without records
        std::unique_ptr<hts_itr_t, ItrFree> itr(
            tbx_itr_queryi(tbx.get(), tid, r.start.value_or(0), query_end(r)));
        if (!itr) throw Error(file.string() + ": index query failed for " + r.reference_name);
        add_chunks(itr.get(), in, file, ranges);
      }
    }
  }

  HtsgetSlices out;
  const uint64_t header_block = uint64_t(header_voffset) >> 16;
  const uint64_t header_within = uint64_t(header_voffset) & 0xffff;
  ranges = merge_byte_ranges(std::move(ranges));
  if (header_within == 0) {
    if (header_block > 0) out.header.push_back({{0, header_block}, {}});
    for (const ByteRange& r : ranges) out.data.push_back({r, {}});
    return out;
  }
  // The header ends inside a block that also holds records: that block is split in two
  // recompressed blocks, the header's tail and the records' head.
  const std::string shared = block_bytes_at(file, header_block);
  const uint64_t shared_end = header_block + block_size_at(in, file, header_block);
  if (header_block > 0) out.header.push_back({{0, header_block}, {}});
  out.header.push_back({{}, compress_block(std::string_view(shared).substr(0, header_within), file)});
  for (const ByteRange& r : ranges) {
    if (r.begin <= header_block) {
      if (header_within < shared.size())
        out.data.push_back({{}, compress_block(std::string_view(shared).substr(header_within), file)});
      if (r.end > shared_end) out.data.push_back({{shared_end, r.end}, {}});
    } else {
      out.data.push_back({r, {}});
    }
  }
  return out;
}

}  // namespace omicsd
