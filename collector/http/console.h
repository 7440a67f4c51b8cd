// The officer's console (docs/CONSOLE.md): its static files under /console/ on the main listener, and
// GET /v1/whoami, the admin call the console asks first (the caller's token name, prefix and roles, and which optional
// parts of the admin API this collector serves).
#ifndef FERRY_COLLECTOR_HTTP_CONSOLE_H_
#define FERRY_COLLECTOR_HTTP_CONSOLE_H_

#include "collector/rights/rights_service.h"
#include "lib/base/log.h"
#include "lib/httpd/httpd.h"

namespace ferry::collector {

// Whether this binary carries the console (built with FERRY_CONSOLE=ON).
bool ConsoleBuiltIn();

// GET /console (redirect) and GET /console/{file}: the embedded files only, with a strict Content-Security-Policy,
// nosniff, no referrer, no framing; hashed files are cached for a year, index.html is revalidated. When the build
// has no console, /console/ answers 404 with the reason.
void RegisterConsoleRoutes(httpd::Router& svr, base::Logger log);

// GET /v1/whoami: {name, prefix, roles, insight}; any valid admin token, 401 otherwise (audited as every refusal).
// `rights` must outlive the router.
void RegisterWhoAmI(httpd::Router& svr, rights::RightsService* rights, bool insight);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_CONSOLE_H_
