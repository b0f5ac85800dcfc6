#pragma once
// Runs one pipeline task (align, call or qc) for a worker: checks its inputs against the allowed
// roots, opens them beneath those roots (service/runner/task_inputs.hpp) and digests them, looks up the
// worker-local call cache, runs the engine into a scratch directory on links to the opened files,
// stores the outputs content-addressed and returns them with provenance.
#include <sys/types.h>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "service/objects/object_store.hpp"

namespace omicsd {

struct OpenedFile;

// sha256 over the canonical JSON {"inputs","kind","parameters","version"} (nlohmann dump: object keys
// sorted at every level, no whitespace) -> "sha256:<hex>". Key order in `parameters` does not matter.
std::string cache_key(const std::string& kind, const std::string& engine_version,
                      const nlohmann::json& parameters,
                      const std::map<std::string, std::string>& input_digests);

// Engine failures propagate unchanged. InputError (bad reads, bad reference, bad URI, bad
// parameters) is permanent: false. Everything else (I/O, out of memory, device errors): true.
bool retryable(const std::exception& e);

struct RunnerTaskSpec {
  // "align": inputs {"reference": URI, "reads": URI | [URI] | [URI, URI]}  (or "reads1"/"reads2")
  //          parameters {threads, backend, device, read_group, interleaved, min_score}
  // "call":  inputs {"reference": URI, "bam": URI | digest, optional "bai", "regions", "targets"}
  //          parameters {threads, backend, device, gvcf, min_mapq, min_baseq, min_qual, regions, targets}
  //          (regions/targets are BED URIs; in parameters they are treated exactly like inputs)
  // "qc":    inputs {"bam", "vcf", "reference"}  parameters {}
  // URIs: file:///abs, /abs (inside the runner's allowed roots) or sha256:<hex> in the object store.
  std::string kind;
  std::string sample;  // output names, default read group, VCF sample column; part of the cache key
  nlohmann::json inputs = nlohmann::json::object();
  nlohmann::json parameters = nlohmann::json::object();
  std::filesystem::path scratch_dir;  // empty: <store>/scratch/<cache key hex>
  bool use_cache = true;              // false: always run (the result still refreshes the cache)
};

struct RunnerTaskResult {
  std::string kind;
  std::string cache_key;
  bool cache_hit = false;
  std::map<std::string, ObjectRef> outputs;  // align: bam, bai; call: vcf, tbi|csi; qc: qc
  nlohmann::json provenance;                 // of the run that produced the outputs
  double seconds = 0;                        // this call's wall time (small on a cache hit)

  nlohmann::json to_json()
      const;  // {"kind","cache_key","cache_hit","outputs":{name:ref},"provenance","seconds"}
};

struct TaskRunnerOptions {
  std::vector<std::filesystem::path> allowed_roots;  // where file inputs may come from
  std::string worker_id;                             // recorded in provenance
  bool keep_scratch = false;                         // leave the scratch directory after success
  // Called at "inputs_checked" (every input URI has passed the root policy and nothing is open yet)
  // and at "inputs_staged" (inputs and their indexes are open and staged; the engine has not started).
  // A seam for tests, which swap files there to make a time-of-check/time-of-use race deterministic.
  std::function<void(const std::string& point)> checkpoint;
};

class TaskRunner {
 public:
  TaskRunner(ObjectStore& store, TaskRunnerOptions options);

  // Throws InputError for a bad spec or bad inputs, and the engine's own exceptions (with staged
  // input names replaced by the client's URIs).
  RunnerTaskResult run(const RunnerTaskSpec& spec);

  // The cache key run(spec) would use, without running anything: the spec is validated and its inputs
  // are checked, opened beneath their roots and digested exactly as run() does. Throws like run().
  std::string key_of(const RunnerTaskSpec& spec);

  // Records that the file at `path`, as it is now (size, mtime), has `digest`, so run() does not
  // hash it again (the HTTP-transfer worker hashed its inputs while downloading them). Throws
  // InputError when the file cannot be found.
  void remember_digest(const std::filesystem::path& path, const std::string& digest);

  // The worker-local cache entry <store>/cache/<key hex>.json, if present and all its objects exist.
  std::optional<RunnerTaskResult> cached(const std::string& key) const;

 private:
  struct Prepared;  // a validated spec with its inputs opened and digested, and its cache key
  Prepared prepare(const RunnerTaskSpec& spec, bool for_run);
  std::string file_digest(const OpenedFile& file);
  void write_cache_entry(const RunnerTaskResult& result) const;
  void checkpoint(const char* point) const;

  ObjectStore& store_;
  TaskRunnerOptions options_;
  // Digest memo for input files (reference FASTAs are large): canonical path -> the file it named
  // (device, inode), its size and mtime, and the digest.
  struct Memo {
    dev_t dev = 0;
    ino_t ino = 0;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    std::string digest;
  };
  std::mutex memo_mutex_;
  std::map<std::string, Memo> memo_;
};

}  // namespace omicsd
