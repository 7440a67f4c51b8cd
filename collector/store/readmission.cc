#include "collector/store/readmission.h"

namespace ferry::collector {

bool IsNewChoice(const StoredEvent& e, int64_t since_ms) {
  return e.type == "consent" && (e.consent_method == "explicit" || e.consent_method == "guardian") &&
         e.timestamp_ms > since_ms;
}

base::Result<bool> Readmission::Admit(int64_t project_id, const StoredEvent& e, int64_t since_ms) {
  // Only an installation can start anew: without an anonymousId nothing ties the event to a choice.
  if (e.anonymous_id.empty() || e.timestamp_ms <= since_ms) return false;
  auto key = std::make_pair(project_id, e.anonymous_id);
  auto it = known_.find(key);
  if (it == known_.end()) {
    auto held = stored_(project_id, e.anonymous_id);
    if (!held.ok()) return held.status();
    it = known_.emplace(key, std::move(held).value()).first;
  }
  if (IsNewChoice(e, since_ms)) {
    it->second.push_back({e.timestamp_ms, e.consent_seq, e.receipt_id});
    return true;
  }
  for (const NewChoice& c : it->second) {
    if (c.timestamp_ms <= since_ms) continue;  // made before the suppression: erased with what it covered
    if (e.device_seq > 0 ? (c.device_seq > 0 && e.device_seq > c.device_seq)
                         : (!e.consent_receipt.empty() && e.consent_receipt == c.receipt)) {
      return true;
    }
  }
  return false;
}

}  // namespace ferry::collector
