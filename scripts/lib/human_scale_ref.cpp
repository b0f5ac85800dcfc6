// Writes the human-scale test genome of scripts/make-human-scale-ref.sh: diverged, shuffled copies of one
// real chromosome (GRCh37 chr20), named and sized like GRCh38's analysis set (chromosomes, unlocalised and
// unplaced scaffolds, alts, decoys, chrEBV, HLA alleles). A standalone tool (no omicsd code), built by the
// script into its cache, because the full 3.1 Gb size must be written in minutes, not hours.
//
// Determinism is the contract: the same input, size and GENERATOR_VERSION give the same bytes on any
// machine. Hence one hand-written PRNG (splitmix64) and integer-only decisions: no <random> distributions
// (implementation-defined) and no floating point.
//
// Usage: human_scale_ref SOURCE.fa SIZE OUT.fa
//   SOURCE.fa  one uncompressed FASTA record (the script decompresses vt-examples' 20.fa.gz)
//   SIZE       full | quarter | small
// Writes OUT.fa, OUT.fa.fai and OUT.fa.segments.tsv (where each piece came from: the truth for paralogs).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr int kLineWidth = 60;

// splitmix64: tiny, fast, and its output is fixed by its definition on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by 128-bit multiply (Lemire); bias below 2^-64 * n, irrelevant here and deterministic.
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  uint64_t between(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  // Skewed towards lo (product of two uniforms): most scaffolds are short, a few are long, as in GRCh38.
  uint64_t skewed(uint64_t lo, uint64_t hi) {
    const unsigned __int128 a = next() >> 32, b = next() >> 32;
    return lo + static_cast<uint64_t>((a * b * (hi - lo)) >> 64);
  }
  bool chance_ppm(uint32_t ppm) { return below(1000000) < ppm; }

 private:
  uint64_t state_;
};

struct Size {
  std::string name;
  uint64_t chrom_divisor;  // chromosome lengths are GRCh38's divided by this
  uint64_t segment_min, segment_max;
  uint32_t n_random, n_unplaced, n_alt, n_decoy, n_hla;
  uint64_t
      scaffold_divisor;  // unlocalised/unplaced/alt lengths are divided by this (decoys, HLA stay real-sized)
};

Size size_named(const std::string &name) {
  if (name == "full") return {"full", 1, 1'000'000, 4'000'000, 42, 127, 261, 2200, 400, 1};
  if (name == "quarter") return {"quarter", 4, 250'000, 1'000'000, 42, 127, 261, 2200, 400, 4};
  if (name == "small") return {"small", 80, 20'000, 100'000, 10, 20, 20, 200, 60, 40};
  throw std::invalid_argument("unknown size '" + name + "' (expected full, quarter or small)");
}

struct Chromosome {
  const char *name;
  uint64_t grch38_length;
};

// GRCh38 primary chromosome lengths; chrM is written at its real length at every size.
constexpr std::array<Chromosome, 24> kChromosomes{{
    {"chr1", 248956422},  {"chr2", 242193529},  {"chr3", 198295559},  {"chr4", 190214555},
    {"chr5", 181538259},  {"chr6", 170805979},  {"chr7", 159345973},  {"chr8", 145138636},
    {"chr9", 138394717},  {"chr10", 133797422}, {"chr11", 135086622}, {"chr12", 133275309},
    {"chr13", 114364328}, {"chr14", 107043718}, {"chr15", 101991189}, {"chr16", 90338345},
    {"chr17", 83257441},  {"chr18", 80373285},  {"chr19", 58617616},  {"chr20", 64444167},
    {"chr21", 46709983},  {"chr22", 50818468},  {"chrX", 156040895},  {"chrY", 57227415},
}};
constexpr uint64_t kChrMLength = 16569, kChrEbvLength = 171823;

// Per-segment divergence from the source, in substitutions per million bases (0.1% to 10%).
constexpr std::array<uint32_t, 7> kDivergencePpm{1000, 2000, 5000, 10000, 20000, 50000, 100000};
constexpr std::array<const char *, 8> kHlaGenes{"HLA-A",    "HLA-B",    "HLA-C",    "HLA-DRB1",
                                                "HLA-DQA1", "HLA-DQB1", "HLA-DPA1", "HLA-DPB1"};

std::string read_source(const std::string &path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::string line, seq;
  bool header_seen = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '>') {
      if (header_seen) throw std::runtime_error(path + ": more than one record (expected one chromosome)");
      header_seen = true;
      continue;
    }
    for (char c : line) seq.push_back(static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c));
  }
  if (!header_seen || seq.size() < 10'000'000)
    throw std::runtime_error(path + ": expected one FASTA record of a whole chromosome (>= 10 Mb)");
  return seq;
}

char complement(char c) {
  switch (c) {
    case 'A':
      return 'T';
    case 'C':
      return 'G';
    case 'G':
      return 'C';
    case 'T':
      return 'A';
    default:
      return c;
  }
}

class GenomeWriter {
 public:
  GenomeWriter(const std::string &out, const std::string &source) : source_(source), out_path_(out) {
    fa_ = std::fopen(out.c_str(), "wb");
    fai_ = std::fopen((out + ".fai").c_str(), "wb");
    seg_ = std::fopen((out + ".segments.tsv").c_str(), "wb");
    if (!fa_ || !fai_ || !seg_) throw std::runtime_error(out + ": cannot create output files");
    std::fputs("#contig\tstart\tend\tsource_start\tsource_end\tstrand\tdivergence_ppm\n", seg_);
  }
  ~GenomeWriter() {
    for (FILE *f : {fa_, fai_, seg_})
      if (f) std::fclose(f);
  }

  void begin(const std::string &name) {
    name_ = name;
    seq_.clear();
  }

  // Appends a copy of source[start, start+len) (reverse-complemented when reverse) with substitutions at
  // divergence_ppm and small indels at a tenth of that rate.
  void append_copy(Rng &rng, uint64_t start, uint64_t len, bool reverse, uint32_t divergence_ppm) {
    const uint64_t out_start = seq_.size();
    const uint32_t indel_ppm = divergence_ppm / 10;
    static constexpr char kBases[4] = {'A', 'C', 'G', 'T'};
    for (uint64_t i = 0; i < len; ++i) {
      const uint64_t at = reverse ? start + len - 1 - i : start + i;
      char base = reverse ? complement(source_[at]) : source_[at];
      if (divergence_ppm != 0 && base != 'N') {
        const uint64_t r = rng.below(1000000);
        if (r < divergence_ppm) {
          const char *p = std::find(kBases, kBases + 4, base);
          if (p != kBases + 4) base = kBases[((p - kBases) + 1 + rng.below(3)) % 4];
        } else if (r < divergence_ppm + indel_ppm) {
          const uint64_t indel_len = 1 + std::min<uint64_t>(__builtin_ctzll(rng.next() | (1ULL << 9)), 9);
          if (rng.below(2) == 0) {
            i += indel_len - 1;  // deletion: skip source bases
            continue;
          }
          for (uint64_t k = 0; k < indel_len; ++k) seq_.push_back(kBases[rng.below(4)]);  // insertion
        }
      }
      seq_.push_back(base);
    }
    std::fprintf(seg_, "%s\t%llu\t%llu\t%llu\t%llu\t%c\t%u\n", name_.c_str(), (unsigned long long)out_start,
                 (unsigned long long)seq_.size(), (unsigned long long)start,
                 (unsigned long long)(start + len), reverse ? '-' : '+', divergence_ppm);
  }

  uint64_t length() const { return seq_.size(); }

  void end() {
    if (seq_.empty()) throw std::logic_error(name_ + ": empty sequence");
    std::fprintf(fa_, ">%s\n", name_.c_str());
    const uint64_t header_bytes = name_.size() + 2;
    std::fprintf(fai_, "%s\t%llu\t%llu\t%d\t%d\n", name_.c_str(), (unsigned long long)seq_.size(),
                 (unsigned long long)(offset_ + header_bytes), kLineWidth, kLineWidth + 1);
    uint64_t written = 0;
    std::string lines;
    lines.reserve(seq_.size() + seq_.size() / kLineWidth + 1);
    for (uint64_t i = 0; i < seq_.size(); i += kLineWidth) {
      const uint64_t n = std::min<uint64_t>(kLineWidth, seq_.size() - i);
      lines.append(seq_, i, n);
      lines.push_back('\n');
      written += n + 1;
    }
    if (std::fwrite(lines.data(), 1, lines.size(), fa_) != lines.size())
      throw std::runtime_error(out_path_ + ": write failed (disk full?)");
    offset_ += header_bytes + written;
    ++contigs_;
    total_ += seq_.size();
  }

  void finish() {
    for (FILE **f : {&fa_, &fai_, &seg_}) {
      const int rc = std::fclose(*f);
      *f = nullptr;
      if (rc != 0) throw std::runtime_error(out_path_ + ": close failed (disk full?)");
    }
  }
  uint64_t contigs() const { return contigs_; }
  uint64_t total() const { return total_; }

 private:
  const std::string &source_;
  std::string out_path_, name_, seq_;
  FILE *fa_ = nullptr, *fai_ = nullptr, *seg_ = nullptr;
  uint64_t offset_ = 0, contigs_ = 0, total_ = 0;
};

// A source start whose slice of len is at most a quarter N, so scaffolds are real sequence (the source has
// a 3 Mb centromere gap); deterministic because the retries draw from the same stream.
uint64_t pick_source_start(Rng &rng, const std::string &source, uint64_t len) {
  for (int attempt = 0;; ++attempt) {
    const uint64_t start = rng.below(source.size() - len);
    const uint64_t n = std::count(source.begin() + start, source.begin() + start + len, 'N');
    if (n * 4 <= len || attempt == 1000) return start;
  }
}

void write_copy_contig(GenomeWriter &w, Rng &rng, const std::string &source, const std::string &name,
                       uint64_t len, uint32_t divergence_ppm) {
  w.begin(name);
  w.append_copy(rng, pick_source_start(rng, source, len), len, rng.below(2) == 1, divergence_ppm);
  w.end();
}

void write_genome(const std::string &source, const Size &size, const std::string &out) {
  GenomeWriter w(out, source);
  Rng rng(0x6F6D696373645F31ULL + size.chrom_divisor);  // fixed seed per size

  // Chromosomes: chr20 is the real source (a slice centred on 10.05 Mb at reduced sizes, so real reads of
  // chr20:10.0-10.1 Mb still have their home); every other one is shuffled segments of diverged copies.
  for (const Chromosome &c : kChromosomes) {
    const uint64_t target = c.grch38_length / size.chrom_divisor;
    w.begin(c.name);
    if (std::string(c.name) == "chr20") {
      const uint64_t len =
          std::min<uint64_t>(size.chrom_divisor == 1 ? source.size() : target, source.size());
      const uint64_t centre = 10'050'000;
      const uint64_t start =
          len >= source.size() ? 0 : std::min(centre - std::min(centre, len / 2), source.size() - len);
      w.append_copy(rng, start, len, false, 0);
    } else {
      while (w.length() < target) {
        const uint64_t len = std::min(rng.between(size.segment_min, size.segment_max), target - w.length());
        const uint64_t start = rng.below(source.size() - len);
        const bool reverse = rng.below(2) == 1;
        const uint32_t ppm = kDivergencePpm[rng.below(kDivergencePpm.size())];
        w.append_copy(rng, start, len, reverse, ppm);
      }
    }
    w.end();
  }
  write_copy_contig(w, rng, source, "chrM", kChrMLength, 100000);

  // Scaffolds named like GRCh38's: accessions numbered from one counter so names never repeat.
  uint32_t ki = 302, gl = 8;
  auto chrom_of = [&](Rng &r) { return std::string(kChromosomes[r.below(kChromosomes.size())].name); };
  char name[96];
  for (uint32_t i = 0; i < size.n_random; ++i) {
    std::snprintf(name, sizeof name, "%s_KI270%03uv1_random", chrom_of(rng).c_str(), ki++);
    const uint64_t len = std::max<uint64_t>(1000, rng.skewed(2000, 200'000) / size.scaffold_divisor);
    write_copy_contig(w, rng, source, name, len, kDivergencePpm[rng.below(kDivergencePpm.size())]);
  }
  for (uint32_t i = 0; i < size.n_unplaced; ++i) {
    if (i % 4 == 3)
      std::snprintf(name, sizeof name, "chrUn_GL000%03uv2", gl++);
    else
      std::snprintf(name, sizeof name, "chrUn_KI270%03uv1", ki++);
    const uint64_t len = std::max<uint64_t>(1000, rng.skewed(1000, 180'000) / size.scaffold_divisor);
    write_copy_contig(w, rng, source, name, len, kDivergencePpm[rng.below(kDivergencePpm.size())]);
  }
  // Alts are alternate haplotypes: close copies (0.1% to 1%), so reads on them are multi-mapping.
  for (uint32_t i = 0; i < size.n_alt; ++i) {
    std::snprintf(name, sizeof name, "%s_KI270%03uv1_alt", chrom_of(rng).c_str(), ki++);
    const uint64_t len = std::max<uint64_t>(2000, rng.skewed(40'000, 600'000) / size.scaffold_divisor);
    write_copy_contig(w, rng, source, name, len, kDivergencePpm[rng.below(4)]);
  }
  for (uint32_t i = 0; i < size.n_decoy; ++i) {
    std::snprintf(name, sizeof name, "chrUn_JTFH01%06uv1_decoy", i + 1);
    write_copy_contig(w, rng, source, name, rng.skewed(1000, 30'000), 100000);
  }
  write_copy_contig(w, rng, source, "chrEBV", kChrEbvLength, 100000);

  // HLA alleles: per gene one source locus; each allele is a 1% copy of it, so alleles of one gene are
  // near-paralogs of each other, as in hs38DH. Names carry '*' and ':' (the point of having them).
  std::vector<uint64_t> gene_locus;
  for (size_t g = 0; g < kHlaGenes.size(); ++g) gene_locus.push_back(pick_source_start(rng, source, 6000));
  for (uint32_t i = 0; i < size.n_hla; ++i) {
    const size_t g = i % kHlaGenes.size();
    const uint32_t k = i / kHlaGenes.size();
    std::snprintf(name, sizeof name, "%s*%02u:%02u:%02u:%02u", kHlaGenes[g], 1 + k / 9, 1 + (k % 9) / 3,
                  1 + k % 3, 1 + static_cast<uint32_t>(rng.below(3)));
    w.begin(name);
    const uint64_t len = rng.between(2900, 5500);
    w.append_copy(rng, gene_locus[g], len, false, 10000);
    w.end();
  }
  w.finish();
  std::cerr << out << ": " << w.contigs() << " sequences, " << w.total() << " bases (size " << size.name
            << ")\n";
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 4) {
    std::cerr << "usage: human_scale_ref SOURCE.fa full|quarter|small OUT.fa\n";
    return 2;
  }
  try {
    const Size size = size_named(argv[2]);
    const std::string source = read_source(argv[1]);
    write_genome(source, size, argv[3]);
  } catch (const std::exception &e) {
    std::cerr << "human_scale_ref: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
