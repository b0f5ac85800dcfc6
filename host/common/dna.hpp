#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "host/common/hd.hpp"

namespace omicsd {

// Bases are coded 0..3 = A,C,G,T and 4 = anything else (N, IUPAC). The code is shared by the
// index, the aligner and the kernels.
inline constexpr uint8_t kBaseN = 4;

OMICSD_HD uint8_t base_code(char c) {
  switch (c) {
    case 'A':
    case 'a':
      return 0;
    case 'C':
    case 'c':
      return 1;
    case 'G':
    case 'g':
      return 2;
    case 'T':
    case 't':
      return 3;
    default:
      return kBaseN;
  }
}

OMICSD_HD uint8_t complement_code(uint8_t b) { return b < 4 ? uint8_t(3 - b) : kBaseN; }

inline constexpr char kCodeToBase[5] = {'A', 'C', 'G', 'T', 'N'};

inline char complement_base(char c) {
  switch (c) {
    case 'A':
      return 'T';
    case 'C':
      return 'G';
    case 'G':
      return 'C';
    case 'T':
      return 'A';
    case 'a':
      return 't';
    case 'c':
      return 'g';
    case 'g':
      return 'c';
    case 't':
      return 'a';
    case 'R':
      return 'Y';
    case 'Y':
      return 'R';
    case 'K':
      return 'M';
    case 'M':
      return 'K';
    case 'B':
      return 'V';
    case 'V':
      return 'B';
    case 'D':
      return 'H';
    case 'H':
      return 'D';
    default:
      return c;
  }
}

inline std::string reverse_complement(std::string_view s) {
  std::string r(s.size(), 'N');
  for (size_t i = 0; i < s.size(); ++i) r[s.size() - 1 - i] = complement_base(s[i]);
  return r;
}

}  // namespace omicsd
