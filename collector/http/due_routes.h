// Due dates of the request register (issue 13; docs/PROTOCOL.md "Appended since"), a thin HTTP binding of
// collector/rights/rights_service.h (compliance):
//   POST /v1/requests/policy {"project","policy"}   a project's due-date policy: gdpr, pipl, days:N or "" (remove)
//   POST /v1/requests/{id}/extend {"days","reason"}  an in_progress request's due date extended once, with a reason
//   GET  /v1/requests/due?within=7d                  open requests due within the period (overdue ones too)
#ifndef FERRY_COLLECTOR_HTTP_DUE_ROUTES_H_
#define FERRY_COLLECTOR_HTTP_DUE_ROUTES_H_

#include "collector/rights/rights_service.h"
#include "lib/httpd/httpd.h"

namespace ferry::collector {

// `rights` must outlive the server.
void RegisterDueRoutes(httpd::Router& svr, rights::RightsService* rights);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_DUE_ROUTES_H_
