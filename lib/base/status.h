// Status and Result<T>: the error currency inside Ferry (no exceptions in the core).
#ifndef FERRY_LIB_BASE_STATUS_H_
#define FERRY_LIB_BASE_STATUS_H_

#include <optional>
#include <string>
#include <utility>

namespace ferry::base {

// The kinds of failure; they map 1:1 onto the public ferry_status codes (see sdk/c_api/c_api.cc).
enum class Code {
  kOk = 0,
  kInvalidArgument = 1,
  kConsentDenied = 2,
  kStorage = 3,
  kClosed = 4,
  kTimeout = 5,
  kNetwork = 6,
  kInternal = 99,
};

// A success (cheap) or a failure with a code and an English message for logs.
class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status ConsentDenied(std::string msg) { return Status(Code::kConsentDenied, std::move(msg)); }
  static Status Storage(std::string msg) { return Status(Code::kStorage, std::move(msg)); }
  static Status Closed(std::string msg) { return Status(Code::kClosed, std::move(msg)); }
  static Status Timeout(std::string msg) { return Status(Code::kTimeout, std::move(msg)); }
  static Status Network(std::string msg) { return Status(Code::kNetwork, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  std::string ToString() const;

 private:
  Status(Code c, std::string m) : code_(c), msg_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string msg_;
};

const char* CodeName(Code c);

// A value or a failed Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace ferry::base

#define FERRY_RETURN_IF_ERROR(expr)     \
  do {                                  \
    ::ferry::base::Status _st = (expr); \
    if (!_st.ok()) return _st;          \
  } while (0)

#endif  // FERRY_LIB_BASE_STATUS_H_
