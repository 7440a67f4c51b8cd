// Android device facts and the default data directory (Android NDK builds only: not compiled on this project's CI,
// docs/PLATFORMS.md). Only the raw reads live here: system properties (__system_property_get) and the process's
// name and uid. What is made of them (locale tags, zone names, "<maker> <model>", the package and its no-backup
// directory) is platform/common/, which the Linux build compiles and tests. No hardware identifiers (no serial,
// IMEI or Android ID). The buffer key goes to the Android Keystore through the binding's key provider
// (ferry_options_set_key_provider), never through this file.
#include <sys/system_properties.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "platform/platform.h"

namespace ferry::platform {
namespace {

// A system property's value; "" when unset or unreadable (SELinux hides some from apps).
std::string Property(const char* name) {
  char value[PROP_VALUE_MAX] = {};
  int n = __system_property_get(name, value);
  if (n <= 0) return "";
  return std::string(value, strnlen(value, sizeof(value)));
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

// The process name: an app's process is renamed to its package by the zygote ("com.example.app", or
// "com.example.app:sync"); /proc/self/comm keeps only 15 bytes of it, /proc/self/cmdline all of it.
std::string ProcessName() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string name;
  if (in && std::getline(in, name, '\0') && !name.empty()) return name;
  std::ifstream comm("/proc/self/comm");
  if (comm && std::getline(comm, name)) return name;
  return "";
}

std::string Locale() {
  // Android 5+: one BCP 47 tag, the user's choice or the build's default.
  for (const char* prop : {"persist.sys.locale", "ro.product.locale"}) {
    std::string tag = LocaleToBcp47(Property(prop));
    if (!tag.empty()) return tag;
  }
  // Before Android 5: language and country apart.
  std::string lang = Property("persist.sys.language");
  std::string country = Property("persist.sys.country");
  if (lang.empty()) {
    lang = Property("ro.product.locale.language");
    country = Property("ro.product.locale.region");
  }
  return LocaleToBcp47(country.empty() ? lang : lang + "_" + country);
}

std::string Timezone() {
  std::string tz = Property("persist.sys.timezone");
  if (IsZoneName(tz)) return tz;
  tz = Env("TZ");
  return IsZoneName(tz) ? tz : "";
}

}  // namespace

DeviceInfo ReadDeviceInfo() {
  DeviceInfo d;
  d.os_name = "Android";
  d.os_version = Property("ro.build.version.release");
  d.device_model = JoinMakerModel(Property("ro.product.manufacturer"), Property("ro.product.model"));
  d.locale = Locale();
  d.timezone = Timezone();
  d.process_name = ProcessName();
  return d;
}

std::string DefaultDataDir() {
  std::string dir = AndroidNoBackupDir(static_cast<uint32_t>(getuid()), AndroidPackageFromProcessName(ProcessName()));
  if (!dir.empty()) return dir;
  // Not an app (a native executable run from adb shell): the shell's scratch directory.
  std::string tmp = Env("TMPDIR");
  if (!tmp.empty() && tmp.front() == '/') return tmp;
  return "/data/local/tmp";
}

}  // namespace ferry::platform
