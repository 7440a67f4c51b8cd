// The consent gate: the consent state of every purpose, and the lock that orders event calls against consent
// changes.
//
// Event calls (Track, Screen, Identify, RecordAs, RecordBuilt) hold the gate shared from the consent check until their
// event is queued; consent changes, Reset and Forget hold it exclusively. So a consent change finds every event
// accepted before it in the writer queue (it drains the queue before it purges the buffer) and no event is accepted
// under the old state after it. The lock prefers writers (base::SharedMutex): a steady stream of events does not
// starve a consent change. The gate is the first lock in the client's lock order (client.h).
#ifndef FERRY_SDK_CORE_CONSENT_H_
#define FERRY_SDK_CORE_CONSENT_H_

#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>

#include "lib/base/rwlock.h"
#include "sdk/core/options.h"

namespace ferry::core {

// "pending" | "granted" | "denied".
const char* ConsentName(Consent c);
// The state a name stands for (ConsentName's inverse); false for any other text.
bool ConsentFromName(std::string_view name, Consent* out);

// "necessary": the built-in purpose, always granted.
inline constexpr const char* kNecessary = "necessary";
// Special categories (health, biometrics, ...): needs its own explicit grant, and its events are never held while it
// is not granted (refused like a denied purpose's; PIPL art. 29, GDPR art. 9: consent before processing).
inline constexpr const char* kSensitive = "sensitive";

// Consent record methods: the user's choice, the app's default, a guardian's choice for a minor, a grant sent back to
// pending by a new notice version, and a minor's mark (or a grant sent back to pending by it).
inline constexpr const char* kMethodExplicit = "explicit";
inline constexpr const char* kMethodDefault = "default";
inline constexpr const char* kMethodGuardian = "guardian";
inline constexpr const char* kMethodNoticeChange = "notice_change";
inline constexpr const char* kMethodMinor = "minor";

// Events of a purpose in this state may be sent: granted, or the built-in "necessary".
inline bool IsSendable(std::string_view purpose, Consent state) {
  return state == Consent::kGranted || purpose == kNecessary;
}

class ConsentGate {
 public:
  using SharedHold = std::shared_lock<base::SharedMutex>;
  using ExclusiveHold = std::unique_lock<base::SharedMutex>;

  // Event calls hold the gate shared; consent changes, Reset and Forget exclusively.
  SharedHold Shared() const { return SharedHold(mu_); }
  ExclusiveHold Exclusive() { return ExclusiveHold(mu_); }

  // ---- With a hold (shared or exclusive) ----
  // The purpose's state as it admits events: the recorded state, except that while the user is marked as a minor a
  // grant that is not a guardian's admits nothing (pending). The fallback (kPending, or kDenied once consent was
  // lost) for a purpose never set.
  Consent StateLocked(const std::string& purpose) const;
  // The state as recorded (what the last consent record of the purpose says).
  Consent RecordedLocked(const std::string& purpose) const;
  // Every purpose with a recorded or default state ("necessary" included), as StateLocked sees them.
  std::map<std::string, Consent> StatesLocked() const;
  bool MinorLocked() const { return minor_; }

  // ---- With the exclusive hold ----
  // Sets the state of one purpose; Load replaces them all ("necessary" stays granted).
  void SetLocked(const std::string& purpose, Consent state) { states_[purpose] = state; }
  // The method of the record that set the purpose's current state (kMethod*).
  void SetMethodLocked(const std::string& purpose, std::string method) { methods_[purpose] = std::move(method); }
  const std::string& MethodLocked(const std::string& purpose) const;
  // Marks the user as a minor (or not): then only a guardian's grant admits events of a purpose.
  void SetMinorLocked(bool minor) { minor_ = minor; }
  void LoadLocked(std::map<std::string, Consent> states);
  // The state of a purpose never set: kPending, or kDenied after the recorded consent was lost (a reset buffer).
  void SetFallbackLocked(Consent fallback) { fallback_ = fallback; }
  // The receipt id of the consent record that set the purpose's current state ("" when none was recorded).
  void SetReceiptLocked(const std::string& purpose, std::string receipt) { receipts_[purpose] = std::move(receipt); }
  const std::string& ReceiptLocked(const std::string& purpose) const;

  // ---- These take the gate shared themselves ----
  Consent State(const std::string& purpose) const;
  std::map<std::string, Consent> States() const;
  // The purposes whose events may be sent: the granted ones and "necessary".
  std::set<std::string> SendablePurposes() const;
  // The receipt ids of the granted purposes' current consent records (the grants that admit their events).
  std::map<std::string, std::string> GrantReceipts() const;
  // The same with a hold (the uploader reads a batch under one, so that no consent change falls between choosing the
  // purposes and reading their events).
  std::set<std::string> SendablePurposesLocked() const;
  std::map<std::string, std::string> GrantReceiptsLocked() const;

 private:
  mutable base::SharedMutex mu_;
  std::map<std::string, Consent> states_;        // guarded by mu_
  Consent fallback_ = Consent::kPending;         // guarded by mu_
  std::map<std::string, std::string> receipts_;  // guarded by mu_
  std::map<std::string, std::string> methods_;   // guarded by mu_
  bool minor_ = false;                           // guarded by mu_
};

}  // namespace ferry::core

#endif  // FERRY_SDK_CORE_CONSENT_H_
