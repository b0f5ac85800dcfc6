#include "service/http/address_policy.hpp"

#include <boost/asio/ip/address.hpp>

#include "host/common/error.hpp"

namespace omicsd {
namespace {

bool parse_address(const std::string& text, std::array<uint8_t, 16>* out, bool* v4) {
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(text, ec);
  if (ec) return false;
  if (a.is_v4()) {
    *out = boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, a.to_v4()).to_bytes();
    *v4 = true;
  } else {
    *out = a.to_v6().to_bytes();
    *v4 = false;
  }
  return true;
}

Cidr net(const char* text) { return parse_cidr(text); }

}  // namespace

bool Cidr::contains(const std::array<uint8_t, 16>& a) const {
  int bits = prefix;
  for (size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : uint8_t(0xff << (8 - bits));
    if ((a[i] & mask) != (bytes[i] & mask)) return false;
  }
  return true;
}

Cidr parse_cidr(const std::string& text) {
  const auto slash = text.find('/');
  Cidr c;
  bool v4 = false;
  if (!parse_address(text.substr(0, slash), &c.bytes, &v4))
    throw InputError("'" + text + "': not an IP address or CIDR network (e.g. 10.0.0.0/8, fd00::/8)");
  const int max = v4 ? 32 : 128;
  int bits = max;
  if (slash != std::string::npos) {
    const std::string b = text.substr(slash + 1);
    if (b.empty() || b.size() > 3 || b.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(b) > max)
      throw InputError("'" + text + "': the prefix length must be 0.." + std::to_string(max));
    bits = std::stoi(b);
  }
  c.prefix = v4 ? 96 + bits : bits;
  return c;
}

std::string special_address_kind(const std::array<uint8_t, 16>& a) {
  static const std::vector<std::pair<Cidr, const char*>> kinds = {
      {net("0.0.0.0/8"), "an unspecified (\"this network\") address"},
      {net("127.0.0.0/8"), "a loopback address"},
      {net("10.0.0.0/8"), "a private address"},
      {net("172.16.0.0/12"), "a private address"},
      {net("192.168.0.0/16"), "a private address"},
      {net("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
      {net("169.254.0.0/16"), "a link-local address (the cloud metadata service lives there)"},
      {net("192.0.0.0/24"), "a reserved (IETF protocol) address"},
      {net("198.18.0.0/15"), "a reserved (benchmarking) address"},
      {net("224.0.0.0/4"), "a multicast address"},
      {net("240.0.0.0/4"), "a reserved address"},
      {net("::/128"), "the unspecified address"},
      {net("::1/128"), "a loopback address"},
      {net("fc00::/7"), "a private (unique local) address"},
      {net("fe80::/10"), "a link-local address"},
      {net("fec0::/10"), "a site-local address"},
      {net("ff00::/8"), "a multicast address"},
      {net("64:ff9b::/96"), "a NAT64 address"},  // embeds any IPv4 address, private ones too
      {net("2002::/16"), "a 6to4 address"},      // likewise
      {net("::/96"), "an IPv4-compatible address"},
  };
  for (const auto& [cidr, kind] : kinds)
    if (cidr.contains(a)) return kind;
  return "";
}

std::string redact_url_credentials(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const auto start = scheme + 3;
  const auto end = url.find_first_of("/?#", start);
  const auto at = url.rfind('@', end == std::string::npos ? std::string::npos : end);
  if (at == std::string::npos || at < start) return url;
  return url.substr(0, start) + "***" + url.substr(at);
}

std::string AddressPolicy::refusal(const std::string& ip) const {
  std::array<uint8_t, 16> a{};
  bool v4 = false;
  if (!parse_address(ip, &a, &v4)) return "'" + ip + "' is not an IP address";
  for (const Cidr& c : allow_)
    if (c.contains(a)) return "";
  const std::string kind = special_address_kind(a);
  if (kind.empty()) return "";
  return ip + " is " + kind + " (allow it with --callback-allow)";
}

}  // namespace omicsd
