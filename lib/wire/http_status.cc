#include "lib/wire/http_status.h"

#include <nlohmann/json.hpp>

namespace ferry::wire {

int HttpStatusFor(base::Code code) {
  using base::Code;
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kUnauthenticated: return 401;
    case Code::kPermissionDenied:
    case Code::kConsentDenied: return 403;
    case Code::kNotFound: return 404;
    case Code::kAlreadyExists:
    case Code::kConflict:
    case Code::kFailedPrecondition: return 409;
    case Code::kResourceExhausted: return 429;
    case Code::kCancelled: return 499;
    case Code::kTimeout: return 504;
    case Code::kStorage:
    case Code::kUnavailable:
    case Code::kNetwork:
    case Code::kClosed: return 503;
    case Code::kCorruption:
    case Code::kInternal: return 500;
  }
  return 500;
}

base::Code CodeForHttpStatus(int http_status) {
  using base::Code;
  switch (http_status) {
    case 200: return Code::kOk;
    case 400:
    case 415: return Code::kInvalidArgument;
    case 401: return Code::kUnauthenticated;
    case 403: return Code::kPermissionDenied;
    case 404: return Code::kNotFound;
    case 409: return Code::kConflict;
    case 413:
    case 429:
    case 431: return Code::kResourceExhausted;
    case 499: return Code::kCancelled;
    case 503: return Code::kUnavailable;
    case 504: return Code::kTimeout;
    default: return http_status >= 400 && http_status < 500 ? Code::kInvalidArgument : Code::kInternal;
  }
}

std::string ErrorBody(base::Code code, std::string_view reason) {
  nlohmann::json j{{"error", std::string(reason)}, {"code", base::CodeId(code)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ferry::wire
