// IsCanonicalJsonNumber against nlohmann's parse and dump: a number it calls canonical must come back unchanged.
#include "lib/base/json_number.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace ferry::base {
namespace {

std::string Dumped(const std::string& text) { return nlohmann::json::parse(text).dump(); }

void ExpectCanonical(const std::string& text) {
  ASSERT_TRUE(IsCanonicalJsonNumber(text)) << text;
  ASSERT_EQ(Dumped(text), text);
}

TEST(JsonNumber, CanonicalFormsAreTheOnesDumpWritesBack) {
  for (const char* t : {"0", "7", "-7", "10", "123456789012345678", "-123456789012345678", "0.5", "-0.5", "19.9",
                        "1234567890123.9", "-1234567890123.1", "0.05", "-0.01", "12.37", "1234567890123.99"}) {
    ExpectCanonical(t);
  }
}

TEST(JsonNumber, OtherFormsAreNotCanonical) {
  // Each is valid JSON that nlohmann writes back differently, or one the check does not try to prove.
  for (const char* t : {"-0", "1.0", "1.50", "0.005", "12.375", "1e5", "1E5", "1.5e1", "-0.0", "1234567890123456789",
                        "12345678901234.5", "0.10", "100.00"}) {
    EXPECT_FALSE(IsCanonicalJsonNumber(t)) << t;
  }
  // Not numbers at all (the reader never hands these over; the check must still not call them canonical).
  for (const char* t : {"", "-", "01", "-01", ".5", "5.", "1.", "+1", "1.5.5", "0x10", " 1", "1 "}) {
    EXPECT_FALSE(IsCanonicalJsonNumber(t)) << "'" << t << "'";
  }
}

TEST(JsonNumber, EveryDecimalNearPowersOfTwoComesBackUnchanged) {
  // Next to a power of two the rounding interval is lopsided and a decimal can come closest to one of its ends: the
  // narrowest margin the argument in json_number.h allows.
  for (int e = -6; e <= 43; ++e) {
    const double p = std::ldexp(1.0, e);
    for (int64_t scale : {10, 100}) {
      const int64_t at = static_cast<int64_t>(std::llround(p * static_cast<double>(scale)));
      for (int64_t v = std::max<int64_t>(1, at - 2000); v <= at + 2000; ++v) {
        if (v % 10 == 0) continue;  // a trailing zero: not canonical
        const int64_t frac = v % scale;
        std::string t = std::to_string(v / scale) + "." + (scale == 100 && frac < 10 ? "0" : "") + std::to_string(frac);
        ExpectCanonical(t);
        ExpectCanonical("-" + t);
      }
    }
  }
}

TEST(JsonNumber, RandomCanonicalNumbersComeBackUnchanged) {
  std::mt19937_64 rng(20261202);
  for (int k = 0; k < 200000; ++k) {
    int digits = 1 + static_cast<int>(rng() % 13);  // (an integer part of at most 13 digits)
    uint64_t bound = 1;
    for (int d = 0; d < digits; ++d) bound *= 10;
    std::string t = std::to_string(rng() % bound);
    if (k % 4 == 1) t += "." + std::to_string(1 + rng() % 9);
    if (k % 4 == 2) t += "." + std::to_string(rng() % 10) + std::to_string(1 + rng() % 9);
    if (k % 3 == 0 && t != "0") t = "-" + t;
    ExpectCanonical(t);
  }
  for (int k = 0; k < 20000; ++k) {
    std::string t = std::to_string(rng() % 1000000000000000000ull);
    if (k % 2 == 0 && t != "0") t = "-" + t;
    ExpectCanonical(t);
  }
}

TEST(JsonNumber, ReadJsonNumberReadsIntegersAndDoublesAsNlohmannDoes) {
  EXPECT_EQ(ReadJsonNumber("-5").kind, JsonNumber::Kind::kInteger);
  EXPECT_EQ(ReadJsonNumber("5").kind, JsonNumber::Kind::kUnsigned);
  EXPECT_EQ(ReadJsonNumber("18446744073709551616").kind, JsonNumber::Kind::kFloat);
  EXPECT_EQ(ReadJsonNumber("1e999").kind, JsonNumber::Kind::kRefused);
  EXPECT_EQ(ReadJsonNumber("0.1").d, 0.1);
}

}  // namespace
}  // namespace ferry::base
