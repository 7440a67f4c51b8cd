#include "lib/wire/http_status.h"

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

}  // namespace ferry::wire
