#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "host/call/pair_hmm.hpp"

namespace omicsd {

// A batch of pair-HMM evaluations in structure-of-arrays form: reads (bases + Phred qualities),
// haplotypes, and the (read, haplotype) pairs to score. The unit a backend computes in one call (one
// kernel launch series on the GPU). Bases are codes 0..4 (host/common/dna.hpp); quality bytes are
// Phred values (above kPairHmmMaxQual count as kPairHmmMaxQual).
struct HmmTaskBatch {
  std::vector<uint8_t> read_bases;    // all reads, concatenated
  std::vector<uint8_t> read_quals;    // one per read base, same layout as read_bases
  std::vector<uint32_t> read_offset;  // per read
  std::vector<uint32_t> read_length;
  std::vector<uint8_t> hap_bases;    // all haplotypes, concatenated
  std::vector<uint32_t> hap_offset;  // per haplotype
  std::vector<uint32_t> hap_length;
  std::vector<uint32_t> read_index;  // per pair: which read ...
  std::vector<uint32_t> hap_index;   // ... against which haplotype

  size_t size() const { return read_index.size(); }  // pairs
  size_t num_reads() const { return read_length.size(); }
  size_t num_haplotypes() const { return hap_length.size(); }
  void clear() {
    read_bases.clear();
    read_quals.clear();
    read_offset.clear();
    read_length.clear();
    hap_bases.clear();
    hap_offset.clear();
    hap_length.clear();
    read_index.clear();
    hap_index.clear();
  }
  // Adds a read (len bases and len qualities); returns its index.
  uint32_t add_read(const uint8_t* bases, const uint8_t* quals, uint32_t len) {
    read_offset.push_back(uint32_t(read_bases.size()));
    read_bases.insert(read_bases.end(), bases, bases + len);
    read_quals.insert(read_quals.end(), quals, quals + len);
    read_length.push_back(len);
    return uint32_t(read_length.size() - 1);
  }
  // Adds a haplotype; returns its index.
  uint32_t add_haplotype(const uint8_t* bases, uint32_t len) {
    hap_offset.push_back(uint32_t(hap_bases.size()));
    hap_bases.insert(hap_bases.end(), bases, bases + len);
    hap_length.push_back(len);
    return uint32_t(hap_length.size() - 1);
  }
  // Adds a pair to evaluate; returns its index (the position of its result).
  size_t add_pair(uint32_t read, uint32_t hap) {
    read_index.push_back(read);
    hap_index.push_back(hap);
    return size() - 1;
  }
  // Adds every read against every haplotype, read-major: pair r * num_haplotypes() + h when the batch
  // had no pairs before (the layout of a read x haplotype likelihood matrix).
  void add_all_pairs() {
    for (uint32_t r = 0; r < uint32_t(num_reads()); ++r)
      for (uint32_t h = 0; h < uint32_t(num_haplotypes()); ++h) add_pair(r, h);
  }
};

// Results, one per pair, same order: log10 P(read | haplotype) (pair_hmm_log10: the float pass's
// value widened to double, or the double pass's where the float one underflowed), and which pass
// gave it (PairHmmPass as uint8_t; for statistics and tests).
struct HmmResultBatch {
  std::vector<double> log10_likelihood;
  std::vector<uint8_t> pass;

  size_t size() const { return log10_likelihood.size(); }
  void resize(size_t n) {
    log10_likelihood.assign(n, 0.0);
    pass.assign(n, uint8_t(PairHmmPass::kNone));
  }
};

// The hot genotyping stage. Implementations: CPU (host/call/cpu_genotype_backend) and CUDA (cuda/).
// Every backend returns bit-identical results for the same batch (see host/call/pair_hmm.hpp).
class GenotypeBackend {
 public:
  virtual ~GenotypeBackend() = default;
  virtual std::string name() const = 0;
  // Throws InputError for a malformed batch (index or offset out of range, missing qualities) or
  // parameters that make no model.
  virtual void compute(const HmmTaskBatch& tasks, const PairHmmParams& params, HmmResultBatch& out) = 0;
};

// Checks a batch's internal consistency (every backend calls it before computing). Throws InputError.
void validate_hmm_batch(const HmmTaskBatch& tasks);

// Multi-threaded CPU backend (threads <= 0: hardware concurrency). Results do not depend on threads.
std::unique_ptr<GenotypeBackend> make_cpu_genotype_backend(int threads);

// How the engine gets the genotyping backend of a run (see AlignBackendFactory).
using GenotypeBackendFactory = std::function<std::unique_ptr<GenotypeBackend>(int threads)>;

// The lane-vector CPU backend ("cpu-simt"): the CUDA kernels' warp-cooperative float pass
// (host/call/pair_hmm_warp.hpp) run through the lane layer's CPU emulation, the scalar double pass
// where it underflows, the scalar pass for pairs too small for a lane group. Bit-identical with the CPU
// backend: what CI runs to prove the device algorithm.
std::unique_ptr<GenotypeBackend> make_simt_cpu_genotype_backend(int threads);

// The order both warp backends process a batch's pairs in: by lane-group width (pair_hmm_warp_p,
// ascending; 0, the scalar-only pairs, first), most steps first within a width.
std::vector<uint32_t> warp_pair_order(const HmmTaskBatch& tasks);

}  // namespace omicsd
