// Device facts: read from the real machine, and the environment variables that steer locale and timezone.
#include <errno.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "platform/platform.h"

namespace ferry::platform {
namespace {

// Sets (or unsets, with nullopt) environment variables for one test and restores them afterwards.
class ScopedEnv {
 public:
  void Set(const char* name, std::optional<std::string> value) {
    if (saved_.count(name) == 0) {
      const char* old = getenv(name);
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    for (auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

std::string FirstLine(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\n' || line.back() == '\r')) line.pop_back();
  return line;
}

TEST(LocaleToBcp47Test, ConvertsPosixNames) {
  EXPECT_EQ(LocaleToBcp47("zh_CN.UTF-8"), "zh-CN");
  EXPECT_EQ(LocaleToBcp47("en_US.utf8"), "en-US");
  EXPECT_EQ(LocaleToBcp47("de_DE"), "de-DE");
  EXPECT_EQ(LocaleToBcp47("fr"), "fr");
  EXPECT_EQ(LocaleToBcp47("pt_BR.ISO-8859-1"), "pt-BR");
  EXPECT_EQ(LocaleToBcp47("de_DE.UTF-8@euro"), "de-DE");
  EXPECT_EQ(LocaleToBcp47("sr_RS@latin"), "sr-Latn-RS");
  EXPECT_EQ(LocaleToBcp47("es_419.UTF-8"), "es-419");
  EXPECT_EQ(LocaleToBcp47("ast_ES.UTF-8"), "ast-ES");
  EXPECT_EQ(LocaleToBcp47("EN_us"), "en-US");
}

TEST(LocaleToBcp47Test, PosixAndMalformedNamesGiveEmpty) {
  EXPECT_EQ(LocaleToBcp47("C"), "");
  EXPECT_EQ(LocaleToBcp47("POSIX"), "");
  EXPECT_EQ(LocaleToBcp47("C.UTF-8"), "");
  EXPECT_EQ(LocaleToBcp47(""), "");
  EXPECT_EQ(LocaleToBcp47("x"), "");
  EXPECT_EQ(LocaleToBcp47("english_USA"), "");
  EXPECT_EQ(LocaleToBcp47("en_U1"), "");
  EXPECT_EQ(LocaleToBcp47("../../etc"), "");
}

TEST(LocaleToBcp47Test, ConvertsIcuAppleAndBcp47Names) {
  // Apple's CFLocale identifiers and ICU names: script subtags, '-' or '_', keywords after '@'.
  EXPECT_EQ(LocaleToBcp47("zh-Hans_CN"), "zh-Hans-CN");
  EXPECT_EQ(LocaleToBcp47("zh_Hant_TW"), "zh-Hant-TW");
  EXPECT_EQ(LocaleToBcp47("zh-Hans"), "zh-Hans");
  EXPECT_EQ(LocaleToBcp47("en_US_POSIX"), "en-US");
  EXPECT_EQ(LocaleToBcp47("ja_JP@calendar=japanese"), "ja-JP");
  EXPECT_EQ(LocaleToBcp47("en_GB@rg=uszzzz"), "en-GB");
  EXPECT_EQ(LocaleToBcp47("es_419"), "es-419");
  // Android's persist.sys.locale and ro.product.locale: BCP 47 already, extensions left out.
  EXPECT_EQ(LocaleToBcp47("pt-BR"), "pt-BR");
  EXPECT_EQ(LocaleToBcp47("sr-Latn-RS"), "sr-Latn-RS");
  EXPECT_EQ(LocaleToBcp47("en-US-u-fw-mon"), "en-US");
  EXPECT_EQ(LocaleToBcp47("de-DE-1996"), "de-DE");
  EXPECT_EQ(LocaleToBcp47("EN-latn-us"), "en-Latn-US");
  // A script subtag wins over a POSIX modifier.
  EXPECT_EQ(LocaleToBcp47("sr_Cyrl_RS@latin"), "sr-Cyrl-RS");
}

TEST(LocaleToBcp47Test, MalformedSubtagsGiveEmpty) {
  EXPECT_EQ(LocaleToBcp47("en__US"), "");
  EXPECT_EQ(LocaleToBcp47("en-"), "");
  EXPECT_EQ(LocaleToBcp47("-US"), "");
  EXPECT_EQ(LocaleToBcp47("en-US-US"), "");
  EXPECT_EQ(LocaleToBcp47("en-U$"), "");
  EXPECT_EQ(LocaleToBcp47("en/US"), "");
}

TEST(ZoneNameTest, AcceptsIanaNamesOnly) {
  for (const char* z :
       {"Asia/Shanghai", "America/Argentina/Buenos_Aires", "Etc/GMT+8", "UTC", "America/Port-au-Prince"}) {
    EXPECT_TRUE(IsZoneName(z)) << z;
  }
  for (const char* z :
       {"", "/etc/localtime", "../etc/passwd", "Asia/Sh anghai", "Europe/Paris\n", "Asia/..", "GMT+08:00"}) {
    EXPECT_FALSE(IsZoneName(z)) << z;
  }
  EXPECT_FALSE(IsZoneName(std::string(65, 'A')));
}

TEST(MakerModelTest, NamesTheMakerOnce) {
  EXPECT_EQ(JoinMakerModel("Google", "Pixel 8"), "Google Pixel 8");
  EXPECT_EQ(JoinMakerModel("samsung", "SM-S911B"), "samsung SM-S911B");
  EXPECT_EQ(JoinMakerModel("OnePlus", "OnePlus 9"), "OnePlus 9");
  EXPECT_EQ(JoinMakerModel("Xiaomi", "xiaomi-13"), "xiaomi-13");
  EXPECT_EQ(JoinMakerModel("HMD", "HMD"), "HMD");
  EXPECT_EQ(JoinMakerModel("LG", "LGE-G8"), "LG LGE-G8");  // a longer word is not the maker's name
  EXPECT_EQ(JoinMakerModel("", "Pixel 8"), "Pixel 8");
  EXPECT_EQ(JoinMakerModel("Google", ""), "Google");
  EXPECT_EQ(JoinMakerModel("", ""), "");
}

TEST(AndroidDataDirTest, PackageFromTheProcessName) {
  EXPECT_EQ(AndroidPackageFromProcessName("com.example.app"), "com.example.app");
  EXPECT_EQ(AndroidPackageFromProcessName("com.example.app:sync"), "com.example.app");
  EXPECT_EQ(AndroidPackageFromProcessName("io.ferry.demo_2"), "io.ferry.demo_2");
  // Not an app: a native executable, a path, a malformed name.
  for (const char* name : {"", "mytool", "./mytool", "/data/local/tmp/mytool", "com..example", ".com.example",
                           "com.example.", "com.1example", "com.exa mple", ":sync", "app_process64"}) {
    EXPECT_EQ(AndroidPackageFromProcessName(name), "") << name;
  }
}

TEST(AndroidDataDirTest, NoBackupDirectoryOfTheUser) {
  EXPECT_EQ(AndroidNoBackupDir(10123, "com.example.app"), "/data/user/0/com.example.app/no_backup");
  EXPECT_EQ(AndroidNoBackupDir(1010123, "com.example.app"), "/data/user/10/com.example.app/no_backup");
  EXPECT_EQ(AndroidNoBackupDir(10123, ""), "");
}

TEST(AppleDataDirTest, TildeIsTheHomeDirectory) {
  // On iOS $HOME is the app's container.
  const std::string home = "/var/mobile/Containers/Data/Application/0C5E2A7E";
  EXPECT_EQ(ExpandHome("~/Library/Application Support", home), home + "/Library/Application Support");
  EXPECT_EQ(ExpandHome("~", home), home);
  EXPECT_EQ(ExpandHome("/Library/Application Support", home), "/Library/Application Support");
  EXPECT_EQ(ExpandHome("~/Library/Application Support", ""), "");
  EXPECT_EQ(ExpandHome("~mobile/x", home), "~mobile/x");
}

TEST(DeviceInfoTest, LocaleFollowsPosixPrecedence) {
  ScopedEnv env;
  env.Set("LC_ALL", "zh_CN.UTF-8");
  env.Set("LC_MESSAGES", "fr_FR.UTF-8");
  env.Set("LANG", "de_DE.UTF-8");
  EXPECT_EQ(ReadDeviceInfo().locale, "zh-CN");
  env.Set("LC_ALL", std::nullopt);
  EXPECT_EQ(ReadDeviceInfo().locale, "fr-FR");
  env.Set("LC_MESSAGES", "");
  EXPECT_EQ(ReadDeviceInfo().locale, "de-DE");
  env.Set("LANG", "C");
  EXPECT_EQ(ReadDeviceInfo().locale, "");
  env.Set("LANG", std::nullopt);
  EXPECT_EQ(ReadDeviceInfo().locale, "");
}

TEST(DeviceInfoTest, TimezoneFromTz) {
  ScopedEnv env;
  env.Set("TZ", "Asia/Shanghai");
  EXPECT_EQ(ReadDeviceInfo().timezone, "Asia/Shanghai");
  env.Set("TZ", ":Europe/Paris");
  EXPECT_EQ(ReadDeviceInfo().timezone, "Europe/Paris");
  env.Set("TZ", "/usr/share/zoneinfo/America/New_York");
  EXPECT_EQ(ReadDeviceInfo().timezone, "America/New_York");
  env.Set("TZ", ":/usr/share/zoneinfo/posix/Asia/Tokyo");
  EXPECT_EQ(ReadDeviceInfo().timezone, "Asia/Tokyo");
}

TEST(DeviceInfoTest, TimezoneFromTheSystemWhenTzIsUnset) {
  ScopedEnv env;
  env.Set("TZ", std::nullopt);
  std::string expected = FirstLine("/etc/timezone");
  if (expected.empty()) {
    char buf[PATH_MAX];
    ssize_t n = readlink("/etc/localtime", buf, sizeof(buf) - 1);
    if (n > 0) {
      std::string target(buf, static_cast<size_t>(n));
      size_t at = target.rfind("zoneinfo/");
      if (at != std::string::npos) expected = target.substr(at + 9);
    }
  }
  EXPECT_EQ(ReadDeviceInfo().timezone, expected);
}

TEST(DeviceInfoTest, ReportsTheRealMachine) {
  DeviceInfo d = ReadDeviceInfo();
  EXPECT_EQ(d.os_name, "Linux");
  ASSERT_FALSE(d.os_version.empty());
  std::ifstream os_release("/etc/os-release");
  std::string content((std::istreambuf_iterator<char>(os_release)), std::istreambuf_iterator<char>());
  if (content.find("PRETTY_NAME=") != std::string::npos) {
    EXPECT_NE(content.find(d.os_version), std::string::npos) << d.os_version;
    EXPECT_EQ(d.os_version.find('"'), std::string::npos) << "quotes must be stripped: " << d.os_version;
  } else {
    struct utsname u {};
    ASSERT_EQ(uname(&u), 0);
    EXPECT_EQ(d.os_version, u.release);
  }
  // The kernel keeps the first 15 bytes of the executable's name.
  EXPECT_EQ(d.process_name, std::string(program_invocation_short_name).substr(0, 15));
  EXPECT_EQ(d.device_model, FirstLine("/sys/class/dmi/id/product_name"));
  for (const std::string* f : {&d.os_version, &d.device_model, &d.process_name}) {
    EXPECT_EQ(f->find('\n'), std::string::npos);
  }
}

TEST(DefaultDataDirTest, FollowsXdgThenHome) {
  ScopedEnv env;
  env.Set("XDG_DATA_HOME", "/srv/data");
  env.Set("HOME", "/home/ana");
  EXPECT_EQ(DefaultDataDir(), "/srv/data");
  env.Set("XDG_DATA_HOME", "relative/ignored");  // the XDG spec says relative paths are invalid
  EXPECT_EQ(DefaultDataDir(), "/home/ana/.local/share");
  env.Set("XDG_DATA_HOME", std::nullopt);
  EXPECT_EQ(DefaultDataDir(), "/home/ana/.local/share");
  env.Set("HOME", std::nullopt);
  EXPECT_EQ(DefaultDataDir(), "/tmp");
}

}  // namespace
}  // namespace ferry::platform
