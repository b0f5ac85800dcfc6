// Seeding and MAPQ among repeats (issue 21): tandem arrays whose period is shorter than a read, with a
// diverged dispersed copy elsewhere. The true copy's chain must stay whole (the seeder once sorted hits
// by reference position, which interleaved the array's copies and split their chains), and a read that
// a tandem shift aligns equally well must not be reported as confidently placed, single or paired.
#include <gtest/gtest.h>
#include <htslib/sam.h>

#include <algorithm>
#include <memory>
#include <random>

#include "host/align/mapper.hpp"
#include "host/align/seeding.hpp"
#include "host/common/dna.hpp"
#include "host/index/minimizer.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

std::string random_dna(std::mt19937& rng, size_t n) {
  std::string s(n, 'A');
  for (auto& c : s) c = "ACGT"[rng() % 4];
  return s;
}

std::string substitute(std::string s, std::mt19937& rng, int subs) {
  for (int i = 0; i < subs; ++i) {
    const size_t p = rng() % s.size();
    s[p] = "ACGT"[(base_code(s[p]) + 1 + rng() % 3) % 4];
  }
  return s;
}

// chr1: random sequence with tandem arrays (periods 25 to 140, copies of a unit with one or two
// substitutions each) and one exact tandem array (period 69). chr2: for every diverged array, a
// dispersed copy of its middle 400 bp with 1% substitutions, the paralog a read may be pulled to.
struct RepeatGenome {
  struct Array {
    int64_t begin, end;
    int period;
  };
  test::TempDir dir;
  std::string chr1, chr2;
  std::vector<Array> arrays;
  Array exact{};
  std::unique_ptr<Reference> ref;
  std::unique_ptr<MinimizerIndex> index;

  RepeatGenome() {
    std::mt19937 rng(21);
    chr1 = random_dna(rng, 3000);
    chr2 = random_dna(rng, 3000);
    for (const int period : {25, 45, 60, 75, 90, 110, 140}) {
      for (int rep = 0; rep < 3; ++rep) {
        const std::string unit = random_dna(rng, size_t(period));
        std::string array;
        const int copies = 2400 / period + 1;
        for (int c = 0; c < copies; ++c) array += substitute(unit, rng, 1 + int(rng() % 2));
        arrays.push_back({int64_t(chr1.size()), int64_t(chr1.size() + array.size()), period});
        chr1 += array + random_dna(rng, 2000);
        chr2 += substitute(array.substr(array.size() / 2 - 200, 400), rng, 4) + random_dna(rng, 2000);
      }
    }
    const std::string unit = random_dna(rng, 69);
    std::string array;
    for (int c = 0; c < 8; ++c) array += unit;
    exact = {int64_t(chr1.size()), int64_t(chr1.size() + array.size()), 69};
    chr1 += array + random_dna(rng, 3000);
    test::write_file(dir.path / "rep.fa", ">chr1\n" + chr1 + "\n>chr2\n" + chr2 + "\n");
    ref = std::make_unique<Reference>(Reference::load((dir.path / "rep.fa").string()));
    index = std::make_unique<MinimizerIndex>(MinimizerIndex::open_or_build(*ref, IndexParams{}));
  }
};

RepeatGenome& repeat_genome() {
  static RepeatGenome g;
  return g;
}

std::vector<uint8_t> codes_of(const std::string& s) {
  std::vector<uint8_t> c(s.size());
  for (size_t i = 0; i < s.size(); ++i) c[i] = base_code(s[i]);
  return c;
}

// Brute force: the read bases covered by its minimizers that occur at the read's true place (read
// offset q at reference offset diag + q), counting only minimizers the seeder may use.
uint32_t true_coverage(const MinimizerIndex& index, const std::vector<uint8_t>& read, int64_t diag,
                       uint32_t max_occurrences) {
  std::vector<Minimizer> mins;
  compute_minimizers(read.data(), uint32_t(read.size()), index.k(), index.w(), mins);
  std::vector<uint8_t> covered(read.size(), 0);
  for (const Minimizer& m : mins) {
    const auto span = index.lookup(m.hash);
    if (span.size() > max_occurrences) continue;
    for (const uint64_t v : span) {
      const IndexHit h = MinimizerIndex::decode_hit(v);
      if (h.reverse == m.reverse && int64_t(h.pos) - int64_t(m.pos) == diag)
        std::fill_n(covered.begin() + m.pos, index.k(), 1);
    }
  }
  return uint32_t(std::count(covered.begin(), covered.end(), 1));
}

// Property: for exact reads from anywhere in the arrays, a chain spans the true diagonal with at least
// the coverage the brute force finds there, and no chain covers more (the true place is the best).
TEST(MapqParalogs, TheTrueCopyOfATandemArrayKeepsAWholeChain) {
  RepeatGenome& g = repeat_genome();
  const SeedParams params;
  Seeder seeder(*g.ref, *g.index, params);
  std::mt19937 rng(5);
  std::vector<Chain> chains;
  int checked = 0;
  for (const auto& a : g.arrays) {
    for (int r = 0; r < 20; ++r) {
      const int64_t pos = a.begin + int64_t(rng() % uint64_t(a.end - a.begin - 150));
      const std::vector<uint8_t> read = codes_of(g.chr1.substr(size_t(pos), 150));
      const int64_t diag = int64_t(g.ref->contigs()[0].offset) + pos;
      const uint32_t expected = true_coverage(*g.index, read, diag, params.max_occurrences);
      if (expected == 0) continue;
      seeder.find_chains(read.data(), uint32_t(read.size()), chains);
      ASSERT_FALSE(chains.empty()) << "period " << a.period << " pos " << pos;
      const auto at_truth = std::find_if(chains.begin(), chains.end(), [&](const Chain& c) {
        return !c.reverse && c.contig == 0 && c.diag_min <= diag && diag <= c.diag_max;
      });
      ASSERT_NE(at_truth, chains.end())
          << "no chain at the true place: period " << a.period << " pos " << pos;
      EXPECT_GE(at_truth->coverage, expected) << "period " << a.period << " pos " << pos;
      EXPECT_EQ(at_truth->coverage, chains.front().coverage) << "period " << a.period << " pos " << pos;
      ++checked;
    }
  }
  EXPECT_GE(checked, int(g.arrays.size()) * 20 * 9 / 10);
}

struct Mapped {
  int32_t tid;
  int64_t pos;
  int mapq;
};
Mapped inspect(const bam1_t* b) { return {b->core.tid, b->core.pos, b->core.qual}; }

// A read name (appending to a string: GCC 12's -Wrestrict misfires on "literal" + std::string).
std::string read_name(char prefix, int64_t n) {
  std::string s(1, prefix);
  s += std::to_string(n);
  return s;
}

// The same exact reads through the mapper, single-end: placed at their true copy.
TEST(MapqParalogs, ExactReadsInDivergedTandemArraysArePlacedOnTheirCopy) {
  RepeatGenome& g = repeat_genome();
  auto backend = make_cpu_align_backend(2);
  MapperOptions opt;
  opt.threads = 2;
  Mapper mapper(*g.ref, *g.index, *backend, opt);
  std::mt19937 rng(9);
  ReadBatch batch;
  std::vector<int64_t> truth;
  for (const auto& a : g.arrays) {
    for (int r = 0; r < 10; ++r) {
      const int64_t pos = a.begin + int64_t(rng() % uint64_t(a.end - a.begin - 150));
      const std::string seq = g.chr1.substr(size_t(pos), 150);
      batch.add(read_name('t', int64_t(truth.size())), seq, std::string(150, 'I'));
      truth.push_back(pos);
    }
  }
  const auto& recs = mapper.map_batch(batch);
  for (size_t i = 0; i < truth.size(); ++i) {
    const Mapped m = inspect(recs[i].get());
    EXPECT_EQ(m.tid, 0) << i;
    EXPECT_EQ(m.pos, truth[i]) << i << " mapq " << m.mapq;
  }
}

// Reads inside an exact tandem array (period 69 < half a read) align as well one period away: MAPQ 0
// alone, and still below 20 with a uniquely placed mate, which cannot tell the shifts apart.
TEST(MapqParalogs, ReadsThatATandemShiftAlignsEquallyGetLowMapq) {
  RepeatGenome& g = repeat_genome();
  auto backend = make_cpu_align_backend(2);
  MapperOptions opt;
  opt.threads = 2;
  Mapper se(*g.ref, *g.index, *backend, opt);
  ReadBatch single;
  for (int64_t off = 0; off + 150 <= g.exact.end - g.exact.begin; off += 23)
    single.add(read_name('s', off), g.chr1.substr(size_t(g.exact.begin + off), 150), std::string(150, 'I'));
  const auto& srecs = se.map_batch(single);
  for (size_t i = 0; i < single.size(); ++i) {
    const Mapped m = inspect(srecs[i].get());
    EXPECT_EQ(m.tid, 0);
    EXPECT_EQ((m.pos - g.exact.begin) % 69, (int64_t(i) * 23) % 69) << "not aligned in phase: " << i;
    EXPECT_EQ(m.mapq, 0) << i;
  }

  // Pairs: read 1 unique, left of the array; read 2 (reverse) inside it, 400 bp insert. Unique pairs
  // elsewhere on chr1 teach the insert size model (300 to 500 bp), so a shift by a period is proper too.
  Mapper pe(*g.ref, *g.index, *backend, opt);
  ReadBatch pairs;
  pairs.paired = true;
  std::mt19937 rng(3);
  auto add_pair = [&](int64_t start, int64_t insert) {
    const std::string frag = g.chr1.substr(size_t(start), size_t(insert));
    pairs.add(read_name('p', start), frag.substr(0, 150), std::string(150, 'I'));
    pairs.add(read_name('p', start), reverse_complement(frag.substr(size_t(insert) - 150)),
              std::string(150, 'I'));
  };
  for (int i = 0; i < 200; ++i) add_pair(int64_t(rng() % 2500), 300 + int64_t(rng() % 201));
  const size_t first_test_pair = pairs.size() / 2;
  for (int64_t r2 = 0; r2 <= 100; r2 += 20) add_pair(g.exact.begin - 250 + r2, 250 + 150);
  const auto& precs = pe.map_batch(pairs);
  for (size_t p = first_test_pair; p < pairs.size() / 2; ++p) {
    const Mapped a = inspect(precs[2 * p].get()), b = inspect(precs[2 * p + 1].get());
    EXPECT_GE(a.mapq, 30) << "the unique mate " << p;
    EXPECT_LT(b.mapq, 20) << "the mate in the array " << p << " at " << b.pos;
  }
}

// One substitution at least 20 bases from either end.
std::string substitute_inside(std::string s, std::mt19937& rng) {
  const size_t p = 20 + rng() % (s.size() - 40);
  s[p] = "ACGT"[(base_code(s[p]) + 1 + rng() % 3) % 4];
  return s;
}

// A genome written as FASTA text, indexed, and a two-thread CPU mapper over it.
struct FastaMapper {
  test::TempDir dir;
  std::unique_ptr<Reference> ref;
  std::unique_ptr<MinimizerIndex> index;
  std::unique_ptr<AlignBackend> backend = make_cpu_align_backend(2);
  std::unique_ptr<Mapper> mapper;
  explicit FastaMapper(const std::string& fasta) {
    test::write_file(dir.path / "genome.fa", fasta);
    ref = std::make_unique<Reference>(Reference::load((dir.path / "genome.fa").string()));
    index = std::make_unique<MinimizerIndex>(MinimizerIndex::open_or_build(*ref, IndexParams{}));
    MapperOptions opt;
    opt.threads = 2;
    mapper = std::make_unique<Mapper>(*ref, *index, *backend, opt);
  }
};

// Paired reads from a region with sixteen copies 0.1% diverged from the source (more than the seeder's
// max_chains per end: the two ends' top chains were different subsets, the copy that pairs as well as
// the chosen one was never aligned, and pairs got MAPQ 20-30 at the wrong copy) get low MAPQ and are
// never confidently wrong; reads from ten copies 10% diverged get high MAPQ at their own copy.
TEST(MapqParalogs, PairsFromNearIdenticalCopiesGetLowMapqAndFromDivergedCopiesHigh) {
  std::mt19937 rng(33);
  const std::string near_source = random_dna(rng, 2000), far_source = random_dna(rng, 2000);
  std::string fasta = ">u\n" + random_dna(rng, 30000) + "\n";
  std::vector<std::string> contigs{"u"};
  std::vector<std::string> seqs;
  seqs.push_back(fasta.substr(3, 30000));
  auto add_copy = [&](const std::string& name, const std::string& source, int subs) {
    const std::string seq = random_dna(rng, 1000) + substitute(source, rng, subs) + random_dna(rng, 1000);
    fasta += ">" + name + "\n" + seq + "\n";
    contigs.push_back(name);
    seqs.push_back(seq);
  };
  for (int c = 0; c < 12; ++c) add_copy(read_name('n', c), near_source, 1);   // 0.05% from the source
  for (int c = 0; c < 10; ++c) add_copy(read_name('f', c), far_source, 200);  // 10%
  FastaMapper genome(fasta);

  ReadBatch pairs;
  pairs.paired = true;
  struct Truth {
    int32_t contig;
    int64_t pos1, pos2;
  };
  std::vector<Truth> truth;
  auto add_pair = [&](int32_t contig, int64_t start, int64_t insert) {
    const std::string frag = seqs[size_t(contig)].substr(size_t(start), size_t(insert));
    const std::string name = read_name('r', int64_t(truth.size()));
    // One sequencing error in each end, away from its ends (the alignment stays end to end).
    pairs.add(name, substitute_inside(frag.substr(0, 150), rng), std::string(150, 'I'));
    pairs.add(name, reverse_complement(substitute_inside(frag.substr(size_t(insert) - 150), rng)),
              std::string(150, 'I'));
    truth.push_back({contig, start, start + insert - 150});
  };
  // Unique pairs teach the insert size model (350 to 450 bp).
  for (int i = 0; i < 100; ++i) add_pair(0, int64_t(rng() % 29000), 350 + int64_t(rng() % 101));
  const size_t first_near = truth.size();
  for (int i = 0; i < 120; ++i)
    add_pair(1 + i % 12, 1000 + int64_t(rng() % 1500), 350 + int64_t(rng() % 101));
  const size_t first_far = truth.size();
  for (int i = 0; i < 100; ++i)
    add_pair(13 + i % 10, 1000 + int64_t(rng() % 1500), 350 + int64_t(rng() % 101));

  const auto& recs = genome.mapper->map_batch(pairs);
  auto correct = [&](size_t read) {
    const Truth& t = truth[read / 2];
    const Mapped m = inspect(recs[read].get());
    return m.tid == t.contig && m.pos == (read % 2 == 0 ? t.pos1 : t.pos2);
  };
  int near_low = 0, far_high = 0;
  for (size_t r = 2 * first_near; r < 2 * first_far; ++r) {
    const Mapped m = inspect(recs[r].get());
    EXPECT_TRUE(m.mapq < 20 || correct(r)) << "read " << r << " wrong copy at MAPQ " << m.mapq;
    near_low += m.mapq < 20;
  }
  for (size_t r = 2 * first_far; r < 2 * truth.size(); ++r) {
    EXPECT_TRUE(correct(r)) << "read " << r;
    far_high += correct(r) && inspect(recs[r].get()).mapq >= 30;
  }
  // Most 300 bp pairs see no difference between two of the near copies at all.
  EXPECT_GE(near_low, int(2 * (first_far - first_near)) * 3 / 4);
  EXPECT_GE(far_high, int(2 * (truth.size() - first_far)) * 95 / 100);
}

// The other side: one end inside one of ten identical copies (more than max_chains, like E. coli's rRNA
// operons), its mate in the unique sequence beside it. The mate pins the pair: the end in the repeat is
// placed at its own copy with the pair's confidence, as bwa does, though its chains as well seeded as
// the best were not all aligned.
TEST(MapqParalogs, AUniqueMatePlacesTheEndInsideIdenticalCopies) {
  std::mt19937 rng(44);
  const std::string repeat = random_dna(rng, 600);
  std::string fasta;
  std::vector<std::string> seqs;
  for (int c = 0; c < 10; ++c) {
    const std::string seq = random_dna(rng, 2000) + repeat + random_dna(rng, 2000);
    fasta += ">" + read_name('c', c) + "\n" + seq + "\n";
    seqs.push_back(seq);
  }
  FastaMapper genome(fasta);
  ReadBatch pairs;
  pairs.paired = true;
  std::vector<std::pair<int32_t, int64_t>> truth;  // contig, start of the end inside the repeat
  auto add_pair = [&](int32_t contig, int64_t start, int64_t insert) {
    const std::string frag = seqs[size_t(contig)].substr(size_t(start), size_t(insert));
    const std::string name = read_name('r', int64_t(truth.size()));
    pairs.add(name, frag.substr(0, 150), std::string(150, 'I'));
    pairs.add(name, reverse_complement(frag.substr(size_t(insert) - 150)), std::string(150, 'I'));
    truth.emplace_back(contig, start + insert - 150);
  };
  // Unique pairs (insert model), then pairs whose second end lies wholly inside the repeat.
  for (int i = 0; i < 100; ++i) add_pair(int32_t(i % 10), int64_t(rng() % 1500), 350 + int64_t(rng() % 101));
  const size_t first = truth.size();
  for (int i = 0; i < 100; ++i) {
    // The second end inside the repeat ([2000, 2600)), the first wholly before it.
    const int64_t insert = 400 + int64_t(rng() % 51);
    const int64_t end2 = 2000 + int64_t(rng() % 50);
    add_pair(int32_t(i % 10), end2 + 150 - insert, insert);
  }
  const auto& recs = genome.mapper->map_batch(pairs);
  int confident = 0;
  for (size_t p = first; p < truth.size(); ++p) {
    const Mapped m = inspect(recs[2 * p + 1].get());
    EXPECT_EQ(m.tid, truth[p].first) << p;
    EXPECT_EQ(m.pos, truth[p].second) << p;
    confident += m.mapq >= 20;
  }
  EXPECT_GE(confident, int(truth.size() - first) * 9 / 10);
}

}  // namespace
}  // namespace omicsd
