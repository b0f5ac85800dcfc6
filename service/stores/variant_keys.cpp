// Variant keys, regions and sample tags of the variant store (variant_store.hpp): parsing,
// normalisation and validation of what clients send.
#include <algorithm>
#include <cctype>
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

}  // namespace omicsd
