#pragma once
// GA4GH refget v2 sequence identifiers and reads of stored sequences (docs/api.md, "refget"):
// the truncated SHA-512 digest "SQ.<base64url of the first 24 bytes of SHA-512 of the upper-cased
// sequence>" (refget's sha512t24u, computed with OpenSSL), and upper-cased sub-sequences of a stored
// BGZF FASTA read through its .fai/.gzi (htslib faidx).
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace omicsd {

// Streaming SHA512t24u of a sequence fed in pieces (upper-casing is the caller's job).
class Sha512t24u {
 public:
  Sha512t24u();
  ~Sha512t24u();
  Sha512t24u(const Sha512t24u&) = delete;
  Sha512t24u& operator=(const Sha512t24u&) = delete;
  void update(std::string_view bytes);
  std::string finish();  // "SQ." + 32 base64url characters

 private:
  void* ctx_;
};

// sha512t24u of `sequence` as given ("SQ.xxx").
std::string sha512t24u(std::string_view sequence);

// The SQ digests of the named sequences of a FASTA indexed with .fai (and .gzi when BGZF), in the
// order given, each over its upper-cased sequence read in 1 Mb pieces. Throws Error naming the file
// and sequence on a read failure.
std::vector<std::string> fasta_sha512t24u(const std::filesystem::path& fasta,
                                          const std::vector<std::string>& names);

// Bases [start, end) of sequence `name` of an indexed FASTA, upper-cased. Throws Error on a failed
// read (the caller checks the bounds against the stored length).
std::string fetch_upper(const std::filesystem::path& fasta, const std::string& name, uint64_t start,
                        uint64_t end);

}  // namespace omicsd
