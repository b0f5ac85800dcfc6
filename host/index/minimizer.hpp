#pragma once
#include <cstdint>
#include <vector>

namespace omicsd {

// A (w,k)-minimizer of a base-code sequence: the k-mer with the smallest hash among w consecutive
// k-mers, hashed on its canonical (strand-independent) form.
struct Minimizer {
  uint64_t hash = 0;    // invertible 64-bit mix of the canonical 2-bit k-mer
  uint32_t pos = 0;     // position of the k-mer's first base in the sequence
  uint8_t reverse = 0;  // 1 when the canonical form is the reverse complement of the forward k-mer
};

// Appends the minimizers of codes[0..n) to `out` (cleared first) in increasing position order.
// K-mers containing a code >= 4 (N) are skipped; equal-hash ties in a window keep every tied k-mer
// once. 1 <= k <= 28, 1 <= w <= 255.
void compute_minimizers(const uint8_t* codes, uint32_t n, int k, int w, std::vector<Minimizer>& out);

// The hash used for minimizers (exposed for tests).
uint64_t minimizer_hash(uint64_t kmer_2bit, int k);

}  // namespace omicsd
