// htsget 1.3 routes (htsget_routes.hpp). The routes are registered without a router scope so that
// auth failures answer in htsget's error shape; the handler checks the caller's scopes itself (the
// client scope, as the rest of the API).
#include "service/stores/htsget_routes.hpp"

#include <charconv>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "omicsd_version.hpp"
#include "service/jobs/job_store.hpp"
#include "service/objects/object_store.hpp"
#include "service/stores/htsget_slices.hpp"
#include "service/stores/readset_store.hpp"

namespace omicsd {
namespace {
using json = nlohmann::json;
using http::Request;
using http::Response;

constexpr const char* kTicketType = "application/vnd.ga4gh.htsget.v1.3.0+json; charset=utf-8";

enum class Endpoint { reads, variants };

struct HtsgetRequest {
  std::string format;
  bool header_only = false;
  std::vector<HtsgetRegion> regions;
};

Response htsget_error(const std::string& name, const std::string& message, int status) {
  Response r = Response::json({{"htsget", {{"error", name}, {"message", message}}}}, status);
  r.content_type = kTicketType;
  if (status == 401) r.set_header("WWW-Authenticate", "Bearer");
  return r;
}

void check_scope(const Request& req) {
  constexpr http::ScopeMask readers =
      http::ScopeMask(http::Scope::client) | http::ScopeMask(http::Scope::admin);
  if (req.scopes == 0)
    throw HtsgetError("InvalidAuthentication", req.bearer_token.empty()
                                                   ? "missing bearer token (Authorization: Bearer <token>)"
                                                   : "unknown bearer token");
  if ((req.scopes & readers) == 0) throw HtsgetError("PermissionDenied", "token lacks the 'client' scope");
}

std::string base64(std::string_view in) {
  static const char* const kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v =
        uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<int64_t> parse_coordinate(std::string_view s, const char* what) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0)
    throw HtsgetError("InvalidInput", std::string(what) + " must be a non-negative integer");
  return v;
}

// fields / tags / notags: checked, then answered with whole records (htsget lets servers return
// more fields and tags than asked for; clients drop what they did not ask for).
const std::set<std::string> kReadFields = {"QNAME", "FLAG",  "RNAME", "POS", "MAPQ", "CIGAR",
                                           "RNEXT", "PNEXT", "TLEN",  "SEQ", "QUAL"};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t from = 0;
  while (from <= s.size()) {
    const std::size_t comma = std::min(s.find(',', from), s.size());
    out.push_back(s.substr(from, comma - from));
    from = comma + 1;
  }
  return out;
}

void check_fields_and_tags(Endpoint ep, const std::vector<std::string>& fields,
                           const std::vector<std::string>& tags, const std::vector<std::string>& notags) {
  if (ep == Endpoint::reads)
    for (const std::string& f : fields)
      if (!kReadFields.count(f)) throw HtsgetError("InvalidInput", "unknown field '" + f + "'");
  for (const std::string& t : tags)
    if (std::find(notags.begin(), notags.end(), t) != notags.end())
      throw HtsgetError("InvalidInput", "tag '" + t + "' is in both tags and notags");
}

std::string check_format(Endpoint ep, std::string format) {
  for (char& c : format) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (ep == Endpoint::reads) {
    if (format.empty() || format == "BAM") return "BAM";
    if (format == "CRAM")
      throw HtsgetError("UnsupportedFormat", "run outputs are stored as BAM only; ask for format=BAM");
  } else {
    if (format.empty() || format == "VCF") return "VCF";
    if (format == "BCF")
      throw HtsgetError("UnsupportedFormat", "run outputs are stored as VCF only; ask for format=VCF");
  }
  throw HtsgetError("UnsupportedFormat", "unknown format '" + format + "'");
}

HtsgetRequest from_query(const Request& req, Endpoint ep) {
  HtsgetRequest h;
  h.format = check_format(ep, req.query_param("format").value_or(""));
  if (auto c = req.query_param("class")) {
    if (*c == "header")
      h.header_only = true;
    else if (*c != "body")
      throw HtsgetError("InvalidInput", "class must be 'header' (or 'body')");
  }
  const auto name = req.query_param("referenceName");
  const auto start = req.query_param("start"), end = req.query_param("end");
  if (!name && (start || end)) throw HtsgetError("InvalidInput", "start and end need a referenceName");
  if (name) {
    HtsgetRegion r;
    r.reference_name = *name;
    if (start) r.start = parse_coordinate(*start, "start");
    if (end) r.end = parse_coordinate(*end, "end");
    h.regions.push_back(r);
  }
  std::vector<std::string> fields, tags, notags;
  if (auto f = req.query_param("fields")) fields = split_commas(*f);
  if (auto t = req.query_param("tags")) tags = split_commas(*t);
  if (auto t = req.query_param("notags")) notags = split_commas(*t);
  check_fields_and_tags(ep, fields, tags, notags);
  return h;
}

std::vector<std::string> string_list(const json& b, const char* key) {
  std::vector<std::string> out;
  if (!b.contains(key)) return out;
  if (!b[key].is_array())
    throw HtsgetError("InvalidInput", std::string(key) + " must be an array of strings");
  for (const json& v : b[key]) {
    if (!v.is_string()) throw HtsgetError("InvalidInput", std::string(key) + " must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

HtsgetRequest from_body(const Request& req, Endpoint ep, const HtsgetRoutesOptions& opt) {
  json b = json::object();
  if (!req.body.empty()) {
    b = json::parse(req.body, nullptr, false);
    if (b.is_discarded() || !b.is_object())
      throw HtsgetError("InvalidInput", "the body must be a JSON object");
  }
  HtsgetRequest h;
  if (b.contains("format") && !b["format"].is_string())
    throw HtsgetError("InvalidInput", "format must be a string");
  h.format = check_format(ep, b.value("format", ""));
  if (b.contains("class")) {
    if (!b["class"].is_string() || (b["class"] != "header" && b["class"] != "body"))
      throw HtsgetError("InvalidInput", "class must be 'header' (or 'body')");
    h.header_only = b["class"] == "header";
  }
  if (b.contains("regions")) {
    if (!b["regions"].is_array()) throw HtsgetError("InvalidInput", "regions must be an array");
    if (b["regions"].size() > opt.max_regions)
      throw HtsgetError("PayloadTooLarge", "more than " + std::to_string(opt.max_regions) + " regions");
    for (const json& r : b["regions"]) {
      if (!r.is_object() || !r.contains("referenceName") || !r["referenceName"].is_string())
        throw HtsgetError("InvalidInput", "each region needs a referenceName string");
      HtsgetRegion region;
      region.reference_name = r["referenceName"].get<std::string>();
      for (const char* key : {"start", "end"})
        if (r.contains(key)) {
          if (!r[key].is_number_unsigned())
            throw HtsgetError("InvalidInput", std::string(key) + " must be a non-negative integer");
          (std::string(key) == "start" ? region.start : region.end) = r[key].get<int64_t>();
        }
      h.regions.push_back(region);
    }
    if (h.regions.empty())
      throw HtsgetError("InvalidInput", "regions must not be empty (leave it out for all records)");
  }
  check_fields_and_tags(ep, string_list(b, "fields"), string_list(b, "tags"), string_list(b, "notags"));
  return h;
}

struct RunFile {
  std::string run_id;
  std::string output;  // "bam" | "vcf"
  std::filesystem::path file, index;
  std::string url_path;  // the route serving `file` by Range
};

// An unaligned read set ("rs-..."): every read, as the BAM export of the stored CRAM. Regions other
// than referenceName=* (the unplaced reads: all of them) are NotFound: it has no references.
std::optional<RunFile> resolve_readset(ReadSetStore* readsets, const std::string& id, HtsgetRequest& h) {
  if (!readsets || id.rfind("rs-", 0) != 0) return std::nullopt;
  RunFile rf;
  try {
    rf.file = readsets->export_file(id, "bam", 0);
  } catch (const std::exception& e) {  // unknown, not ACTIVE, or a malformed id
    throw HtsgetError("NotFound", std::string("read set: ") + e.what());
  }
  for (const HtsgetRegion& r : h.regions)
    if (r.reference_name != "*" || r.start || r.end)
      throw HtsgetError("NotFound", "read set " + id + " is unaligned: it has no reference '" +
                                        r.reference_name + "'; ask for all of it or referenceName=*");
  h.regions.clear();
  rf.url_path = "/v1/readsets/" + id + "/content?format=bam";
  return rf;
}

// "<run id>" or "<run id>.bam" (reads), "<run id>", "<run id>.vcf.gz" or "<run id>.vcf" (variants).
RunFile resolve(JobStore& jobs, ObjectStore& objects, Endpoint ep, std::string id) {
  const std::vector<std::string> suffixes =
      ep == Endpoint::reads ? std::vector<std::string>{".bam"} : std::vector<std::string>{".vcf.gz", ".vcf"};
  for (const std::string& s : suffixes)
    if (id.size() > s.size() && id.compare(id.size() - s.size(), s.size(), s) == 0) {
      id.resize(id.size() - s.size());
      break;
    }
  auto run = id.empty() ? std::nullopt : jobs.get_run(id);
  if (!run) throw HtsgetError("NotFound", "no run '" + id + "'");
  RunFile rf;
  rf.run_id = run->id;
  rf.output = ep == Endpoint::reads ? "bam" : "vcf";
  const std::vector<std::string> index_names =
      ep == Endpoint::reads ? std::vector<std::string>{"bai"} : std::vector<std::string>{"tbi", "csi"};
  std::string digest, index_digest;
  if (run->outputs.is_object())
    for (const auto& [task, outs] : run->outputs.items()) {
      if (!outs.is_object() || !outs.contains(rf.output)) continue;
      digest = outs[rf.output].value("digest", "");
      for (const std::string& ix : index_names)
        if (outs.contains(ix)) {
          index_digest = outs[ix].value("digest", "");
          break;
        }
    }
  if (digest.empty())
    throw HtsgetError("NotFound", "run " + run->id + " has no " +
                                      (ep == Endpoint::reads ? "aligned BAM" : "VCF") + " output (yet)");
  if (index_digest.empty())
    throw HtsgetError("NotFound", "run " + run->id + "'s " + rf.output + " has no index");
  rf.file = objects.path_of(digest);
  rf.index = objects.path_of(index_digest);
  rf.url_path = "/v1/runs/" + rf.run_id + "/outputs/" + rf.output;
  return rf;
}

std::string base_url(const Request& req, const HtsgetRoutesOptions& opt) {
  if (!opt.public_url.empty()) {
    std::string u = opt.public_url;
    while (!u.empty() && u.back() == '/') u.pop_back();
    return u;
  }
  const std::string host = req.header("Host");
  if (host.empty())
    throw HtsgetError("InvalidInput", "the request has no Host header to build ticket URLs from");
  return (opt.https ? "https://" : "http://") + host;
}

json ticket(const Request& req, const HtsgetRoutesOptions& opt, const RunFile& rf, const HtsgetRequest& h,
            const HtsgetSlices& slices) {
  const std::string url = base_url(req, opt) + rf.url_path;
  json urls = json::array();
  auto add = [&](const HtsgetPiece& p, const char* cls) {
    json u;
    if (!p.inline_bgzf.empty()) {
      u["url"] = "data:application/octet-stream;base64," + base64(p.inline_bgzf);
    } else {
      u["url"] = url;
      json headers = {
          {"Range", "bytes=" + std::to_string(p.range.begin) + "-" + std::to_string(p.range.end - 1)}};
      if (!req.bearer_token.empty()) headers["Authorization"] = "Bearer " + req.bearer_token;
      u["headers"] = headers;
    }
    u["class"] = cls;
    urls.push_back(u);
  };
  for (const HtsgetPiece& p : slices.header) add(p, "header");
  if (!h.header_only)
    for (const HtsgetPiece& p : slices.data) add(p, "body");
  urls.push_back({{"url", "data:application/octet-stream;base64," + base64(bgzf_eof_block())},
                  {"class", h.header_only ? "header" : "body"}});
  return {{"htsget", {{"format", h.format}, {"urls", urls}}}};
}

Response answer(Request& req, JobStore& jobs, ObjectStore& objects, ReadSetStore* readsets, Endpoint ep,
                const HtsgetRoutesOptions& opt, bool post) {
  try {
    check_scope(req);
    HtsgetRequest h = post ? from_body(req, ep, opt) : from_query(req, ep);
    std::optional<RunFile> from_readset;
    if (ep == Endpoint::reads) from_readset = resolve_readset(readsets, req.param("id"), h);
    const RunFile rf = from_readset ? *from_readset : resolve(jobs, objects, ep, req.param("id"));
    const HtsgetSlices slices = plan_htsget_slices(
        rf.file, rf.index, ep == Endpoint::reads ? HtsgetFileKind::bam : HtsgetFileKind::vcf_gz, h.regions);
    Response r = Response::json(ticket(req, opt, rf, h, slices));
    r.content_type = kTicketType;
    return r;
  } catch (const HtsgetError& e) {
    return htsget_error(e.name(), e.what(), e.status());
  }
}

json service_info(Endpoint ep) {
  const bool reads = ep == Endpoint::reads;
  return {{"id", std::string("org.omicsd.htsget.") + (reads ? "reads" : "variants")},
          {"name", "omicsd htsget"},
          {"type", {{"group", "org.ga4gh"}, {"artifact", "htsget"}, {"version", "1.3.0"}}},
          {"organization", {{"name", "omicsd"}, {"url", "https://github.com/omicsd/omicsd"}}},
          {"version", kVersion},
          {"htsget",
           {{"datatype", reads ? "reads" : "variants"},
            {"formats", reads ? json::array({"BAM"}) : json::array({"VCF"})},
            {"fieldsParameterEffective", false},
            {"tagsParametersEffective", false}}}};
}

}  // namespace

void add_htsget_routes(http::Router& router, JobStore& jobs, ObjectStore& objects, ReadSetStore* readsets,
                       HtsgetRoutesOptions options) {
  const std::string base = kHtsgetBasePath;
  for (Endpoint ep : {Endpoint::reads, Endpoint::variants}) {
    const std::string path = base + (ep == Endpoint::reads ? "/reads" : "/variants");
    router.get(
        path + "/service-info",
        [ep](Request& req) {
          try {
            check_scope(req);
          } catch (const HtsgetError& e) {
            return htsget_error(e.name(), e.what(), e.status());
          }
          Response r = Response::json(service_info(ep));
          r.content_type = "application/json";
          return r;
        },
        http::Scope::none);
    router.get(
        path + "/{id}",
        [&jobs, &objects, readsets, ep, options](Request& req) {
          return answer(req, jobs, objects, readsets, ep, options, false);
        },
        http::Scope::none);
    router.post(
        path + "/{id}",
        [&jobs, &objects, readsets, ep, options](Request& req) {
          return answer(req, jobs, objects, readsets, ep, options, true);
        },
        http::Scope::none);
  }
}

}  // namespace omicsd
