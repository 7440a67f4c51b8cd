// The admin calls and the roles that allow each one: the collector's role checks, written once. The HTTP front and
// ferryctl name an Action; the rights service (rights_service.h) checks the caller's token against this table and
// records the outcome in the audit log.
#ifndef FERRY_COLLECTOR_RIGHTS_AUTHORIZE_H_
#define FERRY_COLLECTOR_RIGHTS_AUTHORIZE_H_

#include <string>
#include <string_view>
#include <vector>

namespace ferry::collector::rights {

enum class Action {
  kSubjectShow,          // GET /v1/subjects/{id}
  kSubjectExport,        // GET /v1/subjects/{id}/export
  kSubjectErase,         // POST /v1/subjects/{id}/erase
  kSubjectCorrect,       // PATCH /v1/subjects/{id}/traits
  kRequestsList,         // GET /v1/requests
  kRequestsAdd,          // POST /v1/requests
  kRequestsApprove,      // POST /v1/requests/{rid}/approve
  kRequestsReject,       // POST /v1/requests/{rid}/reject
  kAuditList,            // GET /v1/audit
  kAuditVerify,          // GET /v1/audit/verify
  kKeysCreateWriteKey,   // POST /v1/keys/write-keys
  kInsightRead,          // GET /v1/insight/{profile,retention,funnel,rfm,lifecycle,tags,churn} (docs/INSIGHT.md)
  kInsightAudience,      // POST /v1/insight/audiences: an audience exported for outreach
  kKeysCreateServerKey,  // POST /v1/keys/server-keys
  kLinksConfirm,         // POST /v1/links/{linkId}/confirm
  kKeysList,             // GET /v1/keys
  kKeysRevoke,           // POST /v1/keys/{write-keys|admin-tokens}/{id}/revoke
  kKeysExpire,           // POST /v1/keys/{write-keys|admin-tokens}/{id}/expiry
  kSubjectEvents,        // GET /v1/subjects/{id}/events: a page of the subject's events (the console)
  kWhoAmI,               // GET /v1/whoami: the caller's own token (any role)
  kRegistryRead,         // GET /v1/projects/{project}/registry[/records|/impact]: the processing registry
  kRegistryEdit,         // PUT /v1/projects/{project}/registry
  kSubjectEventConsent,  // GET /v1/subjects/{id}/events/{messageId}/consent: which consent record covered an event
  kRequestsComplete,     // POST /v1/requests/{rid}/complete: carried out by hand
  kRequestsDeliver,      // GET /v1/requests/{rid}/copy: an access or portability request's copy, delivered
  kRequestsStats,        // GET /v1/requests/stats
  kRequestsLift,         // POST /v1/requests/{rid}/lift: a restriction or objection lifted
  kRestrictionMode,      // GET|PUT /v1/projects/{project}/restriction-mode: quarantine or refuse
  kOutboxRead,           // GET /v1/outbox, /v1/outbox/public-key, /v1/requests/{id}/deliveries
  kOutboxAck,            // POST /v1/outbox/ack
  kRequestsExtend,       // POST /v1/requests/{rid}/extend
  kRequestsDue,          // GET /v1/requests/due?within=7d
  kRequestsPolicy,       // POST /v1/requests/policy: a project's due-date policy
  kRequestsIdentify,     // POST /v1/requests/{rid}/identify: a public request bound to a subject by an officer
  kConsentStats,         // GET /v1/projects/{project}/consent/stats: opt-in and opt-out rates (issue 12)
  kSubjectMinor,         // POST|DELETE /v1/subjects/{id}/minor: an officer marks a subject as a minor, or lifts it
};

// The action's name in the audit log ("subject.show", ...).
const char* ActionName(Action action);

// The roles that allow the action, in the order they are tried: the first one a token holds is the role recorded.
const std::vector<const char*>& RolesFor(Action action);

// "compliance or analyst": the roles an action needs, for people.
std::string RolesNeeded(Action action);

// The first role of RolesFor(action) among `roles`, "" when none allows it.
std::string AllowingRole(const std::vector<std::string>& roles, Action action);

// Whether `roles` holds `role`.
bool HoldsRole(const std::vector<std::string>& roles, std::string_view role);

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_AUTHORIZE_H_
