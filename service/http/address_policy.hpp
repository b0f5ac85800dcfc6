#pragma once
// Which network addresses the daemon may connect to on a client's behalf (run callback_urls). By
// default only public unicast addresses: loopback, private (RFC 1918, unique-local), link-local (the
// cloud metadata service 169.254.169.254 among them), carrier-grade NAT, multicast, unspecified and
// reserved ranges are refused unless the operator names them (`omicsd serve --callback-allow CIDR`).
// The check is made on the address a name resolved to, and the HTTP client then connects to exactly
// that address (HttpClientOptions::connect_policy), so a name that re-resolves elsewhere (DNS
// rebinding) gains nothing.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace omicsd {

// An IPv4 or IPv6 network, e.g. "10.0.0.0/8", "fd00::/8", "192.0.2.7" (a single address).
struct Cidr {
  std::array<uint8_t, 16> bytes{};  // IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d)
  int prefix = 0;                   // in bits of the 128 (IPv4 /8 -> 104)
  bool contains(const std::array<uint8_t, 16>& address) const;
};
// Throws InputError for anything but "<address>[/<bits>]".
Cidr parse_cidr(const std::string& text);

class AddressPolicy {
 public:
  AddressPolicy() = default;
  explicit AddressPolicy(std::vector<Cidr> allow) : allow_(std::move(allow)) {}
  // "" when the daemon may connect to `ip` (a literal IPv4 or IPv6 address), else why not, e.g.
  // "127.0.0.1 is a loopback address". A malformed address is refused.
  std::string refusal(const std::string& ip) const;

 private:
  std::vector<Cidr> allow_;
};

// `url` with the credentials of its authority (http://user:secret@host/...) replaced by "***", for
// logs and for what clients are shown; other URLs are returned unchanged.
std::string redact_url_credentials(const std::string& url);

// Why `ip` is not a public unicast address ("loopback", "private", "link-local (cloud metadata)",
// ...), or "" when it is one.
std::string special_address_kind(const std::array<uint8_t, 16>& address);

}  // namespace omicsd
