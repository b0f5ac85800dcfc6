#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace omicsd {

struct Contig {
  std::string name;
  uint64_t offset = 0;  // start of this contig in Reference::codes()
  uint32_t length = 0;
  std::string md5;  // SAM @SQ M5: MD5 of the upper-cased sequence (refget style)
};

// A reference genome held in memory as one concatenated array of base codes (0..3, 4 = N/IUPAC).
// Loaded from FASTA, gzip FASTA or bgzip FASTA (all read through htslib's BGZF reader).
class Reference {
 public:
  // Throws InputError naming the file and line for a missing file, an empty file, a record without a
  // name, a duplicate name, or characters that are not IUPAC nucleotide codes.
  static Reference load(const std::string& fasta_path);

  const std::string& path() const { return path_; }
  const std::vector<Contig>& contigs() const { return contigs_; }
  const uint8_t* codes() const { return codes_.data(); }
  uint64_t total_length() const { return codes_.size(); }
  // MD5 over the per-contig MD5s in order: identifies the whole reference (index files, provenance).
  const std::string& digest() const { return digest_; }

  // Contig index holding global offset `global` (which must be < total_length()).
  int contig_of(uint64_t global) const;
  int find_contig(std::string_view name) const;  // -1 when absent

 private:
  std::string path_;
  std::vector<Contig> contigs_;
  std::vector<uint8_t> codes_;
  std::string digest_;

  // Transparent hash so find_contig(string_view) does not allocate.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int, NameHash, std::equal_to<>> name_index_;
};

}  // namespace omicsd
