#pragma once
// SHA-256 (OpenSSL EVP): content addresses for the object store and task cache keys.
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace omicsd {

// Incremental hasher. Throws omicsd::Error if OpenSSL fails (it does not in practice).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // 64 lowercase hex digits; the hasher cannot be updated afterwards.
  std::string final_hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Lowercase hex SHA-256 of a byte string.
std::string sha256_hex(std::string_view data);
// Lowercase hex HMAC-SHA256 of `data` under `key` (webhook signatures).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// Lowercase hex SHA-256 of a file, streamed in fixed-size chunks. *size_out (optional) gets the
// byte count. Throws InputError naming the file if it cannot be opened or read.
std::string sha256_file_hex(const std::filesystem::path& path, uint64_t* size_out = nullptr);

}  // namespace omicsd
