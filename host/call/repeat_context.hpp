#pragma once
// Short tandem repeat context of a position, and the pair-HMM gap-open penalty it implies.
//
// Polymerase slippage makes indel errors far more frequent in long, pure tandem repeats: a read
// carries a spurious +-1 unit in a 20 bp homopolymer much more often than in unique sequence. A
// pair-HMM with one gap-open penalty for every position therefore turns those errors into confident
// false indels. As GATK's DRAGstr and bcftools' indel model do, the gap-open penalty is lowered with
// the repeat's period and length; windows are scored with the penalty of their most repetitive
// candidate (host/call/genotyper.cpp groups windows by penalty, one backend batch per group, so every
// backend still computes one PairHmmParams per batch and stays bit-identical).
#include <cstdint>
#include <string>

namespace omicsd {

inline constexpr int kMaxRepeatPeriod = 6;

// A tandem repeat: [begin, end) is a maximal run in which base i equals base i + period; it holds at
// least two full copies of its unit (end - begin >= 2 * period). period 0: no repeat.
struct RepeatContext {
  int period = 0;
  int64_t begin = 0, end = 0;
  int64_t length() const { return end - begin; }
  // Whole units in the tract (length / period); 0 without a repeat.
  int64_t units() const { return period > 0 ? length() / period : 0; }
  bool operator==(const RepeatContext&) const = default;
};

// The longest tandem repeat of period 1..max_period over `codes` [0, len) that contains position
// `pos` (ties: the shorter period). Runs containing a code > 3 (N) do not count as repeats. A pure
// run of one base is period 1 even though it is also periodic with 2, 3, ...: the shortest period of
// the longest tract wins. period 0 when no tract of two full units contains pos.
RepeatContext find_repeat_context(const uint8_t* codes, int64_t len, int64_t pos,
                                  int max_period = kMaxRepeatPeriod);

// The repeat context of an indel allele whose padding base is at `pos` (the event sits between pos
// and pos + 1): the longer of the contexts at pos + 1 and at pos (an insertion after the last base of
// a run extends that run). For SNVs pass the SNV's position as both.
RepeatContext find_indel_repeat_context(const uint8_t* codes, int64_t len, int64_t pos,
                                        int max_period = kMaxRepeatPeriod);

// Share of the positions of [begin, end) (clamped to the sequence) that lie in a tandem-repeat tract
// of period 1..max_period, at least two copies and at least min_tract bases: how much of a stretch is
// low-complexity sequence reads cannot be placed in reliably. 0 for an empty range.
inline constexpr int kMinDenseTract = 8;
double tandem_repeat_density(const uint8_t* codes, int64_t len, int64_t begin, int64_t end,
                             int min_tract = kMinDenseTract, int max_period = kMaxRepeatPeriod);

// The repeat unit as bases (empty without a repeat).
std::string repeat_unit(const uint8_t* codes, const RepeatContext& rc);

// Indel error model of a tract: the probability that a read crossing it carries a spurious indel
// there. 0 outside repeats and below a period's threshold (4 copies of a homopolymer base, 3 of a
// longer unit); from there it grows tenfold every 6 (period 1) or 4 (longer periods) further copies,
// 1e-4 at the threshold, up to kMaxRepeatIndelError. The shape of published Illumina slippage rates
// (DRAGstr's and bcftools' models rise the same way) without pretending to be fitted values.
inline constexpr double kMaxRepeatIndelError = 0.05;
double repeat_indel_error(const RepeatContext& rc);

// Gap-open penalty (Phred) of the pair-HMM for reads over the tract: the pair-HMM opens a gap at
// each of the tract's positions, so the per-position penalty spreads the tract's error probability
// over its length, -10 log10(error / length), rounded to an integer (windows fall into few batches)
// and kept within [kMinRepeatGapOpen, kUniqueGapOpen]. kUniqueGapOpen (45, the pair-HMM default)
// outside repeats.
inline constexpr int kUniqueGapOpen = 45;
inline constexpr int kMinRepeatGapOpen = 20;
int repeat_gap_open(const RepeatContext& rc);

}  // namespace omicsd
