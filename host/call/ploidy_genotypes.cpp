#include "host/call/ploidy_genotypes.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "host/common/error.hpp"

namespace omicsd {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

void check_ploidy(int ploidy, const char* what) {
  if (ploidy < 1 || ploidy > kMaxPloidy)
    throw InputError(std::string(what) + ": ploidy " + std::to_string(ploidy) + " must be between 1 and " +
                     std::to_string(kMaxPloidy));
}

// C(n, k) for the small values used here (n <= alleles + kMaxPloidy).
size_t choose(size_t n, size_t k) {
  if (k > n) return 0;
  k = std::min(k, n - k);
  size_t r = 1;
  for (size_t i = 1; i <= k; ++i) r = r * (n - k + i) / i;  // exact: r * (n-k+i) is divisible by i
  return r;
}

// Harmonic number 1 + 1/2 + ... + 1/P (the prior mass of all non-reference genotypes is theta * H_P).
double harmonic(int ploidy) {
  double h = 0.0;
  for (int k = 1; k <= ploidy; ++k) h += 1.0 / k;
  return h;
}

}  // namespace

size_t genotype_count(size_t n_alleles, int ploidy) {
  if (ploidy <= 0) return 1;
  if (n_alleles == 0) return 0;
  return choose(n_alleles + size_t(ploidy) - 1, size_t(ploidy));
}

size_t genotype_index(std::vector<int> alleles) {
  std::sort(alleles.begin(), alleles.end());
  size_t index = 0;
  for (size_t i = 0; i < alleles.size(); ++i) {
    if (alleles[i] < 0) throw InputError("genotype index: negative allele " + std::to_string(alleles[i]));
    index += choose(size_t(alleles[i]) + i, i + 1);  // C(a_i + i - 1, i) with 1-based i
  }
  return index;
}

std::vector<int> genotype_alleles(size_t index, int ploidy) {
  check_ploidy(ploidy, "genotype alleles");
  // Greedy from the last allele: a_P is the largest a with C(a + P - 1, P) <= index, and so on down.
  std::vector<int> out(size_t(ploidy), 0);
  for (int i = ploidy; i >= 1; --i) {
    size_t a = 0;
    while (choose(a + 1 + size_t(i) - 1, size_t(i)) <= index) ++a;
    out[size_t(i - 1)] = int(a);
    index -= choose(a + size_t(i) - 1, size_t(i));
  }
  return out;
}

std::vector<std::vector<int>> enumerate_genotypes(size_t n_alleles, int ploidy) {
  check_ploidy(ploidy, "genotype enumeration");
  std::vector<std::vector<int>> out;
  if (n_alleles == 0) return out;
  out.reserve(genotype_count(n_alleles, ploidy));
  // Next genotype in VCF (colexicographic) order: raise the lowest allele that may grow (a_i < a_{i+1},
  // or a_P < N - 1) and reset every allele below it to 0.
  std::vector<int> g(size_t(ploidy), 0);
  const int top = int(n_alleles) - 1;
  for (;;) {
    out.push_back(g);
    size_t i = 0;
    while (i < g.size() && g[i] == (i + 1 < g.size() ? g[i + 1] : top)) ++i;
    if (i == g.size()) break;
    ++g[i];
    for (size_t j = 0; j < i; ++j) g[j] = 0;
  }
  return out;
}

std::vector<double> genotype_log10_likelihoods(const double* read_log10, size_t n_reads, size_t n_alleles,
                                               int ploidy, const GenotypeLikelihoodParams& params) {
  if (ploidy == 2) return diploid_genotype_log10_likelihoods(read_log10, n_reads, n_alleles, params);
  check_ploidy(ploidy, "genotype likelihoods");
  const std::vector<std::vector<int>> genotypes = enumerate_genotypes(n_alleles, ploidy);
  std::vector<double> gl(genotypes.size(), 0.0);
  const double log10_ploidy = std::log10(double(ploidy));
  std::vector<double> row(n_alleles);
  for (size_t r = 0; r < n_reads; ++r) {
    if (!capped_read_row(read_log10 + r * n_alleles, n_alleles, params, row)) continue;
    for (size_t g = 0; g < genotypes.size(); ++g) {
      const std::vector<int>& alleles = genotypes[g];
      double mx = kNegInf;
      for (int a : alleles) mx = std::max(mx, row[size_t(a)]);
      if (!(mx > kNegInf)) {
        gl[g] = kNegInf;
        continue;
      }
      double s = 0.0;  // copies are summed in allele order: the result never depends on threads
      for (int a : alleles) s += std::pow(10.0, row[size_t(a)] - mx);
      gl[g] += mx + std::log10(s) - log10_ploidy;
    }
  }
  return gl;
}

std::vector<double> genotype_log10_priors(size_t n_alleles, int ploidy, const GenotypePriorParams& params) {
  if (ploidy == 2) return genotype_log10_priors(n_alleles, params);
  check_ploidy(ploidy, "genotype priors");
  const size_t G = genotype_count(n_alleles, ploidy);
  std::vector<double> lp(G, 0.0);
  if (G == 0) return lp;
  if (params.flat) {
    std::fill(lp.begin(), lp.end(), -std::log10(double(G)));
    return lp;
  }
  const double h = harmonic(ploidy);
  if (!(params.theta > 0.0 && params.theta * h < 1.0))
    throw InputError("genotype priors: heterozygosity " + std::to_string(params.theta) + " must be in (0, " +
                     std::to_string(1.0 / h) + ") for ploidy " + std::to_string(ploidy));
  if (n_alleles == 1) return lp;  // hom-ref only: prior 1
  const size_t n_alt = n_alleles - 1;
  const std::vector<std::vector<int>> genotypes = enumerate_genotypes(n_alleles, ploidy);
  for (size_t g = 0; g < G; ++g) {
    const size_t k =
        size_t(std::count_if(genotypes[g].begin(), genotypes[g].end(), [](int a) { return a > 0; }));
    // Genotypes with exactly k alt copies: multisets of k of the n_alt alternate alleles.
    const double p =
        k == 0 ? 1.0 - params.theta * h : params.theta / double(k) / double(genotype_count(n_alt, int(k)));
    lp[g] = std::log10(p);
  }
  return lp;
}

double qual_not_hom_ref(const std::vector<double>& gls, size_t n_alleles, int ploidy,
                        const GenotypePriorParams& params) {
  if (ploidy == 2) return qual_not_hom_ref(gls, n_alleles, params);
  check_ploidy(ploidy, "variant quality");
  if (gls.size() != genotype_count(n_alleles, ploidy))
    throw InputError("variant quality: " + std::to_string(gls.size()) + " likelihoods for " +
                     std::to_string(n_alleles) + " alleles at ploidy " + std::to_string(ploidy));
  if (n_alleles < 2) return 0.0;
  return qual_not_hom_ref_given_priors(gls, genotype_log10_priors(n_alleles, ploidy, params));
}

}  // namespace omicsd
