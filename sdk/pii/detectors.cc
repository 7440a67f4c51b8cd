// The detector table and the scanner. See detectors.h for what a row is, pii.h for the outputs, and docs/PII.md for
// the reasoning behind each detector.
//
// A string is scanned in one forward pass over its UTF-8 bytes after a cheap pre-check (no digit, '@' or ':' means
// no PII). Every match is pure ASCII and bounded by non-alphanumerics, so a replacement never splits a multi-byte
// character. Matches are collected first and the output is built only when there is at least one.
#include "sdk/pii/detectors.h"

#include <sodium.h>

#include <cstring>
#include <utility>

#include "lib/base/digest.h"
#include "sdk/pii/text.h"

namespace ferry::pii {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Scanners and checks of one kind of text each: the building blocks of the matchers below.

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
size_t CardEnd(std::string_view s, size_t i, size_t run) {
  char buf[19];
  if (run >= 13) {
    if (run > 19 || !RightOk(s, i + run)) return 0;
    std::memcpy(buf, s.data() + i, run);
    int n = static_cast<int>(run);
    if (!CardPrefixOk(buf, n) || !LuhnOk(buf, n)) return 0;
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

// Digits of s[from, to), at most 32 (a phone or card: at most 19 digits plus a prefix). Returns how many.
int CollectDigits(std::string_view s, size_t from, size_t to, char (&digits)[32]) {
  int nd = 0;
  for (size_t k = from; k < to && nd < 32; ++k) {
    if (IsDigit(s[k])) digits[nd++] = s[k];
  }
  return nd;
}

void AppendLower(std::string_view text, std::string* out) {
  size_t at = out->size();
  out->append(text);
  for (size_t k = at; k < out->size(); ++k) (*out)[k] = Lower((*out)[k]);
}

// An IPv6 group as hex without leading zeros ("db8").
void AppendHex16(std::string* out, uint32_t v) {
  char buf[8];
  int n = 0;
  do {
    buf[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  while (n > 0) out->push_back(buf[--n]);
}

std::string_view Text(std::string_view s, const Match& m) { return s.substr(m.begin, m.end - m.begin); }

// ---------------------------------------------------------------------------------------------------------------
// The detectors: matcher, hash normalisation and mask of each, in table order.

// email: local part [A-Za-z0-9._%+-]+ before the '@', a domain after it (MatchEmailDomain). A match found earlier
// inside the local part ("13812345678@163.com") gives way to the email; one that started before it and runs into it
// keeps its bytes. aux: the offset of the '@'.
bool MatchEmail(const Start& at, MatchList* found, Match* m) {
  std::string_view s = at.s;
  size_t left = at.i;
  while (left > 0 && (Cls(s[left - 1]) & kClsLocal)) --left;
  size_t keep = found->size();
  while (keep > 0 && (*found)[keep - 1].begin >= left) --keep;
  if (keep > 0 && (*found)[keep - 1].end > left) left = (*found)[keep - 1].end;
  while (left < at.i && s[left] == '.') ++left;
  if (left == at.i) return false;
  size_t dend = MatchEmailDomain(s, at.i);
  if (dend == 0) return false;
  while (found->size() > keep) found->pop_back();
  m->begin = static_cast<uint32_t>(left);
  m->end = static_cast<uint32_t>(dend);
  m->aux = static_cast<uint32_t>(at.i);
  return true;
}
void NormalizeEmail(std::string_view s, const Match& m, std::string* out) { AppendLower(Text(s, m), out); }
void MaskEmail(std::string_view s, const Match& m, std::string* out) {
  out->push_back(s[m.begin]);
  out->append("***");
  out->append(s.substr(m.aux, m.end - m.aux));
}

// phone: a China mobile number (sub 0; aux: where the national number starts, after a prefix) at a digit or a '+',
// or another E.164 number (sub 1) at a '+'.
bool MatchPhone(const Start& at, MatchList*, Match* m) {
  std::string_view s = at.s;
  size_t i = at.i, national = 0, e = 0;
  if (s[i] == '+') {
    if (i > 0 && IsAlnum(s[i - 1])) return false;
    if ((e = MatchCnMobile(s, i, &national)) != 0) {
      m->aux = static_cast<uint32_t>(national);
    } else if ((e = MatchE164(s, i)) != 0) {
      m->sub = 1;
    } else {
      return false;
    }
  } else {
    if (s[i] != '1' && s[i] != '8' && s[i] != '0') return false;
    if ((e = MatchCnMobile(s, i, &national)) == 0) return false;
    m->aux = static_cast<uint32_t>(national);
  }
  m->end = static_cast<uint32_t>(e);
  return true;
}
size_t PhoneDigitsFrom(const Match& m) { return m.sub == 0 ? m.aux : m.begin; }
void NormalizePhone(std::string_view s, const Match& m, std::string* out) {
  char digits[32];
  int nd = CollectDigits(s, PhoneDigitsFrom(m), m.end, digits);
  if (m.sub == 1) out->push_back('+');
  out->append(digits, nd);
}
void MaskPhone(std::string_view s, const Match& m, std::string* out) {
  char digits[32];
  int nd = CollectDigits(s, PhoneDigitsFrom(m), m.end, digits);
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
}

// cn_id: 18 characters in one run (ValidCnId).
bool MatchCnId(const Start& at, MatchList*, Match* m) {
  std::string_view s = at.s;
  unsigned char nx = At(s, at.i + at.run);
  if (!(at.run == 18 || (at.run == 17 && (nx == 'X' || nx == 'x')))) return false;
  if (!ValidCnId(s.data() + at.i) || !RightOk(s, at.i + 18)) return false;
  m->end = static_cast<uint32_t>(at.i + 18);
  return true;
}
void NormalizeCnId(std::string_view s, const Match& m, std::string* out) {
  out->append(Text(s, m));
  if (out->back() == 'x') out->back() = 'X';
}
void MaskCnId(std::string_view s, const Match& m, std::string* out) {
  std::string_view text = Text(s, m);
  out->append(text.substr(0, 6));
  out->append(8, '*');
  out->append(text.substr(14, 4));
}

// card: CardEnd from a first digit of 2-6.
bool MatchCard(const Start& at, MatchList*, Match* m) {
  unsigned char c = at.s[at.i];
  if (c < '2' || c > '6') return false;
  size_t e = CardEnd(at.s, at.i, at.run);
  if (e == 0) return false;
  m->end = static_cast<uint32_t>(e);
  return true;
}
void NormalizeCard(std::string_view s, const Match& m, std::string* out) {
  char digits[32];
  out->append(digits, CollectDigits(s, m.begin, m.end, digits));
}
void MaskCard(std::string_view s, const Match& m, std::string* out) {
  char digits[32];
  int nd = CollectDigits(s, m.begin, m.end, digits);
  out->append(static_cast<size_t>(nd - 4), '*');
  out->append(digits + nd - 4, 4);
}

// ip: IPv4 (sub 4) at a digit; IPv6 (sub 6; aux: the first two groups) at a digit, a hex letter or a "::", only in
// a string that holds a ':'.
bool MatchIp(const Start& at, MatchList*, Match* m) {
  std::string_view s = at.s;
  size_t i = at.i;
  unsigned char c = s[i];
  if (IsDigit(c)) {
    unsigned char nx = At(s, i + at.run);
    if (nx == '.' && at.run <= 3) {
      size_t e = ParseIPv4(s, i);
      if (e != 0 && RightOk(s, e)) {
        m->end = static_cast<uint32_t>(e);
        m->sub = 4;
        return true;
      }
    }
    if (!at.has_colon || at.run > 4 || !(nx == ':' || (IsHex(nx) && !IsDigit(nx))) || (i > 0 && s[i - 1] == ':')) {
      return false;
    }
  } else if (!at.has_colon || (c == ':' && At(s, i + 1) != ':') || !LeftOk6(s, i)) {
    return false;
  }
  uint32_t first2 = 0;
  size_t e = ParseIPv6(s, i, &first2);
  if (e == 0) return false;
  m->end = static_cast<uint32_t>(e);
  m->sub = 6;
  m->aux = first2;
  return true;
}
void NormalizeIp(std::string_view s, const Match& m, std::string* out) { AppendLower(Text(s, m), out); }
void MaskIp(std::string_view s, const Match& m, std::string* out) {
  std::string_view text = Text(s, m);
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
}

// Which StartAt class each byte is.
constexpr std::array<uint8_t, 256> MakeStarts() {
  std::array<uint8_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = kAtDigit;
  for (int c = 'a'; c <= 'f'; ++c) t[c] = kAtHexLetter;
  for (int c = 'A'; c <= 'F'; ++c) t[c] = kAtHexLetter;
  t['@'] = kAtSign;
  t['+'] = kAtPlus;
  t[':'] = kAtColon;
  return t;
}
constexpr std::array<uint8_t, 256> kStartOf = MakeStarts();

// The table: a detector is a row. At each position the rows are tried in this order and the first match wins, so
// order matters where two detectors can match at one position (an 18-digit resident id can pass Luhn too: cn_id
// comes before card).
constexpr std::array<Detector, kNumDetectors> kDetectors = {{
    // {name, redacted, starts, colon_starts, match, normalize, mask}: see Detector in detectors.h
    {"email", "[email]", kAtSign, 0, MatchEmail, NormalizeEmail, MaskEmail},
    {"phone", "[phone]", kAtDigit | kAtPlus, 0, MatchPhone, NormalizePhone, MaskPhone},
    {"cn_id", "[cn_id]", kAtDigit, 0, MatchCnId, NormalizeCnId, MaskCnId},
    {"card", "[card]", kAtDigit, 0, MatchCard, NormalizeCard, MaskCard},
    {"ip", "[ip]", kAtDigit, kAtHexLetter | kAtColon, MatchIp, NormalizeIp, MaskIp},
}};

}  // namespace

int FindDetector(std::string_view name) {
  for (size_t d = 0; d < kNumDetectors; ++d) {
    if (name == kDetectors[d].name) return static_cast<int>(d);
  }
  return -1;
}

std::string DetectorNames() {
  std::string out;
  for (const Detector& d : kDetectors) {
    if (!out.empty()) out += ", ";
    out += d.name;
  }
  return out;
}

DetectorActions::DetectorActions() {
  of_.fill(PiiAction::kRedact);
  for (size_t d = 0; d < kNumDetectors; ++d) Set(d, PiiAction::kRedact);
}

void DetectorActions::Set(size_t row, PiiAction a) {
  of_[row] = a;
  starts_ = {};
  for (size_t d = 0; d < kNumDetectors; ++d) {
    if (of_[d] == PiiAction::kOff) continue;
    starts_[0] |= kDetectors[d].starts;
    starts_[1] |= kDetectors[d].starts | kDetectors[d].colon_starts;
  }
}

void AppendPseudonym(std::string_view data, const base::SecretBytes& key, std::string* out) {
  uint8_t h[16];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(data.data()), data.size(), key.data(),
                     key.size());
  out->append("h:");
  base::AppendHex(h, sizeof h, out);
}

namespace {

// Tries row D of the table at `at` (starts: the StartAt class of the byte there).
template <size_t D>
inline bool TryRow(const Start& at, uint8_t starts, const DetectorActions& actions, MatchList* found, Match* mt) {
  constexpr Detector det = kDetectors[D];
  if (!((det.starts | (at.has_colon ? det.colon_starts : 0)) & starts) || actions[D] == PiiAction::kOff) return false;
  *mt = Match{};
  mt->begin = static_cast<uint32_t>(at.i);
  mt->det = static_cast<uint8_t>(D);
  return det.match(at, found, mt);
}

// Every row in table order until one matches (unrolled at compile time, so the matchers are direct calls).
template <size_t... D>
inline bool TryRows(std::index_sequence<D...>, const Start& at, uint8_t starts, const DetectorActions& actions,
                    MatchList* found, Match* mt) {
  return (TryRow<D>(at, starts, actions, found, mt) || ...);
}

// Runs the detectors that are on at every position where one may start; a match is added to *m and scanning goes
// on after it. Where nothing matches, a run of letters and digits is skipped whole: no match starts inside a word.
void Scan(std::string_view s, bool has_colon, const DetectorActions& actions, MatchList* m) {
  const uint8_t want = actions.starts(has_colon);
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    uint8_t starts = kStartOf[c] & want;
    // At a digit or a letter a match must not continue a word or a dotted number.
    if (starts != 0 && ((starts & (kAtSign | kAtPlus | kAtColon)) || LeftOk(s, i))) {
      Start at;
      at.s = s;
      at.i = i;
      at.has_colon = has_colon;
      if (starts & kAtDigit) {
        size_t r = i;
        while (r < n && IsDigit(s[r])) ++r;
        at.run = r - i;
      }
      Match mt{};
      if (TryRows(std::make_index_sequence<kNumDetectors>(), at, starts, actions, m, &mt)) {
        m->push_back(mt);
        i = mt.end;
        continue;
      }
    }
    i = (Cls(c) & (kClsDigit | kClsAlpha)) ? SkipAlnum(s, i) : i + 1;
  }
}

void AppendReplacement(std::string_view s, const Match& m, PiiAction a, const base::SecretBytes& key,
                       std::string* out) {
  const Detector& d = kDetectors[m.det];
  switch (a) {
    case PiiAction::kRedact:
    case PiiAction::kDrop: out->append(d.redacted); return;
    case PiiAction::kHash: {
      std::string norm;
      d.normalize(s, m, &norm);
      AppendPseudonym(norm, key, out);
      base::WipeString(norm);
      return;
    }
    case PiiAction::kMask: d.mask(s, m, out); return;
    case PiiAction::kOff: return;  // an off detector does not match
  }
}

}  // namespace

bool MaskText(std::string_view s, const DetectorActions& actions, const base::SecretBytes& key, std::string* out,
              PiiReport* rep, bool drop_ok, bool* drop) {
  if (!actions.any_on()) return false;
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
  Scan(s, has_colon, actions, &m);
  if (m.empty()) return false;
  if (drop_ok) {
    for (size_t k = 0; k < m.size(); ++k) {
      if (actions[m[k].det] == PiiAction::kDrop) {
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
    AppendReplacement(s, m[k], actions[m[k].det], key, out);
    pos = m[k].end;
  }
  out->append(s.substr(pos));
  if (rep != nullptr) rep->values_masked += static_cast<uint32_t>(m.size());
  return true;
}

}  // namespace ferry::pii
