#include "lib/base/utf8.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ferry::base {

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  // ASCII, the usual case, answered first: eight bytes at a time (the last eight overlapping), or a short text's bytes
  // or-ed together.
  if (n >= 8) {
    uint64_t any = 0, w;
    for (size_t k = 0; k + 8 <= n; k += 8) {
      std::memcpy(&w, p + k, 8);
      any |= w;
    }
    std::memcpy(&w, p + n - 8, 8);
    if (((any | w) & 0x8080808080808080ull) == 0) return true;
  } else {
    unsigned any = 0;
    for (size_t k = 0; k < n; ++k) any |= p[k];
    if (any < 0x80) return true;
  }
  size_t i = 0;
  while (i < n) {
    // ASCII, eight bytes at a time (most text is).
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ull) != 0) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = p[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return false;  // overlong
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;                                               // surrogate
    i += len;
  }
  return true;
}

}  // namespace ferry::base
