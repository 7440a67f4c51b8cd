// What a storage engine implements: primitive reads and writes, nothing more. Every algorithm on top of them (the
// identity-graph walk, subject summaries, erasure, corrections, the request register's rules, the audit hash chain
// and its verification, tokens and roles, the keyed id hash) is written once above the engines, in store_txn.cc and
// store.cc. A new engine lives in collector/engines/<name>/, implements Engine and EngineTxn, is named in
// collector/engines/open_store.cc, and passes the conformance suite (tests/unit/store_conformance/).
//
// Engines are thread-safe: Engine methods may be called from any thread. An EngineTxn is used by one thread, inside
// the Transact or Export call that made it.
#ifndef FERRY_COLLECTOR_STORE_ENGINE_H_
#define FERRY_COLLECTOR_STORE_ENGINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collector/store/id_hash.h"
#include "collector/store/minors.h"
#include "collector/store/records.h"
#include "lib/base/status.h"

namespace ferry::collector {

struct ProjectRef {
  int64_t id = 0;
  std::string name;
};

// One row of identity_links (records.h); `followed` is left false by the engine.
using LinkRow = IdentityLink;

// What an erasure deletes of a set of ids (EngineTxn::DeleteSubjectRows).
enum class EraseScope {
  kFollowingLinks,  // a subject: events and consent records by userId or anonymousId, links from or to the ids
  kAnonymousIds,    // anonymousIds: events and consent records by anonymousId, links from the ids
  kDeviceOwn,       // a device's own anonymousIds (POST /v1/forget): as kAnonymousIds, but never a row that also
                    // carries a userId
};

// Events of one type among a subject's ids. An engine may give several rows for one type (one per id, say); the
// caller adds them up.
struct TypeCountRow {
  std::string type;
  int64_t count = 0, first_ms = 0, last_ms = 0;
};

// What a subject summary is made of (EngineTxn::ReadSubject).
struct SubjectRows {
  std::vector<TypeCountRow> counts;   // events by userId in ids, and by anonymousId in ids not already counted
  std::vector<ConsentState> consent;  // every consent record of the ids, by timestamp then insertion order
  // (key, JSON value) of every trait held under one of the ids: the userId's last, otherwise oldest first, so that
  // applying them in order gives the subject's traits.
  std::vector<std::pair<std::string, std::string>> traits;
};

// An admin token as stored (roles in their stored form, see roles.h).
struct AdminTokenRow {
  int64_t id = 0;
  std::string name, prefix, roles;
  int64_t created_ms = 0, revoked_ms = 0, expires_ms = 0;
};

// The last entry of the audit hash chain.
struct AuditTip {
  int64_t seq = 0;
  std::string hash;
};

enum class TxnMode {
  // reads; each may see the latest committed data
  kRead,
  // reads that see one consistent state of the store
  kSnapshot,
  // reads and writes, committed together or not at all
  kWrite,
  // kWrite that deletes a subject: no ingest transaction runs beside it (so a batch either lands before and is erased,
  // or starts after and meets the suppression list), and the engine scrubs what the deleted rows left behind (e.g.
  // SQLite's write-ahead log) once it committed
  kErase,
  // kErase without the scrub, for one of many erasures in a row (a bulk erasure): the caller runs an empty kErase
  // transaction after the last one, which scrubs once for all of them; also the short first transaction of a
  // kEraseSuppressed erasure
  kEraseMany,
  // kErase of a subject whose ids an earlier kEraseMany transaction suppressed, with its request registered
  // in_progress: batches naming them are dropped from then on, so ingest runs beside it; the engine scrubs once it
  // committed, as after kErase
  kEraseSuppressed,
  // kWrite that deletes one chunk of a subject's events ahead of its erasure (the kErase transaction that follows
  // deletes the rest): ingest runs beside it, and an engine whose writers take turns lets a waiting ingest batch go
  // first, so a large erasure never holds ingest up for more than one chunk
  kEraseChunk,
};

// What the ingest gates read of a project and a batch (EngineTxn::IngestGateRows).
struct GateRows {
  std::optional<std::pair<std::string, std::string>> consent_policy;  // ConsentPolicyRow
  std::vector<MinorMark> minor_marks;                                 // MinorMarksOf, in force only
  std::vector<std::string> ids_to_walk;                               // IdsToWalk of the starting ids
  std::vector<ConsentRecord> consent_records;                         // ConsentRecordsOf the ids
  std::vector<RestrictionRecord> restrictions;                        // RestrictionsOf, in force only
  std::string restriction_mode;                                       // RestrictionMode
};

// Primitive reads and writes inside one transaction. Hashes (key_hash, token_hash) are raw 32-byte digests; the
// engine stores them as it likes. "ids" are subject ids (userIds, anonymousIds, previousIds) of one project.
class EngineTxn {
 public:
  virtual ~EngineTxn() = default;

  // ---- Projects and credentials ----
  // Projects named `name` ("" = all), by id.
  virtual base::Result<std::vector<ProjectRef>> Projects(const std::string& name) = 0;
  // The project's name, "" for an unknown id.
  virtual base::Result<std::string> ProjectName(int64_t project_id) = 0;
  // Creates the project unless it exists.
  virtual base::Status EnsureProject(const std::string& name, int64_t now_ms) = 0;
  // kind: "write" or "server" (WriteKeyInfo).
  virtual base::Status InsertWriteKey(const std::string& project, const std::string& key_hash,
                                      const std::string& prefix, const std::string& kind, int64_t now_ms) = 0;
  // The project (and kind, prefix, expiry) of a write or server key that is not revoked; the caller compares the
  // expiry with its time.
  virtual base::Result<std::optional<WriteKeyInfo>> FindWriteKey(const std::string& key_hash) = 0;
  // Every write key, revoked ones too, by id.
  virtual base::Result<std::vector<WriteKeyRecord>> WriteKeys() = 0;
  // Revokes a key that is not revoked; false when there is none with that id.
  virtual base::Result<bool> RevokeWriteKey(int64_t id, int64_t now_ms) = 0;
  // Sets (0: clears) the expiry of a write key or admin token that is not revoked; false when there is none.
  virtual base::Result<bool> SetWriteKeyExpiry(int64_t id, int64_t expires_ms) = 0;
  virtual base::Result<bool> SetAdminTokenExpiry(int64_t id, int64_t expires_ms) = 0;
  virtual base::Status InsertAdminToken(const AdminTokenRow& row, const std::string& token_hash) = 0;
  // A token that is not revoked.
  virtual base::Result<std::optional<AdminTokenRow>> FindAdminToken(const std::string& token_hash) = 0;
  virtual base::Result<std::vector<AdminTokenRow>> AdminTokens() = 0;
  // Revokes a valid token; false when no valid token has that id.
  virtual base::Result<bool> RevokeAdminToken(int64_t id, int64_t now_ms) = 0;

  // ---- The identity graph ----
  // The links out of `from_id`, oldest first (first_seen_ms, then insertion order), whatever their state.
  virtual base::Result<std::vector<LinkRow>> LinksFrom(int64_t project_id, const std::string& from_id) = 0;
  // Whether `id` is held as a userId: on an event or as a link's target, or (consent_too) on a consent record.
  virtual base::Result<bool> HeldAsUserId(int64_t project_id, const std::string& id, bool consent_too) = 0;
  // A userId seen on an event together with this anonymousId ("" when none).
  virtual base::Result<std::string> UserSeenWithAnonymousId(int64_t project_id, const std::string& anonymous_id) = 0;
  // Whether anything is held under `id` as an anonymousId: events, consent records or traits (events_only: an
  // event).
  virtual base::Result<bool> HeldAsAnonymousId(int64_t project_id, const std::string& id, bool events_only) = 0;
  // The links into a userId, oldest first (first_seen_ms, then insertion order), whatever their state.
  virtual base::Result<std::vector<LinkRow>> LinksTo(int64_t project_id, const std::string& user_id) = 0;
  // The distinct anonymousIds on the userId's events, then those on its consent records (repeats allowed).
  virtual base::Result<std::vector<std::string>> AnonymousIdsSeenWith(int64_t project_id,
                                                                      const std::string& user_id) = 0;
  // Of `ids`, those the identity-graph walk (StoreTxn::Resolve) may take beyond themselves: the source of a link,
  // held as a userId (HeldAsUserId with consent_too), or an anonymousId seen on an event with a userId. For any other
  // id the walk finds at most the id itself. An engine that cannot answer for many ids at once (in one query) keeps
  // this default: every id, so that each is walked.
  virtual base::Result<std::vector<std::string>> IdsToWalk(int64_t /*project_id*/,
                                                           const std::vector<std::string>& ids) {
    return ids;
  }
  // The rows the ingest gates read for one batch (Store::ReadIngestGate): the project's consent policy row, its minor
  // marks and restrictions in force, its restriction mode, IdsToWalk(starts) and ConsentRecordsOf(ids) (each skipped
  // when its list is empty). The default asks the primitives one after another; an engine may read them in one
  // round trip.
  virtual base::Status IngestGateRows(int64_t project_id, const std::vector<std::string>& starts,
                                      const std::vector<std::string>& ids, GateRows* out);
  // One link by its id (any project), nullopt when unknown.
  virtual base::Result<std::optional<LinkRow>> GetLink(int64_t link_id) = 0;
  // An officer's confirmation: state "active", confirmed_by, confirmed_ms; only for a link not confirmed yet.
  // Whether it changed.
  virtual base::Result<bool> ConfirmLink(int64_t link_id, const std::string& confirmed_by, int64_t now_ms) = 0;

  // ---- A subject's rows ----
  virtual base::Status ReadSubject(int64_t project_id, const std::vector<std::string>& ids, const std::string& user_id,
                                   SubjectRows* out) = 0;
  // Deletes the rows of `ids` as `scope` says (EraseScope), and the traits kept under them, adding the counts to
  // (*erased)["events"], ["consent_ledger"], ["identity_links"] and ["traits"].
  virtual base::Status DeleteSubjectRows(int64_t project_id, const std::vector<std::string>& ids, EraseScope scope,
                                         std::map<std::string, int64_t>* erased) = 0;
  // Deletes every event held under one of `ids` (as userId or anonymousId); how many. An erasure's events in one
  // go, where writers run side by side (Engine::WritersQueue false) and chunks would gain nothing.
  virtual base::Result<int64_t> DeleteEventsOf(int64_t project_id, const std::vector<std::string>& ids) = 0;
  // The row ids of the events held under one of `ids` (as userId or anonymousId), ascending: the list an erasure
  // deletes in chunks (DeleteEventRows), in the order the rows lie in the table, so that each page of the table and
  // of the time index is written by one chunk, not by one chunk per id.
  virtual base::Result<std::vector<int64_t>> EventRowsOf(int64_t project_id, const std::vector<std::string>& ids) = 0;
  // Deletes the events of `rows` (row ids from EventRowsOf) that are still held under one of `ids`; how many. A row
  // id no longer there, or by now another event's, is left alone.
  virtual base::Result<int64_t> DeleteEventRows(int64_t project_id, const std::vector<std::string>& ids,
                                                const std::vector<int64_t>& rows) = 0;
  // Removes trait `key` from every id in `ids`.
  virtual base::Status DeleteTrait(int64_t project_id, const std::vector<std::string>& ids, const std::string& key) = 0;
  // Sets trait `key` (value as JSON text) of `holder`.
  // (row id, body) of the project's identify events held under one of `ids` (as userId or anonymousId), each once, by
  // row id; and a row's body replaced (a rectification reaching the stored events).
  virtual base::Result<std::vector<std::pair<int64_t, std::string>>> IdentifyBodies(
      int64_t project_id, const std::vector<std::string>& ids) = 0;
  virtual base::Status SetEventBody(int64_t project_id, int64_t row_id, const std::string& body) = 0;
  virtual base::Status PutTrait(int64_t project_id, const std::string& holder, const std::string& key,
                                const std::string& value_json, int64_t now_ms) = 0;

  // ---- The suppression list ----
  // Adds the hashes, or moves the time of those already there to now_ms (a second erasure suppresses what was
  // collected before it: readmission.h); returns how many were not there yet.
  virtual base::Result<int64_t> Suppress(int64_t project_id, const std::vector<std::string>& id_hashes,
                                         int64_t now_ms) = 0;
  virtual base::Result<bool> IsSuppressed(int64_t project_id, const std::string& id_hash) = 0;
  // When the hash was (last) put on the list; 0 when it is not on it.
  virtual base::Result<int64_t> SuppressedSince(int64_t project_id, const std::string& id_hash) = 0;

  // ---- The request register ----
  virtual base::Status InsertRequest(const RightsRequest& r) = 0;  // AlreadyExists when the id is taken
  virtual base::Result<std::optional<RightsRequest>> GetRequest(const std::string& id) = 0;
  // Sets state, acted_by, acted_ms and result if the request is in `expected_state`; whether it was.
  virtual base::Result<bool> UpdateRequestIf(const std::string& id, const std::string& expected_state,
                                             const std::string& new_state, const std::string& acted_by,
                                             int64_t acted_ms, const std::string& result) = 0;
  // The oldest request of a device (source "device") of this kind and state, for this project and subject hash:
  // repeated forgets of one id fold into it.
  virtual base::Result<std::optional<RightsRequest>> FindDeviceRequest(const std::string& kind,
                                                                       const std::string& project,
                                                                       const std::string& subject_hash,
                                                                       const std::string& state) = 0;
  // Matching requests, oldest first (received_ms, then id).
  virtual base::Result<std::vector<RightsRequest>> ListRequests(const RequestFilter& filter) = 0;
  // Sets due_ms if the request is in `expected_state`; whether it was (an extension).
  virtual base::Result<bool> SetRequestDueIf(const std::string& id, const std::string& expected_state,
                                             int64_t due_ms) = 0;
  // The due-date policy of a project's requests ("" = none set; project "" holds the collector-wide one).
  virtual base::Result<std::string> GetRequestPolicy(const std::string& project) = 0;
  // Sets it ("" removes it).
  virtual base::Status SetRequestPolicy(const std::string& project, const std::string& policy) = 0;
  // Rows whose subject is ids[i] and subject_hash hashes[i] get subject "hash:" + subject_hash; returns the count.
  virtual base::Result<int64_t> RedactRequests(const std::vector<std::string>& ids,
                                               const std::vector<std::string>& hashes) = 0;

  // ---- The audit log ----
  // The chain's last entry (nullopt when empty). Keeps every other appender, in any process, out until this
  // transaction ends, so that two appends never extend the same tip.
  virtual base::Result<std::optional<AuditTip>> LockAuditTip() = 0;
  virtual base::Status InsertAudit(const AuditEntry& e) = 0;
  // Entries with seq > after_seq ("" subject_hash: any), oldest first, at most `limit`.
  virtual base::Result<std::vector<AuditEntry>> ListAudit(int64_t after_seq, size_t limit,
                                                          const std::string& subject_hash) = 0;

  // ---- Consent (issue 12) ----
  // Every consent record held under one of `ids` (as its userId or its anonymousId) in the project, each once.
  virtual base::Result<std::vector<ConsentRecord>> ConsentRecordsOf(int64_t project_id,
                                                                    const std::vector<std::string>& ids) = 0;
  // The project's consent policy as stored: (mode, the necessary names as a JSON array text); nullopt when none.
  virtual base::Result<std::optional<std::pair<std::string, std::string>>> ConsentPolicyRow(int64_t project_id) = 0;
  virtual base::Status SetConsentPolicyRow(int64_t project_id, const std::string& mode,
                                           const std::string& necessary_json) = 0;

  // ---- Restrictions and objections (records.h RestrictionRecord) ----
  // Stores one (id made by the engine).
  virtual base::Status InsertRestriction(const RestrictionRecord& r) = 0;
  // Sets lifted_ms on the rows of the request still in force; returns how many.
  virtual base::Result<int64_t> LiftRestrictions(const std::string& request_id, int64_t lifted_ms) = 0;
  // The rows of a project (project_id 0: every project), only those in force when `active_only`, by id; `project`
  // filled in.
  virtual base::Result<std::vector<RestrictionRecord>> RestrictionsOf(int64_t project_id, bool active_only) = 0;
  // Deletes every row (in force or lifted) of the ids in the project (an erasure); returns how many.
  virtual base::Result<int64_t> DeleteRestrictions(int64_t project_id, const std::vector<std::string>& ids) = 0;
  // The project's restriction mode (kRestrictQuarantine, kRestrictRefuse); "" when none is set.
  virtual base::Result<std::string> RestrictionMode(int64_t project_id) = 0;
  virtual base::Status SetRestrictionMode(int64_t project_id, const std::string& mode) = 0;

  // ---- Withdrawal acting on stored data (records.h PendingWithdrawal) ----
  // Denials not carried out yet, oldest first, at most `limit`, each with its project's action for the purpose
  // (kWithdrawErase when none is set).
  virtual base::Result<std::vector<PendingWithdrawal>> PendingWithdrawals(size_t limit) = 0;
  // Marks a queued denial done (with the register entry that carried it out, "" when none); false when it was
  // already done (another process took it).
  virtual base::Result<bool> FinishWithdrawal(int64_t id, const std::string& request_id, int64_t now_ms) = 0;
  // Deletes (erase) or counts (!erase) the project's events of `purpose` held under one of `ids` (as userId or
  // anonymousId); returns how many.
  virtual base::Result<int64_t> EventsOfPurpose(int64_t project_id, const std::vector<std::string>& ids,
                                                const std::string& purpose, bool erase) = 0;
  // The project's action per purpose (purposes without one are absent).
  virtual base::Result<std::map<std::string, std::string>> WithdrawalActions(int64_t project_id) = 0;
  virtual base::Status SetWithdrawalAction(int64_t project_id, const std::string& purpose,
                                           const std::string& action) = 0;
  // ---- Consent statistics (issue 12 item 9) ----
  // The project's consent records whose time is in [from_ms, to_ms), by time then insertion order.
  virtual base::Result<std::vector<ConsentRecord>> ConsentBetween(int64_t project_id, int64_t from_ms,
                                                                  int64_t to_ms) = 0;
  // ---- Minors marked by an officer (minors.h MinorMark; issue 12 item 8) ----
  // Stores one (id made by the engine).
  virtual base::Status InsertMinorMark(const MinorMark& m) = 0;
  // The marks of a project (project_id 0: every project), only those in force when `active_only`, by id; `project`
  // filled in.
  virtual base::Result<std::vector<MinorMark>> MinorMarksOf(int64_t project_id, bool active_only) = 0;
  // Lifts the marks in force on `ids` in the project (lifted_ms, lifted_by); returns how many.
  virtual base::Result<int64_t> LiftMinorMarks(int64_t project_id, const std::vector<std::string>& ids,
                                               int64_t lifted_ms, const std::string& by) = 0;
  // Deletes every mark (in force or lifted) of the ids in the project (an erasure); returns how many.
  virtual base::Result<int64_t> DeleteMinorMarks(int64_t project_id, const std::vector<std::string>& ids) = 0;

  // ---- Settings and inspection ----
  // Sets (max_age_ms > 0) or clears (0) a project's maximum event age.
  virtual base::Status SetMaxEventAge(int64_t project_id, int64_t max_age_ms) = 0;
  // Sets (keep_ms >= 0) or clears (< 0: the collector's default applies) how long a project keeps consent records
  // beyond the events they cover.
  virtual base::Status SetConsentKeep(int64_t project_id, int64_t keep_ms) = 0;
  // project name -> its own maximum event age.
  virtual base::Result<std::map<std::string, int64_t>> MaxEventAges() = 0;
  // Stored events in insertion order (project "" = all).
  virtual base::Result<std::vector<EventRow>> DumpEvents(const std::string& project) = 0;
  virtual base::Result<std::map<std::string, int64_t>> DroppedCounters(const std::string& project) = 0;

  // ---- The purpose and processing registry ----
  // The project's registry document (JSON text) and when it was last written; nullopt when it has none.
  virtual base::Result<std::optional<std::pair<std::string, int64_t>>> GetRegistry(int64_t project_id) = 0;
  // Replaces the project's registry document and the retention of its purposes (purpose -> maximum event age;
  // purposes absent have none of their own).
  virtual base::Status PutRegistry(int64_t project_id, const std::string& document,
                                   const std::map<std::string, int64_t>& purpose_max_age_ms, int64_t now_ms) = 0;

  // ---- The insight feed (EventFeedSource, interfaces.h) ----
  // Stored events (every project) whose insertion sequence is above after_seq, in sequence order, at most limit;
  // EventRow::seq set.
  virtual base::Result<std::vector<EventRow>> EventsAfter(int64_t after_seq, size_t limit) = 0;
  // The consent records of one purpose in a project (purpose, state, user_id, anonymous_id, timestamp_ms set), by
  // timestamp then insertion order.
  virtual base::Result<std::vector<ConsentRecord>> ConsentOfPurpose(const std::string& project,
                                                                    const std::string& purpose) = 0;
  // ---- The downstream outbox ----
  // Appends an entry (its seq is made here and returned) with a pending delivery, due at once, per destination.
  virtual base::Result<int64_t> InsertOutbox(const OutboxEntry& e, const std::vector<std::string>& destinations) = 0;
  // Entries with seq > after_seq, by seq, at most `limit`.
  virtual base::Result<std::vector<OutboxEntry>> ListOutbox(int64_t after_seq, size_t limit) = 0;
  // Pending deliveries due at now_ms (next_ms <= now_ms), oldest first, with their entries.
  virtual base::Result<std::vector<std::pair<OutboxEntry, OutboxDelivery>>> DueDeliveries(int64_t now_ms,
                                                                                          size_t limit) = 0;
  // Writes a delivery's state, attempts, next_ms, last_status, last_error and delivered_ms.
  virtual base::Status UpdateDelivery(const OutboxDelivery& d) = 0;
  // The deliveries of the entries of one request, by seq then destination.
  virtual base::Result<std::vector<OutboxDelivery>> DeliveriesOf(const std::string& request_id) = 0;
  // Records that `consumer` has read the feed up to `seq` (never moves back).
  virtual base::Status AckOutbox(const std::string& consumer, int64_t seq, int64_t now_ms) = 0;
  // consumer -> the last seq it acknowledged.
  virtual base::Result<std::map<std::string, int64_t>> OutboxAcks() = 0;
  // Prunes what downstream has taken (RetentionStore::PruneOutbox): deliveries delivered before cutoff_ms, then the
  // entries created before cutoff_ms that every feed consumer acknowledged (none is acknowledged while no consumer
  // ever acknowledged anything) and that have no delivery left. Returns the rows deleted.
  virtual base::Result<int64_t> PruneOutbox(int64_t cutoff_ms) = 0;
  // A 32-byte secret of this database named `name` (64 hex characters): made once, at random, and kept.
  virtual base::Result<std::string> Secret(const std::string& name) = 0;
  // Verification codes (records.h): a new one (codes expired before `prune_before_ms` are deleted first);
  // AlreadyExists when the hash is taken.
  virtual base::Status InsertVerificationCode(const VerificationCodeRow& row, int64_t prune_before_ms) = 0;
  virtual base::Result<std::optional<VerificationCodeRow>> GetVerificationCode(const std::string& code_hash) = 0;
  // Marks the code used at `now_ms` unless it already was: whether this call spent it.
  virtual base::Result<bool> SpendVerificationCode(const std::string& code_hash, int64_t now_ms) = 0;
  // Names the subject of a request filed without one (public intake): whether the request had none and now has it.
  virtual base::Result<bool> BindRequestSubject(const std::string& id, const std::string& subject,
                                                const std::string& subject_hash) = 0;
};

// Receives the rows of a subject during an export (ExportCursor::StreamRows). false stops the stream.
class RowSink {
 public:
  virtual ~RowSink() = default;
  virtual bool Consent(const ConsentRecord& record) = 0;
  virtual bool Event(const EventRow& event) = 0;
};

// Given by Engine::Export to its callback.
class ExportCursor {
 public:
  virtual ~ExportCursor() = default;
  // Runs fn (which calls a visitor, which may block) with no engine lock held. The transaction's EngineTxn must not
  // be used inside fn.
  virtual bool Unlocked(const std::function<bool()>& fn) = 0;
  // Streams the consent records (insertion order) and then the events (insertion order) held under `ids` in one
  // project, a page at a time, calling `sink` with no engine lock held; memory does not grow with the number of
  // rows. Each row once. Closed when the sink stopped.
  virtual base::Status StreamRows(int64_t project_id, const std::string& project, const std::vector<std::string>& ids,
                                  RowSink& sink) = 0;
};

using TextScanFn = std::function<bool(std::string_view table, std::string_view column, std::string_view text)>;

class Engine {
 public:
  virtual ~Engine() = default;
  // Whether write transactions run one at a time (the embedded store's one writer), so that a long one holds up
  // ingest; false where they run side by side (PostgreSQL's row locks).
  virtual bool WritersQueue() const { return true; }

  // The keyed id hash of this database (its key is made once per database and kept in it).
  virtual const IdHasher& id_hasher() const = 0;

  // A cheap liveness check (GET /healthz). Unavailable when the database cannot be reached.
  virtual base::Status Check() = 0;

  // Runs fn in one transaction of the given mode and commits if fn succeeded, else rolls back. fn may be run more
  // than once (after a deadlock or a serialisation failure, or on a fresh connection when a pooled one was stale):
  // it must start from scratch each time and touch nothing outside the transaction.
  virtual base::Status Transact(TxnMode mode, const std::function<base::Status(EngineTxn&)>& fn) = 0;

  // Runs fn once in a kSnapshot transaction that can also stream a subject's rows (an export). fn is not run again.
  virtual base::Status Export(const std::function<base::Status(EngineTxn&, ExportCursor&)>& fn) = 0;

  // Ingest (group commit): see IngestSink::Insert (interfaces.h).
  virtual base::Status Insert(std::vector<InsertRequest*>& requests) = 0;
  // See IngestSink::Prepare: on the submitting thread, outside any transaction.
  virtual void PrepareInsert(InsertRequest* /*request*/) {}

  // Retention: see RetentionStore::PurgeExpired (interfaces.h).
  virtual base::Result<int64_t> PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows,
                                             int64_t default_consent_keep_ms) = 0;

  // Calls fn(table, column, text) for every non-NULL text value of every column of every table.
  virtual base::Status ScanAllText(const TextScanFn& fn) = 0;

  // The copies of the write-ahead log into the database file since the engine opened (GET /metrics), by who made
  // them: a thread of the engine's own beside the writer, or the writer between two of its transactions when that
  // thread fell behind (a batch waits for those). Their disk writes and flushes share the disk with the commits'.
  struct CheckpointStats {
    bool reported = false;  // false: the engine does not checkpoint itself (PostgreSQL reports its own)
    int64_t background = 0;
    double background_seconds = 0;
    int64_t writer = 0;
    double writer_seconds = 0;
  };
  virtual CheckpointStats Checkpoints() const { return {}; }
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_ENGINE_H_
