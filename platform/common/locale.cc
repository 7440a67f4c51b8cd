// What every platform shares for device facts: a locale name as a BCP 47 tag. Linux's LANG ("zh_CN.UTF-8"),
// Android's properties ("zh-Hans-CN", BCP 47 already) and Apple's CFLocale identifiers ("zh-Hans_CN", ICU's shape)
// all come down to language, script and region subtags.
#include <cctype>
#include <string>
#include <vector>

#include "platform/platform.h"

namespace ferry::platform {
namespace {

bool AllAlpha(const std::string& s) {
  for (char c : s) {
    if (!std::isalpha(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool AllDigit(const std::string& s) {
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool AllAlnum(const std::string& s) {
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// "hans" -> "Hans"
std::string Title(std::string s) {
  s = Lower(std::move(s));
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

// Splits on '_' and '-'; an empty subtag (two separators in a row, one at an end) makes the whole name malformed.
bool SplitSubtags(const std::string& s, std::vector<std::string>* out) {
  std::string cur;
  for (char c : s) {
    if (c == '_' || c == '-') {
      if (cur.empty()) return false;
      out->push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (cur.empty()) return false;
  out->push_back(cur);
  return true;
}

}  // namespace

std::string LocaleToBcp47(const std::string& locale_name) {
  std::string s = locale_name;
  std::string modifier;
  size_t at = s.find('@');
  if (at != std::string::npos) {
    modifier = s.substr(at + 1);
    s = s.substr(0, at);
  }
  size_t dot = s.find('.');
  if (dot != std::string::npos) s = s.substr(0, dot);
  if (s.empty() || s == "C" || s == "POSIX") return "";

  std::vector<std::string> parts;
  if (!SplitSubtags(s, &parts)) return "";
  const std::string& lang = parts[0];
  if (lang.size() < 2 || lang.size() > 3 || !AllAlpha(lang)) return "";
  std::string script;
  std::string region;
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (script.empty() && region.empty() && p.size() == 4 && AllAlpha(p)) {
      script = Title(p);
    } else if (region.empty() && ((p.size() == 2 && AllAlpha(p)) || (p.size() == 3 && AllDigit(p)))) {
      region = Upper(p);
    } else if (p.size() == 1 && AllAlnum(p)) {
      break;  // an extension or private use ("-u-ca-japanese", "-x-..."): left out
    } else if (AllAlnum(p) && ((p.size() >= 5 && p.size() <= 8) ||
                               (p.size() == 4 && std::isdigit(static_cast<unsigned char>(p[0]))))) {
      continue;  // a variant ("POSIX" in ICU's "en_US_POSIX", "1996"): left out
    } else {
      return "";
    }
  }
  if (script.empty()) {
    if (modifier == "latin") script = "Latn";
    if (modifier == "cyrillic") script = "Cyrl";
    if (modifier == "devanagari") script = "Deva";
  }

  std::string tag = Lower(lang);
  if (!script.empty()) tag += "-" + script;
  if (!region.empty()) tag += "-" + region;
  return tag;
}

}  // namespace ferry::platform
