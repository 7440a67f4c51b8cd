// What requests filed by a device (device_requests.cc) and by a person on the public page (public_requests.cc) share:
// how their secrets (a device's claim, a person's status secret, a link token) are kept and compared, the request's
// result document, and the device's own subject. Internal to the rights library.
#ifndef FERRY_COLLECTOR_RIGHTS_REQUEST_SECRETS_H_
#define FERRY_COLLECTOR_RIGHTS_REQUEST_SECRETS_H_

#include <sodium.h>

#include <string>
#include <vector>

#include "collector/rights/documents.h"
#include "collector/store/store_txn.h"
#include "lib/base/digest.h"

namespace ferry::collector::rights {

// The hash a claim, a status secret or a link token is kept as.
inline std::string SecretHash(const std::string& secret) { return base::Blake2b256Hex(secret); }

// Two hashes compared in constant time; an empty one matches nothing.
inline bool SameHash(const std::string& a, const std::string& b) {
  return a.size() == b.size() && !a.empty() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The request's result as a JSON object (empty when it holds none).
inline Json ResultOf(const RightsRequest& r) {
  Json doc = r.result.empty() ? Json::object() : Json::parse(r.result, nullptr, false);
  return doc.is_object() ? doc : Json::object();
}

// The device's own subject among `ids` (the rule of Forget): the first one seen as an anonymousId on the project's
// events and never held as a userId; "" when none is. *proven (when given): how many of them are.
inline base::Result<std::string> DeviceSubject(StoreTxn& tx, int64_t project_id, const std::vector<std::string>& ids,
                                               int64_t* proven = nullptr) {
  std::string subject;
  for (const std::string& id : ids) {
    auto is_user = tx.primitives().HeldAsUserId(project_id, id, /*consent_too=*/false);
    if (!is_user.ok()) return is_user.status();
    if (*is_user) continue;
    auto seen = tx.primitives().HeldAsAnonymousId(project_id, id, /*events_only=*/true);
    if (!seen.ok()) return seen.status();
    if (!*seen) continue;
    if (proven != nullptr) ++*proven;
    if (subject.empty()) subject = id;
    if (proven == nullptr) break;
  }
  return subject;
}

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_REQUEST_SECRETS_H_
