// Bulk erasure (issue 13 item 8; docs/PROTOCOL.md "Bulk erasure"), compliance role:
//   POST /v1/erasures {"ids": [up to kMaxBulkErasureIds ids], "project"?, "dryRun"?, "force"?}
// Each id is erased on its own (RightsService::Erase: its own transaction, register entry, audit row and outbox
// entry), as POST /v1/subjects/{id}/erase would; the answer lists each id's outcome and a summary. One bad id (not a
// string, empty, too long, a control character) refuses the whole call before anything is erased.
#ifndef FERRY_COLLECTOR_HTTP_ERASURE_ROUTES_H_
#define FERRY_COLLECTOR_HTTP_ERASURE_ROUTES_H_

#include <cstddef>

#include "collector/rights/rights_service.h"
#include "lib/httpd/httpd.h"

namespace ferry::collector {

inline constexpr size_t kMaxBulkErasureIds = 1000;

// `rights` must outlive the server.
void RegisterErasureRoutes(httpd::Router& svr, rights::RightsService* rights);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_ERASURE_ROUTES_H_
