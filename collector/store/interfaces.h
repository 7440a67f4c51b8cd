// The collector's storage, cut by consumer. Each part of the collector takes only the interface it needs; one class,
// Store (store.h), implements all of them, once, over any engine (engine.h). Implementations are thread-safe: every
// method may be called from any thread. The records and the vocabulary (subjects, ids, hashes) are in records.h.
//
//   IngestSink          the group-commit writer (collector/ingest/)
//   Credentials         write keys and admin tokens: the HTTP front, the rights service, ferryctl
//   IdentityGraph       subjects (show, export, erase, correct): the rights service
//   RequestRegister     data-subject requests: the rights service
//   AuditLog            the hash-chained audit log: the rights service, ferryctl
//   RetentionStore      maximum event ages and the purge: the retention job, ferryctl
//   Suppressions        the suppression list
//   StoreInspection     health, debugging, erasure proofs
//   EventFeedSource     stored events by insertion sequence and consent by purpose: the insight feed
//   IngestGateSource    what the consent and restriction gates read for a batch, in one go: /v1/batch
//   RightsTransactions  several of the calls above in one transaction (an action with its register row and audit
//                       entry): the rights service
#ifndef FERRY_COLLECTOR_STORE_INTERFACES_H_
#define FERRY_COLLECTOR_STORE_INTERFACES_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collector/store/consent_policy.h"
#include "collector/store/engine.h"
#include "collector/store/records.h"
#include "collector/store/store_txn.h"
#include "lib/base/status.h"

namespace ferry::collector {

class IngestSink {
 public:
  virtual ~IngestSink() = default;
  // Inserts several requests' events in ONE transaction (group commit): duplicates by (project, messageId) are
  // ignored, events of suppressed subjects (userId or anonymousId on the suppression list) are dropped, consent
  // events fill the consent ledger, identify/alias fill the identity links, identify traits are merged into the
  // profile traits, drop counters are added. On failure nothing is stored and every request failed (outcomes empty).
  virtual base::Status Insert(std::vector<InsertRequest*>& requests) = 0;
  // Called on the submitting thread before the request joins a group commit: what the store can do for it outside
  // the one transaction at a time (the embedded store compresses the events' bodies, StoredEvent::stored_body).
  // It stores nothing: a request prepared and then never inserted leaves no trace.
  virtual void Prepare(InsertRequest* /*request*/) {}
};

class Credentials {
 public:
  virtual ~Credentials() = default;
  // Creates the project if needed and a new write key for it ("fw_" + 64 hex); returns the key (shown once, stored
  // only hashed). InvalidArgument for a project name that is not 1-200 bytes.
  virtual base::Result<std::string> CreateWriteKey(const std::string& project) = 0;
  // A server key ("fs_" + 64 hex) for the project's backend, made and stored like a write key: it sends events like
  // one, and its identify/alias events may also merge userIds (identity.h). Never shipped in apps.
  virtual base::Result<std::string> CreateServerKey(const std::string& project) = 0;
  // The project a write or server key belongs to (and its kind), or nullopt for an unknown, revoked or expired key. A
  // process may keep what it looked up for a short while (Store: kWriteKeyCacheMs), so a key revoked through another
  // process sharing the database is refused here within that time; revoked through this one, at once.
  virtual base::Result<std::optional<WriteKeyInfo>> LookupWriteKey(const std::string& key) = 0;
  // Every write key (prefix, project, created, revoked, expiry), by id.
  virtual base::Result<std::vector<WriteKeyRecord>> ListWriteKeys() = 0;
  // Revokes a write key by id; false when no key that is not revoked has that id.
  virtual base::Result<bool> RevokeWriteKey(int64_t id) = 0;
  // Sets the expiry of a write key or admin token (epoch ms; 0 clears it); false when no valid one has that id.
  virtual base::Result<bool> SetWriteKeyExpiry(int64_t id, int64_t expires_ms) = 0;
  virtual base::Result<bool> SetAdminTokenExpiry(int64_t id, int64_t expires_ms) = 0;
  // A new admin token ("fa_" + 64 hex) with these roles (each one of compliance, operator, analyst; at least one);
  // stored only as a hash. Returns the token (shown once).
  virtual base::Result<std::string> CreateAdminToken(const std::string& name,
                                                     const std::vector<std::string>& roles) = 0;
  // The token's record, nullopt for an unknown, revoked or expired token (read from the store on every call: a
  // revocation holds at once on every process). Write keys are never admin tokens.
  virtual base::Result<std::optional<AdminTokenInfo>> LookupAdminToken(const std::string& token) = 0;
  virtual base::Result<std::vector<AdminTokenInfo>> ListAdminTokens() = 0;
  // Revokes by id; false when no valid token has that id.
  virtual base::Result<bool> RevokeAdminToken(int64_t id) = 0;
};

class IdentityGraph {
 public:
  virtual ~IdentityGraph() = default;
  // Keyed hash of a subject id (userId or anonymousId), the form the suppression list and the audit log hold:
  // 64 hex characters.
  virtual std::string IdHash(const std::string& id) = 0;
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
  // Erases exactly these anonymousIds in one project, without following links to a userId: events whose
  // anonymousId is one of them, links from them, traits and consent records kept under them; suppresses them. Ids
  // that are known userIds are skipped. One transaction.
  virtual base::Result<EraseReceipt> EraseAnonymousIds(int64_t project_id, const std::vector<std::string>& ids,
                                                       const std::string& request_id) = 0;
  // Device self-service erasure (POST /v1/forget), a device's word covering only its own random ids: of these ids,
  // only those seen as an anonymousId on the project's events and never held as a userId are acted on (an id never
  // seen is not suppressed); their events and consent records that carry no userId, and traits kept under them,
  // are erased; they are suppressed. Rows under a userId are never touched (that goes through an officer's
  // verification). One transaction.
  virtual base::Result<EraseReceipt> ForgetDeviceIds(int64_t project_id, const std::vector<std::string>& ids,
                                                     const std::string& request_id) = 0;
  // An officer's confirmation of a pending identity link (or of a write key's link that names a userId): from now
  // on it is followed. nullopt when no unconfirmed link has that id.
  virtual base::Result<std::optional<IdentityLink>> ConfirmLink(int64_t link_id, const std::string& confirmed_by) = 0;
  // Correction (PATCH /v1/subjects/{id}/traits): merges `patch_json` (a JSON object; a null value removes the key)
  // into the profile traits of the subject (kept under its userId, or its anonymousId when anonymous-only) in each
  // project it is found in. Returns the subjects with their new traits; empty when the subject is unknown.
  // InvalidArgument for a patch that is not an object or a trait name that is not 1-200 bytes.
  virtual base::Result<std::vector<SubjectSummary>> PatchTraits(const SubjectQuery& q,
                                                                const std::string& patch_json) = 0;
};

class RequestRegister {
 public:
  virtual ~RequestRegister() = default;
  // Stores a new request (id made when empty; received_ms/due_ms taken as given). Returns the stored request.
  // AlreadyExists when the id is taken.
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
};

class AuditLog {
 public:
  virtual ~AuditLog() = default;
  // Appends an entry to the hash chain (sets seq, prev_hash, hash; time_ms is kept if > 0, else now). Atomic:
  // concurrent appends, from any process, never share a seq or a prev_hash.
  virtual base::Result<AuditEntry> AppendAudit(AuditEntry e) = 0;
  // Entries with seq > after_seq, oldest first, at most `limit`; subject_hash "" = any subject.
  virtual base::Result<std::vector<AuditEntry>> ListAudit(int64_t after_seq, size_t limit,
                                                          const std::string& subject_hash) = 0;
  // Recomputes the chain from the first entry: names the first entry whose stored hash, prev_hash or seq does not
  // follow from its predecessor and its own content.
  virtual base::Result<AuditVerifyResult> VerifyAudit() = 0;
};

class RetentionStore {
 public:
  virtual ~RetentionStore() = default;
  // Sets (max_age_ms > 0) or clears (0: the default applies) a project's maximum event age. false for an unknown
  // project.
  virtual base::Result<bool> SetRetention(const std::string& project, int64_t max_age_ms) = 0;
  // project -> its own maximum event age (projects without one are absent).
  virtual base::Result<std::map<std::string, int64_t>> Retention() = 0;
  // Sets (keep_ms >= 0) or clears (< 0: the collector's default applies) how long a project keeps a consent record
  // beyond the newest event it covered. false for an unknown project.
  virtual base::Result<bool> SetConsentKeep(const std::string& project, int64_t keep_ms) = 0;
  // Deletes events whose timestamp is older than now_ms minus the project's maximum age (default_max_age_ms when it
  // has none; <= 0 keeps them forever), at most about `max_rows` rows per call so ingest is not held up for long (an
  // engine that drops whole partitions may report more). Returns the number of events deleted; call again while it
  // returns max_rows or more.
  // Consent records are the proof for the events they admitted (StoredEvent::covered_by), so one is deleted only
  // when no stored event names its receipt, and both its own time and that of the newest event it covered (kept as
  // covered_until_ms when retention deletes that event) are older than the cut-off minus the keep period (the
  // project's own, else default_consent_keep_ms).
  virtual base::Result<int64_t> PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows,
                                             int64_t default_consent_keep_ms = 0) = 0;
  // Prunes the downstream outbox: webhook deliveries delivered before cutoff_ms, and entries created before cutoff_ms
  // that every feed consumer acknowledged and that have no delivery left (pending or failed deliveries keep their
  // entry; an entry no consumer acknowledged is never pruned). Returns the rows deleted (entries and deliveries).
  virtual base::Result<int64_t> PruneOutbox(int64_t cutoff_ms) = 0;
};

class Suppressions {
 public:
  virtual ~Suppressions() = default;
  // Whether a subject id hash is on the project's suppression list.
  virtual base::Result<bool> IsSuppressed(int64_t project_id, const std::string& id_hash) = 0;
  // When it was (last) put on the list (epoch ms); 0 when it is not on it.
  virtual base::Result<int64_t> SuppressedSince(int64_t project_id, const std::string& id_hash) = 0;
  // Adds an id hash to the suppression list (erasure does it itself; tests).
  virtual base::Status Suppress(int64_t project_id, const std::string& id_hash) = 0;
};

// Consent enforcement at ingest (issue 12; consent_policy.h): the policies of projects and the records of a person.
class ConsentLedger {
 public:
  virtual ~ConsentLedger() = default;
  // The project's own policy (nullopt: none set, the collector's default applies).
  virtual base::Result<std::optional<ConsentPolicy>> ConsentPolicyOf(int64_t project_id) = 0;
  // Sets a project's policy; false for an unknown project. InvalidArgument for a mode other than "enforce" or
  // "report-only" or a necessary name that is not 1-200 bytes.
  virtual base::Result<bool> SetConsentPolicy(const std::string& project, const ConsentPolicy& policy) = 0;
  // Sets what a denial of `purpose` does to the person's stored events of it in the project (records.h:
  // kWithdrawErase, the default, or kWithdrawRestrict); false for an unknown project. InvalidArgument for another
  // action or a purpose that is not 1-64 bytes.
  virtual base::Result<bool> SetWithdrawalAction(const std::string& project, const std::string& purpose,
                                                 const std::string& action) = 0;
  // The project's own actions per purpose (purposes absent: kWithdrawErase); nullopt for an unknown project.
  virtual base::Result<std::optional<std::map<std::string, std::string>>> WithdrawalActionsOf(
      const std::string& project) = 0;
  // Every consent record of the person the ids name in the project: the identity-graph walk (trusted links only,
  // identity.h) from user_id, else from anonymous_id; and the records under anonymous_id itself.
  virtual base::Result<std::vector<ConsentRecord>> PersonConsent(int64_t project_id, const std::string& user_id,
                                                                 const std::string& anonymous_id) = 0;
  // PersonConsent of each (userId, anonymousId) of `people`, in their order: the same records, read together (the
  // consent gate reads all the devices of a batch at once). The default asks PersonConsent person by person.
  virtual base::Result<std::vector<std::vector<ConsentRecord>>> PeopleConsent(
      int64_t project_id, const std::vector<std::pair<std::string, std::string>>& people) {
    std::vector<std::vector<ConsentRecord>> out;
    for (const auto& person : people) {
      auto records = PersonConsent(project_id, person.first, person.second);
      if (!records.ok()) return records.status();
      out.push_back(std::move(records).value());
    }
    return out;
  }
  // The officers' marks of minors in force in the project (minors.h; issue 12 item 8). Expected to be few.
  virtual base::Result<std::vector<MinorMark>> ActiveMinorMarks(int64_t project_id) = 0;
};

// Restriction of processing and objection (issue 13; records.h RestrictionRecord): what ingest, the insight and the
// copies read. The rights service writes them (in its transactions, through StoreTxn::primitives()).
class Restrictions {
 public:
  virtual ~Restrictions() = default;
  // The rows in force in a project (by id; 0: every project). Expected to be few.
  virtual base::Result<std::vector<RestrictionRecord>> ActiveRestrictions(int64_t project_id) = 0;
  // The same by project name ("" = every project; an unknown project has none).
  virtual base::Result<std::vector<RestrictionRecord>> ActiveRestrictionsOf(const std::string& project) = 0;
  // The project's mode for new events of a restricted purpose: kRestrictQuarantine (also when none is set) or
  // kRestrictRefuse.
  virtual base::Result<std::string> RestrictionModeOf(int64_t project_id) = 0;
  // Sets it; false for an unknown project; InvalidArgument for another mode.
  virtual base::Result<bool> SetRestrictionMode(const std::string& project, const std::string& mode) = 0;
};

// What the ingest gates (collector/ingest/consent_gate.h, restriction_gate.h) read for one batch, read together.
struct IngestGateInput {
  std::optional<ConsentPolicy> consent_policy;         // ConsentLedger::ConsentPolicyOf
  std::vector<MinorMark> minor_marks;                  // ConsentLedger::ActiveMinorMarks
  std::vector<std::vector<ConsentRecord>> people;      // ConsentLedger::PeopleConsent, one list a person
  std::vector<RestrictionRecord> restrictions;         // Restrictions::ActiveRestrictions
  std::string restriction_mode = kRestrictQuarantine;  // Restrictions::RestrictionModeOf
};

class IngestGateSource {
 public:
  virtual ~IngestGateSource() = default;
  // The reads of both ingest gates for one batch of a project whose people (userId, anonymousId) are `people`: what
  // ConsentPolicyOf, ActiveMinorMarks, PeopleConsent(people), ActiveRestrictions and RestrictionModeOf answer, in one
  // read transaction (on PostgreSQL one round trip, plus the identity walk of the people it can take further).
  virtual base::Result<IngestGateInput> ReadIngestGate(
      int64_t project_id, const std::vector<std::pair<std::string, std::string>>& people) = 0;
};

class StoreInspection {
 public:
  virtual ~StoreInspection() = default;
  // A cheap liveness check of the backing storage (GET /healthz); Unavailable when it cannot be reached.
  virtual base::Status Check() = 0;
  // Stored events (debug/tests), in insertion order; project "" means all.
  virtual base::Result<std::vector<EventRow>> DumpEvents(const std::string& project) = 0;
  // The project's device drop counters.
  virtual base::Result<std::map<std::string, int64_t>> DroppedCounters(const std::string& project) = 0;
  // Calls fn(table, column, text) for every non-NULL text value of every column of every table (keys and hashes
  // included). fn returning false stops the scan. For erasure proofs (tests) and audits of what is held.
  virtual base::Status ScanAllText(const TextScanFn& fn) = 0;
  // The engine's checkpoints since it opened (GET /metrics; Engine::Checkpoints).
  virtual Engine::CheckpointStats Checkpoints() { return {}; }
};

class EventFeedSource {
 public:
  virtual ~EventFeedSource() = default;
  // Stored events of every project whose insertion sequence (InsertRequest::seqs) is above after_seq, in sequence
  // order, at most `limit`, with EventRow::seq set. The feed replays from its position with it.
  virtual base::Result<std::vector<EventRow>> EventsAfter(int64_t after_seq, size_t limit) = 0;
  // The ids (userIds and anonymousIds of consent records) of a project whose latest consent record of `purpose`
  // (latest by timestamp, then insertion order) has state `state`.
  virtual base::Result<std::vector<std::string>> IdsWithLatestConsent(const std::string& project,
                                                                      const std::string& purpose,
                                                                      const std::string& state) = 0;
};

class RightsTransactions {
 public:
  virtual ~RightsTransactions() = default;
  // Runs fn in one transaction (TxnMode as in engine.h: kErase for anything that erases) and commits only if fn
  // succeeded. fn may run more than once (a retried deadlock): it must start from scratch and act only through tx.
  virtual base::Status Transact(TxnMode mode, const std::function<base::Status(StoreTxn& tx)>& fn) = 0;
  // Whether one writer holds up the others (Engine::WritersQueue): an erasure then deletes a subject's events in
  // short chunks; otherwise in one transaction beside ingest.
  virtual bool WritersQueue() const { return true; }

  // Transact for a value: fn's result when everything committed.
  template <typename T>
  base::Result<T> TransactFor(TxnMode mode, const std::function<base::Result<T>(StoreTxn& tx)>& fn) {
    std::optional<T> value;
    base::Status s = Transact(mode, [&](StoreTxn& tx) -> base::Status {
      base::Result<T> r = fn(tx);
      if (!r.ok()) return r.status();
      value = std::move(r).value();
      return base::Status::Ok();
    });
    if (!s.ok()) return s;
    return std::move(*value);
  }
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_INTERFACES_H_
