// The variant store (variant_store.hpp): schema, VCF ingest and the cohort queries. Portable SQL
// (service/sql_db.hpp) except the DDL of the genotype table, which each backend clusters its own way.
#include "service/variant_store.hpp"

#include <htslib/bgzf.h>
#include <htslib/tbx.h>
#include <htslib/vcf.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "host/io/hts_handles.hpp"
#include "service/sql_db.hpp"

namespace omicsd {
namespace {

using sql::Row;
using sql::Value;
using Params = std::vector<Value>;

Value I(int64_t v) { return Value(v); }
Value S(std::string v) { return Value(std::move(v)); }
Value opt_int(const std::optional<int>& v) { return v ? Value(int64_t(*v)) : Value(nullptr); }

// Statements carry at most this many rows of VALUES / IN items: well under SQLite's and libpq's
// parameter limits, and big enough that a 100k-genotype ingest is ~1,000 statements.
constexpr size_t kBatchRows = 100;
constexpr size_t kInBatch = 500;

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

int clamp_page(int n) { return n <= 0 ? kDefaultVariantPageSize : std::min(n, kMaxVariantPageSize); }

std::string placeholders(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += i ? ",?" : "?";
  return s;
}

// " AND col IN (samples with the tag)" per tag; appends the parameters. Uncorrelated, so SQLite builds
// the key set once per statement (a correlated EXISTS probed the tag index once per genotype row).
std::string tag_filter(const std::map<std::string, std::string>& tags, const std::string& col, Params& p) {
  std::string sqltxt;
  for (const auto& [k, v] : tags) {
    sqltxt += " AND " + col +
              " IN (SELECT t.sample_key FROM variant_sample_tags t WHERE t.tag = ? AND t.value = ?)";
    p.push_back(S(k));
    p.push_back(S(v));
  }
  return sqltxt;
}

std::string tags_fingerprint(const std::map<std::string, std::string>& tags) {
  std::string s;
  for (const auto& [k, v] : tags) s += k + '\x1e' + v + '\x1e';
  return s;
}

bool is_bases(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

void finish_counts(AlleleCounts& c) {
  c.an = 2 * c.n_samples;
  c.af = c.an > 0 ? double(c.ac) / double(c.an) : 0.0;
}

// Columns of the genotype part of a row, starting at column c: gt, zygosity, alt_copies, gq, dp, filters.
void read_call(const Row& r, size_t c, VariantCall& call) {
  call.gt = r.s(c);
  call.zygosity = r.i(c + 1) == 2 ? Zygosity::hom_alt : Zygosity::het;
  call.alt_copies = int(r.i(c + 2));
  if (!r.is_null(c + 3)) call.gq = int(r.i(c + 3));
  if (!r.is_null(c + 4)) call.dp = int(r.i(c + 4));
  call.filters = r.s(c + 5);
}
const char* kCallCols = "g.gt, g.zygosity, g.alt_copies, g.gq, g.dp, g.filters";

std::map<std::string, std::string> parse_tags_json(const std::string& text) {
  std::map<std::string, std::string> tags;
  try {
    const auto j = nlohmann::json::parse(text.empty() ? "{}" : text);
    for (const auto& [k, v] : j.items()) tags[k] = v.is_string() ? v.get<std::string>() : v.dump();
  } catch (const nlohmann::json::exception&) {
  }
  return tags;
}

const char* kSampleCols =
    "sm.sample_key, sm.sample_id, sm.subject_id, sm.run_id, sm.readset_id, sm.reference_id, sm.tags, "
    "sm.source,"
    " sm.vcf_sample, sm.ingested_at, sm.genotypes, sm.all_sites";
VariantSample read_sample(const Row& r) {
  VariantSample s;
  s.sample_id = r.s(1);
  s.subject_id = r.s(2);
  s.run_id = r.s(3);
  s.readset_id = r.s(4);
  s.reference_id = r.s(5);
  s.tags = parse_tags_json(r.s(6));
  s.source = r.s(7);
  s.vcf_sample = r.s(8);
  s.ingested_at = r.i(9);
  s.genotypes = r.i(10);
  s.all_sites = r.i(11) != 0;
  return s;
}

}  // namespace

// ---- keys, regions, tags

bool VariantKey::operator<(const VariantKey& o) const {
  return std::tie(chrom, pos, ref, alt) < std::tie(o.chrom, o.pos, o.ref, o.alt);
}
bool VariantKey::operator==(const VariantKey& o) const {
  return chrom == o.chrom && pos == o.pos && ref == o.ref && alt == o.alt;
}
std::string VariantKey::to_string() const {
  return chrom + ":" + std::to_string(pos) + ":" + ref + ":" + alt;
}

const char* to_string(Zygosity z) { return z == Zygosity::hom_alt ? "HOM_ALT" : "HET"; }

VariantKey normalize_variant(VariantKey k) {
  const std::string what = k.to_string();
  if (k.chrom.empty()) throw InputError("variant " + what + ": empty chromosome");
  if (k.pos < 1) throw InputError("variant " + what + ": position must be >= 1");
  k.ref = upper(std::move(k.ref));
  k.alt = upper(std::move(k.alt));
  if (!is_bases(k.ref) || !is_bases(k.alt))
    throw InputError("variant " + what + ": REF and ALT must be bases (letters), e.g. chr22:123:A:G");
  if (k.ref == k.alt) throw InputError("variant " + what + ": REF equals ALT");
  // Trailing bases shared by both alleles, then leading ones; one base always remains (VCF anchor).
  while (k.ref.size() > 1 && k.alt.size() > 1 && k.ref.back() == k.alt.back())
    k.ref.pop_back(), k.alt.pop_back();
  size_t lead = 0;
  while (k.ref.size() - lead > 1 && k.alt.size() - lead > 1 && k.ref[lead] == k.alt[lead]) ++lead;
  if (lead) {
    k.ref.erase(0, lead);
    k.alt.erase(0, lead);
    k.pos += int64_t(lead);
  }
  return k;
}

namespace {
// A base-10 position; commas allowed. nullopt when not a positive number.
std::optional<int64_t> parse_pos(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), ','), s.end());
  if (s.empty() || s.size() > 15 || !std::all_of(s.begin(), s.end(), ::isdigit)) return std::nullopt;
  const int64_t v = std::stoll(s);
  if (v < 1) return std::nullopt;
  return v;
}
}  // namespace

VariantKey parse_variant(const std::string& text) {
  // Split from the right: chrom:pos:ref:alt, where chrom may contain ':'.
  std::vector<std::string> f;
  std::string rest = text;
  for (int i = 0; i < 3; ++i) {
    const auto c = rest.rfind(':');
    if (c == std::string::npos)
      throw InputError("variant '" + text + "': expected chrom:pos:ref:alt, e.g. chr22:123:A:G");
    f.insert(f.begin(), rest.substr(c + 1));
    rest.resize(c);
  }
  const auto pos = parse_pos(f[0]);
  if (rest.empty() || !pos)
    throw InputError("variant '" + text + "': expected chrom:pos:ref:alt, e.g. chr22:123:A:G");
  return normalize_variant({rest, *pos, f[1], f[2]});
}

VariantRegion parse_region(const std::string& text) {
  auto bad = [&]() {
    return InputError("region '" + text +
                      "': expected chrom:start-end (1-based, inclusive), chrom:pos or chrom");
  };
  if (text.empty()) throw bad();
  const auto c = text.rfind(':');
  if (c == std::string::npos) return {text, 1, INT64_MAX};
  VariantRegion r{text.substr(0, c), 1, INT64_MAX};
  const std::string span = text.substr(c + 1);
  const auto dash = span.find('-');
  const auto a = parse_pos(span.substr(0, dash));
  if (r.chrom.empty() || !a) throw bad();
  r.start = *a;
  if (dash == std::string::npos) {
    r.end = *a;
  } else if (dash + 1 < span.size()) {
    const auto b = parse_pos(span.substr(dash + 1));
    if (!b) throw bad();
    r.end = *b;
  }  // "chrom:start-" runs to the end of the contig
  if (r.end < r.start) throw InputError("region '" + text + "': end is before start");
  return r;
}

void validate_variant_tags(const std::map<std::string, std::string>& tags) {
  for (const auto& [k, v] : tags) {
    const bool key_ok = !k.empty() && k.size() <= 64 && std::all_of(k.begin(), k.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-';
    });
    if (!key_ok) throw InputError("tag key '" + k + "': 1-64 characters of A-Z a-z 0-9 _ . -");
    if (v.size() > 256) throw InputError("tag '" + k + "': value longer than 256 characters");
  }
}

// ---- VCF reading

namespace {
struct ParsedGenotype {
  VariantKey key;
  std::string gt, filters;
  int zygosity = 1, alt_copies = 1;
  std::optional<int> gq, dp;
};

// One FORMAT integer of sample column `col` (Integer, or Float rounded), nullopt when absent/missing.
std::optional<int> format_int(const bcf_hdr_t* hdr, bcf1_t* rec, const char* tag, int col, int32_t** ibuf,
                              int* ni, float** fbuf, int* nf) {
  const int n = bcf_get_format_int32(hdr, rec, tag, ibuf, ni);
  if (n > 0) {
    const int per = n / bcf_hdr_nsamples(hdr);
    const int32_t v = (*ibuf)[col * per];
    if (v == bcf_int32_missing || v == bcf_int32_vector_end) return std::nullopt;
    return int(v);
  }
  if (n == -2) {  // declared Float in this header
    const int m = bcf_get_format_float(hdr, rec, tag, fbuf, nf);
    if (m > 0) {
      const float v = (*fbuf)[col * (m / bcf_hdr_nsamples(hdr))];
      if (bcf_float_is_missing(v) || bcf_float_is_vector_end(v)) return std::nullopt;
      return int(v + 0.5f);
    }
  }
  return std::nullopt;
}
}  // namespace

struct VariantStore::Parsed {
  std::vector<ParsedGenotype> genotypes;  // deduplicated, any order
  std::string vcf_sample;
  int64_t records = 0, skipped_filter = 0, skipped_no_call = 0, duplicates = 0;
};

VariantStore::Parsed VariantStore::read_vcf(const std::string& path, const VariantSampleInfo& info,
                                            const VariantIngestOptions& o) const {
  Parsed out;
  const HtsFilePtr file(bcf_open(path.c_str(), "r"));
  if (!file) throw InputError(path + ": cannot open VCF: " + std::strerror(errno));
  htsFile* fp = file.get();
  // The htslib handles (hts_handles.hpp) and the value buffers bcf_get_* reallocates.
  struct Handles {
    BcfHeaderPtr header;
    BcfRecordPtr record;
    bcf_hdr_t* hdr = nullptr;
    bcf1_t* rec = nullptr;
    int32_t* gt = nullptr;
    int32_t* ibuf = nullptr;
    float* fbuf = nullptr;
    ~Handles() { free(gt), free(ibuf), free(fbuf); }
  } h;
  if (hts_get_format(fp)->category != variant_data)
    throw InputError(path + ": not a VCF or BCF file (" + hts_format_description(hts_get_format(fp)) + ")");
  h.header.reset(bcf_hdr_read(fp));
  h.hdr = h.header.get();
  if (!h.hdr) throw InputError(path + ": unreadable VCF header");
  const int nsamples = bcf_hdr_nsamples(h.hdr);
  int col = -1;
  if (nsamples == 1) {
    col = 0;
  } else {
    for (int i = 0; i < nsamples; ++i)
      if (info.sample_id == h.hdr->samples[i]) col = i;
    if (col < 0)
      throw InputError(path + ": " +
                       (nsamples == 0 ? std::string("has no sample column (sites-only VCF)")
                                      : std::to_string(nsamples) + " sample columns, none named '" +
                                            info.sample_id + "'"));
  }
  out.vcf_sample = h.hdr->samples[col];
  // A BGZF file cut short (a copy interrupted, a full disk) can end exactly between blocks, where
  // htslib sees a clean end of file: the missing EOF marker block is what gives it away.
  BGZF* bz = hts_get_format(fp)->compression == bgzf ? hts_get_bgzfp(fp) : nullptr;
  if (bz && bgzf_check_EOF(bz) == 0)
    throw InputError(path + ": truncated (the BGZF end-of-file marker is missing)");
  h.record.reset(bcf_init());
  h.rec = h.record.get();
  int ngt = 0, ni = 0, nf = 0;
  std::unordered_set<std::string> seen;
  std::string last_where = "the header";
  for (;;) {
    const int r = bcf_read(fp, h.hdr, h.rec);
    const std::string where = path + ": record " + std::to_string(out.records + 1);
    // Undefined contigs/tags are not fatal (htslib adds them to the header, as bcftools does).
    const int fatal = h.rec->errcode & ~(BCF_ERR_CTG_UNDEF | BCF_ERR_TAG_UNDEF);
    if (r == -1 && !fatal && !(bz && bz->errcode)) break;
    if (r < 0 || fatal)
      throw InputError(where + " (after " + last_where + "): malformed or truncated VCF record");
    ++out.records;
    bcf1_t* rec = h.rec;
    if (bcf_unpack(rec, BCF_UN_ALL) < 0) throw InputError(where + ": cannot decode the record");
    const char* chrom = bcf_hdr_id2name(h.hdr, rec->rid);
    const int64_t pos = int64_t(rec->pos) + 1;
    if (pos < 1) throw InputError(where + " (after " + last_where + "): POS must be a number >= 1");
    last_where = std::string(chrom) + ":" + std::to_string(pos);
    bool pass = true;
    std::string filters;
    for (int i = 0; i < rec->d.n_flt; ++i) {
      const char* name = bcf_hdr_int2id(h.hdr, BCF_DT_ID, rec->d.flt[i]);
      if (std::strcmp(name, "PASS") == 0) continue;
      pass = false;
      if (!filters.empty()) filters += ';';
      filters += name;
    }
    if (!pass && !o.all_sites) {
      ++out.skipped_filter;
      continue;
    }
    const int n = bcf_get_genotypes(h.hdr, rec, &h.gt, &ngt);
    if (n <= 0) {  // no GT: nothing to say about the sample here
      ++out.skipped_no_call;
      continue;
    }
    const int ploidy = n / nsamples;
    const int32_t* g = h.gt + col * ploidy;
    std::vector<int> alleles;  // the called ones
    int n_alleles = 0;         // including missing ones: "./1" is HET, not HOM_ALT
    std::string gt_text;
    for (int i = 0; i < ploidy && g[i] != bcf_int32_vector_end; ++i, ++n_alleles) {
      if (i) gt_text += bcf_gt_is_phased(g[i]) ? '|' : '/';
      if (bcf_gt_is_missing(g[i])) {
        gt_text += '.';
        continue;
      }
      const int a = bcf_gt_allele(g[i]);
      if (a < 0 || a >= rec->n_allele)
        throw InputError(where + " (" + last_where + "): GT allele " + std::to_string(a) + " out of range");
      alleles.push_back(a);
      gt_text += std::to_string(a);
    }
    bool stored = false;
    std::optional<int> gq, dp;
    bool have_format = false;
    for (int a = 1; a < rec->n_allele; ++a) {
      const int copies = int(std::count(alleles.begin(), alleles.end(), a));
      if (copies == 0) continue;
      const std::string alt = upper(rec->d.allele[a]);
      const std::string ref = upper(rec->d.allele[0]);
      // Symbolic (<NON_REF>, <DEL>), spanning deletions (*), breakends: not a sequence variant.
      if (!is_bases(alt) || !is_bases(ref) || alt == ref) continue;
      if (!have_format) {
        gq = format_int(h.hdr, rec, "GQ", col, &h.ibuf, &ni, &h.fbuf, &nf);
        dp = format_int(h.hdr, rec, "DP", col, &h.ibuf, &ni, &h.fbuf, &nf);
        have_format = true;
      }
      ParsedGenotype pg;
      try {
        pg.key = normalize_variant({chrom, pos, ref, alt});
      } catch (const InputError& e) {
        throw InputError(where + " (" + last_where + "): " + e.what());
      }
      if (!seen.insert(pg.key.to_string()).second) {
        ++out.duplicates;
        continue;
      }
      pg.gt = gt_text;
      pg.filters = filters;
      pg.alt_copies = copies;
      pg.zygosity = copies == n_alleles ? int(Zygosity::hom_alt) : int(Zygosity::het);
      pg.gq = gq;
      pg.dp = dp;
      out.genotypes.push_back(std::move(pg));
      stored = true;
    }
    if (!stored) ++out.skipped_no_call;
  }
  return out;
}

// ---- the store

VariantStore::VariantStore(sql::Db& db, sql::Db* query_db) : db_(db), rd_(query_db ? *query_db : db) {
  sql::migrate(db_, "variants", schema(db_.dialect()));
}

VariantIngestResult VariantStore::ingest_vcf(const std::string& path, const VariantSampleInfo& info,
                                             const VariantIngestOptions& options, int64_t now_ms) {
  if (info.sample_id.empty()) throw InputError(path + ": ingest needs a sample id");
  if (info.run_id.empty()) throw InputError(path + ": ingest needs a run id");
  validate_variant_tags(info.tags);
  VariantIngestResult res;
  res.sample_id = info.sample_id;
  res.run_id = info.run_id;
  if (!options.force && has_run(info.run_id)) {
    res.already_ingested = true;
    return res;
  }
  // Parse everything before touching the database: a bad file changes nothing and the write lock is
  // held only for the inserts.
  Parsed p = read_vcf(path, info, options);
  res.records = p.records;
  res.skipped_filter = p.skipped_filter;
  res.skipped_no_call = p.skipped_no_call;
  res.duplicates = p.duplicates;
  std::sort(p.genotypes.begin(), p.genotypes.end(),
            [](const ParsedGenotype& a, const ParsedGenotype& b) { return a.key < b.key; });
  nlohmann::json tags_json = nlohmann::json::object();
  for (const auto& [k, v] : info.tags) tags_json[k] = v;

  // Two daemons on one PostgreSQL can pick the same new sample_key / site_id (MAX + 1) at once: the
  // loser's insert violates a key, and the whole transaction is simply run again.
  for (int attempt = 1;; ++attempt) {
    VariantIngestResult r = res;
    try {
      db_.transaction([&] {
        if (!options.force &&
            !db_.query("SELECT 1 FROM variant_ingests WHERE run_id = ?", {S(info.run_id)}).empty()) {
          r.already_ingested = true;
          return;
        }
        // Resolve the sites, per chromosome and batch of positions.
        std::vector<int64_t> ids(p.genotypes.size(), 0);
        std::unordered_map<std::string, int64_t> known;
        for (size_t i = 0; i < p.genotypes.size();) {
          size_t j = i;
          std::vector<Value> params{S(p.genotypes[i].key.chrom)};
          std::set<int64_t> positions;
          while (j < p.genotypes.size() && p.genotypes[j].key.chrom == p.genotypes[i].key.chrom &&
                 (positions.size() < kInBatch || positions.count(p.genotypes[j].key.pos))) {
            positions.insert(p.genotypes[j].key.pos);
            ++j;
          }
          for (int64_t pos : positions) params.push_back(I(pos));
          for (const Row& row :
               db_.query("SELECT site_id, pos, ref, alt FROM variant_sites WHERE chrom = ? AND pos IN (" +
                             placeholders(positions.size()) + ")",
                         params))
            known[VariantKey{p.genotypes[i].key.chrom, row.i(1), row.s(2), row.s(3)}.to_string()] = row.i(0);
          i = j;
        }
        int64_t next_site = db_.query("SELECT COALESCE(MAX(site_id), 0) FROM variant_sites")[0].i(0) + 1;
        std::vector<size_t> fresh;
        for (size_t i = 0; i < p.genotypes.size(); ++i) {
          auto it = known.find(p.genotypes[i].key.to_string());
          if (it != known.end()) {
            ids[i] = it->second;
          } else {
            ids[i] = next_site++;
            fresh.push_back(i);
          }
        }
        r.new_sites = int64_t(fresh.size());
        for (size_t b = 0; b < fresh.size(); b += kBatchRows) {
          const size_t e = std::min(fresh.size(), b + kBatchRows);
          std::string q = "INSERT INTO variant_sites (site_id, chrom, pos, ref, alt) VALUES ";
          Params params;
          for (size_t k = b; k < e; ++k) {
            const auto& g = p.genotypes[fresh[k]];
            q += k == b ? "(?,?,?,?,?)" : ",(?,?,?,?,?)";
            params.insert(params.end(),
                          {I(ids[fresh[k]]), S(g.key.chrom), I(g.key.pos), S(g.key.ref), S(g.key.alt)});
          }
          db_.exec(q, params);
        }

        // The sample row: the same key across re-ingests; its old genotypes and tags go first.
        const auto existing =
            db_.query("SELECT sample_key FROM variant_samples WHERE sample_id = ?", {S(info.sample_id)});
        int64_t key;
        const Params fields{S(info.subject_id),
                            S(info.run_id),
                            S(info.readset_id),
                            S(info.reference_id),
                            S(tags_json.dump()),
                            S(path),
                            S(p.vcf_sample),
                            I(now_ms),
                            I(int64_t(p.genotypes.size())),
                            I(options.all_sites ? 1 : 0)};
        if (!existing.empty()) {
          key = existing[0].i(0);
          r.replaced = true;
          db_.exec("DELETE FROM variant_genotypes WHERE sample_key = ?", {I(key)});
          db_.exec("DELETE FROM variant_sample_tags WHERE sample_key = ?", {I(key)});
          Params up = fields;
          up.push_back(I(key));
          db_.exec(
              "UPDATE variant_samples SET subject_id = ?, run_id = ?, readset_id = ?, reference_id = ?, tags "
              "= ?,"
              " source = ?, vcf_sample = ?, ingested_at = ?, genotypes = ?, all_sites = ? WHERE sample_key = "
              "?",
              up);
        } else {
          key = db_.query("SELECT COALESCE(MAX(sample_key), 0) FROM variant_samples")[0].i(0) + 1;
          Params ins{I(key), S(info.sample_id)};
          ins.insert(ins.end(), fields.begin(), fields.end());
          db_.exec(
              "INSERT INTO variant_samples (sample_key, sample_id, subject_id, run_id, readset_id, "
              "reference_id,"
              " tags, source, vcf_sample, ingested_at, genotypes, all_sites) VALUES "
              "(?,?,?,?,?,?,?,?,?,?,?,?)",
              ins);
        }
        for (const auto& [k, v] : info.tags)
          db_.exec("INSERT INTO variant_sample_tags (tag, value, sample_key) VALUES (?,?,?)",
                   {S(k), S(v), I(key)});

        // Genotypes in key order: B-tree appends rather than scattered page splits where possible.
        std::vector<size_t> order(p.genotypes.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a] < ids[b]; });
        for (size_t b = 0; b < order.size(); b += kBatchRows) {
          const size_t e = std::min(order.size(), b + kBatchRows);
          std::string q =
              "INSERT INTO variant_genotypes (site_id, sample_key, gt, zygosity, alt_copies, gq, dp, "
              "filters) VALUES ";
          Params params;
          for (size_t k = b; k < e; ++k) {
            const auto& g = p.genotypes[order[k]];
            q += k == b ? "(?,?,?,?,?,?,?,?)" : ",(?,?,?,?,?,?,?,?)";
            params.insert(params.end(),
                          {I(ids[order[k]]), I(key), S(g.gt), I(g.zygosity), I(g.alt_copies), opt_int(g.gq),
                           opt_int(g.dp), g.filters.empty() ? Value(nullptr) : S(g.filters)});
          }
          db_.exec(q, params);
        }
        r.genotypes = int64_t(p.genotypes.size());
        db_.exec(
            "INSERT INTO variant_ingests (run_id, sample_id, source, ingested_at, genotypes) VALUES "
            "(?,?,?,?,?)"
            " ON CONFLICT (run_id) DO UPDATE SET sample_id = excluded.sample_id, source = excluded.source,"
            " ingested_at = excluded.ingested_at, genotypes = excluded.genotypes",
            {S(info.run_id), S(info.sample_id), S(path), I(now_ms), I(r.genotypes)});
      });
      return r;
    } catch (const sql::ConstraintError&) {
      if (attempt >= 5) throw;
    }
  }
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
