#include "service/runner/task_inputs.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "host/common/error.hpp"

namespace fs = std::filesystem;

namespace omicsd {

const std::vector<std::string>& sidecar_extensions(const std::string& key) {
  // Read by the engine: .fai/.gzi by htslib when it decodes CRAM against the reference, .omi by the
  // aligner (host/index/minimizer_index.hpp), .bai/.csi/.crai by sam_index_load for the caller.
  static const std::vector<std::string> reference = {".fai", ".gzi", ".omi"};
  static const std::vector<std::string> alignments = {".bai", ".csi", ".crai"};
  static const std::vector<std::string> none;
  if (key == "reference") return reference;
  if (key == "bam") return alignments;
  return none;
}

namespace {

OpenedFile open_beneath(const fs::path& path, const std::vector<fs::path>& roots, const std::string& shown) {
  OpenedFile f;
  f.source = path;
  f.file = open_within_roots(path, roots, shown);
  if (::fstat(f.file.fd(), &f.st) != 0) throw Error(shown + ": cannot stat: " + std::strerror(errno));
  return f;
}

}  // namespace

TaskInput open_task_input(const std::string& key, const std::string& uri, const ResolvedInput& checked,
                          const std::vector<fs::path>& roots, const ObjectStore& store) {
  TaskInput in;
  in.uri = uri;
  in.digest = checked.digest;
  in.from_store = !checked.digest.empty();
  const std::string shown = "input '" + key + "' (" + uri + ")";
  if (in.from_store) {
    // The daemon's own object, named by its digest: opened beneath the object directory all the same.
    in.main = open_beneath(checked.path, {store.root() / "objects"}, shown);
    return in;
  }
  in.main = open_beneath(checked.path, roots, shown);
  for (const std::string& ext : sidecar_extensions(key)) {
    const fs::path side = checked.path.string() + ext;
    std::error_code ec;
    // Nothing by that name: the engine builds the index it needs in the scratch directory.
    if (!fs::exists(fs::symlink_status(side, ec))) continue;
    const std::string side_shown = "index " + side.string() + " of " + shown;
    // Checked like the input (a link resolving inside the roots is fine), then opened beneath its root.
    ResolvedInput r;
    try {
      r = resolve_input_uri(side.string(), roots);
    } catch (const InputError& e) {
      // A dangling link is no index, as before (there is nothing to read); a file out of the roots is
      // refused.
      if (!fs::exists(side, ec) && std::string(e.what()).find("no such file") != std::string::npos) continue;
      throw InputError(side_shown + ": " + e.what());
    }
    in.sidecars.emplace(ext, open_beneath(r.path, roots, side_shown));
  }
  return in;
}

void stage_link(const fs::path& link, const fs::path& target) {
  std::error_code ec;
  fs::remove(link, ec);
  fs::create_symlink(target, link, ec);
  if (ec) throw Error(link.string() + ": cannot stage an input: " + ec.message());
}

std::string with_client_names(std::string text, const std::map<std::string, std::string>& names) {
  std::vector<std::pair<std::string, std::string>> order(names.begin(), names.end());
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [from, to] : order) {
    if (from.empty()) continue;
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
      text.replace(at, from.size(), to);
  }
  return text;
}

}  // namespace omicsd
