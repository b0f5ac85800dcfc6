#pragma once
// A webhook receiver on loopback for tests: records every request (headers and body); answers the first
// `fail_first` of them with 500.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "service/http/http_server.hpp"

namespace omicsd::test {

struct WebhookReceiver {
  struct Hit {
    std::map<std::string, std::string> headers;
    std::string body;
  };
  std::mutex mu;
  std::vector<Hit> hits;
  std::atomic<int> fail_first{0};
  std::unique_ptr<http::HttpServer> server;

  void start() {
    http::Router r;
    r.post("/hooks/omicsd", [this](http::Request& req) {
      std::lock_guard lk(mu);
      hits.push_back({req.headers, req.body});
      if (int(hits.size()) <= fail_first.load()) return http::Response::error(500, "receiver is down");
      return http::Response::json({{"ok", true}});
    });
    http::HttpServerOptions o;
    o.port = 0;
    server = std::make_unique<http::HttpServer>(o, std::move(r));
    server->start();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()) + "/hooks/omicsd"; }
  size_t count() {
    std::lock_guard lk(mu);
    return hits.size();
  }
  bool wait_for(size_t n, int timeout_s = 60) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (count() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
};

}  // namespace omicsd::test
