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

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_JSON_NUMBER_H_
