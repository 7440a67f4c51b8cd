// The PostgreSQL engine (its parts, pg_parts.h, put together: opening, transactions, the export session, scans) and
// PgStore, the Store over it.
#include "collector/engines/postgres/pg_store.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "collector/engines/postgres/pg_parts.h"
#include "lib/base/time.h"

namespace ferry::collector {

namespace pg {

using base::Result;
using base::Status;

namespace {

class Cursor : public ExportCursor {
 public:
  explicit Cursor(Lease& lease) : lease_(lease) {}
  // No lock of this process is held; the connection stays leased and the snapshot open while fn runs.
  bool Unlocked(const std::function<bool()>& fn) override { return fn(); }
  Status StreamRows(int64_t project_id, const std::string& project, const std::vector<std::string>& ids,
                    RowSink& sink) override {
    return StreamSubjectRows(lease_, project_id, project, ids, sink);
  }

 private:
  Lease& lease_;
};

}  // namespace

// The engine: the parts of pg_parts.h put together.
class PgEngine final : public Engine {
 public:
  explicit PgEngine(const PgOptions& options) : opts_(options) {
    if (opts_.pool_size < 1) opts_.pool_size = 1;
    if (opts_.clock == nullptr) opts_.clock = base::SystemClock();
    pool_ = std::make_unique<Pool>(opts_);
    partitions_ = std::make_unique<Partitions>(pool_.get(), opts_.clock);
  }
  PgEngine(const PgEngine&) = delete;
  PgEngine& operator=(const PgEngine&) = delete;
  // A scrub asked for runs before the engine goes.
  ~PgEngine() override {
    {
      std::lock_guard<std::mutex> l(scrub_mu_);
      stopping_ = true;
    }
    scrub_cv_.notify_all();
    if (scrubber_.joinable()) scrubber_.join();
  }

  Status Open() {
    FERRY_RETURN_IF_ERROR(Migrate(*pool_, &hasher_));
    // This month and the next have their partitions before the first event arrives.
    int64_t now = opts_.clock->NowMs();
    FERRY_RETURN_IF_ERROR(partitions_->Ensure({now, base::MonthOf(now).end_ms}));
    // An erasure whose VACUUM never ran (the collector stopped or crashed first, or the VACUUM failed) left its
    // marker (kScrubDue): run it now, on the scrub thread. And the database's collation: every id Ferry indexes is
    // compared through it.
    std::string collation;
    auto due = WithLease(pool_.get(), [&](Lease& tx) -> Result<bool> {
      auto r = tx.Exec(
          "SELECT EXISTS (SELECT 1 FROM meta WHERE k = 'scrub_due'), (SELECT datcollate FROM pg_database WHERE "
          "datname = current_database())");
      if (!r.ok()) return r.status();
      collation = Get(r->get(), 0, 1);
      return Get(r->get(), 0, 0) == "t";
    });
    if (!due.ok()) return due.status();
    if (*due) {
      opts_.log.Info("erasure scrub: the VACUUM of an earlier erasure had not run; running it");
      ScrubSoon();
    }
    if (collation != "C" && collation != "POSIX") {
      opts_.log.Info("the database's collation is " + collation +
                     ": every id compares through it; a database made with LC_COLLATE 'C' ingests faster "
                     "(docs/POSTGRES.md, \"Server settings that matter\")");
    }
    return Status::Ok();
  }

  const IdHasher& id_hasher() const override { return hasher_; }
  bool WritersQueue() const override { return false; }

  // SELECT 1 on a pooled connection (Timeout when the pool is exhausted, Unavailable when the server is down).
  Status Check() override {
    return WithLease(pool_.get(), [&](Lease& tx) -> Status { return tx.Run("SELECT 1"); });
  }

  // kRead: statements in autocommit; kSnapshot: REPEATABLE READ READ ONLY; kWrite: BEGIN ... COMMIT; kErase: also
  // the erase lock, exclusively (ingest holds it shared), and a VACUUM of the erased tables once committed (kEraseMany:
  // the lock, not the VACUUM; kEraseSuppressed: not the lock, and the VACUUM on the scrub thread, right after the
  // commit but after the answer; kEraseChunk: as kWrite, ingest goes on beside it). Retried after a deadlock or
  // serialisation failure.
  Status Transact(TxnMode mode, const std::function<Status(EngineTxn&)>& fn) override {
    return WithLease(pool_.get(), [&](Lease& tx) -> Status {
      // An erasure beside ingest leaves the walk_ids rows of its ids to the scrub thread (ForgetWalkIdsAfter).
      std::vector<WalkIdsToForget> forget;
      std::unique_ptr<EngineTxn> txn = NewTxn(tx, mode == TxnMode::kEraseSuppressed ? &forget : nullptr);
      if (mode == TxnMode::kRead) return fn(*txn);  // autocommit: each statement sees what committed before it
      FERRY_RETURN_IF_ERROR(
          tx.Run(mode == TxnMode::kSnapshot ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN"));
      // Waits for ingest transactions in flight (they hold the lock shared) and keeps new ones out until committed.
      if (mode == TxnMode::kErase || mode == TxnMode::kEraseMany) FERRY_RETURN_IF_ERROR(tx.Lock(kLockErase));
      FERRY_RETURN_IF_ERROR(fn(*txn));
      if (mode == TxnMode::kErase || mode == TxnMode::kEraseMany || mode == TxnMode::kEraseSuppressed) {
        FERRY_RETURN_IF_ERROR(tx.Run(kScrubDue));
      }
      FERRY_RETURN_IF_ERROR(tx.Commit());
      if (mode == TxnMode::kEraseSuppressed) {
        ScrubSoon(std::move(forget));
      } else if (mode == TxnMode::kErase) {
        // A DELETE (and the UPDATE that redacts register rows) leaves the old row versions in the table files, dead
        // but intact, until a VACUUM removes them: do it now, on the tables an erasure changes (every partition of
        // events), after the commit and so without the erase lock (ingest goes on; VACUUM takes no lock that
        // conflicts with inserts). Best effort: a transaction older than the erasure (a long export, say) still
        // sees them and keeps them; the next VACUUM (autovacuum's) removes them then. docs/COMPLIANCE.md says what
        // this does and does not guarantee.
        (void)RunScrub(tx);
      }
      return Status::Ok();
    });
  }

  // One read-only snapshot for the whole export; events and consent records come through server-side cursors, a
  // page at a time, so memory does not grow with the number of events. The connection stays leased while the
  // visitor runs (it may block on a slow reader).
  Status Export(const std::function<Status(EngineTxn&, ExportCursor&)>& fn) override {
    auto c = pool_->Acquire();
    if (!c.ok()) return c.status();
    Lease tx(pool_.get(), std::move(c).value());
    FERRY_RETURN_IF_ERROR(tx.Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    std::unique_ptr<EngineTxn> txn = NewTxn(tx);
    Cursor cursor(tx);
    FERRY_RETURN_IF_ERROR(fn(*txn, cursor));
    return tx.Commit();
  }

  Status Insert(std::vector<InsertRequest*>& requests) override {
    return InsertBatch(*pool_, *partitions_, hasher_, requests);
  }

  Result<int64_t> PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows,
                               int64_t default_consent_keep_ms) override {
    return pg::PurgeExpired(*pool_, now_ms, default_max_age_ms, max_rows, default_consent_keep_ms);
  }

  // Every table of the schema (a partitioned table once, through its parent) and its text columns, through cursors.
  Status ScanAllText(const TextScanFn& fn) override {
    auto c = pool_->Acquire();
    if (!c.ok()) return c.status();
    Lease tx(pool_.get(), std::move(c).value());
    FERRY_RETURN_IF_ERROR(tx.Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    // Every table of the schema (a partitioned table once, through its parent) and its text columns.
    auto cols = tx.Exec(
        "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid IN ('text'::regtype, 'varchar'::regtype) "
        "ORDER BY c.relname, a.attnum");
    if (!cols.ok()) return cols.status();
    for (int i = 0; i < PQntuples(cols->get()); ++i) {
      std::string table = Get(cols->get(), i, 0), column = Get(cols->get(), i, 1);
      std::string sql = "DECLARE scan_cur NO SCROLL CURSOR FOR SELECT " + tx.Ident(column) + " FROM " +
                        tx.Ident(table) + " WHERE " + tx.Ident(column) + " IS NOT NULL";
      FERRY_RETURN_IF_ERROR(tx.Run(sql));
      for (;;) {
        auto page = tx.Exec("FETCH 2000 FROM scan_cur");
        if (!page.ok()) return page.status();
        int n = PQntuples(page->get());
        for (int j = 0; j < n; ++j) {
          std::string_view v(PQgetvalue(page->get(), j, 0), static_cast<size_t>(PQgetlength(page->get(), j, 0)));
          if (!fn(table, column, v)) return tx.Commit();
        }
        if (n < 2000) break;
      }
      FERRY_RETURN_IF_ERROR(tx.Run("CLOSE scan_cur"));
    }
    return tx.Commit();
  }

  Pool& pool() { return *pool_; }
  Partitions& partitions() { return *partitions_; }

 private:
  // INDEX_CLEANUP ON: a VACUUM that finds dead rows on fewer than 2 % of a table's pages otherwise skips the indexes
  // (PostgreSQL 14+), and their entries keep the erased ids (the user and anonymous indexes' keys) until a later one
  // does not; with it every index of a table with dead rows is scanned, on the partitions the erasure touched.
  static constexpr const char* kScrub =
      "VACUUM (INDEX_CLEANUP ON) events, consent_ledger, identity_links, traits, requests, walk_ids";

  // Committed with every erasure: a VACUUM is due (the value counts the erasures, so that a VACUUM clears only the
  // marker it has seen). Cleared by RunScrub; a store opening with it runs one (Open).
  static constexpr const char* kScrubDue =
      "INSERT INTO meta(k, v) VALUES('scrub_due', '1') ON CONFLICT (k) DO UPDATE SET v = (meta.v::bigint + 1)::text";

  // kScrub, then the marker cleared unless an erasure committed since it was read (that one's VACUUM may have begun
  // before its commit, and its own request runs another).
  Status RunScrub(Lease& tx) {
    auto due = tx.Exec("SELECT v FROM meta WHERE k = 'scrub_due'");
    if (!due.ok()) return due.status();
    const std::string seen = PQntuples(due->get()) > 0 ? Get(due->get(), 0, 0) : std::string();
    FERRY_RETURN_IF_ERROR(tx.Run(kScrub));
    if (seen.empty()) return Status::Ok();
    return tx.Run("DELETE FROM meta WHERE k = 'scrub_due' AND v = $1", {T(seen)});
  }

  // The walk_ids rows of erasures that ran beside ingest (NewTxn's `deferred`), after their answer on the scrub
  // thread, before its VACUUM (which then removes the rows' old versions too). The erasures' ids are
  // suppressed, but a device's readmitted batch (readmission.h) may be adding an event that holds one, so the rows go
  // under the erase lock, with no batch in flight and every event that holds an id visible to the delete. The rows
  // are found first without the lock: that pass walks the index entries of the events just erased (dead until a
  // VACUUM; ~60 ms for 10,000 events) and marks them, so that ingest waits only for the short delete (the lock taken
  // when no batch holds it: LockWhenFree). Should this fail, the rows stay (an id the walk tries in vain) until
  // retention takes their month.
  Status ForgetWalkIdsAfter(Lease& tx, const std::vector<WalkIdsToForget>& forget) {
    Status s = Status::Ok();
    std::vector<WalkIdsToForget> due;
    for (const WalkIdsToForget& f : forget) {
      auto ids = WalkIdsHeldByNone(tx, f.project_id, f.ids);
      if (!ids.ok()) {
        s = ids.status();
        break;
      }
      if (!ids->empty()) due.push_back({f.project_id, std::move(ids).value()});
    }
    if (s.ok() && due.empty()) return s;
    if (s.ok()) s = tx.Begin();
    if (s.ok()) s = tx.LockWhenFree(kLockErase);
    for (const WalkIdsToForget& f : due) {
      if (s.ok()) s = ForgetWalkIds(tx, f.project_id, f.ids);
    }
    if (s.ok()) s = tx.Commit();
    return s;  // on failure the lease rolls an open transaction back
  }

  // Asks the scrub thread (started on the first call) for a VACUUM of the tables an erasure changes. Requests that
  // arrive while one runs are served by one more after it (that one may have begun before their commit).
  void ScrubSoon(std::vector<WalkIdsToForget> forget = {}) {
    {
      std::lock_guard<std::mutex> l(scrub_mu_);
      scrub_wanted_ = true;
      for (WalkIdsToForget& f : forget) scrub_forget_.push_back(std::move(f));
      if (!scrubber_.joinable()) scrubber_ = std::thread([this] { ScrubLoop(); });
    }
    scrub_cv_.notify_all();
  }

  void ScrubLoop() {
    std::unique_lock<std::mutex> l(scrub_mu_);
    for (;;) {
      scrub_cv_.wait(l, [this] { return scrub_wanted_ || stopping_; });
      if (!scrub_wanted_) return;  // stopping, nothing asked
      scrub_wanted_ = false;
      std::vector<WalkIdsToForget> forget;
      forget.swap(scrub_forget_);
      l.unlock();
      if (!forget.empty()) {
        Status f = WithLease(pool_.get(), [&](Lease& tx) -> Status { return ForgetWalkIdsAfter(tx, forget); });
        if (!f.ok()) {
          opts_.log.Warn("erasure scrub: the erased ids' walk_ids rows stay (retention takes them): " + f.ToString());
        }
      }
      const auto began = std::chrono::steady_clock::now();
      // Best effort, as after kErase: a failure leaves the marker (kScrubDue), and the next scrub or start runs it.
      Status s = WithLease(pool_.get(), [&](Lease& tx) -> Status { return RunScrub(tx); });
      char line[160];
      std::snprintf(line, sizeof line, "erasure scrub: VACUUM of the erased tables %s in %.3f s",
                    s.ok() ? "done" : "failed",
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
      if (s.ok()) {
        opts_.log.Info(line);
      } else {
        opts_.log.Warn(std::string(line) + ": " + s.ToString());
      }
      l.lock();
    }
  }

  PgOptions opts_;
  std::unique_ptr<Pool> pool_;
  std::unique_ptr<Partitions> partitions_;
  IdHasher hasher_;  // set once by Open
  std::mutex scrub_mu_;
  std::condition_variable scrub_cv_;
  bool scrub_wanted_ = false, stopping_ = false;
  std::vector<WalkIdsToForget> scrub_forget_;  // the next pass's walk_ids rows to forget (under scrub_mu_)
  std::thread scrubber_;
};

}  // namespace pg

base::Result<std::unique_ptr<PgStore>> PgStore::Open(const PgOptions& options) {
  if (!base::EnsureSodium()) return base::Status::Internal("libsodium failed to start");
  if (options.conninfo.empty()) return base::Status::InvalidArgument("an empty PostgreSQL connection string");
  auto engine = std::make_unique<pg::PgEngine>(options);
  FERRY_RETURN_IF_ERROR(engine->Open());
  return std::unique_ptr<PgStore>(new PgStore(std::move(engine), options.clock));
}

PgStore::PgStore(std::unique_ptr<pg::PgEngine> engine, base::Clock* clock)
    : Store(std::move(engine), clock != nullptr ? clock : base::SystemClock()),
      pg_(static_cast<pg::PgEngine*>(&this->engine())) {}

base::Result<int64_t> PgStore::SchemaVersion() { return pg::SchemaVersion(pg_->pool()); }

base::Result<std::vector<std::string>> PgStore::EventPartitions() { return pg_->partitions().List(); }

int PgStore::PoolOpen() const { return pg_->pool().open(); }

int PgStore::PoolLeased() const { return pg_->pool().leased(); }

}  // namespace ferry::collector
