#include "host/align/sam_tags.hpp"

#include <htslib/sam.h>

#include <charconv>

#include "host/common/dna.hpp"

namespace omicsd {

namespace {

void append_number(std::string& out, uint32_t n) {
  char buf[16];
  auto res = std::to_chars(buf, buf + sizeof(buf), n);
  out.append(buf, res.ptr);
}

inline char ref_letter(uint8_t code) { return code < 4 ? kCodeToBase[code] : 'N'; }

}  // namespace

// Walks the CIGAR once, the way samtools calmd does: M/=/X columns compare query and reference (N on
// either side is a mismatch, N vs N included), I adds to NM only, D adds to NM and writes "^" plus
// the deleted reference letters, N (ref skip) advances the reference silently, S/H/P consume no
// reference. The MD string always starts and ends with a number, and a number (possibly 0) separates
// any two of mismatch/deletion.
EditSummary compute_nm_md(const uint8_t* query, const uint8_t* ref, const uint32_t* cigar, uint32_t n_cigar) {
  EditSummary out;
  out.md.reserve(16);
  uint32_t matched = 0;  // matching bases since the last MD letter
  uint64_t qi = 0, ri = 0;
  for (uint32_t k = 0; k < n_cigar; ++k) {
    const uint32_t op = bam_cigar_op(cigar[k]);
    const uint32_t len = bam_cigar_oplen(cigar[k]);
    switch (op) {
      case BAM_CMATCH:
      case BAM_CEQUAL:
      case BAM_CDIFF:
        for (uint32_t j = 0; j < len; ++j, ++qi, ++ri) {
          const uint8_t q = query[qi];
          const uint8_t r = ref[ri];
          if (q == r && q < 4) {
            ++matched;
          } else {
            append_number(out.md, matched);
            out.md.push_back(ref_letter(r));
            matched = 0;
            ++out.nm;
          }
        }
        break;
      case BAM_CINS:
        qi += len;
        out.nm += int32_t(len);
        break;
      case BAM_CDEL:
        append_number(out.md, matched);
        out.md.push_back('^');
        for (uint32_t j = 0; j < len; ++j, ++ri) out.md.push_back(ref_letter(ref[ri]));
        matched = 0;
        out.nm += int32_t(len);
        break;
      case BAM_CREF_SKIP:
        ri += len;
        break;
      case BAM_CSOFT_CLIP:
        qi += len;
        break;
      default:  // H, P and anything else consume neither sequence
        break;
    }
  }
  append_number(out.md, matched);
  return out;
}

}  // namespace omicsd
