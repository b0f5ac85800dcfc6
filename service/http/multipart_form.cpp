// A small bounded multipart/form-data parser (RFC 7578 / RFC 2046): delimiters are searched with
// string_view::find, so the cost is linear in the body whatever its content.
#include "service/http/multipart_form.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

#include "host/common/error.hpp"

namespace omicsd::http {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// bchars of RFC 2046 (a space only inside, never last).
bool boundary_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

// The value of parameter `key` in "type; a=b; key="v"" (quoted strings may hold ';' and '\"');
// nullopt when absent. Parameter names compare case-insensitively.
std::optional<std::string> header_param(std::string_view header, std::string_view key) {
  std::size_t i = header.find(';');
  while (i != std::string_view::npos && i < header.size()) {
    ++i;  // past ';'
    while (i < header.size() && (header[i] == ' ' || header[i] == '\t')) ++i;
    const std::size_t eq = header.find('=', i);
    const std::size_t semi = header.find(';', i);
    if (eq == std::string_view::npos || (semi != std::string_view::npos && semi < eq)) {
      i = semi;
      continue;
    }
    const std::string name = lower(trim(header.substr(i, eq - i)));
    std::size_t v = eq + 1;
    while (v < header.size() && (header[v] == ' ' || header[v] == '\t')) ++v;
    std::string value;
    std::size_t next;
    if (v < header.size() && header[v] == '"') {
      std::size_t j = v + 1;
      bool closed = false;
      for (; j < header.size(); ++j) {
        if (header[j] == '\\' && j + 1 < header.size()) {
          value.push_back(header[++j]);
        } else if (header[j] == '"') {
          closed = true;
          break;
        } else {
          value.push_back(header[j]);
        }
      }
      if (!closed) throw InputError("multipart: unterminated quoted string in '" + std::string(header) + "'");
      next = header.find(';', j);
    } else {
      next = header.find(';', v);
      value = std::string(
          trim(header.substr(v, next == std::string_view::npos ? std::string_view::npos : next - v)));
    }
    if (name == key) return value;
    i = next;
  }
  return std::nullopt;
}

std::string_view media_type(std::string_view content_type) {
  return trim(content_type.substr(0, content_type.find(';')));
}

// Reads the header lines of one part (up to the blank line) into `part`.
void parse_part_headers(std::string_view headers, MultipartPart& part, std::size_t index) {
  bool disposition = false;
  std::size_t pos = 0;
  while (pos < headers.size()) {
    std::size_t eol = headers.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = headers.size();
    const std::string_view line = headers.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      throw InputError("multipart part " + std::to_string(index) + ": header line without ':'");
    const std::string name = lower(trim(line.substr(0, colon)));
    const std::string_view value = trim(line.substr(colon + 1));
    if (name == "content-disposition") {
      if (lower(media_type(value)) != "form-data")
        throw InputError("multipart part " + std::to_string(index) +
                         ": Content-Disposition is not form-data");
      auto n = header_param(value, "name");
      if (!n || n->empty())
        throw InputError("multipart part " + std::to_string(index) + ": Content-Disposition has no name");
      part.name = *n;
      part.filename = header_param(value, "filename").value_or("");
      disposition = true;
    } else if (name == "content-type") {
      part.content_type = std::string(value);
    }
  }
  if (!disposition)
    throw InputError("multipart part " + std::to_string(index) + ": no Content-Disposition header");
}

}  // namespace

bool is_multipart_form(std::string_view content_type) {
  return lower(media_type(content_type)) == "multipart/form-data";
}

std::string multipart_boundary(std::string_view content_type) {
  if (!is_multipart_form(content_type))
    throw InputError("Content-Type '" + std::string(content_type) + "' is not multipart/form-data");
  auto b = header_param(content_type, "boundary");
  if (!b || b->empty()) throw InputError("multipart/form-data Content-Type without a boundary");
  if (b->size() > 70) throw InputError("multipart boundary longer than 70 characters");
  if (!std::all_of(b->begin(), b->end(), boundary_char) || b->back() == ' ')
    throw InputError("multipart boundary holds characters RFC 2046 does not allow");
  return *b;
}

std::vector<MultipartPart> parse_multipart_form(std::string_view content_type, std::string_view body,
                                                const MultipartLimits& limits) {
  const std::string dash = "--" + multipart_boundary(content_type);
  const std::string delimiter = "\r\n" + dash;  // every delimiter after the first follows a CRLF
  // The first delimiter opens the body or follows a preamble and CRLF.
  std::size_t pos;
  if (body.substr(0, dash.size()) == dash) {
    pos = dash.size();
  } else {
    pos = body.find(delimiter);
    if (pos == std::string_view::npos) throw InputError("multipart body has no opening boundary delimiter");
    pos += delimiter.size();
  }
  std::vector<MultipartPart> parts;
  while (true) {
    // After a delimiter: "--" closes the body; otherwise optional transport padding, then CRLF.
    if (body.substr(pos, 2) == "--") return parts;
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) != "\r\n") throw InputError("multipart boundary delimiter not followed by CRLF");
    pos += 2;
    if (parts.size() >= limits.max_parts)
      throw InputError("multipart body has more than " + std::to_string(limits.max_parts) + " parts");
    const std::size_t index = parts.size() + 1;
    // Headers end at the first blank line (a part with no headers starts with it).
    std::size_t header_end;
    if (body.substr(pos, 2) == "\r\n") {
      header_end = pos;
    } else {
      header_end = body.find("\r\n\r\n", pos);
      if (header_end == std::string_view::npos)
        throw InputError("multipart part " + std::to_string(index) + ": headers not ended by a blank line");
      if (header_end - pos > limits.max_header_bytes)
        throw InputError("multipart part " + std::to_string(index) + ": headers longer than " +
                         std::to_string(limits.max_header_bytes) + " bytes");
    }
    MultipartPart part;
    parse_part_headers(body.substr(pos, header_end - pos), part, index);
    const std::size_t content = header_end == pos ? pos + 2 : header_end + 4;
    const std::size_t end = body.find(delimiter, content);
    if (end == std::string_view::npos)
      throw InputError("multipart part " + std::to_string(index) + " ('" + part.name +
                       "') has no closing boundary delimiter");
    part.body = std::string(body.substr(content, end - content));
    parts.push_back(std::move(part));
    pos = end + delimiter.size();
  }
}

}  // namespace omicsd::http
