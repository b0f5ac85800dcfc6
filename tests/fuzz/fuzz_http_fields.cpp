// Request-line and header fields and the small grammars of the API: Range headers, query strings and
// percent-escapes, region and variant strings, CIDR networks, callback URLs. The input is split at
// its first byte (which parser) and fed to it; exceptions other than InputError are findings.
#include <cstddef>
#include <cstdint>
#include <string>

#include "host/common/error.hpp"
#include "service/http/address_policy.hpp"
#include "service/http/http_router.hpp"
#include "service/http/http_server.hpp"
#include "service/stores/variant_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string s(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 6) {
      case 0: {  // Range against files of a few sizes, including 0 and the largest
        for (std::uint64_t file :
             {std::uint64_t(0), std::uint64_t(1), std::uint64_t(1000), ~std::uint64_t(0)}) {
          const auto r = omicsd::http::parse_range(s, file);
          if (r.kind == omicsd::http::ByteRange::ok && (r.first > r.last || r.last >= file)) __builtin_trap();
        }
        break;
      }
      case 1: {
        const auto q = omicsd::http::parse_query(s);
        for (const auto& [k, v] : q) (void)omicsd::http::percent_decode(k + v, true);
        break;
      }
      case 2: {
        const auto r = omicsd::parse_region(s);
        if (r.end < r.start) __builtin_trap();
        break;
      }
      case 3:
        (void)omicsd::parse_variant(s);
        break;
      case 4:
        (void)omicsd::parse_cidr(s);
        (void)omicsd::AddressPolicy().refusal(s);
        break;
      case 5: {
        const std::string r = omicsd::redact_url_credentials(s);
        if (r != s && r.find('@') == std::string::npos) __builtin_trap();
        break;
      }
    }
  } catch (const omicsd::InputError&) {
  }
  return 0;
}
