// Where callback_urls may connect (service/http/address_policy.hpp): public unicast only, unless the
// operator allows a network; the HTTP client connects only to addresses the policy accepted.
#include <gtest/gtest.h>

#include <string>

#include "host/common/error.hpp"
#include "service/http/address_policy.hpp"
#include "service/http/http_client.hpp"
#include "service/http/http_server.hpp"

namespace omicsd {
namespace {

TEST(AddressPolicy, RefusesLoopbackPrivateLinkLocalAndMetadataByDefault) {
  const AddressPolicy p;
  for (const char* ip : {"127.0.0.1",
                         "127.1.2.3",
                         "10.0.0.5",
                         "172.16.0.1",
                         "172.31.255.255",
                         "192.168.1.1",
                         "169.254.169.254",
                         "100.64.0.1",
                         "0.0.0.0",
                         "224.0.0.1",
                         "255.255.255.255",
                         "::1",
                         "::",
                         "fe80::1",
                         "fd00:ec2::254",
                         "fc00::1",
                         "::ffff:127.0.0.1",
                         "::ffff:169.254.169.254",
                         "64:ff9b::a00:1",
                         "2002:7f00:1::1",
                         "::127.0.0.1",
                         "not-an-ip"})
    EXPECT_FALSE(p.refusal(ip).empty()) << ip;
  EXPECT_NE(p.refusal("169.254.169.254").find("metadata"), std::string::npos) << p.refusal("169.254.169.254");
  EXPECT_NE(p.refusal("127.0.0.1").find("--callback-allow"), std::string::npos);
  for (const char* ip :
       {"8.8.8.8", "1.1.1.1", "172.32.0.1", "192.169.0.1", "2606:4700::1111", "::ffff:8.8.8.8"})
    EXPECT_EQ(p.refusal(ip), "") << ip;
}

TEST(AddressPolicy, OperatorAllowListOpensExactlyItsNetworks) {
  const AddressPolicy p({parse_cidr("10.1.0.0/16"), parse_cidr("127.0.0.1"), parse_cidr("fd00::/8")});
  EXPECT_EQ(p.refusal("10.1.200.3"), "");
  EXPECT_FALSE(p.refusal("10.2.0.1").empty());
  EXPECT_EQ(p.refusal("127.0.0.1"), "");
  EXPECT_FALSE(p.refusal("127.0.0.2").empty());
  EXPECT_EQ(p.refusal("::ffff:127.0.0.1"), "");  // the same address, mapped
  EXPECT_EQ(p.refusal("fd12::1"), "");
  EXPECT_FALSE(p.refusal("::1").empty());
  for (const char* bad :
       {"", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/-1", "host/8", "1.2.3.4/8x"})
    EXPECT_THROW(parse_cidr(bad), InputError) << bad;
  EXPECT_EQ(parse_cidr("0.0.0.0/0").prefix, 96);
}

TEST(AddressPolicy, ClientConnectsOnlyToAcceptedAddressesAndCapsBodies) {
  http::Router r;
  r.get("/big", [](http::Request&) { return http::Response::text(std::string(1 << 20, 'x'), 500); });
  http::HttpServerOptions so;
  so.port = 0;
  http::HttpServer server(so, std::move(r));
  server.start();
  HttpClientOptions co;
  co.base_url = "http://localhost:" + std::to_string(server.port());
  co.max_attempts = 3;
  int calls = 0;
  co.connect_policy = [&calls](const std::string& ip) {
    ++calls;
    return AddressPolicy().refusal(ip);
  };
  try {
    HttpClient(co).send("GET", "/big");
    ADD_FAILURE() << "connected to a loopback address the policy refused";
  } catch (const HttpClientError& e) {
    EXPECT_EQ(e.status(), 0);
    EXPECT_NE(std::string(e.what()).find("refused: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("loopback"), std::string::npos) << e.what();
  }
  EXPECT_GE(calls, 1);
  EXPECT_LE(calls, 2) << "a refusal is final, not retried";  // localhost: 127.0.0.1 and maybe ::1
  co.connect_policy = [](const std::string& ip) {
    return AddressPolicy({parse_cidr("127.0.0.0/8")}).refusal(ip);
  };
  co.max_response_body = 64 * 1024;
  HttpResponse res = HttpClient(co).send("GET", "/big");
  EXPECT_EQ(res.status, 500);
  EXPECT_TRUE(res.truncated);
  EXPECT_EQ(res.body.size(), 64u * 1024);
  server.stop();
}

}  // namespace
}  // namespace omicsd
