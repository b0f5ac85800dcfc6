#include "host/call/genotype_likelihoods.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "host/common/error.hpp"

namespace omicsd {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr double kLog10Two = 0.30102999566398119521;
constexpr double kLn10 = 2.30258509299404568402;

void check_hap_alleles(const std::vector<int>& hap_allele, size_t n_haps, size_t n_alleles,
                       const char* what) {
  if (hap_allele.size() != n_haps)
    throw InputError(std::string(what) + ": " + std::to_string(hap_allele.size()) +
                     " haplotype alleles for " + std::to_string(n_haps) + " haplotypes");
  for (size_t h = 0; h < n_haps; ++h)
    if (hap_allele[h] >= 0 && size_t(hap_allele[h]) >= n_alleles)
      throw InputError(std::string(what) + ": haplotype " + std::to_string(h) + " carries allele " +
                       std::to_string(hap_allele[h]) + " of " + std::to_string(n_alleles));
}

}  // namespace

std::pair<size_t, size_t> genotype_alleles(size_t index) {
  // k is the largest value with k(k+1)/2 <= index.
  size_t k = size_t((std::sqrt(8.0 * double(index) + 1.0) - 1.0) / 2.0);
  while (k * (k + 1) / 2 > index) --k;
  while ((k + 1) * (k + 2) / 2 <= index) ++k;
  return {index - k * (k + 1) / 2, k};
}

double log10_sum_exp(double a, double b) {
  if (a < b) std::swap(a, b);
  if (b == kNegInf) return a;
  return a + std::log1p(std::pow(10.0, b - a)) / kLn10;
}

double log10_sum_exp(const std::vector<double>& xs) {
  double mx = kNegInf;
  for (double x : xs) mx = std::max(mx, x);
  if (mx == kNegInf) return kNegInf;
  double s = 0.0;
  for (double x : xs) s += std::pow(10.0, x - mx);
  return mx + std::log10(s);
}

bool capped_read_row(const double* in, size_t n, const GenotypeLikelihoodParams& params,
                     std::vector<double>& row) {
  const bool capped = std::isfinite(params.read_cap_log10) && params.read_cap_log10 > 0.0;
  double best = kNegInf;
  for (size_t h = 0; h < n; ++h) best = std::max(best, in[h]);
  if (!(best > kNegInf)) return false;
  const double floor = capped ? best - params.read_cap_log10 : kNegInf;
  for (size_t h = 0; h < n; ++h) row[h] = std::max(in[h], floor);
  return true;
}

std::vector<double> diploid_genotype_log10_likelihoods(const double* read_log10, size_t n_reads,
                                                       size_t n_haps,
                                                       const GenotypeLikelihoodParams& params) {
  const size_t G = genotype_count(n_haps);
  std::vector<double> gl(G, 0.0);
  std::vector<double> row(n_haps);
  for (size_t r = 0; r < n_reads; ++r) {
    if (!capped_read_row(read_log10 + r * n_haps, n_haps, params, row)) continue;
    for (size_t k = 0; k < n_haps; ++k) {
      const size_t base = k * (k + 1) / 2;
      for (size_t j = 0; j < k; ++j) gl[base + j] += log10_sum_exp(row[j], row[k]) - kLog10Two;
      gl[base + k] += row[k];
    }
  }
  return gl;
}

std::vector<double> marginalize_read_likelihoods(const double* read_hap_log10, size_t n_reads, size_t n_haps,
                                                 const std::vector<int>& hap_allele, size_t n_alleles) {
  check_hap_alleles(hap_allele, n_haps, n_alleles, "read likelihood marginalisation");
  std::vector<double> out(n_reads * n_alleles, kNegInf);
  for (size_t r = 0; r < n_reads; ++r)
    for (size_t h = 0; h < n_haps; ++h) {
      if (hap_allele[h] < 0) continue;
      double& v = out[r * n_alleles + size_t(hap_allele[h])];
      v = std::max(v, read_hap_log10[r * n_haps + h]);
    }
  return out;
}

std::vector<double> marginalize_genotype_likelihoods(const std::vector<double>& hap_pair_log10, size_t n_haps,
                                                     const std::vector<int>& hap_allele, size_t n_alleles) {
  check_hap_alleles(hap_allele, n_haps, n_alleles, "genotype marginalisation");
  if (hap_pair_log10.size() != genotype_count(n_haps))
    throw InputError("genotype marginalisation: " + std::to_string(hap_pair_log10.size()) +
                     " haplotype-pair likelihoods for " + std::to_string(n_haps) + " haplotypes");
  std::vector<double> out(genotype_count(n_alleles), kNegInf);
  for (size_t k = 0; k < n_haps; ++k) {
    if (hap_allele[k] < 0) continue;
    for (size_t j = 0; j <= k; ++j) {
      if (hap_allele[j] < 0) continue;
      double& v = out[genotype_index(size_t(hap_allele[j]), size_t(hap_allele[k]))];
      v = std::max(v, hap_pair_log10[genotype_index(j, k)]);
    }
  }
  return out;
}

size_t best_genotype(const std::vector<double>& gls) {
  size_t best = 0;
  for (size_t g = 1; g < gls.size(); ++g)
    if (gls[g] > gls[best]) best = g;
  return best;
}

std::vector<int> pl_from_log10(const std::vector<double>& gls) {
  std::vector<int> pl(gls.size(), 0);
  if (gls.empty()) return pl;
  const double mx = gls[best_genotype(gls)];
  if (!(mx > kNegInf)) return pl;  // nothing is possible: no preference
  for (size_t g = 0; g < gls.size(); ++g) {
    const double v = std::round(-10.0 * (gls[g] - mx));
    pl[g] = (v >= double(kMaxPl) || std::isnan(v)) ? kMaxPl : int(v);
  }
  return pl;
}

int gq_from_pl(const std::vector<int>& pls, int cap) {
  if (pls.size() < 2) return 0;
  int first = kMaxPl, second = kMaxPl;
  for (int p : pls) {
    if (p < first) {
      second = first;
      first = p;
    } else if (p < second) {
      second = p;
    }
  }
  return std::min(second - first, cap);
}

std::vector<double> genotype_log10_priors(size_t n_alleles, const GenotypePriorParams& params) {
  const size_t G = genotype_count(n_alleles);
  std::vector<double> lp(G, 0.0);
  if (G == 0) return lp;
  if (params.flat) {
    std::fill(lp.begin(), lp.end(), -std::log10(double(G)));
    return lp;
  }
  if (!(params.theta > 0.0 && params.theta < 2.0 / 3.0))
    throw InputError("genotype priors: heterozygosity " + std::to_string(params.theta) +
                     " must be in (0, 2/3)");
  if (n_alleles == 1) return lp;                              // hom-ref only: prior 1
  const double n1 = double(n_alleles - 1);                    // ref/alt genotypes
  const double n2 = double(n_alleles * (n_alleles - 1) / 2);  // genotypes with two alt copies
  for (size_t g = 0; g < G; ++g) {
    const auto [j, k] = genotype_alleles(g);
    const int alts = int(j > 0) + int(k > 0);
    const double p = alts == 0   ? 1.0 - 1.5 * params.theta
                     : alts == 1 ? params.theta / n1
                                 : 0.5 * params.theta / n2;
    lp[g] = std::log10(p);
  }
  return lp;
}

std::vector<double> genotype_log10_posteriors(const std::vector<double>& gls, size_t n_alleles,
                                              const GenotypePriorParams& params) {
  if (gls.size() != genotype_count(n_alleles))
    throw InputError("genotype posteriors: " + std::to_string(gls.size()) + " likelihoods for " +
                     std::to_string(n_alleles) + " alleles");
  const std::vector<double> lp = genotype_log10_priors(n_alleles, params);
  std::vector<double> post(gls.size());
  for (size_t g = 0; g < gls.size(); ++g) post[g] = gls[g] + lp[g];
  const double norm = log10_sum_exp(post);
  if (!(norm > kNegInf)) {  // no genotype possible: fall back to the priors
    return lp;
  }
  for (double& v : post) v -= norm;
  return post;
}

double qual_not_hom_ref(const std::vector<double>& gls, size_t n_alleles, const GenotypePriorParams& params) {
  if (gls.size() != genotype_count(n_alleles))
    throw InputError("variant quality: " + std::to_string(gls.size()) + " likelihoods for " +
                     std::to_string(n_alleles) + " alleles");
  if (n_alleles < 2) return 0.0;
  return qual_not_hom_ref_given_priors(gls, genotype_log10_priors(n_alleles, params));
}

double qual_not_hom_ref_given_priors(const std::vector<double>& gls, const std::vector<double>& lp) {
  if (gls.size() != lp.size())
    throw InputError("variant quality: " + std::to_string(gls.size()) + " likelihoods for " +
                     std::to_string(lp.size()) + " priors");
  if (gls.size() < 2) return 0.0;
  // QUAL = -10 log10 P(hom-ref | reads) = 10 log10(1 + sum_{g != 0} 10^d_g), d_g the log10 posterior
  // odds of g against hom-ref; log1p keeps small QUALs accurate.
  const double ref = gls[0] + lp[0];
  double mx = kNegInf;
  std::vector<double> d(gls.size(), kNegInf);
  for (size_t g = 1; g < gls.size(); ++g) {
    d[g] = (gls[g] + lp[g]) - ref;
    mx = std::max(mx, d[g]);
  }
  if (std::isnan(mx)) return 0.0;  // nothing is possible at all: no evidence
  if (mx == kNegInf) return 0.0;   // only hom-ref is possible
  if (mx == std::numeric_limits<double>::infinity()) return kMaxQual;  // hom-ref impossible
  double q;
  if (mx <= 0.0) {
    double s = 0.0;
    for (size_t g = 1; g < gls.size(); ++g) s += std::pow(10.0, d[g]);
    q = 10.0 * std::log1p(s) / kLn10;
  } else {
    double s = std::pow(10.0, -mx);
    for (size_t g = 1; g < gls.size(); ++g) s += std::pow(10.0, d[g] - mx);
    q = 10.0 * (mx + std::log10(s));
  }
  if (!(q > 0.0)) return 0.0;
  return std::min(q, kMaxQual);
}

}  // namespace omicsd
