// Agent: the pipeline behind the local API. It owns one core::Client (consent gate, PII masking, encrypted buffer,
// uploader) opened from an AgentConfig, turns local API requests into client calls, and answers what happened.
// Independent of HTTP (the front is in http_front.h), so its answers are tested directly.
//
// Thread-safety: every method may be called from any thread. Requests hold client_mu_ shared; Reload holds it
// exclusively while it swaps the client (base::SharedMutex prefers the writer, so reloads are not starved).
#ifndef FERRY_AGENT_AGENT_H_
#define FERRY_AGENT_AGENT_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "agent/config.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/rwlock.h"
#include "lib/base/status.h"
#include "sdk/core/client.h"

namespace ferry::agent {

// An answer for the local API: HTTP status and a JSON body.
struct Answer {
  int status = 200;
  std::string body;
  int retry_after_s = 0;  // > 0: sent as Retry-After
};

// An error answer. The body is the one error body of the collector and the agent (lib/wire/http_status.h,
// docs/PROTOCOL.md): {"error": reason, "code": "<machine name of code>"}, plus the members the agent's local API
// has always given, {"result": result, "reason": reason}. The HTTP status is wire::HttpStatusFor(code), or
// http_status when one is given (413 and 415 have no code of their own). A 503 says Retry-After: 1.
Answer ErrorAnswer(base::Code code, const std::string& result, const std::string& reason, int http_status = 0);

class Agent {
 public:
  // Opens the buffer and starts the uploader. Fails with the reason (kStorage, kInvalidArgument...). `clock` (not
  // owned, outlives the agent) gives the agent's times: its start time and the receive time of forwarded batches.
  static base::Result<std::unique_ptr<Agent>> Open(AgentConfig cfg, base::Logger log,
                                                   base::Clock* clock = base::SystemClock());
  ~Agent();

  // POST /v1/track | /v1/screen | /v1/identify: one event ({"event"|"name"|"userId", "properties"|"traits",
  // "purpose", "anonymousId", "messageId", "timestamp"}). 200 accepted or dropped for consent, 400 invalid,
  // 503 buffer unavailable.
  Answer Event(std::string_view type, std::string_view body);
  // POST /v1/events: up to 1,000 events of the three routes above in one request ({"events": [{"type", ...}]}),
  // committed together and answered after the commit: 200 {"accepted", "dropped", "refused", "results": [one per
  // event, in order]}, 400/413 for a body that is not a list of events, 503 when the buffer cannot take them.
  Answer Events(std::string_view body);
  // POST /v1/batch in the collector's format (agent -> agent forwarding). received_ms corrects the sender's clock.
  Answer Batch(std::string_view body, int64_t received_ms);
  // GET /v1/consent and PUT /v1/consent/{purpose} ({"state": "granted"|"denied"|"pending"}).
  Answer GetConsent();
  Answer PutConsent(const std::string& purpose, std::string_view body);
  // GET /healthz: 200 "ok" while the buffer is writable and the upstream accepts the write key.
  Answer Health();
  // GET /metrics (Prometheus text format).
  std::string Metrics();

  // Applies a new config: the pipeline settings (upstream, consent defaults, PII rules, batching, CORS) take effect at
  // once; listeners, storage path and buffer key need a restart (logged, the old ones stay). On failure the old
  // config stays and the reason is returned.
  base::Status Reload(AgentConfig cfg);
  // Flushes for at most timeout_ms and closes the buffer. Later requests get 503.
  base::Status Shutdown(uint32_t timeout_ms);

  AgentConfig config() const;
  // The agent's clock (HttpFront takes receive times from it).
  base::Clock* clock() const { return clock_; }
  // Counts one HTTP answer for /metrics.
  void CountRequest(const std::string& route, int status);

 private:
  Agent(AgentConfig cfg, base::Logger log, base::Clock* clock);
  static base::Result<std::unique_ptr<core::Client>> OpenClient(const AgentConfig& cfg, const base::Logger& log);
  Answer FromStatus(const base::Status& s, const std::string& message_id, const std::string& purpose,
                    core::Client* client);
  void CountEvent(const char* result, int64_t n = 1);

  base::Logger log_;
  base::Clock* clock_;
  mutable base::SharedMutex client_mu_;
  std::unique_ptr<core::Client> client_;  // guarded by client_mu_; null after Shutdown
  AgentConfig cfg_;                       // guarded by client_mu_

  std::mutex metrics_mu_;
  std::map<std::string, int64_t> requests_;  // "route\x1fstatus" -> count; guarded by metrics_mu_
  std::map<std::string, int64_t> events_;    // result -> count; guarded by metrics_mu_
  std::atomic<int64_t> reloads_ok_{0}, reloads_failed_{0};
  int64_t started_ms_;
};

}  // namespace ferry::agent

#endif  // FERRY_AGENT_AGENT_H_
