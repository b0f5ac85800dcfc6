#pragma once
// RFC 3339 timestamps ("2026-12-05T14:30:00Z", "2026-12-05T15:30:00.250+01:00") as unix
// milliseconds: how clients give a run's deadline.
#include <cstdint>
#include <string>
#include <string_view>

namespace omicsd {

// Parses a full RFC 3339 date-time (date, 'T' or 't' or ' ', time, optional fraction, then 'Z' or
// a +hh:mm / -hh:mm offset); fractions past milliseconds are truncated. Throws InputError naming
// what is wrong.
int64_t parse_rfc3339_ms(std::string_view text);

// Unix milliseconds as RFC 3339 UTC with milliseconds, "2026-12-05T14:30:00.250Z" (the times of the
// GA4GH TES and WES logs).
std::string rfc3339_ms(int64_t unix_ms);

}  // namespace omicsd
