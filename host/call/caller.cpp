#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "host/call/bed.hpp"
#include "host/call/call_filters.hpp"
#include "host/call/call_options.hpp"
#include "host/call/candidates.hpp"
#include "host/call/evidence_reads.hpp"
#include "host/call/genotyper.hpp"
#include "host/call/ploidy_map.hpp"
#include "host/call/vcf_writer.hpp"
#include "host/common/error.hpp"
#include "host/common/parallel.hpp"

namespace omicsd {
namespace {

// Hom-ref blocks of a gVCF between variant records: runs of positions whose depth falls in the same
// band. Reference confidence is approximated from depth alone (GQ = min(99, 3 x depth): each
// reference read makes a heterozygous genotype ~2x less likely), which is what the band records.
// For ploidy P >= 3 the least costly alternative has one alternate copy in P, which a reference read
// makes only P/(P-1) times less likely: GQ = floor(10 log10(P/(P-1)) x depth) (1.76 per read for
// P = 3); a haploid keeps the diploid 3 per read, a lower bound (its alternative costs about the base
// quality per read).
int ref_block_gq(int ploidy, int depth) {
  if (ploidy <= 2) return std::min(99, 3 * depth);
  return std::min(99, int(10.0 * std::log10(double(ploidy) / double(ploidy - 1)) * depth));
}

void write_ref_blocks(VcfWriter& writer, const Reference& ref, int32_t contig, int64_t begin, int64_t end,
                      const std::vector<int>& depth, int64_t depth_origin, int ploidy) {
  static constexpr int kBands[] = {0, 1, 5, 10, 20, 30};
  auto band = [](int d) {
    int b = 0;
    for (int i = 0; i < 6; ++i)
      if (d >= kBands[i]) b = i;
    return b;
  };
  const uint8_t* rc = ref.codes() + ref.contigs()[size_t(contig)].offset;
  int64_t p = begin;
  while (p < end) {
    const int d0 = depth[size_t(p - depth_origin)];
    int64_t q = p + 1;
    int min_dp = d0;
    while (q < end && band(depth[size_t(q - depth_origin)]) == band(d0)) {
      min_dp = std::min(min_dp, depth[size_t(q - depth_origin)]);
      ++q;
    }
    writer.write_ref_block(contig, p, q, std::string(1, "ACGTN"[rc[p]]), min_dp, ref_block_gq(ploidy, min_dp),
                           ploidy);
    p = q;
  }
}

std::string join_samples(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 5; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 5) out += ", ...";
  return out;
}

}  // namespace

CallStats run_call(const CallOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const int threads = resolve_threads(o.threads);
  const CallParams& p = o.params;
  const Reference ref = Reference::load(o.reference);
  AlignmentFile bam(o.bam, ref);
  std::vector<Interval> regions, targets;
  if (!o.regions_bed.empty()) regions = read_bed(o.regions_bed, ref);
  if (!o.targets_bed.empty()) targets = read_bed(o.targets_bed, ref);
  if (regions.empty())
    for (size_t c = 0; c < ref.contigs().size(); ++c)
      regions.push_back({int32_t(c), 0, ref.contigs()[c].length});

  const std::vector<std::string> bam_samples = bam.sample_names();
  if (bam_samples.size() > 1 && !o.allow_multiple_samples)
    throw InputError(o.bam + ": reads of " + std::to_string(bam_samples.size()) + " samples (@RG SM " +
                     join_samples(bam_samples) +
                     "): call one sample per run, or pass --allow-multiple-samples to call them as one "
                     "sample named by --sample");
  if (bam_samples.size() > 1)
    spdlog::warn("{}: calling the reads of {} samples ({}) as one sample", o.bam, bam_samples.size(),
                 join_samples(bam_samples));
  std::string sample = o.sample.empty() ? bam.sample_name() : o.sample;
  if (sample.empty()) sample = std::filesystem::path(o.bam).stem().string();
  const PloidyMap ploidy = build_ploidy_map(ref, o.ploidy, parse_sex(o.sex), o.ploidy_bed);
  std::vector<PloidyRegion> pieces;  // the regions cut where the ploidy changes; ploidy 0 left out
  for (const Interval& iv : regions)
    for (const PloidyRegion& piece : ploidy.split(iv))
      if (piece.ploidy > 0) pieces.push_back(piece);
  std::unique_ptr<GenotypeBackend> backend =
      o.make_backend ? o.make_backend(threads) : make_cpu_genotype_backend(threads);

  VcfWriterOptions wo;
  wo.path = o.output;
  wo.sample = sample;
  wo.command_line = o.command_line;
  CallFilterThresholds thresholds;
  thresholds.min_qual = p.min_qual;
  wo.filters = call_filter_definitions(thresholds);
  wo.infos = call_info_definitions();
  wo.gvcf = o.gvcf;
  wo.threads = threads;
  VcfWriter writer(wo, ref);
  WindowGenotyper genotyper(ref, *backend, p, threads);
  CallStats st;
  st.backend = backend->name();

  // Shards of fixed size (never dependent on threads, so the output is not either). A window still
  // open at a shard's end is carried into the next shard of the same interval.
  const int64_t fetch_pad = 2 * p.window_pad + 300;
  for (const PloidyRegion& iv : pieces) {
    std::vector<Candidate> carried;
    int64_t written_to = iv.begin;  // gVCF: reference blocks cover [iv.begin, iv.end) between records
    for (int64_t sb = iv.begin; sb < iv.end; sb += p.shard_size) {
      const int64_t se = std::min(iv.end, sb + p.shard_size);
      const int64_t fb = std::max<int64_t>(0, sb - fetch_pad),
                    fe = std::min<int64_t>(ref.contigs()[size_t(iv.contig)].length, se + fetch_pad);
      std::vector<EvidenceRead> reads;
      std::vector<std::pair<int64_t, int64_t>> mapq_zero;  // spans of MAPQ 0 reads: INFO/MQ0F only
      {
        CallParams all_mapq = p;
        all_mapq.min_mapq = 0;
        bam.fetch(iv.contig, fb, fe, all_mapq, reads);
        for (const EvidenceRead& r : reads)
          if (r.mapq == 0 && r.mapq < p.min_mapq) mapq_zero.emplace_back(r.pos, r.end);
        std::erase_if(reads, [&](const EvidenceRead& r) { return r.mapq < p.min_mapq; });
      }
      std::vector<Candidate> cands = find_candidates(ref, iv.contig, sb, se, reads, p);
      st.candidates += cands.size();
      cands.insert(cands.begin(), carried.begin(), carried.end());
      carried.clear();
      std::vector<CallWindow> windows = make_windows(ref, cands, p);
      // The last window may still grow with the next shard's candidates: carry it unless this is the end.
      if (se < iv.end && !windows.empty()) {
        const CallWindow& last = windows.back();
        int64_t last_end = 0;
        for (const Candidate& c : last.candidates) last_end = std::max(last_end, c.allele.core_end());
        if (last_end + p.cluster_distance >= se) {
          carried = last.candidates;
          windows.pop_back();
        }
      }
      std::vector<VcfRecord> records;
      genotyper.genotype(windows, reads, records, mapq_zero, iv.ploidy);
      // Depth for gVCF blocks.
      std::vector<int> depth;
      if (o.gvcf) {
        depth.assign(size_t(fe - fb), 0);
        for (const EvidenceRead& r : reads) {
          int64_t rp = r.pos;
          for (uint32_t c : r.cigar) {
            const uint32_t op = c & 0xf, len = c >> 4;
            if (op == 0 || op == 7 || op == 8 || op == 2) {
              for (uint32_t i = 0; i < len; ++i, ++rp)
                if (rp >= fb && rp < fe) ++depth[size_t(rp - fb)];
            } else if (op == 3) {
              rp += len;
            }
          }
        }
      }
      for (VcfRecord& r : records) {
        if (!targets.empty() && !overlaps(targets, r.contig, r.pos, r.pos + int64_t(r.ref.size()))) continue;
        if (r.pos < written_to) continue;  // overlaps a record already written (a split window's site)
        if (o.gvcf && r.pos > written_to)
          write_ref_blocks(writer, ref, iv.contig, written_to, r.pos, depth, fb, iv.ploidy);
        writer.write(r);
        written_to = r.pos + int64_t(r.ref.size());
        ++st.records;
        (r.ref.size() == 1 && r.alts[0].size() == 1 ? st.snps : st.indels) += 1;
      }
      // Blocks up to this shard's end unless a carried window may still place records before it.
      if (o.gvcf) {
        int64_t block_end = se;
        for (const Candidate& c : carried) block_end = std::min(block_end, c.allele.pos);
        if (block_end > written_to) {
          write_ref_blocks(writer, ref, iv.contig, written_to, block_end, depth, fb, iv.ploidy);
          written_to = block_end;
        }
      }
      spdlog::debug("shard {}:{}-{}: {} reads, {} candidates, {} windows, {} records",
                    ref.contigs()[size_t(iv.contig)].name, sb + 1, se, reads.size(), cands.size(),
                    windows.size(), records.size());
    }
  }
  writer.finish();
  const auto& gc = genotyper.counters();
  st.windows = gc.windows;
  st.hmm_pairs = gc.hmm_pairs;
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::debug("pair-HMM: {} pairs, {} cells, {} haplotypes, {} reads", gc.hmm_pairs, gc.hmm_cells,
                gc.haplotypes, gc.reads);
  spdlog::info(
      "{}: {} records ({} SNVs, {} indels/MNVs) from {} candidates in {} windows, {:.1f} s ({} backend)",
      o.output, st.records, st.snps, st.indels, st.candidates, st.windows, st.seconds, st.backend);
  return st;
}

}  // namespace omicsd
