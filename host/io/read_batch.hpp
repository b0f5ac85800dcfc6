#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace omicsd {

// A batch of reads in structure-of-arrays form: names, bases and qualities concatenated, with
// offsets. When `paired` is true reads 2i and 2i+1 are mates (read 1 then read 2).
struct ReadBatch {
  bool paired = false;
  uint64_t first_index = 0;  // 0-based index of the first read (not pair) in the whole input stream
  std::string names;         // read names without /1 /2 suffix or comment
  std::string bases;         // as read (upper-cased), original orientation of the sequencer
  std::string quals;         // Phred+33 characters; a read without qualities has all '\xff'
  std::vector<uint32_t> name_offsets{0};  // size() + 1 entries
  std::vector<uint32_t> base_offsets{0};  // size() + 1 entries; quals share these offsets
  // Empty, or one per read: its read group as an index into the source's read_group_ids(), -1 for
  // none (BAM/CRAM input whose header declares read groups).
  std::vector<int32_t> read_groups;

  size_t size() const { return name_offsets.size() - 1; }
  bool empty() const { return size() == 0; }
  std::string_view name(size_t i) const {
    return std::string_view(names).substr(name_offsets[i], name_offsets[i + 1] - name_offsets[i]);
  }
  std::string_view seq(size_t i) const {
    return std::string_view(bases).substr(base_offsets[i], base_offsets[i + 1] - base_offsets[i]);
  }
  std::string_view qual(size_t i) const {
    return std::string_view(quals).substr(base_offsets[i], base_offsets[i + 1] - base_offsets[i]);
  }
  void clear() {
    names.clear();
    bases.clear();
    quals.clear();
    name_offsets.assign(1, 0);
    base_offsets.assign(1, 0);
    read_groups.clear();
  }
  void add(std::string_view name, std::string_view seq, std::string_view qual) {
    names.append(name);
    bases.append(seq);
    quals.append(qual);
    name_offsets.push_back(uint32_t(names.size()));
    base_offsets.push_back(uint32_t(bases.size()));
  }
};

}  // namespace omicsd
