#include "collector/store/consent_policy.h"

#include <map>

namespace ferry::collector {

namespace {

std::string Installation(const std::string& anonymous_id, const std::string& user_id) {
  return anonymous_id.empty() ? "u:" + user_id : "a:" + anonymous_id;
}

bool Explicit(const ConsentRecord& r) { return r.method == "explicit" || r.method == "guardian"; }

}  // namespace

void PersonConsent::Add(const ConsentRecord& record) {
  records_.push_back(record);
  coverage_.Add(record);
}

bool PersonConsent::DeviceMinor(const StoredEvent& event, int64_t device_seq) const {
  if (event.anonymous_id.empty()) return false;
  // The installation's records carrying `minor`: ordered by the device's sequence when the event and they have one
  // (the SDK's), else by time.
  bool by_seq = false;
  for (const ConsentRecord& r : records_) {
    by_seq = by_seq || (device_seq > 0 && r.minor >= 0 && r.anonymous_id == event.anonymous_id && r.seq > 0);
  }
  const ConsentRecord* last = nullptr;
  for (const ConsentRecord& r : records_) {
    if (r.minor < 0 || r.anonymous_id != event.anonymous_id) continue;
    if (by_seq) {
      if (r.seq > 0 && r.seq < device_seq && (last == nullptr || r.seq > last->seq)) last = &r;
    } else if (r.timestamp_ms <= event.timestamp_ms && (last == nullptr || r.timestamp_ms > last->timestamp_ms ||
                                                        (r.timestamp_ms == last->timestamp_ms && r.seq > last->seq))) {
      last = &r;
    }
  }
  return last != nullptr && last->minor == 1;
}

std::string PersonConsent::Verdict(const ConsentPolicy& policy, const StoredEvent& event, int64_t device_seq,
                                   const std::string& receipt, std::string* covered_by, bool officer_minor) const {
  if (covered_by != nullptr) covered_by->clear();
  if (event.type == "consent") return "";
  const std::string& purpose = event.purpose;
  if (purpose == "necessary") {
    const std::string& name = event.name.empty() ? event.type : event.name;
    return policy.necessary.count(name) ? "" : kRefusedNecessaryUnlisted;
  }
  const std::string own = Installation(event.anonymous_id, event.user_id);
  ConsentProof proof = coverage_.For(purpose, event.anonymous_id, event.user_id, device_seq, receipt);
  // Every other installation's state of the purpose at the event's time: its last record at or before it.
  std::map<std::string, const ConsentRecord*> in_force;
  for (const ConsentRecord& r : records_) {
    if (r.purpose != purpose || r.timestamp_ms > event.timestamp_ms) continue;
    std::string inst = Installation(r.anonymous_id, r.user_id);
    // The event's own installation is judged by its sequence numbers, unless the event carries none (a sender other
    // than the SDK): then by time, like the others.
    if (inst == own && (device_seq > 0 || !receipt.empty())) continue;
    const ConsentRecord*& cur = in_force[inst];
    if (cur == nullptr || r.timestamp_ms > cur->timestamp_ms ||
        (r.timestamp_ms == cur->timestamp_ms && r.seq > cur->seq)) {
      cur = &r;
    }
  }
  const ConsentRecord* other_grant = nullptr;
  for (const auto& entry : in_force) {
    if (entry.second->state == "denied") return kRefusedConsentDenied;
    if (entry.second->state == "granted" && (other_grant == nullptr || Explicit(*entry.second))) {
      other_grant = entry.second;
    }
  }
  if (proof.denied) return kRefusedConsentDenied;
  if (officer_minor || DeviceMinor(event, device_seq)) {
    // A minor: only a guardian's grant admits the event (the minor's own grant is on record but admits nothing).
    const ConsentRecord* guardian =
        proof.status == "covered" && proof.record && proof.record->method == "guardian" ? &*proof.record : nullptr;
    for (const auto& entry : in_force) {
      if (guardian == nullptr && entry.second->state == "granted" && entry.second->method == "guardian") {
        guardian = entry.second;
      }
    }
    if (guardian == nullptr) return kRefusedGuardianMissing;
    if (covered_by != nullptr) *covered_by = guardian->receipt_id;
    return "";
  }
  const ConsentRecord* grant = proof.status == "covered" && proof.record ? &*proof.record : other_grant;
  if (grant == nullptr) return kRefusedConsentMissing;
  if (purpose == "sensitive" && !Explicit(*grant) && !(other_grant != nullptr && Explicit(*other_grant))) {
    return kRefusedSensitiveNotExplicit;
  }
  if (covered_by != nullptr) *covered_by = grant->receipt_id;
  return "";
}

}  // namespace ferry::collector
