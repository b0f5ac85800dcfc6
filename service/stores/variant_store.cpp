// The variant store (variant_store.hpp): schema and the cohort queries (samples, carriers, regions,
// cohort rules, frequencies) with their page tokens. Portable SQL (service/db/sql_db.hpp) except the DDL
// of the genotype table, which each backend clusters its own way. VCF ingest: variant_ingest.cpp;
// variant keys, regions and tags: variant_keys.cpp.
#include "service/stores/variant_store.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "service/db/sql_db.hpp"
#include "service/stores/variant_store_sql.hpp"

namespace omicsd {
using namespace variant_sql;
namespace {

std::vector<std::string> schema(sql::Dialect d) {
  const bool lite = d == sql::Dialect::sqlite;
  // SQLite: INTEGER PRIMARY KEY is the rowid (compact); PostgreSQL needs BIGINT for 64-bit ids.
  const std::string key = lite ? "INTEGER PRIMARY KEY" : "BIGINT PRIMARY KEY";
  // The genotype table is the big one (1e9 rows at 10k samples x 100k sites): SQLite stores it as a
  // B-tree on (site_id, sample_key) itself (WITHOUT ROWID), so the carriers of a site are adjacent;
  // PostgreSQL keeps a heap and a covering primary key, so counts and cohort rules are index-only.
  const std::string gt_tail =
      lite ? ") WITHOUT ROWID" : ", PRIMARY KEY (site_id, sample_key) INCLUDE (zygosity, alt_copies, gq))";
  const std::string gt_pk = lite ? ", PRIMARY KEY (site_id, sample_key)" : "";
  const std::string tags_tail = lite ? ") WITHOUT ROWID" : ")";
  return {
      "CREATE TABLE variant_samples ("
      " sample_key " +
      key +
      ", sample_id TEXT NOT NULL UNIQUE, subject_id TEXT NOT NULL,"
      " run_id TEXT NOT NULL, readset_id TEXT NOT NULL, reference_id TEXT NOT NULL, tags TEXT NOT NULL,"
      " source TEXT NOT NULL, vcf_sample TEXT NOT NULL, ingested_at BIGINT NOT NULL,"
      " genotypes BIGINT NOT NULL, all_sites INTEGER NOT NULL);"
      "CREATE TABLE variant_sample_tags (tag TEXT NOT NULL, value TEXT NOT NULL, sample_key BIGINT NOT NULL,"
      " PRIMARY KEY (tag, value, sample_key)" +
      tags_tail +
      ";"
      "CREATE INDEX variant_sample_tags_by_sample ON variant_sample_tags (sample_key);"
      "CREATE TABLE variant_sites (site_id " +
      key +
      ", chrom TEXT NOT NULL, pos BIGINT NOT NULL,"
      " ref TEXT NOT NULL, alt TEXT NOT NULL, UNIQUE (chrom, pos, ref, alt));"
      "CREATE TABLE variant_genotypes (site_id BIGINT NOT NULL, sample_key BIGINT NOT NULL, gt TEXT NOT NULL,"
      " zygosity INTEGER NOT NULL, alt_copies INTEGER NOT NULL, gq INTEGER, dp INTEGER, filters TEXT" +
      gt_pk + gt_tail +
      ";"
      "CREATE INDEX variant_genotypes_by_sample ON variant_genotypes (sample_key, site_id);"
      "CREATE TABLE variant_ingests (run_id TEXT PRIMARY KEY, sample_id TEXT NOT NULL, source TEXT NOT NULL,"
      " ingested_at BIGINT NOT NULL, genotypes BIGINT NOT NULL);"};
}

// ---- page tokens: hex of "kind|fingerprint|field|field..." (opaque to clients; the fingerprint of
// the query ties a token to the query that produced it).

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string encode_token(char kind, const std::string& query, const std::vector<std::string>& fields) {
  std::string raw(1, kind);
  raw += '\x1f' + std::to_string(fnv1a(query) & 0xffffffffu);
  for (const auto& f : fields) raw += '\x1f' + f;
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) out += hex[c >> 4], out += hex[c & 15];
  return out;
}

// The fields of a token of this kind and query; empty for an empty token. InputError otherwise.
std::vector<std::string> decode_token(const std::string& token, char kind, const std::string& query,
                                      size_t nfields) {
  if (token.empty()) return {};
  auto bad = [&]() { return InputError("invalid page_token '" + token + "' (not from this query)"); };
  if (token.size() % 2 || token.size() > 4096) throw bad();
  std::string raw;
  for (size_t i = 0; i < token.size(); i += 2) {
    auto nib = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      throw bad();
    };
    raw += char(nib(token[i]) * 16 + nib(token[i + 1]));
  }
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t sep = raw.find('\x1f', start);
    parts.push_back(raw.substr(start, sep == std::string::npos ? std::string::npos : sep - start));
    if (sep == std::string::npos) break;
    start = sep + 1;
  }
  if (parts.size() != nfields + 2 || parts[0] != std::string(1, kind) ||
      parts[1] != std::to_string(fnv1a(query) & 0xffffffffu))
    throw bad();
  return {parts.begin() + 2, parts.end()};
}

int64_t token_int(const std::string& s, const std::string& token) {
  try {
    size_t n = 0;
    const long long v = std::stoll(s, &n);
    if (n == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw InputError("invalid page_token '" + token + "'");
}
}  // namespace

// ---- the store

VariantStore::VariantStore(sql::Db& db, sql::Db* query_db) : db_(db), rd_(query_db ? *query_db : db) {
  sql::migrate(db_, "variants", schema(db_.dialect()));
}

bool VariantStore::has_run(const std::string& run_id) const {
  return !rd_.query("SELECT 1 FROM variant_ingests WHERE run_id = ?", {S(run_id)}).empty();
}

std::set<std::string> VariantStore::ingested_runs() const {
  std::set<std::string> out;
  for (const Row& r : rd_.query("SELECT run_id FROM variant_ingests")) out.insert(r.s(0));
  return out;
}

std::optional<VariantSample> VariantStore::get_sample(const std::string& sample_id) const {
  const auto rows =
      rd_.query(std::string("SELECT ") + kSampleCols + " FROM variant_samples sm WHERE sm.sample_id = ?",
                {S(sample_id)});
  if (rows.empty()) return std::nullopt;
  return read_sample(rows[0]);
}

SamplePage VariantStore::list_samples(const VariantPageRequest& page,
                                      const std::map<std::string, std::string>& tags) const {
  validate_variant_tags(tags);
  const int size = clamp_page(page.page_size);
  const std::string fp = "samples" + tags_fingerprint(tags);
  const auto tok = decode_token(page.page_token, 's', fp, 1);
  Params p{I(tok.empty() ? 0 : token_int(tok[0], page.page_token))};
  const std::string filter = tag_filter(tags, "sm.sample_key", p);
  p.push_back(I(size + 1));
  const auto rows =
      rd_.query(std::string("SELECT ") + kSampleCols + " FROM variant_samples sm WHERE sm.sample_key > ?" +
                    filter + " ORDER BY sm.sample_key LIMIT ?",
                p);
  SamplePage out;
  for (size_t i = 0; i < rows.size() && int(i) < size; ++i) out.samples.push_back(read_sample(rows[i]));
  if (int(rows.size()) > size)
    out.next_page_token = encode_token('s', fp, {std::to_string(rows[size - 1].i(0))});
  return out;
}

bool VariantStore::delete_sample(const std::string& sample_id) {
  bool found = false;
  db_.transaction([&] {
    const auto rows = db_.query("SELECT sample_key FROM variant_samples WHERE sample_id = ?", {S(sample_id)});
    if (rows.empty()) return;
    found = true;
    const int64_t key = rows[0].i(0);
    db_.exec("DELETE FROM variant_genotypes WHERE sample_key = ?", {I(key)});
    db_.exec("DELETE FROM variant_sample_tags WHERE sample_key = ?", {I(key)});
    db_.exec("DELETE FROM variant_samples WHERE sample_key = ?", {I(key)});
  });
  return found;
}

int64_t VariantStore::sample_count() const {
  return rd_.query("SELECT COUNT(*) FROM variant_samples")[0].i(0);
}

int64_t VariantStore::cohort_size(const std::map<std::string, std::string>& tags) const {
  if (tags.empty()) return sample_count();
  Params p;
  const std::string filter = tag_filter(tags, "sm.sample_key", p);
  return rd_.query("SELECT COUNT(*) FROM variant_samples sm WHERE 1 = 1" + filter, p)[0].i(0);
}

std::optional<int64_t> VariantStore::site_id(const VariantKey& k) const {
  const auto rows =
      rd_.query("SELECT site_id FROM variant_sites WHERE chrom = ? AND pos = ? AND ref = ? AND alt = ?",
                {S(k.chrom), I(k.pos), S(k.ref), S(k.alt)});
  if (rows.empty()) return std::nullopt;
  return rows[0].i(0);
}

namespace {
// Allele counts per site id over the samples having `tags` (n_samples and AN/AF are left to the caller).
const char* kCountCols =
    "g.site_id, COUNT(*), CAST(COALESCE(SUM(g.alt_copies), 0) AS BIGINT),"
    " CAST(COALESCE(SUM(CASE WHEN g.zygosity = 2 THEN 1 ELSE 0 END), 0) AS BIGINT)";
std::unordered_map<int64_t, AlleleCounts> count_sites(sql::Db& db, const std::vector<int64_t>& ids,
                                                      const std::map<std::string, std::string>& tags) {
  std::unordered_map<int64_t, AlleleCounts> out;
  for (size_t b = 0; b < ids.size(); b += kInBatch) {
    const size_t e = std::min(ids.size(), b + kInBatch);
    Params p;
    for (size_t i = b; i < e; ++i) p.push_back(I(ids[i]));
    const std::string filter = tag_filter(tags, "g.sample_key", p);
    for (const Row& r :
         db.query(std::string("SELECT ") + kCountCols + " FROM variant_genotypes g WHERE g.site_id IN (" +
                      placeholders(e - b) + ")" + filter + " GROUP BY g.site_id",
                  p)) {
      AlleleCounts& c = out[r.i(0)];
      c.ac = r.i(2);
      c.n_hom_alt = r.i(3);
      c.n_het = r.i(1) - c.n_hom_alt;
    }
  }
  return out;
}
}  // namespace

CarrierPage VariantStore::carriers(const VariantKey& variant, const VariantPageRequest& page) const {
  const VariantKey k = normalize_variant(variant);
  const int size = clamp_page(page.page_size);
  const auto tok = decode_token(page.page_token, 'c', k.to_string(), 1);
  CarrierPage out;
  out.counts.site = k;
  out.counts.n_samples = sample_count();
  const auto id = site_id(k);
  if (id) {
    out.site_known = true;
    // CROSS JOIN fixes SQLite's join order: the site's genotype range drives, samples are looked up.
    const auto rows = rd_.query(
        std::string("SELECT g.sample_key, sm.sample_id, sm.subject_id, ") + kCallCols +
            " FROM variant_genotypes g CROSS JOIN variant_samples sm WHERE sm.sample_key = g.sample_key"
            " AND g.site_id = ? AND g.sample_key > ? ORDER BY g.sample_key LIMIT ?",
        {I(*id), I(tok.empty() ? 0 : token_int(tok[0], page.page_token)), I(size + 1)});
    for (size_t i = 0; i < rows.size() && int(i) < size; ++i) {
      VariantCall c;
      c.sample_id = rows[i].s(1);
      c.subject_id = rows[i].s(2);
      read_call(rows[i], 3, c);
      out.carriers.push_back(std::move(c));
    }
    if (int(rows.size()) > size)
      out.next_page_token = encode_token('c', k.to_string(), {std::to_string(rows[size - 1].i(0))});
    const auto counts = count_sites(rd_, {*id}, {});
    if (auto it = counts.find(*id); it != counts.end()) {
      out.counts.ac = it->second.ac;
      out.counts.n_het = it->second.n_het;
      out.counts.n_hom_alt = it->second.n_hom_alt;
    }
  }
  finish_counts(out.counts);
  return out;
}

namespace {
// Keyset continuation after (pos, ref, alt[, sample_key]) in ORDER BY s.pos, s.ref, s.alt[, g.sample_key].
std::string after_site(const std::vector<std::string>& tok, const std::string& token, bool with_sample,
                       Params& p) {
  const int64_t pos = token_int(tok[0], token);
  std::string last = with_sample ? "(s.alt = ? AND g.sample_key > ?)" : "1 = 0";
  std::string q =
      " AND s.pos >= ? AND (s.pos > ? OR (s.pos = ? AND (s.ref > ? OR (s.ref = ? AND (s.alt > ? OR " + last +
      ")))))";
  p.insert(p.end(), {I(pos), I(pos), I(pos), S(tok[1]), S(tok[1]), S(tok[2])});
  if (with_sample) p.insert(p.end(), {S(tok[2]), I(token_int(tok[3], token))});
  return q;
}
std::string region_fingerprint(const VariantRegion& r) {
  return r.chrom + '\x1e' + std::to_string(r.start) + '\x1e' + std::to_string(r.end);
}
}  // namespace

bool VariantStore::has_chrom(const std::string& chrom) const {
  return !rd_.query("SELECT 1 FROM variant_sites WHERE chrom = ? LIMIT 1", {S(chrom)}).empty();
}

RegionPage VariantStore::region(const VariantRegion& region, const std::optional<std::string>& sample_id,
                                const VariantPageRequest& page) const {
  const int size = clamp_page(page.page_size);
  const std::string fp = region_fingerprint(region) + '\x1e' + sample_id.value_or("");
  const auto tok = decode_token(page.page_token, 'r', fp, 4);
  Params p{S(region.chrom), I(region.start), I(region.end)};
  std::string q = std::string("SELECT s.pos, s.ref, s.alt, g.sample_key, sm.sample_id, sm.subject_id, ") +
                  kCallCols +
                  " FROM variant_sites s CROSS JOIN variant_genotypes g CROSS JOIN variant_samples sm"
                  " WHERE g.site_id = s.site_id AND sm.sample_key = g.sample_key"
                  " AND s.chrom = ? AND s.pos >= ? AND s.pos <= ?";
  if (!tok.empty()) q += after_site(tok, page.page_token, true, p);
  if (sample_id) {
    // By key, so each site of the region is one primary-key probe (site_id, sample_key) instead of a
    // scan of all its carriers.
    const auto key = rd_.query("SELECT sample_key FROM variant_samples WHERE sample_id = ?", {S(*sample_id)});
    if (key.empty()) return {};
    q += " AND g.sample_key = ?";
    p.push_back(I(key[0].i(0)));
  }
  q += " ORDER BY s.pos, s.ref, s.alt, g.sample_key LIMIT ?";
  p.push_back(I(size + 1));
  const auto rows = rd_.query(q, p);
  RegionPage out;
  for (size_t i = 0; i < rows.size() && int(i) < size; ++i) {
    RegionGenotype g;
    g.site = {region.chrom, rows[i].i(0), rows[i].s(1), rows[i].s(2)};
    g.call.sample_id = rows[i].s(4);
    g.call.subject_id = rows[i].s(5);
    read_call(rows[i], 6, g.call);
    out.genotypes.push_back(std::move(g));
  }
  if (int(rows.size()) > size) {
    const Row& l = rows[size - 1];
    out.next_page_token =
        encode_token('r', fp, {std::to_string(l.i(0)), l.s(1), l.s(2), std::to_string(l.i(3))});
  }
  return out;
}

CohortPage VariantStore::cohort(const CohortRule& rule, const VariantPageRequest& page) const {
  if (rule.variants.empty()) throw InputError("cohort rule: 'variants' must list at least one variant");
  if (rule.variants.size() > kMaxCohortVariants)
    throw InputError("cohort rule: at most " + std::to_string(kMaxCohortVariants) + " variants");
  if (rule.min_gq && (*rule.min_gq < 0 || *rule.min_gq > 100000))
    throw InputError("cohort rule: min_gq out of range");
  validate_variant_tags(rule.tags);
  std::vector<VariantKey> variants;
  for (const auto& v : rule.variants) variants.push_back(normalize_variant(v));
  std::sort(variants.begin(), variants.end());
  variants.erase(std::unique(variants.begin(), variants.end()), variants.end());

  std::string fp = rule.match == CohortRule::Match::all ? "all" : "any";
  fp += '\x1e' + std::to_string(int(rule.zygosity)) + '\x1e' +
        (rule.min_gq ? std::to_string(*rule.min_gq) : "-") + '\x1e' + tags_fingerprint(rule.tags);
  for (const auto& v : variants) fp += '\x1e' + v.to_string();
  const int size = clamp_page(page.page_size);
  const auto tok = decode_token(page.page_token, 'k', fp, 1);
  const int64_t after = tok.empty() ? 0 : token_int(tok[0], page.page_token);

  CohortPage out;
  out.n_cohort = cohort_size(rule.tags);
  std::unordered_map<int64_t, size_t> index_of;  // site id -> index in variants
  std::vector<int64_t> ids;
  std::vector<std::optional<int64_t>> site_of(variants.size());
  for (size_t i = 0; i < variants.size(); ++i)
    if ((site_of[i] = site_id(variants[i]))) {
      index_of[*site_of[i]] = i;
      ids.push_back(*site_of[i]);
    }
  const auto counts = count_sites(rd_, ids, rule.tags);
  for (size_t i = 0; i < variants.size(); ++i) {
    AlleleCounts c;
    if (site_of[i])
      if (auto it = counts.find(*site_of[i]); it != counts.end()) c = it->second;
    c.site = variants[i];
    c.n_samples = out.n_cohort;
    finish_counts(c);
    out.counts.push_back(c);
  }

  // Every qualifying genotype of the rule's sites, grouped by sample in C++ (any / all).
  std::map<int64_t, std::vector<std::pair<size_t, VariantCall>>> by_sample;
  for (size_t b = 0; b < ids.size(); b += kInBatch) {
    const size_t e = std::min(ids.size(), b + kInBatch);
    Params p;
    for (size_t i = b; i < e; ++i) p.push_back(I(ids[i]));
    std::string q = std::string("SELECT g.site_id, g.sample_key, ") + kCallCols +
                    " FROM variant_genotypes g WHERE g.site_id IN (" + placeholders(e - b) + ")";
    if (rule.zygosity != CohortRule::Zyg::any) {
      q += " AND g.zygosity = ?";
      p.push_back(I(rule.zygosity == CohortRule::Zyg::het ? 1 : 2));
    }
    if (rule.min_gq) {
      q += " AND g.gq >= ?";
      p.push_back(I(*rule.min_gq));
    }
    q += tag_filter(rule.tags, "g.sample_key", p);
    for (const Row& r : rd_.query(q, p)) {
      VariantCall c;
      read_call(r, 2, c);
      by_sample[r.i(1)].emplace_back(index_of.at(r.i(0)), std::move(c));
    }
  }
  std::vector<int64_t> matching;
  for (const auto& [key, calls] : by_sample)
    if (rule.match == CohortRule::Match::any || calls.size() == variants.size()) matching.push_back(key);
  out.n_matching = int64_t(matching.size());

  std::vector<int64_t> page_keys;
  for (int64_t key : matching)
    if (key > after && int(page_keys.size()) < size + 1) page_keys.push_back(key);
  const bool more = int(page_keys.size()) > size;
  if (more) page_keys.pop_back();
  if (!page_keys.empty()) {
    Params p;
    for (int64_t k : page_keys) p.push_back(I(k));
    std::unordered_map<int64_t, VariantSample> info;
    for (const Row& r : rd_.query(std::string("SELECT ") + kSampleCols +
                                      " FROM variant_samples sm WHERE sm.sample_key IN (" +
                                      placeholders(page_keys.size()) + ")",
                                  p))
      info[r.i(0)] = read_sample(r);
    for (int64_t k : page_keys) {
      const VariantSample& s = info[k];
      CohortMatch m{s.sample_id, s.subject_id, s.tags, {}};
      auto calls = by_sample[k];
      std::sort(calls.begin(), calls.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      for (auto& [idx, call] : calls) {
        call.sample_id = s.sample_id;
        call.subject_id = s.subject_id;
        m.matched.emplace_back(variants[idx], std::move(call));
      }
      out.samples.push_back(std::move(m));
    }
  }
  if (more) out.next_page_token = encode_token('k', fp, {std::to_string(page_keys.back())});
  return out;
}

FrequencyPage VariantStore::frequencies(const VariantKey& variant,
                                        const std::map<std::string, std::string>& tags) const {
  validate_variant_tags(tags);
  const VariantKey k = normalize_variant(variant);
  FrequencyPage out;
  out.n_samples = cohort_size(tags);
  AlleleCounts c;
  if (auto id = site_id(k)) {
    const auto counts = count_sites(rd_, {*id}, tags);
    if (auto it = counts.find(*id); it != counts.end()) c = it->second;
  }
  c.site = k;
  c.n_samples = out.n_samples;
  finish_counts(c);
  out.sites.push_back(c);
  return out;
}

FrequencyPage VariantStore::frequencies(const VariantRegion& region,
                                        const std::map<std::string, std::string>& tags,
                                        const VariantPageRequest& page) const {
  validate_variant_tags(tags);
  const int size = clamp_page(page.page_size);
  const std::string fp = region_fingerprint(region) + '\x1e' + tags_fingerprint(tags);
  const auto tok = decode_token(page.page_token, 'f', fp, 3);
  FrequencyPage out;
  out.n_samples = cohort_size(tags);
  Params p{S(region.chrom), I(region.start), I(region.end)};
  std::string q =
      "SELECT s.site_id, s.pos, s.ref, s.alt FROM variant_sites s WHERE s.chrom = ? AND s.pos >= ? AND s.pos "
      "<= ?";
  if (!tok.empty()) q += after_site(tok, page.page_token, false, p);
  q += " AND EXISTS (SELECT 1 FROM variant_genotypes g WHERE g.site_id = s.site_id" +
       tag_filter(tags, "g.sample_key", p) + ") ORDER BY s.pos, s.ref, s.alt LIMIT ?";
  p.push_back(I(size + 1));
  const auto rows = rd_.query(q, p);
  std::vector<int64_t> ids;
  for (size_t i = 0; i < rows.size() && int(i) < size; ++i) ids.push_back(rows[i].i(0));
  const auto counts = count_sites(rd_, ids, tags);
  for (size_t i = 0; i < ids.size(); ++i) {
    AlleleCounts c;
    if (auto it = counts.find(ids[i]); it != counts.end()) c = it->second;
    c.site = {region.chrom, rows[i].i(1), rows[i].s(2), rows[i].s(3)};
    c.n_samples = out.n_samples;
    finish_counts(c);
    out.sites.push_back(c);
  }
  if (int(rows.size()) > size) {
    const Row& l = rows[size - 1];
    out.next_page_token = encode_token('f', fp, {std::to_string(l.i(1)), l.s(2), l.s(3)});
  }
  return out;
}

}  // namespace omicsd
