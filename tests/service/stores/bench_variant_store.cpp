// Variant store benchmark (scripts/bench-store.sh; not a test): generates a synthetic cohort straight
// into the store's SQLite schema, then times the store's own queries (VariantStore, and over HTTP
// through the real routes and client).
//
// The schema is created by VariantStore itself; only the bulk load bypasses it (raw sqlite3, journal
// off, rows in primary-key order, the by-sample index dropped during the load and rebuilt after),
// because ingesting 10,000 VCFs one by one would take hours here. The rows are what ingest_vcf
// writes: one site per ALT, one genotype per carrier, samples with tags, ingests recorded.
//
// Allele-frequency spectrum: half the sites from the neutral spectrum (allele count k over the 2N
// haplotypes with P(k) ~ 1/k, so AF from 1/2N to ~1), half from an excess of rare alleles (k = 1..19,
// as population growth produces). Carriers are drawn by haplotype, so genotypes follow Hardy-Weinberg
// (a sample holding both haplotypes is HOM_ALT). Sites are generated in genome order until the
// samples hold sites_per_sample genotypes on average.
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "service/http/http_client.hpp"
#include "service/http/http_server.hpp"
#include "service/db/sql_db.hpp"
#include "service/stores/variant_routes.hpp"
#include "service/stores/variant_store.hpp"

using namespace omicsd;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

namespace {

double secs_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
// CPU seconds of this process so far (the machine is shared: wall time alone says little).
double cpu_secs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

void check(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "bench: %s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}
void exec(sqlite3* db, const std::string& sql) {
  check(db, sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), sql.c_str());
}

// Multi-row INSERT of `cols` columns, `rows` at a time (one step per batch: ~2x the rows/s of
// single-row statements).
class BulkInsert {
 public:
  BulkInsert(sqlite3* db, const std::string& head, int cols, int rows) : db_(db), cols_(cols), rows_(rows) {
    std::string tuple = "(";
    for (int c = 0; c < cols; ++c) tuple += c ? ",?" : "?";
    tuple += ")";
    std::string q = head + " VALUES ";
    for (int r = 0; r < rows; ++r) q += (r ? "," : "") + tuple;
    check(db, sqlite3_prepare_v2(db, q.c_str(), -1, &full_, nullptr), "prepare");
    single_sql_ = head + " VALUES " + tuple;
    check(db, sqlite3_prepare_v2(db, single_sql_.c_str(), -1, &one_, nullptr), "prepare");
  }
  ~BulkInsert() {
    flush();
    sqlite3_finalize(full_);
    sqlite3_finalize(one_);
  }
  // Values of one row: int64 or text (empty optional text = NULL).
  struct V {
    bool is_int;
    int64_t i;
    const char* s;
  };
  void add(std::initializer_list<V> row) {
    pending_.insert(pending_.end(), row.begin(), row.end());
    if (int(pending_.size()) == cols_ * rows_) {
      bind(full_, 0, pending_.size());
      step(full_);
      pending_.clear();
    }
  }
  void flush() {
    for (size_t r = 0; r < pending_.size(); r += size_t(cols_)) {
      bind(one_, r, size_t(cols_));
      step(one_);
    }
    pending_.clear();
  }

 private:
  void bind(sqlite3_stmt* st, size_t from, size_t n) {
    for (size_t k = 0; k < n; ++k) {
      const V& v = pending_[from + k];
      if (v.is_int)
        sqlite3_bind_int64(st, int(k + 1), v.i);
      else if (v.s)
        sqlite3_bind_text(st, int(k + 1), v.s, -1, SQLITE_STATIC);  // alive until the step
      else
        sqlite3_bind_null(st, int(k + 1));
    }
  }
  void step(sqlite3_stmt* st) {
    check(db_, sqlite3_step(st), "insert");
    sqlite3_reset(st);
  }
  sqlite3* db_;
  int cols_, rows_;
  sqlite3_stmt* full_ = nullptr;
  sqlite3_stmt* one_ = nullptr;
  std::string single_sql_;
  std::vector<V> pending_;
};

struct Options {
  std::string db;
  int samples = 10000;
  int64_t sites_per_sample = 100000;
  int queries = 2000;
  uint32_t seed = 42;
  bool load = true;
  bool http = true;
};

struct Site {
  std::string chrom, ref, alt;
  int64_t pos;
  int carriers;
};

// GRCh38 autosome + X lengths (Mb, rounded): where the sites are laid out.
const std::vector<std::pair<std::string, int64_t>> kChroms = {
    {"chr1", 248},  {"chr2", 242},  {"chr3", 198},  {"chr4", 190},  {"chr5", 181},  {"chr6", 170},
    {"chr7", 159},  {"chr8", 145},  {"chr9", 138},  {"chr10", 133}, {"chr11", 135}, {"chr12", 133},
    {"chr13", 114}, {"chr14", 107}, {"chr15", 102}, {"chr16", 90},  {"chr17", 83},  {"chr18", 80},
    {"chr19", 58},  {"chr20", 64},  {"chr21", 46},  {"chr22", 50},  {"chrX", 156}};

// Allele count of a new site (see the top of the file).
int draw_allele_count(std::mt19937_64& rng, int haplotypes) {
  std::uniform_real_distribution<double> u(0, 1);
  const double top = u(rng) < 0.5 ? 20.0 : double(haplotypes);
  return std::max(1, std::min(haplotypes - 1, int(std::exp(u(rng) * std::log(top)))));
}

void load(const Options& o, std::vector<Site>* sample_sites) {
  const auto t0 = Clock::now();
  std::filesystem::remove(o.db);
  std::filesystem::remove(o.db + "-wal");
  std::filesystem::remove(o.db + "-shm");
  {  // the store's schema, made by the store
    auto db = sql::open_db("sqlite:" + o.db, "variant store");
    VariantStore store(*db);
  }
  sqlite3* db = nullptr;
  check(db, sqlite3_open(o.db.c_str(), &db), "open");
  exec(db,
       "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA locking_mode=EXCLUSIVE;"
       " PRAGMA cache_size=-1000000; PRAGMA threads=2");
  // Keep the store's index definition, drop it for the load, rebuild it after.
  std::string index_sql;
  {
    sqlite3_stmt* st = nullptr;
    check(db,
          sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = 'variant_genotypes_by_sample'",
                             -1, &st, nullptr),
          "index");
    if (sqlite3_step(st) == SQLITE_ROW) index_sql = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
  }
  if (index_sql.empty()) {
    std::fprintf(stderr, "bench: the store has no variant_genotypes_by_sample index\n");
    std::exit(1);
  }
  exec(db, "DROP INDEX variant_genotypes_by_sample; BEGIN");

  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> u(0, 1);
  const int haps = 2 * o.samples;
  // Mean carriers per site, to spread the sites over the genome.
  double mean_carriers = 0;
  for (int i = 0; i < 20000; ++i) {
    const double p = double(draw_allele_count(rng, haps)) / haps;
    mean_carriers += o.samples * (1 - (1 - p) * (1 - p));
  }
  mean_carriers /= 20000;
  const int64_t target = int64_t(o.samples) * o.sites_per_sample;
  const double expected_sites = double(target) / mean_carriers;
  int64_t genome = 0;
  for (const auto& c : kChroms) genome += c.second * 1'000'000;
  const double mean_gap = 0.95 * double(genome) / expected_sites;
  std::fprintf(
      stderr, "bench: %d samples x %lld sites each = %lld genotypes; ~%.0f sites (mean %.0f carriers/site)\n",
      o.samples, (long long)o.sites_per_sample, (long long)target, expected_sites, mean_carriers);

  BulkInsert sites(db, "INSERT INTO variant_sites (site_id, chrom, pos, ref, alt)", 5, 50);
  BulkInsert gts(
      db, "INSERT INTO variant_genotypes (site_id, sample_key, gt, zygosity, alt_copies, gq, dp, filters)", 8,
      50);
  std::vector<int64_t> per_sample(size_t(o.samples) + 1, 0);
  const char* bases = "ACGT";
  int64_t total = 0, site_id = 0;
  size_t chrom = 0;
  int64_t pos = 0;
  std::vector<int> haplist;
  auto last_report = Clock::now();
  while (total < target && chrom < kChroms.size()) {
    pos += 1 + int64_t(u(rng) * 2 * mean_gap);
    if (pos > kChroms[chrom].second * 1'000'000) {
      ++chrom;
      pos = 1 + int64_t(u(rng) * mean_gap);
      if (chrom == kChroms.size()) break;
    }
    Site s{kChroms[chrom].first, "", "", pos, 0};
    const int r = int(rng() % 4);
    const double kind = u(rng);
    if (kind < 0.9) {  // SNV
      s.ref = std::string(1, bases[r]);
      s.alt = std::string(1, bases[(r + 1 + rng() % 3) % 4]);
    } else if (kind < 0.95) {  // deletion of 1-3 bases
      s.ref = std::string(1, bases[r]);
      for (int i = 0, n = 1 + int(rng() % 3); i < n; ++i) s.ref += bases[rng() % 4];
      s.alt = s.ref.substr(0, 1);
    } else {  // insertion of 1-3 bases
      s.ref = std::string(1, bases[r]);
      s.alt = s.ref;
      for (int i = 0, n = 1 + int(rng() % 3); i < n; ++i) s.alt += bases[rng() % 4];
    }
    // Carrier haplotypes by geometric skips (cost ~ carriers, not samples).
    const double p = double(draw_allele_count(rng, haps)) / haps;
    haplist.clear();
    const double lq = std::log1p(-p);
    for (int64_t h = -1;;) {
      h += 1 + int64_t(std::floor(std::log(1 - u(rng)) / lq));
      if (h >= haps) break;
      haplist.push_back(int(h));
    }
    if (haplist.empty()) continue;  // the store only knows sites someone carries
    ++site_id;
    sites.add({{true, site_id, nullptr},
               {false, 0, s.chrom.c_str()},
               {true, pos, nullptr},
               {false, 0, s.ref.c_str()},
               {false, 0, s.alt.c_str()}});
    sites.flush();  // the strings above live in this iteration only
    for (size_t i = 0; i < haplist.size(); ++i) {
      const int key = haplist[i] / 2 + 1;
      const bool hom = i + 1 < haplist.size() && haplist[i + 1] / 2 + 1 == key;
      if (hom) ++i;
      const int gq = hom ? 99 : 20 + int(rng() % 80);
      const int dp = 10 + int(rng() % 50);
      gts.add({{true, site_id, nullptr},
               {true, key, nullptr},
               {false, 0, hom ? "1/1" : "0/1"},
               {true, hom ? 2 : 1, nullptr},
               {true, hom ? 2 : 1, nullptr},
               {true, gq, nullptr},
               {true, dp, nullptr},
               {false, 0, nullptr}});
      ++per_sample[size_t(key)];
      ++total;
      ++s.carriers;
    }
    // Query sites: a uniform sample of all sites (so mostly rare ones, as the spectrum is), plus
    // common ones (carried by > 1/4 of the samples) marked by their carrier count.
    const bool common = s.carriers > o.samples / 4;
    if (rng() % 500 == 0 || (common && rng() % 20 == 0)) {
      if (!common) s.carriers = -s.carriers;  // negative: drawn uniformly
      sample_sites->push_back(s);
    }
    if (secs_since(last_report) > 30) {
      std::fprintf(stderr, "bench: %lld genotypes (%.0f%%), %lld sites, %.0f s\n", (long long)total,
                   100.0 * double(total) / double(target), (long long)site_id, secs_since(t0));
      last_report = Clock::now();
    }
  }
  gts.flush();
  const double t_genotypes = secs_since(t0);

  BulkInsert samples(
      db,
      "INSERT INTO variant_samples (sample_key, sample_id, subject_id, run_id, readset_id, reference_id,"
      " tags, source, vcf_sample, ingested_at, genotypes, all_sites)",
      12, 1);
  BulkInsert tags(db, "INSERT INTO variant_sample_tags (tag, value, sample_key)", 3, 1);
  BulkInsert ingests(db, "INSERT INTO variant_ingests (run_id, sample_id, source, ingested_at, genotypes)", 5,
                     1);
  const char* cohorts[] = {"A", "B", "C", "D"};
  for (int k = 1; k <= o.samples; ++k) {
    char id[32], subj[32], run[32];
    std::snprintf(id, sizeof id, "BS%06d", k);
    std::snprintf(subj, sizeof subj, "SUBJ%06d", k);
    std::snprintf(run, sizeof run, "bench-run-%06d", k);
    const std::string cohort = cohorts[k % 4], sex = k % 2 ? "F" : "M";
    const std::string tj = json{{"cohort", cohort}, {"sex", sex}}.dump();
    samples.add({{true, k, nullptr},
                 {false, 0, id},
                 {false, 0, subj},
                 {false, 0, run},
                 {false, 0, "rs-bench"},
                 {false, 0, "ref-bench"},
                 {false, 0, tj.c_str()},
                 {false, 0, "generated"},
                 {false, 0, id},
                 {true, 1'700'000'000'000, nullptr},
                 {true, per_sample[size_t(k)], nullptr},
                 {true, 0, nullptr}});
    tags.add({{false, 0, "cohort"}, {false, 0, cohort.c_str()}, {true, k, nullptr}});
    tags.add({{false, 0, "sex"}, {false, 0, sex.c_str()}, {true, k, nullptr}});
    ingests.add({{false, 0, run},
                 {false, 0, id},
                 {false, 0, "generated"},
                 {true, 1'700'000'000'000, nullptr},
                 {true, per_sample[size_t(k)], nullptr}});
    samples.flush(), tags.flush(), ingests.flush();
  }
  samples.flush(), tags.flush(), ingests.flush(), sites.flush(), gts.flush();
  exec(db, "COMMIT");
  const auto t1 = Clock::now();
  exec(db, index_sql);
  const double t_index = secs_since(t1);
  exec(db, "PRAGMA journal_mode=WAL");
  sqlite3_close_v2(db);  // the inserters' statements are finalized when they go out of scope
  const double size_gb = double(std::filesystem::file_size(o.db)) / 1e9;
  std::printf(
      "load: %lld genotypes, %lld sites, %d samples: rows %.1f s (%.2f M genotypes/s), by-sample index"
      " %.1f s, total %.1f s wall, %.1f s CPU, %.1f GB\n",
      (long long)total, (long long)site_id, o.samples, t_genotypes, double(total) / t_genotypes / 1e6,
      t_index, secs_since(t0), cpu_secs(), size_gb);
}

struct Stats {
  std::vector<double> ms;
  void add(double v) { ms.push_back(v); }
  std::string str() {
    if (ms.empty()) return "n=0";
    std::sort(ms.begin(), ms.end());
    auto q = [&](double f) { return ms[std::min(ms.size() - 1, size_t(f * double(ms.size())))]; };
    char buf[160];
    std::snprintf(buf, sizeof buf, "n=%zu p50 %.2f ms  p99 %.2f ms  max %.2f ms", ms.size(), q(0.5), q(0.99),
                  ms.back());
    return buf;
  }
};

template <class F>
double time_ms(F&& f) {
  const auto t = Clock::now();
  f();
  return secs_since(t) * 1000;
}

void run_queries(const Options& o, std::vector<Site> sites) {
  auto db = sql::open_db("sqlite:" + o.db, "variant store");
  VariantStore store(*db);
  const int64_t n_samples = store.sample_count();
  if (sites.empty()) {  // query-only run: pick sites from the store
    for (const auto& r :
         db->query("SELECT chrom, pos, ref, alt FROM variant_sites WHERE site_id % 997 = 0 LIMIT 5000"))
      sites.push_back({r.s(0), r.s(2), r.s(3), r.i(1), -1});
  }
  std::mt19937_64 rng(o.seed + 1);
  std::shuffle(sites.begin(), sites.end(), rng);
  std::vector<Site> common, uniform;
  for (const auto& s : sites) (s.carriers > n_samples / 4 ? common : uniform).push_back(s);
  if (uniform.empty()) uniform = sites;
  std::printf(
      "queries: %lld samples in the store, %zu uniformly drawn query sites, %zu common ones (> %lld "
      "carriers)\n",
      (long long)n_samples, uniform.size(), common.size(), (long long)(n_samples / 4));
  auto key = [](const Site& s) { return VariantKey{s.chrom, s.pos, s.ref, s.alt}; };

  Stats carriers, carriers_common, all_pages, region, region_sample, cohort_any, cohort_all, freq,
      freq_region;
  int64_t carriers_seen = 0;
  for (int i = 0; i < o.queries; ++i) {  // random sites: mostly rare, as the spectrum is
    const Site& s = uniform[size_t(i) % uniform.size()];
    carriers.add(time_ms([&] { carriers_seen += int64_t(store.carriers(key(s), {}).carriers.size()); }));
  }
  for (int i = 0; i < std::min<int>(o.queries, 500) && !common.empty(); ++i)
    carriers_common.add(time_ms([&] { store.carriers(key(common[size_t(i) % common.size()]), {}); }));
  for (int i = 0; i < 20 && !common.empty(); ++i)  // every carrier of a common site, 1,000 per page
    all_pages.add(time_ms([&] {
      VariantPageRequest p{1000, ""};
      for (;;) {
        const auto page = store.carriers(key(common[size_t(i) % common.size()]), p);
        if (page.next_page_token.empty()) break;
        p.page_token = page.next_page_token;
      }
    }));
  for (int i = 0; i < 200; ++i) {
    const Site& s = uniform[size_t(i) % uniform.size()];
    const VariantRegion r{s.chrom, s.pos, s.pos + 100'000};  // 100 kb: first page of genotypes
    region.add(time_ms([&] { store.region(r, std::nullopt, {}); }));
    const std::string sample = "BS" + std::string(6 - std::to_string(1 + i % n_samples).size(), '0') +
                               std::to_string(1 + i % n_samples);
    const VariantRegion big{s.chrom, s.pos, s.pos + 1'000'000};  // 1 Mb of one sample
    region_sample.add(time_ms([&] { store.region(big, sample, {}); }));
    freq_region.add(time_ms([&] { store.frequencies(r, {}, {}); }));
    freq.add(time_ms([&] { store.frequencies(key(s), {{"cohort", "B"}}); }));
  }
  for (int i = 0; i < 200; ++i) {
    CohortRule rule;
    for (int v = 0; v < 5; ++v) rule.variants.push_back(key(uniform[size_t(i * 5 + v) % uniform.size()]));
    if (!common.empty()) rule.variants.push_back(key(common[size_t(i) % common.size()]));
    rule.zygosity = CohortRule::Zyg::any;
    rule.min_gq = 30;
    rule.tags = {{"cohort", "A"}};
    cohort_any.add(time_ms([&] { store.cohort(rule, {}); }));
    rule.match = CohortRule::Match::all;
    rule.tags.clear();
    cohort_all.add(time_ms([&] { store.cohort(rule, {}); }));
  }
  std::printf("carriers, random site (first page of 100):       %s  (mean %.1f carriers returned)\n",
              carriers.str().c_str(), double(carriers_seen) / o.queries);
  std::printf("carriers, common site (AF > ~12%%, first page):    %s\n", carriers_common.str().c_str());
  std::printf("carriers, common site, every page of 1000:        %s\n", all_pages.str().c_str());
  std::printf("region 100 kb, all samples (first page):          %s\n", region.str().c_str());
  std::printf("region 1 Mb, one sample (first page):             %s\n", region_sample.str().c_str());
  std::printf("frequencies of a site in cohort B:                %s\n", freq.str().c_str());
  std::printf("frequencies of a 100 kb region (first page):      %s\n", freq_region.str().c_str());
  std::printf("cohort rule, 6 variants any, min_gq 30, cohort A: %s\n", cohort_any.str().c_str());
  std::printf("cohort rule, 6 variants all:                      %s\n", cohort_all.str().c_str());

  if (!o.http) return;
  http::Router router;
  add_variant_routes(router, store);
  http::HttpServerOptions so;
  so.threads = 2;
  http::HttpServer server(so, std::move(router));
  server.start();
  HttpClientOptions co;
  co.base_url = "http://127.0.0.1:" + std::to_string(server.port());
  HttpClient client(co);
  Stats http_carriers;
  for (int i = 0; i < o.queries; ++i) {
    const Site& s = uniform[size_t(i) % uniform.size()];
    const std::string path =
        "/v1/variants?variant=" + s.chrom + ":" + std::to_string(s.pos) + ":" + s.ref + ":" + s.alt;
    http_carriers.add(time_ms([&] { client.get_json(path); }));
  }
  std::printf("HTTP GET /v1/variants carriers (new connection each): %s\n", http_carriers.str().c_str());
  server.stop();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--db")
      o.db = next();
    else if (a == "--samples")
      o.samples = std::stoi(next());
    else if (a == "--sites-per-sample")
      o.sites_per_sample = std::stoll(next());
    else if (a == "--queries")
      o.queries = std::stoi(next());
    else if (a == "--seed")
      o.seed = uint32_t(std::stoul(next()));
    else if (a == "--query-only")
      o.load = false;
    else if (a == "--no-http")
      o.http = false;
    else {
      std::fprintf(
          stderr,
          "usage: bench_variant_store --db FILE [--samples N] [--sites-per-sample S] [--queries Q] [--seed X]"
          " [--query-only] [--no-http]\n");
      return 2;
    }
  }
  if (o.db.empty() || o.samples < 1 || o.sites_per_sample < 1 || o.queries < 1) {
    std::fprintf(stderr, "bench: --db is required; counts must be positive\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);  // no access log line per HTTP query
  std::vector<Site> sites;
  if (o.load) load(o, &sites);
  run_queries(o, std::move(sites));
  return 0;
}
