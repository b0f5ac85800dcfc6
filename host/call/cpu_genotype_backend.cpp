#include <string>
#include <vector>

#include "host/call/genotype_backend.hpp"
#include "host/call/pair_hmm.hpp"
#include "host/common/error.hpp"
#include "host/common/parallel.hpp"

namespace omicsd {

void validate_hmm_batch(const HmmTaskBatch& t) {
  auto fail = [](const std::string& what) { throw InputError("pair-HMM batch: " + what); };
  if (t.read_quals.size() != t.read_bases.size())
    fail(std::to_string(t.read_bases.size()) + " read bases but " + std::to_string(t.read_quals.size()) +
         " qualities");
  if (t.read_offset.size() != t.read_length.size()) fail("read offsets and lengths differ in count");
  if (t.hap_offset.size() != t.hap_length.size()) fail("haplotype offsets and lengths differ in count");
  if (t.read_index.size() != t.hap_index.size()) fail("pair read and haplotype index lists differ in length");
  for (size_t r = 0; r < t.read_length.size(); ++r) {
    if (uint64_t(t.read_offset[r]) + t.read_length[r] > t.read_bases.size())
      fail("read " + std::to_string(r) + " runs past the end of the bases");
    if (t.read_length[r] > uint32_t(INT32_MAX)) fail("read " + std::to_string(r) + " is too long");
  }
  for (size_t h = 0; h < t.hap_length.size(); ++h) {
    if (uint64_t(t.hap_offset[h]) + t.hap_length[h] > t.hap_bases.size())
      fail("haplotype " + std::to_string(h) + " runs past the end of the bases");
    if (t.hap_length[h] > uint32_t(INT32_MAX)) fail("haplotype " + std::to_string(h) + " is too long");
  }
  for (size_t p = 0; p < t.read_index.size(); ++p) {
    if (t.read_index[p] >= t.read_length.size())
      fail("pair " + std::to_string(p) + " names read " + std::to_string(t.read_index[p]) + " of " +
           std::to_string(t.read_length.size()));
    if (t.hap_index[p] >= t.hap_length.size())
      fail("pair " + std::to_string(p) + " names haplotype " + std::to_string(t.hap_index[p]) + " of " +
           std::to_string(t.hap_length.size()));
  }
}

namespace {

class CpuGenotypeBackend final : public GenotypeBackend {
 public:
  explicit CpuGenotypeBackend(int threads) : threads_(resolve_threads(threads)) {}
  std::string name() const override { return "cpu"; }

  void compute(const HmmTaskBatch& tasks, const PairHmmParams& params, HmmResultBatch& out) override {
    validate_hmm_batch(tasks);
    const PairHmmModel model = make_pair_hmm_model(params);
    const size_t n = tasks.size();
    out.resize(n);
    // Every pair is independent and written to its own slot, so the thread count and the order chunks
    // are claimed in cannot change any result.
    constexpr size_t kGrain = 16;
    parallel_for(n, threads_, kGrain, [&](size_t begin, size_t end) {
      // Per-thread workspace, grown to the longest haplotype the thread has seen.
      thread_local std::vector<float> wf;
      thread_local std::vector<double> wd;
      for (size_t p = begin; p < end; ++p) {
        const uint32_t r = tasks.read_index[p], h = tasks.hap_index[p];
        const int32_t rlen = int32_t(tasks.read_length[r]);
        const int32_t hlen = int32_t(tasks.hap_length[h]);
        if (wf.size() < pair_hmm_workspace_floats(hlen)) wf.resize(pair_hmm_workspace_floats(hlen));
        if (wd.size() < pair_hmm_workspace_doubles(hlen)) wd.resize(pair_hmm_workspace_doubles(hlen));
        PairHmmPass pass = PairHmmPass::kNone;
        out.log10_likelihood[p] = pair_hmm_log10(tasks.read_bases.data() + tasks.read_offset[r],
                                                 tasks.read_quals.data() + tasks.read_offset[r], rlen,
                                                 tasks.hap_bases.data() + tasks.hap_offset[h], hlen, model,
                                                 PairHmmWorkspace{wf.data(), wd.data()}, &pass);
        out.pass[p] = uint8_t(pass);
      }
    });
  }

 private:
  int threads_;
};

}  // namespace

std::unique_ptr<GenotypeBackend> make_cpu_genotype_backend(int threads) {
  return std::make_unique<CpuGenotypeBackend>(threads);
}

}  // namespace omicsd
