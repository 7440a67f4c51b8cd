// The endpoint policy, shared by every transport (libcurl's and the app's own): written without libcurl so that a
// FERRY_TRANSPORT=none build has it too.
#include <cctype>
#include <string>

#include "lib/net/address.h"
#include "platform/platform.h"

namespace ferry::platform {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool Refuse(std::string* why, const std::string& msg) {
  if (why != nullptr) *why = msg;
  return false;
}

}  // namespace

bool IsAllowedEndpoint(const std::string& url, std::string* why) {
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return Refuse(why, "URL contains spaces or control bytes");
  }
  std::string lower = Lower(url);
  bool tls = false;
  size_t rest = 0;
  if (lower.compare(0, 8, "https://") == 0) {
    tls = true;
    rest = 8;
  } else if (lower.compare(0, 7, "http://") == 0) {
    rest = 7;
  } else {
    return Refuse(why, "only https:// (or http:// to a loopback host) is allowed");
  }
  size_t end = url.find_first_of("/?#", rest);
  std::string authority = url.substr(rest, end == std::string::npos ? std::string::npos : end - rest);
  size_t at = authority.rfind('@');
  if (at != std::string::npos) return Refuse(why, "credentials in the URL are not allowed");
  std::string host;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return Refuse(why, "unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return Refuse(why, "malformed host");
  } else {
    host = authority.substr(0, authority.find(':'));
  }
  if (host.empty()) return Refuse(why, "no host in URL");
  if (tls) return true;

  if (net::IsLoopbackHost(host)) return true;
  return Refuse(why, "http:// is allowed only to loopback hosts; use https:// for " + host);
}

}  // namespace ferry::platform
