#pragma once
#include <filesystem>
#include <set>
#include <string>

namespace omicsd::test {

// ../shared/data next to the checkout (CI has it too).
std::filesystem::path shared_data_dir();
// A fresh empty directory under the build's temp area, removed by the caller's TempDir.
struct TempDir {
  TempDir();
  ~TempDir();
  std::filesystem::path path;
};
// Runs a shell command; returns its exit status and captures stdout+stderr into *output.
int run_command(const std::string& cmd, std::string* output = nullptr);
std::string omicsd_binary();
std::string read_file(const std::filesystem::path& p);
void write_file(const std::filesystem::path& p, const std::string& content);
// "POS REF ALT GT" of the non-reference SNVs in a VCF (bcftools query); a failing query fails the test.
std::set<std::string> vcf_snvs(const std::filesystem::path& vcf);

}  // namespace omicsd::test
