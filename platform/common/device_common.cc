// Device facts every OS file shares: zone names, "<maker> <model>", Android's package and no-backup directory, a
// "~" in an Apple search path. Kept here, out of platform/android/ and platform/apple/ (which this project's CI
// cannot compile), so that the Linux build compiles and tests them; the OS files only read the raw facts.
#include <cctype>
#include <string>

#include "platform/platform.h"

namespace ferry::platform {
namespace {

bool EqualsIgnoringCase(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

}  // namespace

bool IsZoneName(const std::string& z) {
  if (z.empty() || z.size() > 64 || z.front() == '/' || z.find("..") != std::string::npos) return false;
  for (char c : z) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '_' && c != '+' && c != '-') return false;
  }
  return true;
}

std::string JoinMakerModel(const std::string& manufacturer, const std::string& model) {
  if (manufacturer.empty()) return model;
  if (model.empty()) return manufacturer;
  // "OnePlus" + "OnePlus 9" is "OnePlus 9", not "OnePlus OnePlus 9".
  if (model.size() >= manufacturer.size() && EqualsIgnoringCase(model.substr(0, manufacturer.size()), manufacturer) &&
      (model.size() == manufacturer.size() || model[manufacturer.size()] == ' ' || model[manufacturer.size()] == '-' ||
       model[manufacturer.size()] == '_')) {
    return model;
  }
  return manufacturer + " " + model;
}

std::string AndroidPackageFromProcessName(const std::string& process_name) {
  std::string name = process_name.substr(0, process_name.find(':'));  // "com.example.app:sync": a second process
  // A Java package name: two or more dot-separated parts, each a letter followed by letters, digits or '_'.
  size_t parts = 0;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string::npos) end = name.size();
    if (end == start || !std::isalpha(static_cast<unsigned char>(name[start]))) return "";
    for (size_t i = start; i < end; ++i) {
      if (!std::isalnum(static_cast<unsigned char>(name[i])) && name[i] != '_') return "";
    }
    ++parts;
    start = end + 1;
  }
  return parts >= 2 ? name : "";
}

std::string AndroidNoBackupDir(uint32_t uid, const std::string& package) {
  if (package.empty()) return "";
  // Android gives every (user, app) pair its own uid: user * 100000 + app id (AID_USER_OFFSET).
  return "/data/user/" + std::to_string(uid / 100000) + "/" + package + "/no_backup";
}

std::string ExpandHome(const std::string& path, const std::string& home) {
  if (path == "~") return home;
  if (path.compare(0, 2, "~/") == 0) return home.empty() ? "" : home + path.substr(1);
  return path;
}

}  // namespace ferry::platform
