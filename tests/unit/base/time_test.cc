#include "lib/base/time.h"

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ferry::base {
namespace {

TEST(CivilDays, RoundTripsAndMatchesKnownDates) {
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(2000, 3, 1), 11017);
  EXPECT_EQ(DaysFromCivil(1969, 12, 31), -1);
  for (int64_t d : {-800000, -1, 0, 59, 11016, 11017, 20000, 2932896}) {
    int64_t y = 0;
    unsigned m = 0, day = 0;
    CivilFromDays(d, &y, &m, &day);
    EXPECT_EQ(DaysFromCivil(y, m, day), d) << d;
  }
  int64_t y = 0;
  unsigned m = 0, day = 0;
  CivilFromDays(DaysFromCivil(2024, 2, 29), &y, &m, &day);
  EXPECT_EQ(y, 2024);
  EXPECT_EQ(m, 2u);
  EXPECT_EQ(day, 29u);
}

// FormatIso8601 as printf would write it, from the civil date (what it did before it wrote the digits itself).
std::string PrintfIso8601(int64_t ms) {
  int64_t days = ms / 86400000, rem = ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    days -= 1;
  }
  int64_t y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(days, &y, &m, &d);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<long long>(y), m, d,
                static_cast<int>(rem / 3600000), static_cast<int>(rem / 60000 % 60), static_cast<int>(rem / 1000 % 60),
                static_cast<int>(rem % 1000));
  return buf;
}

TEST(FormatIso8601, WritesEveryInstantAsPrintfAndReadsBack) {
  EXPECT_EQ(FormatIso8601(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIso8601(*ParseIso8601("2024-02-29T23:59:59.999Z")), "2024-02-29T23:59:59.999Z");
  const int64_t first = DaysFromCivil(0, 1, 1) * 86400000, last = DaysFromCivil(10000, 1, 1) * 86400000 - 1;
  EXPECT_EQ(FormatIso8601(first), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(last), "9999-12-31T23:59:59.999Z");
  // Outside years 0-9999: as printf writes them.
  for (int64_t ms :
       {first - 1, last + 1, DaysFromCivil(-44, 3, 15) * 86400000 + 12345, int64_t{400000} * 31556952000}) {
    EXPECT_EQ(FormatIso8601(ms), PrintfIso8601(ms)) << ms;
  }
  std::mt19937_64 rng(16);
  std::uniform_int_distribution<int64_t> any(first, last);
  for (int i = 0; i < 200000; ++i) {
    const int64_t ms = any(rng);
    const std::string text = FormatIso8601(ms);
    ASSERT_EQ(text, PrintfIso8601(ms)) << ms;
    ASSERT_EQ(ParseIso8601(text), ms) << text;
  }
}

TEST(ParseIso8601, RefusesInstantsOutsideYears0000To9999) {
  // Found by fuzz_iso8601: a leap second at the last second of 9999 parsed to year 10000, which FormatIso8601 writes
  // with five digits.
  EXPECT_FALSE(ParseIso8601("9999-12-31T23:59:60.999Z"));
  EXPECT_FALSE(ParseIso8601("9999-12-31T23:30:00-01:00"));
  EXPECT_FALSE(ParseIso8601("0000-01-01T00:30:00+01:00"));
  ASSERT_TRUE(ParseIso8601("9999-12-31T23:59:59.999Z"));
  EXPECT_EQ(*ParseIso8601("9999-12-31T23:59:59.999Z"), 253402300799999);
  ASSERT_TRUE(ParseIso8601("0000-01-01T00:00:00Z"));
  EXPECT_EQ(FormatIso8601(*ParseIso8601("0000-01-01T00:00:00Z")), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(*ParseIso8601("2026-12-31T23:59:60Z"), *ParseIso8601("2027-01-01T00:00:00Z"));  // a leap second inside
}

TEST(AppendIso8601, WritesWhatFormatIso8601Writes) {
  // Its cached second: instants within one second, across seconds, backwards, before 1970 and beyond year 9999.
  std::vector<int64_t> instants = {0,
                                   1,
                                   999,
                                   1000,
                                   1796083200000,
                                   1796083200999,
                                   1796083201000,
                                   1796083200500,
                                   -1,
                                   -999,
                                   -1000,
                                   -1001,
                                   253402300799999,
                                   253402300800000,
                                   -62167219200001,
                                   INT64_MAX / 4,
                                   INT64_MIN / 4};
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) instants.push_back(static_cast<int64_t>(rng() % 4102444800000ull));
  for (int i = 0; i < 2000; ++i) instants.push_back(1796083200000 + static_cast<int64_t>(rng() % 3000));
  for (int64_t ms : instants) {
    std::string out = "x";
    AppendIso8601(&out, ms);
    ASSERT_EQ(out, "x" + FormatIso8601(ms)) << ms;
    char buf[kIso8601MaxChars];
    ASSERT_EQ(std::string(buf, WriteIso8601(buf, ms)), FormatIso8601(ms)) << ms;
  }
}

TEST(MonthOf, GivesTheUtcMonthAroundAnInstant) {
  int64_t t = *ParseIso8601("2026-02-14T12:00:00.000Z");
  UtcMonth m = MonthOf(t);
  EXPECT_EQ(m.year, 2026);
  EXPECT_EQ(m.month, 2u);
  EXPECT_EQ(m.start_ms, *ParseIso8601("2026-02-01T00:00:00.000Z"));
  EXPECT_EQ(m.end_ms, *ParseIso8601("2026-03-01T00:00:00.000Z"));
  UtcMonth dec = MonthOf(*ParseIso8601("2025-12-31T23:59:59.999Z"));
  EXPECT_EQ(dec.month, 12u);
  EXPECT_EQ(dec.end_ms, *ParseIso8601("2026-01-01T00:00:00.000Z"));
  UtcMonth before = MonthOf(-1);  // the last millisecond of 1969
  EXPECT_EQ(before.year, 1969);
  EXPECT_EQ(before.month, 12u);
  EXPECT_EQ(before.end_ms, 0);
}

}  // namespace
}  // namespace ferry::base
