#include "service/http/http_body_spool.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <limits>
#include <random>

namespace omicsd::http {

bool BodySpool::open(const std::filesystem::path& dir) {
  static std::atomic<std::uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}());
  path_ = dir / ("upload." + std::to_string(::getpid()) + "." + std::to_string(counter++) + "." +
                 std::to_string(rng() % 1000000000));
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    path_.clear();
    return false;
  }
  sha_ = std::make_unique<Sha256>();
  return true;
}

bool BodySpool::write(const char* p, std::size_t n) {
  sha_->update(p, n);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= std::size_t(w);
  }
  return true;
}

bool BodySpool::finish() {
  const int fd = fd_;
  fd_ = -1;
  return ::close(fd) == 0;
}

void BodySpool::drop() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!path_.empty()) ::unlink(path_.c_str());
  path_.clear();
  sha_.reset();
}

std::string BodySpool::digest() {
  std::string d = "sha256:" + sha_->final_hex();
  sha_.reset();
  return d;
}

std::uint64_t BodySpool::free_bytes(const std::filesystem::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return std::numeric_limits<std::uint64_t>::max();  // unknown
  return std::uint64_t(st.f_bavail) * std::uint64_t(st.f_frsize);
}

}  // namespace omicsd::http
