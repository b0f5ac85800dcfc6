// RFC 3339 date-times as unix milliseconds (rfc3339.hpp).
#include "service/util/rfc3339.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "host/common/error.hpp"

namespace omicsd {
namespace {

// The n decimal digits at text[at..at+n) as a number; throws when any is not a digit.
int digits(std::string_view text, size_t at, size_t n, const char* what) {
  if (at + n > text.size())
    throw InputError("timestamp '" + std::string(text) + "': " + what + " is missing");
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (text[i] < '0' || text[i] > '9')
      throw InputError("timestamp '" + std::string(text) + "': " + what + " must be digits");
    v = v * 10 + (text[i] - '0');
  }
  return v;
}

void expect(std::string_view text, size_t at, std::string_view chars, const char* what) {
  if (at >= text.size() || chars.find(text[at]) == std::string_view::npos)
    throw InputError("timestamp '" + std::string(text) + "': expected " + what + " (RFC 3339, e.g. " +
                     "2026-12-05T14:30:00Z)");
}

}  // namespace

int64_t parse_rfc3339_ms(std::string_view text) {
  using namespace std::chrono;
  const int year = digits(text, 0, 4, "year");
  expect(text, 4, "-", "'-' after the year");
  const int month = digits(text, 5, 2, "month");
  expect(text, 7, "-", "'-' after the month");
  const int day = digits(text, 8, 2, "day");
  expect(text, 10, "Tt ", "'T' between date and time");
  const int hour = digits(text, 11, 2, "hour");
  expect(text, 13, ":", "':' after the hour");
  const int minute = digits(text, 14, 2, "minute");
  expect(text, 16, ":", "':' after the minute");
  const int second = digits(text, 17, 2, "second");
  const year_month_day date{std::chrono::year(year), std::chrono::month(unsigned(month)),
                            std::chrono::day(unsigned(day))};
  // 60 is a leap second, which unix time folds into the next second.
  if (!date.ok() || hour > 23 || minute > 59 || second > 60)
    throw InputError("timestamp '" + std::string(text) + "': no such date or time");
  size_t at = 19;
  int64_t millis = 0;
  if (at < text.size() && text[at] == '.') {
    size_t n = 0;
    for (++at; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at, ++n)
      if (n < 3) millis = millis * 10 + (text[at] - '0');
    if (n == 0) throw InputError("timestamp '" + std::string(text) + "': '.' must be followed by digits");
    for (; n < 3; ++n) millis *= 10;
  }
  int64_t offset_min = 0;
  expect(text, at, "Zz+-", "'Z' or a +hh:mm / -hh:mm offset");
  if (text[at] == '+' || text[at] == '-') {
    const int sign = text[at] == '-' ? -1 : 1;
    const int oh = digits(text, at + 1, 2, "offset hour");
    expect(text, at + 3, ":", "':' in the offset");
    const int om = digits(text, at + 4, 2, "offset minute");
    if (oh > 23 || om > 59) throw InputError("timestamp '" + std::string(text) + "': no such offset");
    offset_min = sign * (oh * 60 + om);
    at += 6;
  } else {
    at += 1;
  }
  if (at != text.size())
    throw InputError("timestamp '" + std::string(text) + "': unexpected text after the time");
  const int64_t days = sys_days(date).time_since_epoch().count();
  const int64_t local_s = days * 86400 + hour * 3600 + minute * 60 + second;
  return (local_s - offset_min * 60) * 1000 + millis;
}

std::string rfc3339_ms(int64_t unix_ms) {
  const std::time_t secs = std::time_t(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, int(unix_ms % 1000));
  return out;
}

}  // namespace omicsd
