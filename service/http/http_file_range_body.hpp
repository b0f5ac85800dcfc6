#pragma once
// A Beast response body that streams [offset, offset+length) of a file, for 206 answers to Range
// requests (Beast 1.74's file_body always sends the whole file; full-file 200 answers use it).
#include <algorithm>
#include <array>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/optional.hpp>
#include <cstdint>
#include <utility>

namespace omicsd::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;

struct FileRangeBody {
  struct value_type {
    beast::file file;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
  };
  static std::uint64_t size(const value_type& v) { return v.length; }

  class writer {
   public:
    using const_buffers_type = net::const_buffer;
    template <bool isRequest, class Fields>
    writer(bhttp::header<isRequest, Fields>&, value_type& b) : body_(b) {}
    void init(beast::error_code& ec) {
      remain_ = body_.length;
      body_.file.seek(body_.offset, ec);
    }
    boost::optional<std::pair<const_buffers_type, bool>> get(beast::error_code& ec) {
      ec = {};
      if (remain_ == 0) return boost::none;
      auto amount = static_cast<std::size_t>(std::min<std::uint64_t>(remain_, buf_.size()));
      auto n = body_.file.read(buf_.data(), amount, ec);
      if (ec) return boost::none;
      if (n == 0) {
        ec = bhttp::error::short_read;
        return boost::none;
      }
      remain_ -= n;
      return {{net::const_buffer(buf_.data(), n), remain_ > 0}};
    }

   private:
    value_type& body_;
    std::uint64_t remain_ = 0;
    std::array<char, 64 * 1024> buf_;
  };
};

}  // namespace omicsd::http
