#include "lib/base/time.h"

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>

namespace ferry::base {

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t MonotonicMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Howard Hinnant's days_from_civil / civil_from_days.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

UtcMonth MonthOf(int64_t epoch_ms) {
  constexpr int64_t kDayMs = 86400000;
  int64_t days = epoch_ms >= 0 ? epoch_ms / kDayMs : -((-epoch_ms + kDayMs - 1) / kDayMs);
  UtcMonth mo;
  unsigned day = 1;
  CivilFromDays(days, &mo.year, &mo.month, &day);
  mo.start_ms = DaysFromCivil(mo.year, mo.month, 1) * kDayMs;
  mo.end_ms = (mo.month == 12 ? DaysFromCivil(mo.year + 1, 1, 1) : DaysFromCivil(mo.year, mo.month + 1, 1)) * kDayMs;
  return mo;
}

namespace {
bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}
}  // namespace

std::string FormatIso8601(int64_t epoch_ms) {
  int64_t days = epoch_ms / 86400000;
  int64_t rem = epoch_ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    days -= 1;
  }
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  const int hh = static_cast<int>(rem / 3600000), mm = static_cast<int>(rem / 60000 % 60),
            ss = static_cast<int>(rem / 1000 % 60), ms = static_cast<int>(rem % 1000);
  if (y < 0 || y > 9999) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<long long>(y), m, d, hh, mm, ss,
                  ms);
    return buf;
  }
  // The usual years written digit by digit: snprintf was most of the time the collector took per event to write the
  // corrected timestamp (docs/PERFORMANCE.md).
  char b[] = "0000-00-00T00:00:00.000Z";
  auto put = [&b](size_t at, int64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i, v /= 10) b[at + static_cast<size_t>(i)] = static_cast<char>('0' + v % 10);
  };
  put(0, y, 4);
  put(5, m, 2);
  put(8, d, 2);
  put(11, hh, 2);
  put(14, mm, 2);
  put(17, ss, 2);
  put(20, ms, 3);
  return std::string(b, sizeof b - 1);
}

char* WriteIso8601(char* dst, int64_t epoch_ms) {
  thread_local int64_t cached_second = INT64_MIN;
  thread_local char prefix[32];  // "YYYY-MM-DDTHH:MM:SS." (20 chars for 4-digit years)
  thread_local size_t prefix_len = 0;
  int64_t second = epoch_ms >= 0 ? epoch_ms / 1000 : -((-epoch_ms + 999) / 1000);
  int ms = static_cast<int>(epoch_ms - second * 1000);
  if (second != cached_second) {
    std::string full = FormatIso8601(second * 1000);  // "...SS.000Z"
    prefix_len = full.size() - 4;
    if (prefix_len >= sizeof prefix) {
      std::string exact = FormatIso8601(epoch_ms);  // at most 39 characters (FormatIso8601's buffer)
      std::memcpy(dst, exact.data(), exact.size());
      return dst + exact.size();
    }
    std::memcpy(prefix, full.data(), prefix_len);
    cached_second = second;
  }
  std::memcpy(dst, prefix, prefix_len);
  dst += prefix_len;
  *dst++ = static_cast<char>('0' + ms / 100);
  *dst++ = static_cast<char>('0' + ms / 10 % 10);
  *dst++ = static_cast<char>('0' + ms % 10);
  *dst++ = 'Z';
  return dst;
}

void AppendIso8601(std::string* out, int64_t epoch_ms) {
  char buf[kIso8601MaxChars];
  out->append(buf, static_cast<size_t>(WriteIso8601(buf, epoch_ms) - buf));
}

std::optional<int64_t> ParseIso8601(std::string_view s) {
  int y, mo, d, h, mi, se;
  if (!Digits(s, 0, 4, &y) || s.size() < 19 || s[4] != '-' || !Digits(s, 5, 2, &mo) || s[7] != '-' ||
      !Digits(s, 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !Digits(s, 11, 2, &h) || s[13] != ':' ||
      !Digits(s, 14, 2, &mi) || s[16] != ':' || !Digits(s, 17, 2, &se)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  size_t pos = 19;
  int ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t start = pos;
    int scale = 100;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (scale > 0) ms += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start || pos - start > 9) return std::nullopt;
  }
  int64_t offset_min = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    bool neg = s[pos] == '-';
    if (!Digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !Digits(s, pos + 4, 2, &om) ||
        oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_min = (oh * 60 + om) * (neg ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t t = ((days * 24 + h) * 60 + mi - offset_min) * 60000 + static_cast<int64_t>(se) * 1000 + ms;
  // A leap second or an offset can carry the instant out of years 0000-9999, where FormatIso8601 would write it in a
  // form this does not read: refused.
  static const int64_t kFirst = DaysFromCivil(0, 1, 1) * 86400000;
  static const int64_t kEnd = DaysFromCivil(10000, 1, 1) * 86400000;
  if (t < kFirst || t >= kEnd) return std::nullopt;
  return t;
}

}  // namespace ferry::base
