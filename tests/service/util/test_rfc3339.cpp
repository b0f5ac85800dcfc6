// parse_rfc3339_ms against std::chrono for every offset form, and the errors of malformed text.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "host/common/error.hpp"
#include "service/util/rfc3339.hpp"

using namespace omicsd;

namespace {

int64_t utc_ms(int y, unsigned m, unsigned d, int h, int mi, int s, int ms = 0) {
  using namespace std::chrono;
  const sys_days day = year_month_day{year(y), month(m), std::chrono::day(d)};
  return (duration_cast<milliseconds>(day.time_since_epoch()) + hours(h) + minutes(mi) + seconds(s) +
          milliseconds(ms))
      .count();
}

TEST(Rfc3339, ParsesZuluOffsetsAndFractions) {
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339_ms("2026-12-05T14:30:00Z"), utc_ms(2026, 12, 5, 14, 30, 0));
  EXPECT_EQ(parse_rfc3339_ms("2026-12-05t14:30:00z"), utc_ms(2026, 12, 5, 14, 30, 0));
  EXPECT_EQ(parse_rfc3339_ms("2026-12-05 14:30:00Z"), utc_ms(2026, 12, 5, 14, 30, 0));
  EXPECT_EQ(parse_rfc3339_ms("2026-12-05T15:30:00.250+01:00"), utc_ms(2026, 12, 5, 14, 30, 0, 250));
  EXPECT_EQ(parse_rfc3339_ms("2026-12-05T09:00:00.5-05:30"), utc_ms(2026, 12, 5, 14, 30, 0, 500));
  EXPECT_EQ(parse_rfc3339_ms("2026-12-05T14:30:00.123999Z"), utc_ms(2026, 12, 5, 14, 30, 0, 123));
  EXPECT_EQ(parse_rfc3339_ms("2028-02-29T00:00:00Z"), utc_ms(2028, 2, 29, 0, 0, 0));
  EXPECT_EQ(parse_rfc3339_ms("1969-12-31T23:59:59Z"), -1000);
}

TEST(Rfc3339, FormatsUtcMillisecondsThatParseBack) {
  EXPECT_EQ(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339_ms(1764945094123), "2025-12-05T14:31:34.123Z");
  for (int64_t ms : {int64_t(1), int64_t(999), int64_t(1'700'000'000'001), int64_t(4'102'444'800'000)})
    EXPECT_EQ(parse_rfc3339_ms(rfc3339_ms(ms)), ms) << ms;
}

TEST(Rfc3339, MalformedTextThrowsInputErrorsThatSayWhat) {
  const std::pair<const char*, const char*> bad[] = {
      {"", "year is missing"},
      {"tomorrow", "year must be digits"},
      {"2026-12-05", "'T' between date and time"},
      {"2026-12-05T14:30Z", "':' after the minute"},
      {"2026-12-05T14:30:00", "'Z' or a +hh:mm"},
      {"2026-02-29T00:00:00Z", "no such date"},
      {"2026-13-01T00:00:00Z", "no such date"},
      {"2026-12-05T24:00:00Z", "no such date or time"},
      {"2026-12-05T14:30:00.Z", "'.' must be followed by digits"},
      {"2026-12-05T14:30:00+1:00", "offset hour must be digits"},
      {"2026-12-05T14:30:00Zjunk", "unexpected text"},
  };
  for (const auto& [text, message] : bad) {
    try {
      parse_rfc3339_ms(text);
      ADD_FAILURE() << "accepted " << text;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << text << ": " << e.what();
    }
  }
}

}  // namespace
