// Writing JSON text by hand on hot paths (the SDK's track path), byte for byte as nlohmann's dump writes it.
#ifndef FERRY_LIB_BASE_JSON_TEXT_H_
#define FERRY_LIB_BASE_JSON_TEXT_H_

#include <cstdint>
#include <cstring>
#include <functional>
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

// Bytes that need an escape, by value.
struct EscapeTable {
  bool needs[256];
  constexpr EscapeTable() : needs() {
    for (int c = 0; c < 256; ++c) needs[c] = c < 0x20 || c == '"' || c == '\\';
  }
};
inline constexpr EscapeTable kEscapeTable;

// Whether s holds no byte that needs an escape (then its literal is s between two quotes): eight bytes at a time, the
// last eight overlapping those before; a text shorter than eight, byte by byte without a branch.
inline bool NeedsNoEscape(std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  if (n >= 8) {
    uint64_t w;
    for (size_t i = 0; i + 8 <= n; i += 8) {
      std::memcpy(&w, p + i, 8);
      if (AnyByteNeedsEscape(w)) return false;
    }
    std::memcpy(&w, p + n - 8, 8);
    return !AnyByteNeedsEscape(w);
  }
  bool any = false;
  for (size_t i = 0; i < n; ++i) any |= kEscapeTable.needs[static_cast<unsigned char>(p[i])];
  return !any;
}

// The most bytes the JSON string literal of n bytes takes (every byte as \u00xx, and the quotes).
constexpr size_t JsonStringBound(size_t n) { return 2 + 6 * n; }

// Writes s (valid UTF-8) at dst as a JSON string literal, escaped as nlohmann's dump escapes it (ensure_ascii off):
// '"', '\\', \b \t \n \f \r, other bytes below 0x20 as \u00xx; everything else as it is. dst has room for
// JsonStringBound(s.size()) bytes; returns the end. A string that needs no escape is copied whole; otherwise runs that
// need none are found eight bytes at a time. For writers that keep their own buffer (one room check for the literal).
inline char* WriteJsonString(char* dst, std::string_view s) {
  *dst++ = '"';
  const char* p = s.data();
  const size_t n = s.size();
  if (NeedsNoEscape(s)) {  // nearly every string: copied whole
    if (n > 0) std::memcpy(dst, p, n);
    dst += n;
    *dst++ = '"';
    return dst;
  }
  size_t run = 0;
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
    if (i > run) std::memcpy(dst, p + run, i - run);
    dst += i - run;
    run = ++i;
    *dst++ = '\\';
    switch (c) {
      case '"': *dst++ = '"'; break;
      case '\\': *dst++ = '\\'; break;
      case '\b': *dst++ = 'b'; break;
      case '\t': *dst++ = 't'; break;
      case '\n': *dst++ = 'n'; break;
      case '\f': *dst++ = 'f'; break;
      case '\r': *dst++ = 'r'; break;
      default: {
        static const char kHex[] = "0123456789abcdef";
        const char u[5] = {'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        std::memcpy(dst, u, 5);
        dst += 5;
      }
    }
  }
  if (n > run) std::memcpy(dst, p + run, n - run);  // (an empty view may hold no pointer at all)
  dst += n - run;
  *dst++ = '"';
  return dst;
}

// Appends the literal of s (WriteJsonString) to *out. s may be a view of *out.
inline void AppendJsonString(std::string* out, std::string_view s) {
  const char* begin = out->data();
  if (!std::less<const char*>()(s.data(), begin) && std::less<const char*>()(s.data(), begin + out->size())) {
    const std::string copy(s);  // s lies in *out, which may move as it grows
    AppendJsonString(out, copy);
    return;
  }
  const size_t at = out->size();
  if (NeedsNoEscape(s)) {  // nearly every string: room made once, and the string copied whole
    out->append(s.size() + 2, '"');
    if (!s.empty()) std::memcpy(out->data() + at + 1, s.data(), s.size());
    return;
  }
  out->resize(at + JsonStringBound(s.size()));
  char* end = WriteJsonString(out->data() + at, s);
  out->resize(static_cast<size_t>(end - out->data()));
}

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_JSON_TEXT_H_
