// Uploader: one thread per client that sends sendable events to the collector in zstd batches (docs/PROTOCOL.md)
// and delivers queued erasure requests (/v1/forget).
//
// Triggers: batch_size sendable events (Notify), flush_interval_ms, Flush()/Forget() requests, close.
// With more transports (AddTransport: the built-in one, never an app's), as many batch requests may be in flight: the
// next batch is read, compressed and sent while the earlier ones are answered. Answers are taken in the order the
// requests were sent; a batch holding anything but track, screen and page events (a consent record, an identify, an
// alias, a group: what the collector's gates judge later events by) is sent alone, and the next waits for its answer.
// Answers: 200 deletes accepted/duplicate/suppressed/rejected events (rejected ones counted); 400 drops the batch
// (counted); 401 stops sending until the client is reopened (data kept); 413 halves the batch; 429/503 wait at
// least Retry-After; other 5xx and network errors back off exponentially with full jitter (1 s base, 10 min cap).
#ifndef FERRY_SDK_CORE_UPLOADER_H_
#define FERRY_SDK_CORE_UPLOADER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/status.h"
#include "lib/wire/codec.h"
#include "platform/platform.h"
#include "sdk/core/buffer.h"
#include "sdk/core/options.h"
#include "sdk/core/stats.h"

namespace ferry::core {

class Uploader {
 public:
  using PurposesFn = std::function<std::set<std::string>()>;
  // purpose -> receipt id of the grant that admits its events now (ConsentGate::GrantReceipts).
  using ReceiptsFn = std::function<std::map<std::string, std::string>()>;

  // opts (endpoint, write key, batching, timeouts, zstd level, clock), store and stats must outlive the uploader.
  // transport may be null when no endpoint is configured.
  Uploader(const ClientOptions& opts, Buffer* store, Stats* stats, base::Logger log, PurposesFn sendable_purposes,
           std::unique_ptr<platform::HttpTransport> transport);
  ~Uploader();
  // Where events recorded while their purpose was pending get the receipt of the grant that releases them
  // (AdmitPendingEvent). Set before Start().
  void SetGrantReceipts(ReceiptsFn fn) { grant_receipts_ = std::move(fn); }
  // Runs on the uploader thread before each pass (the client drops held events past their longest hold). Set before
  // Start().
  void SetPassHook(std::function<void()> fn) { pass_hook_ = std::move(fn); }
  // Where each batch comes from: the oldest sendable events (at most max_events, about max_bytes) and the grant
  // receipts, read under one consent hold (a purpose sent back to pending mid-pass, by a minor's mark, is not sent
  // from then on). Unset: the buffer's NextBatch of the pass's purposes and SetGrantReceipts'. Set before Start().
  // after_seq > 0: only events past it (a batch still in flight ends there).
  using BatchFn = std::function<base::Result<std::vector<QueuedEvent>>(
      size_t max_events, size_t max_bytes, int64_t after_seq, std::map<std::string, std::string>* receipts)>;
  void SetBatchSource(BatchFn fn) { batch_source_ = std::move(fn); }
  // One more transport to the same endpoint, for one more batch request in flight (see above). It must be usable
  // from another thread than the others (never at the same time as itself). Add before Start().
  void AddTransport(std::unique_ptr<platform::HttpTransport> t) { more_transports_.push_back(std::move(t)); }
  // Whether a batch's events may be followed by the next batch before the collector answered it: only track, screen
  // and page events as the client writes them (no consent record, identify, alias or group, whose effect on the
  // collector's gates later events may need).
  static bool MayOverlap(const std::vector<QueuedEvent>& events);
  // An event the client recorded while its purpose was pending carries `"consentReceipt":null` right after its
  // messageId and deviceSeq; this names `receipt` there instead. Other bodies (built elsewhere, or already naming a
  // receipt) are left as they are. Whether it changed the body.
  static bool AdmitPendingEvent(std::string* body, const std::string& receipt);

  void Start();
  // Stops the thread after the request in flight (if any) finishes.
  void Stop();

  // n more sendable events were committed; wakes the thread once batch_size are waiting.
  void Notify(int64_t n);
  // Sends every event of `purposes` with seq <= target_seq, waiting until done or the deadline (the clock's
  // monotonic ms).
  base::Status Flush(const std::set<std::string>& purposes, int64_t target_seq, int64_t deadline_ms);
  // Delivers every queued erasure request, waiting until done or the deadline.
  base::Status DeliverForgets(int64_t deadline_ms);
  // Delivers every queued device request (outbox "request": POST /v1/device/requests), waiting until done or the
  // deadline. The collector's answer goes to the buffer's meta under "request:<receipt>" (Client::Request).
  base::Status DeliverRequests(int64_t deadline_ms);
  // One POST of `body` to endpoint + `path` with the write key, made on the uploader thread (the transport is used
  // from that thread only) ahead of the next pass; waits until the answer or the deadline (kTimeout; the call is
  // abandoned if it had not started). kNetwork without an endpoint or after the write key was refused.
  base::Status Call(const std::string& path, const std::string& body, int64_t deadline_ms,
                    platform::HttpResponse* resp);

  bool auth_failed() const;
  int64_t unreported_evicted_add(int64_t n);  // adds to the eviction count reported with the next batch

 private:
  void Run();
  // One pass: forgets, then batches until nothing is sendable or an error sets a backoff. Called without mu_.
  void Cycle();
  // One batch request: its events, the request, and once answered the answer.
  struct Shipment {
    std::vector<QueuedEvent> evs;
    int64_t evicted = 0;   // the eviction count it reports (claimed: another request in flight reports none of it)
    bool overlap = false;  // MayOverlap(evs)
    bool full = false;     // as many events as the batch limit allows (by count or bytes): more may be waiting
    platform::HttpTransport* transport = nullptr;
    platform::HttpRequest req;
    platform::HttpResponse resp;
    base::Status net;
    std::future<void> posted;  // the Post running on its own thread (pipelined passes)
  };
  // Reads the next batch (past after_seq) and builds its request. Null when there is nothing to send or the read
  // failed (then *failed is set, with a backoff).
  std::unique_ptr<Shipment> Prepare(const std::set<std::string>& purposes, int64_t after_seq, bool* failed);
  // Takes a batch's answer (deletes what was answered, or sets the backoff); returns false when the pass should stop.
  // failed_before: an earlier request of this pass failed, so a success must not clear its backoff.
  bool Finish(Shipment* s, bool failed_before);
  // Sends one batch; returns false when the pass should stop (error, backoff, nothing left).
  bool SendOneBatch(const std::set<std::string>& purposes);
  // The pass's batches with up to 1 + more_transports_.size() requests in flight (more_transports_ not empty).
  void SendPipelined(const std::set<std::string>& purposes);
  // A transport none of the requests in flight is using; null if all are.
  platform::HttpTransport* FreeTransport(const std::deque<std::unique_ptr<Shipment>>& flight) const;
  bool SendForgets();
  bool SendRequests();
  // Classifies an HTTP answer that is not 200 and sets the backoff. Returns a description for logs.
  std::string HandleFailure(const platform::HttpResponse& resp, const base::Status& net);
  void SetBackoff(int64_t ms, bool hard);
  // Wakes the thread (mu_ held).
  void WakeLocked();
  // Asks the thread for passes until pending() says nothing is left (OK) or the deadline passes (late(), called with
  // mu_ held, says how that ends). The first pass may cut an exponential backoff short.
  base::Status PassesUntil(int64_t deadline_ms, const std::function<base::Result<bool>()>& pending,
                           const std::function<base::Status()>& late);

  const ClientOptions& opts_;
  base::Clock* clock_;
  Buffer* buffer_;
  Stats* stats_;
  base::Logger log_;
  PurposesFn sendable_purposes_;
  ReceiptsFn grant_receipts_;
  std::function<void()> pass_hook_;
  BatchFn batch_source_;
  std::unique_ptr<platform::HttpTransport> transport_;
  std::vector<std::unique_ptr<platform::HttpTransport>> more_transports_;  // empty: one request in flight
  wire::ZstdCompressor zstd_;                                              // Prepare's (the uploader thread's)

  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the thread
  std::condition_variable done_cv_;  // wakes Flush/Forget waiters after each pass
  bool stop_ = false;                // guarded by mu_
  uint64_t wakes_ = 0;               // counts wake-ups of the thread (it waits for a change)
  std::atomic<bool> cancel_{false};  // set by Stop(): the request in flight is abandoned
  bool kick_ = false;                // a flush or forget asked for a pass now
  bool cut_backoff_ = false;         // ... and may cut an exponential backoff short (once per call)
  int64_t pending_new_ = 0;          // sendable events committed since the last pass
  int64_t next_interval_ms_ = 0;     // monotonic; the next pass by flush_interval_ms
  int64_t backoff_until_ms_ = 0;     // monotonic; no pass before it
  bool hard_backoff_ = false;        // Retry-After: flushes wait for it too
  int attempt_ = 0;                  // consecutive failures
  bool auth_failed_ = false;
  uint64_t passes_ = 0;       // completed passes
  bool pass_kicked_ = false;  // the uploader thread's pass was asked for by a flush or forget: it sends everything
  uint32_t batch_limit_;      // current events per request (413 halves it)
  struct CallTask {
    platform::HttpRequest req;
    platform::HttpResponse resp;
    base::Status status;
    bool started = false, done = false;
  };
  std::deque<std::shared_ptr<CallTask>> calls_;  // Call()s waiting for the thread; guarded by mu_
  int64_t unreported_evicted_ = 0;               // guarded by mu_
  int64_t claimed_evicted_ = 0;                  // guarded by mu_: of it, reported by requests in flight
  std::thread thread_;
};

}  // namespace ferry::core

#endif  // FERRY_SDK_CORE_UPLOADER_H_
