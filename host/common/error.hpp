#pragma once
#include <stdexcept>
#include <string>

namespace omicsd {

// Every engine failure is an Error whose message names the file, record or field at fault, so the
// CLI can print it as one line and the daemon can return it verbatim in a JSON error body.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Bad user input (malformed records, mismatched files): distinct so callers can map it to 4xx / exit 2.
class InputError : public Error {
 public:
  explicit InputError(const std::string& what) : Error(what) {}
};

// An unknown run, task, reference, read set or sample (the daemon answers 404).
class NotFoundError : public Error {
 public:
  explicit NotFoundError(const std::string& what) : Error(what) {}
};

// The thing exists but its state does not allow the operation: a stale lease, a delete of something a
// run still uses, an upload to a read set that is already importing (the daemon answers 409).
class ConflictError : public Error {
 public:
  explicit ConflictError(const std::string& what) : Error(what) {}
};

// A GPU failed in a way that leaves its context unusable for the rest of the process (CUDA's sticky
// errors: illegal address, launch failure, hardware exception, ECC). Callers stop using that device and
// finish on the CPU (host/common/gpu_health.hpp); a worker then exits with its retry code.
class GpuFaultError : public Error {
 public:
  GpuFaultError(int device, const std::string& what) : Error(what), device_(device) {}
  int device() const { return device_; }

 private:
  int device_;
};

}  // namespace omicsd
