#include "host/index/minimizer.hpp"

#include <stdexcept>
#include <string>

namespace omicsd {

// Thomas Wang's 64-bit integer mix restricted to the low 2k bits. Every step (x + x<<s, x ^ x>>s,
// ~x + x<<s, all modulo 2^2k) is a bijection on 2k-bit values, so distinct k-mers never share a hash
// and the hash stays below 4^k (the index uses its top bits as the bucket number).
uint64_t minimizer_hash(uint64_t kmer_2bit, int k) {
  const uint64_t mask = (uint64_t(1) << (2 * k)) - 1;
  uint64_t x = kmer_2bit & mask;
  x = (~x + (x << 21)) & mask;
  x = x ^ (x >> 24);
  x = (x + (x << 3) + (x << 8)) & mask;
  x = x ^ (x >> 14);
  x = (x + (x << 2) + (x << 4)) & mask;
  x = x ^ (x >> 28);
  x = (x + (x << 31)) & mask;
  return x;
}

namespace {

struct Entry {
  uint64_t hash;
  uint32_t pos;
  uint8_t reverse;
  uint32_t rank;  // index of this k-mer among the valid k-mers of the current N-free segment
};

}  // namespace

// Sliding-window minimum with a monotone deque held in a ring buffer of w slots. The deque keeps
// equal hashes (pops only strictly larger ones from the back), so all tied minima of a window form
// its front run. Emission never goes backwards in position (a newly emitted k-mer is either the
// newest one or follows every earlier emission), so one cursor `next` into the deque marks the first
// element not emitted yet: each element is pushed, popped and emitted at most once -> O(n).
void compute_minimizers(const uint8_t* codes, uint32_t n, int k, int w, std::vector<Minimizer>& out) {
  out.clear();
  if (k < 1 || k > 28 || w < 1 || w > 255) {
    throw std::invalid_argument("compute_minimizers: k must be 1..28 and w 1..255 (k=" + std::to_string(k) +
                                ", w=" + std::to_string(w) + ")");
  }
  if (n < uint32_t(k)) return;
  out.reserve(out.size() + size_t(n) * 2 / (w + 1) + 16);

  const uint64_t mask = (uint64_t(1) << (2 * k)) - 1;
  const int rev_shift = 2 * (k - 1);
  const uint64_t cap = uint64_t(w);
  // The deque never holds more than w <= 255 elements, so a 256-slot ring indexed by the low bits of
  // absolute indices suffices: deque = [head, tail), next in [head, tail].
  constexpr uint64_t kSlots = 256;
  Entry ring[kSlots];
  auto at = [&ring](uint64_t idx) -> Entry& { return ring[idx & (kSlots - 1)]; };
  uint64_t head = 0, tail = 0, next = 0;
  uint64_t fwd = 0, rev = 0;
  uint32_t run = 0;    // bases since the last N
  uint32_t valid = 0;  // valid k-mers in the current segment

  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t c = codes[i];
    if (c > 3) {  // N: restart k-mers and windows
      run = 0;
      valid = 0;
      head = tail = next = 0;
      continue;
    }
    fwd = ((fwd << 2) | c) & mask;
    rev = (rev >> 2) | (uint64_t(3 - c) << rev_shift);
    if (++run < uint32_t(k)) continue;
    if (fwd == rev) continue;  // palindrome: no strand to record, skipped (windows run across it)

    const bool is_rev = rev < fwd;
    Entry e{minimizer_hash(is_rev ? rev : fwd, k), i + 1 - uint32_t(k), uint8_t(is_rev), valid++};
    while (tail > head && at(tail - 1).hash > e.hash) --tail;
    if (next > tail) next = tail;
    at(tail++) = e;
    // Drop k-mers that left the window [valid - w, valid).
    while (uint64_t(at(head).rank) + cap < valid) ++head;
    if (next < head) next = head;
    if (valid < cap) continue;  // no full window yet

    const uint64_t min_hash = at(head).hash;
    while (next < tail && at(next).hash == min_hash) {
      const Entry& m = at(next);
      out.push_back(Minimizer{m.hash, m.pos, m.reverse});
      ++next;
    }
  }
}

}  // namespace omicsd
