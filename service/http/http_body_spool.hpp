#pragma once
// The file a streamed request body is received into (Router::add_streamed): created exclusively in
// the route's spool directory, hashed (SHA-256) as it is written, removed unless the handler moved
// it away. One chunk at a time; nothing of the body stays in memory.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "service/util/sha256.hpp"

namespace omicsd::http {

class BodySpool {
 public:
  BodySpool() = default;
  ~BodySpool() { drop(); }
  BodySpool(const BodySpool&) = delete;
  BodySpool& operator=(const BodySpool&) = delete;

  // Creates a new file in `dir`; false (errno set) when it cannot.
  bool open(const std::filesystem::path& dir);
  // Hashes and appends n bytes; false (errno set) when the write fails.
  bool write(const char* data, std::size_t n);
  // Closes the file, keeping it; false (errno set) when the close reports an error.
  bool finish();
  // Closes (if open) and removes the file, unless it was moved away.
  void drop();

  const std::filesystem::path& path() const { return path_; }
  // "sha256:<hex>" of everything written; once, after finish().
  std::string digest();

  // Free bytes for unprivileged users on the file system of `dir` (the maximum when unknown).
  static std::uint64_t free_bytes(const std::filesystem::path& dir);

 private:
  int fd_ = -1;
  std::filesystem::path path_;
  std::unique_ptr<Sha256> sha_;
};

}  // namespace omicsd::http
