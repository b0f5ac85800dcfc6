// The bounded multipart/form-data parser of the WES POST /runs route (service/http/multipart_form.hpp):
// well-formed bodies as clients send them, and malformed or hostile ones refused with InputError.
#include <gtest/gtest.h>

#include <string>

#include "host/common/error.hpp"
#include "service/http/multipart_form.hpp"

namespace omicsd::http {
namespace {

const std::string kType = "multipart/form-data; boundary=XyZ123";

std::string part(const std::string& headers, const std::string& body) {
  return "--XyZ123\r\n" + headers + "\r\n\r\n" + body + "\r\n";
}

TEST(MultipartForm, ParsesFieldsAndFilesAsRequestsSendsThem) {
  const std::string body = part("Content-Disposition: form-data; name=\"workflow_type\"", "omicsd") +
                           part("Content-Disposition: form-data; name=\"workflow_params\"",
                                "{\"inputs\": {\"a\": \"b\\r\\n--XyZ12\"}}") +
                           part(
                               "Content-Disposition: form-data; name=\"workflow_attachment\"; "
                               "filename=\"germ;line\"\r\nContent-Type: application/octet-stream",
                               std::string("bin\0ary\r\n", 10)) +
                           "--XyZ123--\r\n";
  const auto parts = parse_multipart_form(kType, body);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].name, "workflow_type");
  EXPECT_EQ(parts[0].body, "omicsd");
  EXPECT_EQ(parts[0].filename, "");
  EXPECT_EQ(parts[1].body, "{\"inputs\": {\"a\": \"b\\r\\n--XyZ12\"}}");
  EXPECT_EQ(parts[2].name, "workflow_attachment");
  EXPECT_EQ(parts[2].filename, "germ;line");
  EXPECT_EQ(parts[2].content_type, "application/octet-stream");
  EXPECT_EQ(parts[2].body, std::string("bin\0ary\r\n", 10));
}

TEST(MultipartForm, PreambleEmptyBodiesQuotedBoundaryAndCaseInsensitiveNames) {
  const std::string type = "Multipart/Form-Data; charset=utf-8; BOUNDARY=\"a b'c\"";
  const std::string body =
      "preamble text\r\n--a b'c\r\ncontent-disposition: FORM-DATA; NAME=x\r\n\r\n\r\n--a b'c--";
  const auto parts = parse_multipart_form(type, body);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].name, "x");
  EXPECT_EQ(parts[0].body, "");
  EXPECT_TRUE(is_multipart_form(type));
  EXPECT_FALSE(is_multipart_form("application/json"));
}

TEST(MultipartForm, ZeroPartsIsAnEmptyForm) {
  EXPECT_TRUE(parse_multipart_form(kType, "--XyZ123--\r\n").empty());
}

TEST(MultipartForm, RefusesBadBoundaries) {
  EXPECT_THROW(multipart_boundary("application/json"), InputError);
  EXPECT_THROW(multipart_boundary("multipart/form-data"), InputError);
  EXPECT_THROW(multipart_boundary("multipart/form-data; boundary="), InputError);
  EXPECT_THROW(multipart_boundary("multipart/form-data; boundary=\"unterminated"), InputError);
  EXPECT_THROW(multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'a')), InputError);
  EXPECT_THROW(multipart_boundary("multipart/form-data; boundary=a\rb"), InputError);
  EXPECT_THROW(multipart_boundary("multipart/form-data; boundary=\"ends with space \""), InputError);
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=" + std::string(70, 'a')),
            std::string(70, 'a'));
}

TEST(MultipartForm, RefusesMalformedBodies) {
  const std::string cd = "Content-Disposition: form-data; name=\"a\"";
  // No opening delimiter; a delimiter of another boundary; the boundary inside a line only.
  EXPECT_THROW(parse_multipart_form(kType, "hello"), InputError);
  EXPECT_THROW(parse_multipart_form(kType, part(cd, "x").replace(2, 6, "Other1") + "--Other1--"), InputError);
  // A delimiter not at the start of a line is preamble: the form is then empty (RFC 2046).
  EXPECT_TRUE(parse_multipart_form(kType, "x--XyZ123\r\n" + cd + "\r\n\r\nv\r\n--XyZ123--").empty());
  // No closing delimiter (truncated body), or a delimiter followed by garbage.
  EXPECT_THROW(parse_multipart_form(kType, part(cd, "x")), InputError);
  EXPECT_THROW(parse_multipart_form(kType, "--XyZ123\r\n" + cd + "\r\n\r\nx"), InputError);
  EXPECT_THROW(parse_multipart_form(kType, "--XyZ123garbage\r\n" + cd + "\r\n\r\nx\r\n--XyZ123--"),
               InputError);
  // Headers without the blank line, a header line without ':', no or a non-form-data disposition,
  // a disposition without a name.
  EXPECT_THROW(parse_multipart_form(kType, "--XyZ123\r\n" + cd + "\r\n--XyZ123--"), InputError);
  EXPECT_THROW(parse_multipart_form(kType, part("garbage", "x") + "--XyZ123--"), InputError);
  EXPECT_THROW(parse_multipart_form(kType, part("Content-Type: text/plain", "x") + "--XyZ123--"), InputError);
  EXPECT_THROW(
      parse_multipart_form(kType, part("Content-Disposition: attachment; name=a", "x") + "--XyZ123--"),
      InputError);
  EXPECT_THROW(
      parse_multipart_form(kType, part("Content-Disposition: form-data; filename=a", "x") + "--XyZ123--"),
      InputError);
  EXPECT_THROW(
      parse_multipart_form(kType, part("Content-Disposition: form-data; name=\"a", "x") + "--XyZ123--"),
      InputError);
}

TEST(MultipartForm, BoundsPartsAndHeaderBytes) {
  const std::string cd = "Content-Disposition: form-data; name=\"a\"";
  std::string many;
  for (int i = 0; i < 5; ++i) many += part(cd, "v");
  many += "--XyZ123--";
  MultipartLimits limits;
  limits.max_parts = 5;
  EXPECT_EQ(parse_multipart_form(kType, many, limits).size(), 5u);
  limits.max_parts = 4;
  EXPECT_THROW(parse_multipart_form(kType, many, limits), InputError);

  const std::string long_header = part(cd + "\r\nX-Pad: " + std::string(9000, 'p'), "v") + "--XyZ123--";
  EXPECT_THROW(parse_multipart_form(kType, long_header), InputError);
  limits = {};
  limits.max_header_bytes = 20000;
  EXPECT_EQ(parse_multipart_form(kType, long_header, limits).size(), 1u);
}

// A body of a million delimiters without headers ends in one error, not a quadratic scan.
TEST(MultipartForm, HostileRepetitionFailsFast) {
  std::string body;
  for (int i = 0; i < 100000; ++i) body += "--XyZ123\r\n";
  EXPECT_THROW(parse_multipart_form(kType, body), InputError);
  std::string nested = "--XyZ123\r\n";
  for (int i = 0; i < 100000; ++i) nested += "Content-Disposition: form-data; name=a\r\n";
  EXPECT_THROW(parse_multipart_form(kType, nested), InputError);
}

}  // namespace
}  // namespace omicsd::http
