// The HTTPS server's TLS context: Mozilla's "intermediate" profile, certificate and key from PEM
// files.
#include <openssl/ssl.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "service/http/http_server_impl.hpp"

namespace omicsd::http {
namespace {
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";
}  // namespace

net::ssl::context make_tls_context(const std::string& cert_file, const std::string& key_file) {
  auto fail = [](const char* what, const std::string& file, const std::string& why) {
    throw std::runtime_error(std::string("TLS ") + what + " file '" + file + "': " + why);
  };
  auto check_file = [&](const char* what, const std::string& file) {
    std::error_code fec;
    if (!std::filesystem::exists(file, fec)) fail(what, file, "no such file");
    if (!std::filesystem::is_regular_file(file, fec)) fail(what, file, "not a regular file");
  };
  check_file("certificate", cert_file);
  check_file("key", key_file);
  net::ssl::context ctx(net::ssl::context::tls_server);
  ctx.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                  net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                  net::ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  // Mozilla's "intermediate" profile: TLS 1.2 only with forward-secret AEAD suites (TLS 1.3 suites
  // are all AEAD); the server's order wins.
  if (SSL_CTX_set_cipher_list(ctx.native_handle(), kTls12Ciphers) != 1)
    throw std::runtime_error("TLS: OpenSSL accepts none of the configured TLS 1.2 cipher suites");
  SSL_CTX_set_options(ctx.native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  beast::error_code ec;
  ctx.use_certificate_chain_file(cert_file, ec);
  if (ec) fail("certificate", cert_file, "not a usable PEM certificate (" + ec.message() + ")");
  ctx.use_private_key_file(key_file, net::ssl::context::pem, ec);
  if (ec) fail("key", key_file, "not a usable PEM private key for the certificate (" + ec.message() + ")");
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    fail("key", key_file, "does not match the certificate in '" + cert_file + "'");
  return ctx;
}

}  // namespace omicsd::http
