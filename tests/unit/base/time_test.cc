#include "lib/base/time.h"

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
