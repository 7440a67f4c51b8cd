// Pushes the downstream outbox (collector/rights/outbox.h) to the configured webhooks: each pending delivery that is
// due is POSTed (libcurl) with the entry's document as the body and its Ed25519 signature in X-Ferry-Signature; a
// 2xx answer marks it delivered, anything else (or no answer) schedules the next attempt with exponential backoff
// (first_retry_ms, doubling, at most max_retry_ms) until max_attempts, then "failed". Its time comes from a
// base::Clock. At least once: a receiver deduplicates by X-Ferry-Seq (two collectors on one database may both send
// an entry that falls due at the same moment).
#ifndef FERRY_COLLECTOR_HTTP_WEBHOOKS_H_
#define FERRY_COLLECTOR_HTTP_WEBHOOKS_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "collector/rights/outbox.h"
#include "collector/store/interfaces.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

namespace ferry::collector {

struct WebhookOptions {
  int64_t poll_ms = 1000;          // how often due deliveries are looked for
  int64_t first_retry_ms = 1000;   // the wait after the first failed attempt; doubles after each
  int64_t max_retry_ms = 3600000;  // at most this between attempts
  int64_t max_attempts = 20;       // then the delivery is "failed"
  int64_t timeout_ms = 10000;      // of one attempt
};

// Checks a webhook spec "NAME=URL": NAME 1-64 of [A-Za-z0-9_-], URL https:// or http:// to a loopback host.
base::Result<rights::WebhookDestination> ParseWebhook(const std::string& spec);

class WebhookDispatcher {
 public:
  WebhookDispatcher(const rights::Outbox* outbox, RightsTransactions* store, base::Clock* clock, WebhookOptions options,
                    base::Logger log);
  ~WebhookDispatcher();
  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

  // Starts the thread (nothing when no webhook is configured). Stop() wakes and joins it; safe to call twice.
  void Start();
  void Stop();
  // One pass: sends every delivery due now. Returns the attempts made.
  base::Result<int64_t> RunOnce();

 private:
  void Loop();

  const rights::Outbox* outbox_;
  RightsTransactions* store_;
  base::Clock* clock_;
  WebhookOptions opts_;
  base::Logger log_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_WEBHOOKS_H_
