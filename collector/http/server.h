// The collector's HTTP(S) front: POST /v1/batch, GET /healthz, GET /metrics (cpp-httplib).
#ifndef FERRY_COLLECTOR_HTTP_SERVER_H_
#define FERRY_COLLECTOR_HTTP_SERVER_H_

#include <memory>
#include <string>

#include "collector/http/admin.h"
#include "collector/http/faults.h"
#include "collector/http/metrics.h"
#include "collector/http/rate_limit.h"
#include "collector/ingest/group_commit.h"
#include "collector/ingest/ingest.h"
#include "collector/rights/retention_job.h"
#include "collector/rights/rights_service.h"
#include "collector/store/store.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/status.h"
#include "lib/wire/event.h"

namespace httplib {
class Server;
}

namespace ferry::collector {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8443;                // 0 picks a free port
  std::string tls_cert, tls_key;  // both or neither
  int threads = 64;               // worker threads (each keep-alive connection holds one while it is open)
  wire::Limits limits;
  double rate_limit = 10000;  // requests per second per write key; <= 0 disables
  double rate_burst = 0;      // bucket size; 0 = rate_limit
  int keep_alive_timeout_s = 5;
  int read_timeout_s = 10;
  rights::RightsOptions rights;
  AdminOptions admin;     // the admin API: how refused calls are slowed down per source address
  TimeWindow event_time;  // event times are kept within this window around the received time
  int64_t retention_max_age_ms = 395LL * 24 * 3600 * 1000;  // default maximum event age; <= 0 keeps events forever
  int64_t retention_interval_ms = 3600LL * 1000;            // how often the retention job runs
  // The time of ingest (receivedAt and the clock-skew correction), the rate limiter, the retention job, request due
  // dates and audit entries. Tests that run the server in-process may hand in a base::ManualClock.
  base::Clock* clock = base::SystemClock();
};

// Owns the HTTP server and the group-commit writer. Construct, Bind(), then Serve() on one thread; Stop() from any.
class CollectorServer {
 public:
  // `store` must outlive this object; each part takes the narrow interface it needs.
  CollectorServer(ServerOptions opts, Store* store, base::Logger log);
  ~CollectorServer();
  CollectorServer(const CollectorServer&) = delete;
  CollectorServer& operator=(const CollectorServer&) = delete;

  // Binds and listens on host:port (or TLS setup fails). Returns the bound port.
  base::Result<int> Bind();
  // Serves until Stop(); returns once in-flight requests finished and the writer drained.
  base::Status Serve();
  // Stops accepting; safe from any thread (not from a signal handler).
  void Stop();

  bool tls() const { return !opts_.tls_cert.empty(); }
  Metrics& metrics() { return metrics_; }
  FaultPlan& faults() { return faults_; }

 private:
  void Routes();

  ServerOptions opts_;
  Credentials* credentials_;  // write keys of /v1/batch
  StoreInspection* health_;   // GET /healthz
  base::Clock* clock_;
  base::Logger log_;
  Metrics metrics_;
  FaultPlan faults_;
  RateLimiter limiter_;
  GroupCommitter committer_;
  rights::RightsService rights_;
  AdminApi admin_;
  rights::RetentionJob retention_;
  std::unique_ptr<httplib::Server> svr_;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_SERVER_H_
