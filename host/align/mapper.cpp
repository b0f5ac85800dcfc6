#include "host/align/mapper.hpp"

#include <htslib/sam.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "host/align/mapq.hpp"
#include "host/align/sam_tags.hpp"
#include "host/align/split_hits.hpp"
#include "host/common/dna.hpp"
#include "host/common/error.hpp"
#include "host/common/parallel.hpp"

namespace omicsd {
namespace {

// Alignments scoring at most this are no evidence of another placement (bwa: min seed length).
constexpr int32_t kSubScoreFloor = 20;
constexpr size_t kMaxPlacements = 20;
// Mate rescue tries an end's two best placements and more of those within a mismatch of its best, up to
// this many: among paralog copies the true one is often not the first of several equal placements.
constexpr size_t kMaxRescuesPerEnd = 8;
constexpr int64_t kMaxInsertForModel = 10000;

// Where a backend task came from, to turn its result into a Placement.
struct TaskOrigin {
  uint32_t read;
  int32_t contig;
  int64_t window_begin;  // contig coordinate of target base 0
  uint8_t reverse;
  uint32_t coverage;
};

// Two placements on one strand sharing most of their reference span. The other strand at the same
// place is kept: a fold-back chimera aligns there with another part of the read.
bool overlaps_same_locus(const Placement& a, const Placement& b) {
  if (a.contig != b.contig || a.reverse != b.reverse) return false;
  const int64_t ov = std::min(a.end, b.end) - std::max(a.pos, b.pos);
  if (ov <= 0) return false;
  const int64_t shorter = std::min(a.end - a.pos, b.end - b.pos);
  return ov * 2 >= shorter;
}

// The read aligned at a diagonal at least kMinTandemShift away (another copy of a tandem repeat), not
// the same alignment found again through another chain (same diagonal, or shifted by a small indel).
constexpr int64_t kMinTandemShift = 10;
bool tandem_shift(const Placement& a, const Placement& b) {
  const int64_t da = a.pos - a.qbeg, db = b.pos - b.qbeg;
  return std::llabs(da - db) >= kMinTandemShift;
}

int tandem_cap(const Placement& p) {
  return p.tandem_sub > 0 ? mapq_score_gap(p.objective, p.tandem_sub) : 60;
}

void add_placement(std::vector<Placement>& out, const AlignResultBatch& res, size_t t, const TaskOrigin& o,
                   int32_t min_score) {
  if (res.score[t] == kNegInf || res.score[t] < min_score) return;
  Placement p;
  p.contig = o.contig;
  p.pos = o.window_begin + res.target_begin[t];
  p.end = o.window_begin + res.target_end[t];
  p.reverse = o.reverse;
  p.score = res.score[t];
  p.objective = res.objective[t];
  p.qbeg = res.query_begin[t];
  p.qend = res.query_end[t];
  p.coverage = o.coverage;
  const uint32_t* c = res.cigar.data() + res.cigar_offset[t];
  p.cigar.assign(c, c + res.cigar_length[t]);
  out.push_back(std::move(p));
}

struct ProperPairRule {
  const InsertSizeModel& model;
  // Forward-reverse pairs on one contig whose insert (reverse end - forward start) is in range.
  bool operator()(const Placement& a, const Placement& b, int64_t* insert) const {
    if (a.contig != b.contig || a.reverse == b.reverse) return false;
    const Placement& f = a.reverse ? b : a;
    const Placement& r = a.reverse ? a : b;
    if (f.pos > r.end) return false;
    *insert = r.end - f.pos;
    return *insert >= model.low && *insert <= model.high;
  }
};

std::string cigar_string(const std::vector<uint32_t>& cigar) {
  std::string s;
  for (uint32_t op : cigar) {
    s += std::to_string(op >> 4);
    s += BAM_CIGAR_STR[op & 0xf];
  }
  return s;
}

struct PairChainSelection {
  // Candidate pairs left out whose coverage is within 5% of the best pair's: near-equal placements of
  // the pair never aligned (counted against the MAPQ like the aligned ones).
  uint32_t unseen_pairs = 0;
  // An end left chains unaligned that its seeds support as well as its best, and its mate's candidates
  // were cut at the limit: the mate's true chain may be among those never seen, next to any of the
  // unaligned ones, so pairing adds no confidence. (A mate with all its chains seen pins the pair.)
  bool unaligned_ties = false;
};
// Chooses which of a pair's candidate chains (best first) to align: each end's top max_chains, then
// the chains of the candidate pairs (same contig, facing, outer distance within pair_reach) by their
// summed coverage, up to max_pair_chains more per end.
PairChainSelection select_pair_chains(std::vector<Chain>& a, std::vector<Chain>& b, uint32_t len_a,
                                      uint32_t len_b, uint32_t limit, const SeedParams& params) {
  const bool a_cut = a.size() >= limit, b_cut = b.size() >= limit;
  std::vector<uint8_t> keep_a(a.size(), 0), keep_b(b.size(), 0);
  for (size_t i = 0; i < a.size() && i < params.max_chains; ++i) keep_a[i] = 1;
  for (size_t j = 0; j < b.size() && j < params.max_chains; ++j) keep_b[j] = 1;
  struct Combo {
    uint32_t coverage;
    uint32_t i, j;
  };
  std::vector<Combo> combos;
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < b.size(); ++j) {
      const Chain &x = a[i], &y = b[j];
      if (x.contig != y.contig || x.reverse == y.reverse) continue;
      const Chain& f = x.reverse ? y : x;
      const Chain& r = x.reverse ? x : y;
      const int64_t f_begin = f.diag_min, r_end = r.diag_max + int64_t(x.reverse ? len_a : len_b);
      if (f_begin > r_end || r_end - f_begin > params.pair_reach) continue;
      combos.push_back({x.coverage + y.coverage, uint32_t(i), uint32_t(j)});
    }
  }
  uint32_t unseen = 0;
  if (!combos.empty()) {
    std::stable_sort(combos.begin(), combos.end(), [](const Combo& u, const Combo& v) {
      if (u.coverage != v.coverage) return u.coverage > v.coverage;
      return u.i + u.j < v.i + v.j;
    });
    const uint32_t near = combos.front().coverage - combos.front().coverage / 20;
    uint32_t extra_a = 0, extra_b = 0;
    for (const Combo& c : combos) {
      if (keep_a[c.i] && keep_b[c.j]) continue;
      const uint32_t need_a = keep_a[c.i] ? 0 : 1, need_b = keep_b[c.j] ? 0 : 1;
      if (extra_a + need_a <= params.max_pair_chains && extra_b + need_b <= params.max_pair_chains) {
        keep_a[c.i] = keep_b[c.j] = 1;
        extra_a += need_a;
        extra_b += need_b;
      } else if (c.coverage >= near) {
        ++unseen;
      }
    }
  }
  auto compact = [](std::vector<Chain>& v, const std::vector<uint8_t>& keep) {
    size_t o = 0;
    for (size_t k = 0; k < v.size(); ++k)
      if (keep[k]) v[o++] = v[k];
    v.resize(o);
  };
  PairChainSelection out;
  out.unseen_pairs = unseen;
  for (size_t i = 0; i < a.size() && b_cut; ++i)
    out.unaligned_ties |= !keep_a[i] && a[i].coverage >= a[0].coverage;
  for (size_t j = 0; j < b.size() && a_cut; ++j)
    out.unaligned_ties |= !keep_b[j] && b[j].coverage >= b[0].coverage;
  compact(a, keep_a);
  compact(b, keep_b);
  return out;
}

}  // namespace

Mapper::Mapper(const Reference& ref, const MinimizerIndex& index, AlignBackend& backend,
               const MapperOptions& options)
    : ref_(ref), index_(index), backend_(backend), opt_(options) {}

Mapper::~Mapper() = default;

const uint8_t* Mapper::read_codes(size_t read, bool reverse) const {
  return (reverse ? rev_codes_.data() : fwd_codes_.data()) + offsets_[read];
}

void Mapper::encode(const ReadBatch& batch) {
  const size_t n = batch.size();
  offsets_.assign(batch.base_offsets.begin(), batch.base_offsets.end());
  fwd_codes_.resize(batch.bases.size());
  rev_codes_.resize(batch.bases.size());
  for (size_t i = 0; i < n; ++i) {
    const uint32_t b = offsets_[i], e = offsets_[i + 1], len = e - b;
    for (uint32_t j = 0; j < len; ++j) {
      const uint8_t c = base_code(batch.bases[b + j]);
      fwd_codes_[b + j] = c;
      rev_codes_[e - 1 - j] = complement_code(c);
    }
  }
}

void Mapper::seed_and_extend(const ReadBatch& batch) {
  const size_t n = batch.size();
  std::vector<std::vector<Chain>> chains(n);
  pair_selection_.assign(batch.paired ? n / 2 : 0, PairSelection{});
  if (batch.paired) {
    // Both ends at once: each end's candidates (up to candidate_chains) live only until the pair's
    // chains to align are chosen.
    const uint32_t limit = std::max(opt_.seeding.candidate_chains, opt_.seeding.max_chains);
    parallel_for(n / 2, opt_.threads, 128, [&](size_t begin, size_t end) {
      Seeder seeder(ref_, index_, opt_.seeding);
      std::vector<Chain> a, b;
      for (size_t p = begin; p < end; ++p) {
        const size_t ar = 2 * p, br = 2 * p + 1;
        const uint32_t len_a = offsets_[ar + 1] - offsets_[ar], len_b = offsets_[br + 1] - offsets_[br];
        seeder.find_chains(fwd_codes_.data() + offsets_[ar], len_a, a, limit);
        seeder.find_chains(fwd_codes_.data() + offsets_[br], len_b, b, limit);
        const PairChainSelection sel = select_pair_chains(a, b, len_a, len_b, limit, opt_.seeding);
        pair_selection_[p] = {sel.unseen_pairs, sel.unaligned_ties};
        chains[ar].assign(a.begin(), a.end());
        chains[br].assign(b.begin(), b.end());
      }
    });
  } else {
    parallel_for(n, opt_.threads, 256, [&](size_t begin, size_t end) {
      Seeder seeder(ref_, index_, opt_.seeding);
      for (size_t i = begin; i < end; ++i)
        seeder.find_chains(fwd_codes_.data() + offsets_[i], offsets_[i + 1] - offsets_[i], chains[i]);
    });
  }

  AlignTaskBatch tasks;
  std::vector<TaskOrigin> origin;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t len = offsets_[i + 1] - offsets_[i];
    for (const Chain& c : chains[i]) {
      const Contig& contig = ref_.contigs()[c.contig];
      const int64_t cbeg = int64_t(contig.offset), cend = cbeg + contig.length;
      const int64_t wbeg = std::max(cbeg, c.diag_min - opt_.band_margin);
      const int64_t wend = std::min(cend, c.diag_max + int64_t(len) + opt_.band_margin);
      if (wend <= wbeg) continue;
      const int32_t lo = int32_t(c.diag_min - wbeg - opt_.band_margin);
      const int32_t hi = int32_t(c.diag_max - wbeg + opt_.band_margin);
      tasks.add(read_codes(i, c.reverse), len, ref_.codes() + wbeg, uint32_t(wend - wbeg), lo, hi);
      origin.push_back({uint32_t(i), c.contig, wbeg - cbeg, c.reverse, c.coverage});
    }
  }
  counters_.tasks += tasks.size();
  for (size_t t = 0; t < tasks.size(); ++t)
    counters_.cells +=
        uint64_t(tasks.query_length[t]) * uint64_t(band_width(tasks.diag_lo[t], tasks.diag_hi[t]));
  AlignResultBatch results;
  backend_.align(tasks, opt_.scoring, results);

  hits_.assign(n, ReadHits{});
  for (size_t t = 0; t < tasks.size(); ++t)
    add_placement(hits_[origin[t].read].placements, results, t, origin[t], opt_.min_score);
  parallel_for(n, opt_.threads, 1024, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) finish_hits(i);
  });
}

// Orders a read's placements best first, keeps one per locus, and computes its single-end MAPQ.
void Mapper::finish_hits(size_t read) {
  ReadHits& h = hits_[read];
  auto& p = h.placements;
  std::stable_sort(p.begin(), p.end(), [](const Placement& a, const Placement& b) {
    if (a.objective != b.objective) return a.objective > b.objective;
    if (a.contig != b.contig) return a.contig < b.contig;
    if (a.pos != b.pos) return a.pos < b.pos;
    return a.reverse < b.reverse;
  });
  std::vector<Placement> kept;
  for (auto& x : p) {
    bool dup = false;
    for (auto& k : kept) {
      if (!overlaps_same_locus(k, x)) continue;
      dup = true;
      if (tandem_shift(k, x)) k.tandem_sub = std::max(k.tandem_sub, x.objective);
    }
    if (!dup) kept.push_back(std::move(x));
    if (kept.size() >= kMaxPlacements) break;
  }
  p = std::move(kept);
  h.sub_score = 0;
  h.sub_count = 0;
  h.mapq = 0;
  if (p.empty()) return;
  // Competing placements are those of the same part of the read (bwa: the ones the best masks); a
  // placement of another part is a chimeric read's second part, no evidence against the best.
  const uint32_t len = offsets_[read + 1] - offsets_[read];
  bool any = false;
  for (size_t i = 1; i < p.size(); ++i) {
    if (!same_read_part(p[0], p[i], len)) continue;
    if (!any || p[i].objective > h.sub_score) h.sub_score = p[i].objective;
    any = true;
  }
  // Near-equal hits (bwa's sub_n): other placements within one mismatch of the best. Each copy of a
  // 0.1%-diverged paralog is one more way for the best to be the wrong copy.
  const Placement& best = p[0];
  const int32_t one_mismatch = opt_.scoring.match + opt_.scoring.mismatch;
  for (size_t i = 1; i < p.size(); ++i)
    h.sub_count += same_read_part(best, p[i], len) && p[i].objective >= best.objective - one_mismatch ? 1 : 0;
  const int32_t aligned = int32_t(std::max<int64_t>(best.qend - best.qbeg, best.end - best.pos));
  const int32_t sub = std::max({h.sub_score, best.tandem_sub, kSubScoreFloor});
  h.mapq = mapq_single_end(best.objective, sub, h.sub_count, best.coverage, aligned, opt_.scoring.match,
                           opt_.scoring.mismatch);
}

void Mapper::pair_and_rescue(const ReadBatch& batch) {
  const size_t pairs = batch.size() / 2;
  // 1. Insert size model from this batch's confidently and uniquely placed pairs.
  std::vector<int64_t> inserts;
  for (size_t p = 0; p < pairs; ++p) {
    const ReadHits &a = hits_[2 * p], &b = hits_[2 * p + 1];
    if (a.placements.empty() || b.placements.empty() || a.mapq < 20 || b.mapq < 20) continue;
    const Placement &x = a.placements[0], &y = b.placements[0];
    if (x.contig != y.contig || x.reverse == y.reverse) continue;
    const Placement& f = x.reverse ? y : x;
    const Placement& r = x.reverse ? x : y;
    if (f.pos <= r.end && r.end - f.pos <= kMaxInsertForModel) inserts.push_back(r.end - f.pos);
  }
  insert_model_.estimate(std::move(inserts));
  const ProperPairRule proper{insert_model_};

  // 2. Mate rescue: for the top placements of one end with no properly paired placement of the
  // other, align the other end in the window where its mate should be.
  AlignTaskBatch tasks;
  std::vector<TaskOrigin> origin;
  const int64_t reach = std::min<int64_t>(insert_model_.high, opt_.max_rescue_window);
  for (size_t p = 0; p < pairs; ++p) {
    for (int end = 0; end < 2; ++end) {
      const size_t xr = 2 * p + end, yr = 2 * p + 1 - end;
      const auto& xs = hits_[xr].placements;
      const auto& ys = hits_[yr].placements;
      for (size_t i = 0; i < xs.size() && i < kMaxRescuesPerEnd; ++i) {
        const Placement& x = xs[i];
        if (x.objective + opt_.unpaired_penalty < xs[0].objective) break;
        // Past the first two, only the end's near-equal placements (within a mismatch of its best).
        if (i >= 2 && x.objective + opt_.scoring.match + opt_.scoring.mismatch < xs[0].objective) break;
        bool paired = false;
        int64_t ins;
        for (const auto& y : ys) paired = paired || proper(x, y, &ins);
        if (paired) continue;
        const Contig& contig = ref_.contigs()[x.contig];
        const int64_t clen = contig.length;
        const int64_t wbeg = x.reverse ? std::max<int64_t>(0, x.end - reach) : x.pos;
        const int64_t wend = x.reverse ? x.end : std::min<int64_t>(clen, x.pos + reach);
        const uint32_t mlen = offsets_[yr + 1] - offsets_[yr];
        if (wend - wbeg < int64_t(mlen) / 2 || mlen == 0) continue;
        const uint8_t mate_reverse = x.reverse ? 0 : 1;
        tasks.add(read_codes(yr, mate_reverse), mlen, ref_.codes() + contig.offset + wbeg,
                  uint32_t(wend - wbeg), -int32_t(mlen), int32_t(wend - wbeg));
        origin.push_back({uint32_t(yr), x.contig, wbeg, mate_reverse, 0});
      }
    }
  }
  counters_.rescue_tasks += tasks.size();
  for (size_t t = 0; t < tasks.size(); ++t)
    counters_.cells +=
        uint64_t(tasks.query_length[t]) * uint64_t(band_width(tasks.diag_lo[t], tasks.diag_hi[t]));
  if (tasks.size() > 0) {
    AlignResultBatch results;
    backend_.align(tasks, opt_.scoring, results);
    std::vector<uint8_t> touched(batch.size(), 0);
    for (size_t t = 0; t < tasks.size(); ++t) {
      const size_t before = hits_[origin[t].read].placements.size();
      add_placement(hits_[origin[t].read].placements, results, t, origin[t], opt_.min_score);
      if (hits_[origin[t].read].placements.size() > before) touched[origin[t].read] = 1;
    }
    for (size_t i = 0; i < batch.size(); ++i)
      if (touched[i]) finish_hits(i);
  }

  // 3. Choose the pair: the best properly paired combination unless two unpaired placements beat it
  // by more than the unpaired penalty.
  const int64_t one_mismatch = opt_.scoring.match + opt_.scoring.mismatch;
  parallel_for(pairs, opt_.threads, 512, [&](size_t begin, size_t end) {
    std::vector<int64_t> pair_scores;
    for (size_t p = begin; p < end; ++p) {
      const size_t ar = 2 * p, br = 2 * p + 1;
      const auto& A = hits_[ar].placements;
      const auto& B = hits_[br].placements;
      chosen_[ar] = A.empty() ? -1 : 0;
      chosen_[br] = B.empty() ? -1 : 0;
      final_mapq_[ar] = hits_[ar].mapq;
      final_mapq_[br] = hits_[br].mapq;
      proper_[ar] = proper_[br] = 0;
      if (A.empty() || B.empty()) continue;
      constexpr int64_t kNone = std::numeric_limits<int64_t>::min() / 4;
      int64_t best = kNone, second = kNone, best_dev = 0;
      int bi = -1, bj = -1;
      pair_scores.clear();
      for (size_t i = 0; i < A.size(); ++i) {
        for (size_t j = 0; j < B.size(); ++j) {
          int64_t ins;
          if (!proper(A[i], B[j], &ins)) continue;
          const int64_t s = int64_t(A[i].objective) + B[j].objective;
          pair_scores.push_back(s);
          const int64_t dev = int64_t(std::abs(double(ins) - insert_model_.mean));
          if (s > best || (s == best && dev < best_dev)) {
            second = std::max(second, best);
            best = s;
            best_dev = dev;
            bi = int(i);
            bj = int(j);
          } else {
            second = std::max(second, s);
          }
        }
      }
      const int64_t unpaired = int64_t(A[0].objective) + B[0].objective - opt_.unpaired_penalty;
      if (bi < 0 || best < unpaired) continue;  // keep each end's best, not a proper pair
      chosen_[ar] = bi;
      chosen_[br] = bj;
      proper_[ar] = proper_[br] = 1;
      // The best alternative to the chosen pair: another proper pair, or an end moved elsewhere.
      int64_t alt = second;
      for (size_t i = 0; i < A.size(); ++i)
        if (int(i) != bi)
          alt = std::max(alt, int64_t(A[i].objective) + B[bj].objective - opt_.unpaired_penalty);
      for (size_t j = 0; j < B.size(); ++j)
        if (int(j) != bj)
          alt = std::max(alt, int64_t(A[bi].objective) + B[j].objective - opt_.unpaired_penalty);
      // Other proper pairs within a mismatch of the runner-up (bwa's n_sub; the chosen pair is one of them).
      uint32_t near = 0;
      if (second != kNone) {
        for (const int64_t s : pair_scores) near += s >= second - one_mismatch ? 1 : 0;
        near -= 1;
      }
      near += pair_selection_[p].unseen_pairs;  // as well supported by seeds as the best pair, never aligned
      const int q_pe = pair_selection_[p].unaligned_ties ? 0
                       : alt == kNone                    ? 60
                                                         : mapq_pair(int32_t(best), int32_t(alt), near);
      const int qa = bi == 0 ? hits_[ar].mapq : 0;
      const int qb = bj == 0 ? hits_[br].mapq : 0;
      // The mate cannot tell a tandem repeat's copies apart (both are in its insert range): each end is
      // capped by its own gap to its shifted alignment, as bwa caps by csub.
      final_mapq_[ar] =
          std::min(std::clamp(std::max(qa, std::min(q_pe, qa + 40)), 0, 60), tandem_cap(A[size_t(bi)]));
      final_mapq_[br] =
          std::min(std::clamp(std::max(qb, std::min(q_pe, qb + 40)), 0, 60), tandem_cap(B[size_t(bj)]));
    }
  });
}

void Mapper::build_records(const ReadBatch& batch) {
  const size_t n = batch.size();
  // Chimeric reads get one supplementary record each, after the batch's primary records.
  std::vector<int32_t> supplementary(n, -1);
  std::vector<size_t> supplementary_slot(n, 0);
  size_t total = n;
  for (size_t i = 0; i < n; ++i) {
    if (chosen_[i] < 0) continue;
    supplementary[i] = find_supplementary(hits_[i].placements, chosen_[i], offsets_[i + 1] - offsets_[i]);
    if (supplementary[i] >= 0) supplementary_slot[i] = total++;
  }
  counters_.supplementary += total - n;
  while (records_.size() < total) {
    records_.emplace_back(bam_init1());
    if (!records_.back()) throw Error("out of memory for BAM records");
  }
  records_.resize(total);
  parallel_for(n, opt_.threads, 512, [&](size_t begin, size_t end) {
    std::string seq, qual;
    std::vector<uint8_t> ref_window;
    for (size_t i = begin; i < end; ++i) {
      const Placement* me = chosen_[i] >= 0 ? &hits_[i].placements[chosen_[i]] : nullptr;
      const Placement* mate = nullptr;
      uint16_t flag = 0;
      if (batch.paired) {
        const size_t m = i ^ 1;
        mate = chosen_[m] >= 0 ? &hits_[m].placements[chosen_[m]] : nullptr;
        flag |= BAM_FPAIRED | ((i & 1) ? BAM_FREAD2 : BAM_FREAD1);
        if (proper_[i]) flag |= BAM_FPROPER_PAIR;
        if (!mate) flag |= BAM_FMUNMAP;
        if (mate && mate->reverse) flag |= BAM_FMREVERSE;
      }
      if (!me) flag |= BAM_FUNMAP;
      if (me && me->reverse) flag |= BAM_FREVERSE;

      const std::string_view s = batch.seq(i), q = batch.qual(i);
      const bool has_qual = q.empty() || uint8_t(q[0]) != 0xff;
      seq.assign(s);
      qual.resize(q.size());
      for (size_t j = 0; j < q.size(); ++j) qual[j] = char(uint8_t(q[j]) - 33);
      if (me && me->reverse) {
        seq = reverse_complement(seq);
        std::reverse(qual.begin(), qual.end());
      }
      // Unmapped reads take their mapped mate's coordinates so they sort next to it (SAM convention).
      const Placement* anchor = me ? me : mate;
      const int32_t tid = anchor ? anchor->contig : -1;
      const int64_t pos = anchor ? anchor->pos : -1;
      const Placement* mate_anchor = mate ? mate : (batch.paired ? me : nullptr);
      const int32_t mtid = mate_anchor ? mate_anchor->contig : -1;
      const int64_t mpos = mate_anchor ? mate_anchor->pos : -1;
      int64_t tlen = 0;
      if (me && mate && me->contig == mate->contig) {
        const int64_t left = std::min(me->pos, mate->pos), right = std::max(me->end, mate->end);
        const bool leftmost = me->pos < mate->pos || (me->pos == mate->pos && !(i & 1));
        tlen = leftmost ? right - left : -(right - left);
      }
      const std::string_view name = batch.name(i);
      bam1_t* b = records_[i].get();
      const int rc = bam_set1(b, name.size(), name.data(), flag, tid, pos, uint8_t(me ? final_mapq_[i] : 0),
                              me ? me->cigar.size() : 0, me ? me->cigar.data() : nullptr, mtid, mpos, tlen,
                              seq.size(), seq.data(), has_qual ? qual.data() : nullptr, 64);
      if (rc < 0) throw Error("cannot build BAM record for read " + std::string(name));
      const Placement* sup = supplementary[i] >= 0 ? &hits_[i].placements[size_t(supplementary[i])] : nullptr;
      int sup_mapq = 0;
      EditSummary sup_es;
      if (sup) {
        sup_es = edits_of(i, *sup);
        sup_mapq = supplementary_mapq(i, supplementary[i]);
      }
      if (me) {
        const EditSummary es = edits_of(i, *me);
        bam_aux_update_int(b, "NM", es.nm);
        bam_aux_append(b, "MD", 'Z', int(es.md.size() + 1), reinterpret_cast<const uint8_t*>(es.md.c_str()));
        bam_aux_update_int(b, "AS", me->score);
        if (hits_[i].placements.size() > 1) {
          const auto& ps = hits_[i].placements;
          bam_aux_update_int(b, "XS", ps[chosen_[i] == 0 ? 1 : 0].score);
        }
        const uint32_t len = offsets_[i + 1] - offsets_[i];
        // Only the seeder's top max_chains loci are aligned: when they are all alike there may be more,
        // and bwa lists none when it has more than 5 (-h 5), so a full set is listed only below that.
        const size_t listable =
            std::min<size_t>(5, opt_.seeding.max_chains > 1 ? opt_.seeding.max_chains - 2 : 0);
        const std::vector<int> alts =
            alternative_hits(hits_[i].placements, chosen_[i], supplementary[i], len, listable);
        if (!alts.empty()) {
          std::string xa;
          for (const int a : alts) {
            const Placement& alt = hits_[i].placements[size_t(a)];
            xa += xa_entry(ref_, alt, edits_of(i, alt).nm);
          }
          bam_aux_append(b, "XA", 'Z', int(xa.size() + 1), reinterpret_cast<const uint8_t*>(xa.c_str()));
        }
        if (sup) {
          const std::string sa = sa_entry(ref_, *sup, sup_mapq, sup_es.nm);
          bam_aux_append(b, "SA", 'Z', int(sa.size() + 1), reinterpret_cast<const uint8_t*>(sa.c_str()));
        }
      }
      if (mate) {
        const std::string mc = cigar_string(mate->cigar);
        bam_aux_append(b, "MC", 'Z', int(mc.size() + 1), reinterpret_cast<const uint8_t*>(mc.c_str()));
        if (opt_.mate_score_tag && me) {
          const std::string_view mq = batch.qual(i ^ 1);
          int64_t mate_score = 0;
          if (mq.empty() || uint8_t(mq[0]) != 0xff)
            for (const char c : mq)
              if (uint8_t(c) - 33 >= 15) mate_score += uint8_t(c) - 33;
          bam_aux_update_int(b, "ms", mate_score);
        }
      }
      const std::string* rg = opt_.read_group_id.empty() ? nullptr : &opt_.read_group_id;
      if (!rg && !batch.read_groups.empty() && batch.read_groups[i] >= 0 &&
          size_t(batch.read_groups[i]) < opt_.read_group_ids.size())
        rg = &opt_.read_group_ids[size_t(batch.read_groups[i])];
      if (rg)
        bam_aux_append(b, "RG", 'Z', int(rg->size() + 1), reinterpret_cast<const uint8_t*>(rg->c_str()));
      if (sup) {
        // The supplementary record: hard-clipped as bwa mem writes it, the mate fields of the primary,
        // and SA pointing back to the primary.
        bam1_t* s = records_[supplementary_slot[i]].get();
        const std::vector<uint32_t> cigar = hard_clipped(sup->cigar);
        std::string sseq(batch.seq(i)), squal = qual;
        if (me->reverse) std::reverse(squal.begin(), squal.end());  // back to sequencing orientation
        if (sup->reverse) {
          sseq = reverse_complement(sseq);
          std::reverse(squal.begin(), squal.end());
        }
        const uint32_t lead =
            bam_cigar_op(cigar.front()) == BAM_CHARD_CLIP ? bam_cigar_oplen(cigar.front()) : 0;
        const uint32_t trail = cigar.size() > 1 && bam_cigar_op(cigar.back()) == BAM_CHARD_CLIP
                                   ? bam_cigar_oplen(cigar.back())
                                   : 0;
        sseq = sseq.substr(lead, sseq.size() - lead - trail);
        if (has_qual && squal.size() == batch.seq(i).size())
          squal = squal.substr(lead, squal.size() - lead - trail);
        uint16_t sflag = uint16_t((flag & ~(BAM_FREVERSE | BAM_FUNMAP)) | BAM_FSUPPLEMENTARY);
        if (sup->reverse) sflag |= BAM_FREVERSE;
        int64_t stlen = 0;
        if (mate && sup->contig == mate->contig) {
          const int64_t left = std::min(sup->pos, mate->pos), right = std::max(sup->end, mate->end);
          stlen =
              sup->pos < mate->pos || (sup->pos == mate->pos && !(i & 1)) ? right - left : -(right - left);
        }
        if (bam_set1(s, name.size(), name.data(), sflag, sup->contig, sup->pos, uint8_t(sup_mapq),
                     cigar.size(), cigar.data(), mtid, mpos, stlen, sseq.size(), sseq.data(),
                     has_qual ? squal.data() : nullptr, 64) < 0)
          throw Error("cannot build the supplementary BAM record for read " + std::string(name));
        bam_aux_update_int(s, "NM", sup_es.nm);
        bam_aux_append(s, "MD", 'Z', int(sup_es.md.size() + 1),
                       reinterpret_cast<const uint8_t*>(sup_es.md.c_str()));
        bam_aux_update_int(s, "AS", sup->score);
        const std::string sa = sa_entry(ref_, *me, final_mapq_[i], edits_of(i, *me).nm);
        bam_aux_append(s, "SA", 'Z', int(sa.size() + 1), reinterpret_cast<const uint8_t*>(sa.c_str()));
        if (mate) {
          const std::string mc = cigar_string(mate->cigar);
          bam_aux_append(s, "MC", 'Z', int(mc.size() + 1), reinterpret_cast<const uint8_t*>(mc.c_str()));
        }
        if (rg)
          bam_aux_append(s, "RG", 'Z', int(rg->size() + 1), reinterpret_cast<const uint8_t*>(rg->c_str()));
      }
    }
  });
}

EditSummary Mapper::edits_of(size_t read, const Placement& p) const {
  const uint8_t* rq = read_codes(read, p.reverse);
  const uint8_t* rr = ref_.codes() + ref_.contigs()[size_t(p.contig)].offset + p.pos;
  return compute_nm_md(rq, rr, p.cigar.data(), uint32_t(p.cigar.size()));
}

// MAPQ of a supplementary part: its score against the best other placement of the same read part.
int Mapper::supplementary_mapq(size_t read, int32_t sup) const {
  const auto& ps = hits_[read].placements;
  const Placement& s = ps[size_t(sup)];
  const uint32_t len = offsets_[read + 1] - offsets_[read];
  int32_t sub = 0;
  uint32_t sub_count = 0;
  for (size_t j = 0; j < ps.size(); ++j) {
    if (int32_t(j) == sup || int32_t(j) == chosen_[read] || !same_read_part(s, ps[j], len)) continue;
    if (ps[j].objective > sub)
      sub = ps[j].objective, sub_count = 0;
    else if (ps[j].objective == sub)
      ++sub_count;
  }
  const int32_t aligned = int32_t(std::max<int64_t>(s.qend - s.qbeg, s.end - s.pos));
  return mapq_single_end(s.objective, std::max(sub, kSubScoreFloor), sub_count, s.coverage, aligned,
                         opt_.scoring.match, opt_.scoring.mismatch);
}

const std::vector<BamRecordPtr>& Mapper::map_batch(const ReadBatch& batch) {
  const size_t n = batch.size();
  encode(batch);
  seed_and_extend(batch);
  chosen_.assign(n, -1);
  proper_.assign(n, 0);
  final_mapq_.assign(n, 0);
  if (batch.paired) {
    pair_and_rescue(batch);
  } else {
    for (size_t i = 0; i < n; ++i) {
      chosen_[i] = hits_[i].placements.empty() ? -1 : 0;
      final_mapq_[i] = hits_[i].mapq;
    }
  }
  build_records(batch);
  counters_.reads += n;
  for (size_t i = 0; i < n; ++i) {
    counters_.mapped += chosen_[i] >= 0;
    counters_.proper += proper_[i];
  }
  return records_;
}

}  // namespace omicsd
