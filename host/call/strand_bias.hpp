#pragma once
// Strand-bias statistics of a site, as GATK defines them (FisherStrand FS, StrandOddsRatio SOR), from
// the 2x2 table of reads supporting the reference or an alternate allele on the forward or reverse
// strand. A real variant is seen on both strands in about the proportion the reference is; an artefact
// of one strand's chemistry or of alignment at one read end is not.

namespace omicsd {

struct StrandTable {
  int ref_fwd = 0, ref_rev = 0, alt_fwd = 0, alt_rev = 0;
  int total() const { return ref_fwd + ref_rev + alt_fwd + alt_rev; }
};

// Two-sided Fisher exact test p-value of the 2x2 table [[a, b], [c, d]] (R's fisher.test): the sum of
// the hypergeometric probabilities, over the tables with the same margins, of those no more likely
// than the observed one (within a relative 1e-7, R's tolerance for ties). 1 for an empty table.
double fisher_exact_two_sided(int a, int b, int c, int d);

// GATK FisherStrand: -10 log10 of the Fisher p-value of the table, the table first scaled down to
// about 200 reads when it holds more than 400 (GATK's normalisation: at high depth any tiny imbalance
// becomes "significant"); the p-value is floored at 1e-320. 0 means no evidence of bias.
double fisher_strand(const StrandTable& t);

// GATK StrandOddsRatio: with every cell + 1, R = (ref_fwd / ref_rev) * (alt_rev / alt_fwd);
// SOR = ln(R + 1/R) + ln(min(ref_fwd, ref_rev) / max(ref_fwd, ref_rev))
//                   - ln(min(alt_fwd, alt_rev) / max(alt_fwd, alt_rev)).
// Unlike FS it does not grow with depth; about 0.7 for a balanced site.
double strand_odds_ratio(const StrandTable& t);

}  // namespace omicsd
