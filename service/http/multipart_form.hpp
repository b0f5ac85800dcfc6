#pragma once
// multipart/form-data request bodies (RFC 7578), as GA4GH WES clients send POST /runs. Beast has no
// multipart parser; this one works on a body already bounded by the server's body limit and bounds
// everything else (parts, header bytes per part), so a hostile body costs at most one pass over it.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace omicsd::http {

struct MultipartPart {
  std::string name;          // Content-Disposition name="..."
  std::string filename;      // Content-Disposition filename="...", empty when absent
  std::string content_type;  // the part's Content-Type, empty when absent
  std::string body;
};

struct MultipartLimits {
  std::size_t max_parts = 256;
  std::size_t max_header_bytes = 8192;  // all header lines of one part together
};

// The boundary parameter of a multipart/form-data Content-Type (quoted or not); throws InputError
// when the media type is another one or the boundary is missing, longer than 70 characters or
// holds characters RFC 2046 does not allow.
std::string multipart_boundary(std::string_view content_type);

// True when the Content-Type's media type is multipart/form-data (case-insensitive).
bool is_multipart_form(std::string_view content_type);

// The parts of `body` in order. Throws InputError naming what is wrong: no opening delimiter, a
// part without the blank line after its headers, headers over the limit, a part without a
// form-data Content-Disposition name, more parts than the limit, no closing delimiter.
std::vector<MultipartPart> parse_multipart_form(std::string_view content_type, std::string_view body,
                                                const MultipartLimits& limits = {});

}  // namespace omicsd::http
