// Public intake and the app's verification code (issue 13 item 3; docs/PROTOCOL.md "Public intake"), served only when
// the collector runs with --public-requests on. No credential: every call is limited per source address, and the
// bodies go through the same bounded JSON parser as every other call.
//   POST /v1/public/requests                       {kind, project, contact, identifier?, lang?} -> 201 {reference,
//   secret, ...} POST /v1/public/requests/{ref}/status          {secret} -> the request as the person sees it POST
//   /v1/public/requests/{ref}/verify          {secret, code} -> bound to the app's subject, awaiting_verification POST
//   /v1/public/requests/{ref}/copy-link       {secret} -> 201 {url, expiresAt}: a one-time link to the copy POST
//   /v1/device/verification-code (write key)  {anonymousIds} -> 201 {code, expiresAt}
// An unknown reference and a wrong secret get the same 404 answer; nothing about the request is told before the secret.
// POST /v1/requests/{id}/identify (compliance token; served always) binds a public request by hand with evidence.
#ifndef FERRY_COLLECTOR_HTTP_PUBLIC_ROUTES_H_
#define FERRY_COLLECTOR_HTTP_PUBLIC_ROUTES_H_

#include <cstdint>

#include "collector/rights/rights_service.h"
#include "lib/base/clock.h"
#include "lib/httpd/httpd.h"

namespace ferry::collector {

struct PublicOptions {
  // Calls per source address (token buckets: rate per second, burst): filings, code attempts, other calls.
  double filing_rate = 1.0 / 60;
  double filing_burst = 5;
  double verify_rate = 1.0 / 60;
  double verify_burst = 20;
  double status_rate = 1;
  double status_burst = 60;
  // Codes an app may ask for per device (write key and first id) and per write key.
  double code_rate = 1.0 / 60;
  double code_burst = 5;
  double code_key_rate = 1;
  double code_key_burst = 20;
  int64_t code_ttl_ms = 10 * 60 * 1000;       // how long a code stays valid
  int64_t copy_link_ttl_ms = 15 * 60 * 1000;  // how long a link to the copy stays valid
};

// The public routes (when `enabled`) and the officer's identify route (always). `rights` and `clock` must outlive the
// server.
void RegisterPublicRoutes(httpd::Router& svr, rights::RightsService* rights, bool enabled, const PublicOptions& options,
                          base::Clock* clock);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_PUBLIC_ROUTES_H_
