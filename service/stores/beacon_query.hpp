#pragma once
// GA4GH Beacon v2 genomic-variant queries on the variant store (docs/api.md, "Beacon v2"): the request
// parameters of GET/POST /beacon/v2/g_variants, checked and turned into the store's queries, and the
// variants they match. No HTTP here: beacon_routes.cpp answers with these.
//
// Coordinates: Beacon's start is 0-based inclusive and end 0-based exclusive; the store's positions
// are VCF's (1-based). A sequence query (start, no end) asks for the variant at VCF position start+1;
// a range query (start and end) for every variant whose VCF position lies in [start+1, end], i.e.
// whose 0-based start lies in [start, end). Alleles are compared in the store's minimal form
// (variant_store.hpp), VCF-style with the anchor base; 'N' in a query's bases matches any one base.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "service/stores/variant_store.hpp"

namespace omicsd {

struct BeaconVariantQuery {
  std::string reference_name;
  int64_t start = 0;                             // 0-based, inclusive
  std::optional<int64_t> end;                    // 0-based, exclusive; absent: a sequence query at `start`
  std::string reference_bases, alternate_bases;  // upper-case; "" when not given
  std::string assembly_id;                       // "" when not given
  std::string variant_type;                      // upper-case SNP, MNP, INS, DEL or INDEL; "" when not given
};

enum class BeaconGranularity { boolean, count, record };
const char* to_string(BeaconGranularity g);

// A whole g_variants request: the query, what was asked of the answer, and the parameters as received
// (echoed in the response's receivedRequestSummary).
struct BeaconRequest {
  BeaconVariantQuery query;
  BeaconGranularity granularity = BeaconGranularity::boolean;
  int64_t skip = 0;    // pages skipped (record granularity)
  int64_t limit = 10;  // records per page; 0 asks for the most the Beacon allows (kBeaconMaxLimit)
  std::string include_resultsets = "HIT";  // ALL, HIT, MISS or NONE
  std::string api_version = "v2.0.0";
  nlohmann::json received_parameters = nlohmann::json::object();
};
inline constexpr int64_t kBeaconMaxLimit = 1000;
// A range query stops (InputError) beyond this many variants instead of counting a whole genome.
inline constexpr size_t kBeaconMaxScannedVariants = 100'000;

// GET: the query string's parameters (start/end may be "a,b": bracket queries, which are refused).
// POST: the request body {"meta": {...}, "query": {"requestParameters": {...}, "pagination",
// "requestedGranularity", "includeResultsetResponses", "filters"}}. InputError naming the parameter for
// anything malformed, missing, unknown or not supported (filters, bracket queries, empty alleles).
BeaconRequest beacon_request_from_query(const std::map<std::string, std::string>& params);
BeaconRequest beacon_request_from_body(const nlohmann::json& body);

// "SNP" (1 base each), "MNP" (same length > 1), "DEL" (REF longer) or "INS" (ALT longer), of a
// minimal variant.
std::string beacon_variant_type(const VariantKey& k);

// The variants of the store the query matches, with their allele counts over all samples (exactly
// the rows /v1/variants/frequencies answers for the same site or region, those with AC > 0), in
// position order. A query naming another assembly than `store_assembly` (when that is set) matches
// nothing.
std::vector<AlleleCounts> beacon_match(const VariantStore& store, const BeaconVariantQuery& q,
                                       const std::string& store_assembly);

}  // namespace omicsd
