#pragma once
// A loopback TCP proxy for tests that must catch a client in the middle of a request: it relays
// every connection to an upstream port both ways until the client's bytes contain `trigger` (e.g.
// "?partNumber=", the request line of an S3 multipart part), then stops relaying that connection's
// request bytes and reports stalled(). The client waits for an answer that never comes, so a test
// can kill it at a moment it knows, instead of racing a fast transfer. Nothing is altered on the way.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace omicsd::test {

class StallingProxy {
 public:
  StallingProxy(uint16_t upstream_port, std::string trigger)
      : upstream_port_(upstream_port), trigger_(std::move(trigger)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 16) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("StallingProxy: cannot listen on loopback");
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  StallingProxy(const StallingProxy&) = delete;
  StallingProxy& operator=(const StallingProxy&) = delete;
  ~StallingProxy() {
    stop_ = true;
    acceptor_.join();
    ::close(listen_fd_);
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& t : relays_) t.join();
  }

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // True once a connection's request bytes contained the trigger (and are held from then on).
  bool stalled() const { return stalled_; }

 private:
  static sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
  }

  void accept_loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      relays_.emplace_back([this, client] { relay(client); });
    }
  }

  void relay(int client) {
    const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(upstream_port_);
    if (upstream < 0 || ::connect(upstream, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(client);
      if (upstream >= 0) ::close(upstream);
      return;
    }
    std::string tail;  // the last bytes seen from the client: a trigger split between two reads
    bool holding = false;
    std::vector<char> buf(64 * 1024);
    while (!stop_) {
      // While holding, the client is still watched (for its close) but its bytes go nowhere.
      pollfd p[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
      if (::poll(p, 2, 50) <= 0) continue;
      if (p[0].revents) {
        const ssize_t n = ::read(client, buf.data(), buf.size());
        if (n <= 0) break;
        if (!holding) {
          tail.append(buf.data(), std::size_t(n));
          if (tail.find(trigger_) != std::string::npos) {
            holding = true;
            stalled_ = true;
          } else {
            if (!send_all(upstream, buf.data(), std::size_t(n))) break;
            if (tail.size() > trigger_.size()) tail.erase(0, tail.size() - trigger_.size());
          }
        }
      }
      if (p[1].revents) {
        const ssize_t n = ::read(upstream, buf.data(), buf.size());
        if (n <= 0 || !send_all(client, buf.data(), std::size_t(n))) break;
      }
    }
    ::close(client);
    ::close(upstream);
  }

  static bool send_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      p += w;
      n -= std::size_t(w);
    }
    return true;
  }

  uint16_t upstream_port_;
  std::string trigger_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false}, stalled_{false};
  std::mutex mu_;
  std::thread acceptor_;
  std::vector<std::thread> relays_;
};

}  // namespace omicsd::test
