#pragma once
// Byte-transfer routes for workers that share no storage with the daemon (docs/api.md, "Objects"):
//   PUT  /v1/objects/{digest}            upload an object (streamed to disk, SHA-256 verified)
//   GET  /v1/objects/{digest}            download an object (Range, HEAD)
//   GET  /v1/tasks/{id}/inputs/{key}     one input file of a task leased by the caller, or a
//                                        companion index of one ("reference.fai", "bam.bai", ...)
// All need the worker scope.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "service/http/http_router.hpp"
#include "service/runner/task_input_keys.hpp"  // kLeaseTokenHeader, the input keys this route serves

namespace omicsd {

class JobStore;
class ObjectStore;
struct Run;
struct Task;
class Metrics;

struct ObjectRoutesOptions {
  std::vector<std::filesystem::path> allow_roots;            // where file inputs may be read from
  std::uint64_t max_object_bytes = std::uint64_t(64) << 30;  // PUT bodies larger than this -> 413
  std::chrono::milliseconds upload_idle_timeout{120'000};    // per chunk of a PUT body
  std::uint64_t min_free_bytes = 0;  // free space kept on the object store's disk (else 507)
};

// "sha256:<64 lowercase hex>" for "sha256:<hex>" or a bare 64-digit hex (either case); nullopt
// for anything else.
std::optional<std::string> normalize_digest(const std::string& s);

void add_object_routes(http::Router& router, ObjectStore& objects, JobStore& jobs,
                       ObjectRoutesOptions options, std::shared_ptr<Metrics> metrics = {});

}  // namespace omicsd
