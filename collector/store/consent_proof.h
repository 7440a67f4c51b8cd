// Which consent record covered a stored event (issue 12, per-event proof). Timestamps cannot order an event and the
// consent records around it (the collector shifts each batch by its own clock skew; milliseconds tie), so the proof
// goes by the device's own sequence number (`deviceSeq` on every event, `seq` on every consent record: one counter per
// installation, never reused) and by the receipt the event names (`consentReceipt`). The rules, in this order:
//   - purpose "necessary" (consent records themselves included): needs no consent; status "necessary".
//   - the event names a receipt: that record covers it if it is held, is of the event's purpose, is a grant, and no
//     denial of the purpose on the same installation lies between the two in the device's sequence (an event made
//     while its purpose was pending names the later grant that released it), nor, for an event made after the grant, a
//     return of the purpose to pending (method "notice_change" on a new notice version, a minor's mark); basis
//     "receipt".
//   - no receipt but a deviceSeq: the installation's last record of the purpose before the event must be a grant; an
//     event made while the purpose was pending is covered by the first later record if that is a grant; basis
//     "sequence".
//   - otherwise "uncovered", with the reason.
// The records of an installation are those with the event's anonymousId (the userId's, for an event without one).
#ifndef FERRY_COLLECTOR_STORE_CONSENT_PROOF_H_
#define FERRY_COLLECTOR_STORE_CONSENT_PROOF_H_

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "collector/store/records.h"

namespace ferry::collector {

struct ConsentProof {
  std::string status;                   // "covered", "necessary" or "uncovered"
  std::string basis;                    // "receipt" or "sequence" when covered; "" otherwise
  std::string reason;                   // why it is uncovered ("" otherwise)
  bool denied = false;                  // uncovered because the purpose was denied on the installation
  int64_t device_seq = 0;               // the event's deviceSeq (0: none)
  std::string receipt;                  // the event's consentReceipt ("" when none)
  std::optional<ConsentRecord> record;  // the covering record (or, when uncovered, the one found and refused)
};

// Holds one project's consent records of a subject (few: one per consent change) and answers for its events.
class ConsentCoverage {
 public:
  void Clear();
  void Add(const ConsentRecord& record);
  // The proof for a stored event (its deviceSeq and consentReceipt read from the stored body).
  ConsentProof For(const EventRow& event) const;
  ConsentProof For(const std::string& purpose, const std::string& anonymous_id, const std::string& user_id,
                   int64_t device_seq, const std::string& receipt) const;

 private:
  // The records of one installation and purpose, in the device's order (records without a seq left out).
  std::vector<const ConsentRecord*> Line(const std::string& device_key, const std::string& purpose) const;
  std::vector<ConsentRecord> records_;
  std::unordered_map<std::string, size_t> by_receipt_;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_CONSENT_PROOF_H_
