// A person who returns after an erasure (issue 19). The suppression list keeps what was collected before an erasure
// from coming back (an app's buffer, a retry, a device that was offline): a suppressed id's events are dropped. A
// person who comes back and makes a new choice is a new start, not a ghost to be silenced for ever. So an event of a
// suppressed id is stored all the same when:
//   - it is that new choice: a consent record made by the person (method "explicit" or "guardian", never a
//     developer's "default"), tracked after the suppression (the skew-corrected time the collector stores);
//   - or it was tracked after such a choice on the same installation: tracked after the suppression, and either its
//     deviceSeq is above the choice's seq (the device's counter orders them: events buffered before the erasure are
//     below it), or, for a sender that numbers nothing, it names the choice's receipt (consentReceipt).
// What was collected before the erasure stays suppressed: its deviceSeq is below any new choice's and its receipt
// is one the erasure deleted. The write key is public, so a forged "choice" can only ever admit events that name the
// installation it was sent from (its anonymousId): it cannot bring back another installation's buffered events.
// Engine-neutral; each engine feeds it the suppression time of an event's ids and the choices it holds.
#ifndef FERRY_COLLECTOR_STORE_READMISSION_H_
#define FERRY_COLLECTOR_STORE_READMISSION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "collector/store/records.h"
#include "lib/base/status.h"

namespace ferry::collector {

// A choice the person made (a consent record of method "explicit" or "guardian") as held in the consent ledger: its
// time (skew-corrected), device sequence number (0: none) and receipt ("": none).
struct NewChoice {
  int64_t timestamp_ms = 0;
  int64_t device_seq = 0;
  std::string receipt;
};

// Whether a consent record is a choice the person made (not a default), tracked after `since_ms`.
bool IsNewChoice(const StoredEvent& e, int64_t since_ms);

// One batch's decisions (one per engine transaction).
class Readmission {
 public:
  // The choices the store holds for an installation: the project's records of `anonymous_id` made by the person.
  using StoredChoices =
      std::function<base::Result<std::vector<NewChoice>>(int64_t project_id, const std::string& anonymous_id)>;
  explicit Readmission(StoredChoices stored) : stored_(std::move(stored)) {}

  // Whether `e`, one of whose ids the suppression list holds since `since_ms` (the latest suppression of its ids),
  // is stored all the same. Call in batch order: a choice admitted here counts for the batch's later events.
  base::Result<bool> Admit(int64_t project_id, const StoredEvent& e, int64_t since_ms);

 private:
  StoredChoices stored_;
  // (project, anonymousId) -> the choices known: read from the store once, then those of this batch added.
  std::map<std::pair<int64_t, std::string>, std::vector<NewChoice>> known_;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_READMISSION_H_
