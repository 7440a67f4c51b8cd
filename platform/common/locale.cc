// What every platform shares for device facts: a POSIX locale name as a BCP 47 tag (Linux's LANG, Android's and
// Apple's locale identifiers have the same "ll_RR" shape).
#include <cctype>
#include <string>

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

}  // namespace

std::string LocaleToBcp47(const std::string& posix_locale) {
  std::string s = posix_locale;
  std::string modifier;
  size_t at = s.find('@');
  if (at != std::string::npos) {
    modifier = s.substr(at + 1);
    s = s.substr(0, at);
  }
  size_t dot = s.find('.');
  if (dot != std::string::npos) s = s.substr(0, dot);
  if (s.empty() || s == "C" || s == "POSIX") return "";

  std::string lang = s;
  std::string region;
  size_t us = s.find('_');
  if (us != std::string::npos) {
    lang = s.substr(0, us);
    region = s.substr(us + 1);
  }
  if (lang.size() < 2 || lang.size() > 3 || !AllAlpha(lang)) return "";
  if (!region.empty() && !((region.size() == 2 && AllAlpha(region)) || (region.size() == 3 && AllDigit(region)))) {
    return "";
  }
  for (char& c : lang) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (char& c : region) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));

  std::string script;
  if (modifier == "latin") script = "Latn";
  if (modifier == "cyrillic") script = "Cyrl";
  if (modifier == "devanagari") script = "Deva";

  std::string tag = lang;
  if (!script.empty()) tag += "-" + script;
  if (!region.empty()) tag += "-" + region;
  return tag;
}

}  // namespace ferry::platform
