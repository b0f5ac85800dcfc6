#include "host/call/candidates.hpp"

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>

#include "host/common/dna.hpp"

namespace omicsd {
namespace {

char ref_base(const Reference& ref, int32_t contig, int64_t pos) {
  return kCodeToBase[ref.codes()[ref.contigs()[size_t(contig)].offset + uint64_t(pos)]];
}

}  // namespace

bool Allele::operator<(const Allele& o) const {
  return std::tie(contig, pos, ref, alt) < std::tie(o.contig, o.pos, o.ref, o.alt);
}

bool alleles_conflict(const Allele& a, const Allele& b) {
  const int64_t ab = a.core_begin(), ae = a.core_end(), bb = b.core_begin(), be = b.core_end();
  const bool a_point = ab == ae, b_point = bb == be;  // pure insertions
  if (a_point && b_point) return ab == bb;
  if (a_point) return ab > bb && ab < be;  // inserted inside b's changed bases
  if (b_point) return bb > ab && bb < ae;
  return ab < be && bb < ae;
}

Allele normalize_allele(const Reference& ref, Allele a) {
  if (a.ref.size() == a.alt.size()) {
    // Substitutions: trim shared prefix/suffix down to the changed bases.
    while (a.ref.size() > 1 && a.ref.back() == a.alt.back()) {
      a.ref.pop_back();
      a.alt.pop_back();
    }
    while (a.ref.size() > 1 && a.ref.front() == a.alt.front()) {
      a.ref.erase(0, 1);
      a.alt.erase(0, 1);
      ++a.pos;
    }
    return a;
  }
  for (bool changed = true; changed;) {
    changed = false;
    if (!a.ref.empty() && !a.alt.empty() && a.ref.back() == a.alt.back()) {
      a.ref.pop_back();
      a.alt.pop_back();
      changed = true;
    }
    if ((a.ref.empty() || a.alt.empty()) && a.pos > 0) {
      --a.pos;
      const char b = ref_base(ref, a.contig, a.pos);
      a.ref.insert(a.ref.begin(), b);
      a.alt.insert(a.alt.begin(), b);
      changed = true;
    }
  }
  while (a.ref.size() >= 2 && a.alt.size() >= 2 && a.ref.front() == a.alt.front()) {
    a.ref.erase(0, 1);
    a.alt.erase(0, 1);
    ++a.pos;
  }
  return a;
}

std::vector<Candidate> find_candidates(const Reference& ref, int32_t contig, int64_t begin, int64_t end,
                                       const std::vector<EvidenceRead>& reads, const CallParams& p) {
  const Contig& c = ref.contigs()[size_t(contig)];
  const uint8_t* rc = ref.codes() + c.offset;
  std::map<Allele, int> support;
  std::vector<int> depth(size_t(std::max<int64_t>(end - begin, 0)), 0);
  auto cover = [&](int64_t rp) {
    if (rp >= begin && rp < end) ++depth[size_t(rp - begin)];
  };
  // Overlapping mates are one molecule: the second mate (later in sorted order) counts only where it
  // extends beyond the first, so a sequencing error seen by both is not two independent reads.
  std::unordered_map<uint64_t, int64_t> first_mate_end;
  for (const EvidenceRead& r : reads) {
    int64_t rp = r.pos;
    size_t qp = 0;
    int64_t counted_from = r.pos;
    if (auto [it, inserted] = first_mate_end.try_emplace(r.pair_key, r.end); !inserted) {
      counted_from = it->second;
      first_mate_end.erase(it);
    }
    for (size_t k = 0; k < r.cigar.size(); ++k) {
      const uint32_t op = r.cigar[k] & 0xf, len = r.cigar[k] >> 4;
      switch (op) {
        case 0:
        case 7:
        case 8:  // M, =, X
          for (uint32_t i = 0; i < len; ++i, ++rp, ++qp) {
            if (rp < counted_from) continue;
            cover(rp);
            const uint8_t b = r.bases[qp];
            if (b < 4 && b != rc[rp] && rc[rp] < 4 && r.quals[qp] >= p.min_baseq && rp >= begin && rp < end)
              ++support[Allele{contig, rp, std::string(1, kCodeToBase[rc[rp]]),
                               std::string(1, kCodeToBase[b])}];
          }
          break;
        case 1: {  // I: only between two aligned bases
          if (rp > counted_from && k > 0 && rp > 0 && k + 1 < r.cigar.size() && (r.cigar[k - 1] & 0xf) != 4 &&
              (r.cigar[k + 1] & 0xf) != 4) {
            Allele a{contig, rp - 1, std::string(1, kCodeToBase[rc[rp - 1]]), ""};
            a.alt = a.ref;
            bool clean = true;
            for (uint32_t i = 0; i < len; ++i) {
              clean = clean && r.bases[qp + i] < 4;
              a.alt.push_back(kCodeToBase[r.bases[qp + i] & 3]);
            }
            if (clean) {
              a = normalize_allele(ref, a);
              if (a.pos >= begin && a.pos < end) ++support[a];
            }
          }
          qp += len;
          break;
        }
        case 2: {  // D
          if (rp > counted_from && rp > 0) {
            Allele a{contig, rp - 1, "", std::string(1, kCodeToBase[rc[rp - 1]])};
            for (int64_t i = rp - 1; i < rp + int64_t(len); ++i) a.ref.push_back(kCodeToBase[rc[i]]);
            a = normalize_allele(ref, a);
            if (a.pos >= begin && a.pos < end) ++support[a];
          }
          for (uint32_t i = 0; i < len; ++i, ++rp)
            if (rp >= counted_from) cover(rp);
          break;
        }
        case 3:
          rp += len;
          break;  // N
        case 4:
          qp += len;
          break;  // S
        default:
          break;  // H, P
      }
    }
  }
  std::vector<Candidate> out;
  for (const auto& [allele, n] : support) {
    if (n < p.min_alt_reads) continue;
    const int d = std::max(depth[size_t(allele.pos - begin)], n);
    if (n < p.min_alt_fraction * d) continue;
    if (allele.ref.find('N') != std::string::npos) continue;
    out.push_back(Candidate{allele, n, d});
  }
  return out;
}

}  // namespace omicsd
