#pragma once
// HTTP routes of the variant store (docs/api.md "Variants"); all scope client except the delete (admin):
//   GET    /v1/variants?chrom=&pos=&ref=&alt=   (or ?variant=chr:pos:ref:alt)  carriers + allele counts
//   GET    /v1/variants?region=chr:start-end[&sample=S]                       genotypes in a region
//   GET    /v1/variants/frequencies?chrom=&pos=&ref=&alt= | ?region=  [&tags=k:v,k2:v2]
//   POST   /v1/cohorts/query                     {"variants": [...], "match", "zygosity", "min_gq", "tags"}
//   GET    /v1/variant-samples[?tags=k:v]        ingested samples
//   GET    /v1/variant-samples/{id}
//   DELETE /v1/variant-samples/{id}               (admin)
// Paged with page_size (1..1000, default 100) and page_token; bad parameters are 400 with a message
// naming the parameter, an unknown sample 404.
#include <nlohmann/json.hpp>

#include "service/http/http_router.hpp"
#include "service/stores/variant_store.hpp"

namespace omicsd {

void add_variant_routes(http::Router& router, VariantStore& store);

// JSON of the store's answers (shared with the CLI's tests and the docs' examples).
nlohmann::json to_json(const VariantKey& k);
nlohmann::json to_json(const AlleleCounts& c);
nlohmann::json to_json(const VariantSample& s);
// The cohort rule of a POST /v1/cohorts/query body; InputError naming the field when malformed.
CohortRule cohort_rule_from_json(const nlohmann::json& body);

}  // namespace omicsd
