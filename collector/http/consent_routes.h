// The consent admin routes (issue 12), a thin HTTP binding of the rights service:
//   GET /v1/projects/{project}/consent/stats?bucket=day|week&from=&to=   opt-in and opt-out rates (compliance or
//                                                                         analyst; collector/rights/consent_stats.h)
#ifndef FERRY_COLLECTOR_HTTP_CONSENT_ROUTES_H_
#define FERRY_COLLECTOR_HTTP_CONSENT_ROUTES_H_

#include "collector/rights/rights_service.h"
#include "lib/httpd/httpd.h"

namespace ferry::collector {

// `rights` must outlive the server.
void RegisterConsentRoutes(httpd::Router& svr, rights::RightsService* rights);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_CONSENT_ROUTES_H_
