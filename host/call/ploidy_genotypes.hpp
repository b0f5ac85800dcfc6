#pragma once
// Genotypes of any ploidy P over N alleles: enumeration in VCF order, likelihoods, priors and QUAL.
// Host only: the GPU computes the read x haplotype pair-HMM matrix, the genotype sums here are cheap.
//
// A genotype is a multiset of P alleles, written as its alleles sorted ascending (a_1 <= ... <= a_P).
// There are C(N + P - 1, P) of them. VCF order (VCF 4.3 section 1.6.2, "Genotype ordering") is
//   for a_P in 0..N-1: for a_{P-1} in 0..a_P: ... for a_1 in 0..a_2: (a_1, ..., a_P)
// and the index of (a_1, ..., a_P) is sum_{i=1..P} C(a_i + i - 1, i). For P = 2 that is
// a_2 (a_2 + 1) / 2 + a_1, the diploid order of genotype_likelihoods.hpp; for P = 1 it is the allele.
//
// Diploid calls (P = 2) go through the functions of genotype_likelihoods.hpp unchanged, so diploid
// output is bit-identical to what it was before ploidy was a parameter.
#include <cstddef>
#include <vector>

#include "host/call/genotype_likelihoods.hpp"

namespace omicsd {

inline constexpr int kMaxPloidy = 10;  // C(N + 9, 10) genotypes: 8,008 for a 7-allele site

// C(n_alleles + ploidy - 1, ploidy); 1 for ploidy 0.
size_t genotype_count(size_t n_alleles, int ploidy);
// Index in VCF order of the genotype with these alleles (any order; size = ploidy).
size_t genotype_index(std::vector<int> alleles);
// The alleles, ascending, of genotype `index` of the given ploidy.
std::vector<int> genotype_alleles(size_t index, int ploidy);
// Every genotype of n_alleles alleles and the given ploidy, in VCF order, each sorted ascending.
std::vector<std::vector<int>> enumerate_genotypes(size_t n_alleles, int ploidy);

// Genotype log10 likelihoods for ploidy P from a row-major n_reads x n_alleles matrix of per-read
// log10 likelihoods L[r][a] (the standard model: each read comes from one of the P chromosome
// copies, uniformly):
//   GL(g) = sum_r log10( (1/P) sum_{i=1..P} 10^L[r][g_i] )
// with the same per-read cap as the diploid function (each L[r][a] raised to at least
// max_a L[r][a] - cap) and reads with no finite likelihood skipped. P = 2 is
// diploid_genotype_log10_likelihoods itself. Returns genotype_count(n_alleles, P) values in VCF order.
std::vector<double> genotype_log10_likelihoods(const double* read_log10, size_t n_reads, size_t n_alleles,
                                               int ploidy, const GenotypeLikelihoodParams& params = {});

// Genotype priors for ploidy P by the number k of alternate allele copies (the neutral-coalescent
// prior GATK uses for any ploidy): the genotypes with k >= 1 alt copies share theta / k equally, and
// hom-ref gets 1 - theta * (1 + 1/2 + ... + 1/P). P = 2: 1 - 1.5 theta, theta, theta / 2 for a
// biallelic site, exactly genotype_log10_priors(n_alleles); P = 1: 1 - theta, theta. theta must be in
// (0, 1 / (1 + 1/2 + ... + 1/P)). `flat` gives every genotype 1 / G.
std::vector<double> genotype_log10_priors(size_t n_alleles, int ploidy,
                                          const GenotypePriorParams& params = {});

// QUAL = -10 log10 P(hom-ref | reads) for ploidy P under the priors above (qual_not_hom_ref for P = 2).
double qual_not_hom_ref(const std::vector<double>& gls, size_t n_alleles, int ploidy,
                        const GenotypePriorParams& params = {});

}  // namespace omicsd
