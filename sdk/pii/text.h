// Byte-level helpers shared by the detectors and the rules: ASCII classes from one 256-entry table, and the
// boundary rules every detector match obeys. Internal to sdk/pii.
#ifndef FERRY_SDK_PII_TEXT_H_
#define FERRY_SDK_PII_TEXT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ferry::pii {

enum : uint8_t { kClsDigit = 1, kClsAlpha = 2, kClsHex = 4, kClsLocal = 8, kClsTrigger = 16, kClsDomain = 32 };

constexpr std::array<uint8_t, 256> MakeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] |= kClsDigit | kClsHex | kClsLocal | kClsTrigger | kClsDomain;
  for (int c = 'a'; c <= 'z'; ++c) t[c] |= kClsAlpha | kClsLocal | kClsDomain;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] |= kClsAlpha | kClsLocal | kClsDomain;
  for (int c = 'a'; c <= 'f'; ++c) t[c] |= kClsHex;
  for (int c = 'A'; c <= 'F'; ++c) t[c] |= kClsHex;
  for (char c : {'.', '_', '%', '+', '-'}) t[static_cast<unsigned char>(c)] |= kClsLocal;
  for (char c : {'.', '-'}) t[static_cast<unsigned char>(c)] |= kClsDomain;
  t['@'] |= kClsTrigger;
  t[':'] |= kClsTrigger;
  return t;
}
inline constexpr std::array<uint8_t, 256> kCls = MakeClasses();

inline uint8_t Cls(unsigned char c) { return kCls[c]; }
inline bool IsDigit(unsigned char c) { return Cls(c) & kClsDigit; }
inline bool IsAlnum(unsigned char c) { return Cls(c) & (kClsDigit | kClsAlpha); }
inline bool IsHex(unsigned char c) { return Cls(c) & kClsHex; }
inline int HexVal(unsigned char c) { return IsDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10; }
inline char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
inline bool IsSep(unsigned char c) { return c == ' ' || c == '-'; }

// The byte at p, or 0 past the end.
inline unsigned char At(std::string_view s, size_t p) { return p < s.size() ? static_cast<unsigned char>(s[p]) : 0; }

// A match may not continue a run of letters/digits, nor a dotted or dashed number ("10.0.19045.2965", "2026-01").
inline bool LeftOk(std::string_view s, size_t i) {
  if (i == 0) return true;
  unsigned char p = s[i - 1];
  if (IsAlnum(p)) return false;
  if ((p == '.' || p == '-') && i >= 2 && IsDigit(s[i - 2])) return false;
  return true;
}
inline bool RightOk(std::string_view s, size_t j) {
  if (j >= s.size()) return true;
  unsigned char c = s[j];
  if (IsAlnum(c)) return false;
  if ((c == '.' || c == '-') && IsDigit(At(s, j + 1))) return false;
  return true;
}

inline size_t SkipAlnum(std::string_view s, size_t i) {
  while (i < s.size() && IsAlnum(s[i])) ++i;
  return i;
}

// Number of bytes of the UTF-8 character starting with lead byte c (1 for a stray continuation byte).
inline size_t Utf8Len(unsigned char c) {
  if (c < 0xC0) return 1;
  if (c < 0xE0) return 2;
  if (c < 0xF0) return 3;
  return 4;
}

}  // namespace ferry::pii

#endif  // FERRY_SDK_PII_TEXT_H_
