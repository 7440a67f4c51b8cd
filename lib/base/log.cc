#include "lib/base/log.h"

#include <cstdio>

#include "lib/base/time.h"

namespace ferry::base {

const char* LogLevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}

Logger Logger::Stderr(std::string component, LogLevel min) {
  return Logger(
      [component](LogLevel l, const std::string& msg) {
        std::string line =
            "ts=" + FormatIso8601(NowMs()) + " level=" + LogLevelName(l) + " component=" + component + " msg=\"";
        for (char c : msg) {
          if (c == '"' || c == '\\') line += '\\';
          if (c == '\n') {
            line += "\\n";
            continue;
          }
          line += c;
        }
        line += "\"\n";
        std::fwrite(line.data(), 1, line.size(), stderr);
      },
      min);
}

}  // namespace ferry::base
