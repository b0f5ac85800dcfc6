#include "service/util/ids.hpp"

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "host/common/error.hpp"

namespace omicsd {

std::string random_hex(size_t digits) {
  // The kernel's CSPRNG: run ids and lease tokens must not be predictable from earlier ones
  // (mt19937_64's state is recoverable from 312 outputs). getrandom never repeats across forks.
  static const char* hex = "0123456789abcdef";
  std::string bytes((digits + 1) / 2, '\0');
  for (size_t got = 0; got < bytes.size();) {
    const ssize_t n = ::getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("getrandom failed: ") + std::strerror(errno));
    }
    got += size_t(n);
  }
  std::string out;
  out.reserve(digits);
  for (unsigned char c : bytes) {
    out.push_back(hex[c >> 4]);
    if (out.size() < digits) out.push_back(hex[c & 15]);
  }
  return out;
}

}  // namespace omicsd
