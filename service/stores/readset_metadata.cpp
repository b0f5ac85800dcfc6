// Read set metadata (readset_store.hpp): what a client may send (ReadSetMetadata::from_json, with
// its validation) and what it gets back (ReadSet::to_json). The store's SQL: readset_store.cpp.
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "host/common/error.hpp"
#include "service/stores/readset_store.hpp"

namespace omicsd {
namespace {

using nlohmann::json;

const std::regex kSampleId("[A-Za-z0-9._-]{1,128}");
const std::regex kTagKey("[A-Za-z][A-Za-z0-9]");

std::string opt_string(const json& b, const char* key) {
  if (!b.contains(key) || b[key].is_null()) return "";
  if (!b[key].is_string()) throw InputError(std::string("'") + key + "' must be a string");
  const std::string v = b[key].get<std::string>();
  if (v.size() > 4096) throw InputError(std::string("'") + key + "' is longer than 4096 characters");
  return v;
}

// An object of string values (tags, read group); `what` names the field in errors.
json string_map(const json& b, const char* key) {
  if (!b.contains(key) || b[key].is_null()) return json::object();
  if (!b[key].is_object()) throw InputError(std::string("'") + key + "' must be an object of strings");
  for (const auto& [k, v] : b[key].items()) {
    if (!v.is_string())
      throw InputError(std::string("'") + key + "." + k + "' must be a string, not " + v.type_name());
    if (k.empty() || k.size() > 128) throw InputError(std::string("'") + key + "' has an empty or long key");
  }
  return b[key];
}

bool has_tab_or_newline(const std::string& s) { return s.find_first_of("\t\n\r") != std::string::npos; }

}  // namespace

const char* to_string(ReadSetState s) {
  switch (s) {
    case ReadSetState::Uploading:
      return "UPLOADING";
    case ReadSetState::Importing:
      return "IMPORTING";
    case ReadSetState::Active:
      return "ACTIVE";
    case ReadSetState::Failed:
      return "FAILED";
  }
  return "?";
}

bool is_readset_id(const std::string& s) {
  static const std::regex re("rs-[0-9a-f]{16}");
  return std::regex_match(s, re);
}

ReadSetMetadata ReadSetMetadata::from_json(const json& b) {
  ReadSetMetadata m;
  m.sample_id = opt_string(b, "sample_id");
  if (m.sample_id.empty()) throw InputError("missing 'sample_id'");
  if (!std::regex_match(m.sample_id, kSampleId))
    throw InputError("'sample_id' must be 1-128 characters of A-Z a-z 0-9 . _ -");
  m.subject_id = opt_string(b, "subject_id");
  m.name = opt_string(b, "name");
  if (m.name.empty()) m.name = m.sample_id;
  m.description = opt_string(b, "description");
  m.tags = string_map(b, "tags");
  m.read_group = string_map(b, "read_group");
  for (const auto& [k, v] : m.read_group.items()) {
    if (!std::regex_match(k, kTagKey))
      throw InputError("'read_group' key '" + k + "' is not a two-character SAM @RG tag");
    if (has_tab_or_newline(v.get<std::string>()) || v.get<std::string>().empty())
      throw InputError("'read_group." + k + "' must be non-empty without tabs or newlines");
  }
  if (m.read_group.contains("SM") && m.read_group["SM"] != m.sample_id)
    throw InputError("'read_group.SM' must equal 'sample_id' (or be left out)");
  return m;
}

json ReadSet::to_json() const {
  json files = json::array();
  for (const auto& s : sources)
    files.push_back({{"path", s.uploaded ? json(nullptr) : json(s.path)},
                     {"uploaded", s.uploaded},
                     {"size", s.size},
                     {"sha256", s.sha256.empty() ? json(nullptr) : json(s.sha256)}});
  return {{"id", id},
          {"name", meta.name},
          {"sample_id", meta.sample_id},
          {"subject_id", meta.subject_id},
          {"description", meta.description},
          {"tags", meta.tags},
          {"read_group", meta.read_group},
          {"state", to_string(state)},
          {"failure_reason", failure_reason},
          {"sources", files},
          {"parts_expected", parts_expected},
          {"source_format", source_format.empty() ? json(nullptr) : json(source_format)},
          {"paired", paired},
          {"read_count", read_count},
          {"base_count", base_count},
          {"source_bytes", source_bytes},
          {"cram_bytes", cram_bytes},
          {"compression_ratio", cram_bytes ? json(double(source_bytes) / double(cram_bytes)) : json(nullptr)},
          {"cram_sha256", cram_sha256.empty() ? json(nullptr) : json(cram_sha256)},
          {"reads_sha256", reads_sha256.empty() ? json(nullptr) : json(reads_sha256)},
          {"created_at", created_at},
          {"updated_at", updated_at},
          {"imported_at", imported_at ? json(*imported_at) : json(nullptr)},
          {"url", "/v1/readsets/" + id}};
}

}  // namespace omicsd
