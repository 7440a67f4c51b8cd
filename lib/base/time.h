// Wall-clock helpers and ISO 8601 (UTC, milliseconds) formatting and parsing.
#ifndef FERRY_LIB_BASE_TIME_H_
#define FERRY_LIB_BASE_TIME_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::base {

// Milliseconds since the Unix epoch (system clock).
int64_t NowMs();
// Milliseconds from a monotonic clock (for timeouts and intervals).
int64_t MonotonicMs();

// "2026-11-23T17:29:37.123Z".
std::string FormatIso8601(int64_t epoch_ms);
// Appends the same 24 characters to *out; caches the formatted second per thread (the hot path of every event).
void AppendIso8601(std::string* out, int64_t epoch_ms);
// The same written at dst, which has room for kIso8601MaxChars (a year beyond 9999 takes more than 24); returns the
// end.
constexpr size_t kIso8601MaxChars = 40;
char* WriteIso8601(char* dst, int64_t epoch_ms);
// Parses "YYYY-MM-DDTHH:MM:SS[.fff...]" followed by "Z" or "+HH:MM"/"-HH:MM". nullopt if malformed, or if the instant
// falls outside years 0000-9999 in UTC (a leap second or an offset at either end), which FormatIso8601 would not
// write back in this form.
std::optional<int64_t> ParseIso8601(std::string_view s);

// Days since 1970-01-01 of a proleptic Gregorian (UTC) date, and back (H. Hinnant's algorithms; any year).
int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day);
void CivilFromDays(int64_t days, int64_t* year, unsigned* month, unsigned* day);

// The UTC calendar month holding an instant: [start_ms, end_ms) in milliseconds since the epoch.
struct UtcMonth {
  int64_t year = 1970;
  unsigned month = 1;  // 1-12
  int64_t start_ms = 0, end_ms = 0;
};
UtcMonth MonthOf(int64_t epoch_ms);

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_TIME_H_
