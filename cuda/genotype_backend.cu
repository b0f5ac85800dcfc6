// CUDA GenotypeBackend: batched pair-HMM.
//
// Per chunk, on the slot's stream:
//  1. pair_hmm_warp_kernel<P>, once per lane-group width present in the chunk: the warp-cooperative
//     float pass of host/call/pair_hmm_warp.hpp (a group of P lanes per pair, the read's rows striped
//     over the lanes, M/I/D passed between lanes by shuffles, a carry row for the stripe boundary in the
//     pair's float workspace). The same source runs in CI through the lane layer's CPU emulation (the
//     "cpu-simt" backend, tests/host/common/test_simt_kernels.cpp). A pair whose scaled sum S is at least
//     kPairHmmFloatMin is finished there (log10 of S, as pair_hmm_log10 does).
//  2. pair_hmm_finish_kernel, one thread per pair: pair_hmm_log10() itself for pairs too small for a
//     lane group (rlen or hlen < 4, empty reads and haplotypes), and the scalar double pass for pairs
//     whose float sum underflowed (its row rescaling needs whole rows; such pairs are rare).
// The tables come from make_pair_hmm_model() on the host (never recomputed on the device), and
// cuda/CMakeLists.txt compiles with --fmad=false, no --use_fast_math, --prec-div=true and --ftz=false,
// so every float and double operation is the CPU backend's: results are bit-identical.
//
// Batches are chunked by the device-memory budget and pipelined over `streams` slots by
// cuda/chunk_pipeline.cuh (this file supplies the layout and the hooks); each chunk carries its own copy of
// the reads and haplotypes its pairs use (each once per chunk), the model tables, and per-pair float and
// double workspaces (3 rows each).
#include <cstring>
#include <mutex>
#include <span>
#include <vector>

#include "cuda/chunk_pipeline.cuh"
#include "cuda/cuda_backends.hpp"
#include "host/call/pair_hmm.hpp"
#include "host/call/pair_hmm_warp.hpp"

namespace omicsd {
namespace cuda {
namespace {

struct HmmPairDesc {
  uint64_t read_off;  // bytes into the chunk's read bases (and, at the same offset, qualities)
  uint64_t hap_off;   // bytes into the chunk's haplotype bases
  uint64_t wsf_off;   // floats: pair_hmm_workspace_floats(hlen) (the warp pass's carry row)
  uint64_t wsd_off;   // doubles: pair_hmm_workspace_doubles(hlen)
  int32_t rlen, hlen;
  int32_t p;  // pair_hmm_warp_p: lanes per pair in the warp pass; 0: scalar passes only
  int32_t pad = 0;
};

// The warp float pass for pairs [first, first + count) of one group width P; whole warps run (lanes
// past the end idle in an empty group) because every lane takes part in the shuffles. Pairs whose float
// sum underflowed are left with pass kNone for the finish kernel.
template <int P>
__global__ void __launch_bounds__(kThreadsPerBlock)
    pair_hmm_warp_kernel(const HmmPairDesc* __restrict__ desc, uint32_t first, uint32_t count,
                         const uint8_t* __restrict__ bases, const uint8_t* __restrict__ quals,
                         const uint8_t* __restrict__ haps, const PairHmmModel* __restrict__ model, float* wsf,
                         double* out_ll, uint8_t* out_pass) {
  const int lane = warp_lane();
  const uint32_t k = group_item<P>();
  simt::Lanes<HmmWarpPair> pair;
  if (k < count) {
    const HmmPairDesc d = desc[first + k];
    pair[lane] = HmmWarpPair{
        bases + d.read_off, quals + d.read_off, haps + d.hap_off, wsf + d.wsf_off, d.rlen, d.hlen};
  } else {
    pair[lane] = HmmWarpPair{};
  }
  simt::Lanes<float> sum;
  pair_hmm_float_warp<P>(pair, model->f, sum);
  if (k < count && lane % P == 0) {
    const float s = sum[lane];
    if (!(s < kPairHmmFloatMin)) {
      out_ll[first + k] = pair_hmm_log10_pow2(double(s), -kPairHmmFloatScaleLog2);
      out_pass[first + k] = uint8_t(PairHmmPass::kFloat);
    } else {
      out_ll[first + k] = 0.0;
      out_pass[first + k] = uint8_t(PairHmmPass::kNone);  // the finish kernel runs the double pass
    }
  }
}

// One thread per pair: the scalar passes for pairs without a lane group, the double pass for warp
// pairs that underflowed. `fault` (OMICSD_CUDA_FAULT=genotype) makes thread 0 write through a null
// pointer: an illegal address, the sticky error class.
__global__ void pair_hmm_finish_kernel(const HmmPairDesc* __restrict__ desc, uint32_t count,
                                       const uint8_t* __restrict__ bases, const uint8_t* __restrict__ quals,
                                       const uint8_t* __restrict__ haps,
                                       const PairHmmModel* __restrict__ model, float* wsf, double* wsd,
                                       double* out_ll, uint8_t* out_pass, int fault) {
  const uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (fault && idx == 0) *static_cast<volatile int*>(nullptr) = 1;
  if (idx >= count) return;
  const HmmPairDesc d = desc[idx];
  if (d.p == 0) {
    PairHmmPass pass = PairHmmPass::kNone;
    out_ll[idx] = pair_hmm_log10(bases + d.read_off, quals + d.read_off, d.rlen, haps + d.hap_off, d.hlen,
                                 *model, PairHmmWorkspace{wsf + d.wsf_off, wsd + d.wsd_off}, &pass);
    out_pass[idx] = uint8_t(pass);
  } else if (out_pass[idx] == uint8_t(PairHmmPass::kNone)) {
    out_ll[idx] = pair_hmm_log10_double(bases + d.read_off, quals + d.read_off, d.rlen, haps + d.hap_off,
                                        d.hlen, *model, wsd + d.wsd_off);
    out_pass[idx] = uint8_t(PairHmmPass::kDouble);
  }
}

// A run of consecutive pairs of one lane-group width inside a chunk (the batch order groups widths).
struct WidthRun {
  int32_t p;
  uint32_t first, count;
};

// A chunk's totals and the placement of its arrays. Input region (one H2D copy): model, descriptors,
// read bases, read qualities, haplotype bases. Device-only: double then float workspaces. Output
// region (one D2H copy): likelihoods (double), then passes (byte).
struct HmmLayout {
  size_t count = 0;
  uint64_t read_bytes = 0, hap_bytes = 0, wsf = 0, wsd = 0;
  size_t in_desc = 0, in_bases = 0, in_quals = 0, in_haps = 0, in_bytes = 0;
  size_t ws_d = 0, ws_f = 0;
  size_t out_base = 0, out_pass = 0, out_bytes = 0;
  size_t device_bytes = 0;

  void finish() {
    in_desc = align_up(sizeof(PairHmmModel));
    in_bases = align_up(in_desc + count * sizeof(HmmPairDesc));
    in_quals = align_up(in_bases + read_bytes);
    in_haps = align_up(in_quals + read_bytes);
    in_bytes = align_up(in_haps + hap_bytes);
    ws_d = in_bytes;
    ws_f = align_up(ws_d + 8 * wsd);
    out_base = align_up(ws_f + 4 * wsf);
    // No padding inside or after the output region: the D2H copy must read only bytes the kernels
    // wrote (compute-sanitizer initcheck).
    out_pass = count * sizeof(double);
    out_bytes = out_pass + count;
    device_bytes = out_base + out_bytes;
  }
};

class CudaGenotypeBackend final : public GenotypeBackend {
 public:
  explicit CudaGenotypeBackend(const CudaBackendOptions& o)
      : pipe_(o, "cuda genotype backend", "pair(s)"), fault_(fault_injection_requested("genotype")) {}

  std::string name() const override { return "cuda"; }
  CudaBackendTimings take_timings() { return pipe_.take_timings(); }

  void compute(const HmmTaskBatch& tasks, const PairHmmParams& params, HmmResultBatch& out) override {
    validate_hmm_batch(tasks);
    const PairHmmModel model = make_pair_hmm_model(params);
    std::lock_guard<std::mutex> lock(pipe_.mutex());
    use_device(pipe_.device());
    out.resize(tasks.size());
    read_stamp_.assign(tasks.num_reads(), -1);
    hap_stamp_.assign(tasks.num_haplotypes(), -1);
    read_at_.assign(tasks.num_reads(), 0);
    hap_at_.assign(tasks.num_haplotypes(), 0);
    // Pairs grouped by lane-group width (one launch per width and chunk), most steps first within one.
    order_ = warp_pair_order(tasks);
    Call call{*this, tasks, params, model, out};
    pipe_.run(call, order_.size());
  }

 private:
  // The pipeline's hooks for one compute() call (cuda/chunk_pipeline.cuh). Its indexes are positions
  // in order_ (order_[pos] is the pair). Reads and haplotypes are stamped with the chunk that holds
  // them, so each is counted and copied once per chunk.
  struct Call {
    CudaGenotypeBackend& b;
    const HmmTaskBatch& t;
    const PairHmmParams& params;
    const PairHmmModel& model;
    HmmResultBatch& out;
    std::vector<WidthRun> runs;  // of the chunk just packed, for its launch

    void begin_plan() const {
      std::fill(b.read_stamp_.begin(), b.read_stamp_.end(), -1);
      std::fill(b.hap_stamp_.begin(), b.hap_stamp_.end(), -1);
    }
    void add(size_t pos, long chunk, HmmLayout& L) const {
      const uint32_t p = b.order_[pos];
      const uint32_t r = t.read_index[p], h = t.hap_index[p];
      const int32_t hlen = int32_t(t.hap_length[h]);
      L.count += 1;
      if (b.read_stamp_[r] != chunk) L.read_bytes += t.read_length[r];
      if (b.hap_stamp_[h] != chunk) L.hap_bytes += t.hap_length[h];
      L.wsf += pair_hmm_workspace_floats(hlen);
      L.wsd += pair_hmm_workspace_doubles(hlen);
    }
    void accept(size_t pos, long chunk) const {
      const uint32_t p = b.order_[pos];
      b.read_stamp_[t.read_index[p]] = chunk;
      b.hap_stamp_[t.hap_index[p]] = chunk;
    }

    // Fills a slot's pinned input: model, descriptors, and each read / haplotype once per chunk.
    void pack(const HmmLayout& L, std::span<const uint32_t> ids, long stamp, uint8_t* in) {
      std::memcpy(in, &model, sizeof(PairHmmModel));
      HmmPairDesc* desc = at<HmmPairDesc>(in, L.in_desc);
      uint8_t* bases = in + L.in_bases;
      uint8_t* quals = in + L.in_quals;
      uint8_t* haps = in + L.in_haps;
      uint64_t ro = 0, ho = 0, fo = 0, dd = 0;
      runs.clear();
      for (size_t k = 0; k < ids.size(); ++k) {
        const uint32_t p = b.order_[ids[k]];
        const uint32_t r = t.read_index[p], h = t.hap_index[p];
        if (b.read_stamp_[r] != stamp) {
          b.read_stamp_[r] = stamp;
          b.read_at_[r] = ro;
          std::copy_n(t.read_bases.data() + t.read_offset[r], t.read_length[r], bases + ro);
          std::copy_n(t.read_quals.data() + t.read_offset[r], t.read_length[r], quals + ro);
          ro += t.read_length[r];
        }
        if (b.hap_stamp_[h] != stamp) {
          b.hap_stamp_[h] = stamp;
          b.hap_at_[h] = ho;
          std::copy_n(t.hap_bases.data() + t.hap_offset[h], t.hap_length[h], haps + ho);
          ho += t.hap_length[h];
        }
        HmmPairDesc d;
        d.read_off = b.read_at_[r];
        d.hap_off = b.hap_at_[h];
        d.rlen = int32_t(t.read_length[r]);
        d.hlen = int32_t(t.hap_length[h]);
        d.p = pair_hmm_warp_p(d.rlen, d.hlen);
        d.wsf_off = fo;
        d.wsd_off = dd;
        fo += pair_hmm_workspace_floats(d.hlen);
        dd += pair_hmm_workspace_doubles(d.hlen);
        desc[k] = d;
        if (runs.empty() || runs.back().p != d.p) runs.push_back({d.p, uint32_t(k), 0});
        runs.back().count += 1;
      }
      if (ro != L.read_bytes || ho != L.hap_bytes)
        throw Error("cuda genotype backend: chunk packing disagrees with its plan");
    }

    void launch(const HmmLayout& L, uint8_t* dev, cudaStream_t s, cudaEvent_t phase) const {
      const auto* desc = reinterpret_cast<const HmmPairDesc*>(dev + L.in_desc);
      const auto* model_dev = reinterpret_cast<const PairHmmModel*>(dev);
      auto* wsf = reinterpret_cast<float*>(dev + L.ws_f);
      auto* ll = reinterpret_cast<double*>(dev + L.out_base);
      uint8_t* pass = dev + L.out_base + L.out_pass;
      for (const WidthRun& r : runs) {
        with_pair_hmm_warp_shape(r.p, [&](auto p_const) {
          constexpr int P = decltype(p_const)::value;
          pair_hmm_warp_kernel<P><<<blocks_for_groups<P>(r.count), kThreadsPerBlock, 0, s>>>(
              desc, r.first, r.count, dev + L.in_bases, dev + L.in_quals, dev + L.in_haps, model_dev, wsf, ll,
              pass);
          OMICSD_CUDA_CHECK_LAUNCH("pair_hmm_warp_kernel<<<>>>");
        });
      }
      OMICSD_CUDA_CHECK(cudaEventRecord(phase, s));
      pair_hmm_finish_kernel<<<blocks_for(L.count), kThreadsPerBlock, 0, s>>>(
          desc, uint32_t(L.count), dev + L.in_bases, dev + L.in_quals, dev + L.in_haps, model_dev, wsf,
          reinterpret_cast<double*>(dev + L.ws_d), ll, pass, b.fault_);
      OMICSD_CUDA_CHECK_LAUNCH("pair_hmm_finish_kernel<<<>>>");
    }

    void unpack(const HmmLayout& L, std::span<const uint32_t> ids, const uint8_t* outb) const {
      const double* ll = reinterpret_cast<const double*>(outb);
      const uint8_t* pass = outb + L.out_pass;
      for (size_t k = 0; k < ids.size(); ++k) {
        out.log10_likelihood[b.order_[ids[k]]] = ll[k];
        out.pass[b.order_[ids[k]]] = pass[k];
      }
    }

    void run_on_cpu(const std::vector<uint32_t>& positions) const {
      std::vector<uint32_t> idx;
      idx.reserve(positions.size());
      for (uint32_t pos : positions) idx.push_back(b.order_[pos]);
      if (!b.cpu_) b.cpu_ = make_cpu_genotype_backend(b.pipe_.cpu_threads());
      // The same reads and haplotypes; only the pair list differs.
      HmmTaskBatch sub;
      sub.read_bases = t.read_bases;
      sub.read_quals = t.read_quals;
      sub.read_offset = t.read_offset;
      sub.read_length = t.read_length;
      sub.hap_bases = t.hap_bases;
      sub.hap_offset = t.hap_offset;
      sub.hap_length = t.hap_length;
      for (uint32_t p : idx) sub.add_pair(t.read_index[p], t.hap_index[p]);
      HmmResultBatch r;
      b.cpu_->compute(sub, params, r);
      for (size_t k = 0; k < idx.size(); ++k) {
        out.log10_likelihood[idx[k]] = r.log10_likelihood[k];
        out.pass[idx[k]] = r.pass[k];
      }
    }
  };

  ChunkPipeline<HmmLayout> pipe_;
  const int fault_;
  std::unique_ptr<GenotypeBackend> cpu_;
  std::vector<uint32_t> order_;  // per call: the pairs in warp order
  // Per-call state: per read / haplotype, the chunk that last counted or copied it and its offset there.
  std::vector<long> read_stamp_, hap_stamp_;
  std::vector<uint64_t> read_at_, hap_at_;
};

}  // namespace
}  // namespace cuda

bool take_cuda_timings(GenotypeBackend& backend, CudaBackendTimings* t) {
  return cuda::take_timings_of<cuda::CudaGenotypeBackend>(backend, t);
}

std::unique_ptr<GenotypeBackend> make_cuda_genotype_backend(const CudaBackendOptions& options) {
  return std::make_unique<cuda::CudaGenotypeBackend>(options);
}

}  // namespace omicsd
