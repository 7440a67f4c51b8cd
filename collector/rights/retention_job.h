// The retention job (storage limitation, GDPR art. 5(1)(e)): deletes events older than each project's maximum age,
// and consent records once no stored event needs them as proof and their keep period passed, once at start and then
// every interval, in chunks so that ingest waits little. Its time comes from a base::Clock, so tests drive it with a
// ManualClock instead of waiting.
#ifndef FERRY_COLLECTOR_RIGHTS_RETENTION_JOB_H_
#define FERRY_COLLECTOR_RIGHTS_RETENTION_JOB_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "collector/store/interfaces.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

namespace ferry::collector::rights {

struct RetentionOptions {
  int64_t default_max_age_ms = 395LL * 24 * 3600 * 1000;  // for projects without their own; <= 0 keeps forever
  int64_t interval_ms = 3600LL * 1000;                    // between the end of one pass and the start of the next
  int64_t chunk_rows = 5000;                              // rows a transaction
  // How long a consent record is kept beyond the newest event it covered, for projects without their own
  // (RetentionStore::PurgeExpired).
  int64_t consent_keep_ms = 0;
  // How long the downstream outbox keeps what its consumers acknowledged and its webhooks delivered
  // (RetentionStore::PruneOutbox); <= 0 keeps it forever.
  int64_t outbox_keep_ms = 0;
};

class RetentionJob {
 public:
  // on_purged(n) is called after a pass that deleted n > 0 events (metrics).
  RetentionJob(RetentionStore* store, base::Clock* clock, RetentionOptions options, base::Logger log,
               std::function<void(int64_t)> on_purged = nullptr);
  ~RetentionJob();
  RetentionJob(const RetentionJob&) = delete;
  RetentionJob& operator=(const RetentionJob&) = delete;

  // Runs a pass now and then one every interval, on a thread of its own, until Stop().
  void Start();
  // Wakes the thread and joins it (a pass under way finishes its current chunk first). Safe to call twice.
  void Stop();

  // One pass: purges chunk by chunk until a chunk comes back short (or Stop), then prunes the outbox (when
  // outbox_keep_ms > 0). Returns the events deleted.
  base::Result<int64_t> RunOnce();

  // Passes finished by the thread so far. WaitForPasses blocks until at least n finished, or timeout_ms of real time
  // passed (then false): tests wait on this event instead of sleeping.
  int64_t passes();
  bool WaitForPasses(int64_t n, int64_t timeout_ms);

 private:
  void Loop();
  bool stopping();

  RetentionStore* store_;
  base::Clock* clock_;
  RetentionOptions opts_;
  base::Logger log_;
  std::function<void(int64_t)> on_purged_;
  std::mutex mu_;
  std::condition_variable wake_;    // the thread waits for its next pass (or Stop) on it
  std::condition_variable passed_;  // WaitForPasses waits on it
  bool stop_ = false;               // guarded by mu_
  int64_t passes_ = 0;              // guarded by mu_
  std::thread thread_;
};

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_RETENTION_JOB_H_
