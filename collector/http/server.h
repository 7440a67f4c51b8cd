// The collector's HTTP(S) front: POST /v1/batch, GET /healthz, GET /metrics and the admin API, served by lib/httpd
// (event-driven: idle, trickling and flooding connections cost bounded memory and no worker; every limit of
// lib/httpd/httpd.h is checked before a handler, and so before authentication, runs).
#ifndef FERRY_COLLECTOR_HTTP_SERVER_H_
#define FERRY_COLLECTOR_HTTP_SERVER_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "collector/http/admin.h"
#include "collector/http/console.h"
#include "collector/http/exchange.h"
#include "collector/http/faults.h"
#include "collector/http/insight_routes.h"
#include "collector/http/metrics.h"
#include "collector/http/outbox_routes.h"
#include "collector/http/public_routes.h"
#include "collector/http/rate_limit.h"
#include "collector/http/registry_routes.h"
#include "collector/http/webhooks.h"
#include "collector/ingest/group_commit.h"
#include "collector/ingest/ingest.h"
#include "collector/rights/registry.h"
#include "collector/rights/retention_job.h"
#include "collector/rights/rights_service.h"
#include "collector/rights/withdrawal_job.h"
#include "collector/store/store.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/status.h"
#include "lib/httpd/httpd.h"
#include "lib/wire/event.h"

namespace ferry::collector {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8443;                // 0 picks a free port
  std::string tls_cert, tls_key;  // both or neither
  int threads = 64;               // handler threads (a connection holds none while it is idle or arriving)
  wire::Limits limits;
  double rate_limit = 10000;      // requests per second per write key; <= 0 disables
  double rate_burst = 0;          // bucket size; 0 = rate_limit
  double forget_rate_limit = 1;   // POST /v1/forget calls per second per write key; <= 0 disables
  double forget_rate_burst = 20;  // bucket size of the forget limit
  int keep_alive_timeout_s = 5;  // a new connection that sends nothing, or an idle keep-alive one, is closed after this
  int read_timeout_s = 10;       // a request must arrive whole (headers and body) within this, else 408
  // Open connections over all listeners; more are refused (503 with Retry-After, then close). Lowered to fit the
  // process's file descriptor limit.
  size_t max_connections = 4096;
  size_t max_connections_per_source = 0;  // per client address; 0 = no cap
  size_t max_header_bytes = 64 * 1024;    // request line and header fields; more: 431, before authentication
  size_t max_header_count = 100;          // header fields; more: 431
  // A listener of its own for GET /metrics and GET /healthz, without a token: loopback addresses only ("" = none).
  // On the main listener /metrics then always needs an operator token.
  std::string metrics_host;
  int metrics_port = 0;
  rights::RightsOptions rights;
  AdminOptions admin;     // the admin API: how refused calls are slowed down per source address
  TimeWindow event_time;  // event times are kept within this window around the received time
  // Consent enforcement at ingest (collector/ingest/consent_gate.h) for a project without a policy of its own:
  // "enforce" or "report-only" (--consent-default).
  std::string consent_default = "enforce";
  int64_t retention_max_age_ms = 395LL * 24 * 3600 * 1000;  // default maximum event age; <= 0 keeps events forever
  int64_t retention_interval_ms = 3600LL * 1000;            // how often the retention job runs
  // How long consent records are kept beyond the newest event they covered (--consent-keep-days), for projects
  // without their own (ferryctl projects set-consent-keep).
  int64_t consent_keep_ms = 365LL * 24 * 3600 * 1000;
  // How long the downstream outbox keeps entries every consumer acknowledged and deliveries delivered
  // (--outbox-keep-days); <= 0 keeps them forever.
  int64_t outbox_keep_ms = 30LL * 24 * 3600 * 1000;
  // How often the withdrawal job (collector/rights/withdrawal_job.h) looks for denials queued by another process
  // sharing the store; this process wakes it after each batch that stored a denial.
  int64_t withdrawal_interval_ms = 60LL * 1000;
  // The time of ingest (receivedAt and the clock-skew correction), the rate limiter, the retention job, request due
  // dates and audit entries. Tests that run the server in-process may hand in a base::ManualClock.
  base::Clock* clock = base::SystemClock();
  // The operations insight (docs/INSIGHT.md), when the collector runs with --insight: its admin routes are added, and
  // ingest stores through `ingest_sink` (the insight's feed in front of the store) instead of the store itself.
  insight::Insight* insight = nullptr;
  // Called after a retention pass that deleted events (the insight's purge), with the pass's time.
  std::function<void(int64_t now_ms)> on_retention_purged;
  IngestSink* ingest_sink = nullptr;
  // Group-commit writer threads (GroupCommitter); 0: one where the store runs one write transaction at a time (the
  // embedded store), two where they run side by side (PostgreSQL).
  int ingest_writers = 0;
  // The officer's console at /console/ on the main listener (docs/CONSOLE.md); GET /v1/whoami is served either way.
  bool console = true;
  // Where erasures, rectifications and restrictions are pushed (--webhook NAME=URL), and how
  // (collector/http/webhooks.h).
  std::vector<rights::WebhookDestination> webhooks;
  WebhookOptions webhook;
  // Public intake (--public-requests on; collector/http/public_routes.h): off by default, since it takes requests
  // from anyone.
  bool public_requests = false;
  PublicOptions public_options;
};

// Owns the HTTP server and the group-commit writer. Construct, Bind(), then Serve() on one thread; Stop() from any.
class CollectorServer {
 public:
  // `store` must outlive this object; each part takes the narrow interface it needs.
  CollectorServer(ServerOptions opts, Store* store, base::Logger log);
  ~CollectorServer();
  CollectorServer(const CollectorServer&) = delete;
  CollectorServer& operator=(const CollectorServer&) = delete;

  // Binds and listens on host:port (and the metrics listener, if any), or TLS setup fails. Returns the bound port.
  // Requests are served from here on.
  base::Result<int> Bind();
  // The bound port of the metrics listener (0 when there is none).
  int metrics_port() const;
  // Serves until Stop(); returns once in-flight requests finished and the writer drained.
  base::Status Serve();
  // Makes Serve() stop; safe from any thread (not from a signal handler).
  void Stop();
  // The server's connection and refusal counters.
  httpd::Stats http_stats() const;

  bool tls() const { return !opts_.tls_cert.empty(); }
  Metrics& metrics() { return metrics_; }
  FaultPlan& faults() { return faults_; }

 private:
  void Routes(httpd::Router& r);
  void MetricsRoutes(httpd::Router& r);
  std::string RenderMetrics() const;
  void Health(HttpResponse& res);

  ServerOptions opts_;
  Credentials* credentials_;  // write keys of /v1/batch
  IngestGateSource* gates_;   // consent policies and records, restrictions in force: what /v1/batch reads
  StoreInspection* health_;   // GET /healthz
  base::Clock* clock_;
  base::Logger log_;
  Metrics metrics_;
  FaultPlan faults_;
  RateLimiter limiter_;
  GroupCommitter committer_;
  rights::Outbox outbox_;  // the downstream outbox (before rights_, which records on it)
  rights::RightsService rights_;
  rights::RegistryService registry_;  // the purpose and processing registry
  AdminApi admin_;
  rights::RetentionJob retention_;
  WebhookDispatcher webhooks_;
  RightsTransactions* transactions_;   // the outbox routes
  rights::WithdrawalJob withdrawals_;  // denials acting on stored data (after rights_, which it calls)
  std::unique_ptr<httpd::Server> svr_;
  size_t metrics_listener_ = 0;  // index in svr_, when metrics_host is set
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;  // guarded by stop_mu_
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_SERVER_H_
