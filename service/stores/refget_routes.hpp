#pragma once
// GA4GH refget v2 on the reference store, under /ga4gh/refget/v2 (docs/api.md, "refget"):
//   GET /sequence/service-info, GET /sequence/{id} (start/end or Range), GET /sequence/{id}/metadata
// {id}: a sequence's MD5 (32 hex digits), "SQ.<sha512t24u>" or "ga4gh:SQ.<sha512t24u>".
#include "service/http/http_router.hpp"

namespace omicsd {

class ReferenceStore;

inline constexpr const char* kRefgetBasePath = "/ga4gh/refget/v2";

struct RefgetRoutesOptions {
  // Scope::client by default (the same tokens as the rest of the API); Scope::none with
  // `omicsd serve --refget-public`, for clients that cannot send a token (refget serves only
  // reference sequences, never samples).
  http::Scope scope = http::Scope::client;
  uint64_t max_bases = uint64_t(256) << 20;  // the longest answer; longer requests -> 416 (ask by range)
};

void add_refget_routes(http::Router& router, ReferenceStore& store, RefgetRoutesOptions options);

}  // namespace omicsd
