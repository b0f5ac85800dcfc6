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

}  // namespace omicsd
