// Writing JSON text by hand on hot paths (the SDK's track path), byte for byte as nlohmann's dump writes it.
#ifndef FERRY_LIB_BASE_JSON_TEXT_H_
#define FERRY_LIB_BASE_JSON_TEXT_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ferry::base {

// Whether any of the eight bytes of w needs an escape: below 0x20, '"' or '\\' (the "has a byte less than n" and "has
// a zero byte" word tests: exact for "any", whatever the byte order).
inline bool AnyByteNeedsEscape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
  const uint64_t q = w ^ (kOnes * '"');
  const uint64_t quote = (q - kOnes) & ~q & kHigh;
  const uint64_t b = w ^ (kOnes * '\\');
  const uint64_t backslash = (b - kOnes) & ~b & kHigh;
  return (below_space | quote | backslash) != 0;
}

// Appends s (valid UTF-8) as a JSON string literal, escaped as nlohmann's dump escapes it (ensure_ascii off): '"',
// '\\', \b \t \n \f \r, other bytes below 0x20 as \u00xx; everything else as it is. Runs that need no escape are
// found eight bytes at a time and appended whole.
inline void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  const char* p = s.data();
  const size_t n = s.size();
  size_t run = 0;  // start of the pending run of bytes that need no escape
  size_t i = 0;
  while (i < n) {
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (AnyByteNeedsEscape(w)) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = static_cast<unsigned char>(p[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out->append(p + run, i - run);
    run = ++i;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\t': out->append("\\t"); break;
      case '\n': out->append("\\n"); break;
      case '\f': out->append("\\f"); break;
      case '\r': out->append("\\r"); break;
      default: {
        static const char kHex[] = "0123456789abcdef";
        const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out->append(u, 6);
      }
    }
  }
  out->append(p + run, n - run);
  out->push_back('"');
}

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_JSON_TEXT_H_
