// The collector's HTTP(S) front: POST /v1/batch, GET /healthz, GET /metrics (cpp-httplib).
#ifndef FERRY_COLLECTOR_HTTP_SERVER_H_
#define FERRY_COLLECTOR_HTTP_SERVER_H_

#include <memory>
#include <string>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "collector/http/admin.h"
#include "collector/http/faults.h"
#include "collector/http/metrics.h"
#include "collector/http/rate_limit.h"
#include "collector/ingest/group_commit.h"
#include "collector/store/store.h"
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
  AdminOptions admin;
  int64_t retention_max_age_ms = 395LL * 24 * 3600 * 1000;  // default maximum event age; <= 0 keeps events forever
  int64_t retention_interval_ms = 3600LL * 1000;            // how often the retention job runs
};

// Owns the HTTP server and the group-commit writer. Construct, Bind(), then Serve() on one thread; Stop() from any.
class CollectorServer {
 public:
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
  void RetentionLoop();

  ServerOptions opts_;
  Store* store_;
  base::Logger log_;
  Metrics metrics_;
  FaultPlan faults_;
  RateLimiter limiter_;
  GroupCommitter committer_;
  AdminApi admin_;
  std::unique_ptr<httplib::Server> svr_;
  std::mutex retention_mu_;
  std::condition_variable retention_cv_;
  bool retention_stop_ = false;  // guarded by retention_mu_
  std::thread retention_;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_SERVER_H_
