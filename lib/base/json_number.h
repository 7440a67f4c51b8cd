// A JSON number's text read as nlohmann's parser reads it, for SAX readers that hand numbers over as text (RapidJSON's
// kParseNumbersAsStringsFlag): the SDK's single-pass masker and the collector's single-pass batch reader, whose output
// must be what nlohmann's parse and dump give.
#ifndef FERRY_LIB_BASE_JSON_NUMBER_H_
#define FERRY_LIB_BASE_JSON_NUMBER_H_

#include <cstdint>
#include <string_view>

namespace ferry::base {

struct JsonNumber {
  enum class Kind : uint8_t {
    kInteger,   // negative (or "-0"), fits int64_t: i
    kUnsigned,  // not negative, fits uint64_t: u
    kFloat,     // anything else, as strtod reads it: d (finite)
    kRefused,   // beyond a double's range: nlohmann's parser refuses it
  };
  Kind kind = Kind::kRefused;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
};

// `text` must be a valid JSON number (the reader checked its grammar). An integer (no '.', 'e' or 'E') that fits 64
// bits is read as one; any other is read as a double, correctly rounded, whatever the locale.
JsonNumber ReadJsonNumber(std::string_view text);

// Whether nlohmann's dump writes `text` (a valid JSON number) back unchanged after its parse, so that a reader may copy
// it instead of reading and writing it again. True for an integer of at most 18 digits without a leading zero (not
// "-0"), and for a decimal without an exponent whose integer part has at most 13 digits without a leading zero (or is
// "0") and whose fraction has one or two digits, the last not 0 ("19.9", "4.25", "-0.05"). Why such a decimal x comes
// back: it has at most 15 significant digits, so no other decimal of that length reads as its double; x = a/100 lies
// at least 2^-60.6 of its value from either end of the double's rounding interval (the ends are odd multiples of a
// power of two, and a/100 minus one of them is a nonzero fraction with a denominator of at most 100 * 2^54 times x),
// farther than the less than 2^-61 by which nlohmann's Grisu2 narrows that interval; so Grisu2 finds x's digits as
// the shortest, and prints them in fixed notation (its decimal point is at most 13 digits in). Three fraction digits
// leave no such margin. False says nothing: read and write the number.
bool IsCanonicalJsonNumber(std::string_view text);

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_JSON_NUMBER_H_
