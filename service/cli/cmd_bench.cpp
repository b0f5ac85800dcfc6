// `omicsd bench`: backend throughput on synthetic batches (see service/cli/cmd_bench.hpp).
#include "service/cli/cmd_bench.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "backends/align_backend_select.hpp"
#include "backends/backend_choice.hpp"
#include "backends/genotype_backend_select.hpp"
#include "cuda/cuda_backends.hpp"
#include "host/align/align_backend.hpp"
#include "host/call/genotype_backend.hpp"
#include "host/common/error.hpp"
#include "host/common/parallel.hpp"

namespace omicsd {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string backend = "auto";
  int device = 0;
  int threads = 0;
  int repeats = 3;
  bool no_cpu = false;
  bool quick = false;
  std::string json;
};

struct Row {
  std::string stage, backend;
  int read_length = 0, band = 0, hap_length = 0;
  size_t batch = 0;
  uint64_t cells = 0;
  double seconds = 0;  // wall time of one call (mean over repeats)
  bool timed_device = false;
  CudaBackendTimings t;  // per call (means)
  double rate() const { return seconds > 0 ? double(cells) / seconds : 0; }
};

std::vector<uint8_t> random_genome(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> g(n);
  for (auto& b : g) b = uint8_t(rng() & 3);
  return g;
}

// Reads of `len` bases sampled from the genome with ~2% substitutions and occasional short indels,
// each against a window around its origin with a band of `band` diagonals centred on it.
AlignTaskBatch align_batch(std::mt19937_64& rng, const std::vector<uint8_t>& g, int len, int band, size_t n) {
  AlignTaskBatch t;
  std::vector<uint8_t> q;
  const int half = band / 2, slack = 8;
  for (size_t k = 0; k < n; ++k) {
    const size_t pos = size_t(half + slack) + rng() % (g.size() - size_t(len + 2 * (half + slack) + 8));
    q.clear();
    size_t p = pos;
    while (int(q.size()) < len) {
      const uint64_t r = rng() % 1000;
      if (r < 20) {
        q.push_back(uint8_t(rng() & 3));
        ++p;
      } else if (r < 22) {
        p += 1 + rng() % 3;  // deletion from the read
      } else if (r < 24) {
        q.push_back(uint8_t(rng() & 3));  // insertion
      } else {
        q.push_back(g[p++]);
      }
    }
    const size_t wbeg = pos - size_t(half + slack);
    const size_t wlen = size_t(len + 2 * (half + slack));
    const int32_t d0 = half + slack;
    t.add(q.data(), uint32_t(len), g.data() + wbeg, uint32_t(wlen), d0 - half, d0 - half + band - 1);
  }
  return t;
}

// Groups of 8 reads (150 bp, qualities 20..40) against 4 haplotypes (~hap_len bases) of a window.
HmmTaskBatch hmm_batch(std::mt19937_64& rng, const std::vector<uint8_t>& g, int hap_len, size_t pairs) {
  HmmTaskBatch t;
  const int rlen = 150;
  std::vector<uint8_t> bases(static_cast<size_t>(rlen)), quals(static_cast<size_t>(rlen)), hap;
  while (t.size() < pairs) {
    const size_t wpos = rng() % (g.size() - size_t(hap_len) - 16);
    const uint32_t first = uint32_t(t.num_haplotypes());
    for (int h = 0; h < 4; ++h) {
      hap.assign(g.begin() + long(wpos), g.begin() + long(wpos) + hap_len + h);
      if (h > 0) hap[size_t(hap_len / 2)] = uint8_t((hap[size_t(hap_len / 2)] + h) & 3);
      t.add_haplotype(hap.data(), uint32_t(hap.size()));
    }
    for (int r = 0; r < 8 && t.size() < pairs; ++r) {
      const size_t off = wpos + rng() % size_t(hap_len - rlen);
      for (int i = 0; i < rlen; ++i) {
        bases[size_t(i)] = (rng() % 100) < 1 ? uint8_t(rng() & 3) : g[off + size_t(i)];
        quals[size_t(i)] = uint8_t(20 + rng() % 21);
      }
      const uint32_t ri = t.add_read(bases.data(), quals.data(), uint32_t(rlen));
      for (uint32_t h = 0; h < 4 && t.size() < pairs; ++h) t.add_pair(ri, first + h);
    }
  }
  return t;
}

template <class Backend, class Batch, class Fn>
Row measure(Backend& backend, const Batch& batch, int repeats, Fn&& call) {
  Row row;
  row.backend = backend.name();
  CudaBackendTimings t;
  // Warm-up for the CUDA backends (context, allocations, first-touch); the CPU ones need none.
  if (backend.name() == "cuda") call();
  take_cuda_timings(backend, &t);
  const auto start = Clock::now();
  for (int i = 0; i < repeats; ++i) call();
  row.seconds = std::chrono::duration<double>(Clock::now() - start).count() / repeats;
  if (take_cuda_timings(backend, &t)) {
    row.timed_device = true;
    row.t = t;
    row.t.h2d_ms /= repeats;
    row.t.kernel_ms /= repeats;
    row.t.d2h_ms /= repeats;
    row.t.warp_kernel_ms /= repeats;
    row.t.finish_kernel_ms /= repeats;
    row.t.chunks /= uint64_t(repeats);
    row.t.h2d_bytes /= uint64_t(repeats);
    row.t.d2h_bytes /= uint64_t(repeats);
    row.t.cpu_fallback_tasks /= uint64_t(repeats);
  }
  (void)batch;
  return row;
}

nlohmann::json row_json(const Row& r) {
  nlohmann::json j = {{"stage", r.stage}, {"backend", r.backend}, {"batch", r.batch},
                      {"cells", r.cells}, {"seconds", r.seconds}, {"cells_per_second", r.rate()}};
  if (r.stage == "align") {
    j["read_length"] = r.read_length;
    j["band"] = r.band;
    j["gcups"] = r.rate() / 1e9;
  } else {
    j["read_length"] = 150;
    j["haplotype_length"] = r.hap_length;
  }
  if (r.timed_device) {
    j["device"] = {{"chunks", r.t.chunks},
                   {"h2d_ms", r.t.h2d_ms},
                   {"kernel_ms", r.t.kernel_ms},
                   {"warp_kernel_ms", r.t.warp_kernel_ms},
                   {"finish_kernel_ms", r.t.finish_kernel_ms},
                   {"d2h_ms", r.t.d2h_ms},
                   {"h2d_bytes", r.t.h2d_bytes},
                   {"d2h_bytes", r.t.d2h_bytes},
                   {"cpu_fallback_tasks", r.t.cpu_fallback_tasks},
                   {"transfer_share", r.seconds > 0 ? (r.t.h2d_ms + r.t.d2h_ms) / (1e3 * r.seconds) : 0.0},
                   {"kernel_gcups", r.t.kernel_ms > 0 ? double(r.cells) / (r.t.kernel_ms * 1e6) : 0.0}};
  }
  return j;
}

void print_row(const Row& r) {
  char shape[64];
  if (r.stage == "align")
    std::snprintf(shape, sizeof shape, "L=%d W=%d", r.read_length, r.band);
  else
    std::snprintf(shape, sizeof shape, "R=150 H=%d", r.hap_length);
  std::string dev = "-";
  if (r.timed_device) {
    char b[224];
    std::snprintf(b, sizeof b,
                  "kernel %.2f ms (%.1f G/s; warp %.2f + finish %.2f), h2d %.2f ms, d2h %.2f ms, transfer "
                  "%.0f%% of wall",
                  r.t.kernel_ms, r.t.kernel_ms > 0 ? double(r.cells) / (r.t.kernel_ms * 1e6) : 0.0,
                  r.t.warp_kernel_ms, r.t.finish_kernel_ms, r.t.h2d_ms, r.t.d2h_ms,
                  r.seconds > 0 ? 100.0 * (r.t.h2d_ms + r.t.d2h_ms) / (1e3 * r.seconds) : 0.0);
    dev = b;
  }
  std::printf("%-6s %-8s %-12s %8zu %14llu %10.4f %9.3f  %s\n", r.stage.c_str(), r.backend.c_str(), shape,
              r.batch, static_cast<unsigned long long>(r.cells), r.seconds, r.rate() / 1e9, dev.c_str());
  std::fflush(stdout);
}

int run_bench(const BenchOptions& o) {
  if (o.repeats < 1) throw InputError("--repeats must be at least 1");
  std::mt19937_64 rng(20240601);
  const std::vector<uint8_t> genome = random_genome(rng, size_t(4) << 20);
  const int threads = resolve_threads(o.threads);
  // The CUDA backends themselves (not behind the CPU failover of the pipelines: a benchmark must fail
  // loudly, and reports their device timings).
  std::unique_ptr<AlignBackend> align_main;
  std::unique_ptr<GenotypeBackend> hmm_main;
  if (const auto c = choose_stage_backend("align", o.backend, threads, o.device)) {
    align_main = make_cuda_align_backend(*c);
    hmm_main = make_cuda_genotype_backend(*c);
  } else {
    align_main = make_cpu_align_backend(threads);
    hmm_main = make_cpu_genotype_backend(threads);
  }
  // Side by side: the scalar CPU backends and the lane-vector ones (the kernels' warp algorithms through
  // the lane layer's CPU emulation), unless --no-cpu.
  std::unique_ptr<AlignBackend> align_cpu, align_simt;
  std::unique_ptr<GenotypeBackend> hmm_cpu, hmm_simt;
  if (!o.no_cpu && align_main->name() != "cpu") align_cpu = make_cpu_align_backend(threads);
  if (!o.no_cpu && hmm_main->name() != "cpu") hmm_cpu = make_cpu_genotype_backend(threads);
  if (!o.no_cpu || align_main->name() == "cpu") {
    align_simt = make_simt_cpu_align_backend(threads);
    hmm_simt = make_simt_cpu_genotype_backend(threads);
  }

  const std::vector<int> lengths = o.quick ? std::vector<int>{150} : std::vector<int>{100, 150, 250};
  const std::vector<int> bands = o.quick ? std::vector<int>{65} : std::vector<int>{17, 65, 129};
  const std::vector<size_t> batches =
      o.quick ? std::vector<size_t>{2048} : std::vector<size_t>{1024, 16384, 131072};
  const std::vector<size_t> pair_batches =
      o.quick ? std::vector<size_t>{1024} : std::vector<size_t>{1024, 16384, 65536};
  const std::vector<int> hap_lengths = o.quick ? std::vector<int>{300} : std::vector<int>{200, 400};

  std::printf("%-6s %-8s %-12s %8s %14s %10s %9s  %s\n", "stage", "bknd", "shape", "batch", "cells",
              "seconds", "Gcells/s", "device (per call)");
  nlohmann::json rows = nlohmann::json::array();
  const ScoringParams sp;
  for (int len : lengths)
    for (int band : bands)
      for (size_t n : batches) {
        const AlignTaskBatch batch = align_batch(rng, genome, len, band, n);
        uint64_t cells = 0;
        for (size_t i = 0; i < batch.size(); ++i)
          cells += uint64_t(batch.query_length[i]) * uint64_t(band_width(batch.diag_lo[i], batch.diag_hi[i]));
        AlignResultBatch out;
        for (AlignBackend* b : {align_main.get(), align_cpu.get(), align_simt.get()}) {
          if (!b) continue;
          // The CPU backends are timed once (they need no warm-up and are the slow side).
          const int reps = b->name() != "cuda" ? 1 : o.repeats;
          Row r = measure(*b, batch, reps, [&] { b->align(batch, sp, out); });
          r.stage = "align";
          r.read_length = len;
          r.band = band;
          r.batch = n;
          r.cells = cells;
          print_row(r);
          rows.push_back(row_json(r));
        }
      }
  const PairHmmParams hp;
  for (int hl : hap_lengths)
    for (size_t n : pair_batches) {
      const HmmTaskBatch batch = hmm_batch(rng, genome, hl, n);
      uint64_t cells = 0;
      for (size_t i = 0; i < batch.size(); ++i)
        cells += uint64_t(batch.read_length[batch.read_index[i]]) * batch.hap_length[batch.hap_index[i]];
      HmmResultBatch out;
      for (GenotypeBackend* b : {hmm_main.get(), hmm_cpu.get(), hmm_simt.get()}) {
        if (!b) continue;
        const int reps = b->name() != "cuda" ? 1 : o.repeats;
        Row r = measure(*b, batch, reps, [&] { b->compute(batch, hp, out); });
        r.stage = "hmm";
        r.hap_length = hl;
        r.batch = n;
        r.cells = cells;
        print_row(r);
        rows.push_back(row_json(r));
      }
    }
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    if (!f) throw Error(o.json + ": cannot write");
    f << nlohmann::json{{"backend", align_main->name()}, {"rows", rows}}.dump(2) << "\n";
    if (!f) throw Error(o.json + ": write failed");
  }
  return 0;
}

}  // namespace

CliAction add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bench",
      "Benchmark the alignment and pair-HMM backends on synthetic batches (GPU and CPU side by side)");
  auto o = std::make_shared<BenchOptions>();
  cmd->add_option("--backend", o->backend, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--device", o->device, "CUDA device index")->check(CLI::NonNegativeNumber);
  cmd->add_option("-t,--threads", o->threads, "CPU backend threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--repeats", o->repeats, "Timed calls per measurement of the selected backend")
      ->check(CLI::Range(1, 100));
  cmd->add_flag("--no-cpu", o->no_cpu, "Do not also measure the CPU backend");
  cmd->add_flag("--quick", o->quick, "One small configuration per stage");
  cmd->add_option("--json", o->json, "Also write the results as JSON to this file");
  return {cmd, [o] { return run_bench(*o); }};
}

}  // namespace omicsd
