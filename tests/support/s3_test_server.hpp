#pragma once
// The S3-compatible server of the S3 tests: scripts/s3-test-server.sh starts moto's standalone
// server once per test process (venv under ~/.cache/omicsd, free loopback port), stopped at exit.
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>

#include "tests/support/test_support.hpp"

namespace omicsd::test {

inline std::string s3_test_server_script() {
  return (std::filesystem::path(OMICSD_SOURCE_DIR) / "scripts" / "s3-test-server.sh").string();
}

// "http://127.0.0.1:PORT". Throws std::runtime_error when the server cannot be installed or started.
inline std::string s3_test_endpoint() {
  struct Server {
    std::unique_ptr<TempDir> dir;
    std::string endpoint;
    ~Server() {
      if (dir)
        run_command("bash '" + s3_test_server_script() + "' stop '" + (dir->path / "s3").string() + "'");
    }
  };
  static std::mutex mu;
  static Server server;
  static std::string error;
  std::lock_guard<std::mutex> lock(mu);
  if (server.endpoint.empty() && error.empty()) {
    auto dir = std::make_unique<TempDir>();
    std::string out;
    const int rc = run_command("bash '" + s3_test_server_script() + "' start '" +
                                   (dir->path / "s3").string() + "' " + std::to_string(getpid()),
                               &out);
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("http://", 0) == 0) server.endpoint = line;
    if (rc != 0 || server.endpoint.empty())
      error = "scripts/s3-test-server.sh start failed (exit " + std::to_string(rc) + "): " + out;
    else
      server.dir = std::move(dir);
  }
  if (!error.empty()) throw std::runtime_error(error);
  return server.endpoint;
}

// Points this process (and the daemons and workers it starts) at the test server, with test keys.
inline std::string use_s3_test_server() {
  const std::string endpoint = s3_test_endpoint();
  ::setenv("OMICSD_S3_ENDPOINT", endpoint.c_str(), 1);
  ::setenv("AWS_ACCESS_KEY_ID", "omicsd-test-key", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "omicsd-test-secret", 1);
  ::setenv("AWS_REGION", "us-east-1", 1);
  return endpoint;
}

}  // namespace omicsd::test
