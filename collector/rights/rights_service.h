// The rights service: the collector's data-subject workflow with no HTTP in it. The admin API (collector/http/admin.cc)
// and ferryctl's offline commands (collector/ferryctl/offline.cc) both call it.
//
// Every call follows one shape: authorise (role checks, authorize.h) -> register the request -> act -> finish the
// request -> audit. An action that changes the store (an erasure, a correction, an approval, a device's forget, a new
// key or token, an access request's registration) commits together with its register row and its audit entry, in one
// store transaction, or does not happen at all; a read (show, list) is answered only once its audit entry is written.
// Refused calls (no token, unknown token, missing role, unknown subject or request, a request in the wrong state) are
// audited too.
//
// The request register's states (records.h, docs/COMPLIANCE.md "The request register"): received ->
// awaiting_verification -> in_progress [-> extended] -> completed, or rejected from any open state. The allowed
// moves are RequestTransitionAllowed's; every other one is refused (FailedPrecondition) and audited. An officer's
// approval records the verification evidence (method, reference, who, when) and starts the work: an erasure is
// carried out at once (completed), an access or portability request completes only when its copy was downloaded in
// full (GET /v1/requests/{id}/copy), any other kind when the officer says it was carried out (Complete). Calls that
// act at once (erase, correct, a device's forget) register their request "completed" in the transaction that
// carries them out. An officer's export of a subject is a lookup: audited, never registered as a request. An erasure
// that fails leaves nothing erased and its request "awaiting_verification" (with the error), so an officer can
// approve it again.
//
// Errors come back as base::Status codes with a message for people (the admin API maps the code to an HTTP status
// once, through lib/wire/http_status.h): Unauthenticated, PermissionDenied, NotFound, InvalidArgument,
// FailedPrecondition (a request that is not awaiting verification), Conflict (changed meanwhile), and the store's own
// codes (Unavailable, Timeout, Storage, ...) for a store that failed. Thread-safe.
#ifndef FERRY_COLLECTOR_RIGHTS_RIGHTS_SERVICE_H_
#define FERRY_COLLECTOR_RIGHTS_RIGHTS_SERVICE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collector/rights/authorize.h"
#include "collector/rights/consent_stats.h"
#include "collector/rights/documents.h"
#include "collector/rights/minors.h"
#include "collector/rights/outbox.h"
#include "collector/rights/refusals.h"
#include "collector/store/consent_proof.h"
#include "collector/store/interfaces.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/status.h"

namespace ferry::collector::rights {

// Who acts.
struct Actor {
  std::string audit_name;  // the audit log's actor: "NAME (PREFIX)" of an admin token, "device:PROJECT", ...
  std::string role;        // the role that allowed the call ("" for a device or ferryctl offline)
  std::string name;        // who acted, as the request register shows it: the token's name, "device", ...
  // ferryctl working offline on the store (bootstrap: the first admin token).
  static Actor Offline() { return Actor{"ferryctl-offline", "", "ferryctl-offline"}; }
};

// The storage the service works on: narrow interfaces, usually all one Store (StoresOf).
struct RightsStores {
  Credentials* credentials = nullptr;
  IdentityGraph* subjects = nullptr;
  RequestRegister* requests = nullptr;
  AuditLog* audit = nullptr;
  RightsTransactions* transactions = nullptr;
  Restrictions* restrictions = nullptr;
};
template <typename S>
RightsStores StoresOf(S* store) {
  return RightsStores{store, store, store, store, store, store};
}

// Told of every committed erasure: the project and every id of the subject that was erased (userId, anonymousIds,
// previousIds), so derived data kept elsewhere (the operations insight, docs/INSIGHT.md) is erased with it. Called
// after the store committed, on the erasing thread; a failure is the listener's to log.
using ErasureListener = std::function<void(const std::string& project, const std::vector<std::string>& ids)>;

// Told of every restriction or objection put in force (restricted = true) or lifted (false): the project, every id
// of the subject there, the purposes it covers (empty: all) and its kind ("restriction" or "objection"), so derived
// data kept elsewhere (the operations insight: Insight::Restrict / Lift) follows it. Called after the store
// committed; a failure is the listener's to log.
using RestrictionListener =
    std::function<void(const std::string& project, const std::vector<std::string>& ids,
                       const std::vector<std::string>& purposes, const std::string& kind, bool restricted)>;

struct RightsOptions {
  int64_t request_due_ms = 15LL * 24 * 3600 * 1000;  // due date of a new request: received + this (default 15 days)
  ErasureListener on_erased;                         // none when empty
  RestrictionListener on_restricted;                 // none when empty
  RefusalOptions refusals;                           // how refused calls from a named source are audited in aggregate
  // The downstream outbox (outbox.h): every erasure and rectification is put on it in its own transaction. None when
  // null.
  const Outbox* outbox = nullptr;
  // Events an erasure deletes per transaction ahead of its last one (where writers queue); 0: about 30 ms of work each.
  int64_t erase_chunk_rows = 0;
};

// Whether `kind` is one of RequestKinds() as written (a device's filing, FileDeviceRequest, takes these and no others).
bool IsRequestKind(const std::string& kind);
// The due date of a request received at `received_ms` under a due-date policy: "gdpr" (one calendar month later, the
// same day of the month or the month's last day), "pipl" (15 working days, Monday to Friday, later; public holidays
// are not known), "days:N" (N calendar days, 1-365). nullopt for any other policy.
std::optional<int64_t> DueUnderPolicy(const std::string& policy, int64_t received_ms);

// Whether the register may move a request from state `from` to state `to` (the documented lifecycle above).
bool RequestTransitionAllowed(const std::string& from, const std::string& to);

// Evidence of the person's identity, recorded with an approval: how it was checked ("id-document", "account-login",
// ...; "" when the officer stated none) and a reference to the evidence kept elsewhere (a ticket, a file number).
struct Verification {
  std::string method;
  std::string reference;
};

// The register in figures (GET /v1/requests/stats): counts by kind and by state, and lateness: open requests past
// their due date and on time, closed ones (completed or rejected) acted on after their due date and on time.
struct RequestStats {
  int64_t total = 0;
  std::map<std::string, int64_t> by_kind, by_state;
  int64_t open_overdue = 0, open_on_time = 0, closed_late = 0, closed_on_time = 0;
};

// The request kinds, in one place: access, erasure, correction, portability, restriction, objection (appended at the
// end). "rectification" (the issue's and GDPR art. 16's word) is accepted for correction and stored as
// "correction", the canonical name. docs/COMPLIANCE.md "Request kinds" says what each does.
const std::vector<std::string>& RequestKinds();
// The canonical kind of `kind` ("rectification" -> "correction"); "" for an unknown kind.
std::string CanonicalKind(const std::string& kind);
// Whether a kind is about some purposes (restriction, objection): it carries a purpose list (empty: all purposes).
bool KindHasPurposes(const std::string& kind);

// A request received by mail or phone (POST /v1/requests).
struct NewRequest {
  std::string kind;         // RequestKinds() or "rectification"
  std::string subject;      // the id as named
  std::string project;      // "" = every project
  int64_t received_ms = 0;  // 0 = now
  std::string state;        // "" = awaiting_verification; or received (not yet triaged)
};

// How an erasure runs: `dry_run` computes what would be erased (the counts) in a transaction that is rolled back, so
// nothing changes, nothing is suppressed or registered; without `force` an unknown subject is refused (NotFound) and
// nothing is suppressed or registered, so a mistyped id is not put on the suppression list for ever.
struct EraseOptions {
  bool dry_run = false;
  bool force = false;
  // One of many erasures in a row (a bulk erasure): what the store scrubs after an erasure (PostgreSQL's VACUUM,
  // SQLite's WAL checkpoint) is left to one RightsService::ScrubAfterErasures() after the last one.
  bool many = false;
};

// A correction's outcome: the register's request and the subjects with their new traits.
struct Correction {
  std::string request_id;
  std::vector<SubjectSummary> subjects;
  int64_t events_rewritten = 0;  // stored identify events whose traits were rewritten
};

// The credentials of a store, as ListCredentials shows them.
enum class CredentialKind { kWriteKey, kAdminToken };
struct CredentialList {
  std::vector<WriteKeyRecord> write_keys;
  std::vector<AdminTokenInfo> admin_tokens;
};

// A device's forget: the receipt of its anonymousIds' erasure and, when it named its userId, the request opened to
// verify that erasure ("" otherwise).
struct ForgetOutcome {
  EraseReceipt receipt;
  std::string user_request_id;
};

// A request filed by a device (POST /v1/device/requests, docs/PROTOCOL.md): of a kind the register accepts, for the
// device's own ids, with the hash of a secret only the device holds (its claim: 32 random bytes as 64 hex digits),
// which every later call about the request must show.
struct DeviceFiling {
  std::string kind;
  std::vector<std::string> anonymous_ids;
  std::string claim;
};
struct DeviceFiled {
  RightsRequest request;
  bool folded = false;  // an open request of the device for the same id and kind answered it
};
// A one-time link to a request's copy: the token is given out once and kept only as its hash.
struct CopyLink {
  std::string token;
  int64_t expires_ms = 0;
};

// Public intake (POST /v1/public/requests, docs/PROTOCOL.md "Public intake"): a request filed by a person through the
// self-service page, with no credential at all. It names a project, a kind, how to reach the person and the
// identifier the person gives; the identifier is kept for the officer and never acted on. The request has no subject
// until the person's identity is verified: by a code the app showed (VerifyPublicRequest), which binds the request to
// the subject the app's device demonstrably uses, or by an officer with evidence (IdentifyPublicRequest).
struct PublicFiling {
  std::string kind;
  std::string project;
  std::string contact;     // how the officer may reach the person (an e-mail address, a phone number), 1-200 bytes
  std::string identifier;  // the person's own word for who they are in the app (never acted on), 0-200 bytes
  std::string lang;        // "en" or "zh-CN": the language the person filed in
};
// The register's entry and the status secret, given out once (only its hash is kept).
struct PublicFiled {
  RightsRequest request;
  std::string secret;
};
// A code an app shows its user: 8 digits, valid until expires_ms, usable once.
struct VerificationCode {
  std::string code;
  int64_t expires_ms = 0;
};
// Wrong codes a public request takes before the code step is closed for it (the officer may still verify by hand).
inline constexpr int kPublicCodeAttempts = 5;

class RightsService {
 public:
  RightsService(RightsStores stores, base::Clock* clock, RightsOptions options, base::Logger log);
  // Writes the refusals still counted (FlushRefusals(true)); the stores must still be there.
  ~RightsService();
  RightsService(const RightsService&) = delete;
  RightsService& operator=(const RightsService&) = delete;

  // The service's time (due dates, audit times, export stamps).
  int64_t NowMs() const { return clock_->NowMs(); }

  // ---- Who calls ----
  // The caller of an admin call by its bearer token ("" when absent): Unauthenticated for none, an unknown or a
  // revoked token (audited as "unauthenticated"), PermissionDenied without a role for `action` (audited as
  // "denied"). `subject`: the id the call names ("" when none; the log keeps its hash).
  // With a `source` (the caller's network address, the admin API), a refusal is not audited on its own: it is
  // counted for its source (refusals.h) and written as one "admin.refused" entry per source and interval (at the
  // first call after the interval ended, before the audit log is read, and at the end).
  base::Result<Actor> Authorize(const std::string& token, Action action, const std::string& subject,
                                const std::string& source = std::string());
  // Writes the counted refusals whose interval ended (all of them when `all`) as audit entries.
  void FlushRefusals(bool all);
  // Whether `token` is a valid admin token holding `role` (GET /metrics away from loopback). Not audited.
  bool HasRole(const std::string& token, const std::string& role);
  // The caller's own admin token (GET /v1/whoami: its name, prefix and roles), once Authorize(kWhoAmI) let the call
  // in (so a refusal is counted, slowed and audited like any other). Not audited itself: it tells the caller only
  // what its own token is, and the console asks it on every load.
  base::Result<AdminTokenInfo> WhoAmI(const std::string& token);
  // The project of a device's write key: Unauthenticated for none or an unknown one.
  base::Result<WriteKeyInfo> AuthorizeDevice(const std::string& write_key);

  // ---- Subjects ----
  // The subject in each project it is found in; NotFound when unknown everywhere.
  base::Result<std::vector<SubjectSummary>> Show(const Actor& actor, const SubjectQuery& q);
  // An officer's lookup of everything held about the subject, which Export then streams: audited (subject.export,
  // {"lookup": true}), never registered as a request. NotFound when the subject is unknown.
  base::Status BeginLookup(const Actor& actor, const SubjectQuery& q);
  // Streams the subject (IdentityGraph::ExportSubject).
  base::Result<bool> Export(const SubjectQuery& q, ExportVisitor& visitor);
  // A page of the subject's events, in the export's order (project by project, then as stored): `offset` events
  // skipped, at most `limit` given, `more` when others follow. It reads through the export's stream, so a page costs
  // offset + limit rows. Audited (subject.events, with offset and count). NotFound when the subject is unknown.
  struct EventPage {
    std::vector<EventRow> events;
    bool more = false;
  };
  base::Result<EventPage> ListEvents(const Actor& actor, const SubjectQuery& q, int64_t offset, size_t limit);
  // Which consent record covered the subject's stored event `message_id` (consent_proof.h), read through the export's
  // stream; NotFound for an unknown subject or an event not among the subject's. Audited as subject.event-consent.
  struct EventConsent {
    EventRow event;
    ConsentProof proof;
  };
  base::Result<EventConsent> EventConsentOf(const Actor& actor, const SubjectQuery& q, const std::string& message_id);
  // Erases the subject (IdentityGraph::EraseSubject) with a completed erasure request (see EraseOptions; a dry run's
  // receipt has no request id and is audited as "dry_run").
  base::Result<EraseReceipt> Erase(const Actor& actor, const SubjectQuery& q,
                                   const EraseOptions& options = EraseOptions());
  // Scrubs once what erasures made with EraseOptions::many left behind (TxnMode::kEraseMany).
  base::Status ScrubAfterErasures();
  // Finishes every erasure request left in_progress by a collector that stopped part way (a crash, a kill, a power
  // cut: an erasure deletes a subject's events in chunks before its last transaction), among those acted on before
  // `started_before_ms` (the requests this process began are its own threads' to finish). Run once at start.
  base::Status ResumeErasures(int64_t started_before_ms);
  // Merges traits (IdentityGraph::PatchTraits) with a completed correction request; NotFound when unknown,
  // InvalidArgument for a patch that is not a JSON object of traits.
  base::Result<Correction> Correct(const Actor& actor, const SubjectQuery& q, const std::string& patch_json);
  // A device's self-service erasure (POST /v1/forget) of its own anonymousIds; a userId it names opens an
  // awaiting_verification erasure request instead.
  // Only ids seen as anonymousIds on the project's events are acted on, and never a row under a userId
  // (IdentityGraph::ForgetDeviceIds); repeated forgets of one id fold into one register entry (and one open request
  // for its userId).
  base::Result<ForgetOutcome> Forget(const WriteKeyInfo& project, const std::vector<std::string>& anonymous_ids,
                                     const std::string& user_id);
  // Which of `ids` the project's suppression list holds, and since when (0: not held), for the app's backend: a
  // server key only (PermissionDenied for a write key, which ships in apps and so would tell anyone who was erased).
  // A suppressed id's events are dropped until the person makes a new choice (readmission.h). Not audited: it reads
  // no personal data and changes nothing.
  struct Suppression {
    std::string id;
    int64_t since_ms = 0;
  };
  base::Result<std::vector<Suppression>> SuppressionOf(const WriteKeyInfo& project,
                                                       const std::vector<std::string>& ids);
  // A request filed by a device, for its own subject only: the subject is the first of its ids that it demonstrably
  // used (seen as an anonymousId on the project's events and never held as a userId, the rule of Forget);
  // FailedPrecondition when none is, InvalidArgument for a kind the register does not accept. Registered
  // awaiting_verification, source "device"; a second filing of the same kind for the same id while the first is open
  // folds into it (its claim added). Audited (device.request).
  base::Result<DeviceFiled> FileDeviceRequest(const WriteKeyInfo& project, const DeviceFiling& filing);
  // The request as its device sees it: NotFound unless the request is the project's, filed by a device and the claim
  // is one of its own (no difference is told between these). Not audited (a device polls).
  base::Result<RightsRequest> DeviceRequest(const WriteKeyInfo& project, const std::string& request_id,
                                            const std::string& claim);
  // A one-time link to the copy of the device's approved access or portability request (in_progress or extended):
  // a random token valid for `ttl_ms`, replacing any link issued before. NotFound as DeviceRequest;
  // FailedPrecondition when there is no copy to deliver yet. Audited (device.copy-link).
  base::Result<CopyLink> IssueCopyLink(const WriteKeyInfo& project, const std::string& request_id,
                                       const std::string& claim, int64_t ttl_ms);
  // Spends a link: NotFound when the token is not the request's live link (unknown, used or expired), the request
  // no longer has a copy to deliver, or the subject was erased. The link is marked used and the delivery's start
  // audited (requests.deliver, "started") in one transaction that holds the audit chain's lock, so two concurrent
  // redemptions cannot both succeed. The copy, once written out in full, is recorded with Delivered(DeviceActor()).
  base::Result<RightsRequest> RedeemCopyLink(const std::string& request_id, const std::string& token);
  // The actor of a device's calls on a project.
  static Actor DeviceActor(const std::string& project) { return Actor{"device:" + project, "", "device"}; }

  // ---- Public intake (PublicFiling above) ----
  // Registers a person's request, "received", source "public", with no subject: InvalidArgument for a kind the
  // register does not accept, a bad contact or identifier; NotFound for an unknown project. Audited (public.request).
  base::Result<PublicFiled> FilePublicRequest(const PublicFiling& filing, const std::string& source);
  // The request as the person sees it: NotFound ("no such request") unless it is a public request and `secret` is
  // its status secret (no difference is told between an unknown reference and a wrong secret; a refusal is counted
  // for `source` and audited in aggregate). Not audited when found (the page polls).
  base::Result<RightsRequest> PublicRequest(const std::string& reference, const std::string& secret,
                                            const std::string& source);
  // A code for the app to show its user (POST /v1/device/verification-code): bound to the device's own subject by
  // FileDeviceRequest's rule (the first of its ids seen as an anonymousId on the project's events and never held as
  // a userId); FailedPrecondition when none is. Valid `ttl_ms`, usable once. Audited (device.verification-code).
  base::Result<VerificationCode> IssueVerificationCode(const WriteKeyInfo& project,
                                                       const std::vector<std::string>& anonymous_ids, int64_t ttl_ms);
  // The person types the app's code on the page: when it is live (known, of the request's project, unused, not
  // expired), it is spent and the request is bound to the code's subject (never to the identifier typed on the page)
  // and moves to awaiting_verification, with result.identity {method "app-code", at}; the officer then approves it.
  // A wrong, used or expired code counts an attempt (InvalidArgument, with the attempts left); after
  // kPublicCodeAttempts the step is closed (ResourceExhausted). FailedPrecondition when the request is no longer
  // received. NotFound as PublicRequest. Every outcome audited (public.verify).
  base::Result<RightsRequest> VerifyPublicRequest(const std::string& reference, const std::string& secret,
                                                  const std::string& code, const std::string& source);
  // An officer binds a public request to a subject after checking the person's identity by other means (evidence:
  // method and reference, kept in result.identity): received -> awaiting_verification. NotFound, FailedPrecondition
  // for a request that is not a received public one. Audited (requests.identify).
  base::Result<RightsRequest> IdentifyPublicRequest(const Actor& actor, const std::string& request_id,
                                                    const std::string& subject, const Verification& evidence);
  // A one-time link to the copy of the person's approved access or portability request (as IssueCopyLink), asked
  // with the status secret. Audited (public.copy-link).
  base::Result<CopyLink> IssuePublicCopyLink(const std::string& reference, const std::string& secret, int64_t ttl_ms,
                                             const std::string& source);
  // The actor of a person's calls on the self-service page of a project.
  static Actor PublicActor(const std::string& project) { return Actor{"public:" + project, "", "person"}; }
  // Who downloads a request's copy through its one-time link: the person (a public request) or the device.
  static Actor LinkActor(const RightsRequest& r) {
    return r.source == "public" ? PublicActor(r.project) : DeviceActor(r.project);
  }

  // An officer confirms a pending identity link (IdentityGraph::ConfirmLink): NotFound when no unconfirmed link has
  // that id.
  base::Result<IdentityLink> ConfirmLink(const Actor& actor, int64_t link_id);

  // ---- The request register ----
  base::Result<std::vector<RightsRequest>> ListRequests(const Actor& actor, const RequestFilter& filter);
  // InvalidArgument (audited as requests.add "bad_request") for an unknown kind, purposes on a kind without them, a bad
  // purpose name, or an empty or too long subject. An objection covering direct marketing (purposes empty or naming
  // "marketing") is put in force for marketing on receipt, without verification (GDPR art. 21(3): absolute): when
  // marketing was its only purpose the request is completed at once; otherwise it waits for approval for the rest.
  // `purposes`: a restriction's or objection's (empty: every purpose); refused for other kinds. Kept in the request's
  // result as {"purposes": [...]}.
  base::Result<RightsRequest> AddRequest(const Actor& actor, const NewRequest& request,
                                         const std::vector<std::string>& purposes = {});
  // Approves a received or awaiting_verification request with its verification evidence (kept in the result as
  // {"verification": {method, reference, by, at}}): an erasure is carried out and completed; any other kind moves to
  // in_progress. NotFound, FailedPrecondition when it is in another state, Conflict when it changed meanwhile.
  base::Result<RightsRequest> Approve(const Actor& actor, const std::string& request_id,
                                      const Verification& verification = Verification());
  // Refuses an open request; the reason is kept (result.reason) and shown with the request.
  base::Result<RightsRequest> Reject(const Actor& actor, const std::string& request_id, const std::string& reason);
  // The officer carried an in_progress or extended request out by hand (a correction, ...): completed, with `note`.
  // FailedPrecondition for an access or portability request (they complete when the copy is delivered).
  base::Result<RightsRequest> Complete(const Actor& actor, const std::string& request_id, const std::string& note);
  // The delivery of an access or portability request's copy begins (GET /v1/requests/{id}/copy): the request as
  // stored, once checked (in_progress or extended, of a subject not erased) and audited (requests.deliver, "started").
  base::Result<RightsRequest> BeginDelivery(const Actor& actor, const std::string& request_id);
  // The copy was written out in full: the request is completed with {"delivered": {at, by, events}}.
  base::Result<RightsRequest> Delivered(const Actor& actor, const std::string& request_id, int64_t events);
  // The register in figures (audited).
  base::Result<RequestStats> Stats(const Actor& actor);
  // Lifts the restriction or objection a request put in force (its rows get lifted_ms; the request keeps its state and
  // gains result.lifted {at, by, reason}); the subject's events are used again everywhere from then on. NotFound for
  // an unknown request, FailedPrecondition for a request of another kind or with nothing in force. Audited
  // (requests.lift).
  base::Result<RightsRequest> Lift(const Actor& actor, const std::string& request_id, const std::string& reason);
  // A project's restriction mode (quarantine or refuse; records.h), read (audited) and set (audited). NotFound for an
  // unknown project; InvalidArgument for another mode.
  base::Result<std::string> RestrictionMode(const Actor& actor, const std::string& project);
  base::Result<std::string> SetRestrictionMode(const Actor& actor, const std::string& project, const std::string& mode);
  // The restrictions and objections in force over the subject's ids in a project ("" = every project): what the
  // person's own copy marks as restricted.
  base::Result<std::vector<RestrictionRecord>> RestrictionsOfSubject(const SubjectQuery& q);
  // Extends an in_progress request's due date by `days` (1-62: GDPR art. 12(3) allows two further months) with the
  // reason (told to the person): extended, result.extension {reason, days, previousDue, by, at}. Once only.
  base::Result<RightsRequest> Extend(const Actor& actor, const std::string& request_id, int64_t days,
                                     const std::string& reason);
  // Open requests due before now + within_ms (overdue ones included), soonest first (audited: requests.due).
  base::Result<std::vector<RightsRequest>> DueWithin(const Actor& actor, int64_t within_ms);
  // A project's due-date policy (see DueUnderPolicy; "" removes it; project "" sets the collector-wide one, used by
  // projects without their own); without any, requests are due RightsOptions::request_due_ms after receipt.
  // InvalidArgument for an unknown policy. Audited (requests.policy).
  base::Status SetRequestPolicy(const Actor& actor, const std::string& project, const std::string& policy);
  // The policy in force for a project's requests ("" when none is set) and what it resolves to.
  base::Result<std::string> RequestPolicy(const std::string& project);

  // ---- Withdrawal of consent acting on stored data (issue 12 item 6; withdrawal.cc) ----
  // Carries out up to `limit` of the denials ingest queued (records.h PendingWithdrawal), oldest first, each in one
  // transaction with its register entry, audit entry and outbox entry: the person's (identity graph, trusted links
  // only) stored events of the denied purpose are erased, or restricted (a restriction of the purpose over every id
  // of the person, kind "restriction", under the withdrawal's request) as the project's setting for the purpose says.
  // The register entry is a system-initiated request of kind "withdrawal" (source "system", completed). Only
  // records that withdraw a grant are queued (records.h IsWithdrawal).
  // Returns how many queued denials were carried out (a denial another process took meanwhile is skipped).
  base::Result<int64_t> RunWithdrawals(size_t limit);

  // ---- Minors (issue 12 item 8; minors.cc) ----
  // An officer marks the subject as a minor (undo: lifts the marks in force) in its project (q.project) or in every
  // project it is found in: one mark per id of the subject (identity graph, trusted links only), in one transaction
  // with its audit entry (subject.minor). Marking again is harmless. Answers the state after the change. NotFound
  // (audited) for an unknown subject, and for an undo with no mark in force.
  base::Result<std::vector<MinorState>> MarkMinor(const Actor& actor, const SubjectQuery& q, bool undo);
  // The subject's minor state in each project it is found in (empty when unknown). Not audited by itself: the subject
  // view that shows it is (subject.show).
  base::Result<std::vector<MinorState>> MinorStatesOf(const SubjectQuery& q);

  // ---- Consent statistics (issue 12 item 9; consent_stats.h) ----
  // The project's opt-in and opt-out figures per bucket ("day" or "week"), purpose and notice version, from its
  // consent records in [from_ms, to_ms). Audited (consent.stats). NotFound for an unknown project, InvalidArgument
  // for another bucket or an empty or longer than 400-day range.
  base::Result<ConsentStats> ConsentStatsOf(const Actor& actor, const std::string& project, const std::string& bucket,
                                            int64_t from_ms, int64_t to_ms);

  // ---- The audit log ----
  base::Result<std::vector<AuditEntry>> ListAudit(const Actor& actor, int64_t after_seq, size_t limit,
                                                  const std::string& subject);
  // Verifies the chain; the verification is recorded after the check, so it is not part of what it checked.
  base::Result<AuditVerifyResult> VerifyAudit(const Actor& actor);

  // ---- Credentials ----
  base::Result<std::string> CreateWriteKey(const Actor& actor, const std::string& project);
  // A server key for the project's backend (Credentials::CreateServerKey).
  base::Result<std::string> CreateServerKey(const Actor& actor, const std::string& project);
  base::Result<std::string> CreateAdminToken(const Actor& actor, const std::string& name,
                                             const std::vector<std::string>& roles);
  // Every write key and admin token (prefixes only, never a secret), audited.
  base::Result<CredentialList> ListCredentials(const Actor& actor);
  // Revokes a write key or admin token by id: refused from then on (write keys: at once on this process, within
  // kWriteKeyCacheMs on every other one sharing the store; admin tokens: at once everywhere). NotFound when no
  // valid credential of that kind has the id. Audited.
  base::Result<bool> RevokeCredential(const Actor& actor, CredentialKind kind, int64_t id);
  // Sets when a write key or admin token stops being accepted (epoch ms; 0: never). NotFound as above. Audited.
  base::Result<bool> ExpireCredential(const Actor& actor, CredentialKind kind, int64_t id, int64_t expires_ms);

  // ---- Other domain actions ----
  // Records an action carried out elsewhere (the operations insight's reads and audience exports) in the audit log,
  // as the other calls do: `subject` a plain id or "" (stored as its hash), `detail` JSON without personal data.
  base::Status RecordAudit(const Actor& actor, const std::string& action, const std::string& subject,
                           const std::string& result, const std::string& detail);

  // ---- Downstream propagation (outbox.h; docs/COMPLIANCE.md "Telling downstream systems") ----
  // Puts a change of the subject `q` on the downstream outbox inside the caller's transaction, so that the change and
  // its outbox entry commit together or not at all; one call per change. `kind`: "erasure", "rectification",
  // "restriction", "restriction_lifted", ... (the consumer's word for it); `change`: what changed, e.g.
  // RestrictionChange({"marketing"}) or {"traits": {...}}. The entry names every id linked to q.id (read in `tx`;
  // q.id alone when none is held). Nothing happens without an outbox (RightsOptions::outbox).
  base::Status RecordDownstream(StoreTxn& tx, const std::string& kind, const SubjectQuery& q,
                                const std::string& request_id, Json change = Json::object());

 private:
  // Puts a change on the outbox (when there is one) inside `tx`: the ids are those of `subjects` (SubjectsOf).
  base::Status Propagate(StoreTxn& tx, const std::string& kind, const std::string& project,
                         const std::string& request_id,
                         const std::vector<std::pair<std::string, std::vector<std::string>>>& subjects,
                         const std::string& fallback_id, Json change);
  void TellErased(const std::vector<std::pair<std::string, std::vector<std::string>>>& subjects);
  // What DeleteEventsAhead did: the events it deleted (with those an earlier run counted) and the subject's ids it
  // resolved first, by project (the last transaction erases these, as they no longer all resolve).
  struct ErasureAhead {
    int64_t deleted = 0;
    std::vector<SubjectIds> ids;
    int64_t suppressed = 0;  // ids SuppressAhead put on the suppression list (counted in the receipt)
  };
  // Deletes the events of the subject `q` names in chunks, each its own short transaction (TxnMode::kEraseChunk, so
  // ingest is never held up for longer than one chunk), keeping the running count and the ids in request `r`'s
  // result (r is in_progress by then); `first`, when set, runs in the first of them (it registers the request, or
  // moves it to in_progress). `resolved`: the subject's ids if the caller just resolved them (ResolveAll).
  base::Result<ErasureAhead> DeleteEventsAhead(const SubjectQuery& q, const RightsRequest& r,
                                               const std::function<base::Status(StoreTxn&)>& first,
                                               const std::vector<SubjectIds>* resolved = nullptr);
  // Where writers run side by side (PostgreSQL), the first of an erasure's two transactions (kEraseMany: it holds
  // ingest out, and is short): request `r` registered in_progress with its audit entry ("started"), the subject
  // resolved again and every id of it suppressed, so that the last transaction (kEraseSuppressed) runs beside ingest;
  // the ids are kept in r's result for ResumeErasures. `resolved`: the ids the caller resolved. The ids, and how
  // many were not on the list yet.
  base::Result<ErasureAhead> SuppressAhead(const Actor& actor, const SubjectQuery& q, const RightsRequest& r,
                                           const std::vector<SubjectIds>& resolved);
  // The erasure's last transaction (`mode`: kErase, kEraseMany or kEraseSuppressed): everything else of the subject,
  // request `r` from in_progress to completed with its receipt (counting the events deleted ahead), the outbox entry,
  // the audit row. `create`: request `r` (in_progress) is registered in this same transaction (nothing was deleted
  // ahead).
  base::Result<EraseReceipt> FinishErasure(const Actor& actor, const SubjectQuery& q, const RightsRequest& r,
                                           const ErasureAhead& ahead, TxnMode mode, bool create = false);
  // An erasure that failed: logged, its request (registered or not yet) left awaiting an officer with the error and
  // the count of events deleted ahead, audited; the error to answer. `suppressed`: SuppressAhead had suppressed the
  // subject's ids (said in the error).
  base::Status FailedErasure(const Actor& actor, const SubjectQuery& q, const RightsRequest& r, bool registered,
                             int64_t deleted, const base::Status& error, bool suppressed = false);
  // The ids of an erasure by project (for the listener and the outbox), `id` among them.
  static std::vector<std::pair<std::string, std::vector<std::string>>> SubjectsOf(const ErasureAhead& ahead,
                                                                                  const std::string& id);
  // After an approved erasure failed part way: the request back from in_progress to `before`'s state.
  void RevertErasure(const Actor& actor, const std::string& request_id, const RightsRequest& before,
                     const base::Status& why);

  // A write or server key (by the action that asked for it).
  base::Result<std::string> CreateKey(const Actor& actor, const std::string& project, Action action);
  // The request `request_id` names; NotFound (audited as `action`) when there is none.
  base::Result<RightsRequest> FindRequest(const Actor& actor, const std::string& request_id, const char* action);
  // Approve or Reject.
  base::Result<RightsRequest> Act(const Actor& actor, const std::string& request_id, bool approve,
                                  const std::string& reason, const Verification& verification);
  // Moves a request of one of `kinds` ("" = any) to `to` from its current state (refused when the lifecycle does not
  // allow it), merging `add` into its result; audited as `action`.
  base::Result<RightsRequest> Move(const Actor& actor, const std::string& request_id, const char* action,
                                   const std::string& to, const Json& add);
  // In one transaction: request `r` goes from its state to `to` with `add` merged into its result, `also` runs (it
  // may refuse with kConflict), the audit entry (`action`, `detail`) is appended, and the request is read back. A
  // request changed meanwhile gives kConflict; another store failure kStoreUnavailable.
  base::Result<RightsRequest> UpdateAudited(const Actor& actor, const char* action, const std::string& subject,
                                            const RightsRequest& r, const std::string& to, const Json& add,
                                            const Json& detail,
                                            const std::function<base::Status(StoreTxn&)>& also = nullptr);
  // An audit entry of `actor` (subject: a plain id or "", stored as its hash).
  AuditEntry Entry(const Actor& actor, const std::string& action, const std::string& subject, const std::string& result,
                   const std::string& detail);
  // Appends on its own; the failure is logged and returned.
  base::Status Audit(const Actor& actor, const std::string& action, const std::string& subject,
                     const std::string& result, const std::string& detail);
  // Audits a revocation or expiry change (`done`: whether a credential changed) and gives the call's answer.
  base::Result<bool> CredentialChanged(const Actor& actor, Action action, CredentialKind kind, const Json& detail,
                                       const base::Result<bool>& done);
  // A refused call: audited at once without a source, counted for its source otherwise.
  void Refused(const std::string& source, const Actor& actor, const std::string& action, const std::string& subject,
               const std::string& result, const std::string& detail);
  // Puts a restriction or objection of request `r` for `purposes` in force in `tx` and records it in *result.
  base::Result<std::vector<RestrictionRecord>> PutInForce(StoreTxn& tx, const RightsRequest& r, const std::string& kind,
                                                          const std::vector<std::string>& purposes, Json* result);
  // Tells the restriction listener of rows put in force (or lifted), by project.
  void TellRestricted(const std::vector<RestrictionRecord>& rows, bool restricted);
  // OUTBOX CALL SITE: where a downstream propagation of `effect` ("restriction", "lift", "rectification") of request
  // `r` is to be recorded, inside the transaction that carries the effect out (the outbox, branch h13-outbox, adds its
  // entry here). Records nothing yet.
  base::Status RecordPropagation(StoreTxn& tx, const char* effect, const RightsRequest& r, const Json& detail);
  // The due date of a request of `project` received at `received_ms` (its policy, else the collector's), the policy
  // read in `tx` when the caller is inside a transaction (never a second one).
  int64_t DueFor(const std::string& project, int64_t received_ms, StoreTxn* tx = nullptr);
  // The policy in force for `project` (its own, else the collector-wide one), read in `tx`.
  base::Result<std::string> PolicyIn(StoreTxn& tx, const std::string& project);
  // Puts a new one-time link to `r`'s copy in its result and audits it as `action` of `actor`.
  base::Result<CopyLink> NewCopyLink(const Actor& actor, const char* action, const RightsRequest& r, int64_t ttl_ms);
  // A new request of `kind` received now, due under the project's policy (read in `tx` when inside one).
  RightsRequest NewRegisterEntry(const std::string& kind, const std::string& project, const std::string& subject,
                                 const std::string& state, const std::string& source, StoreTxn* tx = nullptr);

  RightsStores stores_;
  base::Clock* clock_;
  RightsOptions opts_;
  base::Logger log_;
  RefusalLedger refusals_;
};

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_RIGHTS_SERVICE_H_
