// `omicsd query`: the variant store's questions from the command line (docs/api.md "Variants").
// One of --variant (carriers + allele counts), --region [--sample], --cohort RULE.json, --samples;
// --frequencies turns --variant / --region into allele counts. Follows the pages up to --limit rows
// and prints a table, or the JSON of the answer (arrays of every page fetched) with --json.
#include <cctype>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "host/common/error.hpp"
#include "service/cli/cli.hpp"
#include "service/cli/client_common.hpp"
#include "service/http/json_input.hpp"

namespace omicsd {
namespace {

using nlohmann::json;

struct QueryOpts {
  ClientOpts c;
  std::string token_file;
  std::string variant, region, sample, cohort, tags;
  bool frequencies = false, samples = false;
  int page_size = 0;
  int64_t limit = 1000;
};

std::string read_text(const std::string& path) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read the file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

HttpClient client_of(const QueryOpts& o) {
  if (o.token_file.empty()) return make_client(o.c);
  std::string token;
  std::istringstream lines(read_text(o.token_file));
  for (std::string line; std::getline(lines, line);) {
    const auto b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
    if (b != std::string::npos && line[b] != '#') {
      token = line.substr(b, e - b + 1);
      break;
    }
  }
  if (token.empty()) throw InputError(o.token_file + ": no token in the file");
  HttpClientOptions h;
  h.base_url = o.c.server;
  h.token = token;
  h.ca_file = o.c.ca_file;
  return HttpClient(h);
}

std::string enc(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == ':')
      out += char(ch);
    else
      out += '%', out += hex[ch >> 4], out += hex[ch & 15];
  }
  return out;
}

std::string num(const json& j, const char* key) { return str(j, key, "."); }

std::string af(const json& c) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", c.value("af", 0.0));
  return buf;
}

std::string variant_of(const json& j) {
  return str(j, "chrom") + ":" + num(j, "pos") + ":" + str(j, "ref") + ":" + str(j, "alt");
}

bool truncated = false;  // fetch_pages dropped rows beyond --limit (the CLI runs one query per process)

// Fetches pages until `limit` rows of `array` (0: all) or the last page; the first answer carries
// the rows of every page and the last next_page_token.
json fetch_pages(const std::function<json(const std::string& token)>& page, const char* array,
                 int64_t limit) {
  json all = page("");
  while (!all["next_page_token"].is_null() && (limit == 0 || int64_t(all[array].size()) < limit)) {
    json more = page(all["next_page_token"].get<std::string>());
    for (auto& row : more[array]) all[array].push_back(std::move(row));
    all["next_page_token"] = more["next_page_token"];
  }
  if (limit > 0 && int64_t(all[array].size()) > limit) {
    json cut = json::array();
    for (int64_t i = 0; i < limit; ++i) cut.push_back(all[array][size_t(i)]);
    all[array] = cut;
    truncated = true;
  }
  return all;
}

void more_note(const json& answer, const char* array) {
  if (!answer["next_page_token"].is_null() || truncated)
    std::fprintf(stderr, "omicsd: showing the first %zu; more with --limit 0 (or a larger --limit)\n",
                 answer[array].size());
}

std::string counts_line(const json& c) {
  return variant_of(c) + "  AC=" + num(c, "ac") + " AN=" + num(c, "an") + " AF=" + af(c) +
         " het=" + num(c, "n_het") + " hom_alt=" + num(c, "n_hom_alt") + " samples=" + num(c, "n_samples");
}

int run_query(const QueryOpts& o) {
  const int modes =
      int(!o.variant.empty()) + int(!o.region.empty()) + int(!o.cohort.empty()) + int(o.samples);
  if (modes != 1) throw InputError("give exactly one of --variant, --region, --cohort, --samples");
  if (!o.sample.empty() && o.region.empty()) throw InputError("--sample goes with --region");
  if (o.frequencies && o.variant.empty() && o.region.empty())
    throw InputError("--frequencies goes with --variant or --region");
  if (!o.tags.empty() && !o.frequencies && !o.samples)
    throw InputError("--tags goes with --frequencies or --samples (a cohort rule has its own \"tags\")");
  HttpClient client = client_of(o);
  const std::string ps = o.page_size > 0 ? "&page_size=" + std::to_string(o.page_size) : "";
  auto get = [&](const std::string& path) {
    return [&client, path](const std::string& token) {
      return client.get_json(path + (token.empty() ? "" : "&page_token=" + enc(token)));
    };
  };
  std::string site;
  if (!o.variant.empty()) site = "variant=" + enc(o.variant);
  if (!o.region.empty()) site = "region=" + enc(o.region);

  if (o.frequencies) {
    std::string path = "/v1/variants/frequencies?" + site + ps;
    if (!o.tags.empty()) path += "&tags=" + enc(o.tags);
    const json a = fetch_pages(get(path), "sites", o.limit);
    if (o.c.json) return std::printf("%s\n", a.dump(2).c_str()), 0;
    std::vector<std::vector<std::string>> rows = {{"VARIANT", "AC", "AN", "AF", "HET", "HOM_ALT", "SAMPLES"}};
    for (const auto& c : a["sites"])
      rows.push_back({variant_of(c), num(c, "ac"), num(c, "an"), af(c), num(c, "n_het"), num(c, "n_hom_alt"),
                      num(c, "n_samples")});
    print_table(rows);
    more_note(a, "sites");
    return 0;
  }
  if (!o.variant.empty()) {
    const json a = fetch_pages(get("/v1/variants?" + site + ps), "carriers", o.limit);
    if (o.c.json) return std::printf("%s\n", a.dump(2).c_str()), 0;
    std::printf("%s\n", counts_line(a["counts"]).c_str());
    if (a["carriers"].empty()) {
      std::printf(a.value("site_known", false) ? "no carriers\n"
                                               : "no sample in the store carries this variant\n");
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {
        {"SAMPLE", "SUBJECT", "GT", "ZYGOSITY", "GQ", "DP", "FILTER"}};
    for (const auto& c : a["carriers"])
      rows.push_back({str(c, "sample_id"), str(c, "subject_id"), str(c, "gt"), str(c, "zygosity"),
                      num(c, "gq"), num(c, "dp"), str(c, "filters", "PASS")});
    print_table(rows);
    more_note(a, "carriers");
    return 0;
  }
  if (!o.region.empty()) {
    std::string path = "/v1/variants?" + site + ps;
    if (!o.sample.empty()) path += "&sample=" + enc(o.sample);
    const json a = fetch_pages(get(path), "genotypes", o.limit);
    if (o.c.json) return std::printf("%s\n", a.dump(2).c_str()), 0;
    std::vector<std::vector<std::string>> rows = {
        {"CHROM", "POS", "REF", "ALT", "SAMPLE", "GT", "ZYGOSITY", "GQ", "DP", "FILTER"}};
    for (const auto& g : a["genotypes"])
      rows.push_back({str(g, "chrom"), num(g, "pos"), str(g, "ref"), str(g, "alt"), str(g, "sample_id"),
                      str(g, "gt"), str(g, "zygosity"), num(g, "gq"), num(g, "dp"),
                      str(g, "filters", "PASS")});
    print_table(rows);
    more_note(a, "genotypes");
    return 0;
  }
  if (o.samples) {
    std::string path = "/v1/variant-samples?tags=" + enc(o.tags) + ps;  // an empty tags= filters nothing
    const json a = fetch_pages(get(path), "samples", o.limit);
    if (o.c.json) return std::printf("%s\n", a.dump(2).c_str()), 0;
    std::vector<std::vector<std::string>> rows = {{"SAMPLE", "SUBJECT", "RUN", "GENOTYPES", "TAGS"}};
    for (const auto& s : a["samples"]) {
      std::string tags;
      for (const auto& [k, v] : s["tags"].items())
        tags += (tags.empty() ? "" : ",") + k + ":" + v.get<std::string>();
      rows.push_back({str(s, "sample_id"), str(s, "subject_id"), str(s, "run_id"), num(s, "genotypes"),
                      tags.empty() ? "-" : tags});
    }
    print_table(rows);
    more_note(a, "samples");
    return 0;
  }
  // --cohort: the rule file is sent as it is (the server checks it); paging fields are ours.
  json rule;
  rule = parse_json_input(read_text(o.cohort), o.cohort + ": not JSON");
  if (!rule.is_object()) throw InputError(o.cohort + ": a cohort rule is a JSON object");
  if (o.page_size > 0) rule["page_size"] = o.page_size;
  const json a = fetch_pages(
      [&](const std::string& token) {
        json body = rule;
        if (!token.empty()) body["page_token"] = token;
        return client.post_json("/v1/cohorts/query", body, true);  // a query: safe to retry
      },
      "samples", o.limit);
  if (o.c.json) return std::printf("%s\n", a.dump(2).c_str()), 0;
  std::printf("%s of %s samples in the cohort match\n", num(a, "n_matching").c_str(),
              num(a, "n_cohort").c_str());
  for (const auto& c : a["counts"]) std::printf("  %s\n", counts_line(c).c_str());
  if (!a["samples"].empty()) {
    std::vector<std::vector<std::string>> rows = {{"SAMPLE", "SUBJECT", "MATCHED"}};
    for (const auto& m : a["samples"]) {
      std::string matched;
      for (const auto& v : m["matched"])
        matched += (matched.empty() ? "" : " ") + variant_of(v) + "=" + str(v, "gt");
      rows.push_back({str(m, "sample_id"), str(m, "subject_id"), matched});
    }
    std::printf("\n");
    print_table(rows);
  }
  more_note(a, "samples");
  return 0;
}

}  // namespace

CliAction add_query_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("query", "Ask the variant store: carriers, regions, cohorts, allele frequencies");
  auto o = std::make_shared<QueryOpts>();
  add_common(cmd, o->c);
  cmd->add_option("--token-file", o->token_file,
                  "Read the bearer token from this file (default: $OMICSD_TOKEN)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--variant", o->variant, "Carriers of chrom:pos:ref:alt (1-based), e.g. chr22:10510:A:G");
  cmd->add_option("--region", o->region, "Genotypes in chrom:start-end (1-based, inclusive)");
  cmd->add_option("--sample", o->sample, "With --region: only this sample");
  cmd->add_option(
      "--cohort", o->cohort,
      "Samples matching a rule file ('-' = stdin): {\"variants\": [\"chr:pos:ref:alt\", ...], "
      "\"match\": \"any|all\", \"zygosity\": \"any|het|hom_alt\", \"min_gq\": 20, \"tags\": {...}}");
  cmd->add_flag("--samples", o->samples, "List the samples in the store");
  cmd->add_flag("--frequencies", o->frequencies, "With --variant or --region: allele counts AC, AN, AF");
  cmd->add_option("--tags", o->tags,
                  "With --frequencies or --samples: only samples with these tags (k:v,k2:v2)");
  cmd->add_option("--page-size", o->page_size, "Rows per request (server maximum 1000)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--limit", o->limit, "Print at most this many rows, following pages (0: all)")
      ->check(CLI::NonNegativeNumber);
  return {cmd, [o] { return run_query(*o); }};
}

}  // namespace omicsd
