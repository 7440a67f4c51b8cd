// The purpose and processing registry's admin routes (docs/PROTOCOL.md "Purpose and processing registry"), a thin
// HTTP binding of collector/rights/registry.h:
//   GET  /v1/projects/{project}/registry                       the registry (compliance or operator)
//   PUT  /v1/projects/{project}/registry                       replace it (compliance)
//   GET  /v1/projects/{project}/registry/records?format=F      records of processing (GDPR art. 30)
//   GET  /v1/projects/{project}/registry/impact?format=F       inputs of an impact assessment (DPIA / PIPL PIA)
// F: json (default), md or html.
#ifndef FERRY_COLLECTOR_HTTP_REGISTRY_ROUTES_H_
#define FERRY_COLLECTOR_HTTP_REGISTRY_ROUTES_H_

#include "collector/rights/registry.h"
#include "collector/rights/rights_service.h"
#include "lib/httpd/httpd.h"

namespace ferry::collector {

// `registry` and `rights` must outlive the server.
void RegisterRegistryRoutes(httpd::Router& svr, rights::RegistryService* registry, rights::RightsService* rights);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_REGISTRY_ROUTES_H_
