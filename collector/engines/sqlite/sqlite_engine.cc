// The embedded engine: opening and migrating the database, transactions, ingest, retention, scans; and the
// SqliteStore parts that need it.
#include "collector/engines/sqlite/sqlite_engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/engines/sqlite/body_codec.h"
#include "collector/engines/sqlite/sqlite_store.h"
#include "collector/store/identity.h"
#include "collector/store/readmission.h"
#include "lib/base/sqlite_rows.h"

namespace ferry::collector {

using base::Result;
using base::SecretBytes;
using base::Status;

namespace sqlite {

namespace {

// Migrations: index i takes the schema from version i to i+1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE projects(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL);
CREATE TABLE write_keys(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id), key_hash BLOB NOT NULL UNIQUE,
  prefix TEXT NOT NULL, created_ms INTEGER NOT NULL, revoked_ms INTEGER);
CREATE TABLE events(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, message_id TEXT NOT NULL, type TEXT NOT NULL,
  user_id TEXT, anonymous_id TEXT, name TEXT, purpose TEXT, timestamp_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL, body TEXT NOT NULL, UNIQUE(project_id, message_id));
CREATE INDEX events_by_user ON events(project_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX events_by_anon ON events(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL;
CREATE TABLE consent_ledger(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, message_id TEXT NOT NULL, user_id TEXT, anonymous_id TEXT,
  purpose TEXT NOT NULL, state TEXT NOT NULL, previous TEXT, timestamp_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL);
CREATE INDEX consent_by_user ON consent_ledger(project_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX consent_by_anon ON consent_ledger(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL;
CREATE TABLE identity_links(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, from_kind TEXT NOT NULL, from_id TEXT NOT NULL,
  user_id TEXT NOT NULL, source TEXT NOT NULL, first_seen_ms INTEGER NOT NULL,
  UNIQUE(project_id, from_kind, from_id, user_id));
CREATE INDEX identity_by_user ON identity_links(project_id, user_id);
CREATE TABLE suppressions(
  project_id INTEGER NOT NULL, id_hash TEXT NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY(project_id, id_hash)) WITHOUT ROWID;
CREATE TABLE dropped_counters(
  project_id INTEGER NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY(project_id, reason))
  WITHOUT ROWID;
)sql",
    // 2: data-subject rights.
    R"sql(
ALTER TABLE consent_ledger ADD COLUMN device TEXT;
CREATE INDEX identity_by_from ON identity_links(project_id, from_id);
CREATE INDEX events_by_time ON events(project_id, timestamp_ms);
CREATE TABLE traits(
  project_id INTEGER NOT NULL, subject_id TEXT NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL,
  updated_ms INTEGER NOT NULL, PRIMARY KEY(project_id, subject_id, k)) WITHOUT ROWID;
CREATE TABLE requests(
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, project TEXT NOT NULL, subject TEXT NOT NULL,
  subject_hash TEXT NOT NULL, state TEXT NOT NULL, source TEXT NOT NULL, received_ms INTEGER NOT NULL,
  due_ms INTEGER NOT NULL, acted_by TEXT NOT NULL, acted_ms INTEGER NOT NULL, result TEXT NOT NULL);
CREATE INDEX requests_by_subject ON requests(subject_hash);
CREATE INDEX requests_by_due ON requests(state, due_ms);
CREATE TABLE audit_log(
  seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
  action TEXT NOT NULL, subject_hash TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL,
  prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX audit_by_subject ON audit_log(subject_hash, seq);
CREATE TABLE admin_tokens(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE, prefix TEXT NOT NULL,
  roles TEXT NOT NULL, created_ms INTEGER NOT NULL, revoked_ms INTEGER);
CREATE TABLE project_settings(project_id INTEGER PRIMARY KEY, max_event_age_ms INTEGER NOT NULL);
)sql",
    // 3: identity links carry their provenance and a state (collector/store/identity.h); server keys. Links made
    // before this are of unknown provenance: the walk treats them as a write key's.
    R"sql(
ALTER TABLE identity_links ADD COLUMN credential TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE identity_links ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE identity_links ADD COLUMN via_message_id TEXT NOT NULL DEFAULT '';
ALTER TABLE identity_links ADD COLUMN via_anonymous_id TEXT NOT NULL DEFAULT '';
ALTER TABLE identity_links ADD COLUMN asserted_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE identity_links ADD COLUMN state TEXT NOT NULL DEFAULT 'active';
ALTER TABLE identity_links ADD COLUMN confirmed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE identity_links ADD COLUMN confirmed_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE write_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'write';
)sql",
    // 4: credential expiry (write keys and admin tokens; NULL: none).
    R"sql(
ALTER TABLE write_keys ADD COLUMN expires_ms INTEGER;
ALTER TABLE admin_tokens ADD COLUMN expires_ms INTEGER;
)sql",
    // 5: consent records carry how they were collected and their receipt (issue 12).
    R"sql(
ALTER TABLE consent_ledger ADD COLUMN method TEXT;
ALTER TABLE consent_ledger ADD COLUMN notice_id TEXT;
ALTER TABLE consent_ledger ADD COLUMN notice_version TEXT;
ALTER TABLE consent_ledger ADD COLUMN language TEXT;
ALTER TABLE consent_ledger ADD COLUMN device_seq INTEGER;
ALTER TABLE consent_ledger ADD COLUMN receipt_id TEXT;
CREATE INDEX consent_by_receipt ON consent_ledger(project_id, receipt_id) WHERE receipt_id IS NOT NULL;
)sql",
    // 6: the purpose and processing registry (issue 13): one JSON document per project, and the retention of each
    // purpose that has one (the retention job reads it).
    R"sql(
CREATE TABLE IF NOT EXISTS processing_registry(
  project_id INTEGER PRIMARY KEY, document TEXT NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS purpose_retention(
  project_id INTEGER NOT NULL, purpose TEXT NOT NULL, max_age_ms INTEGER NOT NULL, PRIMARY KEY(project_id, purpose))
  WITHOUT ROWID;
)sql",
    // 7: consent enforcement per project (issue 12): its mode and the event names allowed under "necessary". The
    // projects that exist when it is added keep storing as before (report-only); a later one takes the collector's
    // --consent-default.
    R"sql(
CREATE TABLE IF NOT EXISTS consent_policy(project_id INTEGER PRIMARY KEY, mode TEXT NOT NULL, necessary TEXT NOT NULL);
INSERT OR IGNORE INTO consent_policy(project_id, mode, necessary) SELECT id, 'report-only', '[]' FROM projects;
)sql",
    // 8: restriction of processing and objection (issue 13): one row per id of a restricted subject and request
    // (purposes: a comma-separated list, "" = every purpose; lifted_ms 0 while in force), and each project's
    // restriction mode (quarantine or refuse; none set: quarantine).
    R"sql(
CREATE TABLE IF NOT EXISTS restrictions(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, subject_id TEXT NOT NULL, kind TEXT NOT NULL,
  purposes TEXT NOT NULL, request_id TEXT NOT NULL, since_ms INTEGER NOT NULL, lifted_ms INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS restrictions_by_project ON restrictions(project_id, lifted_ms);
CREATE INDEX IF NOT EXISTS restrictions_by_request ON restrictions(request_id);
CREATE TABLE IF NOT EXISTS restriction_mode(project_id INTEGER PRIMARY KEY, mode TEXT NOT NULL);
)sql",
    // 9: the downstream outbox (issue 13): changes for downstream systems, their webhook deliveries, the feed's
    // consumers, and named secrets (the outbox's sealing and signing keys).
    R"sql(
CREATE TABLE IF NOT EXISTS outbox(
  seq INTEGER PRIMARY KEY, project TEXT NOT NULL, kind TEXT NOT NULL, request_id TEXT NOT NULL, body TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_by_request ON outbox(request_id);
CREATE TABLE IF NOT EXISTS outbox_deliveries(
  seq INTEGER NOT NULL, destination TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
  next_ms INTEGER NOT NULL, last_status INTEGER NOT NULL, last_error TEXT NOT NULL, delivered_ms INTEGER NOT NULL,
  PRIMARY KEY(seq, destination)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_due ON outbox_deliveries(state, next_ms);
CREATE TABLE IF NOT EXISTS outbox_consumers(consumer TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS secrets(name TEXT PRIMARY KEY, v TEXT NOT NULL);
)sql",
    // 10: proof outlives what it covers (issue 12): each event keeps the receipt of the consent record that admitted
    // it; a consent record remembers the newest event it covered that retention deleted (covered_until_ms), and a
    // project may keep consent records longer than that (consent_retention.keep_ms; else --consent-keep-days).
    R"sql(
ALTER TABLE events ADD COLUMN consent_receipt TEXT;
CREATE INDEX events_by_receipt ON events(project_id, consent_receipt) WHERE consent_receipt IS NOT NULL;
ALTER TABLE consent_ledger ADD COLUMN covered_until_ms INTEGER;
CREATE TABLE IF NOT EXISTS consent_retention(project_id INTEGER PRIMARY KEY, keep_ms INTEGER NOT NULL);
)sql",
    // 11: the due-date policy of each project's requests (issue 13): gdpr, pipl or days:N, by project name ("": all).
    R"sql(
CREATE TABLE IF NOT EXISTS request_policies(project TEXT PRIMARY KEY, policy TEXT NOT NULL);
)sql",
    // 12: public intake (issue 13 item 3): the short-lived verification codes an app shows its user, by hash.
    R"sql(
CREATE TABLE IF NOT EXISTS verification_codes(code_hash TEXT PRIMARY KEY, project TEXT NOT NULL, subject TEXT NOT NULL,
  created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, used_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS verification_codes_by_expiry ON verification_codes(expires_ms);
)sql",
    // 13: withdrawal acts on stored data (issue 12 item 6): per project and purpose, erase or restrict the person's
    // stored events of a purpose they deny; each denial is queued by ingest in its own transaction and carried out
    // by the withdrawal job (done_ms 0 while waiting).
    R"sql(
CREATE TABLE IF NOT EXISTS withdrawal_policy(project_id INTEGER NOT NULL, purpose TEXT NOT NULL, action TEXT NOT NULL,
  PRIMARY KEY(project_id, purpose));
CREATE TABLE IF NOT EXISTS withdrawal_queue(id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL,
  user_id TEXT, anonymous_id TEXT, purpose TEXT NOT NULL, previous TEXT, receipt_id TEXT,
  denied_ms INTEGER NOT NULL, done_ms INTEGER NOT NULL, request_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS withdrawal_waiting ON withdrawal_queue(done_ms, id);
)sql",
    // 14: ingest's consent gate resolves each batch's device (issue 16): "the userId an anonymousId was seen with" is
    // read from the events that carry both (usually few), not by visiting every event of the anonymousId (a device's
    // whole history, once per batch). Same rowid order within an anonymousId as events_by_anon.
    R"sql(
CREATE INDEX IF NOT EXISTS events_anon_with_user ON events(project_id, anonymous_id)
  WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL;
)sql",
    // 15: minors (issue 12 item 8): a consent record keeps the device's `minor` (1, 0; NULL when not sent), and an
    // officer's mark is kept per id of the subject (lifted_ms 0 while in force).
    R"sql(
ALTER TABLE consent_ledger ADD COLUMN minor INTEGER;
CREATE TABLE IF NOT EXISTS minor_marks(id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, subject_id TEXT NOT NULL,
  marked_by TEXT NOT NULL, since_ms INTEGER NOT NULL, lifted_ms INTEGER NOT NULL DEFAULT 0,
  lifted_by TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS minor_marks_by_project ON minor_marks(project_id, lifted_ms);
CREATE INDEX IF NOT EXISTS minor_marks_by_subject ON minor_marks(project_id, subject_id);
)sql",
    // 16: the user index also holds each event's anonymousId, so the identity walk (the devices seen with a userId,
    // AnonymousIdsSeenWith) reads the index alone instead of every event of the user: 10,000 events of one person
    // were ~0.3 s of page reads spread through the table, now a few contiguous index pages. Same entries, same
    // writes at ingest.
    R"sql(
DROP INDEX IF EXISTS events_by_user;
CREATE INDEX events_by_user ON events(project_id, user_id, anonymous_id) WHERE user_id IS NOT NULL;
)sql",
    // 17: the dedup keys leave the events table for event_ids, as on PostgreSQL (issue 13). An erasure deleted each
    // row's entry in the (project_id, message_id) index too, a page of its own per row as message ids are random:
    // a third of the pages an erasure wrote. The keys of erased events stay (random ids that name no one; a replay
    // of an erased event is a duplicate) until retention deletes them with the events of their time. SQLite cannot
    // drop a UNIQUE constraint, so the table is rebuilt (row ids kept) with its indexes.
    R"sql(
CREATE TABLE event_ids(project_id INTEGER NOT NULL, message_id TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,
  PRIMARY KEY(project_id, message_id)) WITHOUT ROWID;
INSERT INTO event_ids(project_id, message_id, timestamp_ms) SELECT project_id, message_id, timestamp_ms FROM events;
CREATE INDEX event_ids_by_time ON event_ids(project_id, timestamp_ms);
CREATE TABLE events_v17(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, message_id TEXT NOT NULL, type TEXT NOT NULL,
  user_id TEXT, anonymous_id TEXT, name TEXT, purpose TEXT, timestamp_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL, body TEXT NOT NULL, consent_receipt TEXT);
INSERT INTO events_v17(id, project_id, message_id, type, user_id, anonymous_id, name, purpose, timestamp_ms,
  received_ms, body, consent_receipt)
  SELECT id, project_id, message_id, type, user_id, anonymous_id, name, purpose, timestamp_ms, received_ms, body,
  consent_receipt FROM events ORDER BY id;
DROP TABLE events;
ALTER TABLE events_v17 RENAME TO events;
CREATE INDEX events_by_user ON events(project_id, user_id, anonymous_id) WHERE user_id IS NOT NULL;
CREATE INDEX events_by_anon ON events(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL;
CREATE INDEX events_by_time ON events(project_id, timestamp_ms);
CREATE INDEX events_by_receipt ON events(project_id, consent_receipt) WHERE consent_receipt IS NOT NULL;
CREATE INDEX events_anon_with_user ON events(project_id, anonymous_id)
  WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL;
)sql",
};
constexpr int64_t kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == kSchemaVersion, "one migration per schema version");

}  // namespace

// Readers of kRead/kSnapshot transactions: connections of their own (SqliteEngine::readers_).
constexpr int kReaders = 2;
// Log size (bytes) at which the checkpointer runs: SQLite's own default for wal_autocheckpoint (1000 pages of 4 KiB).
constexpr int kCheckpointBytes = 4 << 20;
// Log size at which the writer finishes the checkpoint itself after a commit, so that its next transaction writes the
// log from its start again (OnWalCommit): four times kCheckpointBytes.
constexpr int kRestartFactor = 4;
// Past kCheckpointBytes the checkpointer is asked again each time the log has grown by this much since it was last
// asked: each pass copies a step's frames, not one commit's. Asked after every commit, it ran about once a commit
// (40-45 passes a second flat out, ~300 paced at 50,000 events/s), each with two fsyncs beside the writer's and the hot
// pages (the B-trees' upper levels) written into the database file again.
constexpr int kCheckpointStepBytes = 1 << 20;

// One connection behind a mutex for writes (the ingest path reaches it through the single group-commit writer), and
// kReaders connections for reads.
class SqliteEngine final : public Engine {
 public:
  // Opens the database at `path` with `key` and migrates its schema.
  // A new file gets `new_file_page_size` (SqliteStoreOptions); an existing one keeps the size it was made with.
  static base::Result<std::unique_ptr<SqliteEngine>> Open(const std::string& path, const base::SecretBytes& key,
                                                          int new_file_page_size);

  const IdHasher& id_hasher() const override { return hasher_; }
  base::Status Check() override;
  // kRead/kSnapshot run on a reader connection (kSnapshot in one read transaction), beside the writer; kWrite/kErase
  // hold the mutex and run BEGIN IMMEDIATE ... COMMIT (other processes wait), and an erasure ends with a WAL
  // checkpoint so the erased rows' old page images do not stay in the log; kEraseChunk lets waiting ingest go first.
  base::Status Transact(TxnMode mode, const std::function<base::Status(EngineTxn&)>& fn) override;
  // The subject is resolved under the mutex; pages are read under it and handed over without it.
  base::Status Export(const std::function<base::Status(EngineTxn&, ExportCursor&)>& fn) override;
  // Everything queued in one transaction; ids are looked up on the suppression list only when it is not empty.
  base::Status Insert(std::vector<InsertRequest*>& requests) override;
  void PrepareInsert(InsertRequest* request) override;
  base::Result<int64_t> PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows,
                                     int64_t default_consent_keep_ms) override;
  base::Status ScanAllText(const TextScanFn& fn) override;
  CheckpointStats Checkpoints() const override;

  int64_t SchemaVersion();
  const std::string& path() const { return path_; }

 private:
  explicit SqliteEngine(base::Db db) : db_(std::move(db)) {}
  // Runs checkpoints on ckpt_ until stopping_ (Checkpointer).
  void CheckpointLoop();
  // sqlite3_wal_hook of db_: after each commit, with the log's size in pages.
  static int OnWalCommit(void* self, sqlite3* db, const char* name, int pages);

 public:
  ~SqliteEngine() override;

 private:
  base::Status Migrate();
  base::Status InsertLocked(std::vector<InsertRequest*>& requests);
  base::Status ClaimAllLocked(std::vector<InsertRequest*>& requests);

  std::string path_;
  IdHasher hasher_;  // set once by Migrate
  std::mutex mu_;
  // The events rows of one Insert, stored at its end in one statement (lib/base/sqlite_rows.h). Declared before db_:
  // it outlives the connection that reads it.
  std::unique_ptr<base::MemoryRows> staged_;  // guarded by mu_
  // The (project, messageId) keys an Insert claims in event_ids, in one statement before its events are stored.
  std::unique_ptr<base::MemoryRows> keys_;  // guarded by mu_
  base::Db db_;                             // guarded by mu_
  // Connections for kRead and kSnapshot transactions, each used by one thread at a time: in WAL mode they read beside
  // the writer, so a lookup (an erasure's identity walk, a summary, the gates' reads at ingest) never holds up the
  // connection that writes.
  std::vector<std::unique_ptr<base::Db>> readers_;
  std::mutex readers_mu_;
  std::condition_variable readers_cv_;
  std::vector<base::Db*> free_readers_;  // guarded by readers_mu_
  // Ingest batches waiting for mu_ (Insert). std::mutex is not fair: a thread that lets it go and takes it again at
  // once usually wins over a waiting one, so an erasure's chunks (TxnMode::kEraseChunk) let these go first.
  std::atomic<int> writers_waiting_{0};
  // Checkpoints off the commit path: db_ does not checkpoint at commit (wal_autocheckpoint off); once the log holds
  // kCheckpointBytes a thread of its own copies them into the database file on ckpt_ (PASSIVE: never waiting
  // for, nor holding up, the writer or the readers), so neither an ingest batch nor an erasure's chunk pays for it.
  base::Db ckpt_;
  std::mutex ckpt_mu_;
  std::condition_variable ckpt_cv_;
  bool ckpt_due_ = false;  // guarded by ckpt_mu_
  bool stopping_ = false;  // guarded by ckpt_mu_
  std::thread ckpt_thread_;
  // Checkpoints() counts: passes of the checkpointer and of the writer (OnWalCommit), and their time.
  std::atomic<int64_t> ckpt_passes_{0}, ckpt_ns_{0}, writer_ckpt_passes_{0}, writer_ckpt_ns_{0};
  // kCheckpointBytes and kCheckpointStepBytes in the store's pages (set by Open, before the first commit).
  int wal_checkpoint_pages_ = 1000;
  int wal_checkpoint_step_pages_ = 250;
  // The log's length when the checkpointer was last asked (OnWalCommit; it runs on db_'s commits, under mu_).
  int ckpt_asked_at_pages_ = 0;
};

namespace {
// Runs a PASSIVE checkpoint on `db` and adds it to `passes` and `ns`.
void TimedCheckpoint(sqlite3* db, const char* name, std::atomic<int64_t>& passes, std::atomic<int64_t>& ns) {
  const auto start = std::chrono::steady_clock::now();
  (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
  passes.fetch_add(1, std::memory_order_relaxed);
  ns.fetch_add(took.count(), std::memory_order_relaxed);
}
}  // namespace

Engine::CheckpointStats SqliteEngine::Checkpoints() const {
  CheckpointStats s;
  s.reported = true;
  s.background = ckpt_passes_.load(std::memory_order_relaxed);
  s.background_seconds = static_cast<double>(ckpt_ns_.load(std::memory_order_relaxed)) / 1e9;
  s.writer = writer_ckpt_passes_.load(std::memory_order_relaxed);
  s.writer_seconds = static_cast<double>(writer_ckpt_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

int SqliteEngine::OnWalCommit(void* self, sqlite3* db, const char* name, int pages) {
  // SQLite writes the log from its start again only when a write transaction begins with every frame already copied
  // into the database file. Under steady ingest the checkpointer never gets there: while it copies, the writer commits
  // more. The log then grew by every commit, without bound (0.58 GB in 10 s under ferry_bench_collector), and every
  // frame written past its end cost the file system a block to allocate and zero. So once the log is this long, the
  // writer copies what the checkpointer left, here between two of its own transactions, where no commit can add to it;
  // its next transaction restarts the log. PASSIVE: a running checkpointer (BUSY at once) or a reader still on old
  // frames holds it back, and the next commit tries again.
  auto* e = static_cast<SqliteEngine*>(self);
  if (pages >= kRestartFactor * e->wal_checkpoint_pages_) {
    TimedCheckpoint(db, name, e->writer_ckpt_passes_, e->writer_ckpt_ns_);
    return SQLITE_OK;
  }
  // A log shorter than when last asked was restarted.
  if (pages >= e->wal_checkpoint_pages_ &&
      (pages < e->ckpt_asked_at_pages_ || pages - e->ckpt_asked_at_pages_ >= e->wal_checkpoint_step_pages_)) {
    e->ckpt_asked_at_pages_ = pages;
    {
      std::lock_guard<std::mutex> l(e->ckpt_mu_);
      e->ckpt_due_ = true;
    }
    e->ckpt_cv_.notify_one();
  }
  return SQLITE_OK;
}

void SqliteEngine::CheckpointLoop() {
  std::unique_lock<std::mutex> l(ckpt_mu_);
  for (;;) {
    ckpt_cv_.wait(l, [this] { return ckpt_due_ || stopping_; });
    if (stopping_) return;
    ckpt_due_ = false;
    l.unlock();
    // Best effort: frames a reader still needs stay for the next one; the writer restarts the log once all are in.
    TimedCheckpoint(ckpt_.get(), nullptr, ckpt_passes_, ckpt_ns_);
    l.lock();
  }
}

SqliteEngine::~SqliteEngine() {
  {
    std::lock_guard<std::mutex> l(ckpt_mu_);
    stopping_ = true;
  }
  ckpt_cv_.notify_one();
  if (ckpt_thread_.joinable()) ckpt_thread_.join();
  if (db_) sqlite3_wal_hook(db_.get(), nullptr, nullptr);
}

Result<std::unique_ptr<SqliteEngine>> SqliteEngine::Open(const std::string& path, const SecretBytes& key,
                                                         int new_file_page_size) {
  if (!base::EnsureSodium()) return Status::Internal("libsodium failed to start");
  auto db = base::Db::OpenEncrypted(path, key, new_file_page_size);
  if (!db.ok()) return db.status();
  std::unique_ptr<SqliteEngine> store(new SqliteEngine(std::move(db).value()));
  // The other connections open the file with the size it has (chosen when it was made).
  const int page_size = store->db_.PageSize();
  if (page_size <= 0) return Status::Storage("cannot read the store's page size: " + store->db_.ErrMsg());
  store->wal_checkpoint_pages_ = std::max(1, kCheckpointBytes / page_size);
  store->wal_checkpoint_step_pages_ = std::max(1, kCheckpointStepBytes / page_size);
  store->path_ = path;
  FERRY_RETURN_IF_ERROR(store->db_.Exec("PRAGMA cache_size = -65536;"));  // 64 MiB
  // Every commit syncs the WAL before it returns: a batch is answered once it is on the disk, so a power cut or an
  // operating system crash loses nothing answered (the client deletes what was answered). One sync per group commit,
  // which carries many requests' events; the checkpoints sync the database file as before.
  FERRY_RETURN_IF_ERROR(store->db_.Exec("PRAGMA synchronous = FULL;"));
  // Erased rows are overwritten, not just unlinked; temporary tables (subject id sets) never touch the disk.
  FERRY_RETURN_IF_ERROR(store->db_.Exec("PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY;"));
  FERRY_RETURN_IF_ERROR(store->Migrate());
  {
    auto staged = base::MemoryRows::Register(store->db_, "ferry_staged_events",
                                             {"project_id", "message_id", "type", "user_id", "anonymous_id", "name",
                                              "purpose", "timestamp_ms", "received_ms", "body", "consent_receipt"});
    if (!staged.ok()) return staged.status();
    store->staged_ = std::move(staged).value();
    auto keys =
        base::MemoryRows::Register(store->db_, "ferry_staged_keys", {"project_id", "message_id", "timestamp_ms"});
    if (!keys.ok()) return keys.status();
    store->keys_ = std::move(keys).value();
  }
  {
    auto ckpt = base::Db::OpenEncrypted(path, key, page_size);
    if (!ckpt.ok()) return ckpt.status();
    store->ckpt_ = std::move(ckpt).value();
    FERRY_RETURN_IF_ERROR(store->db_.Exec("PRAGMA wal_autocheckpoint = 0;"));
    sqlite3_wal_hook(store->db_.get(), &SqliteEngine::OnWalCommit, store.get());
    store->ckpt_thread_ = std::thread([e = store.get()] { e->CheckpointLoop(); });
  }
  for (int i = 0; i < kReaders; ++i) {
    auto reader = base::Db::OpenEncrypted(path, key, page_size);
    if (!reader.ok()) return reader.status();
    FERRY_RETURN_IF_ERROR(reader->Exec("PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;"));
    store->readers_.push_back(std::make_unique<base::Db>(std::move(reader).value()));
    store->free_readers_.push_back(store->readers_.back().get());
  }
  return store;
}

Status SqliteEngine::Migrate() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t v = db_.UserVersion();
  if (v < 0) return Status::Storage("cannot read the schema version: " + db_.ErrMsg());
  if (v > kSchemaVersion) {
    return Status::Storage("the store has schema version " + std::to_string(v) + ", newer than this build (" +
                           std::to_string(kSchemaVersion) + ")");
  }
  for (; v < kSchemaVersion; ++v) {
    base::Transaction tx(db_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(db_.Exec(kMigrations[v]));
    FERRY_RETURN_IF_ERROR(db_.SetUserVersion(v + 1));
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  // The key of the suppression list's id hashes: made once, kept in the (encrypted) store.
  auto sel = db_.Prepare("SELECT v FROM meta WHERE k = 'id_hash_key';");
  if (!sel.ok()) return sel.status();
  if (sel->Step()) {
    const void* p = sqlite3_column_blob(sel->get(), 0);
    int n = sqlite3_column_bytes(sel->get(), 0);
    if (p == nullptr || n != 32) return Status::Corruption("meta.id_hash_key is damaged");
    hasher_ = IdHasher(SecretBytes(static_cast<const uint8_t*>(p), 32));
  } else {
    FERRY_RETURN_IF_ERROR(sel->status());
    SecretBytes key = SecretBytes::Random(32);
    auto ins = db_.Prepare("INSERT INTO meta(k, v) VALUES('id_hash_key', ?1);");
    if (!ins.ok()) return ins.status();
    ins->BindBlob(1, key.data(), key.size());
    FERRY_RETURN_IF_ERROR(ins->Run());
    hasher_ = IdHasher(std::move(key));
  }
  return Status::Ok();
}

int64_t SqliteEngine::SchemaVersion() {
  std::lock_guard<std::mutex> lock(mu_);
  return db_.UserVersion();
}

Status SqliteEngine::Check() {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("SELECT count(*) FROM sqlite_master;");
  if (!st.ok()) return st.status();
  if (!st->Step()) return st->status().ok() ? Status::Storage("no row") : st->status();
  return Status::Ok();
}

void SqliteEngine::PrepareInsert(InsertRequest* request) {
  // The compression is the request thread's work, not the writer's (the one thread every commit waits for).
  for (StoredEvent& e : request->events) EncodeBody(e.body, &e.stored_body);
}

Status SqliteEngine::Insert(std::vector<InsertRequest*>& requests) {
  writers_waiting_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  writers_waiting_.fetch_sub(1, std::memory_order_relaxed);
  Status s = InsertLocked(requests);
  if (!s.ok()) {
    for (InsertRequest* r : requests) {
      r->outcomes.clear();
      r->seqs.clear();
    }
  }
  return s;
}

// Claims every event's (project, messageId) in event_ids with one statement, in the order of the requests and their
// events, and marks (in outcomes, set to kAccepted by the caller) the events whose key was there already (stored
// before, or earlier in this Insert) duplicates. Under OR FAIL a conflict stops the statement and keeps the rows before
// it; the changes count says which row it was, and the statement runs again from the row after it. A batch of n
// duplicates (a client's retry) costs n short statements: what one statement an event cost before. No statement journal
// (OR FAIL), as for the events rows.
Status SqliteEngine::ClaimAllLocked(std::vector<InsertRequest*>& requests) {
  keys_->Clear();
  std::vector<std::pair<InsertRequest*, size_t>> of;  // the event each staged key is of
  for (InsertRequest* req : requests) {
    for (size_t i = 0; i < req->events.size(); ++i) {
      const StoredEvent& e = req->events[i];
      keys_->AddRow();
      keys_->SetInt(0, req->project_id);
      keys_->SetText(1, e.message_id);
      keys_->SetInt(2, e.timestamp_ms);
      of.emplace_back(req, i);
    }
  }
  auto claim = db_.Prepare(
      "INSERT OR FAIL INTO event_ids(project_id, message_id, timestamp_ms) SELECT project_id, message_id, "
      "timestamp_ms FROM ferry_staged_keys WHERE rowid >= ?1 ORDER BY rowid;");
  if (!claim.ok()) {
    keys_->Clear();
    return claim.status();
  }
  const auto n = static_cast<int64_t>(of.size());
  Status result = Status::Ok();
  for (int64_t from = 0; from < n;) {
    claim->Bind(1, from);
    while (claim->Step()) {
    }
    const Status s = claim->status();
    const int code = sqlite3_extended_errcode(db_.get());
    claim->Reset();
    const int64_t stored = db_.Changes();
    if (s.ok()) {
      if (stored != n - from) {
        result =
            Status::Storage("claimed " + std::to_string(stored) + " of " + std::to_string(n - from) + " event ids");
      }
      break;
    }
    // Only the key's own constraint marks a duplicate: any other failure fails the Insert.
    if (code != SQLITE_CONSTRAINT_PRIMARYKEY || stored < 0 || stored >= n - from) {
      result = s;
      break;
    }
    const auto& [req, i] = of[static_cast<size_t>(from + stored)];
    req->outcomes[i] = InsertOutcome::kDuplicate;
    from += stored + 1;
  }
  keys_->Clear();  // its views are of the requests' events
  return result;
}

Status SqliteEngine::InsertLocked(std::vector<InsertRequest*>& requests) {
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  // An event is stored once it claimed its (project, messageId) in event_ids: a key already there is a duplicate.
  // ClaimAllLocked claims them all at once; with suppressed ids on the list each event claims its own (below).
  // The events rows go in one statement at the end (nothing in this loop reads the events table): a statement per row
  // cost each row the statement's own work. OR FAIL: no statement journal (an encrypted copy of each page changed);
  // a failure rolls the whole transaction back anyway. Their ids are consecutive, in the order staged.
  auto ev = db_.Prepare(
      "INSERT OR FAIL INTO events(project_id, message_id, type, user_id, anonymous_id, name, purpose, "
      "timestamp_ms, received_ms, body, consent_receipt) SELECT project_id, message_id, type, user_id, anonymous_id, "
      "name, purpose, timestamp_ms, received_ms, body, consent_receipt FROM ferry_staged_events ORDER BY rowid;");
  if (!ev.ok()) return ev.status();
  staged_->Clear();
  std::vector<int64_t*> staged_seqs;  // where each staged row's id goes
  auto stage_text = [&](size_t col, const std::string& v) {
    if (!v.empty()) staged_->SetText(col, v);  // else NULL
  };
  // The suppression list is usually empty: look ids up only when it is not.
  bool any_suppressed = false;
  {
    auto any = db_.Prepare("SELECT 1 FROM suppressions LIMIT 1;");
    if (!any.ok()) return any.status();
    any_suppressed = any->Step();
    FERRY_RETURN_IF_ERROR(any->status());
  }
  base::Stmt sup, claim, consent, withdrawal, link, link_upd, drop_ins, drop_upd, trait;
  auto prepare = [&](base::Stmt* out, std::string_view sql) -> Status {
    if (*out) return Status::Ok();
    auto st = db_.Prepare(sql);
    if (!st.ok()) return st.status();
    *out = std::move(st).value();
    return Status::Ok();
  };
  auto bind_opt = [](base::Stmt& st, int i, const std::string& v) {
    if (v.empty()) {
      st.BindNull(i);
    } else {
      st.Bind(i, v);
    }
  };
  for (InsertRequest* req : requests) {
    req->outcomes.assign(req->events.size(), InsertOutcome::kAccepted);
    req->seqs.assign(req->events.size(), 0);
  }
  if (!any_suppressed) FERRY_RETURN_IF_ERROR(ClaimAllLocked(requests));
  base::Stmt choices;
  // A suppressed id's new start (readmission.h): the choices its installation made after the suppression.
  Readmission readmission(
      [&](int64_t project_id, const std::string& anonymous_id) -> base::Result<std::vector<NewChoice>> {
        FERRY_RETURN_IF_ERROR(
            prepare(&choices,
                    "SELECT timestamp_ms, device_seq, receipt_id FROM consent_ledger WHERE project_id = ?1 "
                    "AND anonymous_id = ?2 AND method IN ('explicit', 'guardian');"));
        choices.Bind(1, project_id).Bind(2, anonymous_id);
        std::vector<NewChoice> out;
        while (choices.Step()) {
          out.push_back({choices.Int(0), choices.IsNull(1) ? 0 : choices.Int(1),
                         choices.IsNull(2) ? std::string() : choices.Text(2)});
        }
        FERRY_RETURN_IF_ERROR(choices.status());
        choices.Reset();
        return out;
      });
  for (InsertRequest* req : requests) {
    for (size_t i = 0; i < req->events.size(); ++i) {
      const StoredEvent& e = req->events[i];
      if (req->outcomes[i] == InsertOutcome::kDuplicate) continue;  // claimed before (ClaimAllLocked)
      if (any_suppressed) {
        FERRY_RETURN_IF_ERROR(
            prepare(&sup, "SELECT MAX(created_ms) FROM suppressions WHERE project_id = ?1 AND id_hash IN (?2, ?3);"));
        sup.Bind(1, req->project_id)
            .Bind(2, e.user_id.empty() ? std::string() : hasher_(e.user_id))
            .Bind(3, e.anonymous_id.empty() ? std::string() : hasher_(e.anonymous_id));
        bool hit = sup.Step() && !sup.IsNull(0);
        int64_t since = hit ? sup.Int(0) : 0;
        FERRY_RETURN_IF_ERROR(sup.status());
        sup.Reset();
        if (hit) {
          auto admit = readmission.Admit(req->project_id, e, since);
          if (!admit.ok()) return admit.status();
          if (!*admit) {
            req->outcomes[i] = InsertOutcome::kSuppressed;
            continue;
          }
        }
        // A suppressed id's events are admitted in order (a consent choice earlier in this Insert counts), so each
        // claims its key here, after its check, one statement each.
        FERRY_RETURN_IF_ERROR(prepare(
            &claim, "INSERT OR IGNORE INTO event_ids(project_id, message_id, timestamp_ms) VALUES(?1, ?2, ?3);"));
        claim.Bind(1, req->project_id).Bind(2, e.message_id).Bind(3, e.timestamp_ms);
        FERRY_RETURN_IF_ERROR(claim.Run());
        if (db_.Changes() == 0) {
          req->outcomes[i] = InsertOutcome::kDuplicate;
          continue;
        }
      }
      staged_->AddRow();
      staged_->SetInt(0, req->project_id);
      staged_->SetText(1, e.message_id);
      staged_->SetText(2, e.type);
      stage_text(3, e.user_id);
      stage_text(4, e.anonymous_id);
      stage_text(5, e.name);
      stage_text(6, e.purpose);
      staged_->SetInt(7, e.timestamp_ms);
      staged_->SetInt(8, e.received_ms);
      // The compressed form PrepareInsert made (body_codec.h), else the text (a request not prepared, or a body
      // zstd does not shrink).
      if (!e.stored_body.empty()) {
        staged_->SetBlob(9, e.stored_body);
      } else {
        staged_->SetText(9, e.body);
      }
      stage_text(10, e.covered_by);
      staged_seqs.push_back(&req->seqs[i]);
      if (e.type == "consent") {
        FERRY_RETURN_IF_ERROR(
            prepare(&consent,
                    "INSERT INTO consent_ledger(project_id, message_id, user_id, anonymous_id, "
                    "purpose, state, previous, timestamp_ms, received_ms, device, method, "
                    "notice_id, notice_version, language, device_seq, receipt_id, minor) "
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17);"));
        consent.Bind(1, req->project_id).Bind(2, e.message_id);
        bind_opt(consent, 3, e.user_id);
        bind_opt(consent, 4, e.anonymous_id);
        consent.Bind(5, e.consent_purpose).Bind(6, e.consent_state);
        bind_opt(consent, 7, e.consent_previous);
        consent.Bind(8, e.timestamp_ms).Bind(9, e.received_ms);
        bind_opt(consent, 10, e.device);
        bind_opt(consent, 11, e.consent_method);
        bind_opt(consent, 12, e.notice_id);
        bind_opt(consent, 13, e.notice_version);
        bind_opt(consent, 14, e.language);
        if (e.consent_seq > 0) {
          consent.Bind(15, e.consent_seq);
        } else {
          consent.BindNull(15);
        }
        bind_opt(consent, 16, e.receipt_id);
        if (e.consent_minor >= 0) {
          consent.Bind(17, static_cast<int64_t>(e.consent_minor));
        } else {
          consent.BindNull(17);
        }
        FERRY_RETURN_IF_ERROR(consent.Run());
        if (IsWithdrawal(e)) {
          // A withdrawal acts on the stored events of its purpose (the withdrawal job): queued with the record.
          FERRY_RETURN_IF_ERROR(prepare(&withdrawal,
                                        "INSERT INTO withdrawal_queue(project_id, user_id, anonymous_id, purpose, "
                                        "previous, receipt_id, denied_ms, done_ms, request_id) "
                                        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, '');"));
          withdrawal.Bind(1, req->project_id);
          bind_opt(withdrawal, 2, e.user_id);
          bind_opt(withdrawal, 3, e.anonymous_id);
          withdrawal.Bind(4, e.consent_purpose);
          bind_opt(withdrawal, 5, e.consent_previous);
          bind_opt(withdrawal, 6, e.receipt_id);
          withdrawal.Bind(7, e.timestamp_ms);
          FERRY_RETURN_IF_ERROR(withdrawal.Run());
        }
      }
      if (e.type == "identify" && !e.traits.empty()) {
        FERRY_RETURN_IF_ERROR(prepare(&trait,
                                      "INSERT OR REPLACE INTO traits(project_id, subject_id, k, v, updated_ms) "
                                      "VALUES(?1, ?2, ?3, ?4, ?5);"));
        nlohmann::json t = nlohmann::json::parse(e.traits, nullptr, false);
        if (t.is_object()) {
          const std::string& subject = e.user_id.empty() ? e.anonymous_id : e.user_id;
          for (const auto& [k, v] : t.items()) {
            trait.Bind(1, req->project_id).Bind(2, subject).Bind(3, k);
            trait.Bind(4, v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).Bind(5, e.received_ms);
            FERRY_RETURN_IF_ERROR(trait.Run());
          }
        }
      }
      for (const LinkAssertion& a : LinksAsserted(e, req->credential)) {
        FERRY_RETURN_IF_ERROR(
            prepare(&link,
                    "INSERT OR IGNORE INTO identity_links(project_id, from_kind, from_id, user_id, "
                    "source, first_seen_ms, credential, key_id, via_message_id, via_anonymous_id, "
                    "asserted_ms, state) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12);"));
        // A link asserted again with more weight (active where it was pending, or by a trusted credential where it
        // was not) takes the new provenance.
        FERRY_RETURN_IF_ERROR(prepare(
            &link_upd,
            "UPDATE identity_links SET source = ?5, credential = ?7, key_id = ?8, via_message_id = ?9, "
            "via_anonymous_id = ?10, asserted_ms = ?11, state = ?12 WHERE project_id = ?1 AND from_kind = ?2 AND "
            "from_id = ?3 AND user_id = ?4 AND confirmed_by = '' AND ((state = 'pending' AND ?12 = 'active') OR "
            "(?7 IN ('server_key', 'internal') AND credential NOT IN ('server_key', 'internal')));"));
        for (base::Stmt* st : {&link, &link_upd}) {
          st->Bind(1, req->project_id).Bind(2, std::string_view(a.kind)).Bind(3, a.from).Bind(4, e.user_id);
          st->Bind(5, e.type).Bind(6, e.timestamp_ms).Bind(7, req->credential).Bind(8, req->key_id);
          st->Bind(9, e.message_id)
              .Bind(10, e.anonymous_id)
              .Bind(11, e.received_ms)
              .Bind(12, std::string_view(a.state));
          FERRY_RETURN_IF_ERROR(st->Run());
          if (db_.Changes() > 0) break;
        }
      }
    }
    for (const auto& [reason, count] : req->dropped) {
      FERRY_RETURN_IF_ERROR(prepare(&drop_ins,
                                    "INSERT OR IGNORE INTO dropped_counters(project_id, reason, count) "
                                    "VALUES(?1, ?2, 0);"));
      FERRY_RETURN_IF_ERROR(prepare(&drop_upd,
                                    "UPDATE dropped_counters SET count = count + ?3 "
                                    "WHERE project_id = ?1 AND reason = ?2;"));
      drop_ins.Bind(1, req->project_id).Bind(2, reason);
      FERRY_RETURN_IF_ERROR(drop_ins.Run());
      drop_upd.Bind(1, req->project_id).Bind(2, reason).Bind(3, count);
      FERRY_RETURN_IF_ERROR(drop_upd.Run());
    }
  }
  if (!staged_seqs.empty()) {
    const auto n = static_cast<int64_t>(staged_seqs.size());
    Status stored = ev->Run();
    staged_->Clear();  // its views are of the requests' events
    FERRY_RETURN_IF_ERROR(stored);
    if (db_.Changes() != n) {
      return Status::Storage("stored " + std::to_string(db_.Changes()) + " of " + std::to_string(n) + " events");
    }
    // SQLite gives each new row the largest id so far plus one: the statement's rows are last-n+1 .. last. Checked,
    // since an id that reached the largest integer would be drawn at random instead.
    const int64_t last = db_.LastInsertRowid();
    auto check = db_.Prepare("SELECT count(*) FROM events WHERE id BETWEEN ?1 AND ?2;");
    if (!check.ok()) return check.status();
    check->Bind(1, last - n + 1).Bind(2, last);
    if (!check->Step() || check->Int(0) != n) {
      FERRY_RETURN_IF_ERROR(check->status());
      return Status::Storage("the stored events' ids are not consecutive");
    }
    check->Reset();
    for (int64_t k = 0; k < n; ++k) *staged_seqs[static_cast<size_t>(k)] = last - n + 1 + k;
  }
  return tx.Commit();
}

Status SqliteEngine::Transact(TxnMode mode, const std::function<Status(EngineTxn&)>& fn) {
  if (mode == TxnMode::kEraseChunk) {
    // An ingest batch waiting for the connection goes first: it has it once it stopped waiting (and this thread then
    // waits for its commit on the mutex). Bounded, so a steady stream of batches cannot starve the erasure.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    while (writers_waiting_.load(std::memory_order_relaxed) > 0 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  if (mode == TxnMode::kRead || mode == TxnMode::kSnapshot) {
    base::Db* reader = nullptr;
    {
      std::unique_lock<std::mutex> l(readers_mu_);
      readers_cv_.wait(l, [this] { return !free_readers_.empty(); });
      reader = free_readers_.back();
      free_readers_.pop_back();
    }
    struct Return {
      SqliteEngine* e;
      base::Db* r;
      ~Return() {
        {
          std::lock_guard<std::mutex> l(e->readers_mu_);
          e->free_readers_.push_back(r);
        }
        e->readers_cv_.notify_one();
      }
    } back{this, reader};
    std::unique_ptr<EngineTxn> txn = NewTxn(*reader);
    if (mode == TxnMode::kRead) return fn(*txn);  // autocommit: each statement sees what committed before it
    // One snapshot for all of fn's reads: a deferred transaction's first read fixes it.
    FERRY_RETURN_IF_ERROR(reader->Exec("BEGIN DEFERRED;"));
    Status s = fn(*txn);
    Status ended = reader->Exec(s.ok() ? "COMMIT;" : "ROLLBACK;");
    return s.ok() ? ended : s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<EngineTxn> txn = NewTxn(db_);
  {
    base::Transaction tx(db_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(fn(*txn));
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  if (mode == TxnMode::kErase || mode == TxnMode::kEraseSuppressed) {
    // Old page images of the erased rows stay in the WAL until a checkpoint: write them back now (secure_delete has
    // zeroed the freed space) and empty the WAL. Best effort: a reader in another process may hold it back.
    (void)db_.Exec("PRAGMA wal_checkpoint(TRUNCATE);");
  }
  return Status::Ok();
}

namespace {

class Cursor : public ExportCursor {
 public:
  Cursor(base::Db& db, std::unique_lock<std::mutex>& lock) : db_(db), lock_(lock) {}
  bool Unlocked(const std::function<bool()>& fn) override {
    lock_.unlock();
    bool r = fn();
    lock_.lock();
    return r;
  }
  Status StreamRows(int64_t project_id, const std::string& project, const std::vector<std::string>& ids,
                    RowSink& sink) override {
    return StreamSubjectRows(db_, lock_, project_id, project, ids, sink);
  }

 private:
  base::Db& db_;
  std::unique_lock<std::mutex>& lock_;
};

}  // namespace

Status SqliteEngine::Export(const std::function<Status(EngineTxn&, ExportCursor&)>& fn) {
  std::unique_lock<std::mutex> lock(mu_);
  std::unique_ptr<EngineTxn> txn = NewTxn(db_);
  Cursor cursor(db_, lock);
  return fn(*txn, cursor);
}

Status SqliteEngine::ScanAllText(const TextScanFn& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> tables;
  {
    auto st = db_.Prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%';");
    if (!st.ok()) return st.status();
    while (st->Step()) tables.push_back(st->Text(0));
    FERRY_RETURN_IF_ERROR(st->status());
  }
  for (const std::string& t : tables) {
    std::vector<std::string> cols;
    {
      auto st = db_.Prepare("PRAGMA table_info(\"" + t + "\");");
      if (!st.ok()) return st.status();
      while (st->Step()) cols.push_back(st->Text(1));
      FERRY_RETURN_IF_ERROR(st->status());
    }
    for (const std::string& c : cols) {
      // Event bodies stored compressed (body_codec.h) are scanned as the JSON they hold.
      const bool bodies = t == "events" && c == "body";
      auto st = db_.Prepare("SELECT \"" + c + "\" FROM \"" + t + "\" WHERE typeof(\"" + c + "\") " +
                            (bodies ? "IN ('text', 'blob');" : "= 'text';"));
      if (!st.ok()) return st.status();
      while (st->Step()) {
        if (bodies) {
          auto json = ReadBody(*st, 0);
          if (!json.ok()) return json.status();
          if (!fn(t, c, *json)) return Status::Ok();
        } else if (!fn(t, c, st->TextView(0))) {
          return Status::Ok();
        }
      }
      FERRY_RETURN_IF_ERROR(st->status());
    }
  }
  return Status::Ok();
}

Result<int64_t> SqliteEngine::PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows,
                                           int64_t default_consent_keep_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  struct Cut {
    int64_t project_id, cutoff, keep_ms;
  };
  std::vector<Cut> cutoffs;  // per project: oldest timestamp kept, and how long consent records outlive their events
  {
    auto st = db_.Prepare(
        "SELECT p.id, ifnull(s.max_event_age_ms, ?1), ifnull(k.keep_ms, ?2) FROM projects p "
        "LEFT JOIN project_settings s ON s.project_id = p.id LEFT JOIN consent_retention k ON k.project_id = p.id;");
    if (!st.ok()) return st.status();
    st->Bind(1, default_max_age_ms).Bind(2, std::max<int64_t>(default_consent_keep_ms, 0));
    while (st->Step()) {
      if (st->Int(1) > 0) cutoffs.push_back({st->Int(0), now_ms - st->Int(1), st->Int(2)});
    }
    FERRY_RETURN_IF_ERROR(st->status());
  }
  int64_t deleted = 0;
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  // The events of a chunk are picked first, so that the consent records they name learn how long they covered
  // something (covered_until_ms) before the events go.
  FERRY_RETURN_IF_ERROR(
      db_.Exec("CREATE TEMP TABLE IF NOT EXISTS purge_ids(id INTEGER PRIMARY KEY); DELETE FROM "
               "temp.purge_ids;"));
  auto covered = db_.Prepare(
      "UPDATE consent_ledger SET covered_until_ms = max(ifnull(covered_until_ms, 0), ifnull((SELECT "
      "max(e.timestamp_ms) FROM events e JOIN temp.purge_ids g ON g.id = e.id WHERE e.project_id = "
      "consent_ledger.project_id AND e.consent_receipt = consent_ledger.receipt_id), 0)) WHERE receipt_id IN (SELECT "
      "e.consent_receipt FROM events e "
      "JOIN temp.purge_ids g ON g.id = e.id WHERE e.consent_receipt IS NOT NULL);");
  if (!covered.ok()) return covered.status();
  auto gone = db_.Prepare("DELETE FROM events WHERE id IN (SELECT id FROM temp.purge_ids);");
  if (!gone.ok()) return gone.status();
  auto clear = db_.Prepare("DELETE FROM temp.purge_ids;");
  if (!clear.ok()) return clear.status();
  // Runs `pick` (which fills temp.purge_ids), then marks the covering records and deletes the picked events.
  auto purge = [&](base::Stmt& pick) -> Status {
    FERRY_RETURN_IF_ERROR(pick.Run());
    FERRY_RETURN_IF_ERROR(covered->Run());
    FERRY_RETURN_IF_ERROR(gone->Run());
    deleted += db_.Changes();
    return clear->Run();
  };
  auto ev = db_.Prepare(
      "INSERT INTO temp.purge_ids(id) SELECT id FROM events WHERE project_id = ?1 AND timestamp_ms < ?2 LIMIT ?3;");
  if (!ev.ok()) return ev.status();
  auto cons = db_.Prepare(
      "DELETE FROM consent_ledger WHERE id IN (SELECT c.id FROM consent_ledger c WHERE c.project_id = ?1 AND "
      "c.timestamp_ms < ?2 AND ifnull(c.covered_until_ms, 0) < ?2 AND (c.receipt_id IS NULL OR NOT EXISTS (SELECT 1 "
      "FROM events e WHERE e.project_id = ?1 AND e.consent_receipt = c.receipt_id)) LIMIT ?3);");
  if (!cons.ok()) return cons.status();
  auto keys = db_.Prepare(
      "DELETE FROM event_ids WHERE (project_id, message_id) IN (SELECT project_id, message_id FROM event_ids WHERE "
      "project_id = ?1 AND timestamp_ms < ?2 LIMIT ?3);");
  if (!keys.ok()) return keys.status();
  for (const Cut& c : cutoffs) {
    if (deleted >= max_rows) break;
    ev->Bind(1, c.project_id).Bind(2, c.cutoff).Bind(3, max_rows - deleted);
    FERRY_RETURN_IF_ERROR(purge(*ev));
    cons->Bind(1, c.project_id).Bind(2, c.cutoff - c.keep_ms).Bind(3, max_rows);
    FERRY_RETURN_IF_ERROR(cons->Run());
    // Dedup keys of expired events (a resend older than the retention would be purged again anyway), erased events'
    // among them; with a larger budget than events, as on PostgreSQL.
    keys->Bind(1, c.project_id).Bind(2, c.cutoff).Bind(3, std::max<int64_t>(max_rows * 20, 10000));
    FERRY_RETURN_IF_ERROR(keys->Run());
  }
  // Purposes with a retention of their own (the processing registry): their events go when older than it, whatever
  // the project keeps (a purpose's retention longer than the project's changes nothing: those events are gone).
  if (deleted < max_rows) {
    auto by_purpose = db_.Prepare(
        "INSERT INTO temp.purge_ids(id) SELECT e.id FROM events e JOIN purpose_retention r ON "
        "r.project_id = e.project_id AND r.purpose = e.purpose WHERE e.timestamp_ms < ?1 - r.max_age_ms LIMIT ?2;");
    if (!by_purpose.ok()) return by_purpose.status();
    by_purpose->Bind(1, now_ms).Bind(2, max_rows - deleted);
    FERRY_RETURN_IF_ERROR(purge(*by_purpose));
  }
  FERRY_RETURN_IF_ERROR(tx.Commit());
  return deleted;
}
}  // namespace sqlite

Result<std::unique_ptr<SqliteStore>> SqliteStore::OpenFile(const std::string& path, const SecretBytes& key,
                                                           base::Clock* clock, const SqliteStoreOptions& options) {
  auto engine = sqlite::SqliteEngine::Open(path, key, options.new_file_page_size);
  if (!engine.ok()) return engine.status();
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(engine).value(), clock));
}

SqliteStore::SqliteStore(std::unique_ptr<sqlite::SqliteEngine> engine, base::Clock* clock)
    : Store(std::move(engine), clock), sqlite_(static_cast<sqlite::SqliteEngine*>(&this->engine())) {}

int64_t SqliteStore::SchemaVersion() { return sqlite_->SchemaVersion(); }

const std::string& SqliteStore::path() const { return sqlite_->path(); }

}  // namespace ferry::collector
