// Client: the SDK's pipeline for one buffer. consent gate -> PII masking -> serialised event -> writer queue ->
// encrypted buffer -> uploader. Every public method is thread-safe.
//
// NOTE on locks (acquire in this order, never the reverse):
//   consent_mu_ (shared by event calls, exclusive by consent changes and reset/forget)
//   -> state_mu_ (ids, session, context cache)
//   -> queue_mu_ (writer queue)
//   -> Buffer's internal mutex, Uploader's internal mutex (leaf locks).
#ifndef FERRY_SDK_CORE_CLIENT_H_
#define FERRY_SDK_CORE_CLIENT_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/log.h"
#include "lib/base/rwlock.h"
#include "lib/base/status.h"
#include "sdk/core/buffer.h"
#include "sdk/core/context.h"
#include "sdk/core/options.h"
#include "sdk/core/stats.h"
#include "sdk/core/uploader.h"
#include "sdk/pii/pii.h"

namespace ferry::core {

class Client {
 public:
  static base::Result<std::unique_ptr<Client>> Open(ClientOptions opts);
  ~Client();  // stops the threads (no flush); Close() is the graceful way

  // Flushes for at most timeout_ms, commits everything, stops the threads. kTimeout if sendable events remain.
  base::Status Close(uint32_t timeout_ms);

  // properties/traits: nullptr or a JSON object text. purpose: nullptr = "analytics".
  base::Status Track(std::string_view event, const char* properties_json, const char* purpose);
  base::Status Screen(std::string_view name, const char* properties_json);
  base::Status Identify(std::string_view user_id, const char* traits_json);
  base::Status Reset();

  base::Status SetConsent(std::string_view purpose, Consent state);
  Consent GetConsent(std::string_view purpose);

  base::Status Flush(uint32_t timeout_ms);
  base::Status Forget(uint32_t timeout_ms);
  base::Result<std::string> ExportLocal();
  std::string StatsJson();

  // Counts a call refused for bad input and logs why (also used by the C layer for NULL arguments).
  base::Status Invalid(const std::string& why);

  // ---- Recording on behalf of other programs (ferry-agent) --------------------------------------------------------

  // Per-call fields for RecordAs. When user_id or anonymous_id is set, the event carries exactly the ids given (the
  // client's own ids are not added, so that callers on one device are never linked to each other); when both are
  // empty it carries the client's ids. The client's own identity never changes.
  struct CallContext {
    std::string user_id;
    std::string anonymous_id;
    std::string message_id;    // "" = a new UUID; a caller's own id keeps its retries idempotent
    int64_t timestamp_ms = 0;  // 0 = now
  };
  // Records one "track", "screen" or "identify" event with per-call fields (identify needs ctx.user_id; name is the
  // event/screen name). purpose nullptr = "analytics" (screen and identify always use "analytics"). Same consent
  // gate, masking, limits and durability as Track.
  base::Status RecordAs(const CallContext& ctx, std::string_view type, std::string_view name, const char* payload_json,
                        const char* purpose);
  // Records events that another Ferry client already built (agent -> agent forwarding). Each must already pass
  // wire::ValidateEvent. The consent gate applies by each event's purpose (a denied purpose: kConsentDenied, nothing
  // stored); properties/traits and a screen name are masked (consent records are kept as they are); messageId, type,
  // ids, timestamp and context are kept. All are queued first, then (SYNC durability) waited for together.
  // Returns one status per event, in order.
  std::vector<base::Status> RecordBuilt(std::vector<nlohmann::json> events);
  // Every purpose with a recorded or default state ("necessary" included).
  std::map<std::string, Consent> ConsentStates();
  // Adds to the eviction count that the next batch reports upstream ("dropped": {"evicted": n}); for evictions that
  // a forwarding client reported.
  void AddUnreportedEvicted(int64_t n);

 private:
  explicit Client(ClientOptions opts);
  base::Status Init();

  struct Pending {
    NewEvent ev;
    uint64_t ticket;
    bool sendable;
  };

  // Builds, checks and queues one event. kind: wire type; name_key: "event" or "name"; payload_key: "properties" or
  // "traits". Caller holds consent_mu_ shared.
  // call: per-call fields (RecordAs), nullptr for the client's own.
  base::Status Record(std::string_view type, std::string_view name_key, std::string_view name,
                      std::string_view payload_key, const char* payload_json, const std::string& purpose, Consent state,
                      const CallContext* call = nullptr);
  // Queues a serialised event; waits for the commit in SYNC mode unless ticket_out is given (then the caller waits
  // with WaitCommitted).
  base::Status Enqueue(NewEvent ev, bool sendable, uint64_t* ticket_out = nullptr);
  base::Status WaitCommitted(uint64_t ticket);
  // Waits until everything queued so far is committed (or the buffer is failing).
  base::Status Drain(int64_t deadline_ms);
  void WriterLoop();
  void MaybeEvict(bool force_age);

  Consent StateLocked(const std::string& purpose) const;  // consent_mu_ held
  std::set<std::string> SendablePurposes();
  std::map<std::string, Consent> ConsentSnapshotLocked() const;
  void RefreshContextLocked();  // state_mu_ held (and consent_mu_ at least shared)
  std::shared_ptr<const std::string> TouchSessionLocked(int64_t now_ms);  // state_mu_ held; the context to use

  ClientOptions opts_;
  base::Logger log_;
  Stats stats_;
  std::unique_ptr<Buffer> buffer_;
  std::shared_ptr<const pii::PiiMasker> masker_;
  std::unique_ptr<Uploader> uploader_;
  std::atomic<bool> closed_{false};

  mutable base::SharedMutex consent_mu_;
  std::map<std::string, Consent> consent_;  // guarded by consent_mu_

  std::mutex state_mu_;
  ContextFacts facts_;
  std::string anonymous_id_, user_id_, session_id_;  // guarded by state_mu_
  std::set<std::string> previous_anonymous_ids_;     // guarded by state_mu_
  int64_t last_activity_ms_ = 0;                     // guarded by state_mu_
  std::shared_ptr<const std::string> context_json_;  // guarded by state_mu_

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;   // writer wakes
  std::condition_variable commit_cv_;  // producers wait (SYNC, back-pressure, Drain)
  std::deque<Pending> queue_;          // guarded by queue_mu_
  uint64_t next_ticket_ = 1;           // guarded by queue_mu_
  uint64_t committed_ticket_ = 0;      // highest ticket committed or failed (SYNC)
  uint64_t failed_ticket_ = 0;         // highest ticket whose commit failed (SYNC)
  bool storage_failing_ = false;       // BATCHED: the last commit failed; new events refused until one succeeds
  bool writer_stop_ = false;
  size_t queue_bytes_ = 0;
  std::thread writer_;
};

}  // namespace ferry::core

#endif  // FERRY_SDK_CORE_CLIENT_H_
