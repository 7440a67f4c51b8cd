// The PostgreSQL engine's connection layer (internal to collector/engines/postgres/): RAII for PGconn/PGresult,
// parameters (text, and arrays in PostgreSQL's binary form), the connection pool, a leased connection (Lease) with its
// statements, the retry loop, and the mapping of server errors to Ferry's status codes. Only parameterised queries
// (PQexecParams).
#ifndef FERRY_COLLECTOR_ENGINES_POSTGRES_PG_CONN_H_
#define FERRY_COLLECTOR_ENGINES_POSTGRES_PG_CONN_H_

#include <libpq-fe.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "collector/engines/postgres/pg_store.h"
#include "lib/base/status.h"

namespace ferry::collector::pg {

struct ConnDeleter {
  void operator()(PGconn* c) const {
    if (c != nullptr) PQfinish(c);
  }
};
struct ResultDeleter {
  void operator()(PGresult* r) const {
    if (r != nullptr) PQclear(r);
  }
};
using PgConnPtr = std::unique_ptr<PGconn, ConnDeleter>;
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// A pooled connection and the statements prepared on it (named server-side statements live as long as the
// connection, whatever happens to the transactions around them): a statement run again on the same connection is
// not parsed again. It is planned again each time (plan_cache_mode = force_custom_plan on every connection): a
// generic plan made while a table was small would be kept, unchanged, while it grows (until the next ANALYZE).
struct Conn {
  explicit Conn(PgConnPtr c) : pg(std::move(c)) {}
  PgConnPtr pg;
  std::unordered_map<std::string, std::string> prepared;  // SQL text -> statement name
};
using ConnPtr = std::unique_ptr<Conn>;

// At most this many statements are prepared on one connection; others run unnamed (parsed and planned each time).
constexpr size_t kMaxPreparedPerConn = 256;

// Advisory lock keys (pg_advisory_xact_lock): one namespace per purpose.
constexpr int64_t kLockMigrate = 0x4665727279000001;     // schema migrations
constexpr int64_t kLockPartitions = 0x4665727279000002;  // creating/dropping event partitions
constexpr int64_t kLockAudit = 0x4665727279000003;       // appending to the audit hash chain
constexpr int64_t kLockErase = 0x4665727279000004;       // erasure (exclusive) vs. ingest (shared)

// Run first in a pipeline (or a transaction), it makes the prepared statements after it, up to the pipeline's end,
// run on their generic plans, made once per connection with sequential scans ruled out; the session's default
// (plan_cache_mode = force_custom_plan, Pool::Connect) plans at every run. For statements that probe indexes with
// their parameters and never need to scan a table (IngestGateRows: planning them for each batch cost more than running
// them), or insert rows (the ingest transaction, pg_ingest.cc). Set with is_local: the pipeline's implicit transaction,
// or the transaction block, ends it.
constexpr const char* kGenericIndexPlans =
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true)";

constexpr int64_t kDayMs = 86400000;

// A parameter: text, or PostgreSQL's binary form of its type (binary; the arrays below); null = SQL NULL.
struct Param {
  std::string v;
  bool null = false;
  bool binary = false;
};
inline Param T(std::string s) { return Param{std::move(s), false}; }
inline Param I(int64_t v) { return Param{std::to_string(v), false}; }
inline Param Opt(const std::string& s) { return s.empty() ? Param{std::string(), true} : Param{s, false}; }

// An array parameter for ANY($n::text[]) / unnest($n::bigint[]), built one element at a time and sent in PostgreSQL's
// binary array form (array_recv): the elements' bytes as they are, nothing to escape on this side or to parse on the
// server's. The statement must give the parameter its type (a cast to text[] or bigint[]): the server checks the
// elements' type against it.
class ArrayParam {
 public:
  static ArrayParam Text() { return ArrayParam(kTextOid); }
  static ArrayParam Int() { return ArrayParam(kInt8Oid); }
  void Reserve(size_t bytes) { v_.reserve(v_.size() + bytes); }
  void Add(std::string_view s);        // text[]
  void AddOrNull(std::string_view s);  // text[]: "" is NULL
  void Add(int64_t v);                 // bigint[]
  size_t size() const { return n_; }
  Param Finish() &&;

 private:
  static constexpr uint32_t kInt8Oid = 20;  // pg_type.oid of bigint
  static constexpr uint32_t kTextOid = 25;  // pg_type.oid of text
  explicit ArrayParam(uint32_t oid);

  uint32_t oid_;
  std::string v_;  // a one-dimension header (counts filled in by Finish), then the elements
  size_t n_ = 0;
  bool has_nulls_ = false;
};

// The arrays of whole vectors; empty_is_null: "" is NULL.
Param TextArray(const std::vector<std::string>& v, bool empty_is_null = false);
Param IntArray(const std::vector<int64_t>& v);

// Values of a result (NULL reads as "" or 0).
std::string Get(const PGresult* r, int row, int col);
int64_t GetInt(const PGresult* r, int row, int col);
bool GetBool(const PGresult* r, int row, int col);

// One row of a result, as the record builders of collector/store/columns.h read it.
struct RowView {
  const PGresult* r;
  int row;
  std::string Text(int col) const { return Get(r, row, col); }
  int64_t Int(int col) const { return GetInt(r, row, col); }
};

// A small connection pool. Acquiring waits at most acquire_timeout_ms, then fails with Timeout; a broken connection
// is dropped and replaced on the next acquire. Thread-safe.
class Pool {
 public:
  explicit Pool(const PgOptions& o) : o_(o) {}
  base::Result<ConnPtr> Acquire();
  // Returns a connection. A broken one (or one left inside a transaction) is closed; a broken one also closes the
  // idle ones, which most likely lost their server too (a database restart).
  void Release(ConnPtr c, bool broken);
  int open() const;
  int leased() const;

 private:
  base::Result<ConnPtr> Connect();

  const PgOptions& o_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ConnPtr> idle_;  // guarded by mu_
  int open_ = 0;               // idle + leased (+ connecting); guarded by mu_
  int leased_ = 0;             // guarded by mu_
};

// A leased connection. Rolls back an unfinished transaction and returns the connection to the pool when destroyed.
class Lease {
 public:
  Lease(Pool* pool, ConnPtr c) : pool_(pool), c_(std::move(c)) {}
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Runs one parameterised statement; fails unless it succeeded (command or rows). The failure's code says what
  // went wrong (see StatusForSqlState in pg_conn.cc).
  base::Result<ResultPtr> Exec(const char* sql, const std::vector<Param>& params = {});
  base::Result<ResultPtr> Exec(const std::string& sql, const std::vector<Param>& params = {}) {
    return Exec(sql.c_str(), params);
  }
  base::Status Run(const std::string& sql, const std::vector<Param>& params = {});
  // Runs the statements in order in one round trip (libpq's pipeline mode): their results, one each, or the first
  // failure (the statements after a failed one do not run). Outside a transaction block the statements form one
  // implicit transaction. Meant for a few statements with small results (the whole pipeline is sent before any result
  // is read).
  struct Statement {
    const char* sql;
    std::vector<Param> params;
  };
  base::Result<std::vector<ResultPtr>> ExecAll(const std::vector<Statement>& statements);
  // Rows changed by a command.
  base::Result<int64_t> Count(const std::string& sql, const std::vector<Param>& params = {});
  // Whether the query gave a row.
  base::Result<bool> Exists(const std::string& sql, const std::vector<Param>& params = {});
  base::Status Begin() { return Run("BEGIN"); }
  base::Status Commit() { return Run("COMMIT"); }
  // Statements prepared on this lease's connection so far (tests).
  size_t prepared() const { return c_->prepared.size(); }
  // Takes a transaction-level advisory lock (released by COMMIT or ROLLBACK).
  base::Status Lock(int64_t key) { return Run("SELECT pg_advisory_xact_lock($1)", {I(key)}); }
  // The same, taken at a moment no other session holds it (tried every 10 ms, for at most half a second, then waited
  // for): a request that waits would hold up every new request behind it — for the erase lock, every new batch —
  // until the holders end.
  base::Status LockWhenFree(int64_t key);

  // A quoted identifier (names from the catalog or made by the store).
  std::string Ident(const std::string& name);

  bool broken() const { return broken_; }
  // Failed on a serialisation failure or a deadlock: the transaction may be run again.
  bool retryable() const { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }
  // Nothing succeeded on the connection yet (a stale pooled connection: running again on a new one is safe).
  bool fresh_failure() const { return ok_statements_ == 0; }

 private:
  Pool* pool_;
  ConnPtr c_;
  // Notes a failed statement's SQLSTATE (and whether the connection is lost or unusable) and returns its status.
  base::Status Failure(const PGresult* r);

  bool broken_ = false;
  int ok_statements_ = 0;
  std::string sqlstate_;
};

inline const base::Status& StatusOf(const base::Status& s) { return s; }
template <typename T>
const base::Status& StatusOf(const base::Result<T>& r) {
  return r.status();
}

// Runs fn(lease) on a leased connection; again (on a new lease) after a deadlock or serialisation failure, or when
// a stale pooled connection failed before anything ran on it. fn must start from scratch each time.
template <typename Fn>
auto WithLease(Pool* pool, Fn&& fn) -> decltype(fn(std::declval<Lease&>())) {
  using R = decltype(fn(std::declval<Lease&>()));
  for (int attempt = 0;; ++attempt) {
    auto c = pool->Acquire();
    if (!c.ok()) return R(c.status());
    Lease lease(pool, std::move(c).value());
    R r = fn(lease);
    if (StatusOf(r).ok()) return r;
    bool again = (lease.retryable() && attempt < 8) || (lease.broken() && lease.fresh_failure() && attempt < 2);
    if (!again) return r;
  }
}

// An erasure's ids whose walk_ids rows are to go (ForgetWalkIds) once its transaction committed.
struct WalkIdsToForget {
  int64_t project_id = 0;
  std::vector<std::string> ids;
};
// The primitives of one transaction on `lease` (pg_txn.cc). With `deferred`, an erasure (DeleteSubjectRows) leaves
// the ids' walk_ids rows and lists them there instead, for a transaction of their own under the erase lock: one that
// runs beside ingest (kEraseSuppressed) cannot tell whether a batch in flight is adding an event that holds one.
std::unique_ptr<EngineTxn> NewTxn(Lease& lease, std::vector<WalkIdsToForget>* deferred = nullptr);
// Deletes the walk_ids rows of `ids` that no stored event holds any more (a userId, or an anonymousId beside one),
// in the lease's open transaction; the caller holds the erase lock exclusively, or knows that no event of the ids
// can be stored meanwhile.
base::Status ForgetWalkIds(Lease& lease, int64_t project_id, const std::vector<std::string>& ids);
// Of `ids`, those with walk_ids rows that no stored event holds any more (what ForgetWalkIds would delete now).
base::Result<std::vector<std::string>> WalkIdsHeldByNone(Lease& lease, int64_t project_id,
                                                         const std::vector<std::string>& ids);
// Streams a subject's rows through server-side cursors inside the lease's open transaction (pg_txn.cc).
base::Status StreamSubjectRows(Lease& lease, int64_t project_id, const std::string& project,
                               const std::vector<std::string>& ids, RowSink& sink);

}  // namespace ferry::collector::pg

#endif  // FERRY_COLLECTOR_ENGINES_POSTGRES_PG_CONN_H_
