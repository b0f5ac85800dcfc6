// Variant store routes (variant_routes.hpp): query-string / JSON parsing and answers; the store does
// the work. InputError from the store (bad variant, region, token) becomes a 400.
#include "service/stores/variant_routes.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "host/common/error.hpp"
#include "service/http/http_paging.hpp"

namespace omicsd {
namespace {

using json = nlohmann::json;
using http::HttpError;
using http::Request;
using http::Response;
using http::Scope;

Response guarded(const std::function<Response()>& fn) { return http::answer_errors(fn); }

VariantPageRequest page_of(const Request& req) {
  const http::PageParams paging = http::page_params(req);
  VariantPageRequest p;
  p.page_size = paging.page_size.value_or(0);  // 0: the store's default
  p.page_token = paging.page_token;
  return p;
}

// "k:v,k2:v2" (values may not contain ','; use POST /v1/cohorts/query for those).
std::map<std::string, std::string> tags_of(const Request& req) {
  std::map<std::string, std::string> tags;
  const auto t = req.query_param("tags");
  if (!t || t->empty()) return tags;
  size_t start = 0;
  while (start <= t->size()) {
    const size_t comma = std::min(t->find(',', start), t->size());
    const std::string item = t->substr(start, comma - start);
    const size_t colon = item.find(':');
    if (colon == std::string::npos || colon == 0)
      throw HttpError(400, "tags '" + *t + "': expected key:value[,key:value...]");
    tags[item.substr(0, colon)] = item.substr(colon + 1);
    start = comma + 1;
  }
  validate_variant_tags(tags);
  return tags;
}

// The site named by ?variant=chr:pos:ref:alt or ?chrom=&pos=&ref=&alt=; nullopt when none is given.
std::optional<VariantKey> site_of(const Request& req) {
  if (auto v = req.query_param("variant")) return parse_variant(*v);
  const auto chrom = req.query_param("chrom"), pos = req.query_param("pos"), ref = req.query_param("ref"),
             alt = req.query_param("alt");
  if (!chrom && !pos && !ref && !alt) return std::nullopt;
  if (!chrom || !pos || !ref || !alt)
    throw HttpError(400, "a variant needs all of chrom, pos, ref and alt (or variant=chrom:pos:ref:alt)");
  return parse_variant(*chrom + ":" + *pos + ":" + *ref + ":" + *alt);
}

json call_json(const VariantCall& c) {
  json j = {{"sample_id", c.sample_id},
            {"subject_id", c.subject_id},
            {"gt", c.gt},
            {"zygosity", to_string(c.zygosity)},
            {"alt_copies", c.alt_copies},
            {"gq", c.gq ? json(*c.gq) : json(nullptr)},
            {"dp", c.dp ? json(*c.dp) : json(nullptr)}};
  if (!c.filters.empty()) j["filters"] = c.filters;
  return j;
}

VariantKey variant_from_json(const json& v, const std::string& where) {
  if (v.is_string()) return parse_variant(v.get<std::string>());
  if (!v.is_object())
    throw InputError(where + ": expected {\"chrom\",\"pos\",\"ref\",\"alt\"} or \"chrom:pos:ref:alt\"");
  auto str = [&](const char* k) {
    if (!v.contains(k) || !v[k].is_string()) throw InputError(where + "." + k + ": missing or not a string");
    return v[k].get<std::string>();
  };
  if (!v.contains("pos") || !v["pos"].is_number_integer())
    throw InputError(where + ".pos: missing or not an integer");
  return normalize_variant({str("chrom"), v["pos"].get<int64_t>(), str("ref"), str("alt")});
}

struct Routes {
  VariantStore& store;
  // Region strings look the whole text up as a contig first (HLA-A*01:01:01:01), as samtools does.
  VariantRegion region_of(const std::string& text) const {
    return parse_region(text, [this](const std::string& c) { return store.has_chrom(c); });
  }

  Response variants(Request& req) {
    const auto site = site_of(req);
    const auto region = req.query_param("region");
    const VariantPageRequest page = page_of(req);
    if (site && region)
      throw HttpError(400, "give either a variant (chrom, pos, ref, alt) or a region, not both");
    if (site) {
      if (req.query_param("sample")) throw HttpError(400, "sample= goes with region=, not with a variant");
      const CarrierPage p = store.carriers(*site, page);
      json carriers = json::array();
      for (const auto& c : p.carriers) carriers.push_back(call_json(c));
      return Response::json({{"variant", to_json(*site)},
                             {"site_known", p.site_known},
                             {"counts", to_json(p.counts)},
                             {"carriers", carriers},
                             {"next_page_token", http::next_page_token_json(p.next_page_token)}});
    }
    if (!region)
      throw HttpError(400, "give a variant (chrom, pos, ref, alt or variant=chrom:pos:ref:alt) or a region");
    const VariantRegion r = region_of(*region);
    const auto sample = req.query_param("sample");
    if (sample && !store.get_sample(*sample))
      throw HttpError(404, "no sample '" + *sample + "' in the variant store");
    const RegionPage p = store.region(r, sample, page);
    json genotypes = json::array();
    for (const auto& g : p.genotypes) {
      json j = to_json(g.site);
      j.update(call_json(g.call));
      genotypes.push_back(j);
    }
    return Response::json({{"region",
                            {{"chrom", r.chrom},
                             {"start", r.start},
                             {"end", r.end == INT64_MAX ? json(nullptr) : json(r.end)}}},
                           {"genotypes", genotypes},
                           {"next_page_token", http::next_page_token_json(p.next_page_token)}});
  }

  Response frequencies(Request& req) {
    const auto site = site_of(req);
    const auto region = req.query_param("region");
    const auto tags = tags_of(req);
    if (site && region) throw HttpError(400, "give either a variant or a region, not both");
    FrequencyPage p;
    if (site) {
      p = store.frequencies(*site, tags);
    } else if (region) {
      p = store.frequencies(region_of(*region), tags, page_of(req));
    } else {
      throw HttpError(400, "give a variant (chrom, pos, ref, alt) or a region");
    }
    json sites = json::array();
    for (const auto& c : p.sites) sites.push_back(to_json(c));
    return Response::json({{"n_samples", p.n_samples},
                           {"sites", sites},
                           {"next_page_token", http::next_page_token_json(p.next_page_token)}});
  }

  Response cohort(Request& req) {
    const json body = http::parse_json_body(req);
    const CohortRule rule = cohort_rule_from_json(body);
    VariantPageRequest page;
    if (body.contains("page_size")) page.page_size = http::parse_json_page_size(body["page_size"]);
    if (body.contains("page_token") && !body["page_token"].is_null()) {
      if (!body["page_token"].is_string()) throw HttpError(400, "page_token: expected a string");
      page.page_token = body["page_token"].get<std::string>();
    }
    const CohortPage p = store.cohort(rule, page);
    json counts = json::array(), samples = json::array();
    for (const auto& c : p.counts) counts.push_back(to_json(c));
    for (const auto& m : p.samples) {
      json matched = json::array();
      for (const auto& [k, call] : m.matched) {
        json j = to_json(k);
        json c = call_json(call);
        c.erase("sample_id");
        c.erase("subject_id");
        j.update(c);
        matched.push_back(j);
      }
      samples.push_back(
          {{"sample_id", m.sample_id}, {"subject_id", m.subject_id}, {"tags", m.tags}, {"matched", matched}});
    }
    return Response::json({{"n_matching", p.n_matching},
                           {"n_cohort", p.n_cohort},
                           {"counts", counts},
                           {"samples", samples},
                           {"next_page_token", http::next_page_token_json(p.next_page_token)}});
  }

  Response list_samples(Request& req) {
    const SamplePage p = store.list_samples(page_of(req), tags_of(req));
    json samples = json::array();
    for (const auto& s : p.samples) samples.push_back(to_json(s));
    return Response::json(
        {{"samples", samples}, {"next_page_token", http::next_page_token_json(p.next_page_token)}});
  }

  Response get_sample(Request& req) {
    const std::string id = req.param("id");
    const auto s = store.get_sample(id);
    if (!s) throw HttpError(404, "no sample '" + id + "' in the variant store");
    return Response::json(to_json(*s));
  }

  Response delete_sample(Request& req) {
    const std::string id = req.param("id");
    if (!store.delete_sample(id)) throw HttpError(404, "no sample '" + id + "' in the variant store");
    return Response::json({{"sample_id", id}, {"deleted", true}});
  }
};

}  // namespace

json to_json(const VariantKey& k) {
  return {{"chrom", k.chrom}, {"pos", k.pos}, {"ref", k.ref}, {"alt", k.alt}};
}

json to_json(const AlleleCounts& c) {
  json j = to_json(c.site);
  j.update({{"ac", c.ac},
            {"an", c.an},
            {"af", c.af},
            {"n_het", c.n_het},
            {"n_hom_alt", c.n_hom_alt},
            {"n_samples", c.n_samples}});
  return j;
}

json to_json(const VariantSample& s) {
  return {{"sample_id", s.sample_id},   {"subject_id", s.subject_id},     {"run_id", s.run_id},
          {"readset_id", s.readset_id}, {"reference_id", s.reference_id}, {"tags", s.tags},
          {"source", s.source},         {"vcf_sample", s.vcf_sample},     {"ingested_at", s.ingested_at},
          {"genotypes", s.genotypes},   {"all_sites", s.all_sites}};
}

CohortRule cohort_rule_from_json(const json& body) {
  if (!body.is_object()) throw InputError("cohort rule: expected a JSON object");
  static const std::set<std::string> known = {"variants", "match",     "zygosity",  "min_gq",
                                              "tags",     "page_size", "page_token"};
  for (const auto& [k, v] : body.items())
    if (!known.count(k)) throw InputError("cohort rule: unknown field '" + k + "'");
  CohortRule r;
  if (!body.contains("variants") || !body["variants"].is_array() || body["variants"].empty())
    throw InputError("cohort rule: 'variants' must be a non-empty array");
  if (body["variants"].size() > kMaxCohortVariants)
    throw InputError("cohort rule: at most " + std::to_string(kMaxCohortVariants) + " variants");
  for (size_t i = 0; i < body["variants"].size(); ++i)
    r.variants.push_back(variant_from_json(body["variants"][i], "variants[" + std::to_string(i) + "]"));
  const std::string match = body.value("match", std::string("any"));
  if (match == "any")
    r.match = CohortRule::Match::any;
  else if (match == "all")
    r.match = CohortRule::Match::all;
  else
    throw InputError("cohort rule: match '" + match + "': expected \"any\" or \"all\"");
  if (body.contains("zygosity")) {
    if (!body["zygosity"].is_string()) throw InputError("cohort rule: zygosity must be a string");
    std::string z = body["zygosity"].get<std::string>();
    for (char& c : z) c = char(std::tolower((unsigned char)c));
    if (z == "any")
      r.zygosity = CohortRule::Zyg::any;
    else if (z == "het")
      r.zygosity = CohortRule::Zyg::het;
    else if (z == "hom_alt")
      r.zygosity = CohortRule::Zyg::hom_alt;
    else
      throw InputError("cohort rule: zygosity '" + z + "': expected \"any\", \"het\" or \"hom_alt\"");
  }
  if (body.contains("min_gq") && !body["min_gq"].is_null()) {
    if (!body["min_gq"].is_number_integer() || body["min_gq"].get<int64_t>() < 0 ||
        body["min_gq"].get<int64_t>() > 100000)
      throw InputError("cohort rule: min_gq must be an integer >= 0");
    r.min_gq = int(body["min_gq"].get<int64_t>());
  }
  if (body.contains("tags") && !body["tags"].is_null()) {
    if (!body["tags"].is_object()) throw InputError("cohort rule: tags must be an object of strings");
    for (const auto& [k, v] : body["tags"].items()) {
      if (!v.is_string()) throw InputError("cohort rule: tags." + k + " must be a string");
      r.tags[k] = v.get<std::string>();
    }
    validate_variant_tags(r.tags);
  }
  return r;
}

void add_variant_routes(http::Router& router, VariantStore& store) {
  auto r = std::make_shared<Routes>(Routes{store});
  router.get(
      "/v1/variants", [r](Request& q) { return guarded([&] { return r->variants(q); }); }, Scope::client);
  router.get(
      "/v1/variants/frequencies", [r](Request& q) { return guarded([&] { return r->frequencies(q); }); },
      Scope::client);
  router.post(
      "/v1/cohorts/query", [r](Request& q) { return guarded([&] { return r->cohort(q); }); }, Scope::client);
  router.get(
      "/v1/variant-samples", [r](Request& q) { return guarded([&] { return r->list_samples(q); }); },
      Scope::client);
  router.get(
      "/v1/variant-samples/{id}", [r](Request& q) { return guarded([&] { return r->get_sample(q); }); },
      Scope::client);
  router.del(
      "/v1/variant-samples/{id}", [r](Request& q) { return guarded([&] { return r->delete_sample(q); }); },
      Scope::admin);
}

}  // namespace omicsd
