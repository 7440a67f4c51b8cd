// Linux device facts and the default data directory. Reads only OS-level facts: no MAC, serial or machine-id.
#include <limits.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <string>

#include "platform/platform.h"

namespace ferry::platform {
namespace {

std::string Trim(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// The first line of a small file, trimmed; "" if unreadable.
std::string ReadFirstLine(const char* path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  return Trim(line);
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

// The value of KEY= in an os-release file, with shell quoting and escapes removed.
std::string OsReleaseValue(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (in && std::getline(in, line)) {
    line = Trim(line);
    if (line.compare(0, key.size() + 1, key + "=") != 0) continue;
    std::string v = line.substr(key.size() + 1);
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
      char q = v.front();
      v = v.substr(1, v.size() - 2);
      if (q == '"') {
        std::string out;
        for (size_t i = 0; i < v.size(); ++i) {
          if (v[i] == '\\' && i + 1 < v.size()) ++i;
          out.push_back(v[i]);
        }
        v = out;
      }
    }
    return Trim(v);
  }
  return "";
}

std::string OsVersion() {
  std::string pretty = OsReleaseValue("/etc/os-release", "PRETTY_NAME");
  if (pretty.empty()) pretty = OsReleaseValue("/usr/lib/os-release", "PRETTY_NAME");
  if (!pretty.empty()) return pretty;
  struct utsname u {};
  if (uname(&u) == 0) return u.release;
  return "";
}

// "/usr/share/zoneinfo/posix/Asia/Shanghai" -> "Asia/Shanghai"; "" if there is no "zoneinfo/".
std::string ZoneFromPath(const std::string& path) {
  size_t at = path.rfind("zoneinfo/");
  if (at == std::string::npos) return "";
  std::string z = path.substr(at + 9);
  for (const char* prefix : {"posix/", "right/"}) {
    std::string p(prefix);
    if (z.compare(0, p.size(), p) == 0) z = z.substr(p.size());
  }
  return IsZoneName(z) ? z : "";
}

std::string Timezone() {
  std::string tz = Env("TZ");
  if (!tz.empty()) {
    if (tz.front() == ':') tz = tz.substr(1);
    if (!tz.empty() && tz.front() == '/') {
      std::string z = ZoneFromPath(tz);
      if (!z.empty()) return z;
    } else if (IsZoneName(tz)) {
      return tz;
    }
  }
  std::string etc = ReadFirstLine("/etc/timezone");
  if (IsZoneName(etc)) return etc;
  char buf[PATH_MAX];
  ssize_t n = readlink("/etc/localtime", buf, sizeof(buf) - 1);
  if (n > 0) {
    buf[n] = '\0';
    return ZoneFromPath(buf);
  }
  return "";
}

}  // namespace

DeviceInfo ReadDeviceInfo() {
  DeviceInfo d;
  d.os_name = "Linux";
  d.os_version = OsVersion();
  d.device_model = ReadFirstLine("/sys/class/dmi/id/product_name");
  for (const char* var : {"LC_ALL", "LC_MESSAGES", "LANG"}) {
    std::string v = Env(var);
    if (!v.empty()) {
      d.locale = LocaleToBcp47(v);
      break;
    }
  }
  d.timezone = Timezone();
  d.process_name = ReadFirstLine("/proc/self/comm");
  return d;
}

std::string DefaultDataDir() {
  std::string xdg = Env("XDG_DATA_HOME");
  if (!xdg.empty() && xdg.front() == '/') return xdg;
  std::string home = Env("HOME");
  if (!home.empty() && home.front() == '/') return home + "/.local/share";
  return "/tmp";
}

}  // namespace ferry::platform
