#pragma once
// GA4GH Beacon v2 on the variant store, under /beacon/v2 (docs/api.md, "Beacon v2"):
//   GET /, /info, /service-info, /configuration, /map, /entry_types, /filtering_terms
//   GET|POST /g_variants   (referenceName, start, end, referenceBases, alternateBases, assemblyId,
//                           variantType; boolean, count or record granularity)
// Answers follow the Beacon v2 framework's response schemas; errors (bad parameters 400, no or an
// unknown token 401, a token without the client scope 403) come in its error shape.
//
// Privacy: a query matching any variant carried by fewer than `min_count` samples is answered with
// "exists" only (returnedGranularity boolean), whatever granularity was asked, so the Beacon cannot
// count or list the carriers of a rare variant in a small cohort. Records hold only aggregates of
// all samples (allele count and frequency, carriers, het/hom-alt counts), never a sample or genotype.
#include <cstdint>
#include <string>

#include "service/http/http_router.hpp"

namespace omicsd {

class VariantStore;

inline constexpr const char* kBeaconBasePath = "/beacon/v2";

struct BeaconRoutesOptions {
  // false: the caller needs a client (or admin) token, as for /v1/variants; true (`serve
  // --beacon-public`): no token.
  bool public_access = false;
  int64_t min_count = 5;  // `serve --beacon-min-count`: fewer carriers than this -> exists only
  std::string assembly;   // `serve --beacon-assembly`: the store's assembly ("" = not declared)
  // The daemon's public URL (`serve --htsget-public-url`), for the absolute URLs of /map; empty: paths.
  std::string public_url;
};

void add_beacon_routes(http::Router& router, VariantStore& store, BeaconRoutesOptions options);

}  // namespace omicsd
