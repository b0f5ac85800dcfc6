#pragma once
// HTTP routes of the reference store (docs/api.md, "References"), all with the client scope:
//   POST   /v1/references               upload a FASTA (streamed body) or register a URI -> 202
//   GET    /v1/references               paged list (?state=&name=&md5=&page_size=&page_token=)
//   GET    /v1/references/{id}          one reference with its sequences (name, length, md5)
//   GET    /v1/references/{id}/content  the stored bgzipped FASTA (Range supported)
//   DELETE /v1/references/{id}          204; 409 while IMPORTING or used by a run
#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "service/http/http_router.hpp"

namespace omicsd {

class ReferenceStore;
struct ReferenceRecord;

struct ReferenceRoutesOptions {
  std::uint64_t max_upload_bytes = std::uint64_t(64) << 30;  // FASTA bodies larger than this -> 413
  std::chrono::milliseconds upload_idle_timeout{120'000};    // per chunk of an upload body
  std::uint64_t min_free_bytes = 0;                          // free space kept on the store's disk (else 507)
  // Runs store.run_import(id) later, off the request thread (the daemon's pool). Required: a
  // reference accepted with 202 must get imported. Called once per newly created reference.
  std::function<void(const std::string& id)> schedule_import;
  // True while a run that is not finished uses the reference (DELETE answers 409 then). Unset: never.
  std::function<bool(const std::string& id)> in_use;
};

// The reference as the API shows it; `with_sequences` adds "sequences": [{"name","length","md5"}].
nlohmann::json reference_json(const ReferenceRecord& ref, bool with_sequences);

void add_reference_routes(http::Router& router, ReferenceStore& store, ReferenceRoutesOptions options);

}  // namespace omicsd
