#include "lib/base/status.h"

namespace ferry::base {

const char* CodeName(Code c) {
  switch (c) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kConsentDenied: return "consent denied";
    case Code::kStorage: return "storage error";
    case Code::kClosed: return "closed";
    case Code::kTimeout: return "timeout";
    case Code::kNetwork: return "network error";
    case Code::kInternal: return "internal error";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s = CodeName(code_);
  if (!msg_.empty()) {
    s += ": ";
    s += msg_;
  }
  return s;
}

}  // namespace ferry::base
