// Client: the SDK's pipeline for one buffer. consent gate (consent.h) -> PII masking (sdk/pii) -> serialised event ->
// writer (writer.h: queue, commits) -> encrypted buffer (buffer.h) -> uploader (uploader.h). Every public method is
// thread-safe.
//
// NOTE on locks (acquire in this order, never the reverse; the one statement of the order, the other files refer
// here):
//   consent_ (the consent gate: shared by event calls, exclusive by consent changes, Reset and Forget)
//   -> state_mu_ (ids, session, context cache)
//   -> the writer's mutex (its queue)
//   -> Buffer's internal mutex (and under it the one that publishes its current dictionary), Uploader's internal
//      mutex (leaf locks). The writer's compressing thread holds the writer's mutex only to copy and hand back events,
//      never while it compresses (Buffer::Precompress takes only the publishing mutex).
// No thread takes the gate twice: the lock prefers writers, so a second shared hold behind a waiting consent change
// would deadlock.
#ifndef FERRY_SDK_CORE_CLIENT_H_
#define FERRY_SDK_CORE_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/status.h"
#include "sdk/core/buffer.h"
#include "sdk/core/consent.h"
#include "sdk/core/context.h"
#include "sdk/core/options.h"
#include "sdk/core/stats.h"
#include "sdk/core/uploader.h"
#include "sdk/core/writer.h"
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
  // The state that admits events (ConsentGate::StateLocked): for a minor, a grant that is not a guardian's is pending.
  Consent GetConsent(std::string_view purpose);
  // A guardian's choice for a minor (ferry_set_consent_guardian): as SetConsent, recorded with method "guardian".
  base::Status SetConsentGuardian(std::string_view purpose, Consent state);
  // Marks the user as a minor or lifts the mark (ferry_set_minor): persisted, recorded (a record of "necessary",
  // method "minor", docs/PROTOCOL.md); marking sends every grant that is not a guardian's back to pending, each on
  // record (method "minor"). Unchanged: nothing recorded.
  base::Status SetMinor(bool minor);
  bool IsMinor();

  base::Status Flush(uint32_t timeout_ms);
  base::Status Forget(uint32_t timeout_ms);
  base::Result<std::string> ExportLocal();
  // A request about the user's data, filed from the device (ferry_request, docs/SDK.md): queued durably (the
  // buffer's outbox, as Forget) with a new random claim, sent after the events (POST /v1/device/requests) and waited
  // for until the timeout. *receipt_json: {"receipt", "kind", "reference", "state"[, "error"]} whenever the request
  // was queued, also on kTimeout / kNetwork (it stays queued and is retried).
  base::Status Request(std::string_view kind, uint32_t timeout_ms, std::string* receipt_json);
  // The request's state as the collector has it (ferry_request_status): the receipt's JSON while it is queued or was
  // refused; NotFound for a receipt this buffer never gave.
  base::Result<std::string> RequestStatus(std::string_view receipt, uint32_t timeout_ms);
  // Fetches the copy of an approved access request once through a one-time link (ferry_request_copy): the copy's
  // JSON, or "" while it is not ready.
  base::Result<std::string> RequestCopy(std::string_view receipt, uint32_t timeout_ms);
  // A code for the user to type on the project's self-service page (ferry_request_verification_code): the buffered
  // events are sent first, then the collector is asked (POST /v1/device/verification-code) for a short-lived,
  // single-use code bound to the subject this device demonstrably uses. {"code", "expiresAt"}.
  base::Result<std::string> VerificationCode(uint32_t timeout_ms);
  std::string StatsJson();

  // The buffer path used when none is set: "<DefaultDataDir>/ferry/<app>/buffer.db", <app> from the app name (or,
  // when empty, the executable's name) made a safe file name.
  static std::string DefaultStoragePath(const std::string& app_name, const std::string& data_dir);

  // Counts a call refused for bad input and logs why (also used by the C layer for NULL arguments).
  base::Status Invalid(const std::string& why);
  // Why `s` is not a valid id or name for `key` (wire::CheckIdText, at most 200 bytes), "" when it is.
  static std::string IdProblem(std::string_view key, std::string_view s);

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
  // ticket: when given, the event is only queued and *ticket names it for WaitCommitted (a caller recording many
  // events waits for them together: one grouped commit instead of one per event).
  base::Status RecordAs(const CallContext& ctx, std::string_view type, std::string_view name, const char* payload_json,
                        const char* purpose, uint64_t* ticket = nullptr);
  // Waits until the event queued under ticket is committed (SYNC durability; at once otherwise).
  base::Status WaitCommitted(uint64_t ticket);
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
  // Opens the buffer: the key from the options or the platform's key store.
  base::Status OpenBuffer();
  // The PII masker, with the hash key kept in the buffer unless the rules carry one.
  base::Status OpenMasker();
  // Consent defaults and recorded states; ids; session; context.
  base::Status LoadState();

  // Builds, checks and queues one event. kind: wire type; name_key: "event" or "name"; payload_key: "properties" or
  // "traits". Caller holds the consent gate shared. call: per-call fields (RecordAs), nullptr for the client's own.
  base::Status Record(std::string_view type, std::string_view name_key, std::string_view name,
                      std::string_view payload_key, const char* payload_json, const std::string& purpose, Consent state,
                      const CallContext* call = nullptr, uint64_t* ticket = nullptr);
  // RecordBuilt's checks and masking for one event; queues it (ticket for the SYNC wait). Gate held shared.
  base::Status RecordOneBuilt(nlohmann::json* ev, uint64_t* ticket);
  // The consent record event of a change (state_mu_ held): purpose, state, previous state, method ("explicit" for
  // the user's choice, "default" for the app's default), the notice (id, version) and language, the device's
  // sequence number and a new random receipt id (returned in *receipt).
  base::Status ConsentRecordLocked(const std::string& purpose, Consent state, Consent previous, const char* method,
                                   int64_t now, NewEvent* record, std::string* receipt);
  // Records the app's defaults for purposes the user never chose, once when applied and again when one changes (a
  // default that is no longer set falls back to pending, recorded so); and states of a buffer from before receipts
  // were kept, once. Gate held exclusively, state_mu_ held; after the ids and the context are known.
  base::Status RecordDefaultsLocked(std::map<std::string, ConsentRow>* rows);
  // Re-consent on a new notice version (ferry_options_set_notice): every purpose the person granted (explicitly or
  // through a guardian) under another version than the one declared now falls back to pending, recorded with method
  // "notice_change" (previous granted, the new version); with ferry_options_set_notice_changed_purposes only the
  // listed purposes do, and the others carry over to the new version. Nothing happens without a declared version.
  // Gate held exclusively, state_mu_ held; before RecordDefaultsLocked.
  base::Status RecordNoticeChangesLocked(std::map<std::string, ConsentRow>* rows);
  // A consent row made now (the declared notice version).
  ConsentRow MakeRow(Consent state, bool is_explicit, int64_t now, const std::string& receipt,
                     const char* method) const;
  // SetConsent with the record's method (kMethodExplicit, kMethodGuardian).
  base::Status SetConsentAs(std::string_view purpose, Consent state, const char* method);
  // The device's next sequence number (state_mu_ held): one counter for consent records and events, never reused
  // (numbers are reserved in blocks in the buffer's meta table, so a crash skips numbers instead of repeating them).
  base::Status NextSeqLocked(int64_t* seq);
  // A sensitive event while "sensitive" is not granted: dropped and counted like a denied purpose's, never held.
  base::Status SensitiveRefused();
  // An event of a pending purpose the app does not hold (ferry_options_set_hold_pending): dropped, counted in
  // dropped_pending, logged once per purpose.
  base::Status PendingDropped(const std::string& purpose);
  // Whether an event of `purpose` in `state` is dropped rather than held.
  bool DropsPending(const std::string& purpose, Consent state) const {
    return state == Consent::kPending && std::string_view(purpose) != kNecessary && !opts_.hold_pending.count(purpose);
  }
  // Deletes the buffered events of each pending purpose older than its longest hold, and all of them for a pending
  // purpose that is not held (events made under a grant a new notice or a minor's mark sent back to pending, or held
  // by an earlier version or configuration); counted in dropped_pending. Gate held (shared or exclusive): at open,
  // before a grant releases held events, and (SweepHeld, shared) on the uploader thread before each pass.
  void SweepHeldLocked();
  void SweepHeld();
  // The collector's view of a filed request (POST /v1/device/requests/{ref}/status), merged into the receipt's meta
  // (`meta`, updated); the receipt's own JSON while it has no reference.
  base::Result<nlohmann::json> RequestState(const std::string& receipt, int64_t deadline, nlohmann::json* meta);
  // Counts a storage failure of a call.
  base::Status StorageError(const base::Status& s);

  void RefreshContextLocked();  // state_mu_ held (and the gate at least shared)
  std::shared_ptr<const std::string> TouchSessionLocked(int64_t now_ms);  // state_mu_ held; the context to use

  ClientOptions opts_;
  base::Clock* clock_;
  base::Logger log_;
  Stats stats_;
  std::unique_ptr<Buffer> buffer_;
  std::shared_ptr<const pii::PiiMasker> masker_;
  std::unique_ptr<Uploader> uploader_;
  std::unique_ptr<Writer> writer_;  // after uploader_: stopped (destroyed) first
  std::atomic<bool> closed_{false};
  bool consent_lost_ = false;  // set once at open: the buffer's recorded consent was lost (see LoadState)

  ConsentGate consent_;

  std::mutex state_mu_;
  ContextFacts facts_;
  std::string anonymous_id_, user_id_, session_id_;  // guarded by state_mu_
  std::set<std::string> previous_anonymous_ids_;     // guarded by state_mu_
  int64_t last_activity_ms_ = 0;                     // guarded by state_mu_
  int64_t next_seq_ = 1, seq_reserved_ = 0;          // guarded by state_mu_
  std::shared_ptr<const std::string> context_json_;  // guarded by state_mu_
  std::mutex dropped_log_mu_;                        // a leaf lock
  std::set<std::string> dropped_logged_;             // guarded by dropped_log_mu_: purposes whose drop was logged
};

}  // namespace ferry::core

#endif  // FERRY_SDK_CORE_CLIENT_H_
