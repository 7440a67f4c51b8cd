// ferryctl's exit codes: one per kind of failure a script can act on (docs/COLLECTOR.md#exit-codes).
#ifndef FERRY_COLLECTOR_FERRYCTL_EXIT_CODES_H_
#define FERRY_COLLECTOR_FERRYCTL_EXIT_CODES_H_

#include "lib/base/status.h"

namespace ferry::collector::ctl {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      // anything below does not name: a storage error, an answer that is not JSON, a file
  kExitUsage = 2,        // the command line is wrong: an unknown option, a missing argument or --url/--token
  kExitAuditBroken = 3,  // `audit verify`: the hash chain is broken
  kExitNotFound = 4,     // no such subject, request or project (HTTP 404)
  kExitUnavailable = 5,  // the collector or the store cannot be reached, or answered 503/504; retry later
  kExitPermission = 6,   // the token is missing, unknown or revoked (401) or lacks a role (403)
  kExitConflict = 7,     // the state does not allow it (409: a request already acted on, an id taken)
  kExitRefused = 8,      // the collector refused the input (400, 413, 414, 415, 422, 429)
};

// The exit code for an HTTP error status of the admin API.
inline int ExitForHttpStatus(int status) {
  switch (status) {
    case 401:
    case 403: return kExitPermission;
    case 404: return kExitNotFound;
    case 409: return kExitConflict;
    case 502:
    case 503:
    case 504: return kExitUnavailable;
    default: return status >= 400 && status < 500 ? kExitRefused : kExitFailure;
  }
}

// The exit code for a failed offline command's status.
inline int ExitForCode(base::Code code) {
  switch (code) {
    case base::Code::kInvalidArgument: return kExitUsage;
    case base::Code::kNotFound: return kExitNotFound;
    case base::Code::kUnavailable:
    case base::Code::kNetwork:
    case base::Code::kTimeout: return kExitUnavailable;
    case base::Code::kPermissionDenied:
    case base::Code::kUnauthenticated: return kExitPermission;
    case base::Code::kAlreadyExists:
    case base::Code::kConflict:
    case base::Code::kFailedPrecondition: return kExitConflict;
    default: return kExitFailure;
  }
}

}  // namespace ferry::collector::ctl

#endif  // FERRY_COLLECTOR_FERRYCTL_EXIT_CODES_H_
