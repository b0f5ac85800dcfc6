#include "host/io/read_groups.hpp"

#include <htslib/hts.h>
#include <htslib/sam.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "host/common/error.hpp"
#include "host/io/hts_handles.hpp"

namespace omicsd {

std::vector<std::string> read_group_samples(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (line.substr(0, 4) == "@RG\t") {
      size_t start = 4;
      while (start <= line.size()) {
        size_t end = line.find('\t', start);
        if (end == std::string_view::npos) end = line.size();
        const std::string_view field = line.substr(start, end - start);
        if (field.substr(0, 3) == "SM:") {
          std::string sm(field.substr(3));
          if (!sm.empty() && sm.back() == '\r') sm.pop_back();
          if (!sm.empty() && std::find(out.begin(), out.end(), sm) == out.end()) out.push_back(std::move(sm));
          break;
        }
        start = end + 1;
      }
    }
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

std::string read_group_lines_of_file(const std::string& path) {
  const HtsFilePtr fp(hts_open(path.c_str(), "r"));
  if (!fp) throw InputError(path + ": cannot open: " + std::strerror(errno));
  const htsExactFormat format = hts_get_format(fp.get())->format;
  if (format != sam && format != bam && format != cram) return {};
  const SamHeaderPtr hdr(sam_hdr_read(fp.get()));
  if (!hdr) throw InputError(path + ": cannot read the header: the file is truncated or corrupt");
  std::string out;
  const char* header_text = sam_hdr_str(hdr.get());
  std::string_view text = header_text ? header_text : "";
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    if (line.substr(0, 4) == "@RG\t") {
      if (!out.empty()) out += '\n';
      out.append(line);
    }
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

}  // namespace omicsd
