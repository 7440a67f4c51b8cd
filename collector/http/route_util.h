// What the admin routes kept in their own files (outbox_routes.cc, erasure_routes.cc) share: a JSON error or answer,
// and the caller's token checked for an action (refusals counted and audited per source address, as on the other
// admin routes).
#ifndef FERRY_COLLECTOR_HTTP_ROUTE_UTIL_H_
#define FERRY_COLLECTOR_HTTP_ROUTE_UTIL_H_

#include <optional>
#include <string>

#include "collector/http/exchange.h"
#include "collector/rights/rights_service.h"
#include "lib/base/status.h"

namespace ferry::collector {

// The error's status and JSON body (lib/wire/http_status.h).
void FailJson(HttpResponse& res, const base::Status& s);
// 200 with `body`.
void OkJson(HttpResponse& res, const rights::Json& body);
// The caller of `action` (on `subject`, "" for none), or nullopt with the refusal already answered.
std::optional<rights::Actor> RouteCaller(rights::RightsService& rights, const HttpRequest& req, HttpResponse& res,
                                         rights::Action action, const std::string& subject = "");

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_ROUTE_UTIL_H_
