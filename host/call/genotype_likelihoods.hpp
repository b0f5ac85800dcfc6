#pragma once
// Diploid genotype likelihoods from read x haplotype (or read x allele) likelihoods, PL / GQ / QUAL,
// and the per-site marginalisation of haplotype genotypes. Host only (the GPU computes the pair-HMM
// matrix; these sums are cheap).
//
// Genotypes are unordered pairs (j, k), j <= k, of haplotypes or alleles in VCF order: the genotype
// (j, k) has index k * (k + 1) / 2 + j, so for alleles 0,1,2 the order is 0/0, 0/1, 1/1, 0/2, 1/2, 2/2.
// Allele (or haplotype) 0 is the reference.
//
// Likelihood of genotype (j, k) over reads r with per-read log10 likelihoods L[r][*]:
//   GL(j,k) = sum_r log10(0.5 * 10^L[r][j] + 0.5 * 10^L[r][k])
// computed as max + log10(1 + 10^(min - max)) - log10(2) (GL(j,j) = sum_r L[r][j] exactly), reads
// summed in order. Optional per-read cap (GATK's global read mismapping rate, Phred 45 by default):
// before the sums each L[r][h] is raised to at least max_h L[r][h] - cap, so one read that fits no
// haplotype well (a mismapped read) costs a genotype at most `cap` log10 units.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace omicsd {

inline constexpr size_t genotype_count(size_t n_alleles) { return n_alleles * (n_alleles + 1) / 2; }
// Index of the unordered genotype {a, b} (either order).
inline constexpr size_t genotype_index(size_t a, size_t b) {
  return a <= b ? b * (b + 1) / 2 + a : a * (a + 1) / 2 + b;
}
// The alleles (j, k), j <= k, of genotype `index`.
std::pair<size_t, size_t> genotype_alleles(size_t index);

struct GenotypeLikelihoodParams {
  // Per-read cap in log10 units (GATK: --phred-scaled-global-read-mismapping-rate 45 -> 4.5).
  // Infinity, NaN or a value <= 0 turns the cap off.
  double read_cap_log10 = 4.5;
};

// One read's row of log10 likelihoods (n columns) as every genotype model uses it: each entry raised
// to at least best - read_cap_log10 (the mismapping cap, when on), written to row[0..n). False when the
// read fits no column at all (all -infinity or NaN): it carries no information and is skipped. Shared
// by the diploid and any-ploidy likelihoods (ploidy_genotypes.hpp) so they treat reads alike.
bool capped_read_row(const double* read_log10, size_t n, const GenotypeLikelihoodParams& params,
                     std::vector<double>& row);

// Diploid genotype log10 likelihoods for every unordered pair of the n_haps columns of a row-major
// n_reads x n_haps matrix of log10 likelihoods (entries may be -infinity). Returns
// genotype_count(n_haps) values in VCF genotype order; all zero when there are no reads.
std::vector<double> diploid_genotype_log10_likelihoods(const double* read_log10, size_t n_reads,
                                                       size_t n_haps,
                                                       const GenotypeLikelihoodParams& params = {});
inline std::vector<double> diploid_genotype_log10_likelihoods(const std::vector<double>& read_log10,
                                                              size_t n_reads, size_t n_haps,
                                                              const GenotypeLikelihoodParams& params = {}) {
  return diploid_genotype_log10_likelihoods(read_log10.data(), n_reads, n_haps, params);
}

// GATK-style marginalisation of a read x haplotype matrix to a read x allele matrix at one site: each
// read's likelihood for allele a is the best over the haplotypes carrying a (hap_allele[h] == a;
// hap_allele[h] < 0 marks a haplotype that does not inform the site, which is skipped). An allele no
// haplotype carries gets -infinity. This is what GATK's HaplotypeCaller does before computing site
// genotype likelihoods (ReadLikelihoods.marginalize).
std::vector<double> marginalize_read_likelihoods(const double* read_hap_log10, size_t n_reads, size_t n_haps,
                                                 const std::vector<int>& hap_allele, size_t n_alleles);

// Folds haplotype-pair genotype likelihoods (genotype_count(n_haps) values, VCF order over
// haplotypes) into site genotype likelihoods over n_alleles alleles: GL(site genotype {a, b}) is the
// maximum over haplotype pairs {h1, h2} with {hap_allele[h1], hap_allele[h2]} == {a, b}; -infinity
// when no pair is consistent; haplotypes with hap_allele < 0 are skipped.
std::vector<double> marginalize_genotype_likelihoods(const std::vector<double>& hap_pair_log10, size_t n_haps,
                                                     const std::vector<int>& hap_allele, size_t n_alleles);

// Index of the most likely genotype (the first one on ties).
size_t best_genotype(const std::vector<double>& gls);

// Phred-scaled normalised likelihoods: PL = round(-10 * (GL - max GL)), so the best is 0; -infinity
// (and anything beyond) is capped at kMaxPl.
inline constexpr int kMaxPl = std::numeric_limits<int>::max();
std::vector<int> pl_from_log10(const std::vector<double>& gls);

// Genotype quality: the second smallest PL (the best is 0), capped at `cap` (99 as GATK and bcftools
// print it). 0 with fewer than two genotypes.
int gq_from_pl(const std::vector<int>& pls, int cap = 99);

// Genotype priors by the number of alternate allele copies, for `theta` (heterozygosity, 0.001 for
// human): hom-ref 1 - 1.5 theta; genotypes with one ref and one alt share theta equally; genotypes
// with two alt copies (hom-alt, or alt/alt het at a multi-allelic site) share theta / 2 equally. For a
// biallelic site that is 1 - 1.5 theta, theta, theta / 2. `flat` gives every genotype 1 / G instead.
struct GenotypePriorParams {
  double theta = 0.001;
  bool flat = false;
};
std::vector<double> genotype_log10_priors(size_t n_alleles, const GenotypePriorParams& params = {});

// Normalised log10 posteriors: GL + log10 prior, less their log10-sum-exp.
std::vector<double> genotype_log10_posteriors(const std::vector<double>& gls, size_t n_alleles,
                                              const GenotypePriorParams& params = {});

// Variant QUAL as bcftools and GATK present it: -10 log10 P(genotype is hom-ref | reads), the Phred
// probability that the site is not variant, under the priors above. >= 0; 0 when hom-ref is certain;
// large and finite when it is impossible by the data (capped at kMaxQual).
inline constexpr double kMaxQual = 1e6;
double qual_not_hom_ref(const std::vector<double>& gls, size_t n_alleles,
                        const GenotypePriorParams& params = {});
// The same from given log10 priors (one per genotype, hom-ref first): any ploidy.
double qual_not_hom_ref_given_priors(const std::vector<double>& gls, const std::vector<double>& log10_priors);

// log10(10^a + 10^b), stable; -infinity when both are.
double log10_sum_exp(double a, double b);
// log10(sum 10^x), stable.
double log10_sum_exp(const std::vector<double>& xs);

}  // namespace omicsd
