#pragma once
// GA4GH htsget 1.3 on the run outputs, under /ga4gh/htsget/v1 (docs/api.md, "htsget"):
//   GET|POST /reads/{id}, GET|POST /variants/{id}, GET /reads/service-info, GET /variants/service-info
// {id}: a run id ("run-..."), optionally with the output's extension: "<run id>.bam" for reads (the
// run's aligned BAM), "<run id>.vcf.gz" (or ".vcf") for variants (the run's VCF). Tickets point at
// byte ranges of GET /v1/runs/{id}/outputs/{bam|vcf} (Range header in the ticket), the BGZF blocks
// the index names for the regions; the header's blocks and the BGZF EOF block come first and last.
// On /reads, "rs-..." names an (unaligned) read set of the sequence store: all its reads, as byte
// ranges of GET /v1/readsets/{id}/content?format=bam.
#include <string>

#include "service/http/http_router.hpp"

namespace omicsd {

class JobStore;
class ObjectStore;
class ReadSetStore;

inline constexpr const char* kHtsgetBasePath = "/ga4gh/htsget/v1";

struct HtsgetRoutesOptions {
  // The URL clients reach this daemon at ("https://omicsd.example.org", `serve --htsget-public-url`);
  // empty: "http://" (or "https://" when `https`) + the request's Host header.
  std::string public_url;
  bool https = false;
  std::size_t max_regions = 1024;  // a POST with more regions -> PayloadTooLarge (413)
};

// `readsets` (may be null): "rs-..." ids on /reads answer the read set's unaligned BAM export.
void add_htsget_routes(http::Router& router, JobStore& jobs, ObjectStore& objects, ReadSetStore* readsets,
                       HtsgetRoutesOptions options);

}  // namespace omicsd
