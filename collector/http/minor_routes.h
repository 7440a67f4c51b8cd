// The officer's mark of a minor (issue 12 item 8), a thin HTTP binding of the rights service (compliance role,
// audited as subject.minor):
//   POST   /v1/subjects/{id}/minor[?project=P]   marks the subject (every id of it) as a minor
//   DELETE /v1/subjects/{id}/minor[?project=P]   lifts the marks in force
// Both answer {"subject", "undo", "projects": [{"project", "minor": {"minor", "sources"}}]}: the state after the
// change (collector/rights/minors.h), as the subject view (GET /v1/subjects/{id}) shows it.
#ifndef FERRY_COLLECTOR_HTTP_MINOR_ROUTES_H_
#define FERRY_COLLECTOR_HTTP_MINOR_ROUTES_H_

#include "collector/rights/rights_service.h"
#include "lib/httpd/httpd.h"

namespace ferry::collector {

// `rights` must outlive the server.
void RegisterMinorRoutes(httpd::Router& svr, rights::RightsService* rights);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_MINOR_ROUTES_H_
