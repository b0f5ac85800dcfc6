#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "host/align/banded_sw.hpp"
#include "host/align/scoring.hpp"

namespace omicsd {

// A batch of (read, reference window, band) alignment tasks in structure-of-arrays form: the unit a
// backend aligns in one call (one kernel launch series on the GPU). Bases are codes 0..4.
struct AlignTaskBatch {
  std::vector<uint8_t> query;          // all queries, concatenated
  std::vector<uint32_t> query_offset;  // per task
  std::vector<uint32_t> query_length;
  std::vector<uint8_t> target;  // all target windows, concatenated
  std::vector<uint64_t> target_offset;
  std::vector<uint32_t> target_length;
  std::vector<int32_t> diag_lo, diag_hi;  // band: lo <= j - i <= hi

  size_t size() const { return query_length.size(); }
  void clear() {
    query.clear();
    query_offset.clear();
    query_length.clear();
    target.clear();
    target_offset.clear();
    target_length.clear();
    diag_lo.clear();
    diag_hi.clear();
  }
  // Adds a task; returns its index.
  size_t add(const uint8_t* q, uint32_t qlen, const uint8_t* t, uint32_t tlen, int32_t lo, int32_t hi) {
    query_offset.push_back(uint32_t(query.size()));
    query.insert(query.end(), q, q + qlen);
    query_length.push_back(qlen);
    target_offset.push_back(target.size());
    target.insert(target.end(), t, t + tlen);
    target_length.push_back(tlen);
    diag_lo.push_back(lo);
    diag_hi.push_back(hi);
    return size() - 1;
  }
};

// Results, one per task, same order. CIGAR ops are BAM-encoded (len << 4 | op) with soft clips.
struct AlignResultBatch {
  std::vector<int32_t> score, objective;
  std::vector<int32_t> query_begin, query_end, target_begin, target_end;
  std::vector<uint32_t> cigar_offset, cigar_length;
  std::vector<uint32_t> cigar;

  size_t size() const { return score.size(); }
  void resize(size_t n) {
    score.assign(n, kNegInf);
    objective.assign(n, kNegInf);
    query_begin.assign(n, 0);
    query_end.assign(n, 0);
    target_begin.assign(n, 0);
    target_end.assign(n, 0);
    cigar_offset.assign(n, 0);
    cigar_length.assign(n, 0);
  }
  // Task i's result from the shared traceback, and back; where its CIGAR lies (cigar_offset) is the
  // backend's to set.
  void set_result(size_t i, const BandedResult& r) {
    score[i] = r.score;
    objective[i] = r.objective;
    query_begin[i] = r.qbeg;
    query_end[i] = r.qend;
    target_begin[i] = r.tbeg;
    target_end[i] = r.tend;
    cigar_length[i] = r.n_cigar;
  }
  BandedResult result(size_t i) const {
    BandedResult r;
    r.score = score[i];
    r.objective = objective[i];
    r.qbeg = query_begin[i];
    r.qend = query_end[i];
    r.tbeg = target_begin[i];
    r.tend = target_end[i];
    r.n_cigar = cigar_length[i];
    return r;
  }
};

// The hot alignment stage. Implementations: CPU (host/align/cpu_align_backend) and CUDA (cuda/).
// Every backend returns bit-identical results for the same batch.
class AlignBackend {
 public:
  virtual ~AlignBackend() = default;
  virtual std::string name() const = 0;
  virtual void align(const AlignTaskBatch& tasks, const ScoringParams& params, AlignResultBatch& out) = 0;
};

// Multi-threaded CPU backend (threads <= 0: hardware concurrency).
std::unique_ptr<AlignBackend> make_cpu_align_backend(int threads);

// How the engine gets the backend of a run: called once with the run's thread count. The engine does
// not choose between CPU and CUDA backends; the layer above it does (backends/) and hands it this.
using AlignBackendFactory = std::function<std::unique_ptr<AlignBackend>(int threads)>;

// The lane-vector CPU backend ("cpu-simt"): the CUDA kernels' warp-cooperative fill
// (host/align/banded_warp.hpp) run through the lane layer's CPU emulation, then the scalar traceback on
// its step-major direction bytes; bands too wide for the warp fill take the scalar fill. Bit-identical
// with the CPU backend: what CI runs to prove the device algorithm.
std::unique_ptr<AlignBackend> make_simt_cpu_align_backend(int threads);

// The order both warp-fill backends process a batch in: tasks grouped by their warp shape
// (banded_warp_shape, ascending; scalar-only tasks, shape 0, first), longest first within a shape so the
// tasks sharing a warp take similar numbers of steps. Tasks with no cells (empty read or band) are
// left out.
std::vector<uint32_t> warp_task_order(const AlignTaskBatch& tasks);

}  // namespace omicsd
