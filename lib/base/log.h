// Logger: routes Ferry's log lines to the host's callback (SDK) or to stderr (daemons).
#ifndef FERRY_LIB_BASE_LOG_H_
#define FERRY_LIB_BASE_LOG_H_

#include <functional>
#include <string>

namespace ferry::base {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

const char* LogLevelName(LogLevel l);

// A sink for log lines. Copyable and cheap; an empty Logger drops everything. Thread-safe as long as the sink is.
class Logger {
 public:
  using Sink = std::function<void(LogLevel, const std::string&)>;
  Logger() = default;
  explicit Logger(Sink sink, LogLevel min = LogLevel::kDebug) : sink_(std::move(sink)), min_(min) {}

  // One structured line on stderr: "ts=... level=... component=... msg=...".
  static Logger Stderr(std::string component, LogLevel min = LogLevel::kInfo);

  bool enabled() const { return static_cast<bool>(sink_); }
  void Log(LogLevel l, const std::string& msg) const {
    if (sink_ && l >= min_) sink_(l, msg);
  }
  void Debug(const std::string& m) const { Log(LogLevel::kDebug, m); }
  void Info(const std::string& m) const { Log(LogLevel::kInfo, m); }
  void Warn(const std::string& m) const { Log(LogLevel::kWarn, m); }
  void Error(const std::string& m) const { Log(LogLevel::kError, m); }

 private:
  Sink sink_;
  LogLevel min_ = LogLevel::kDebug;
};

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_LOG_H_
