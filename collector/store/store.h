// The collector's storage interface. The embedded SQLCipher store (sqlite_store.h) implements it; a PostgreSQL
// backend will implement it too. Implementations are thread-safe: every method may be called from any thread.
//
// Vocabulary (data-subject rights, see docs/COMPLIANCE.md):
// - A *subject* lives in one project. It is a userId together with every anonymousId (and alias previousId) linked
//   to it by identify/alias events, followed transitively; an id that is linked to no userId is an anonymous-only
//   subject of its own. Looking a subject up by any of its ids gives the same subject.
// - A SubjectQuery names a subject by any one of its ids, in one project or ("") in every project: admin calls act on
//   every project where the id is known, and answer per project. Across projects a userId is one person: with
//   project "", an anonymousId that resolves to userId U in one project also names U's subject in the others.
// - Ids never appear in the audit log: it holds IdHash(id) (a keyed BLAKE2b-256, the same hash the suppression list
//   holds), so an erasure leaves no id behind anywhere in the store.
#ifndef FERRY_COLLECTOR_STORE_STORE_H_
#define FERRY_COLLECTOR_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"

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
  // consent events: properties.purpose/state/previous; alias: previousId.
  std::string consent_purpose, consent_state, consent_previous;
  std::string previous_id;
  // identify events: the traits object as JSON text ("" when absent); merged into the subject's profile traits.
  std::string traits;
  // consent events: where the consent was given, {device, os, app, library, sessionId} from the event's context as
  // JSON text ("" when absent); kept with the consent record as proof of origin (with its anonymousId).
  std::string device;
};

enum class InsertOutcome { kAccepted, kDuplicate, kSuppressed };

// A batch of one project's events to insert. The store fills `outcomes` (one per event, same order).
struct InsertRequest {
  int64_t project_id = 0;
  std::vector<StoredEvent> events;
  std::map<std::string, int64_t> dropped;  // device-side drop counters to add to the project's totals
  std::vector<InsertOutcome> outcomes;
};

// A stored event as read back.
struct EventRow {
  std::string project;
  std::string message_id, type, user_id, anonymous_id, name, purpose;
  int64_t timestamp_ms = 0, received_ms = 0;
  std::string body;
};

struct WriteKeyInfo {
  int64_t project_id = 0;
  std::string project;
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

// One data-subject request. kind: "access" | "erasure" | "correction". state: "awaiting_verification" (a device
// asked to erase a userId), "completed", "rejected". subject: the id as named (plain while the request is open;
// replaced by "hash:<IdHash>" once the subject was erased); subject_hash: IdHash(subject id), always kept.
// source: "admin" (an admin API call) or "device" (POST /v1/forget). result: JSON text (receipt or reason).
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
};

// ---- Admin tokens ----

struct AdminTokenInfo {
  int64_t id = 0;
  std::string name;                // free text label; "who" in the audit log
  std::string prefix;              // the first characters of the token, for display
  std::vector<std::string> roles;  // "compliance", "operator", "analyst"
  int64_t created_ms = 0;
  int64_t revoked_ms = 0;  // 0 while valid
};

class Store {
 public:
  virtual ~Store() = default;

  // A cheap liveness check of the backing storage (GET /healthz).
  virtual base::Status Check() = 0;

  // Creates the project if needed and a new write key for it; returns the key (shown once, stored only hashed).
  virtual base::Result<std::string> CreateWriteKey(const std::string& project) = 0;

  // The project a write key belongs to, or nullopt for an unknown or revoked key.
  virtual base::Result<std::optional<WriteKeyInfo>> LookupWriteKey(const std::string& key) = 0;

  // Inserts several requests' events in ONE transaction (group commit): duplicates by (project, messageId) are
  // ignored, events of suppressed subjects (userId or anonymousId on the suppression list) are dropped, consent
  // events fill the consent ledger, identify/alias fill the identity links, identify traits are merged into the
  // profile traits, drop counters are added. On failure nothing is stored and every request failed.
  virtual base::Status Insert(std::vector<InsertRequest*>& requests) = 0;

  // Keyed hash of a subject id (userId or anonymousId), the form the suppression list and the audit log hold:
  // 64 hex characters.
  virtual std::string IdHash(const std::string& id) = 0;
  // Whether a subject id hash is on the project's suppression list.
  virtual base::Result<bool> IsSuppressed(int64_t project_id, const std::string& id_hash) = 0;
  // Adds an id hash to the suppression list (used by erasure; tests).
  virtual base::Status Suppress(int64_t project_id, const std::string& id_hash) = 0;

  // Stored events (debug/tests), in insertion order; project "" means all.
  virtual base::Result<std::vector<EventRow>> DumpEvents(const std::string& project) = 0;
  // The project's device drop counters.
  virtual base::Result<std::map<std::string, int64_t>> DroppedCounters(const std::string& project) = 0;

  // ---- Subjects ----

  // The subject named by q.id in each project where any of its ids is known (stored events, links, traits or
  // consent records). Empty when unknown everywhere (404).
  virtual base::Result<std::vector<SubjectSummary>> FindSubject(const SubjectQuery& q) = 0;

  // Streams everything held about the subject to `visitor` (see ExportVisitor). false when the subject is unknown
  // everywhere (nothing is visited then). A visitor stopping the export gives Status kClosed. Memory use does not
  // grow with the number of events.
  virtual base::Result<bool> ExportSubject(const SubjectQuery& q, ExportVisitor& visitor) = 0;

  // Erases the subject in every project it is found in: all events where any linked id is the userId or the
  // anonymousId, its identity links, profile traits and consent records; every linked id's IdHash goes on the
  // project's suppression list; request-register rows naming one of the ids get the plain id replaced by its hash.
  // One transaction for everything (all or nothing). The receipt carries request_id as given. An unknown subject
  // still gets q.id suppressed (in q.project, or every project when q.project is "") and an all-zero receipt.
  virtual base::Result<EraseReceipt> EraseSubject(const SubjectQuery& q, const std::string& request_id) = 0;

  // Device self-service erasure (POST /v1/forget): erases exactly these anonymousIds in one project, without
  // following links to a userId (a device's word covers only its own random ids): events whose anonymousId is one
  // of them, links from them, traits and consent records kept under them; suppresses them. One transaction.
  virtual base::Result<EraseReceipt> EraseAnonymousIds(int64_t project_id, const std::vector<std::string>& ids,
                                                       const std::string& request_id) = 0;

  // Correction (PATCH /v1/subjects/{id}/traits): merges `patch_json` (a JSON object; a null value removes the key)
  // into the profile traits of the subject (kept under its userId, or its anonymousId when anonymous-only) in each
  // project it is found in. Returns the subjects with their new traits; empty when the subject is unknown.
  virtual base::Result<std::vector<SubjectSummary>> PatchTraits(const SubjectQuery& q,
                                                                const std::string& patch_json) = 0;

  // Calls fn(table, column, text) for every non-NULL text value of every column of every table (keys and hashes
  // included). fn returning false stops the scan. For erasure proofs (tests) and audits of what is held.
  virtual base::Status ScanAllText(
      const std::function<bool(std::string_view table, std::string_view column, std::string_view text)>& fn) = 0;

  // ---- Request register ----

  // Stores a new request (id made when empty; received_ms/due_ms taken as given). Returns the stored request.
  virtual base::Result<RightsRequest> CreateRequest(RightsRequest r) = 0;
  // One request, nullopt when unknown.
  virtual base::Result<std::optional<RightsRequest>> GetRequest(const std::string& id) = 0;
  // Sets state, acted_by, acted_ms and result of a request, only if it is in state `expected_state` (so two
  // officers cannot both act on one request); otherwise nothing changes.
  virtual base::Result<RequestUpdate> UpdateRequest(const std::string& id, const std::string& expected_state,
                                                    const std::string& new_state, const std::string& acted_by,
                                                    int64_t acted_ms, const std::string& result) = 0;
  // Requests matching the filter, oldest first.
  virtual base::Result<std::vector<RightsRequest>> ListRequests(const RequestFilter& filter) = 0;

  // ---- Audit log ----

  // Appends an entry to the hash chain (sets seq, prev_hash, hash; time_ms is kept if > 0, else now). Atomic:
  // concurrent appends never share a seq or a prev_hash.
  virtual base::Result<AuditEntry> AppendAudit(AuditEntry e) = 0;
  // Entries with seq > after_seq, oldest first, at most `limit`; subject_hash "" = any subject.
  virtual base::Result<std::vector<AuditEntry>> ListAudit(int64_t after_seq, size_t limit,
                                                          const std::string& subject_hash) = 0;
  // Recomputes the chain from the first entry: names the first entry whose stored hash, prev_hash or seq does not
  // follow from its predecessor and its own content.
  virtual base::Result<AuditVerifyResult> VerifyAudit() = 0;

  // ---- Admin tokens ----

  // A new admin token ("fa_" + 64 hex) with these roles (each one of compliance, operator, analyst; at least one);
  // stored only as a hash. Returns the token (shown once).
  virtual base::Result<std::string> CreateAdminToken(const std::string& name,
                                                     const std::vector<std::string>& roles) = 0;
  // The token's record, nullopt for an unknown or revoked token. Write keys are never admin tokens.
  virtual base::Result<std::optional<AdminTokenInfo>> LookupAdminToken(const std::string& token) = 0;
  virtual base::Result<std::vector<AdminTokenInfo>> ListAdminTokens() = 0;
  // Revokes by id; false when no valid token has that id.
  virtual base::Result<bool> RevokeAdminToken(int64_t id) = 0;

  // ---- Retention ----

  // Sets (max_age_ms > 0) or clears (0: the default applies) a project's maximum event age. false for an unknown
  // project.
  virtual base::Result<bool> SetRetention(const std::string& project, int64_t max_age_ms) = 0;
  // project -> its own maximum event age (projects without one are absent).
  virtual base::Result<std::map<std::string, int64_t>> Retention() = 0;
  // Deletes events (and consent records) whose timestamp is older than now_ms minus the project's maximum age
  // (default_max_age_ms when it has none), at most `max_rows` rows per call so ingest is not held up for long.
  // Returns the number of events deleted; call again while it returns max_rows.
  virtual base::Result<int64_t> PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows) = 0;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_STORE_H_
