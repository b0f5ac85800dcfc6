#include "host/align/duplicate_marking.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/error.hpp"

namespace omicsd {
namespace {

// Orientation and end codes as samtools markdup writes them into its keys.
constexpr int32_t kFF = 2, kRR = 3, kFR = 5, kRF = 7, kLeft = 11, kRight = 13;
constexpr int kMinQuality = 15;

bool is_clip(uint32_t op) { return op == BAM_CSOFT_CLIP || op == BAM_CHARD_CLIP; }

// 1-based unclipped start and end of the record itself.
int64_t unclipped_start(const bam1_t* b) {
  const uint32_t* c = bam_get_cigar(b);
  int64_t clipped = 0;
  for (uint32_t i = 0; i < b->core.n_cigar && is_clip(bam_cigar_op(c[i])); ++i)
    clipped += bam_cigar_oplen(c[i]);
  return b->core.pos - clipped + 1;
}
int64_t unclipped_end(const bam1_t* b) {
  const uint32_t* c = bam_get_cigar(b);
  int64_t clipped = 0;
  for (int64_t i = int64_t(b->core.n_cigar) - 1; i >= 0 && is_clip(bam_cigar_op(c[i])); --i)
    clipped += bam_cigar_oplen(c[i]);
  return bam_endpos(b) + clipped;
}

// The mate's unclipped start and end from its position and its CIGAR text (MC tag).
struct MateSpan {
  int64_t start, end;
};
MateSpan mate_span(int64_t mpos, const char* cigar) {
  int64_t leading = 0, ref = 0;
  bool in_leading = true;
  for (const char* p = cigar; *p && *p != '*';) {
    char* after = nullptr;
    long n = 1;
    if (*p >= '0' && *p <= '9') {
      n = std::strtol(p, &after, 10);
      p = after;
    }
    switch (*p) {
      case 'M':
      case 'D':
      case 'N':
      case '=':
      case 'X':
        ref += n;
        in_leading = false;
        break;
      case 'S':
      case 'H':
        if (in_leading)
          leading += n;
        else
          ref += n;
        break;
      default:
        break;
    }
    if (*p) ++p;
  }
  return {mpos - leading + 1, mpos + ref};
}

bool paired_with_mapped_mate(const bam1_t* b) {
  return (b->core.flag & BAM_FPAIRED) && !(b->core.flag & BAM_FMUNMAP);
}

std::string qname(const bam1_t* b) { return bam_get_qname(b); }

DuplicateMarker::Key single_key(const bam1_t* b) {
  DuplicateMarker::Key k;
  k.single = true;
  k.this_ref = b->core.tid + 1;
  if (bam_is_rev(b)) {
    k.this_coord = unclipped_end(b);
    k.orientation = kRR;
  } else {
    k.this_coord = unclipped_start(b);
    k.orientation = kFF;
  }
  return k;
}

// samtools markdup's template-mode pair key, case for case.
DuplicateMarker::Key pair_key(const bam1_t* b) {
  const uint8_t* mc = bam_aux_get(b, "MC");
  const char* cigar = mc ? bam_aux2Z(mc) : nullptr;
  if (!cigar)
    throw Error("duplicate marking: read " + qname(b) + " has a mapped mate but no MC tag (mate CIGAR)");
  const int32_t this_ref = b->core.tid + 1, other_ref = b->core.mtid + 1;
  int64_t this_coord = unclipped_start(b), this_end = unclipped_end(b);
  const MateSpan m = mate_span(b->core.mpos, cigar);
  int64_t other_coord = m.start, other_end = m.end;
  const bool rev = bam_is_rev(b), mrev = bam_is_mrev(b), read1 = b->core.flag & BAM_FREAD1;

  bool leftmost;
  if (this_ref != other_ref)
    leftmost = this_ref < other_ref;
  else if (rev == mrev)
    leftmost = !rev ? this_coord <= other_coord : this_end <= other_end;
  else
    leftmost = rev ? this_end <= other_coord : this_coord <= other_end;

  int32_t orientation;
  if (leftmost) {
    if (rev == mrev) {
      other_coord = other_end;
      orientation = !rev ? (read1 ? kFF : kRR) : (read1 ? kRR : kFF);
    } else if (!rev) {
      orientation = kFR;
      other_coord = other_end;
    } else {
      orientation = kRF;
      this_coord = this_end;
    }
  } else {
    if (rev == mrev) {
      this_coord = this_end;
      orientation = !rev ? (read1 ? kRR : kFF) : (read1 ? kFF : kRR);
    } else if (!rev) {
      orientation = kRF;
      other_coord = other_end;
    } else {
      orientation = kFR;
      this_coord = this_end;
    }
  }
  DuplicateMarker::Key k;
  k.single = false;
  k.this_ref = this_ref;
  k.this_coord = this_coord;
  k.other_ref = other_ref;
  k.other_coord = other_coord;
  k.leftmost = leftmost ? kLeft : kRight;
  k.orientation = orientation;
  return k;
}

int64_t mate_score(const bam1_t* b) {
  const uint8_t* ms = bam_aux_get(b, "ms");
  if (!ms) throw Error("duplicate marking: read " + qname(b) + " has no ms tag (mate score)");
  return bam_aux2i(ms);
}

// Tile prefix and x, y of an Illumina read name, as samtools markdup reads them (colon-separated forms
// with 3, 4, 6 or 7 colons). False when the name has none.
struct TileXY {
  size_t prefix_len;
  long x, y;
};
bool tile_xy(const char* name, TileXY& out) {
  int sep = 0;
  size_t xpos = 0, ypos = 0, pos = 0;
  for (; name[pos]; ++pos) {
    if (name[pos] != ':') continue;
    ++sep;
    if (sep == 2)
      xpos = pos + 1;
    else if (sep == 3)
      ypos = pos + 1;
    else if (sep == 4)
      xpos = ypos, ypos = pos + 1;
    else if (sep == 5)
      xpos = pos + 1;
    else if (sep == 6)
      ypos = pos + 1;
  }
  if (!(sep == 3 || sep == 4 || sep == 6 || sep == 7)) return false;
  char* end = nullptr;
  out.x = std::strtol(name + xpos, &end, 10);
  if (end == name + xpos) return false;
  out.y = std::strtol(name + ypos, &end, 10);
  if (end == name + ypos) return false;
  out.prefix_len = xpos;
  return true;
}

// samtools' natural order of read names (samtools 1.16 sort -n, strnum_cmp): digit runs compare as
// numbers, leading zeros ignored (then the longer zero run sorts later).
int natural_name_compare(const char* a_, const char* b_) {
  const auto* a = reinterpret_cast<const unsigned char*>(a_);
  const auto* b = reinterpret_cast<const unsigned char*>(b_);
  const unsigned char *pa = a, *pb = b;
  auto digit = [](unsigned char c) { return c >= '0' && c <= '9'; };
  while (*pa && *pb) {
    if (digit(*pa) && digit(*pb)) {
      while (*pa == '0') ++pa;
      while (*pb == '0') ++pb;
      while (digit(*pa) && digit(*pb) && *pa == *pb) ++pa, ++pb;
      if (digit(*pa) && digit(*pb)) {
        int i = 0;
        while (digit(pa[i]) && digit(pb[i])) ++i;
        return digit(pa[i]) ? 1 : digit(pb[i]) ? -1 : int(*pa) - int(*pb);
      }
      if (digit(*pa)) return 1;
      if (digit(*pb)) return -1;
      if (pa - a != pb - b) return pa - a < pb - b ? 1 : -1;
    } else {
      if (*pa != *pb) return int(*pa) - int(*pb);
      ++pa, ++pb;
    }
  }
  return *pa ? 1 : *pb ? -1 : 0;
}

bool optical(const bam1_t* original, const bam1_t* duplicate, int64_t distance) {
  TileXY o{}, d{};
  const char* on = bam_get_qname(original);
  const char* dn = bam_get_qname(duplicate);
  if (!tile_xy(on, o) || !tile_xy(dn, d)) return false;
  if (std::strncmp(on, dn, o.prefix_len) != 0) return false;
  return std::labs(o.x - d.x) <= distance && std::labs(o.y - d.y) <= distance;
}

}  // namespace

int64_t duplicate_score(const bam1_t* b) {
  const uint8_t* q = bam_get_qual(b);
  int64_t score = 0;
  for (int32_t i = 0; i < b->core.l_qseq; ++i)
    if (q[i] >= kMinQuality) score += q[i];
  return score;
}

bool DuplicateMarker::Key::operator==(const Key& o) const {
  if (this_coord != o.this_coord || orientation != o.orientation || this_ref != o.this_ref ||
      single != o.single)
    return false;
  return single || (other_coord == o.other_coord && leftmost == o.leftmost && other_ref == o.other_ref);
}

size_t DuplicateMarker::KeyHash::operator()(const Key& k) const {
  uint64_t h = uint64_t(k.this_ref) * 0x9E3779B97F4A7C15ULL ^ uint64_t(k.this_coord) * 0xC2B2AE3D27D4EB4FULL ^
               uint64_t(k.orientation);
  if (!k.single)
    h ^= (uint64_t(k.other_ref) * 0x165667B19E3779F9ULL) ^ (uint64_t(k.other_coord) * 0x27D4EB2F165667C5ULL) ^
         uint64_t(k.leftmost) << 8;
  return size_t(h ^ (h >> 29));
}

DuplicateMarker::DuplicateMarker(DuplicateMarkingOptions options) : opt_(options) {}

DuplicateMarker::~DuplicateMarker() {
  for (Held& h : held_) bam_destroy1(h.b);
}

DuplicateMarker::Held& DuplicateMarker::at(int64_t seq) {
  if (seq < int64_t(first_seq_) || seq >= int64_t(first_seq_ + held_.size()))
    throw std::logic_error(
        "duplicate marking: a chained record was handed back before its chain was checked");
  return held_[size_t(uint64_t(seq) - first_seq_)];
}

// Appends the chain starting at `tail` after the last record of the chain starting at `head`.
void DuplicateMarker::append_chain(int64_t head, int64_t tail) {
  int64_t last = head;
  while (at(last).next_duplicate >= 0) last = at(last).next_duplicate;
  at(last).next_duplicate = tail;
}

void DuplicateMarker::mark(Held& original, Held& duplicate, bool pair) {
  duplicate.b->core.flag |= BAM_FDUP;
  if (opt_.optical_distance > 0) {
    const bool is_optical = optical(original.b, duplicate.b, opt_.optical_distance);
    // samtools' dt tag: SQ for optical (sequencing) duplicates, LB for library ones.
    if (bam_aux_update_str(duplicate.b, "dt", 3, is_optical ? "SQ" : "LB") < 0)
      throw Error("duplicate marking: cannot tag read " + qname(duplicate.b));
    if (is_optical) ++(pair ? stats_.duplicate_pair_optical : stats_.duplicate_single_optical);
  }
}

void DuplicateMarker::push(const bam1_t* record, const Emit& emit) {
  Held h;
  h.b = bam_dup1(record);
  if (!h.b) throw Error("duplicate marking: out of memory");
  h.pos = h.b->core.pos;
  const int64_t seq = int64_t(first_seq_ + held_.size());
  held_.push_back(h);
  Held& in = held_.back();

  const uint16_t exclude = BAM_FSECONDARY | BAM_FSUPPLEMENTARY | BAM_FUNMAP | BAM_FQCFAIL;
  if (in.b->core.flag & exclude) {
    ++stats_.excluded;
  } else if (paired_with_mapped_mate(in.b)) {
    ++stats_.examined;
    ++stats_.paired;
    const Key pk = pair_key(in.b), sk = single_key(in.b);
    in.pos = sk.this_coord;
    // Against reads without a mapped mate: such a read at this position is always the duplicate.
    auto [s, s_new] = singles_.try_emplace(sk, seq);
    if (s_new) {
      in.owns_single_key = true;
      in.single_key = sk;
    } else if (!paired_with_mapped_mate(at(int64_t(s->second)).b)) {
      Held& single = at(int64_t(s->second));
      if (chains()) in.next_duplicate = int64_t(s->second);
      s->second = uint64_t(seq);
      mark(in, single, false);
      ++stats_.duplicate_single;
    }
    auto [p, p_new] = pairs_.try_emplace(pk, seq);
    if (p_new) {
      in.owns_pair_key = true;
      in.pair_key = pk;
    } else {
      const int64_t old_seq = int64_t(p->second);
      Held& old = at(old_seq);
      const int64_t old_score = duplicate_score(old.b) + mate_score(old.b);
      const int64_t new_score = duplicate_score(in.b) + mate_score(in.b);
      int64_t tie = 0;
      if (new_score == old_score) tie = std::strcmp(bam_get_qname(in.b), bam_get_qname(old.b)) < 0 ? 1 : -1;
      if (new_score + tie > old_score) {
        if (chains()) {
          if (in.next_duplicate >= 0)
            append_chain(in.next_duplicate, old_seq);
          else
            in.next_duplicate = old_seq;
        }
        p->second = uint64_t(seq);
        mark(in, old, true);
      } else {
        if (chains()) {
          if (old.next_duplicate >= 0) {
            if (in.next_duplicate >= 0) append_chain(old.next_duplicate, in.next_duplicate);
            in.next_duplicate = old.next_duplicate;
          }
          old.next_duplicate = seq;
        }
        mark(old, in, true);
      }
      ++stats_.duplicate_pair;
    }
  } else {
    ++stats_.examined;
    ++stats_.single;
    const Key sk = single_key(in.b);
    in.pos = sk.this_coord;
    auto [s, s_new] = singles_.try_emplace(sk, seq);
    if (s_new) {
      in.owns_single_key = true;
      in.single_key = sk;
    } else {
      const int64_t old_seq = int64_t(s->second);
      Held& old = at(old_seq);
      const int64_t old_score = duplicate_score(old.b), new_score = duplicate_score(in.b);
      // samtools keeps the first of two equal singles in its sort order (position, then natural name).
      const bool new_first = old.b->core.pos == in.b->core.pos &&
                             natural_name_compare(bam_get_qname(in.b), bam_get_qname(old.b)) < 0;
      if (paired_with_mapped_mate(old.b)) {
        if (chains()) {
          if (old.next_duplicate >= 0) in.next_duplicate = old.next_duplicate;
          old.next_duplicate = seq;
        }
        mark(old, in, false);
      } else if (new_score > old_score || (new_score == old_score && new_first)) {
        if (chains()) in.next_duplicate = old_seq;
        s->second = uint64_t(seq);
        mark(in, old, false);
      } else {
        if (chains()) {
          if (old.next_duplicate >= 0) in.next_duplicate = old.next_duplicate;
          old.next_duplicate = seq;
        }
        mark(old, in, false);
      }
      ++stats_.duplicate_single;
    }
  }
  release(emit, record->core.tid, record->core.pos);
}

bool DuplicateMarker::releasable(const Held& h, int32_t tid, int64_t pos) const {
  return !(h.pos + opt_.max_read_length > pos && h.b->core.tid == tid && (tid != -1 || pos != -1));
}

// The duplicates of one original (its chain), checked as samtools does once the original leaves the
// window: first each against the original, then against each other in x order.
void DuplicateMarker::check_chain(Held& original) {
  struct Check {
    Held* h;
    long x = -1, y = -1;
    size_t prefix = 0;
    bool opt = false, paired = false;
    int64_t score = 0;
  };
  std::vector<Check> list;
  TileXY o{};
  const bool coords = tile_xy(bam_get_qname(original.b), o);
  for (int64_t s = original.next_duplicate; s >= 0; s = at(s).next_duplicate) {
    Held& d = at(s);
    d.chain_checked = true;
    if (!coords) continue;
    Check c{&d};
    c.paired = paired_with_mapped_mate(d.b);
    const uint8_t* dt = bam_aux_get(d.b, "dt");
    const char* type = dt ? bam_aux2Z(dt) : nullptr;
    c.opt = type && std::strcmp(type, "SQ") == 0;
    TileXY t{};
    bool is_opt = false;
    if (tile_xy(bam_get_qname(d.b), t)) {
      is_opt = std::strncmp(bam_get_qname(original.b), bam_get_qname(d.b), o.prefix_len) == 0 &&
               std::labs(o.x - t.x) <= opt_.optical_distance && std::labs(o.y - t.y) <= opt_.optical_distance;
      c.x = t.x, c.y = t.y, c.prefix = t.prefix_len;
    }
    if (!c.opt && is_opt) retag_optical(d, c.paired), c.opt = true;
    c.score = duplicate_score(d.b) + (c.paired ? mate_score(d.b) : 0);
    list.push_back(c);
  }
  original.next_duplicate = -1;
  if (!coords || list.empty()) return;
  std::stable_sort(list.begin(), list.end(), [](const Check& a, const Check& b) { return a.x < b.x; });
  for (size_t cur = 0; cur + 1 < list.size(); ++cur) {
    Check& a = list[cur];
    const char* an = bam_get_qname(a.h->b);
    for (size_t k = cur + 1; k < list.size() && list[k].x - a.x <= opt_.optical_distance; ++k) {
      Check& b = list[k];
      if (a.opt && b.opt) continue;
      if (std::labs(a.y - b.y) > opt_.optical_distance) continue;
      if (std::strncmp(an, bam_get_qname(b.h->b), a.prefix) != 0) continue;
      bool b_is_dup;
      if (a.paired != b.paired) {
        b_is_dup = !b.paired;
      } else {
        int64_t b_score = b.score;
        if (a.score == b_score) b_score += std::strcmp(bam_get_qname(b.h->b), an) < 0 ? 1 : -1;
        b_is_dup = a.score > b_score;
      }
      Check& loser = b_is_dup ? b : a;
      if (!loser.opt) retag_optical(*loser.h, loser.paired), loser.opt = true;
    }
  }
}

void DuplicateMarker::retag_optical(Held& h, bool paired) {
  if (bam_aux_update_str(h.b, "dt", 3, "SQ") < 0)
    throw Error("duplicate marking: cannot tag read " + qname(h.b));
  ++(paired ? stats_.duplicate_pair_optical : stats_.duplicate_single_optical);
}

// Checks the chains of the originals that are about to leave the window (or of all, at the end).
void DuplicateMarker::check_chains(bool whole_window, int32_t tid, int64_t pos) {
  for (size_t i = 0; i < held_.size(); ++i) {
    Held& h = held_[i];
    if (!whole_window && !releasable(h, tid, pos)) break;
    if (!(h.b->core.flag & BAM_FDUP) && h.next_duplicate >= 0) check_chain(h);
  }
}

// Hands back the records that no later read can share a key with: samtools' moving window of
// max_read_length behind the current position (everything once the unmapped tail is reached). With
// optical checks a duplicate also waits until its original's chain has been checked.
void DuplicateMarker::release(const Emit& emit, int32_t tid, int64_t pos) {
  bool checked = false;
  const uint16_t exclude = BAM_FSECONDARY | BAM_FSUPPLEMENTARY | BAM_FUNMAP | BAM_FQCFAIL;
  while (!held_.empty()) {
    Held& f = held_.front();
    if (!releasable(f, tid, pos)) break;
    if (chains() && !checked) {
      check_chains(false, tid, pos);
      checked = true;
    }
    if (chains() && (f.b->core.flag & BAM_FDUP) && !f.chain_checked && !(f.b->core.flag & exclude)) break;
    pop_front(emit);
  }
}

void DuplicateMarker::pop_front(const Emit& emit) {
  Held& f = held_.front();
  if (f.owns_pair_key) pairs_.erase(f.pair_key);
  if (f.owns_single_key) singles_.erase(f.single_key);
  std::unique_ptr<bam1_t, void (*)(bam1_t*)> b(f.b, bam_destroy1);
  f.b = nullptr;
  held_.pop_front();
  ++first_seq_;
  emit(b.get());
}

void DuplicateMarker::flush(const Emit& emit) {
  if (chains()) check_chains(true, -1, -1);
  while (!held_.empty()) pop_front(emit);
  pairs_.clear();
  singles_.clear();
}

}  // namespace omicsd
