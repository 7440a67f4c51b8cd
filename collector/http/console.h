// The officer's console (docs/CONSOLE.md): its static files under /console/ on the main listener. (The admin call it
// asks first, GET /v1/whoami, is the admin API's: admin.cc.)
#ifndef FERRY_COLLECTOR_HTTP_CONSOLE_H_
#define FERRY_COLLECTOR_HTTP_CONSOLE_H_

#include "lib/base/log.h"
#include "lib/httpd/httpd.h"

namespace ferry::collector {

// Whether this binary carries the console (built with FERRY_CONSOLE=ON).
bool ConsoleBuiltIn();

// GET /console (redirect) and GET /console/{file}: the embedded files only, with a strict Content-Security-Policy,
// nosniff, no referrer, no framing; hashed files are cached for a year, index.html is revalidated. When the build
// has no console, /console/ answers 404 with the reason.
void RegisterConsoleRoutes(httpd::Router& svr, base::Logger log);

// GET /self-service (redirect) and GET /self-service/{file}: the self-service page for data subjects (its embedded
// files only, the same headers), served when public intake is on (--public-requests on).
void RegisterSelfServeRoutes(httpd::Router& svr);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_CONSOLE_H_
