#pragma once
// Owning handles for htslib objects: the one definition every layer uses (engine, stores, tests), so
// each object is released by the function htslib pairs with its constructor, exactly once, on every
// path out of a scope. A handle whose close result matters (a file being written) is closed
// explicitly with `hts_close(fp.release())` and the result checked; the deleters here ignore it,
// because they run on error paths where the first error is the one to report.
#include <htslib/bgzf.h>
#include <htslib/faidx.h>
#include <htslib/hts.h>
#include <htslib/sam.h>
#include <htslib/tbx.h>
#include <htslib/thread_pool.h>
#include <htslib/vcf.h>

#include <memory>

namespace omicsd {

struct HtsFileCloser {
  void operator()(htsFile* fp) const {
    if (fp) hts_close(fp);
  }
};
struct BgzfCloser {
  void operator()(BGZF* fp) const {
    if (fp) bgzf_close(fp);
  }
};
struct SamHeaderDeleter {
  void operator()(sam_hdr_t* h) const { sam_hdr_destroy(h); }
};
struct BamRecordDeleter {
  void operator()(bam1_t* b) const { bam_destroy1(b); }
};
struct HtsIndexDeleter {
  void operator()(hts_idx_t* idx) const { hts_idx_destroy(idx); }
};
struct HtsIteratorDeleter {
  void operator()(hts_itr_t* itr) const { hts_itr_destroy(itr); }
};
struct BcfHeaderDeleter {
  void operator()(bcf_hdr_t* h) const { bcf_hdr_destroy(h); }
};
struct BcfRecordDeleter {
  void operator()(bcf1_t* r) const { bcf_destroy(r); }
};
struct TabixIndexDeleter {
  void operator()(tbx_t* t) const { tbx_destroy(t); }
};
struct HtsThreadPoolDeleter {
  void operator()(hts_tpool* p) const { hts_tpool_destroy(p); }
};
struct FaidxDeleter {
  void operator()(faidx_t* fai) const { fai_destroy(fai); }
};

using HtsFilePtr = std::unique_ptr<htsFile, HtsFileCloser>;             // hts_open / sam_open / bcf_open
using BgzfPtr = std::unique_ptr<BGZF, BgzfCloser>;                      // bgzf_open
using SamHeaderPtr = std::unique_ptr<sam_hdr_t, SamHeaderDeleter>;      // sam_hdr_read / sam_hdr_init
using BamRecordPtr = std::unique_ptr<bam1_t, BamRecordDeleter>;         // bam_init1
using HtsIndexPtr = std::unique_ptr<hts_idx_t, HtsIndexDeleter>;        // sam_index_load
using HtsIteratorPtr = std::unique_ptr<hts_itr_t, HtsIteratorDeleter>;  // sam_itr_queryi
using BcfHeaderPtr = std::unique_ptr<bcf_hdr_t, BcfHeaderDeleter>;      // bcf_hdr_read / bcf_hdr_init
using BcfRecordPtr = std::unique_ptr<bcf1_t, BcfRecordDeleter>;         // bcf_init
using TabixIndexPtr = std::unique_ptr<tbx_t, TabixIndexDeleter>;        // tbx_index_load
using FaidxPtr = std::unique_ptr<faidx_t, FaidxDeleter>;                // fai_load
// hts_tpool_init; destroy it only after every file it was attached to is closed (declare the handle
// before those files, or close them first).
using HtsThreadPoolPtr = std::unique_ptr<hts_tpool, HtsThreadPoolDeleter>;

}  // namespace omicsd
