#include "lib/net/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace ferry::net {

namespace {

// inet_pton needs a NUL-terminated string; a host longer than any address literal is not one.
bool ToBuffer(std::string_view s, char (&buf)[INET6_ADDRSTRLEN + 1]) {
  if (s.empty() || s.size() >= sizeof buf || s.find('\0') != std::string_view::npos) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  return true;
}

bool IsLoopbackV4(const in_addr& a) { return (ntohl(a.s_addr) >> 24) == 127; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != b[i]) return false;
  }
  return true;
}

// 127.0.0.0/8 or ::1 as a literal (mapped: also ::ffff:127.0.0.0/104).
bool IsLoopbackLiteral(std::string_view s, bool mapped) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (!ToBuffer(s, buf)) return false;
  in_addr v4{};
  if (inet_pton(AF_INET, buf, &v4) == 1) return IsLoopbackV4(v4);
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  if (mapped && IN6_IS_ADDR_V4MAPPED(&v6)) {
    in_addr tail{};
    std::memcpy(&tail, &v6.s6_addr[12], sizeof tail);
    return IsLoopbackV4(tail);
  }
  return false;
}

// A host name or address literal as a Host header or a config gives it (brackets already removed): letters, digits,
// '-', '.', '_' and, for IPv6 literals, ':' and '%' (a zone id). Nothing that could smuggle a second name.
bool IsHostChars(std::string_view h, bool ipv6) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || (ipv6 && (c == ':' || c == '%'));
    if (!ok) return false;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return o;
}

std::string_view WithoutTrailingDot(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  return s;
}

bool IsPort(std::string_view p) {
  if (p.empty() || p.size() > 5) return false;
  int v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  return v <= 65535;
}

}  // namespace

std::string NormalizeHostName(std::string_view name) {
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  bool ipv6 = name.find(':') != std::string_view::npos;
  if (!IsHostChars(name, ipv6)) return "";
  if (ipv6) {
    char buf[INET6_ADDRSTRLEN + 1];
    in6_addr v6{};
    if (!ToBuffer(name, buf) || inet_pton(AF_INET6, buf, &v6) != 1) return "";  // "host:80" is no name
    return Lower(name);
  }
  name = WithoutTrailingDot(name);
  // No empty label: "", ".", "a..b", ".a", "a.." (one trailing dot is the absolute form, already removed).
  if (name.empty() || name.front() == '.' || name.back() == '.' || name.find("..") != std::string_view::npos) {
    return "";
  }
  return Lower(name);
}

bool IsAllowedHost(std::string_view host_header, const std::vector<std::string>& names) {
  std::string_view h = host_header;
  bool ipv6 = false;
  if (!h.empty() && h.front() == '[') {
    size_t close = h.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = h.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !IsPort(rest.substr(1)))) return false;
    h = h.substr(1, close - 1);
    ipv6 = true;
    if (h.find(':') == std::string_view::npos) return false;  // "[localhost]" is not an IPv6 literal
  } else {
    size_t colon = h.find(':');
    if (colon != std::string_view::npos) {
      if (!IsPort(h.substr(colon + 1))) return false;  // also refuses a second ':' (an unbracketed IPv6 literal)
      h = h.substr(0, colon);
    }
  }
  if (!IsHostChars(h, ipv6)) return false;
  if (IsLoopbackHost(h)) return true;
  std::string want = NormalizeHostName(h);
  if (want.empty()) return false;
  for (const auto& n : names) {
    if (NormalizeHostName(n) == want) return true;
  }
  return false;
}

bool IsLoopbackHost(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return EqualsIgnoreCase(host, "localhost") || IsLoopbackLiteral(host, /*mapped=*/false);
}

bool IsLoopbackPeer(std::string_view address) { return IsLoopbackLiteral(address, /*mapped=*/true); }

bool SplitHostPort(std::string_view hostport, std::string* host, int* port) {
  size_t colon = hostport.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view h = hostport.substr(0, colon);
  std::string_view p = hostport.substr(colon + 1);
  if (p.empty() || p.size() > 5) return false;
  int value = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value > 65535) return false;
  if (!h.empty() && h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
    // An IPv6 literal (a zone id such as fe80::1%eth0 included): the bind or connect tells whether it exists.
    if (h.find(':') == std::string_view::npos || h.find_first_of("[]") != std::string_view::npos) return false;
  } else if (h.find_first_of(":[]") != std::string_view::npos) {
    return false;  // an IPv6 literal without brackets, or a stray bracket
  }
  if (h.empty()) return false;
  host->assign(h);
  *port = value;
  return true;
}

std::string JoinHostPort(std::string_view host, int port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out.append("[").append(host).append("]");
  } else {
    out.append(host);
  }
  return out + ":" + std::to_string(port);
}

}  // namespace ferry::net
