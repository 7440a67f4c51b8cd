// The downstream outbox's admin routes (docs/PROTOCOL.md "Downstream outbox"), a thin HTTP binding of
// collector/rights/outbox.h (compliance or operator):
//   GET  /v1/outbox?after=SEQ&limit=N          the feed, a page of entries after SEQ
//   POST /v1/outbox/ack {"consumer","seq"}     a consumer acknowledges what it has read
//   GET  /v1/outbox/public-key                 the Ed25519 key that signs webhook deliveries
//   GET  /v1/requests/{id}/deliveries          a request's deliveries per webhook destination
#ifndef FERRY_COLLECTOR_HTTP_OUTBOX_ROUTES_H_
#define FERRY_COLLECTOR_HTTP_OUTBOX_ROUTES_H_

#include "collector/rights/outbox.h"
#include "collector/rights/rights_service.h"
#include "lib/httpd/httpd.h"

namespace ferry::collector {

// Everything passed must outlive the server.
void RegisterOutboxRoutes(httpd::Router& svr, RightsTransactions* store, rights::RightsService* rights);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_OUTBOX_ROUTES_H_
