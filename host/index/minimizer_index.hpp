#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "host/io/reference.hpp"

namespace omicsd {

struct IndexParams {
  int k = 19;
  int w = 10;
  int threads = 0;  // build threads (minimizer extraction and sorting); 0: all cores. Not stored.
};

// One reference position of an indexed minimizer: the global offset (see Reference::codes()) of the
// k-mer's first base, and whether the canonical form was the reverse strand there.
struct IndexHit {
  uint64_t pos;
  uint8_t reverse;
};

// Minimizer index of a Reference: saved next to the FASTA as `<fasta>.omi`, memory-mapped on load.
// The file records k, w and the reference digest; opening it against another reference fails.
class MinimizerIndex {
 public:
  MinimizerIndex();
  ~MinimizerIndex();
  MinimizerIndex(MinimizerIndex&&) noexcept;
  MinimizerIndex& operator=(MinimizerIndex&&) noexcept;

  // Builds and writes the index atomically (temp name, fsync, rename). Returns the path written.
  // Memory: 8 bytes per minimizer position (about 1.4 bytes per base at w=10) besides the reference,
  // plus one partition per thread while sorting; 16 bytes per position for k > 22 on a human-sized
  // reference, where a position and the hash's low bits no longer fit in 64 bits.
  static std::string build(const Reference& ref, const IndexParams& params, const std::string& out_path);
  // Memory-maps an index file; throws InputError if it is missing, corrupt, or built for another reference.
  static MinimizerIndex open(const std::string& index_path, const Reference& ref);
  // Opens `<fasta>.omi`, building it first when it is missing or stale (different k/w/reference).
  static MinimizerIndex open_or_build(const Reference& ref, const IndexParams& params);
  static std::string default_path(const std::string& fasta_path) { return fasta_path + ".omi"; }

  int k() const;
  int w() const;
  uint64_t num_keys() const;       // distinct minimizer hashes
  uint64_t num_positions() const;  // total positions stored
  // All reference positions of minimizers with this hash (empty span when absent). The encoding is
  // (global_pos << 1) | reverse; use decode_hit().
  std::span<const uint64_t> lookup(uint64_t hash) const;
  static IndexHit decode_hit(uint64_t v) { return IndexHit{v >> 1, uint8_t(v & 1)}; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

namespace detail {
// For tests: MinimizerIndex::build through the 16-byte path whatever k and the reference's size
// (the file is the same).
std::string build_index_16_byte(const Reference& ref, const IndexParams& params, const std::string& out_path);
}  // namespace detail

}  // namespace omicsd
