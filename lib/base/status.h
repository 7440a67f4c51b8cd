// Status and Result<T>: the error currency inside Ferry (no exceptions in the core).
#ifndef FERRY_LIB_BASE_STATUS_H_
#define FERRY_LIB_BASE_STATUS_H_

#include <optional>
#include <string>
#include <utility>

namespace ferry::base {

// The kinds of failure inside Ferry. They are Ferry's own: the C ABI maps them onto ferry_status once
// (sdk/c_api/c_api.cc, ToC) and the daemons map them onto HTTP once (lib/wire/http_status.h). Callers tell failures
// apart by code, never by message text. Values are not persisted or sent anywhere; they may be renumbered.
enum class Code {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (bad JSON, a name too long, an unknown option)
  kNotFound,            // the thing named does not exist (a subject, a request, a token)
  kAlreadyExists,       // creating something that is there already
  kConflict,            // the state changed under the caller (a request acted on twice, an id taken)
  kFailedPrecondition,  // the call is not allowed in the current state (approving a completed request)
  kPermissionDenied,    // a credential that may not do this
  kUnauthenticated,     // no credential, or one that is unknown, revoked or expired
  kResourceExhausted,   // a limit was hit (rate, size, connections, disk full)
  kConsentDenied,       // the purpose is denied (SDK: the event is dropped)
  kStorage,             // an I/O or database failure (the operation may succeed if retried)
  kCorruption,          // a file or database that cannot be read as what it should be (or a wrong key)
  kUnavailable,         // a dependency is down (database, network peer); retry later
  kClosed,              // the object is closing or closed
  kCancelled,           // the operation was abandoned on request
  kTimeout,             // the deadline passed first
  kNetwork,             // no answer from the peer
  kInternal,            // a bug: an invariant does not hold
};

// A success (cheap) or a failure with a code and an English message for logs.
class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status AlreadyExists(std::string msg) { return Status(Code::kAlreadyExists, std::move(msg)); }
  static Status Conflict(std::string msg) { return Status(Code::kConflict, std::move(msg)); }
  static Status FailedPrecondition(std::string msg) { return Status(Code::kFailedPrecondition, std::move(msg)); }
  static Status PermissionDenied(std::string msg) { return Status(Code::kPermissionDenied, std::move(msg)); }
  static Status Unauthenticated(std::string msg) { return Status(Code::kUnauthenticated, std::move(msg)); }
  static Status ResourceExhausted(std::string msg) { return Status(Code::kResourceExhausted, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status Cancelled(std::string msg) { return Status(Code::kCancelled, std::move(msg)); }
  static Status ConsentDenied(std::string msg) { return Status(Code::kConsentDenied, std::move(msg)); }
  static Status Storage(std::string msg) { return Status(Code::kStorage, std::move(msg)); }
  static Status Closed(std::string msg) { return Status(Code::kClosed, std::move(msg)); }
  static Status Timeout(std::string msg) { return Status(Code::kTimeout, std::move(msg)); }
  static Status Network(std::string msg) { return Status(Code::kNetwork, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }

  // A status is immutable; Annotate gives a copy with context prepended to the message ("opening x: <msg>").
  Status Annotate(const std::string& context) const { return ok() ? *this : Status(code_, context + ": " + msg_); }
  // A copy with the same code and another message (a message for people in place of a driver's).
  Status WithMessage(std::string msg) const { return ok() ? *this : Status(code_, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool Is(Code c) const { return code_ == c; }
  const std::string& message() const { return msg_; }
  std::string ToString() const;

 private:
  Status(Code c, std::string m) : code_(c), msg_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string msg_;
};

// A short English name of the code ("not found"), for logs and error messages.
const char* CodeName(Code c);
// A stable machine name of the code ("not_found"), for error bodies.
const char* CodeId(Code c);

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
