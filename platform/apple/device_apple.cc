// Apple device facts and the default data directory: macOS, iOS, iPadOS, tvOS, watchOS, visionOS (Apple toolchains
// only: not compiled on this project's CI, docs/PLATFORMS.md). Plain C APIs, no Objective-C: sysctlbyname for the
// OS version and the machine, CoreFoundation for the locale and the zone, sysdir (the C form of
// NSSearchPathForDirectoriesInDomains) for Application Support. What is made of the raw values (BCP 47 tags, zone
// name checks, "~" expansion) is platform/common/, which the Linux build compiles and tests. No hardware identifiers
// (no serial, UDID or identifierForVendor). The buffer key goes to the Keychain through the binding's key provider
// (ferry_options_set_key_provider), never through this file.
#include <CoreFoundation/CoreFoundation.h>
#include <TargetConditionals.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/sysctl.h>
#include <sys/types.h>
#include <sysdir.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "platform/platform.h"

namespace ferry::platform {
namespace {

struct CfReleaser {
  void operator()(CFTypeRef ref) const {
    if (ref != nullptr) CFRelease(ref);
  }
};
// A CoreFoundation object owned by this scope (the "Copy" and "Create" rule).
template <class Ref>
using CfOwned = std::unique_ptr<std::remove_pointer_t<Ref>, CfReleaser>;

// A CFString as UTF-8; "" for null or unconvertible text.
std::string Utf8(CFStringRef s) {
  if (s == nullptr) return "";
  CFIndex max = CFStringGetMaximumSizeForEncoding(CFStringGetLength(s), kCFStringEncodingUTF8) + 1;
  std::vector<char> buf(static_cast<size_t>(max));
  if (!CFStringGetCString(s, buf.data(), max, kCFStringEncodingUTF8)) return "";
  return std::string(buf.data());
}

// A string sysctl ("kern.osproductversion", "hw.machine"); "" when the name is unknown.
std::string Sysctl(const char* name) {
  size_t len = 0;
  if (sysctlbyname(name, nullptr, &len, nullptr, 0) != 0 || len == 0) return "";
  std::vector<char> buf(len + 1, '\0');
  if (sysctlbyname(name, buf.data(), &len, nullptr, 0) != 0) return "";
  return std::string(buf.data(), strnlen(buf.data(), len));
}

std::string Env(const char* name) {
  const char* v = getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

const char* OsName() {
#if defined(TARGET_OS_VISION) && TARGET_OS_VISION
  return "visionOS";
#elif TARGET_OS_WATCH
  return "watchOS";
#elif TARGET_OS_TV
  return "tvOS";
#elif defined(TARGET_OS_MACCATALYST) && TARGET_OS_MACCATALYST
  return "macOS";  // an iPad app built for the Mac runs on macOS: the version below is macOS's
#elif TARGET_OS_IOS
  return "iOS";
#else
  return "macOS";
#endif
}

// The machine identifier ("iPhone15,2", "MacBookPro18,1"): hw.model on a Mac (hw.machine says "arm64" there),
// hw.machine on a device, the simulated device's on a simulator (hw.machine is the Mac's CPU there).
std::string Model() {
#if TARGET_OS_OSX || (defined(TARGET_OS_MACCATALYST) && TARGET_OS_MACCATALYST)
  return Sysctl("hw.model");
#elif TARGET_OS_SIMULATOR
  return Env("SIMULATOR_MODEL_IDENTIFIER");
#else
  return Sysctl("hw.machine");
#endif
}

std::string Locale() {
  CfOwned<CFLocaleRef> locale(CFLocaleCopyCurrent());
  if (!locale) return "";
  // An ICU-shaped identifier ("en_US", "zh-Hans_CN", "en_US@rg=gbzzzz"): LocaleToBcp47 reads that shape.
  return LocaleToBcp47(Utf8(CFLocaleGetIdentifier(locale.get())));
}

std::string Timezone() {
  CfOwned<CFTimeZoneRef> zone(CFTimeZoneCopySystem());
  if (!zone) return "";
  std::string name = Utf8(CFTimeZoneGetName(zone.get()));
  return IsZoneName(name) ? name : "";
}

std::string HomeDir() {
  std::string home = Env("HOME");
  if (!home.empty() && home.front() == '/') return home;
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr && found->pw_dir != nullptr &&
      found->pw_dir[0] == '/') {
    return found->pw_dir;
  }
  return "";
}

}  // namespace

DeviceInfo ReadDeviceInfo() {
  DeviceInfo d;
  d.os_name = OsName();
  d.os_version = Sysctl("kern.osproductversion");  // "17.4" (macOS 10.13.4 and iOS 11 on)
  d.device_model = Model();
  d.locale = Locale();
  d.timezone = Timezone();
  const char* prog = getprogname();
  d.process_name = prog != nullptr ? prog : "";
  return d;
}

std::string DefaultDataDir() {
  std::string home = HomeDir();
  char path[PATH_MAX] = {};
  sysdir_search_path_enumeration_state state =
      sysdir_start_search_path_enumeration(SYSDIR_DIRECTORY_APPLICATION_SUPPORT, SYSDIR_DOMAIN_MASK_USER);
  if (sysdir_get_next_search_path_enumeration(state, path) != 0) {
    std::string dir = ExpandHome(path, home);
    if (!dir.empty() && dir.front() == '/') return dir;
  }
  if (!home.empty()) return home + "/Library/Application Support";
  return "/tmp";
}

}  // namespace ferry::platform
