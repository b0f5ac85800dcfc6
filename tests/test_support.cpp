#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace omicsd::test {

std::filesystem::path shared_data_dir() {
  if (const char* env = std::getenv("OMICSD_SHARED_DATA")) return env;
  return std::filesystem::path(OMICSD_SOURCE_DIR) / ".." / "shared" / "data";
}

TempDir::TempDir() {
  std::random_device rd;
  auto base = std::filesystem::temp_directory_path();
  for (;;) {
    path = base / ("omicsd-test-" + std::to_string(rd()));
    if (std::filesystem::create_directory(path)) break;
  }
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

int run_command(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed: " + cmd);
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = pclose(pipe);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string omicsd_binary() { return OMICSD_BINARY; }

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::filesystem::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary);
  out << content;
}

std::set<std::string> vcf_snvs(const std::filesystem::path& vcf) {
  std::string out;
  EXPECT_EQ(run_command(
                "bcftools query -i 'GT=\"alt\" && TYPE=\"snp\"' -f '%POS %REF %ALT [%GT]\\n' " + vcf.string(),
                &out),
            0)
      << out;
  std::set<std::string> s;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) s.insert(line);
  return s;
}

}  // namespace omicsd::test
