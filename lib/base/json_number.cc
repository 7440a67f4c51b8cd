#include "lib/base/json_number.h"

#include <algorithm>
#include <charconv>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

namespace ferry::base {

namespace {

// strtod on a number's JSON text. strtod reads the locale's decimal point (an app may set LC_NUMERIC): it replaces
// '.', as nlohmann's lexer does.
double StrtodAsNlohmann(std::string_view t) {
  char small[128];
  std::string large;
  char* num = small;
  if (t.size() < sizeof small) {
    std::memcpy(small, t.data(), t.size());
    small[t.size()] = '\0';
  } else {
    large.assign(t);
    num = large.data();
  }
  const char point = *std::localeconv()->decimal_point;
  if (point != '.') std::replace(num, num + t.size(), '.', point);
  return std::strtod(num, nullptr);
}

}  // namespace

JsonNumber ReadJsonNumber(std::string_view t) {
  JsonNumber n;
  if (t.empty()) return n;
  const char* s = t.data();
  const char* e = s + t.size();
  if (t.find_first_of(".eE") == std::string_view::npos) {
    if (t[0] == '-') {
      auto r = std::from_chars(s, e, n.i);
      if (r.ec == std::errc() && r.ptr == e) {
        n.kind = JsonNumber::Kind::kInteger;
        return n;
      }
    } else {
      auto r = std::from_chars(s, e, n.u);
      if (r.ec == std::errc() && r.ptr == e) {
        n.kind = JsonNumber::Kind::kUnsigned;
        return n;
      }
    }
  }
  double v = 0;
  bool read = false;
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
  // Where the library reads doubles (libstdc++ does; libc++ of today's NDK and Xcode does not): correctly rounded as
  // strtod, without the locale and the copy. Out of range (overflow, underflow): strtod decides, as for nlohmann.
  auto r = std::from_chars(s, e, v);
  read = r.ec == std::errc() && r.ptr == e;
#endif
  if (!read) v = StrtodAsNlohmann(t);
  if (!std::isfinite(v)) return n;
  n.kind = JsonNumber::Kind::kFloat;
  n.d = v;
  return n;
}

bool IsCanonicalJsonNumber(std::string_view t) {
  size_t i = t.size() > 0 && t[0] == '-' ? 1 : 0;
  auto digit = [&](size_t k) { return k < t.size() && t[k] >= '0' && t[k] <= '9'; };
  const size_t int_begin = i;
  while (digit(i)) ++i;
  const size_t int_digits = i - int_begin;
  if (int_digits == 0 || (int_digits > 1 && t[int_begin] == '0')) return false;
  if (i == t.size()) return int_digits <= 18 && !(int_digits == 1 && t[int_begin] == '0' && int_begin == 1);
  if (t[i] != '.' || int_digits > 13) return false;
  const size_t frac_begin = ++i;
  while (digit(i)) ++i;
  const size_t frac_digits = i - frac_begin;
  return i == t.size() && frac_digits >= 1 && frac_digits <= 2 && t[i - 1] != '0';
}

}  // namespace ferry::base
