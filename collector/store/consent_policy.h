// Consent enforcement at ingest (issue 12): what a project asks of the events it stores, and the decision for one
// event from the consent records of its person. Pure: the ingest path reads the records (every id of the person,
// through identity links a write key could not have forged, identity.h) and the policy from the store, and calls
// ConsentVerdict for each event of a batch.
//
// The rules, for an event of purpose P (the first that applies):
//   - a consent record itself: stored (it is the proof).
//   - P = "necessary": stored only if the event's name (a track's event, a screen's name, else its type) is in the
//     project's necessary list; else refused `necessary_unlisted`.
//   - the person denied P on any of their installations, and that denial was in force at the event's time (the
//     installation's last record of P at or before the event's timestamp is a denial; the event's own installation
//     is judged by its sequence numbers instead, or by time like the others when the event carries neither a
//     deviceSeq nor a receipt): refused `consent_denied`.
//   - the event's own installation covers it (consent_proof.h), or another installation of the person had granted P
//     at the event's time: stored; for P = "sensitive" only if that grant was explicit (method "explicit" or
//     "guardian", never "default"): else refused `sensitive_not_explicit`.
//   - otherwise refused `consent_missing`.
// For a minor (issue 12 item 8, minors.h): an officer marked one of the event's ids, or the event's own installation
// (its anonymousId) said so on its latest consent record carrying `minor` before the event (by the device's sequence,
// else by time). A device's word binds only its own installation: the write key is public, and a record naming
// someone else's userId must not silence that person. After `necessary_unlisted` and `consent_denied`, a minor's event
// is stored only under a guardian's grant of its purpose (method "guardian": the event's own installation covers it
// by such a grant, or one is in force on another installation of the person); else refused `guardian_missing`.
#ifndef FERRY_COLLECTOR_STORE_CONSENT_POLICY_H_
#define FERRY_COLLECTOR_STORE_CONSENT_POLICY_H_

#include <set>
#include <string>
#include <vector>

#include "collector/store/consent_proof.h"
#include "collector/store/minors.h"
#include "collector/store/records.h"

namespace ferry::collector {

inline constexpr const char* kConsentEnforce = "enforce";
inline constexpr const char* kConsentReportOnly = "report-only";

inline constexpr const char* kRefusedConsentMissing = "consent_missing";
inline constexpr const char* kRefusedConsentDenied = "consent_denied";
inline constexpr const char* kRefusedNecessaryUnlisted = "necessary_unlisted";
inline constexpr const char* kRefusedSensitiveNotExplicit = "sensitive_not_explicit";

struct ConsentPolicy {
  std::string mode = kConsentEnforce;  // kConsentEnforce or kConsentReportOnly
  std::set<std::string> necessary;     // event names that may be stored under purpose "necessary"
};

// The consent records of one person (every installation), and the verdict for their events.
class PersonConsent {
 public:
  void Add(const ConsentRecord& record);
  // "" when the event may be stored, else the refusal's reason (kRefused*). *covered_by (when given) gets the
  // receipt id of the consent record that admits the event ("" when none does, or the record has no receipt).
  // `officer_minor`: an officer marked one of the event's ids as a minor.
  std::string Verdict(const ConsentPolicy& policy, const StoredEvent& event, int64_t device_seq,
                      const std::string& receipt, std::string* covered_by = nullptr, bool officer_minor = false) const;
  // Whether the event's own installation (its anonymousId; none: false) said its user is a minor on its latest
  // record carrying `minor` before the event: by the device's sequence when the event has one, else by time.
  bool DeviceMinor(const StoredEvent& event, int64_t device_seq) const;

 private:
  std::vector<ConsentRecord> records_;
  ConsentCoverage coverage_;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_CONSENT_POLICY_H_
