// Beacon v2 routes (beacon_routes.hpp). Registered without a router scope so that refusals answer in
// Beacon's error shape; unless the Beacon is public the handler checks the caller's scopes itself
// (client or admin, as /v1/variants). The query work is in beacon_query.cpp.
#include "service/stores/beacon_routes.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "omicsd_version.hpp"
#include "service/stores/beacon_query.hpp"
#include "service/stores/variant_store.hpp"

namespace omicsd {
namespace {
using json = nlohmann::json;
using http::Request;
using http::Response;

constexpr const char* kBeaconId = "org.omicsd.beacon";
constexpr const char* kApiVersion = "v2.0.0";
constexpr const char* kEntryType = "genomicVariant";
constexpr const char* kDatasetId = "omicsd-variant-store";
constexpr const char* kVariantSchema = "beacon-g_variant-v2.0.0";
constexpr const char* kModelUrl =
    "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/models/json/beacon-v2-default-model/";

// A refusal in Beacon's shape: the status and the message of the error object.
struct BeaconError {
  int status;
  std::string message;
};

void check_scope(const Request& req, const BeaconRoutesOptions& opt) {
  if (opt.public_access) return;
  constexpr http::ScopeMask readers =
      http::ScopeMask(http::Scope::client) | http::ScopeMask(http::Scope::admin);
  if (req.scopes == 0)
    throw BeaconError{401, req.bearer_token.empty() ? "missing bearer token (Authorization: Bearer <token>)"
                                                    : "unknown bearer token"};
  if ((req.scopes & readers) == 0) throw BeaconError{403, "token lacks the 'client' scope"};
}

json returned_schemas() { return json::array({{{"entityType", kEntryType}, {"schema", kVariantSchema}}}); }

json informational_meta() {
  return {{"beaconId", kBeaconId}, {"apiVersion", kApiVersion}, {"returnedSchemas", returned_schemas()}};
}

// The response meta of a query (and of its errors): what was asked, as understood.
json query_meta(const BeaconRequest& r, BeaconGranularity returned) {
  return {{"beaconId", kBeaconId},
          {"apiVersion", kApiVersion},
          {"returnedSchemas", returned_schemas()},
          {"returnedGranularity", to_string(returned)},
          {"receivedRequestSummary",
           {{"apiVersion", r.api_version},
            {"requestedSchemas", json::array()},
            {"pagination", {{"skip", r.skip}, {"limit", r.limit}}},
            {"requestedGranularity", to_string(r.granularity)},
            {"includeResultsetResponses", r.include_resultsets},
            {"filters", json::array()},
            // requestParameters holds one object per entry type (the framework's schema).
            {"requestParameters", {{"g_variant", r.received_parameters}}}}}};
}

Response beacon_error(int status, const std::string& message) {
  const BeaconRequest none;  // the request could not be read: its defaults
  Response r = Response::json({{"meta", query_meta(none, BeaconGranularity::boolean)},
                               {"error", {{"errorCode", status}, {"errorMessage", message}}}},
                              status);
  if (status == 401) r.set_header("WWW-Authenticate", "Bearer");
  return r;
}

// Runs a handler: the Beacon's, the HTTP layer's and the stores' refusals become Beacon errors.
template <typename F>
Response guard(const Request& req, const BeaconRoutesOptions& opt, F&& f) {
  try {
    check_scope(req, opt);
    return http::answer_errors(std::forward<F>(f));
  } catch (const BeaconError& e) {
    return beacon_error(e.status, e.message);
  } catch (const http::HttpError& e) {
    return beacon_error(e.status(), e.what());
  }
}

json organization() {
  return {{"id", "org.omicsd"}, {"name", "omicsd"}, {"welcomeUrl", "https://github.com/omicsd/omicsd"}};
}

json info_response() {
  return {{"meta", informational_meta()},
          {"response",
           {{"id", kBeaconId},
            {"name", "omicsd Beacon"},
            {"apiVersion", kApiVersion},
            {"environment", "prod"},
            {"organization", organization()},
            {"description", "Genomic variants of the omicsd variant store (germline runs' PASS genotypes)"},
            {"version", kVersion}}}};
}

json service_info() {
  return {{"id", kBeaconId},
          {"name", "omicsd Beacon"},
          {"type", {{"group", "org.ga4gh"}, {"artifact", "beacon"}, {"version", kApiVersion}}},
          {"organization", {{"name", "omicsd"}, {"url", "https://github.com/omicsd/omicsd"}}},
          {"description", "Beacon v2 on the omicsd variant store"},
          {"environment", "prod"},
          {"version", kVersion}};
}

json entry_types() {
  return {
      {kEntryType,
       {{"id", kEntryType},
        {"name", "Genomic Variants"},
        {"description", "A variant of the variant store, with allele counts over all its samples"},
        {"ontologyTermForThisType", {{"id", "ENSGLOSSARY:0000092"}, {"label", "Variant"}}},
        {"partOfSpecification", "Beacon v2.0.0"},
        {"defaultSchema",
         {{"id", kVariantSchema},
          {"name", "Default schema for a genomic variation"},
          {"referenceToSchemaDefinition", std::string(kModelUrl) + "genomicVariations/defaultSchema.json"},
          {"schemaVersion", kApiVersion}}},
        {"nonFilteredQueriesAllowed", false}}}};
}

json configuration(const BeaconRoutesOptions& opt) {
  return {{"meta", informational_meta()},
          {"response",
           {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
            {"entryTypes", entry_types()},
            {"maturityAttributes", {{"productionStatus", "PROD"}}},
            {"securityAttributes",
             {{"defaultGranularity", "boolean"},
              {"securityLevels", json::array({opt.public_access ? "PUBLIC" : "CONTROLLED"})}}}}}};
}

json beacon_map(const BeaconRoutesOptions& opt) {
  std::string base = opt.public_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return {{"meta", informational_meta()},
          {"response",
           {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
            {"endpointSets",
             {{kEntryType,
               {{"entryType", kEntryType},
                {"rootUrl", base + kBeaconBasePath + std::string("/g_variants")}}}}}}}};
}

// One record: the variant (the model's LegacyVariation, VRS 1.3 location: 0-based interval) and its
// aggregate counts over all samples, exactly /v1/variants/frequencies' row for the site.
json record(const AlleleCounts& c, const BeaconRoutesOptions& opt) {
  const VariantKey& k = c.site;
  const int64_t start0 = k.pos - 1;
  json location = {
      {"type", "SequenceLocation"},
      {"sequence_id", (opt.assembly.empty() ? std::string("contig") : opt.assembly) + ":" + k.chrom},
      {"interval",
       {{"type", "SequenceInterval"},
        {"start", {{"type", "Number"}, {"value", start0}}},
        {"end", {{"type", "Number"}, {"value", start0 + int64_t(k.ref.size())}}}}}};
  return {{"variantInternalId", k.to_string()},
          {"variation",
           {{"referenceBases", k.ref},
            {"alternateBases", k.alt},
            {"variantType", beacon_variant_type(k)},
            {"location", location}}},
          {"frequencyInPopulations",
           json::array({{{"source", "omicsd variant store"},
                         {"sourceReference", "/v1/variants/frequencies"},
                         {"frequencies",
                          json::array({{{"population", "all samples"}, {"alleleFrequency", c.af}}})}}})},
          {"info",
           {{"alleleCount", c.ac},
            {"alleleNumber", c.an},
            {"carriers", c.n_het + c.n_hom_alt},
            {"heterozygous", c.n_het},
            {"homozygousAlt", c.n_hom_alt},
            {"samples", c.n_samples}}}};
}

Response g_variants(const BeaconRequest& r, VariantStore& store, const BeaconRoutesOptions& opt) {
  const std::vector<AlleleCounts> matched = beacon_match(store, r.query, opt.assembly);
  const bool exists = !matched.empty();
  const bool rare = std::any_of(matched.begin(), matched.end(),
                                [&](const AlleleCounts& c) { return c.n_het + c.n_hom_alt < opt.min_count; });
  const BeaconGranularity returned = rare ? BeaconGranularity::boolean : r.granularity;
  json body = {{"meta", query_meta(r, returned)}, {"responseSummary", {{"exists", exists}}}};
  if (rare && r.granularity != BeaconGranularity::boolean)
    body["info"] = {{"countThreshold", opt.min_count},
                    {"note", "a matching variant has fewer carriers than the threshold: exists only"}};
  if (returned == BeaconGranularity::boolean) return Response::json(body);
  body["responseSummary"]["numTotalResults"] = int64_t(matched.size());
  if (returned == BeaconGranularity::count) return Response::json(body);
  json sets = json::array();
  const bool include = r.include_resultsets == "ALL" || (r.include_resultsets == "HIT" && exists) ||
                       (r.include_resultsets == "MISS" && !exists);
  if (include) {
    json results = json::array();
    const int64_t from = std::min<int64_t>(int64_t(matched.size()), r.skip * r.limit);
    const int64_t to = std::min<int64_t>(int64_t(matched.size()), from + r.limit);
    for (int64_t i = from; i < to; ++i) results.push_back(record(matched[size_t(i)], opt));
    sets.push_back({{"id", kDatasetId},
                    {"setType", "dataset"},
                    {"exists", exists},
                    {"resultsCount", int64_t(matched.size())},
                    {"results", results}});
  }
  body["response"] = {{"resultSets", sets}};
  return Response::json(body);
}

}  // namespace

void add_beacon_routes(http::Router& router, VariantStore& store, BeaconRoutesOptions opt) {
  const std::string base = kBeaconBasePath;
  auto fixed = [&](const std::string& path, std::function<json()> make) {
    router.get(
        path, [opt, make](Request& req) { return guard(req, opt, [&] { return Response::json(make()); }); },
        http::Scope::none);
  };
  fixed(base, info_response);
  fixed(base + "/info", info_response);
  fixed(base + "/service-info", service_info);
  fixed(base + "/configuration", [opt] { return configuration(opt); });
  fixed(base + "/map", [opt] { return beacon_map(opt); });
  fixed(base + "/entry_types", [] {
    return json{{"meta", informational_meta()}, {"response", {{"entryTypes", entry_types()}}}};
  });
  fixed(base + "/filtering_terms", [] {
    return json{{"meta", informational_meta()},
                {"response", {{"filteringTerms", json::array()}, {"resources", json::array()}}}};
  });
  router.get(
      base + "/g_variants",
      [&store, opt](Request& req) {
        return guard(req, opt, [&] { return g_variants(beacon_request_from_query(req.query), store, opt); });
      },
      http::Scope::none);
  router.post(
      base + "/g_variants",
      [&store, opt](Request& req) {
        return guard(req, opt, [&] {
          return g_variants(beacon_request_from_body(http::parse_json_body(req)), store, opt);
        });
      },
      http::Scope::none);
}

}  // namespace omicsd
