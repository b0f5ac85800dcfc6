// Variant keys, regions and sample tags of the variant store (variant_store.hpp): parsing,
// normalisation and validation of what clients send.
#include <htslib/hts.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <optional>
#include <string>

#include "service/stores/variant_store.hpp"
#include "service/stores/variant_store_sql.hpp"

namespace omicsd {
using namespace variant_sql;

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

namespace {
// htslib's name lookup for hts_parse_region: a contig "exists" when the store knows it or, without a
// store (or when the store knows neither reading), when it is not the whole of a text containing ':', so
// the trailing :start-end is parsed. The last name found is the region's chromosome.
struct RegionNameLookup {
  const std::function<bool(const std::string&)>* exists;
  const std::string* text;
  std::string found;
};
int lookup_region_name(void* ctx, const char* name) {
  auto* l = static_cast<RegionNameLookup*>(ctx);
  const std::string n(name);
  const bool ok = l->exists ? (*l->exists)(n) : !(n == *l->text && n.find(':') != std::string::npos);
  if (ok) l->found = n;
  return ok ? 0 : -1;
}

std::optional<VariantRegion> hts_region(const std::string& text,
                                        const std::function<bool(const std::string&)>* exists) {
  RegionNameLookup l{exists, &text, {}};
  int tid = -1;
  hts_pos_t beg = 0, end = 0;
  const char* rest = hts_parse_region(text.c_str(), &tid, &beg, &end, lookup_region_name, &l,
                                      HTS_PARSE_THOUSANDS_SEP | HTS_PARSE_ONE_COORD);
  if (!rest || *rest != '\0' || tid < 0) return std::nullopt;
  return VariantRegion{l.found, int64_t(beg) + 1, end >= HTS_POS_MAX ? INT64_MAX : int64_t(end)};
}
}  // namespace

VariantRegion parse_region(const std::string& text,
                           const std::function<bool(const std::string&)>& contig_exists) {
  auto bad = [&]() {
    return InputError(
        "region '" + text +
        "': expected chrom:start-end (1-based, inclusive), chrom:pos, chrom or {chrom}:start-end");
  };
  if (text.empty()) throw bad();
  const auto colon = text.rfind(':');
  // htslib's rule, as samtools and bcftools apply it: the whole text is tried as a name first, so
  // "HLA-A*01:01:01:01" is the contig; "{HLA-A*01:01:01:01}:100-200" is a range of it; a text that reads
  // both ways against known contigs is ambiguous.
  std::optional<VariantRegion> r;
  if (contig_exists) {
    r = hts_region(text, &contig_exists);
    if (!r && text.front() != '{' && contig_exists(text) && colon != std::string::npos)
      throw InputError("region '" + text + "' is ambiguous: write {" + text + "} for the contig or {" +
                       text.substr(0, colon) + "}:" + text.substr(colon + 1) + " for the range");
  }
  if (!r) r = hts_region(text, nullptr);
  if (!r || r->chrom.empty()) throw bad();
  // Positions must be >= 1: htslib reads a start of 0 as 1, but a client writing 0 has the convention wrong.
  if (r->chrom != text && colon != std::string::npos) {
    std::string start = text.substr(colon + 1, text.find('-', colon) - colon - 1);
    start.erase(std::remove(start.begin(), start.end(), ','), start.end());
    if (!start.empty() && start.find_first_not_of('0') == std::string::npos) throw bad();
  }
  if (r->end < r->start) throw InputError("region '" + text + "': end is before start");
  return *r;
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

}  // namespace omicsd
