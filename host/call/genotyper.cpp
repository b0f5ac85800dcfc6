#include "host/call/genotyper.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_set>

#include "host/call/call_filters.hpp"
#include "host/call/genotype_likelihoods.hpp"
#include "host/call/ploidy_genotypes.hpp"
#include "host/call/repeat_context.hpp"
#include "host/common/dna.hpp"
#include "host/common/parallel.hpp"

namespace omicsd {
namespace {

constexpr int kMinSegment = 20;       // trimmed reads shorter than this inform nothing
constexpr double kInformative = 0.2;  // log10 margin for a read to count towards an allele's AD

// A window's haplotypes and the reads scored against them, located in the shared HMM batch.
struct WindowWork {
  std::vector<uint32_t> masks;  // haplotype h carries candidates whose bit is set in masks[h]
  uint32_t first_hap = 0;
  std::vector<uint32_t> reads;                     // batch read indices
  std::vector<uint8_t> mapq;                       // per read
  std::vector<std::pair<int64_t, int64_t>> spans;  // reference span of each trimmed read
  std::vector<uint8_t> reverse;                    // per read: on the reverse strand
  std::vector<uint8_t> mismatch_heavy;             // per read: more than kMismatchHeavyEvents differences
  size_t batch = 0;                                // which gap-open batch holds its pairs
  size_t first_pair = 0;                           // results: pair first_pair + r * n_haps + h
};

// Differences of a whole read from the reference: mismatches at bases of quality >= 20, indel
// openings and soft clips. Mismatch-heavy reads are the mark of a misplaced read or of a haplotype
// the alignment cannot represent (a long repeat expansion): evidence to distrust, not to count.
int reference_differences(const EvidenceRead& r, const uint8_t* rc) {
  int events = 0;
  int64_t rp = r.pos;
  size_t qp = 0;
  for (uint32_t c : r.cigar) {
    const uint32_t op = c & 0xf, len = c >> 4;
    if (op == 0 || op == 7 || op == 8) {
      for (uint32_t i = 0; i < len; ++i, ++rp, ++qp)
        events += r.bases[qp] < 4 && rc[rp] < 4 && r.bases[qp] != rc[rp] && r.quals[qp] >= 20;
    } else if (op == 1 || op == 4) {
      ++events;
      qp += len;
    } else if (op == 2) {
      ++events;
      rp += len;
    } else if (op == 3) {
      rp += len;
    }
  }
  return events;
}

// The gap-open penalty a window is scored with: that of its most repetitive candidate's context.
int window_gap_open(const uint8_t* rc, int64_t contig_length, const CallWindow& w) {
  int g = kUniqueGapOpen;
  for (const Candidate& c : w.candidates)
    g = std::min(g, repeat_gap_open(find_indel_repeat_context(rc, contig_length, c.allele.pos)));
  return g;
}

// Reads with MAPQ 0 overlapping [b, e): spans sorted by start, longest_span the longest of them.
int count_overlapping(const std::vector<std::pair<int64_t, int64_t>>& spans, int64_t longest_span, int64_t b,
                      int64_t e) {
  auto it = std::lower_bound(spans.begin(), spans.end(), std::pair<int64_t, int64_t>(b - longest_span, 0));
  int n = 0;
  for (; it != spans.end() && it->first < e; ++it) n += it->second > b;
  return n;
}

// The part of a read aligned inside [wb, we), soft clips excluded. Returns false when too short.
bool trim_read(const EvidenceRead& r, int64_t wb, int64_t we, size_t* qs, size_t* qe, int64_t* rs,
               int64_t* re) {
  int64_t rp = r.pos;
  size_t qp = 0;
  bool started = false;
  *qs = *qe = 0;
  for (uint32_t c : r.cigar) {
    const uint32_t op = c & 0xf, len = c >> 4;
    if (op == 0 || op == 7 || op == 8) {
      for (uint32_t i = 0; i < len; ++i, ++rp, ++qp) {
        if (rp < wb || rp >= we) continue;
        if (!started) {
          started = true;
          *qs = qp;
          *rs = rp;
        }
        *qe = qp + 1;
        *re = rp + 1;
      }
    } else if (op == 1) {
      if (started && rp < we) *qe = qp + len;
      qp += len;
    } else if (op == 2 || op == 3) {
      rp += len;
    } else if (op == 4) {
      qp += len;
    }
  }
  return started && *qe - *qs >= size_t(kMinSegment);
}

// Applies the candidates selected by `mask` to the reference window. Indels share their first
// (padding) base with the reference, which lets an SNV and an indel anchored on the same base combine.
std::vector<uint8_t> build_haplotype(const uint8_t* rc, const CallWindow& w, uint32_t mask) {
  std::vector<uint8_t> h;
  int64_t cursor = w.begin;
  for (size_t i = 0; i < w.candidates.size(); ++i) {
    if (!(mask >> i & 1)) continue;
    const Allele& a = w.candidates[i].allele;
    for (; cursor < a.pos; ++cursor) h.push_back(rc[cursor]);
    const size_t skip = size_t(cursor - a.pos);
    for (size_t k = skip; k < a.alt.size(); ++k) h.push_back(base_code(a.alt[k]));
    cursor = std::max(cursor, a.pos + int64_t(a.ref.size()));
  }
  for (; cursor < w.end; ++cursor) h.push_back(rc[cursor]);
  return h;
}

bool mask_consistent(const CallWindow& w, uint32_t mask) {
  for (size_t i = 0; i < w.candidates.size(); ++i) {
    if (!(mask >> i & 1)) continue;
    for (size_t j = i + 1; j < w.candidates.size(); ++j)
      if ((mask >> j & 1) && alleles_conflict(w.candidates[i].allele, w.candidates[j].allele)) return false;
  }
  return true;
}

}  // namespace

std::vector<CallWindow> make_windows(const Reference& ref, const std::vector<Candidate>& sorted,
                                     const CallParams& p) {
  std::vector<CallWindow> out;
  int64_t group_end = -1;
  for (const Candidate& c : sorted) {
    const bool join = !out.empty() && out.back().contig == c.allele.contig &&
                      c.allele.pos <= group_end + p.cluster_distance &&
                      int(out.back().candidates.size()) < p.max_cluster_alleles;
    if (!join) {
      out.emplace_back();
      out.back().contig = c.allele.contig;
      group_end = -1;
    }
    out.back().candidates.push_back(c);
    group_end = std::max(group_end, c.allele.core_end());
  }
  for (CallWindow& w : out) {
    const int64_t len = ref.contigs()[size_t(w.contig)].length;
    int64_t first = w.candidates.front().allele.pos, last = 0;
    for (const Candidate& c : w.candidates)
      last = std::max(last, c.allele.pos + int64_t(c.allele.ref.size()));
    w.begin = std::max<int64_t>(0, first - p.window_pad);
    w.end = std::min<int64_t>(len, last + p.window_pad);
  }
  return out;
}

void WindowGenotyper::genotype(const std::vector<CallWindow>& windows, const std::vector<EvidenceRead>& reads,
                               std::vector<VcfRecord>& out,
                               const std::vector<std::pair<int64_t, int64_t>>& mapq_zero_spans, int ploidy) {
  if (windows.empty()) return;
  // One batch per gap-open penalty (repeat context): each backend call has one PairHmmParams, so
  // every backend computes exactly what it computes for a single batch. Batches in penalty order.
  std::vector<HmmTaskBatch> batches;
  std::vector<int> batch_gap_open;
  std::map<int, size_t> batch_of_gap_open;
  std::vector<WindowWork> work(windows.size());
  size_t read_cursor = 0;  // reads are sorted by start; windows by position
  std::vector<uint8_t> quals;
  for (size_t wi = 0; wi < windows.size(); ++wi) {
    const CallWindow& w = windows[wi];
    WindowWork& ww = work[wi];
    const uint8_t* rc = ref_.codes() + ref_.contigs()[size_t(w.contig)].offset;
    const int gap_open = window_gap_open(rc, ref_.contigs()[size_t(w.contig)].length, w);
    auto [slot, added] = batch_of_gap_open.try_emplace(gap_open, batches.size());
    if (added) {
      batches.emplace_back();
      batch_gap_open.push_back(gap_open);
    }
    ww.batch = slot->second;
    HmmTaskBatch& batch = batches[ww.batch];
    // Haplotypes: the reference first, then every consistent combination of candidates.
    const uint32_t n = uint32_t(w.candidates.size());
    ww.first_hap = uint32_t(batch.num_haplotypes());
    for (uint32_t mask = 0; mask < (1u << n); ++mask) {
      if (!mask_consistent(w, mask)) continue;
      const std::vector<uint8_t> h = build_haplotype(rc, w, mask);
      batch.add_haplotype(h.data(), uint32_t(h.size()));
      ww.masks.push_back(mask);
    }
    // Reads covering the candidates' span; one read per pair (overlapping mates count once).
    int64_t span_b = w.candidates.front().allele.pos, span_e = span_b + 1;
    for (const Candidate& c : w.candidates)
      span_e = std::max(span_e, c.allele.pos + int64_t(c.allele.ref.size()));
    while (read_cursor < reads.size() && reads[read_cursor].end <= w.begin) ++read_cursor;
    std::vector<size_t> picked;
    std::unordered_set<uint64_t> pairs_seen;
    for (size_t ri = read_cursor; ri < reads.size() && reads[ri].pos < w.end; ++ri) {
      const EvidenceRead& r = reads[ri];
      if (r.end <= span_b || r.pos >= span_e) continue;
      if (!pairs_seen.insert(r.pair_key).second) continue;
      picked.push_back(ri);
    }
    // Deterministic downsampling of very deep windows: every k-th read.
    if (int(picked.size()) > params_.max_reads_per_window) {
      std::vector<size_t> kept;
      const double step = double(picked.size()) / params_.max_reads_per_window;
      for (int i = 0; i < params_.max_reads_per_window; ++i) kept.push_back(picked[size_t(i * step)]);
      picked.swap(kept);
    }
    for (size_t ri : picked) {
      const EvidenceRead& r = reads[ri];
      size_t qs, qe;
      int64_t rs = 0, re = 0;
      if (!trim_read(r, w.begin, w.end, &qs, &qe, &rs, &re)) continue;
      // A base is no more certain than the read's placement (GATK caps base quality at MAPQ).
      quals.assign(r.quals.begin() + long(qs), r.quals.begin() + long(qe));
      for (auto& q : quals) q = std::min<uint8_t>(q, r.mapq);
      ww.reads.push_back(batch.add_read(r.bases.data() + qs, quals.data(), uint32_t(qe - qs)));
      ww.mapq.push_back(r.mapq);
      ww.spans.emplace_back(rs, re);
      ww.reverse.push_back(r.reverse);
      ww.mismatch_heavy.push_back(reference_differences(r, rc) > kMismatchHeavyEvents);
    }
    ww.first_pair = batch.size();
    for (uint32_t rr : ww.reads)
      for (uint32_t h = 0; h < ww.masks.size(); ++h) batch.add_pair(rr, ww.first_hap + h);
    counters_.windows += 1;
    counters_.haplotypes += ww.masks.size();
    counters_.reads += ww.reads.size();
  }
  std::vector<HmmResultBatch> results(batches.size());
  for (size_t b = 0; b < batches.size(); ++b) {
    const HmmTaskBatch& batch = batches[b];
    counters_.hmm_pairs += batch.size();
    for (size_t i = 0; i < batch.size(); ++i)
      counters_.hmm_cells +=
          uint64_t(batch.read_length[batch.read_index[i]]) * batch.hap_length[batch.hap_index[i]];
    PairHmmParams hmm;
    hmm.gap_open = batch_gap_open[b];
    backend_.compute(batch, hmm, results[b]);
    counters_.hmm_batches += 1;
  }
  int64_t longest_mapq_zero = 0;
  for (const auto& [b, e] : mapq_zero_spans) longest_mapq_zero = std::max(longest_mapq_zero, e - b);
  CallFilterThresholds thresholds;
  thresholds.min_qual = params_.min_qual;

  // Per window, independent: genotype its sites in parallel, then append in order.
  std::vector<std::vector<VcfRecord>> per_window(windows.size());
  parallel_for(windows.size(), threads_, 16, [&](size_t begin, size_t end) {
    for (size_t wi = begin; wi < end; ++wi) {
      const CallWindow& w = windows[wi];
      const WindowWork& ww = work[wi];
      const size_t nh = ww.masks.size(), nr = ww.reads.size();
      if (nr == 0) continue;
      const double* L = results[ww.batch].log10_likelihood.data() + ww.first_pair;
      const uint8_t* rc = ref_.codes() + ref_.contigs()[size_t(w.contig)].offset;
      const int64_t contig_length = ref_.contigs()[size_t(w.contig)].length;
      // Sites: candidates sharing a position form one (possibly multi-allelic) record.
      size_t i = 0;
      while (i < w.candidates.size()) {
        size_t j = i + 1;
        while (j < w.candidates.size() && w.candidates[j].allele.pos == w.candidates[i].allele.pos) ++j;
        const Allele& first = w.candidates[i].allele;
        std::string site_ref = first.ref;
        for (size_t k = i; k < j; ++k)
          if (w.candidates[k].allele.ref.size() > site_ref.size()) site_ref = w.candidates[k].allele.ref;
        const int64_t site_b = first.pos, site_e = first.pos + int64_t(site_ref.size());
        const size_t na = 1 + (j - i);
        // Which site allele each haplotype carries; -1 when it carries two of them or an allele of
        // another site that changes this site's bases (a spanning deletion): such haplotypes are
        // not evidence for any one allele here.
        std::vector<int> hap_allele(nh, 0);
        for (size_t h = 0; h < nh; ++h) {
          int a = 0;
          for (size_t k = 0; k < w.candidates.size(); ++k) {
            if (!(ww.masks[h] >> k & 1)) continue;
            if (k >= i && k < j) {
              a = a == 0 ? int(k - i + 1) : -1;
            } else {
              const Allele& o = w.candidates[k].allele;
              if (o.core_begin() < site_e && o.core_end() > site_b && o.core_end() > o.core_begin()) a = -1;
              if (a == -1) break;
            }
          }
          hap_allele[h] = a;
        }
        // Reads that overlap the site.
        std::vector<double> rl;
        std::vector<size_t> rows;
        for (size_t r = 0; r < nr; ++r)
          if (ww.spans[r].first < site_e && ww.spans[r].second > site_b) rows.push_back(r);
        std::vector<double> sub(rows.size() * nh);
        for (size_t x = 0; x < rows.size(); ++x)
          std::copy(L + rows[x] * nh, L + rows[x] * nh + nh, sub.begin() + long(x * nh));
        const std::vector<double> ra =
            marginalize_read_likelihoods(sub.data(), rows.size(), nh, hap_allele, na);
        const std::vector<double> gls = genotype_log10_likelihoods(ra.data(), rows.size(), na, ploidy);
        const size_t g = best_genotype(gls);
        const double qual = qual_not_hom_ref(gls, na, ploidy);
        if (g != 0 && rows.size() > 0 && qual >= params_.emit_qual) {
          VcfRecord rec;
          rec.contig = w.contig;
          rec.pos = site_b;
          rec.ref = site_ref;
          for (size_t k = i; k < j; ++k) {
            const Allele& a = w.candidates[k].allele;
            rec.alts.push_back(a.alt + site_ref.substr(a.ref.size()));
          }
          rec.qual = float(std::min(qual, 9999.0));
          SiteEvidence ev;
          rec.gt = genotype_alleles(g, ploidy);
          rec.pl = pl_from_log10(gls);
          for (int& v : rec.pl) v = std::min(v, 99999);
          rec.gq = gq_from_pl(rec.pl);
          rec.ad.assign(na, 0);
          double mq2 = 0;
          for (size_t x = 0; x < rows.size(); ++x) {
            const double* row = ra.data() + x * na;
            size_t best = 0;
            for (size_t a = 1; a < na; ++a)
              if (row[a] > row[best]) best = a;
            double second = -INFINITY;
            for (size_t a = 0; a < na; ++a)
              if (a != best) second = std::max(second, row[a]);
            if (row[best] - second >= kInformative) {
              ++rec.ad[best];
              const bool rev = ww.reverse[rows[x]];
              if (best == 0) {
                ++(rev ? ev.strand.ref_rev : ev.strand.ref_fwd);
              } else {
                ++(rev ? ev.strand.alt_rev : ev.strand.alt_fwd);
                ++ev.alt_reads;
                ev.alt_mismatch_heavy += ww.mismatch_heavy[rows[x]];
              }
            }
            mq2 += double(ww.mapq[rows[x]]) * ww.mapq[rows[x]];
          }
          rec.dp = int(rows.size());
          rec.info_dp = rec.dp;
          rec.info_mq = float(std::sqrt(mq2 / double(rows.size())));
          ev.snv = true;
          for (const std::string& a : rec.alts) ev.snv = ev.snv && a.size() == 1 && rec.ref.size() == 1;
          ev.qual = std::min(qual, 9999.0);  // as written, before rounding to float
          ev.depth = rec.dp;
          ev.mapq_zero = count_overlapping(mapq_zero_spans, longest_mapq_zero, site_b, site_e);
          ev.near_contig_end = site_b < kContigEndMargin || site_e > contig_length - kContigEndMargin;
          ev.rms_mapq = rec.info_mq;
          ev.repeat_density = tandem_repeat_density(rc, contig_length, site_b - kRepeatDensityFlank,
                                                    site_b + kRepeatDensityFlank + 1);
          ev.repeat = find_indel_repeat_context(rc, contig_length, site_b);
          ev.repeat_unit = repeat_unit(rc, ev.repeat);
          const SiteAnnotations ann = annotate_site(ev);
          rec.filters = site_filters(ev, ann, thresholds);
          add_site_info(rec, ev, ann);
          per_window[wi].push_back(std::move(rec));
        }
        i = j;
      }
    }
  });
  for (auto& v : per_window)
    for (auto& r : v) out.push_back(std::move(r));
}

}  // namespace omicsd
