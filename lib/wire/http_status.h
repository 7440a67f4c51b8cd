// The one mapping from Ferry's internal status codes to HTTP statuses, used by the collector and the agent.
#ifndef FERRY_LIB_WIRE_HTTP_STATUS_H_
#define FERRY_LIB_WIRE_HTTP_STATUS_H_

#include "lib/base/status.h"

namespace ferry::wire {

// invalid_argument 400, unauthenticated 401, permission_denied and consent_denied 403, not_found 404,
// already_exists/conflict/failed_precondition 409, resource_exhausted 429, cancelled 499, timeout 504,
// unavailable/network/closed/storage 503, corruption/internal 500. kOk gives 200.
int HttpStatusFor(base::Code code);

}  // namespace ferry::wire

#endif  // FERRY_LIB_WIRE_HTTP_STATUS_H_
