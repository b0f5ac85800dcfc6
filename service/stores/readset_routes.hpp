#pragma once
// HTTP routes of the sequence store (docs/api.md, "Read sets"):
//   POST   /v1/readsets                    register files by URI (-> IMPORTING) or start an upload
//                                          of 1 or 2 parts (-> UPLOADING); Idempotency-Key
//   PUT    /v1/readsets/{id}/parts/{n}     upload part n (streamed; again = replace, to resume)
//   POST   /v1/readsets/{id}/complete      all parts in -> IMPORTING
//   GET    /v1/readsets                    list (state, sample_id, subject_id, page_size, page_token)
//   GET    /v1/readsets/{id}               one read set (counts, checksums, compression ratio)
//   GET    /v1/readsets/{id}/content       ?format=fastq|bam|cram[&mate=1|2]
//   DELETE /v1/readsets/{id}               refused (409) while a run that is not finished uses it
// All need the client scope.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "service/http/http_router.hpp"

namespace omicsd {

class ObjectStore;
class ReadSetStore;

struct ReadSetRoutesOptions {
  std::vector<std::filesystem::path> allow_roots;           // where registered files may be read from
  const ObjectStore* objects = nullptr;                     // "sha256:<hex>" sources
  std::uint64_t max_part_bytes = std::uint64_t(256) << 30;  // larger part bodies -> 413
  std::uint64_t min_free_bytes = 0;                         // free space kept on the store's disk (else 507)
  std::function<void(const std::string& id)> schedule_import;  // runs ReadSetStore::run_import later
  std::function<bool(const std::string& id)> in_use;           // a run that has not finished uses it
  // "s3://..." sources: checks the --allow-s3 policy, downloads the object into the object store and
  // returns its "sha256:<hex>" (throws InputError -> 400). Unset: s3:// sources are refused.
  std::function<std::string(const std::string& s3_url)> fetch_s3;
};

void add_readset_routes(http::Router& router, ReadSetStore& store, ReadSetRoutesOptions options);

}  // namespace omicsd
