// refget v2 routes (refget_routes.hpp). Sequences are read from the stored BGZF FASTA through its
// index, upper-cased, so the bytes served are exactly the ones the MD5 and SQ digests cover.
#include "service/stores/refget_routes.hpp"

#include <charconv>
#include <optional>
#include <string>

#include "omicsd_version.hpp"
#include "service/stores/reference_store.hpp"
#include "service/stores/refget_sequence.hpp"

namespace omicsd {
namespace {
using json = nlohmann::json;
using http::HttpError;
using http::Request;
using http::Response;

constexpr const char* kSequenceType = "text/vnd.ga4gh.refget.v2.0.0+plain; charset=us-ascii";
constexpr const char* kJsonType = "application/vnd.ga4gh.refget.v2.0.0+json";

std::optional<uint64_t> parse_u64(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

StoredSequence must_sequence(ReferenceStore& store, const std::string& id) {
  auto seq = store.find_sequence(id);
  if (!seq) throw HttpError(404, "no sequence with refget id '" + id + "'");
  return *seq;
}

// The bases asked for: ?start=&end= (0-based, end exclusive) or Range: bytes=first-last (inclusive),
// not both. Refget's rules: a bad number is a 400, an interval outside the sequence (or start > end:
// omicsd's sequences are not circular) a 416.
Response sequence(Request& req, ReferenceStore& store, const RefgetRoutesOptions& opt) {
  const StoredSequence s = must_sequence(store, req.param("id"));
  const uint64_t len = s.sequence.length;
  const auto qs = req.query_param("start"), qe = req.query_param("end");
  const std::string range = req.header("Range");
  uint64_t start = 0, end = len;
  bool partial = false;
  if ((qs || qe) && !range.empty()) throw HttpError(400, "give start/end or a Range header, not both");
  if (qs) {
    auto v = parse_u64(*qs);
    if (!v) throw HttpError(400, "start must be a non-negative integer");
    start = *v;
  }
  if (qe) {
    auto v = parse_u64(*qe);
    if (!v) throw HttpError(400, "end must be a non-negative integer");
    end = *v;
  }
  if (!range.empty()) {
    const std::string_view r = range;
    const std::size_t dash = r.find('-');
    if (r.rfind("bytes=", 0) != 0 || dash == std::string_view::npos || r.find(',') != std::string_view::npos)
      throw HttpError(400, "Range must be 'bytes=first-last'");
    auto first = parse_u64(r.substr(6, dash - 6));
    auto last = parse_u64(r.substr(dash + 1));
    if (!first || !last) throw HttpError(400, "Range must be 'bytes=first-last'");
    if (*first > *last || *first >= len)
      throw HttpError(416, "Range outside the sequence of length " + std::to_string(len));
    start = *first;
    end = std::min(*last + 1, len);
    partial = true;
  }
  if (start > end) throw HttpError(416, "start > end: circular sequences are not served");
  if (end > len || (start >= len && len > 0))
    throw HttpError(416, "interval outside the sequence of length " + std::to_string(len));
  if (end - start > opt.max_bases)
    throw HttpError(416, "more than " + std::to_string(opt.max_bases) + " bases asked for; ask by range");
  Response resp =
      Response::text(fetch_upper(s.fasta, s.sequence.name, start, end), partial ? 206 : 200, kSequenceType);
  if (partial)
    resp.set_header("Content-Range", "bytes " + std::to_string(start) + "-" + std::to_string(end - 1) + "/" +
                                         std::to_string(len));
  resp.set_header("Accept-Ranges", "bytes");
  return resp;
}

Response metadata(Request& req, ReferenceStore& store) {
  const StoredSequence s = must_sequence(store, req.param("id"));
  json aliases = json::array({{{"naming_authority", "omicsd"}, {"value", s.ref_id + ":" + s.sequence.name}}});
  return Response::json({{"metadata",
                          {{"md5", s.sequence.md5},
                           {"ga4gh", s.sequence.sha512t24u},
                           {"length", s.sequence.length},
                           {"aliases", aliases}}}});
}

json service_info(const RefgetRoutesOptions& opt) {
  return {{"id", "org.omicsd.refget"},
          {"name", "omicsd refget"},
          {"type", {{"group", "org.ga4gh"}, {"artifact", "refget"}, {"version", "2.0.0"}}},
          {"organization", {{"name", "omicsd"}, {"url", "https://github.com/omicsd/omicsd"}}},
          {"version", kVersion},
          {"refget",
           {{"circular_supported", false},
            {"subsequence_limit", opt.max_bases},
            {"algorithms", {"md5", "ga4gh"}},
            {"identifier_types", {"md5", "ga4gh"}}}}};
}

// Errors in the API's JSON shape; the metadata and service-info answers carry refget's media type.
template <typename F>
Response guard(F&& f) {
  return http::answer_errors(std::forward<F>(f));
}

}  // namespace

void add_refget_routes(http::Router& router, ReferenceStore& store, RefgetRoutesOptions options) {
  const std::string base = kRefgetBasePath;
  router.get(
      base + "/sequence/service-info",
      [options](Request&) {
        Response r = Response::json(service_info(options));
        r.content_type = kJsonType;
        return r;
      },
      options.scope);
  router.get(
      base + "/sequence/{id}",
      [&store, options](Request& req) { return guard([&] { return sequence(req, store, options); }); },
      options.scope);
  router.get(
      base + "/sequence/{id}/metadata",
      [&store](Request& req) {
        return guard([&] {
          Response r = metadata(req, store);
          r.content_type = kJsonType;
          return r;
        });
      },
      options.scope);
}

}  // namespace omicsd
