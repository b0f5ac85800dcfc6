#include "host/align/seeding.hpp"

#include <algorithm>
#include <atomic>

namespace omicsd {

namespace {
struct AtomicSeedCounters {
  std::atomic<uint64_t> reads{0}, minimizers{0}, repetitive{0}, hits{0}, chains{0}, chains_kept{0};
};
AtomicSeedCounters g_seed_counters;
}  // namespace

SeedCounters seed_counters() {
  const auto& g = g_seed_counters;
  return SeedCounters{g.reads.load(), g.minimizers.load(), g.repetitive.load(),
                      g.hits.load(),  g.chains.load(),     g.chains_kept.load()};
}

Seeder::~Seeder() {
  auto& g = g_seed_counters;
  g.reads += counts_.reads;
  g.minimizers += counts_.minimizers;
  g.repetitive += counts_.repetitive;
  g.hits += counts_.hits;
  g.chains += counts_.chains;
  g.chains_kept += counts_.chains_kept;
}

SeedSummary Seeder::find_chains(const uint8_t* read, uint32_t len, std::vector<Chain>& chains,
                                uint32_t limit) {
  chains.clear();
  hits_.clear();
  SeedSummary summary;
  ++counts_.reads;
  const int k = index_.k();
  if (len < uint32_t(k)) return summary;
  compute_minimizers(read, len, k, index_.w(), mins_);
  summary.minimizers = uint32_t(mins_.size());
  counts_.minimizers += mins_.size();

  auto collect = [&](uint32_t max_occ, bool only_repetitive) {
    for (const Minimizer& m : mins_) {
      const auto span = index_.lookup(m.hash);
      if (span.empty()) continue;
      const bool repetitive = span.size() > params_.max_occurrences;
      if (only_repetitive != repetitive || span.size() > max_occ) continue;
      for (uint64_t v : span) {
        const IndexHit h = MinimizerIndex::decode_hit(v);
        Hit hit;
        hit.reverse = uint8_t(m.reverse ^ h.reverse);
        // On the reverse strand the read's reverse complement aligns; the k-mer starts at len-pos-k there.
        hit.qpos = hit.reverse ? len - m.pos - uint32_t(k) : m.pos;
        hit.rpos = h.pos;
        hit.diag = int64_t(h.pos) - int64_t(hit.qpos);
        hits_.push_back(hit);
      }
    }
  };
  collect(params_.max_occurrences, false);
  for (const Minimizer& m : mins_)
    if (index_.lookup(m.hash).size() > params_.max_occurrences) ++summary.repetitive;
  // A read made only of repeat k-mers still gets placed (at MAPQ 0), like bwa's re-seeding.
  if (hits_.empty() && summary.repetitive > 0) collect(params_.rescue_occurrences, true);
  counts_.repetitive += summary.repetitive;
  counts_.hits += hits_.size();
  if (hits_.empty()) return summary;

  // Sort by strand, then diagonal: hits of one placement become adjacent. Sorting by reference position
  // instead interleaves the copies of a tandem repeat (diagonals one period apart), which split each
  // copy's chain into fragments that lost to the whole chains of more diverged paralogs elsewhere.
  std::sort(hits_.begin(), hits_.end(), [](const Hit& a, const Hit& b) {
    if (a.reverse != b.reverse) return a.reverse < b.reverse;
    if (a.diag != b.diag) return a.diag < b.diag;
    return a.qpos < b.qpos;
  });

  std::vector<Chain> all;
  size_t begin = 0;
  while (begin < hits_.size()) {
    const Hit& first = hits_[begin];
    const int contig = ref_.contig_of(first.rpos);
    const uint64_t contig_begin = ref_.contigs()[contig].offset;
    const uint64_t contig_end = contig_begin + ref_.contigs()[contig].length;
    Chain c;
    c.reverse = first.reverse;
    c.contig = contig;
    c.diag_min = c.diag_max = first.diag;
    size_t end = begin + 1;
    while (end < hits_.size()) {
      const Hit& h = hits_[end];
      if (h.reverse != first.reverse || h.rpos < contig_begin || h.rpos >= contig_end) break;
      if (h.diag - hits_[end - 1].diag > params_.max_diag_gap) break;
      // A run of near diagonals wider than the read (low-complexity sequence) is several placements.
      if (h.diag - c.diag_min > int64_t(len)) break;
      c.diag_max = h.diag;
      ++end;
    }
    // Coverage: union of the chain's k-mer intervals on the read.
    std::vector<std::pair<uint32_t, uint32_t>> iv;
    iv.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) iv.emplace_back(hits_[i].qpos, hits_[i].qpos + uint32_t(k));
    std::sort(iv.begin(), iv.end());
    uint32_t cov = 0, cur_b = iv[0].first, cur_e = iv[0].second;
    for (size_t i = 1; i < iv.size(); ++i) {
      if (iv[i].first > cur_e) {
        cov += cur_e - cur_b;
        cur_b = iv[i].first;
        cur_e = iv[i].second;
      } else {
        cur_e = std::max(cur_e, iv[i].second);
      }
    }
    cov += cur_e - cur_b;
    c.coverage = cov;
    c.hits = uint32_t(end - begin);
    all.push_back(c);
    begin = end;
  }

  std::stable_sort(all.begin(), all.end(), [](const Chain& a, const Chain& b) {
    if (a.coverage != b.coverage) return a.coverage > b.coverage;
    if (a.contig != b.contig) return a.contig < b.contig;
    if (a.diag_min != b.diag_min) return a.diag_min < b.diag_min;
    return a.reverse < b.reverse;
  });
  const uint32_t best = all.front().coverage;
  const uint32_t max_chains = limit > 0 ? limit : params_.max_chains;
  for (const Chain& c : all) {
    if (chains.size() >= max_chains) break;
    if (c.coverage < best * params_.min_chain_fraction) break;
    chains.push_back(c);
  }
  counts_.chains += all.size();
  counts_.chains_kept += chains.size();
  return summary;
}

}  // namespace omicsd
