#pragma once
// What a task's inputs are called on the wire, shared by the daemon's input route
// (GET /v1/tasks/{id}/inputs/{key}, object_routes.cpp) and the workers that download through it
// (worker_transfer.cpp).
#include <string>
#include <utility>
#include <vector>

namespace omicsd {

struct Run;
struct Task;

// The header that names the caller's lease on GET /v1/tasks/{id}/inputs/{key}.
inline constexpr const char* kLeaseTokenHeader = "X-Omicsd-Lease-Token";

// The input keys of a task and what they name: "reference", "reads" or "reads/0", "reads/1",
// "bam", "vcf", and "regions" / "targets" (BED URIs among the task's parameters), each mapped to
// its URI (a path, file:// URI or sha256: digest) as the lease answer carries it.
std::vector<std::pair<std::string, std::string>> task_input_keys(const Run& run, const Task& task);

// Companion index files the engine reads next to an input, by input key, as file extensions
// (without the dot): reference -> fai, gzi, omi; bam -> bai, csi, crai (sidecar_extensions in
// task_inputs.hpp, which the TaskRunner opens next to a file input).
const std::vector<std::string>& input_companions(const std::string& key);

}  // namespace omicsd
