// refget v2 digests and sequence reads (refget_sequence.hpp).
#include "service/stores/refget_sequence.hpp"

#include <htslib/faidx.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>

#include "host/common/error.hpp"

namespace omicsd {
namespace {

constexpr uint64_t kPiece = 1 << 20;

struct FaiCloser {
  void operator()(faidx_t* f) const { fai_destroy(f); }
};
using FaiPtr = std::unique_ptr<faidx_t, FaiCloser>;

FaiPtr open_fai(const std::filesystem::path& fasta) {
  FaiPtr fai(fai_load(fasta.c_str()));
  if (!fai) throw Error(fasta.string() + ": cannot open the FASTA index (.fai/.gzi)");
  return fai;
}

// Bases [start, end) of `name`, upper-cased; `end` > start.
std::string fetch(faidx_t* fai, const std::filesystem::path& fasta, const std::string& name, uint64_t start,
                  uint64_t end) {
  hts_pos_t got = 0;
  char* s = faidx_fetch_seq64(fai, name.c_str(), hts_pos_t(start), hts_pos_t(end) - 1, &got);
  if (!s || got != hts_pos_t(end - start)) {
    std::free(s);
    throw Error(fasta.string() + ": cannot read " + name + ":" + std::to_string(start) + "-" +
                std::to_string(end));
  }
  std::string out(s, std::size_t(got));
  std::free(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::toupper(c)); });
  return out;
}

std::string base64url(const unsigned char* p, std::size_t n) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  for (std::size_t i = 0; i < n; i += 3) {
    const uint32_t v =
        (uint32_t(p[i]) << 16) | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (i + 1 < n) out.push_back(kAlphabet[(v >> 6) & 63]);
    if (i + 2 < n) out.push_back(kAlphabet[v & 63]);
  }
  return out;  // 24 bytes -> 32 characters, no padding
}

}  // namespace

Sha512t24u::Sha512t24u() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha512(), nullptr) != 1)
    throw Error("cannot initialise SHA-512");
}
Sha512t24u::~Sha512t24u() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha512t24u::update(std::string_view bytes) {
  if (EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size()) != 1)
    throw Error("SHA-512 update failed");
}
std::string Sha512t24u::finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &n) != 1 || n < 24)
    throw Error("SHA-512 failed");
  return "SQ." + base64url(md, 24);
}

std::string sha512t24u(std::string_view sequence) {
  Sha512t24u h;
  h.update(sequence);
  return h.finish();
}

std::vector<std::string> fasta_sha512t24u(const std::filesystem::path& fasta,
                                          const std::vector<std::string>& names) {
  FaiPtr fai = open_fai(fasta);
  std::vector<std::string> out;
  out.reserve(names.size());
  for (const std::string& name : names) {
    const hts_pos_t len = faidx_seq_len(fai.get(), name.c_str());  // int: htslib 1.16 has no 64-bit variant
    if (len < 0) throw Error(fasta.string() + ": no sequence '" + name + "' in its index");
    Sha512t24u h;
    for (uint64_t at = 0; at < uint64_t(len); at += kPiece)
      h.update(fetch(fai.get(), fasta, name, at, std::min<uint64_t>(uint64_t(len), at + kPiece)));
    out.push_back(h.finish());
  }
  return out;
}

std::string fetch_upper(const std::filesystem::path& fasta, const std::string& name, uint64_t start,
                        uint64_t end) {
  if (end <= start) return "";
  FaiPtr fai = open_fai(fasta);
  return fetch(fai.get(), fasta, name, start, end);
}

}  // namespace omicsd
