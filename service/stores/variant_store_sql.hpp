#pragma once
// Internal to the variant store's sources (variant_store.cpp, variant_ingest.cpp, variant_keys.cpp):
// the SQL value helpers, batch sizes and row readers they share. Not part of the store's interface.
#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "service/db/sql_db.hpp"
#include "service/stores/variant_store.hpp"

namespace omicsd::variant_sql {

using sql::Row;
using sql::Value;
using Params = std::vector<Value>;

inline Value I(int64_t v) { return Value(v); }
inline Value S(std::string v) { return Value(std::move(v)); }
inline Value opt_int(const std::optional<int>& v) { return v ? Value(int64_t(*v)) : Value(nullptr); }

// Statements carry at most this many rows of VALUES / IN items: well under SQLite's and libpq's
// parameter limits, and big enough that a 100k-genotype ingest is ~1,000 statements.
inline constexpr size_t kBatchRows = 100;
inline constexpr size_t kInBatch = 500;

inline int clamp_page(int n) { return n <= 0 ? kDefaultVariantPageSize : std::min(n, kMaxVariantPageSize); }

inline std::string placeholders(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += i ? ",?" : "?";
  return s;
}

// " AND col IN (samples with the tag)" per tag; appends the parameters. Uncorrelated, so SQLite builds
// the key set once per statement (a correlated EXISTS probed the tag index once per genotype row).
inline std::string tag_filter(const std::map<std::string, std::string>& tags, const std::string& col,
                              Params& p) {
  std::string sqltxt;
  for (const auto& [k, v] : tags) {
    sqltxt += " AND " + col +
              " IN (SELECT t.sample_key FROM variant_sample_tags t WHERE t.tag = ? AND t.value = ?)";
    p.push_back(S(k));
    p.push_back(S(v));
  }
  return sqltxt;
}

inline std::string tags_fingerprint(const std::map<std::string, std::string>& tags) {
  std::string s;
  for (const auto& [k, v] : tags) s += k + '\x1e' + v + '\x1e';
  return s;
}

inline bool is_bases(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

inline std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

inline void finish_counts(AlleleCounts& c) {
  c.an = 2 * c.n_samples;
  c.af = c.an > 0 ? double(c.ac) / double(c.an) : 0.0;
}

// Columns of the genotype part of a row, starting at column c: gt, zygosity, alt_copies, gq, dp, filters.
inline void read_call(const Row& r, size_t c, VariantCall& call) {
  call.gt = r.s(c);
  call.zygosity = r.i(c + 1) == 2 ? Zygosity::hom_alt : Zygosity::het;
  call.alt_copies = int(r.i(c + 2));
  if (!r.is_null(c + 3)) call.gq = int(r.i(c + 3));
  if (!r.is_null(c + 4)) call.dp = int(r.i(c + 4));
  call.filters = r.s(c + 5);
}
inline const char* kCallCols = "g.gt, g.zygosity, g.alt_copies, g.gq, g.dp, g.filters";

inline std::map<std::string, std::string> parse_tags_json(const std::string& text) {
  std::map<std::string, std::string> tags;
  try {
    const auto j = nlohmann::json::parse(text.empty() ? "{}" : text);
    for (const auto& [k, v] : j.items()) tags[k] = v.is_string() ? v.get<std::string>() : v.dump();
  } catch (const nlohmann::json::exception&) {
  }
  return tags;
}

inline const char* kSampleCols =
    "sm.sample_key, sm.sample_id, sm.subject_id, sm.run_id, sm.readset_id, sm.reference_id, sm.tags, "
    "sm.source,"
    " sm.vcf_sample, sm.ingested_at, sm.genotypes, sm.all_sites";
inline VariantSample read_sample(const Row& r) {
  VariantSample s;
  s.sample_id = r.s(1);
  s.subject_id = r.s(2);
  s.run_id = r.s(3);
  s.readset_id = r.s(4);
  s.reference_id = r.s(5);
  s.tags = parse_tags_json(r.s(6));
  s.source = r.s(7);
  s.vcf_sample = r.s(8);
  s.ingested_at = r.i(9);
  s.genotypes = r.i(10);
  s.all_sites = r.i(11) != 0;
  return s;
}

}  // namespace omicsd::variant_sql
