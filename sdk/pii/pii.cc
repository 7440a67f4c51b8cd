// On-device PII masking. See pii.h for the rules and docs/PII.md for the reasoning behind each detector.
//
// A string is scanned in one forward pass over its UTF-8 bytes after a cheap pre-check (no digit, '@' or ':' means
// no PII). Every match is pure ASCII and bounded by non-alphanumerics, so a replacement never splits a multi-byte
// character. Matches are collected first and the output is built only when there is at least one.
#include "sdk/pii/pii.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

namespace ferry::core {
namespace {

using nlohmann::json;

enum Det : uint8_t { kEmail = 0, kPhone, kCnId, kCard, kIp, kNumDet };
constexpr const char* kDetNames[kNumDet] = {"email", "phone", "cn_id", "card", "ip"};
constexpr const char* kRedactText[kNumDet] = {"[email]", "[phone]", "[cn_id]", "[card]", "[ip]"};

// ---------------------------------------------------------------------------------------------------------------
// Byte classes.

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
constexpr std::array<uint8_t, 256> kCls = MakeClasses();

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

// ---------------------------------------------------------------------------------------------------------------
// Matches.

struct Match {
  uint32_t begin = 0;
  uint32_t end = 0;
  uint8_t det = 0;
  uint8_t sub = 0;   // phone: 0 = China mobile, 1 = other E.164. ip: 4 or 6.
  uint32_t aux = 0;  // email: offset of '@'; China mobile: offset of the national number; IPv6: first two groups.
};

// China mobile: optional "+86" / "0086" / "86" and one separator, then 1[3-9]x xxxx xxxx with an optional single
// space or dash after the 3rd and the 7th digit. Returns the end offset, or 0.
size_t MatchCnMobile(std::string_view s, size_t i, size_t* national) {
  size_t p = i;
  auto prefix = [&](std::string_view pre) {
    if (s.substr(p, pre.size()) != pre) return false;
    size_t q = p + pre.size();
    if (IsSep(At(s, q))) ++q;
    if (At(s, q) != '1') return false;
    p = q;
    return true;
  };
  if (At(s, p) == '+') {
    if (!prefix("+86")) return 0;
  } else if (!prefix("0086")) {
    prefix("86");
  }
  *national = p;
  if (At(s, p) != '1') return 0;
  unsigned char d1 = At(s, p + 1);
  if (d1 < '3' || d1 > '9' || !IsDigit(At(s, p + 2))) return 0;
  p += 3;
  for (int group = 0; group < 2; ++group) {
    if (IsSep(At(s, p)) && IsDigit(At(s, p + 1))) ++p;
    for (int k = 0; k < 4; ++k, ++p) {
      if (!IsDigit(At(s, p))) return 0;
    }
  }
  return RightOk(s, p) ? p : 0;
}

// "+" then 8-15 digits, single spaces or dashes allowed between digits.
size_t MatchE164(std::string_view s, size_t i) {
  size_t p = i + 1;
  if (!IsDigit(At(s, p))) return 0;
  int count = 0;
  while (p < s.size()) {
    unsigned char c = s[p];
    if (IsDigit(c)) {
      ++count;
      ++p;
    } else if (IsSep(c) && IsDigit(At(s, p + 1))) {
      ++p;
    } else {
      break;
    }
  }
  if (count < 8 || count > 15) return 0;
  return RightOk(s, p) ? p : 0;
}

bool PlausibleDate(const char* d) {
  auto num = [&](int off, int len) {
    int v = 0;
    for (int k = 0; k < len; ++k) v = v * 10 + (d[off + k] - '0');
    return v;
  };
  int year = num(0, 4), month = num(4, 2), day = num(6, 2);
  if (year < 1900 || year > 2099 || month < 1 || month > 12 || day < 1) return false;
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  int dim = kDays[month - 1] + ((month == 2 && leap) ? 1 : 0);
  return day <= dim;
}

// 18-character PRC resident identity number: 17 digits + check char, ISO 7064 MOD 11-2, birth date YYYYMMDD.
bool ValidCnId(const char* d) {
  static constexpr int kW[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  int sum = 0;
  for (int k = 0; k < 17; ++k) {
    if (!IsDigit(d[k])) return false;
    sum += (d[k] - '0') * kW[k];
  }
  if (d[0] == '0') return false;
  char expect = "10X98765432"[sum % 11];
  char got = d[17] == 'x' ? 'X' : d[17];
  return got == expect && PlausibleDate(d + 6);
}

bool LuhnOk(const char* d, int n) {
  int sum = 0;
  for (int k = 0; k < n; ++k) {
    int x = d[n - 1 - k] - '0';
    if (k & 1) {
      x *= 2;
      if (x > 9) x -= 9;
    }
    sum += x;
  }
  return sum % 10 == 0;
}

// Payment-card prefix rule (ISO/IEC 7812 major industry identifier 2-6; 13-digit numbers only for Visa's 4) so
// that epoch-millisecond timestamps (13 digits starting with 1) and similar ids are never taken for cards.
bool CardPrefixOk(const char* d, int n) {
  if (d[0] < '2' || d[0] > '6') return false;
  return n != 13 || d[0] == '4';
}

// 13-19 digits contiguous, or grouped: a first group of 4-6 digits, then groups of 1-6 digits separated by the same
// single space or dash. Longest candidate first, shorter ones at group boundaries.
size_t MatchCard(std::string_view s, size_t i, size_t run, int* ndigits) {
  char buf[19];
  if (run >= 13) {
    if (run > 19 || !RightOk(s, i + run)) return 0;
    std::memcpy(buf, s.data() + i, run);
    int n = static_cast<int>(run);
    if (!CardPrefixOk(buf, n) || !LuhnOk(buf, n)) return 0;
    *ndigits = n;
    return i + run;
  }
  if (run < 4 || run > 6) return 0;
  unsigned char sep = At(s, i + run);
  if (!IsSep(sep) || !IsDigit(At(s, i + run + 1))) return 0;
  std::memcpy(buf, s.data() + i, run);
  int total = static_cast<int>(run);
  size_t ends[19];
  int totals[19];
  int groups = 0;
  size_t p = i + run;
  while (At(s, p) == sep && IsDigit(At(s, p + 1))) {
    size_t q = p + 1;
    size_t r = q;
    while (r < s.size() && IsDigit(s[r])) ++r;
    size_t len = r - q;
    if (len > 6 || total + static_cast<int>(len) > 19) break;
    std::memcpy(buf + total, s.data() + q, len);
    total += static_cast<int>(len);
    ends[groups] = r;
    totals[groups] = total;
    ++groups;
    p = r;
  }
  for (int g = groups - 1; g >= 0; --g) {
    int n = totals[g];
    if (n < 13) break;
    if (RightOk(s, ends[g]) && CardPrefixOk(buf, n) && LuhnOk(buf, n)) {
      *ndigits = n;
      return ends[g];
    }
  }
  return 0;
}

// Four dotted decimal octets 0-255 (1-3 digits each). Returns the end offset, or 0. No boundary check.
size_t ParseIPv4(std::string_view s, size_t p) {
  for (int k = 0; k < 4; ++k) {
    int v = 0, len = 0;
    while (len < 4 && IsDigit(At(s, p))) {
      v = v * 10 + (s[p] - '0');
      ++p;
      ++len;
    }
    if (len == 0 || len > 3 || v > 255) return 0;
    if (k < 3) {
      if (At(s, p) != '.' || !IsDigit(At(s, p + 1))) return 0;
      ++p;
    }
  }
  return p;
}

inline bool LeftOk6(std::string_view s, size_t i) { return LeftOk(s, i) && (i == 0 || s[i - 1] != ':'); }

// IPv6: hex groups of 1-4 digits, at most one "::", an optional dotted IPv4 tail. Returns the end offset, or 0;
// *first2 receives the first two (expanded) groups.
size_t ParseIPv6(std::string_view s, size_t i, uint32_t* first2) {
  uint16_t g[8] = {0};
  int ng = 0, dbl = -1;
  size_t p = i;
  if (At(s, p) == ':') {
    if (At(s, p + 1) != ':') return 0;
    dbl = 0;
    p += 2;
  }
  for (;;) {
    if (ng + (dbl >= 0 ? 1 : 0) >= 8) break;  // only after "::" closing a full address; the checks below reject it
    unsigned char c = At(s, p);
    if (!IsHex(c)) break;  // only legal right after "::"
    if ((ng > 0 || dbl >= 0) && ng <= 6 && IsDigit(c)) {
      size_t v4 = ParseIPv4(s, p);
      if (v4 != 0) {
        g[ng++] = 0;  // the tail's values do not matter for masking
        g[ng++] = 0;
        p = v4;
        break;
      }
    }
    int v = 0, len = 0;
    while (len < 5 && IsHex(At(s, p))) {
      v = v * 16 + HexVal(s[p]);
      ++p;
      ++len;
    }
    if (len > 4) return 0;
    g[ng++] = static_cast<uint16_t>(v);
    if (At(s, p) == ':' && At(s, p + 1) == ':') {
      if (dbl >= 0) return 0;
      dbl = ng;
      p += 2;
    } else if (At(s, p) == ':' && IsHex(At(s, p + 1)) && ng + (dbl >= 0 ? 1 : 0) < 8) {
      ++p;
    } else {
      break;
    }
  }
  if (ng == 0) return 0;
  if (dbl < 0 ? ng != 8 : ng > 7) return 0;
  // Right boundary: not inside a longer token ("::1:8080" is read whole; "fe80::1: up" ends before the colon).
  unsigned char c = At(s, p);
  if (IsAlnum(c) || (c == '.' && IsDigit(At(s, p + 1)))) return 0;
  if (c == ':' && (IsHex(At(s, p + 1)) || At(s, p + 1) == ':')) return 0;
  uint32_t a = 0, b = 0;
  if (dbl < 0 || dbl >= 2) {
    a = g[0];
    b = g[1];
  } else if (dbl == 1) {
    a = g[0];
  }
  *first2 = (a << 16) | b;
  return p;
}

// Email: local part [A-Za-z0-9._%+-]+ (ASCII, so it stops at Chinese text), '@', a domain of at least two labels
// whose last label is 2+ letters.
size_t MatchEmailDomain(std::string_view s, size_t at) {
  size_t p = at + 1;
  while (p < s.size() && (Cls(s[p]) & kClsDomain)) ++p;
  while (p > at + 1 && (s[p - 1] == '.' || s[p - 1] == '-')) --p;
  size_t label_begin = at + 1;
  int labels = 0;
  bool last_alpha = true;
  for (size_t q = at + 1; q <= p; ++q) {
    if (q == p || s[q] == '.') {
      size_t len = q - label_begin;
      if (len == 0 || s[label_begin] == '-' || s[q - 1] == '-') return 0;
      ++labels;
      last_alpha = len >= 2;
      for (size_t k = label_begin; k < q && last_alpha; ++k) last_alpha = (Cls(s[k]) & kClsAlpha) != 0;
      label_begin = q + 1;
    }
  }
  if (labels < 2 || !last_alpha) return 0;
  return p;
}

// Small inline vector of matches: no allocation for up to 8 matches.
class MatchList {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Match& operator[](size_t k) { return k < kInline ? inline_[k] : spill_[k - kInline]; }
  const Match& operator[](size_t k) const { return k < kInline ? inline_[k] : spill_[k - kInline]; }
  Match& back() { return (*this)[size_ - 1]; }
  void push_back(const Match& m) {
    if (size_ < kInline) {
      inline_[size_] = m;
    } else {
      spill_.push_back(m);
    }
    ++size_;
  }
  void pop_back() {
    --size_;
    if (size_ >= kInline) spill_.pop_back();
  }

 private:
  static constexpr size_t kInline = 8;
  std::array<Match, kInline> inline_;
  std::vector<Match> spill_;
  size_t size_ = 0;
};

// ---------------------------------------------------------------------------------------------------------------
// Path patterns.

struct Pattern {
  std::vector<std::string> segs;  // a leading any-depth "*" is not stored here
  bool any_depth = false;
  int literals = 0;
  std::string text;
};

using Path = std::vector<std::string_view>;

bool SegMatch(const std::string& pat, std::string_view key) {
  if (pat.size() == 1 && pat[0] == '*') return true;
  if (pat.size() != key.size()) return false;
  for (size_t k = 0; k < key.size(); ++k) {
    if (Lower(pat[k]) != Lower(key[k])) return false;
  }
  return true;
}

bool MatchFull(const Pattern& pt, const Path& path) {
  size_t m = pt.segs.size();
  if (pt.any_depth ? path.size() < m : path.size() != m) return false;
  size_t off = path.size() - m;
  for (size_t k = 0; k < m; ++k) {
    if (!SegMatch(pt.segs[k], path[off + k])) return false;
  }
  return true;
}

// Could a descendant of `path` match?
bool MatchPrefix(const Pattern& pt, const Path& path) {
  if (pt.any_depth) return true;
  if (path.size() >= pt.segs.size()) return false;
  for (size_t k = 0; k < path.size(); ++k) {
    if (!SegMatch(pt.segs[k], path[k])) return false;
  }
  return true;
}

// The same pattern up to ASCII case ("*" only equals "*").
bool SamePattern(const Pattern& a, const Pattern& b) {
  if (a.any_depth != b.any_depth || a.segs.size() != b.segs.size()) return false;
  for (size_t k = 0; k < a.segs.size(); ++k) {
    const std::string& x = a.segs[k];
    const std::string& y = b.segs[k];
    if (x.size() != y.size()) return false;
    for (size_t c = 0; c < x.size(); ++c) {
      if (Lower(x[c]) != Lower(y[c])) return false;
    }
  }
  return true;
}

base::Result<Pattern> ParsePattern(const std::string& text) {
  Pattern pt;
  pt.text = text;
  if (text.empty()) return base::Status::InvalidArgument("pii rules: empty path pattern");
  size_t start = 0;
  for (;;) {
    size_t dot = text.find('.', start);
    std::string seg = text.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (seg.empty()) return base::Status::InvalidArgument("pii rules: empty segment in path pattern \"" + text + "\"");
    if (seg != "*" && seg.find('*') != std::string::npos) {
      return base::Status::InvalidArgument("pii rules: \"*\" must be a whole segment in path pattern \"" + text + "\"");
    }
    pt.segs.push_back(std::move(seg));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (pt.segs.size() > 1 && pt.segs[0] == "*") {
    pt.any_depth = true;
    pt.segs.erase(pt.segs.begin());
  }
  for (const auto& s : pt.segs) pt.literals += s != "*";
  return pt;
}

struct PathRule {
  Pattern pattern;
  PiiAction action = PiiAction::kOff;
};

int Strictness(PiiAction a) {
  switch (a) {
    case PiiAction::kDrop: return 4;
    case PiiAction::kRedact: return 3;
    case PiiAction::kHash: return 2;
    case PiiAction::kMask: return 1;
    case PiiAction::kOff: return 0;
  }
  return 0;
}

bool ParseAction(const json& v, bool allow_drop_off, PiiAction* out) {
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  if (s == "redact") {
    *out = PiiAction::kRedact;
  } else if (s == "mask") {
    *out = PiiAction::kMask;
  } else if (s == "hash") {
    *out = PiiAction::kHash;
  } else if (s == "drop" && allow_drop_off) {
    *out = PiiAction::kDrop;
  } else if (s == "off" && allow_drop_off) {
    *out = PiiAction::kOff;
  } else {
    return false;
  }
  return true;
}

void AppendHex(std::string* out, const uint8_t* p, size_t n) {
  static constexpr char kHexDigits[] = "0123456789abcdef";
  for (size_t k = 0; k < n; ++k) {
    out->push_back(kHexDigits[p[k] >> 4]);
    out->push_back(kHexDigits[p[k] & 15]);
  }
}

void AppendHex16(std::string* out, uint32_t v) {
  char buf[8];
  int n = 0;
  do {
    buf[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  while (n > 0) out->push_back(buf[--n]);
}

// Number of bytes of the UTF-8 character starting with lead byte c (1 for a stray continuation byte).
inline size_t Utf8Len(unsigned char c) {
  if (c < 0xC0) return 1;
  if (c < 0xE0) return 2;
  if (c < 0xF0) return 3;
  return 4;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------

struct PiiMasker::Impl {
  std::array<PiiAction, kNumDet> det{};
  bool any_detector = true;
  std::vector<PathRule> rules;  // highest priority first
  bool has_allow = false;
  std::vector<Pattern> allow;
  base::SecretBytes key;

  // Scanning and rendering.
  void Scan(std::string_view s, bool has_colon, MatchList* m) const;
  bool TryEmail(std::string_view s, size_t at, MatchList* m, size_t* end) const;
  bool TryDigits(std::string_view s, size_t i, bool has_colon, Match* mt) const;
  // Runs the detectors over s. Returns true when s has matches; then *out holds the new text (unless a detector
  // whose action is drop matched and drop_ok, then *drop is set and *out is unspecified).
  bool MaskInto(std::string_view s, std::string* out, PiiReport* rep, bool drop_ok, bool* drop) const;
  void AppendReplacement(std::string_view s, const Match& m, PiiAction a, std::string* out) const;
  void AppendHash(std::string_view data, std::string* out) const;

  // Whole-value actions of path rules.
  std::string PathMask(std::string_view v) const;
  std::string PathHash(std::string_view v) const;
  const PathRule* Lookup(const Path& path) const;
};

void PiiMasker::Impl::AppendHash(std::string_view data, std::string* out) const {
  uint8_t h[16];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(data.data()), data.size(), key.data(),
                     key.size());
  out->append("h:");
  AppendHex(out, h, sizeof h);
}

bool PiiMasker::Impl::TryEmail(std::string_view s, size_t at, MatchList* m, size_t* end) const {
  size_t left = at;
  while (left > 0 && (Cls(s[left - 1]) & kClsLocal)) --left;
  // A match already found inside the local part ("13812345678@163.com") gives way to the email; one that started
  // before it and runs into it keeps its bytes.
  size_t keep = m->size();
  while (keep > 0 && (*m)[keep - 1].begin >= left) --keep;
  if (keep > 0 && (*m)[keep - 1].end > left) left = (*m)[keep - 1].end;
  while (left < at && s[left] == '.') ++left;
  if (left == at) return false;
  size_t dend = MatchEmailDomain(s, at);
  if (dend == 0) return false;
  while (m->size() > keep) m->pop_back();
  Match mt;
  mt.begin = static_cast<uint32_t>(left);
  mt.end = static_cast<uint32_t>(dend);
  mt.det = kEmail;
  mt.aux = static_cast<uint32_t>(at);
  m->push_back(mt);
  *end = dend;
  return true;
}

bool PiiMasker::Impl::TryDigits(std::string_view s, size_t i, bool has_colon, Match* mt) const {
  size_t r = i;
  while (r < s.size() && IsDigit(s[r])) ++r;
  size_t run = r - i;
  unsigned char nx = At(s, r);
  mt->begin = static_cast<uint32_t>(i);
  if (det[kIp] != PiiAction::kOff) {
    if (nx == '.' && run <= 3) {
      size_t e = ParseIPv4(s, i);
      if (e != 0 && RightOk(s, e)) {
        mt->end = static_cast<uint32_t>(e);
        mt->det = kIp;
        mt->sub = 4;
        return true;
      }
    }
    if (has_colon && run <= 4 && (nx == ':' || (IsHex(nx) && !IsDigit(nx))) && (i == 0 || s[i - 1] != ':')) {
      uint32_t first2 = 0;
      size_t e = ParseIPv6(s, i, &first2);
      if (e != 0) {
        mt->end = static_cast<uint32_t>(e);
        mt->det = kIp;
        mt->sub = 6;
        mt->aux = first2;
        return true;
      }
    }
  }
  if (det[kCnId] != PiiAction::kOff && (run == 18 || (run == 17 && (nx == 'X' || nx == 'x'))) &&
      ValidCnId(s.data() + i) && RightOk(s, i + 18)) {
    mt->end = static_cast<uint32_t>(i + 18);
    mt->det = kCnId;
    return true;
  }
  if (det[kPhone] != PiiAction::kOff && (s[i] == '1' || s[i] == '8' || s[i] == '0')) {
    size_t national = 0;
    size_t e = MatchCnMobile(s, i, &national);
    if (e != 0) {
      mt->end = static_cast<uint32_t>(e);
      mt->det = kPhone;
      mt->sub = 0;
      mt->aux = static_cast<uint32_t>(national);
      return true;
    }
  }
  if (det[kCard] != PiiAction::kOff && s[i] >= '2' && s[i] <= '6') {
    int nd = 0;
    size_t e = MatchCard(s, i, run, &nd);
    if (e != 0) {
      mt->end = static_cast<uint32_t>(e);
      mt->det = kCard;
      return true;
    }
  }
  return false;
}

void PiiMasker::Impl::Scan(std::string_view s, bool has_colon, MatchList* m) const {
  const bool email_on = det[kEmail] != PiiAction::kOff;
  const bool phone_on = det[kPhone] != PiiAction::kOff;
  const bool ip6_on = det[kIp] != PiiAction::kOff && has_colon;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    uint8_t cls = Cls(c);
    if (cls & kClsDigit) {
      Match mt;
      if (LeftOk(s, i) && TryDigits(s, i, has_colon, &mt)) {
        m->push_back(mt);
        i = mt.end;
      } else {
        i = SkipAlnum(s, i);
      }
    } else if (cls & kClsAlpha) {
      if (ip6_on && (cls & kClsHex) && LeftOk6(s, i)) {
        Match mt;
        uint32_t first2 = 0;
        size_t e = ParseIPv6(s, i, &first2);
        if (e != 0) {
          mt.begin = static_cast<uint32_t>(i);
          mt.end = static_cast<uint32_t>(e);
          mt.det = kIp;
          mt.sub = 6;
          mt.aux = first2;
          m->push_back(mt);
          i = e;
          continue;
        }
      }
      i = SkipAlnum(s, i);
    } else if (c == '@') {
      size_t e = 0;
      i = (email_on && TryEmail(s, i, m, &e)) ? e : i + 1;
    } else if (c == '+') {
      size_t e = 0, national = 0;
      if (phone_on && (i == 0 || !IsAlnum(s[i - 1]))) {
        Match mt;
        mt.begin = static_cast<uint32_t>(i);
        mt.det = kPhone;
        if ((e = MatchCnMobile(s, i, &national)) != 0) {
          mt.aux = static_cast<uint32_t>(national);
        } else if ((e = MatchE164(s, i)) != 0) {
          mt.sub = 1;
        }
        if (e != 0) {
          mt.end = static_cast<uint32_t>(e);
          m->push_back(mt);
          i = e;
          continue;
        }
      }
      ++i;
    } else if (c == ':' && ip6_on && At(s, i + 1) == ':' && LeftOk6(s, i)) {
      uint32_t first2 = 0;
      size_t e = ParseIPv6(s, i, &first2);
      if (e != 0) {
        Match mt;
        mt.begin = static_cast<uint32_t>(i);
        mt.end = static_cast<uint32_t>(e);
        mt.det = kIp;
        mt.sub = 6;
        mt.aux = first2;
        m->push_back(mt);
        i = e;
      } else {
        i += 2;
      }
    } else {
      ++i;
    }
  }
}

void PiiMasker::Impl::AppendReplacement(std::string_view s, const Match& m, PiiAction a, std::string* out) const {
  std::string_view text = s.substr(m.begin, m.end - m.begin);
  if (a == PiiAction::kRedact || a == PiiAction::kDrop) {
    out->append(kRedactText[m.det]);
    return;
  }
  // Digits of the match (phone, card), at most 19 + prefix.
  char digits[32];
  int nd = 0;
  size_t digits_from = (m.det == kPhone && m.sub == 0) ? m.aux : m.begin;
  if (m.det == kPhone || m.det == kCard) {
    for (size_t k = digits_from; k < m.end && nd < 32; ++k) {
      if (IsDigit(s[k])) digits[nd++] = s[k];
    }
  }
  if (a == PiiAction::kHash) {
    std::string norm;
    switch (m.det) {
      case kEmail:
      case kIp:
        norm.assign(text);
        for (char& ch : norm) ch = Lower(ch);
        break;
      case kPhone:
        if (m.sub == 1) norm.push_back('+');
        norm.append(digits, nd);
        break;
      case kCard: norm.assign(digits, nd); break;
      case kCnId:
        norm.assign(text);
        if (norm.back() == 'x') norm.back() = 'X';
        break;
      default: break;
    }
    AppendHash(norm, out);
    base::WipeString(norm);
    return;
  }
  // kMask
  switch (m.det) {
    case kEmail:
      out->push_back(text[0]);
      out->append("***");
      out->append(s.substr(m.aux, m.end - m.aux));
      break;
    case kPhone:
      if (m.sub == 0) {
        out->append(s.substr(m.begin, m.aux - m.begin));
        out->append(digits, 3);
        out->append("****");
        out->append(digits + 7, 4);
      } else {
        out->push_back('+');
        out->append(digits, 2);
        out->append(static_cast<size_t>(nd - 6), '*');
        out->append(digits + nd - 4, 4);
      }
      break;
    case kCnId:
      out->append(text.substr(0, 6));
      out->append(8, '*');
      out->append(text.substr(14, 4));
      break;
    case kCard:
      out->append(static_cast<size_t>(nd - 4), '*');
      out->append(digits + nd - 4, 4);
      break;
    case kIp:
      if (m.sub == 4) {
        size_t dot1 = text.find('.');
        size_t dot2 = text.find('.', dot1 + 1);
        out->append(text.substr(0, dot2 + 1));
        out->append("*.*");
      } else {
        AppendHex16(out, m.aux >> 16);
        out->push_back(':');
        AppendHex16(out, m.aux & 0xFFFF);
        out->append(":*");
      }
      break;
    default: break;
  }
}

bool PiiMasker::Impl::MaskInto(std::string_view s, std::string* out, PiiReport* rep, bool drop_ok, bool* drop) const {
  if (!any_detector) return false;
  // Pre-check: no digit, '@' or ':' -> nothing any detector can match.
  bool trigger = false, has_colon = false;
  for (unsigned char c : s) {
    if (Cls(c) & kClsTrigger) {
      trigger = true;
      if (c == ':') {
        has_colon = true;
        break;
      }
    }
  }
  if (!trigger) return false;  // (the loop ran to the end unless it saw a colon)
  MatchList m;
  Scan(s, has_colon, &m);
  if (m.empty()) return false;
  if (drop_ok) {
    for (size_t k = 0; k < m.size(); ++k) {
      if (det[m[k].det] == PiiAction::kDrop) {
        *drop = true;
        return true;
      }
    }
  }
  out->clear();
  out->reserve(s.size() + 16 * m.size());
  size_t pos = 0;
  for (size_t k = 0; k < m.size(); ++k) {
    out->append(s.substr(pos, m[k].begin - pos));
    AppendReplacement(s, m[k], det[m[k].det], out);
    pos = m[k].end;
  }
  out->append(s.substr(pos));
  if (rep != nullptr) rep->values_masked += static_cast<uint32_t>(m.size());
  return true;
}

std::string PiiMasker::Impl::PathMask(std::string_view v) const {
  // Keep the first and the last UTF-8 character, one star for each character between; 2 characters or fewer: all
  // stars.
  size_t chars = 0, first_len = 0, last_begin = 0;
  for (size_t p = 0; p < v.size();) {
    size_t len = std::min(Utf8Len(static_cast<unsigned char>(v[p])), v.size() - p);
    if (chars == 0) first_len = len;
    last_begin = p;
    p += len;
    ++chars;
  }
  std::string out;
  if (chars <= 2) return std::string(chars, '*');
  out.append(v.substr(0, first_len));
  out.append(chars - 2, '*');
  out.append(v.substr(last_begin));
  return out;
}

std::string PiiMasker::Impl::PathHash(std::string_view v) const {
  std::string out;
  AppendHash(v, &out);
  return out;
}

const PathRule* PiiMasker::Impl::Lookup(const Path& path) const {
  for (const PathRule& r : rules) {
    if (MatchFull(r.pattern, path)) return &r;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------------------------
// Object walking.

namespace {

class Walker {
 public:
  Walker(const PiiMasker::Impl& im, PiiReport* rep) : im_(im), rep_(rep) { path_.reserve(8); }

  void Prune(json::object_t* obj) {
    for (auto it = obj->begin(); it != obj->end();) {
      path_.push_back(it->first);
      bool keep = false;
      bool whole = false;
      for (const Pattern& p : im_.allow) {
        if (MatchFull(p, path_)) {
          keep = whole = true;
          break;
        }
      }
      if (!whole && (it->second.is_object() || it->second.is_array())) {
        for (const Pattern& p : im_.allow) {
          if (MatchPrefix(p, path_)) {
            keep = true;
            break;
          }
        }
        if (keep) PruneInside(&it->second);
      }
      path_.pop_back();
      if (keep) {
        ++it;
      } else {
        it = obj->erase(it);
        ++rep_->keys_dropped;
      }
    }
  }

  void Object(json::object_t* obj, PiiAction inherited) {
    for (auto it = obj->begin(); it != obj->end();) {
      path_.push_back(it->first);
      PiiAction act = inherited;
      if (const PathRule* r = im_.Lookup(path_)) act = r->action;
      bool drop = false;
      switch (act) {
        case PiiAction::kDrop: drop = true; break;
        case PiiAction::kRedact:
          it->second = "[redacted]";
          ++rep_->values_masked;
          break;
        case PiiAction::kMask:
        case PiiAction::kHash:
        case PiiAction::kOff: drop = Value(&it->second, act); break;
      }
      path_.pop_back();
      if (drop) {
        it = obj->erase(it);
        ++rep_->keys_dropped;
      } else {
        ++it;
      }
    }
  }

 private:
  void PruneInside(json* v) {
    if (v->is_object()) {
      Prune(v->get_ptr<json::object_t*>());
    } else if (v->is_array()) {
      auto* arr = v->get_ptr<json::array_t*>();
      for (auto it = arr->begin(); it != arr->end();) {
        if (it->is_object() || it->is_array()) {
          PruneInside(&*it);
          ++it;
        } else {
          it = arr->erase(it);
        }
      }
    }
  }

  // Returns true when the key holding v must be dropped (a detector with action drop matched inside it).
  bool Value(json* v, PiiAction act) {
    switch (v->type()) {
      case json::value_t::object: Object(v->get_ptr<json::object_t*>(), act); return false;
      case json::value_t::array:
        for (json& e : *v->get_ptr<json::array_t*>()) {
          if (Value(&e, act)) return true;
        }
        return false;
      case json::value_t::string: {
        std::string* str = v->get_ptr<std::string*>();
        if (act == PiiAction::kMask || act == PiiAction::kHash) {
          *str = act == PiiAction::kMask ? im_.PathMask(*str) : im_.PathHash(*str);
          ++rep_->values_masked;
          return false;
        }
        bool drop = false;
        if (im_.MaskInto(*str, &scratch_, rep_, true, &drop)) {
          if (drop) return true;
          str->swap(scratch_);
        }
        return false;
      }
      case json::value_t::boolean:
      case json::value_t::number_integer:
      case json::value_t::number_unsigned:
      case json::value_t::number_float:
        if (act == PiiAction::kMask || act == PiiAction::kHash) {
          std::string text = v->dump();
          *v = act == PiiAction::kMask ? im_.PathMask(text) : im_.PathHash(text);
          ++rep_->values_masked;
        }
        return false;
      default: return false;
    }
  }

  const PiiMasker::Impl& im_;
  PiiReport* rep_;
  Path path_;
  std::string scratch_;
};

constexpr const char* kDefaultDrops[] = {"*.password", "*.token", "*.secret"};

}  // namespace

// ---------------------------------------------------------------------------------------------------------------

PiiMasker::PiiMasker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PiiMasker::~PiiMasker() = default;

base::Result<std::shared_ptr<const PiiMasker>> PiiMasker::Create(std::string_view rules_json,
                                                                 const base::SecretBytes& fallback_hash_key) {
  if (!base::EnsureSodium()) return base::Status::Internal("pii: libsodium failed to initialise");
  auto im = std::make_unique<Impl>();
  im->det.fill(PiiAction::kRedact);

  json rules = json::object();
  bool blank = std::all_of(rules_json.begin(), rules_json.end(),
                           [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
  if (!blank) {
    rules = json::parse(rules_json.begin(), rules_json.end(), nullptr, false);
    if (rules.is_discarded()) return base::Status::InvalidArgument("pii rules: not valid JSON");
    if (!rules.is_object()) return base::Status::InvalidArgument("pii rules: must be a JSON object");
  }

  bool key_from_rules = false;
  std::vector<PathRule> user_rules;
  for (auto& [name, value] : rules.items()) {
    if (name == "detectors") {
      if (!value.is_object()) return base::Status::InvalidArgument("pii rules: \"detectors\" must be an object");
      for (auto& [dname, dval] : value.items()) {
        int d = -1;
        for (int k = 0; k < kNumDet; ++k) {
          if (dname == kDetNames[k]) d = k;
        }
        if (d < 0) {
          return base::Status::InvalidArgument("pii rules: unknown detector \"" + dname +
                                               "\" (known: email, phone, cn_id, card, ip)");
        }
        if (!ParseAction(dval, true, &im->det[d])) {
          return base::Status::InvalidArgument("pii rules: detector \"" + dname +
                                               "\" has an unknown action (use redact, mask, hash, drop or off)");
        }
      }
    } else if (name == "paths") {
      if (!value.is_object()) return base::Status::InvalidArgument("pii rules: \"paths\" must be an object");
      for (auto& [ptext, pval] : value.items()) {
        auto pat = ParsePattern(ptext);
        if (!pat.ok()) return pat.status();
        PathRule r;
        r.pattern = std::move(pat.value());
        if (!ParseAction(pval, true, &r.action)) {
          return base::Status::InvalidArgument("pii rules: path \"" + ptext +
                                               "\" has an unknown action (use redact, mask, hash, drop or off)");
        }
        user_rules.push_back(std::move(r));
      }
    } else if (name == "allow") {
      if (!value.is_array()) return base::Status::InvalidArgument("pii rules: \"allow\" must be an array of paths");
      im->has_allow = true;
      for (const json& a : value) {
        if (!a.is_string()) return base::Status::InvalidArgument("pii rules: \"allow\" entries must be strings");
        auto pat = ParsePattern(a.get<std::string>());
        if (!pat.ok()) return pat.status();
        im->allow.push_back(std::move(pat.value()));
      }
    } else if (name == "hash_key") {
      if (!value.is_string() || value.get_ref<const std::string&>().size() != 64) {
        return base::Status::InvalidArgument("pii rules: \"hash_key\" must be 64 hex characters");
      }
      std::string hex = value.get<std::string>();
      im->key = base::SecretBytes::FromHex(hex);
      base::WipeString(hex);
      if (im->key.size() != 32) return base::Status::InvalidArgument("pii rules: \"hash_key\" is not valid hex");
      key_from_rules = true;
    } else {
      return base::Status::InvalidArgument("pii rules: unknown key \"" + name +
                                           "\" (known: detectors, paths, allow, hash_key)");
    }
  }
  // The rules object holds the key text too: wipe it.
  if (rules.is_object() && rules.contains("hash_key") && rules["hash_key"].is_string()) {
    base::WipeString(rules["hash_key"].get_ref<std::string&>());
  }
  if (!key_from_rules) {
    if (fallback_hash_key.size() != 32) {
      return base::Status::InvalidArgument(
          "pii: no 32-byte hash key (the rules have no \"hash_key\" and the fallback "
          "key is " +
          std::to_string(fallback_hash_key.size()) + " bytes)");
    }
    im->key = fallback_hash_key;
  }

  for (const char* d : kDefaultDrops) {
    auto pat = ParsePattern(d);
    bool overridden = std::any_of(user_rules.begin(), user_rules.end(),
                                  [&](const PathRule& r) { return SamePattern(r.pattern, pat.value()); });
    if (overridden) continue;
    PathRule r;
    r.pattern = std::move(pat.value());
    r.action = PiiAction::kDrop;
    user_rules.push_back(std::move(r));
  }
  std::stable_sort(user_rules.begin(), user_rules.end(), [](const PathRule& a, const PathRule& b) {
    if (a.pattern.literals != b.pattern.literals) return a.pattern.literals > b.pattern.literals;
    if (Strictness(a.action) != Strictness(b.action)) return Strictness(a.action) > Strictness(b.action);
    if (a.pattern.any_depth != b.pattern.any_depth) return !a.pattern.any_depth;
    if (a.pattern.segs.size() != b.pattern.segs.size()) return a.pattern.segs.size() > b.pattern.segs.size();
    return a.pattern.text < b.pattern.text;
  });
  im->rules = std::move(user_rules);
  im->any_detector = std::any_of(im->det.begin(), im->det.end(), [](PiiAction a) { return a != PiiAction::kOff; });
  return std::shared_ptr<const PiiMasker>(new PiiMasker(std::move(im)));
}

PiiReport PiiMasker::ApplyToObject(nlohmann::json* obj) const {
  PiiReport rep;
  if (obj == nullptr || !obj->is_object()) return rep;
  Walker w(*impl_, &rep);
  auto* o = obj->get_ptr<json::object_t*>();
  if (impl_->has_allow) w.Prune(o);
  w.Object(o, PiiAction::kOff);
  return rep;
}

std::string PiiMasker::MaskString(std::string_view s, PiiReport* report) const {
  std::string out;
  bool drop = false;
  PiiReport local;
  if (impl_->MaskInto(s, &out, report != nullptr ? report : &local, false, &drop)) return out;
  return std::string(s);
}

}  // namespace ferry::core
