// The operations insight's admin routes (docs/PROTOCOL.md "Operations insight"): a thin HTTP binding of
// collector/analysis/insight_api.h. GET /v1/insight/{profile,retention,funnel,rfm,lifecycle,tags,churn}?project=...
// (URL parameters), POST /v1/insight/audiences (a JSON body). Bearer admin token with the analyst role.
#ifndef FERRY_COLLECTOR_HTTP_INSIGHT_ROUTES_H_
#define FERRY_COLLECTOR_HTTP_INSIGHT_ROUTES_H_

#include "collector/insight/insight.h"
#include "collector/rights/rights_service.h"
#include "lib/base/log.h"
#include "lib/httpd/httpd.h"

namespace ferry::collector {

// Adds the routes when `insight` is not null (the collector runs with --insight); nothing otherwise. `insight` and
// `rights` must outlive the server.
void RegisterInsightRoutes(httpd::Router& svr, insight::Insight* insight, rights::RightsService* rights,
                           base::Logger log);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_INSIGHT_ROUTES_H_
