#pragma once
// The variant store: the genotypes of every ingested germline VCF, keyed by sample, answering cohort
// questions ("which participants carry chr22:123 A>G?"). Works on the embedded SQLite default and on
// a shared PostgreSQL through sql::Db with the same SQL (docs/api.md "Variants", docs/architecture.md).
//
// Model (tables prefixed variant_ so they can share a database with the other stores):
//   variant_samples(sample_key, sample_id, subject_id, run_id, readset_id, reference_id, tags, ...)
//   variant_sample_tags(tag, value, sample_key)   one row per tag: tag filters are index lookups
//   variant_sites(site_id, chrom, pos, ref, alt)  one row per biallelic site (multi-allelic records
//                                                  are split, one site per ALT)
//   variant_genotypes(site_id, sample_key, gt, zygosity, alt_copies, gq, dp, filters)
//       primary key (site_id, sample_key), clustered (SQLite WITHOUT ROWID; PostgreSQL covering
//       INCLUDE), so the carriers of a site are one contiguous range scan; an index on
//       (sample_key, site_id) makes replacing or deleting one sample proportional to its own size.
//   variant_ingests(run_id, sample_id, ...)        every run ever ingested (idempotency, catch-up)
//
// Only carriers are stored: a germline VCF lists variant sites, so a sample without a genotype at a
// site is hom-ref there. Allele counts follow from that: AN = 2 x samples in the (filtered) cohort,
// AC = sum of alt copies, AF = AC / AN (diploid assumption; haploid calls count one copy).
//
// Alleles are upper-cased and trimmed to their minimal form (common suffix, then common prefix, one
// base kept) on ingest and in queries alike, so a split multi-allelic site (ATT>AT) is found under the
// same key as a biallelic record of it (AT>A). Positions are 1-based like VCF and bcftools regions.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "host/common/error.hpp"

namespace omicsd {

namespace sql {
class Db;
}

// Who a VCF belongs to; the daemon fills it from the COMPLETE run.
struct VariantSampleInfo {
  std::string sample_id;  // the key: a later ingest of the same sample_id replaces this one
  std::string subject_id;
  std::string run_id;
  std::string readset_id;
  std::string reference_id;
  std::map<std::string, std::string> tags;  // cohort labels (study, site, consent, ...)
};

struct VariantIngestOptions {
  bool all_sites = false;  // keep genotypes of records whose FILTER is not PASS (or '.') too
  bool force = false;      // ingest even when this run_id was ingested before
};

struct VariantIngestResult {
  std::string sample_id;
  std::string run_id;
  int64_t records = 0;            // VCF records read
  int64_t genotypes = 0;          // genotypes stored (one per carried ALT)
  int64_t new_sites = 0;          // sites the store did not know yet
  int64_t skipped_filter = 0;     // records dropped for FILTER (all_sites off)
  int64_t skipped_no_call = 0;    // hom-ref, missing GT, gVCF reference blocks, symbolic-only ALTs
  int64_t duplicates = 0;         // the same site twice in the VCF: the first record wins
  bool replaced = false;          // an earlier ingest of the sample was replaced
  bool already_ingested = false;  // run_id was ingested before: nothing was done
};

struct VariantSample {
  std::string sample_id, subject_id, run_id, readset_id, reference_id;
  std::map<std::string, std::string> tags;
  std::string source;      // the VCF ingested
  std::string vcf_sample;  // its sample column
  int64_t ingested_at = 0;
  int64_t genotypes = 0;
  bool all_sites = false;
};

// One biallelic site, 1-based pos.
struct VariantKey {
  std::string chrom;
  int64_t pos = 0;
  std::string ref, alt;
  bool operator<(const VariantKey& o) const;
  bool operator==(const VariantKey& o) const;
  std::string to_string() const;  // chrom:pos:ref:alt
};

// Upper-cases and trims to the minimal representation (see the top of this file); throws InputError
// for an empty chromosome, pos < 1, empty or non-base alleles, or ref == alt.
VariantKey normalize_variant(VariantKey k);
// "chrom:pos:ref:alt" (the chromosome may itself contain ':'); normalised. InputError when malformed.
VariantKey parse_variant(const std::string& text);

// chrom:start-end, 1-based inclusive (bcftools style); "chrom:pos" is one base, "chrom" the whole
// contig. Commas in numbers are accepted (chr1:1,000-2,000). Parsed by htslib's hts_parse_region, so
// names with ':' (HLA-A*01:01:01:01) follow samtools' rule: {name}:start-end braces, and with
// contig_exists the whole text is looked up as a name first (InputError when it reads both ways).
struct VariantRegion {
  std::string chrom;
  int64_t start = 1;
  int64_t end = INT64_MAX;
};
VariantRegion parse_region(const std::string& text,
                           const std::function<bool(const std::string&)>& contig_exists = {});

enum class Zygosity { het = 1, hom_alt = 2 };
const char* to_string(Zygosity z);  // "HET", "HOM_ALT"

// A sample's genotype at one site.
struct VariantCall {
  std::string sample_id, subject_id;
  std::string gt;  // as written in the VCF (allele numbers of the original record)
  Zygosity zygosity = Zygosity::het;
  int alt_copies = 1;  // copies of this site's ALT
  std::optional<int> gq, dp;
  std::string filters;  // "" for PASS/'.', else the record's FILTER (only with all_sites)
};

struct AlleleCounts {
  VariantKey site;
  int64_t ac = 0, an = 0;
  double af = 0;  // 0 when an == 0
  int64_t n_het = 0, n_hom_alt = 0;
  int64_t n_samples = 0;  // samples in the cohort the counts are over (AN = 2 x n_samples)
};

// Paging: page_size is clamped to [1, kMaxVariantPageSize] (0 = kDefaultVariantPageSize); tokens are
// opaque and tied to the kind of query (a carriers token is refused by a region query).
inline constexpr int kDefaultVariantPageSize = 100;
inline constexpr int kMaxVariantPageSize = 1000;
struct VariantPageRequest {
  int page_size = 0;
  std::string page_token;
};

struct CarrierPage {
  bool site_known = false;            // false: no sample in the store has ever carried the variant
  AlleleCounts counts;                // over the whole store
  std::vector<VariantCall> carriers;  // in store order (ingestion order of the samples)
  std::string next_page_token;        // "" on the last page
};

struct RegionGenotype {
  VariantKey site;
  VariantCall call;
};
struct RegionPage {
  std::vector<RegionGenotype> genotypes;  // ordered by pos, ref, alt, then store order of samples
  std::string next_page_token;
};

struct CohortRule {
  std::vector<VariantKey> variants;  // 1..kMaxCohortVariants; duplicates count once
  enum class Match { any, all } match = Match::any;
  enum class Zyg { any, het, hom_alt } zygosity = Zyg::any;
  std::optional<int> min_gq;                // a genotype without GQ never passes a min_gq
  std::map<std::string, std::string> tags;  // the sample must have every tag with this value
};
inline constexpr size_t kMaxCohortVariants = 1000;

struct CohortMatch {
  std::string sample_id, subject_id;
  std::map<std::string, std::string> tags;
  std::vector<std::pair<VariantKey, VariantCall>> matched;  // the rule's variants this sample carries
};
struct CohortPage {
  int64_t n_matching = 0;            // samples matching the rule (all pages)
  int64_t n_cohort = 0;              // samples passing the tag filter (the denominator of the counts)
  std::vector<AlleleCounts> counts;  // per rule variant over the tag-filtered cohort (any zygosity/GQ)
  std::vector<CohortMatch> samples;  // this page, in store order
  std::string next_page_token;
};

struct FrequencyPage {
  int64_t n_samples = 0;
  std::vector<AlleleCounts> sites;  // sites with AC > 0 in the cohort, ordered by pos, ref, alt
  std::string next_page_token;
};

struct SamplePage {
  std::vector<VariantSample> samples;  // store order
  std::string next_page_token;
};

class VariantStore {
 public:
  // Applies the schema (sql::migrate component "variants"). Ingests and deletes write through `db`;
  // queries read through `query_db` when given: a second connection to the same database, so queries
  // are not held up by an ingest's long transaction (SQLite WAL readers see the last commit). Both
  // must outlive the store.
  explicit VariantStore(sql::Db& db, sql::Db* query_db = nullptr);

  // Reads the VCF/BCF (plain, bgzipped) with htslib and stores the genotypes of the sample column
  // (the only one, or the one named info.sample_id) in one transaction, replacing any earlier
  // genotypes of info.sample_id. Keeps PASS/'.' records (all records with all_sites) and, per ALT,
  // genotypes carrying it; skips hom-ref and missing genotypes, gVCF reference blocks and symbolic
  // ALTs (<NON_REF>, <*>, <DEL>, *). A run_id ingested before returns already_ingested and changes
  // nothing (unless options.force). Throws InputError naming the file (and record) for unreadable or
  // malformed input; the store is then unchanged. now: unix ms.
  VariantIngestResult ingest_vcf(const std::string& path, const VariantSampleInfo& info,
                                 const VariantIngestOptions& options, int64_t now_ms);

  bool has_run(const std::string& run_id) const;
  // Every run id ever ingested (also of samples replaced or deleted since): the daemon ingests the
  // COMPLETE germline runs missing here after a restart.
  std::set<std::string> ingested_runs() const;

  std::optional<VariantSample> get_sample(const std::string& sample_id) const;
  // Optional tag filter (every tag must match).
  SamplePage list_samples(const VariantPageRequest& page,
                          const std::map<std::string, std::string>& tags = {}) const;
  // Removes the sample and its genotypes (its runs stay recorded as ingested). False when unknown.
  bool delete_sample(const std::string& sample_id);
  int64_t sample_count() const;

  // The samples carrying the variant, with the store-wide allele counts of the site.
  CarrierPage carriers(const VariantKey& variant, const VariantPageRequest& page) const;
  // Genotypes of the sites in the region, of every sample or only sample_id (an unknown sample gives
  // an empty page; the routes answer 404 for it first).
  // Whether any site of the store lies on chrom (region strings look names up with it).
  bool has_chrom(const std::string& chrom) const;
  RegionPage region(const VariantRegion& region, const std::optional<std::string>& sample_id,
                    const VariantPageRequest& page) const;
  CohortPage cohort(const CohortRule& rule, const VariantPageRequest& page) const;
  // Allele counts of one site (sites holds it even when AC is 0) or of every carried site of a region,
  // over the samples having all `tags`.
  FrequencyPage frequencies(const VariantKey& variant, const std::map<std::string, std::string>& tags) const;
  FrequencyPage frequencies(const VariantRegion& region, const std::map<std::string, std::string>& tags,
                            const VariantPageRequest& page) const;

 private:
  struct Parsed;
  Parsed read_vcf(const std::string& path, const VariantSampleInfo& info,
                  const VariantIngestOptions& o) const;
  std::optional<int64_t> site_id(const VariantKey& k) const;
  int64_t cohort_size(const std::map<std::string, std::string>& tags) const;

  sql::Db& db_;  // writes
  sql::Db& rd_;  // queries (db_ unless a query connection was given)
};

// Sample tags: keys of 1..64 characters [A-Za-z0-9_.-], values of up to 256 characters. InputError
// otherwise (used by ingest and by the routes for ?tag= filters).
void validate_variant_tags(const std::map<std::string, std::string>& tags);

}  // namespace omicsd
