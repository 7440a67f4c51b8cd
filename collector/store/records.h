// The records the collector stores and reads back, shared by every storage interface (interfaces.h), the engines
// (engine.h) and the layers above. Plain data: no behaviour.
//
// Vocabulary (data-subject rights, see docs/COMPLIANCE.md):
// - A *subject* lives in one project. It is a userId together with every anonymousId (and alias previousId) linked
//   to it by identify/alias events, followed transitively through the links a write key could not have forged into
//   someone else's data (identity.h); an id that is linked to no userId is an anonymous-only subject of its own.
//   Looking a subject up by any of its ids gives the same subject.
// - A SubjectQuery names a subject by any one of its ids, in one project or ("") in every project: admin calls act on
//   every project where the id is known, and answer per project. Across projects a userId is one person: with
//   project "", an anonymousId that resolves to userId U in one project also names U's subject in the others.
// - Ids never appear in the audit log: it holds IdHash(id) (a keyed BLAKE2b-256, the same hash the suppression list
//   holds), so an erasure leaves no id behind anywhere in the store.
#ifndef FERRY_COLLECTOR_STORE_RECORDS_H_
#define FERRY_COLLECTOR_STORE_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ferry::collector {

// One validated event ready to be stored (made by ingest.h's ParseBatch).
struct StoredEvent {
  std::string message_id;
  std::string type;
  std::string user_id;       // "" when absent
  std::string anonymous_id;  // "" when absent
  std::string name;          // track: event; screen: name; else ""
  std::string purpose;
  int64_t timestamp_ms = 0;  // corrected by the client's clock skew
  int64_t received_ms = 0;
  std::string body;  // the event as JSON text (with receivedAt and the corrected timestamp)
  // The store's own form of body, made by IngestSink::Prepare on the request's thread ("" when it has none: the store
  // keeps body as it is).
  std::string stored_body;
  // consent events: properties.purpose/state/previous; alias: previousId.
  std::string consent_purpose, consent_state, consent_previous;
  // consent events (issue 12): properties.method ("explicit", "default", ...), noticeId, noticeVersion, language,
  // seq (the device's sequence number, 0 when absent) and receiptId ("" when absent).
  std::string consent_method, notice_id, notice_version, language, receipt_id;
  int64_t consent_seq = 0;
  // Every event (issue 12): the device's sequence number (`deviceSeq`, 0 when absent) and the receipt of the consent
  // record that admitted it (`consentReceipt`, "" when absent).
  int64_t device_seq = 0;
  std::string consent_receipt;
  std::string previous_id;
  // identify events: the traits object as JSON text ("" when absent); merged into the subject's profile traits.
  std::string traits;
  // consent events: where the consent was given, {device, os, app, library, sessionId} from the event's context as
  // JSON text ("" when absent); kept with the consent record as proof of origin (with its anonymousId).
  std::string device;
  // Set at ingest (consent_gate.h): the receipt id of the consent record that admitted the event ("" when none did:
  // purpose necessary, a consent record itself, or an event stored in report-only without covering consent). Stored
  // with the event; retention keeps that record while the event is held (RetentionStore::PurgeExpired).
  std::string covered_by;
  // Set at ingest for track and screen events when the collector runs the operations insight (ParseBatch's
  // `insight_fields`; collector/ingest/insight_fields.h): what the insight reads from the body, taken from ingest's own
  // parse so that its feed does not read the body a second time (issue 15). Not stored.
  struct InsightFields {
    bool set = false;
    std::string props;  // canonical JSON of the top-level scalar properties
    std::string session_id, channel, app_name, campaign_source, campaign_name;  // context strings, "" when absent
  };
  InsightFields insight;
  // consent events (issue 12 item 8): properties.minor, whether the device's user was marked as a minor (1), not (0),
  // or unknown (-1: absent, older SDKs).
  int consent_minor = -1;
};

enum class InsertOutcome { kAccepted, kDuplicate, kSuppressed };

// The credential a batch came with: what its identify/alias events may assert about identities (identity.h).
inline constexpr const char* kCredentialWriteKey = "write_key";    // public: it ships inside every app
inline constexpr const char* kCredentialServerKey = "server_key";  // the app's backend; never shipped in apps
inline constexpr const char* kCredentialInternal = "internal";     // the store's own callers (tools, tests)

// A batch of one project's events to insert. The store fills `outcomes` (one per event, same order).
struct InsertRequest {
  int64_t project_id = 0;
  std::string project;  // the project's name (for what observes accepted events: the insight feed)
  // Who sent the batch: its identity links carry this as their provenance. The HTTP front always sets it from the
  // key the batch came with (kCredentialWriteKey or kCredentialServerKey, and the key's prefix as key_id); the
  // default is for the store's own callers, which are trusted like a server key.
  std::string credential = kCredentialInternal;
  std::string key_id;
  std::vector<StoredEvent> events;
  std::map<std::string, int64_t> dropped;  // device-side drop counters to add to the project's totals
  std::vector<InsertOutcome> outcomes;
  // The store's insertion sequence of each accepted event (its events row id: increasing in commit order within one
  // collector; 0 for events not accepted). What the insight feed keeps its position in (EventFeedSource).
  std::vector<int64_t> seqs;
};

// A stored event as read back.
struct EventRow {
  std::string project;
  std::string message_id, type, user_id, anonymous_id, name, purpose;
  int64_t timestamp_ms = 0, received_ms = 0;
  std::string body;
  int64_t seq = 0;           // the store's insertion sequence (InsertRequest::seqs); set by EventsAfter
  std::string covered_by{};  // StoredEvent::covered_by as stored; set by DumpEvents
};

// A key that may send events: a write key ("fw_", kind "write", shipped in apps) or a server key ("fs_", kind
// "server", the app's backend; its identify/alias events may merge userIds).
struct WriteKeyInfo {
  WriteKeyInfo() = default;
  WriteKeyInfo(int64_t project_id_, std::string project_, std::string kind_ = "write", std::string prefix_ = "")
      : project_id(project_id_), project(std::move(project_)), kind(std::move(kind_)), prefix(std::move(prefix_)) {}
  int64_t project_id = 0;
  std::string project;
  std::string kind = "write";
  std::string prefix;  // the key's first characters (its id in link provenance)
  // The credential its batches carry (InsertRequest::credential).
  const char* credential() const { return kind == "server" ? kCredentialServerKey : kCredentialWriteKey; }
  int64_t expires_ms = 0;  // 0: no expiry (LookupWriteKey never returns an expired key)
};

// A write or server key as listed (never the key itself: only its prefix).
struct WriteKeyRecord {
  int64_t id = 0;
  std::string project;
  std::string prefix;          // "fw_" or "fs_" and the first hex characters
  std::string kind = "write";  // "write" or "server"
  int64_t created_ms = 0;
  int64_t revoked_ms = 0;  // 0 while not revoked
  int64_t expires_ms = 0;  // 0: no expiry
};

// ---- Subjects and the identity graph ----

// Names a subject by any of its ids. project "" = every project where the id is known.
struct SubjectQuery {
  std::string project;
  std::string id;
};

// One id of a subject. kind: "userId" (the subject's userId), "anonymousId" or "previousId" (an alias' old id).
// linked_to: the userId it is linked to ("" for the userId itself or an anonymous-only subject); source: "identify",
// "alias", or "event" (only seen on events); first_seen_ms: when the link was made (0 when unknown).
struct SubjectIdentity {
  std::string kind;
  std::string id;
  std::string linked_to;
  std::string source;
  int64_t first_seen_ms = 0;
};

// One identity link as stored, with its provenance: which credential asserted it (credential: "write_key",
// "server_key", "internal", or "unknown" for links stored before provenance was kept; key_id: the key's prefix),
// through which event (via_message_id) sent from which anonymousId (via_anonymous_id), when it arrived
// (asserted_ms, the collector's time); first_seen_ms is the asserting event's own time. state: "active" or
// "pending" (stored, never followed, until an officer confirms it: confirmed_by, confirmed_ms). followed: whether
// the identity-graph walk follows it (identity.cc: an active link that a write key could not have forged into
// someone else's data).
struct IdentityLink {
  int64_t id = 0;
  int64_t project_id = 0;
  std::string kind;  // "anonymousId" or "previousId"
  std::string from_id, user_id, source;
  int64_t first_seen_ms = 0;
  std::string credential, key_id, via_message_id, via_anonymous_id;
  int64_t asserted_ms = 0;
  std::string state;
  std::string confirmed_by;
  int64_t confirmed_ms = 0;
  bool followed = false;
};

// The latest recorded consent state of one purpose.
struct ConsentState {
  std::string purpose, state;
  int64_t timestamp_ms = 0;
};

// A subject as found in one project (GET /v1/subjects/{id}).
struct SubjectSummary {
  std::string project;
  int64_t project_id = 0;
  std::string user_id;  // "" for an anonymous-only subject
  std::vector<SubjectIdentity> identities;
  // Every identity link into or out of the subject's userIds, followed or not, with its provenance and state.
  std::vector<IdentityLink> links;
  int64_t event_count = 0;
  std::map<std::string, int64_t> events_by_type;
  int64_t first_seen_ms = 0, last_seen_ms = 0;  // event timestamps; 0 without events
  std::vector<ConsentState> consent;            // latest state per purpose
  std::string traits;                           // the profile traits as a JSON object text ("{}" when none)
};

// One row of the consent history: proof of when, which purpose, which state, from which device.
struct ConsentRecord {
  std::string message_id, user_id, anonymous_id, purpose, state, previous;
  int64_t timestamp_ms = 0, received_ms = 0;
  std::string device;  // StoredEvent::device: {device, os, app, library, sessionId} of the consent event ("" if none)
  // As sent by the device (StoredEvent); "" and 0 for records made before they were kept or sent without them.
  std::string method, notice_id, notice_version, language;
  int64_t seq = 0;
  std::string receipt_id;
  int minor = -1;  // StoredEvent::consent_minor: 1 marked as a minor, 0 not, -1 unknown (absent)
};

// Receives an export piece by piece (GET /v1/subjects/{id}/export). The store calls the methods in this order for
// each project the subject is found in: BeginProject, Consent* (oldest first), Event* (insertion order), EndProject.
// Events and consent records are read in pages and handed over one by one; the store holds no lock while a visitor
// method runs, so a visitor may block (e.g. on a slow network). A visitor method returning false stops the export
// (ExportSubject then fails with kClosed). Pages are read one after the other, so events stored during an export may or
// may not be included; events never appear twice.
class ExportVisitor {
 public:
  virtual ~ExportVisitor() = default;
  virtual bool BeginProject(const SubjectSummary& subject) = 0;
  virtual bool Consent(const ConsentRecord& record) = 0;
  virtual bool Event(const EventRow& event) = 0;
  virtual bool EndProject() = 0;
};

// What an erasure removed. `erased` counts rows per table: "events", "consent_ledger", "identity_links", "traits",
// and "requests_redacted" (request-register rows whose subject id was replaced by its hash).
struct EraseReceipt {
  std::string request_id;
  std::map<std::string, int64_t> erased;
  int64_t ids_suppressed = 0;  // ids added to the suppression list
  std::vector<std::string> projects;
  int64_t completed_ms = 0;
};

// ---- Request register ----

// One data-subject request. kind: "access" | "erasure" | "correction". state, one of six (the rights service,
// collector/rights/rights_service.h, moves requests between them and refuses every other move; docs/COMPLIANCE.md):
// - "received": registered, not yet looked at;
// - "awaiting_verification": the person's identity not yet checked (registered by POST /v1/requests, by a device
//   asking to erase its userId, or left behind by an erasure that failed and changed nothing);
// - "in_progress": approved (verification recorded in result.verification), being carried out;
// - "extended": in progress with its due date extended;
// - "completed": carried out (an access request: once its copy was delivered in full, result.delivered);
// - "rejected": refused by an officer (result.reason holds the reason).
// subject: the id as named (plain while the request is open; replaced by "hash:<IdHash>" once the subject was
// erased); subject_hash: IdHash(subject id), always kept. source: "admin" (an admin API call) or "device"
// (POST /v1/forget). result: a JSON object text (receipt, verification, delivery, note or reason).
struct RightsRequest {
  std::string id;  // "req_..." (made by CreateRequest when empty)
  std::string kind;
  std::string project;  // "" = every project
  std::string subject;
  std::string subject_hash;
  std::string state;
  std::string source;
  int64_t received_ms = 0;
  int64_t due_ms = 0;
  std::string acted_by;  // admin token name ("" while open)
  int64_t acted_ms = 0;
  std::string result;
};

enum class RequestUpdate { kUpdated, kNotFound, kWrongState };

struct RequestFilter {
  std::string state;          // "" = any
  int64_t overdue_at_ms = 0;  // > 0: only requests not completed/rejected whose due_ms < overdue_at_ms
  size_t limit = 1000;
};

// ---- Restriction of processing and objection (issue 13) ----

// One id of a subject whose processing is restricted (GDPR art. 18) or objected to (art. 21) for some purposes, made
// when the request was approved (or, for an objection to direct marketing, received) and kept after it is lifted
// (lifted_ms > 0) as the record of what was in force when.
struct RestrictionRecord {
  int64_t id = 0;  // set by the store
  int64_t project_id = 0;
  std::string project;                // the project's name (filled in on reads)
  std::string subject_id;             // one id of the subject (its userId or one of its anonymousIds), plain
  std::string kind;                   // "restriction" | "objection"
  std::vector<std::string> purposes;  // empty: every purpose
  std::string request_id;
  int64_t since_ms = 0;
  int64_t lifted_ms = 0;  // 0 while in force

  // Whether events of `purpose` are covered.
  bool Covers(const std::string& purpose) const {
    if (purposes.empty()) return true;
    for (const std::string& p : purposes) {
      if (p == purpose) return true;
    }
    return false;
  }
};

// What a project does with new events of a restricted subject for a restricted purpose: "quarantine" (stored, counted,
// excluded from every analytics and downstream path like the subject's older events) or "refuse" (not stored,
// counted). An objection to direct marketing always refuses its marketing events.
inline constexpr const char* kRestrictQuarantine = "quarantine";
inline constexpr const char* kRestrictRefuse = "refuse";

// ---- Withdrawal of consent acting on stored data (issue 12 item 6) ----

// What a denial does to the person's stored events of its purpose, per project and purpose: "erase" (the default) or
// "restrict" (kept, excluded from every export and analytics path as by a restriction of processing).
inline constexpr const char* kWithdrawErase = "erase";
inline constexpr const char* kWithdrawRestrict = "restrict";

// Whether a stored consent record withdraws consent and so acts on stored data: a denial of a purpose that was
// granted before (`previous` "granted"), by the person or a guardian. A developer's default that changes (method
// "default") is not the person's withdrawal, and a first refusal (previous "pending") withdraws nothing: enforcement
// refuses their events from then on, the events stored before stay.
inline bool IsWithdrawal(const StoredEvent& e) {
  return e.type == "consent" && e.consent_state == "denied" && e.consent_previous == "granted" &&
         e.consent_method != "default";
}

// A recorded denial waiting to take effect on stored data: queued by ingest in the transaction that stores the
// consent record (so it survives a restart), carried out by the withdrawal job off the ingest path.
struct PendingWithdrawal {
  int64_t id = 0;
  int64_t project_id = 0;
  std::string project;                  // the project's name (filled in on reads)
  std::string user_id, anonymous_id;    // the denying record's ids
  std::string purpose, previous;        // the purpose denied and its state before
  std::string receipt_id;               // the denying record's receipt ("" when it has none)
  int64_t denied_ms = 0;                // the record's time
  std::string action = kWithdrawErase;  // the project's setting for the purpose (read with the row)
};

// ---- Audit log ----

// One admin call. The store sets seq, prev_hash and hash when appending: hash = BLAKE2b-256(prev_hash ||
// AuditCanonical(entry)) (hex), prev_hash of the first entry is 64 zeros. See audit.h for the canonical form.
struct AuditEntry {
  int64_t seq = 0;
  int64_t time_ms = 0;
  std::string actor;         // admin token name and prefix, "device:<project>" or "ferryctl-offline"
  std::string role;          // the role that allowed (or would have allowed) the call; "" when none
  std::string action;        // e.g. "subject.show", "subject.erase", "requests.approve", "forget"
  std::string subject_hash;  // IdHash of the subject id ("" when the call names no subject)
  std::string result;        // "ok", "denied", "not_found", "error: ..."
  std::string detail;        // a short JSON text (request id, counts); never personal data
  std::string prev_hash, hash;
};

// What VerifyAudit found. first_broken_seq is 0 when ok.
struct AuditVerifyResult {
  bool ok = true;
  int64_t entries = 0;
  int64_t first_broken_seq = 0;
  std::string reason;
  // The last entry that verified (the chain's head when ok): its seq and hash, for an anchor kept elsewhere.
  int64_t head_seq = 0;
  std::string head_hash;
};

// ---- Admin tokens ----

struct AdminTokenInfo {
  int64_t id = 0;
  std::string name;                // free text label; "who" in the audit log
  std::string prefix;              // the first characters of the token, for display
  std::vector<std::string> roles;  // "compliance", "operator", "analyst"
  int64_t created_ms = 0;
  int64_t revoked_ms = 0;  // 0 while valid
  int64_t expires_ms = 0;  // 0: no expiry; from then on the token is refused
};

// ---- The downstream outbox ----

// A change downstream systems must hear of (GDPR art. 19): an erasure, a rectification, a restriction (or its
// lifting). seq orders the feed. body: the JSON the feed and the webhooks carry, kept sealed in the store
// (collector/rights/outbox.h).
struct OutboxEntry {
  int64_t seq = 0;
  std::string project, kind, request_id;
  std::string body;
  int64_t created_ms = 0;
};

// One entry's delivery to one webhook destination. state: "pending" (due at next_ms), "delivered", "failed" (gave
// up after the last attempt).
struct OutboxDelivery {
  int64_t seq = 0;
  std::string destination, state;
  int64_t attempts = 0, next_ms = 0, last_status = 0, delivered_ms = 0;
  std::string last_error;
};

// ---- Verification codes (public intake, issue 13 item 3) ----

// A short-lived code the app showed its user (POST /v1/device/verification-code), bound to the subject the device
// demonstrably used; kept as the hash of the code, used at most once (used_ms > 0 once spent).
struct VerificationCodeRow {
  std::string code_hash;
  std::string project;
  std::string subject;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  int64_t used_ms = 0;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_RECORDS_H_
