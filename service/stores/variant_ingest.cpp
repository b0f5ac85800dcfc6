// VCF ingest of the variant store (variant_store.hpp): reads one sample's genotypes from a VCF/BCF
// (htslib) and writes them in batched statements, idempotent per run.
#include <htslib/bgzf.h>
#include <htslib/vcf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "host/io/hts_handles.hpp"
#include "service/stores/variant_store.hpp"
#include "service/stores/variant_store_sql.hpp"

namespace omicsd {
using namespace variant_sql;

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

}  // namespace omicsd
