// The one mapping from Ferry's internal status codes to HTTP statuses, used by the collector and the agent.
#ifndef FERRY_LIB_WIRE_HTTP_STATUS_H_
#define FERRY_LIB_WIRE_HTTP_STATUS_H_

#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace ferry::wire {

// invalid_argument 400, unauthenticated 401, permission_denied and consent_denied 403, not_found 404,
// already_exists/conflict/failed_precondition 409, resource_exhausted 429, cancelled 499, timeout 504,
// unavailable/network/closed/storage 503, corruption/internal 500. kOk gives 200.
int HttpStatusFor(base::Code code);

// The code an HTTP error status stands for, for answers made where only the status is known (the inverse of
// HttpStatusFor on the statuses it gives; 413 and 431 are resource_exhausted, 415 invalid_argument; other 4xx
// invalid_argument, other 5xx internal).
base::Code CodeForHttpStatus(int http_status);

// The one error body of the collector and the agent (docs/PROTOCOL.md): {"error": "<reason for people>",
// "code": "<machine name, base::CodeId>"}. Invalid UTF-8 in the reason is replaced, never an exception.
std::string ErrorBody(base::Code code, std::string_view reason);

}  // namespace ferry::wire

#endif  // FERRY_LIB_WIRE_HTTP_STATUS_H_
