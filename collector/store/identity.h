// The identity graph's rules of trust, written once for every engine: which links an event asserts and in which
// state they are stored (ingest), and which stored links the identity-graph walk follows (identity.cc).
//
// The write key is public (it ships inside every app), so a write key's word may link only the id an event comes
// from: an event carrying an anonymousId and a userId links that anonymousId to that userId. A link between two
// userIds (an alias whose previousId is, or later becomes, a userId) can be forged into someone else's data; it is
// followed only when a server key (the app's backend) or the store's own callers asserted it, or an officer
// confirmed it. Anything else is stored "pending", shown with its provenance in the subject view, and never followed
// by export, erasure, correction or any other rights operation.
#ifndef FERRY_COLLECTOR_STORE_IDENTITY_H_
#define FERRY_COLLECTOR_STORE_IDENTITY_H_

#include <string>
#include <string_view>
#include <vector>

#include "collector/store/records.h"

namespace ferry::collector {

inline constexpr const char* kLinkActive = "active";
inline constexpr const char* kLinkPending = "pending";

// Whether a credential may merge userIds (a server key, the store's own callers).
bool TrustedCredential(std::string_view credential);

// One link an event asserts: from `from` (of `kind`) to the event's userId, stored in `state`.
struct LinkAssertion {
  const char* kind;  // "anonymousId" or "previousId"
  std::string from;
  const char* state;
};

// The links an accepted event asserts when it came with `credential`: identify and alias with a userId link their
// own anonymousId (active); an alias links its previousId, active when the credential is trusted or the previousId
// is the event's own anonymousId, else pending.
std::vector<LinkAssertion> LinksAsserted(const StoredEvent& e, std::string_view credential);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_IDENTITY_H_
