// Beacon v2 g_variants queries (beacon_query.hpp): request parameters checked one by one (every byte
// of them comes from the caller), then answered by the variant store's own frequency queries, so a
// Beacon count is the same number /v1/variants/frequencies gives.
#include "service/stores/beacon_query.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <string>
#include <string_view>

#include "host/common/error.hpp"

namespace omicsd {
namespace {
using json = nlohmann::json;

const std::set<std::string> kParameters = {"referenceName",  "start",      "end",        "referenceBases",
                                           "alternateBases", "assemblyId", "variantType"};
const std::set<std::string> kVariantTypes = {"SNP", "MNP", "INS", "DEL", "INDEL"};

std::string upper_ascii(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string supported_list(const std::set<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::optional<int64_t> parse_count(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || s.size() > 15 || ec != std::errc() || end != s.data() + s.size() || v < 0)
    return std::nullopt;
  return v;
}

// start / end: one non-negative integer, or a list of one or two (two: a bracket query, refused).
std::optional<int64_t> coordinate(const json& rp, const char* name) {
  if (!rp.contains(name)) return std::nullopt;
  const json& v = rp[name];
  const json one = v.is_array() ? v : json::array({v});
  if (one.empty() || one.size() > 2)
    throw InputError(std::string(name) + ": expected one position (or two for a bracket query)");
  for (const auto& x : one)
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > (int64_t(1) << 40))
      throw InputError(std::string(name) + ": expected a non-negative integer (0-based)");
  if (one.size() == 2)
    throw InputError(std::string(name) + ": bracket queries (two values) are not supported");
  return one[0].get<int64_t>();
}

// Bases as the store keeps them: VCF-style, with the anchor base, so never empty. 'N' is a wildcard.
std::string bases(const json& rp, const char* name) {
  if (!rp.contains(name)) return "";
  if (!rp[name].is_string()) throw InputError(std::string(name) + ": expected a string of bases");
  const std::string b = upper_ascii(rp[name].get<std::string>());
  if (b.empty())
    throw InputError(std::string(name) +
                     ": empty alleles are not supported: give VCF-style bases with the anchor base");
  if (b.size() > 10'000 || !std::all_of(b.begin(), b.end(), [](char c) {
        return std::string_view("ACGTN").find(c) != std::string_view::npos;
      }))
    throw InputError(std::string(name) + ": expected bases A, C, G, T or N");
  return b;
}

std::string text(const json& rp, const char* name) {
  if (!rp.contains(name)) return "";
  if (!rp[name].is_string() || rp[name].get<std::string>().empty() ||
      rp[name].get<std::string>().size() > 1000)
    throw InputError(std::string(name) + ": expected a non-empty string");
  return rp[name].get<std::string>();
}

BeaconVariantQuery parameters_from_json(const json& rp) {
  if (!rp.is_object()) throw InputError("requestParameters: expected an object");
  for (const auto& [k, v] : rp.items())
    if (!kParameters.count(k))
      throw InputError("requestParameters: '" + k +
                       "' is not supported (supported: " + supported_list(kParameters) + ")");
  BeaconVariantQuery q;
  q.reference_name = text(rp, "referenceName");
  if (q.reference_name.empty()) throw InputError("referenceName: missing");
  const auto start = coordinate(rp, "start");
  if (!start) throw InputError("start: missing (0-based position)");
  q.start = *start;
  q.end = coordinate(rp, "end");
  if (q.end && *q.end <= q.start) throw InputError("end: must be greater than start (0-based, exclusive)");
  q.reference_bases = bases(rp, "referenceBases");
  q.alternate_bases = bases(rp, "alternateBases");
  q.assembly_id = text(rp, "assemblyId");
  q.variant_type = upper_ascii(text(rp, "variantType"));
  if (!q.variant_type.empty() && !kVariantTypes.count(q.variant_type))
    throw InputError("variantType '" + q.variant_type + "': expected one of " +
                     supported_list(kVariantTypes));
  if (!q.end && q.alternate_bases.empty())
    throw InputError("alternateBases: missing (a query without end asks for one variant at start)");
  return q;
}

BeaconGranularity granularity_of(const std::string& g) {
  if (g == "boolean") return BeaconGranularity::boolean;
  if (g == "count") return BeaconGranularity::count;
  if (g == "record") return BeaconGranularity::record;
  throw InputError("requestedGranularity '" + g + "': expected boolean, count or record");
}

std::string include_of(const std::string& v) {
  if (v == "ALL" || v == "HIT" || v == "MISS" || v == "NONE") return v;
  throw InputError("includeResultsetResponses '" + v + "': expected ALL, HIT, MISS or NONE");
}

int64_t limit_of(int64_t limit) {
  if (limit == 0 || limit > kBeaconMaxLimit) return kBeaconMaxLimit;
  return limit;
}

bool bases_match(const std::string& pattern, const std::string& b) {
  if (pattern.empty()) return true;
  if (pattern.size() != b.size()) return false;
  for (size_t i = 0; i < b.size(); ++i)
    if (pattern[i] != 'N' && pattern[i] != b[i]) return false;
  return true;
}

bool type_matches(const std::string& wanted, const VariantKey& k) {
  if (wanted.empty()) return true;
  const std::string t = beacon_variant_type(k);
  return wanted == t || (wanted == "INDEL" && (t == "INS" || t == "DEL"));
}

}  // namespace

const char* to_string(BeaconGranularity g) {
  switch (g) {
    case BeaconGranularity::count:
      return "count";
    case BeaconGranularity::record:
      return "record";
    default:
      return "boolean";
  }
}

BeaconRequest beacon_request_from_query(const std::map<std::string, std::string>& params) {
  static const std::set<std::string> control = {"requestedGranularity", "skip", "limit",
                                                "includeResultsetResponses", "filters"};
  BeaconRequest r;
  json rp = json::object();
  for (const auto& [k, v] : params) {
    if (control.count(k)) continue;
    if (!kParameters.count(k))
      throw InputError("'" + k + "' is not a supported parameter (supported: " + supported_list(kParameters) +
                       ", requestedGranularity, skip, limit, includeResultsetResponses)");
    if (k == "start" || k == "end") {
      json list = json::array();
      size_t from = 0;
      while (from <= v.size()) {
        const size_t comma = std::min(v.find(',', from), v.size());
        const auto n = parse_count(std::string_view(v).substr(from, comma - from));
        if (!n) throw InputError(k + " '" + v + "': expected a non-negative integer (0-based)");
        list.push_back(*n);
        from = comma + 1;
      }
      rp[k] = list;
    } else {
      rp[k] = v;
    }
  }
  r.query = parameters_from_json(rp);
  r.received_parameters = rp;
  if (auto it = params.find("requestedGranularity"); it != params.end())
    r.granularity = granularity_of(it->second);
  if (auto it = params.find("includeResultsetResponses"); it != params.end())
    r.include_resultsets = include_of(it->second);
  for (const char* name : {"skip", "limit"}) {
    if (auto it = params.find(name); it != params.end()) {
      const auto n = parse_count(it->second);
      if (!n) throw InputError(std::string(name) + " '" + it->second + "': expected a non-negative integer");
      (std::string_view(name) == "skip" ? r.skip : r.limit) = *n;
    }
  }
  if (auto it = params.find("filters"); it != params.end() && !it->second.empty())
    throw InputError("filters: this Beacon has no filtering terms (see /filtering_terms)");
  r.limit = limit_of(r.limit);
  return r;
}

BeaconRequest beacon_request_from_body(const json& body) {
  if (!body.is_object()) throw InputError("request body: expected a JSON object");
  for (const auto& [k, v] : body.items())
    if (k != "meta" && k != "query" && k != "$schema")
      throw InputError("request body: unknown field '" + k + "' (expected meta and query)");
  BeaconRequest r;
  if (body.contains("meta")) {
    const json& meta = body["meta"];
    if (!meta.is_object()) throw InputError("meta: expected an object");
    if (meta.contains("apiVersion")) {
      if (!meta["apiVersion"].is_string() || meta["apiVersion"].get<std::string>().size() > 100)
        throw InputError("meta.apiVersion: expected a string");
      r.api_version = meta["apiVersion"].get<std::string>();
    }
  }
  if (!body.contains("query") || !body["query"].is_object())
    throw InputError("query: missing (an object with requestParameters)");
  const json& q = body["query"];
  static const std::set<std::string> known = {"requestParameters", "filters",  "includeResultsetResponses",
                                              "pagination",        "testMode", "requestedGranularity"};
  for (const auto& [k, v] : q.items())
    if (!known.count(k)) throw InputError("query: unknown field '" + k + "'");
  if (!q.contains("requestParameters")) throw InputError("query.requestParameters: missing");
  r.query = parameters_from_json(q["requestParameters"]);
  r.received_parameters = q["requestParameters"];
  if (q.contains("requestedGranularity")) {
    if (!q["requestedGranularity"].is_string()) throw InputError("requestedGranularity: expected a string");
    r.granularity = granularity_of(q["requestedGranularity"].get<std::string>());
  }
  if (q.contains("includeResultsetResponses")) {
    if (!q["includeResultsetResponses"].is_string())
      throw InputError("includeResultsetResponses: expected a string");
    r.include_resultsets = include_of(q["includeResultsetResponses"].get<std::string>());
  }
  if (q.contains("filters") && !(q["filters"].is_array() && q["filters"].empty()))
    throw InputError("filters: this Beacon has no filtering terms (see /filtering_terms)");
  if (q.contains("testMode") && !q["testMode"].is_boolean())
    throw InputError("testMode: expected true or false");
  if (q.contains("pagination")) {
    const json& p = q["pagination"];
    if (!p.is_object()) throw InputError("pagination: expected an object");
    for (const char* name : {"skip", "limit"}) {
      if (!p.contains(name)) continue;
      if (!p[name].is_number_integer() || p[name].get<int64_t>() < 0 ||
          p[name].get<int64_t>() > (int64_t(1) << 40))
        throw InputError(std::string("pagination.") + name + ": expected a non-negative integer");
      (std::string_view(name) == "skip" ? r.skip : r.limit) = p[name].get<int64_t>();
    }
  }
  r.limit = limit_of(r.limit);
  return r;
}

std::string beacon_variant_type(const VariantKey& k) {
  if (k.ref.size() == k.alt.size()) return k.ref.size() == 1 ? "SNP" : "MNP";
  return k.ref.size() > k.alt.size() ? "DEL" : "INS";
}

std::vector<AlleleCounts> beacon_match(const VariantStore& store, const BeaconVariantQuery& q,
                                       const std::string& store_assembly) {
  std::vector<AlleleCounts> out;
  if (!store_assembly.empty() && !q.assembly_id.empty() &&
      upper_ascii(store_assembly) != upper_ascii(q.assembly_id))
    return out;
  const bool exact = !q.end && !q.reference_bases.empty() &&
                     q.reference_bases.find('N') == std::string::npos &&
                     q.alternate_bases.find('N') == std::string::npos;
  if (exact) {
    // One site: the store's own look-up of it (normalised as /v1/variants/frequencies does).
    const FrequencyPage p = store.frequencies(
        VariantKey{q.reference_name, q.start + 1, q.reference_bases, q.alternate_bases}, {});
    for (const auto& c : p.sites)
      if (c.ac > 0 && type_matches(q.variant_type, c.site)) out.push_back(c);
    return out;
  }
  // A position or a range: the region's frequencies, page by page, filtered by alleles and type.
  const VariantRegion region{q.reference_name, q.start + 1, q.end ? *q.end : q.start + 1};
  VariantPageRequest page{kMaxVariantPageSize, ""};
  size_t scanned = 0;
  do {
    const FrequencyPage p = store.frequencies(region, {}, page);
    scanned += p.sites.size();
    if (scanned > kBeaconMaxScannedVariants)
      throw InputError("the range holds more than " + std::to_string(kBeaconMaxScannedVariants) +
                       " variants: ask for a smaller range");
    for (const auto& c : p.sites)
      if (c.ac > 0 && bases_match(q.reference_bases, c.site.ref) &&
          bases_match(q.alternate_bases, c.site.alt) && type_matches(q.variant_type, c.site))
        out.push_back(c);
    page.page_token = p.next_page_token;
  } while (!page.page_token.empty());
  return out;
}

}  // namespace omicsd
