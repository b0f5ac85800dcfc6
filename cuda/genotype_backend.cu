// CUDA GenotypeBackend: batched pair-HMM, one (read, haplotype) pair per thread.
//
// Each thread calls pair_hmm_log10() from host/call/pair_hmm.hpp, the function the CPU backend calls,
// with the model tables built on the host by make_pair_hmm_model() and copied to the device (never
// recomputed there). Same code and the same operation order give the same floats provided neither
// compiler reassociates or fuses: cuda/CMakeLists.txt compiles this file with --fmad=false, no
// --use_fast_math, --prec-div=true and --ftz=false (IEEE division and denormals), and the host build
// uses -ffp-contract=off. The final log10 is the shared deterministic pair_hmm_log10_pow2(), not libm's
// or CUDA's log10 (which differ in the last ulp). The float pass and, where it underflows, the double
// pass both run in the same thread, exactly as on the CPU.
//
// Batches are chunked by the device-memory budget and pipelined over `streams` slots as in
// cuda/align_backend.cu; each chunk carries its own copy of the reads and haplotypes its pairs use
// (each once per chunk), the model tables, and per-pair float and double workspaces (3 rows each).
#include <cstring>
#include <mutex>
#include <vector>

#include "cuda/cuda_util.cuh"
#include "host/call/pair_hmm.hpp"
#include "host/common/cuda_backends.hpp"

namespace omicsd {
namespace cuda {
namespace {

struct HmmPairDesc {
  uint64_t read_off;  // bytes into the chunk's read bases (and, at the same offset, qualities)
  uint64_t hap_off;   // bytes into the chunk's haplotype bases
  uint64_t wsf_off;   // floats: pair_hmm_workspace_floats(hlen)
  uint64_t wsd_off;   // doubles: pair_hmm_workspace_doubles(hlen)
  int32_t rlen, hlen;
};

__global__ void pair_hmm_kernel(const HmmPairDesc* __restrict__ desc, uint32_t count,
                                const uint8_t* __restrict__ bases, const uint8_t* __restrict__ quals,
                                const uint8_t* __restrict__ haps, const PairHmmModel* __restrict__ model,
                                float* wsf, double* wsd, double* out_ll, uint8_t* out_pass) {
  const uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= count) return;
  const HmmPairDesc d = desc[idx];
  PairHmmPass pass = PairHmmPass::kNone;
  out_ll[idx] = pair_hmm_log10(bases + d.read_off, quals + d.read_off, d.rlen, haps + d.hap_off, d.hlen,
                               *model, PairHmmWorkspace{wsf + d.wsf_off, wsd + d.wsd_off}, &pass);
  out_pass[idx] = uint8_t(pass);
}

constexpr int kThreadsPerBlock = 128;

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
    out_pass = align_up(count * sizeof(double));
    out_bytes = align_up(out_pass + count);
    device_bytes = out_base + out_bytes;
  }
};

struct HmmChunk {
  size_t first = 0, last = 0;  // range of the GPU pair list
  HmmLayout layout;
};

class CudaGenotypeBackend final : public GenotypeBackend {
 public:
  explicit CudaGenotypeBackend(const CudaBackendOptions& o)
      : device_(o.device), cpu_threads_(o.cpu_threads), nslots_(std::clamp(o.streams, 2, 4)) {
    use_device(device_);
    budget_ = resolve_memory_budget(o.memory_budget);
    slots_.reserve(size_t(nslots_));
    for (int s = 0; s < nslots_; ++s) slots_.push_back(std::make_unique<Slot>());
    backend_log(BackendLogLevel::kDebug, "cuda genotype backend: device " + std::to_string(device_) + " (" +
                                             device_name(device_) + "), memory budget " +
                                             std::to_string(budget_ >> 20) + " MiB, " +
                                             std::to_string(nslots_) + " streams");
  }
  ~CudaGenotypeBackend() override {
    if (cudaSetDevice(device_) == cudaSuccess)
      for (auto& s : slots_) cudaStreamSynchronize(s->stream.get());
  }

  std::string name() const override { return "cuda"; }

  CudaBackendTimings take_timings() {
    std::lock_guard<std::mutex> lock(mutex_);
    CudaBackendTimings t = timings_;
    timings_ = CudaBackendTimings{};
    return t;
  }

  void compute(const HmmTaskBatch& tasks, const PairHmmParams& params, HmmResultBatch& out) override {
    validate_hmm_batch(tasks);
    const PairHmmModel model = make_pair_hmm_model(params);
    std::lock_guard<std::mutex> lock(mutex_);
    use_device(device_);
    out.resize(tasks.size());
    read_stamp_.assign(tasks.num_reads(), -1);
    hap_stamp_.assign(tasks.num_haplotypes(), -1);
    read_at_.assign(tasks.num_reads(), 0);
    hap_at_.assign(tasks.num_haplotypes(), 0);

    std::vector<uint32_t> oversize;
    std::vector<HmmChunk> chunks;
    for (;;) {
      plan(tasks, budget_ / size_t(nslots_), chunks, oversize);
      if (reserve(chunks)) break;
      budget_ /= 2;
      backend_log(BackendLogLevel::kWarn, "cuda genotype backend: device " + std::to_string(device_) +
                                              " refused the allocation; memory budget lowered to " +
                                              std::to_string(budget_ >> 20) + " MiB");
      if (budget_ / size_t(nslots_) < kMinSlotBytes)
        throw Error("cuda genotype backend: device " + std::to_string(device_) + " is out of memory");
    }
    run_chunks(tasks, model, chunks, out);
    if (!oversize.empty()) run_on_cpu(tasks, params, oversize, out);
  }

 private:
  struct Slot {
    Stream stream;
    DeviceBuffer dev;
    PinnedBuffer in, out;
    ChunkEvents events;
    long chunk = -1;
  };

  // Adds pair p to `L`, counting its read and haplotype once per chunk (stamp = chunk number).
  void add_pair(const HmmTaskBatch& t, size_t p, long chunk_id, HmmLayout& L) {
    const uint32_t r = t.read_index[p], h = t.hap_index[p];
    const int32_t hlen = int32_t(t.hap_length[h]);
    L.count += 1;
    if (read_stamp_[r] != chunk_id) L.read_bytes += t.read_length[r];
    if (hap_stamp_[h] != chunk_id) L.hap_bytes += t.hap_length[h];
    L.wsf += pair_hmm_workspace_floats(hlen);
    L.wsd += pair_hmm_workspace_doubles(hlen);
  }

  void plan(const HmmTaskBatch& t, size_t cap, std::vector<HmmChunk>& chunks,
            std::vector<uint32_t>& oversize) {
    chunks.clear();
    oversize.clear();
    gpu_pairs_.clear();
    std::fill(read_stamp_.begin(), read_stamp_.end(), -1);
    std::fill(hap_stamp_.begin(), hap_stamp_.end(), -1);
    HmmChunk cur;
    long id = 0;
    for (size_t p = 0; p < t.size(); ++p) {
      HmmLayout next = cur.layout;
      add_pair(t, p, id, next);
      next.finish();
      if (next.device_bytes > cap && cur.layout.count > 0) {
        chunks.push_back(cur);
        ++id;
        cur = HmmChunk{};
        cur.first = cur.last = gpu_pairs_.size();
        next = HmmLayout{};
        add_pair(t, p, id, next);
        next.finish();
      }
      if (next.device_bytes > cap) {
        oversize.push_back(uint32_t(p));
        continue;
      }
      read_stamp_[t.read_index[p]] = id;
      hap_stamp_[t.hap_index[p]] = id;
      cur.layout = next;
      gpu_pairs_.push_back(uint32_t(p));
      cur.last = gpu_pairs_.size();
    }
    if (cur.layout.count > 0) chunks.push_back(cur);
  }

  bool reserve(const std::vector<HmmChunk>& chunks) {
    size_t dev = 0, in = 0, outb = 0;
    for (const HmmChunk& c : chunks) {
      dev = std::max(dev, c.layout.device_bytes);
      in = std::max(in, c.layout.in_bytes);
      outb = std::max(outb, c.layout.out_bytes);
    }
    const size_t used = std::min(chunks.size(), slots_.size());
    for (size_t s = 0; s < used; ++s) {
      if (!slots_[s]->dev.try_reserve(dev)) {
        for (auto& sl : slots_) sl->dev.release();
        return false;
      }
      slots_[s]->in.reserve(in);
      slots_[s]->out.reserve(outb);
    }
    return true;
  }

  // Fills a slot's pinned input: model, descriptors, and each read / haplotype once per chunk. The
  // stamps are reused with ids offset past the planning pass's, so they start clean for every chunk.
  void pack(const HmmTaskBatch& t, const HmmChunk& c, long stamp, const PairHmmModel& model, uint8_t* in) {
    const HmmLayout& L = c.layout;
    std::memcpy(in, &model, sizeof(PairHmmModel));
    HmmPairDesc* desc = at<HmmPairDesc>(in, L.in_desc);
    uint8_t* bases = in + L.in_bases;
    uint8_t* quals = in + L.in_quals;
    uint8_t* haps = in + L.in_haps;
    uint64_t ro = 0, ho = 0, fo = 0, dd = 0;
    for (size_t k = 0; k < L.count; ++k) {
      const uint32_t p = gpu_pairs_[c.first + k];
      const uint32_t r = t.read_index[p], h = t.hap_index[p];
      if (read_stamp_[r] != stamp) {
        read_stamp_[r] = stamp;
        read_at_[r] = ro;
        std::copy_n(t.read_bases.data() + t.read_offset[r], t.read_length[r], bases + ro);
        std::copy_n(t.read_quals.data() + t.read_offset[r], t.read_length[r], quals + ro);
        ro += t.read_length[r];
      }
      if (hap_stamp_[h] != stamp) {
        hap_stamp_[h] = stamp;
        hap_at_[h] = ho;
        std::copy_n(t.hap_bases.data() + t.hap_offset[h], t.hap_length[h], haps + ho);
        ho += t.hap_length[h];
      }
      HmmPairDesc d;
      d.read_off = read_at_[r];
      d.hap_off = hap_at_[h];
      d.rlen = int32_t(t.read_length[r]);
      d.hlen = int32_t(t.hap_length[h]);
      d.wsf_off = fo;
      d.wsd_off = dd;
      fo += pair_hmm_workspace_floats(d.hlen);
      dd += pair_hmm_workspace_doubles(d.hlen);
      desc[k] = d;
    }
    if (ro != L.read_bytes || ho != L.hap_bytes)
      throw Error("cuda genotype backend: chunk packing disagrees with its plan");
  }

  void unpack(const HmmChunk& c, const uint8_t* outb, HmmResultBatch& out) const {
    const HmmLayout& L = c.layout;
    const double* ll = reinterpret_cast<const double*>(outb);
    const uint8_t* pass = outb + L.out_pass;
    for (size_t k = 0; k < L.count; ++k) {
      const uint32_t p = gpu_pairs_[c.first + k];
      out.log10_likelihood[p] = ll[k];
      out.pass[p] = pass[k];
    }
  }

  void run_chunks(const HmmTaskBatch& t, const PairHmmModel& model, const std::vector<HmmChunk>& chunks,
                  HmmResultBatch& out) {
    if (chunks.empty()) return;
    const size_t used = std::min(chunks.size(), slots_.size());
    // Stamps for packing continue after the planning ids (0 .. chunks.size() - 1).
    const long stamp_base = long(chunks.size());
    try {
      for (size_t c = 0; c < chunks.size(); ++c) {
        Slot& s = *slots_[c % used];
        if (s.chunk >= 0) {
          s.stream.sync();
          account(s, chunks[size_t(s.chunk)].layout);
          unpack(chunks[size_t(s.chunk)], s.out.get(), out);
          s.chunk = -1;
        }
        const HmmLayout& L = chunks[c].layout;
        pack(t, chunks[c], stamp_base + long(c), model, s.in.get());
        uint8_t* dev = s.dev.get();
        s.events.record(0, s.stream.get());
        OMICSD_CUDA_CHECK(
            cudaMemcpyAsync(dev, s.in.get(), L.in_bytes, cudaMemcpyHostToDevice, s.stream.get()));
        s.events.record(1, s.stream.get());
        const unsigned grid = unsigned((L.count + kThreadsPerBlock - 1) / kThreadsPerBlock);
        pair_hmm_kernel<<<grid, kThreadsPerBlock, 0, s.stream.get()>>>(
            reinterpret_cast<const HmmPairDesc*>(dev + L.in_desc), uint32_t(L.count), dev + L.in_bases,
            dev + L.in_quals, dev + L.in_haps, reinterpret_cast<const PairHmmModel*>(dev),
            reinterpret_cast<float*>(dev + L.ws_f), reinterpret_cast<double*>(dev + L.ws_d),
            reinterpret_cast<double*>(dev + L.out_base), dev + L.out_base + L.out_pass);
        OMICSD_CUDA_CHECK_LAUNCH("pair_hmm_kernel<<<>>>");
        s.events.record(2, s.stream.get());
        OMICSD_CUDA_CHECK(cudaMemcpyAsync(s.out.get(), dev + L.out_base, L.out_bytes, cudaMemcpyDeviceToHost,
                                          s.stream.get()));
        s.events.record(3, s.stream.get());
        s.chunk = long(c);
      }
      for (size_t c = chunks.size() - used; c < chunks.size(); ++c) {
        Slot& s = *slots_[c % used];
        s.stream.sync();
        account(s, chunks[c].layout);
        unpack(chunks[c], s.out.get(), out);
        s.chunk = -1;
      }
    } catch (...) {
      for (auto& s : slots_) {
        cudaStreamSynchronize(s->stream.get());
        s->chunk = -1;
      }
      throw;
    }
  }

  void run_on_cpu(const HmmTaskBatch& t, const PairHmmParams& params, const std::vector<uint32_t>& idx,
                  HmmResultBatch& out) {
    backend_log(BackendLogLevel::kInfo,
                "cuda genotype backend: " + std::to_string(idx.size()) + " pair(s) too large for a " +
                    std::to_string((budget_ / size_t(nslots_)) >> 20) + " MiB chunk run on the CPU backend");
    timings_.cpu_fallback_tasks += idx.size();
    if (!cpu_) cpu_ = make_cpu_genotype_backend(cpu_threads_);
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
    cpu_->compute(sub, params, r);
    for (size_t k = 0; k < idx.size(); ++k) {
      out.log10_likelihood[idx[k]] = r.log10_likelihood[k];
      out.pass[idx[k]] = r.pass[k];
    }
  }

  template <class Layout>
  void account(const Slot& s, const Layout& L) {
    timings_.chunks += 1;
    timings_.h2d_bytes += L.in_bytes;
    timings_.d2h_bytes += L.out_bytes;
    timings_.h2d_ms += s.events.ms(0, 1);
    timings_.kernel_ms += s.events.ms(1, 2);
    timings_.d2h_ms += s.events.ms(2, 3);
  }

  CudaBackendTimings timings_;
  int device_;
  int cpu_threads_;
  int nslots_;
  size_t budget_ = 0;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::unique_ptr<GenotypeBackend> cpu_;
  std::vector<uint32_t> gpu_pairs_;
  std::vector<long> read_stamp_, hap_stamp_;
  std::vector<uint64_t> read_at_, hap_at_;
};

}  // namespace
}  // namespace cuda

bool take_cuda_timings(GenotypeBackend& backend, CudaBackendTimings* t) {
  auto* b = dynamic_cast<cuda::CudaGenotypeBackend*>(&backend);
  if (!b) return false;
  *t = b->take_timings();
  return true;
}

std::unique_ptr<GenotypeBackend> make_cuda_genotype_backend(const CudaBackendOptions& options) {
  return std::make_unique<cuda::CudaGenotypeBackend>(options);
}

}  // namespace omicsd
