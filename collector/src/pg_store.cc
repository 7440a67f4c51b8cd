#include "pg_store.h"

#include <libpq-fe.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>
#include <utility>

#include "audit.h"
#include "base/ids.h"
#include "base/time.h"
#include "sqlite_store.h"  // HexOf, SecretHash

namespace ferry::collector {

using base::Result;
using base::Status;
using nlohmann::json;

namespace {

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
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// Advisory lock keys (pg_advisory_xact_lock): one namespace per purpose.
constexpr int64_t kLockMigrate = 0x4665727279000001;     // schema migrations
constexpr int64_t kLockPartitions = 0x4665727279000002;  // creating/dropping event partitions
constexpr int64_t kLockAudit = 0x4665727279000003;       // appending to the audit hash chain
constexpr int64_t kLockErase = 0x4665727279000004;       // erasure (exclusive) vs. ingest (shared)

constexpr size_t kMaxSubjectIds = 100000;
constexpr int kPage = 512;  // rows fetched per cursor round trip while exporting
constexpr int64_t kDayMs = 86400000;
constexpr int64_t kPartitionRetryMs = 3600 * 1000;  // a partition that could not be made is retried after this

// A text parameter; null = SQL NULL.
struct Param {
  std::string v;
  bool null = false;
};
Param T(std::string s) { return Param{std::move(s), false}; }
Param I(int64_t v) { return Param{std::to_string(v), false}; }
Param Opt(const std::string& s) { return s.empty() ? Param{std::string(), true} : Param{s, false}; }

// Array literals for ANY($n::text[]) / unnest: every element quoted, '\' and '"' escaped; NULL unquoted.
void AppendElement(std::string* out, const std::string& s) {
  *out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') *out += '\\';
    *out += c;
  }
  *out += '"';
}
std::string TextArray(const std::vector<std::string>& v, bool empty_is_null = false) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    if (empty_is_null && v[i].empty()) {
      out += "NULL";
    } else {
      AppendElement(&out, v[i]);
    }
  }
  return out + "}";
}
std::string IntArray(const std::vector<int64_t>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(v[i]);
  }
  return out + "}";
}

std::string Get(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return std::string();
  return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}
int64_t GetInt(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return 0;
  return std::strtoll(PQgetvalue(r, row, col), nullptr, 10);
}
bool GetBool(const PGresult* r, int row, int col) { return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't'; }

bool ValidRole(const std::string& r) { return r == "compliance" || r == "operator" || r == "analyst"; }

std::string JoinRoles(const std::vector<std::string>& roles) {
  std::string out;
  for (const auto& r : roles) {
    if (!out.empty()) out += ',';
    out += r;
  }
  return out;
}

std::vector<std::string> SplitRoles(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(',', b);
    if (e == std::string::npos) e = s.size();
    if (e > b) out.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

// Civil calendar <-> days since 1970-01-01 (H. Hinnant's algorithms), for monthly partition bounds.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}
void CivilFromDays(int64_t z, int64_t* y, unsigned* m) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}
struct Month {
  int64_t year;
  unsigned month;
  int64_t lo_ms, hi_ms;
};
Month MonthOf(int64_t ts_ms) {
  int64_t days = ts_ms >= 0 ? ts_ms / kDayMs : -((-ts_ms + kDayMs - 1) / kDayMs);
  Month mo{};
  CivilFromDays(days, &mo.year, &mo.month);
  mo.lo_ms = DaysFromCivil(mo.year, mo.month, 1) * kDayMs;
  mo.hi_ms = mo.month == 12 ? DaysFromCivil(mo.year + 1, 1, 1) * kDayMs : DaysFromCivil(mo.year, mo.month + 1, 1) * kDayMs;
  return mo;
}
std::string PartitionName(const Month& m) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "events_%04lld%02u", static_cast<long long>(m.year), m.month);
  return buf;
}

// The schema, one statement per entry (PQexecParams runs one statement at a time). Index i: version i -> i+1.
const std::vector<std::vector<const char*>>& Migrations() {
  static const std::vector<std::vector<const char*>> kMigrations = {
      {
          "CREATE TABLE meta(k text PRIMARY KEY, v text NOT NULL)",
          "CREATE TABLE projects(id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, created_ms bigint NOT NULL)",
          "CREATE TABLE write_keys(id bigserial PRIMARY KEY, project_id bigint NOT NULL REFERENCES projects(id), "
          "key_hash text NOT NULL UNIQUE, prefix text NOT NULL, created_ms bigint NOT NULL, revoked_ms bigint)",
          // Events, partitioned by event time; ids from one sequence give the insertion order across partitions.
          "CREATE SEQUENCE events_id_seq",
          "CREATE TABLE events(id bigint NOT NULL DEFAULT nextval('events_id_seq'), project_id bigint NOT NULL, "
          "message_id text NOT NULL, type text NOT NULL, user_id text, anonymous_id text, name text, purpose text, "
          "timestamp_ms bigint NOT NULL, received_ms bigint NOT NULL, body text NOT NULL) "
          "PARTITION BY RANGE (timestamp_ms)",
          "CREATE TABLE events_default PARTITION OF events DEFAULT",
          "CREATE INDEX events_by_user ON events(project_id, user_id) WHERE user_id IS NOT NULL",
          "CREATE INDEX events_by_anon ON events(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL",
          "CREATE INDEX events_by_time ON events(project_id, timestamp_ms)",
          "CREATE TABLE event_partitions(name text PRIMARY KEY, lo_ms bigint NOT NULL, hi_ms bigint NOT NULL)",
          // Dedup by (project, messageId): a unique key on the partitioned table would have to include the
          // partition key, and a resend's corrected timestamp may differ. Rows expire with the events' retention.
          "CREATE TABLE event_ids(project_id bigint NOT NULL, message_id text NOT NULL, timestamp_ms bigint NOT NULL, "
          "PRIMARY KEY(project_id, message_id))",
          "CREATE INDEX event_ids_by_time ON event_ids(project_id, timestamp_ms)",
          "CREATE TABLE consent_ledger(id bigserial PRIMARY KEY, project_id bigint NOT NULL, message_id text NOT NULL, "
          "user_id text, anonymous_id text, purpose text NOT NULL, state text NOT NULL, previous text, "
          "timestamp_ms bigint NOT NULL, received_ms bigint NOT NULL, device text)",
          "CREATE INDEX consent_by_user ON consent_ledger(project_id, user_id) WHERE user_id IS NOT NULL",
          "CREATE INDEX consent_by_anon ON consent_ledger(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL",
          "CREATE INDEX consent_by_time ON consent_ledger(project_id, timestamp_ms)",
          "CREATE TABLE identity_links(id bigserial PRIMARY KEY, project_id bigint NOT NULL, from_kind text NOT NULL, "
          "from_id text NOT NULL, user_id text NOT NULL, source text NOT NULL, first_seen_ms bigint NOT NULL, "
          "UNIQUE(project_id, from_kind, from_id, user_id))",
          "CREATE INDEX identity_by_user ON identity_links(project_id, user_id)",
          "CREATE INDEX identity_by_from ON identity_links(project_id, from_id)",
          "CREATE TABLE suppressions(project_id bigint NOT NULL, id_hash text NOT NULL, created_ms bigint NOT NULL, "
          "PRIMARY KEY(project_id, id_hash))",
          "CREATE TABLE dropped_counters(project_id bigint NOT NULL, reason text NOT NULL, count bigint NOT NULL, "
          "PRIMARY KEY(project_id, reason))",
          "CREATE TABLE traits(project_id bigint NOT NULL, subject_id text NOT NULL, k text NOT NULL, v text NOT NULL, "
          "updated_ms bigint NOT NULL, PRIMARY KEY(project_id, subject_id, k))",
          "CREATE TABLE requests(id text PRIMARY KEY, kind text NOT NULL, project text NOT NULL, subject text NOT NULL, "
          "subject_hash text NOT NULL, state text NOT NULL, source text NOT NULL, received_ms bigint NOT NULL, "
          "due_ms bigint NOT NULL, acted_by text NOT NULL, acted_ms bigint NOT NULL, result text NOT NULL)",
          "CREATE INDEX requests_by_subject ON requests(subject_hash)",
          "CREATE INDEX requests_by_due ON requests(state, due_ms)",
          "CREATE TABLE audit_log(seq bigint PRIMARY KEY, time_ms bigint NOT NULL, actor text NOT NULL, "
          "role text NOT NULL, action text NOT NULL, subject_hash text NOT NULL, result text NOT NULL, "
          "detail text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL)",
          "CREATE INDEX audit_by_subject ON audit_log(subject_hash, seq)",
          "CREATE TABLE admin_tokens(id bigserial PRIMARY KEY, name text NOT NULL, token_hash text NOT NULL UNIQUE, "
          "prefix text NOT NULL, roles text NOT NULL, created_ms bigint NOT NULL, revoked_ms bigint)",
          "CREATE TABLE project_settings(project_id bigint PRIMARY KEY, max_event_age_ms bigint NOT NULL)",
      },
  };
  return kMigrations;
}

constexpr const char* kRequestCols =
    "id, kind, project, subject, subject_hash, state, source, received_ms, due_ms, acted_by, acted_ms, result";
RightsRequest RequestFromRow(const PGresult* r, int i) {
  RightsRequest q;
  q.id = Get(r, i, 0);
  q.kind = Get(r, i, 1);
  q.project = Get(r, i, 2);
  q.subject = Get(r, i, 3);
  q.subject_hash = Get(r, i, 4);
  q.state = Get(r, i, 5);
  q.source = Get(r, i, 6);
  q.received_ms = GetInt(r, i, 7);
  q.due_ms = GetInt(r, i, 8);
  q.acted_by = Get(r, i, 9);
  q.acted_ms = GetInt(r, i, 10);
  q.result = Get(r, i, 11);
  return q;
}

constexpr const char* kAuditCols = "seq, time_ms, actor, role, action, subject_hash, result, detail, prev_hash, hash";
AuditEntry AuditFromRow(const PGresult* r, int i) {
  AuditEntry e;
  e.seq = GetInt(r, i, 0);
  e.time_ms = GetInt(r, i, 1);
  e.actor = Get(r, i, 2);
  e.role = Get(r, i, 3);
  e.action = Get(r, i, 4);
  e.subject_hash = Get(r, i, 5);
  e.result = Get(r, i, 6);
  e.detail = Get(r, i, 7);
  e.prev_hash = Get(r, i, 8);
  e.hash = Get(r, i, 9);
  return e;
}

}  // namespace

// ---- Connection pool ----

class PgPool {
 public:
  explicit PgPool(const PgOptions& o) : o_(o) {}

  // A connection, made if fewer than pool_size are open; waits at most acquire_timeout_ms for one to be returned.
  Result<ConnPtr> Acquire() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(o_.acquire_timeout_ms, 0));
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      while (!idle_.empty()) {
        ConnPtr c = std::move(idle_.back());
        idle_.pop_back();
        if (PQstatus(c.get()) == CONNECTION_OK) {
          ++leased_;
          return c;
        }
        --open_;
        l.unlock();
        c.reset();
        l.lock();
      }
      if (open_ < o_.pool_size) {
        ++open_;
        ++leased_;
        l.unlock();
        auto c = Connect();
        if (c.ok()) return c;
        l.lock();
        --open_;
        --leased_;
        cv_.notify_one();
        return c.status();
      }
      if (cv_.wait_until(l, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= o_.pool_size) {
        return Status::Timeout("database connection pool exhausted: all " + std::to_string(o_.pool_size) +
                               " connections busy for " + std::to_string(o_.acquire_timeout_ms) + " ms");
      }
    }
  }

  // Returns a connection. A broken one (or one left inside a transaction) is closed; a broken one also closes the
  // idle ones, which most likely lost their server too (a database restart).
  void Release(ConnPtr c, bool broken) {
    std::vector<ConnPtr> drop;
    {
      std::lock_guard<std::mutex> l(mu_);
      --leased_;
      bool bad = broken || PQstatus(c.get()) != CONNECTION_OK || PQtransactionStatus(c.get()) != PQTRANS_IDLE;
      if (bad) {
        --open_;
        drop.push_back(std::move(c));
        if (broken) {
          open_ -= static_cast<int>(idle_.size());
          for (auto& i : idle_) drop.push_back(std::move(i));
          idle_.clear();
        }
      } else {
        idle_.push_back(std::move(c));
      }
    }
    cv_.notify_all();
    drop.clear();  // PQfinish outside the lock
  }

  int open() const {
    std::lock_guard<std::mutex> l(mu_);
    return open_;
  }
  int leased() const {
    std::lock_guard<std::mutex> l(mu_);
    return leased_;
  }

 private:
  Result<ConnPtr> Connect() {
    // Defaults first: the keywords of the conninfo (expanded from dbname, processed last) override them.
    std::string timeout = std::to_string(std::max(o_.connect_timeout_s, 1));
    const char* keys[] = {"application_name", "connect_timeout", "dbname", nullptr};
    const char* vals[] = {"ferry-collector", timeout.c_str(), o_.conninfo.c_str(), nullptr};
    ConnPtr c(PQconnectdbParams(keys, vals, 1));
    if (!c) return Status::Storage("postgres: out of memory");
    if (PQstatus(c.get()) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(c.get());
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      return Status::Storage("postgres: cannot connect: " + msg);
    }
    std::string st = std::to_string(std::max(o_.statement_timeout_ms, 0));
    std::string lt = std::to_string(std::max(o_.lock_timeout_ms, 0));
    const char* params[] = {st.c_str(), lt.c_str()};
    ResultPtr r(PQexecParams(c.get(),
                             "SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false), "
                             "set_config('client_min_messages', 'warning', false)",
                             2, nullptr, params, nullptr, nullptr, 0));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      return Status::Storage(std::string("postgres: session setup failed: ") + PQerrorMessage(c.get()));
    }
    return c;
  }

  const PgOptions& o_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ConnPtr> idle_;  // guarded by mu_
  int open_ = 0;               // idle + leased (+ connecting); guarded by mu_
  int leased_ = 0;             // guarded by mu_
};

// A leased connection. Rolls back an unfinished transaction and returns the connection to the pool when destroyed.
class PgStore::Tx {
 public:
  Tx(PgPool* pool, ConnPtr c) : pool_(pool), c_(std::move(c)) {}
  ~Tx() {
    if (c_ && PQstatus(c_.get()) == CONNECTION_OK && PQtransactionStatus(c_.get()) != PQTRANS_IDLE) {
      ResultPtr r(PQexec(c_.get(), "ROLLBACK"));
    }
    if (c_ && PQstatus(c_.get()) != CONNECTION_OK) broken_ = true;
    pool_->Release(std::move(c_), broken_);
  }
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;

  // Runs one parameterised statement; fails unless it succeeded (command or rows).
  Result<ResultPtr> Exec(const char* sql, const std::vector<Param>& params = {}) {
    std::vector<const char*> values(params.size());
    for (size_t i = 0; i < params.size(); ++i) values[i] = params[i].null ? nullptr : params[i].v.c_str();
    ResultPtr r(PQexecParams(c_.get(), sql, static_cast<int>(params.size()), nullptr, values.data(), nullptr,
                             nullptr, 0));
    ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      ++ok_statements_;
      return r;
    }
    const char* code = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    sqlstate_ = code != nullptr ? code : "";
    if (PQstatus(c_.get()) != CONNECTION_OK || sqlstate_.rfind("08", 0) == 0 || sqlstate_ == "57P01" ||
        sqlstate_ == "57P02" || sqlstate_ == "57P03") {
      broken_ = true;
    }
    std::string msg = r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c_.get());
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    if (msg.empty()) msg = PQerrorMessage(c_.get());
    return Status::Storage("postgres: " + msg + (sqlstate_.empty() ? "" : " (SQLSTATE " + sqlstate_ + ")"));
  }
  Status Run(const char* sql, const std::vector<Param>& params = {}) {
    auto r = Exec(sql, params);
    return r.ok() ? Status::Ok() : r.status();
  }
  // Rows changed by a command.
  Result<int64_t> Count(const char* sql, const std::vector<Param>& params = {}) {
    auto r = Exec(sql, params);
    if (!r.ok()) return r.status();
    return static_cast<int64_t>(std::strtoll(PQcmdTuples(r->get()), nullptr, 10));
  }
  Status Begin() { return Run("BEGIN"); }
  Status Commit() { return Run("COMMIT"); }

  // A quoted identifier (names from the catalog or made by the store).
  std::string Ident(const std::string& name) {
    char* q = PQescapeIdentifier(c_.get(), name.data(), name.size());
    if (q == nullptr) return "\"\"";
    std::string out(q);
    PQfreemem(q);
    return out;
  }

  bool broken() const { return broken_; }
  // Failed on a serialisation failure or a deadlock: the transaction may be run again.
  bool retryable() const { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }
  // Nothing succeeded on the connection yet (a stale pooled connection: running again on a new one is safe).
  bool fresh_failure() const { return ok_statements_ == 0; }

 private:
  PgPool* pool_;
  ConnPtr c_;
  bool broken_ = false;
  int ok_statements_ = 0;
  std::string sqlstate_;
};

namespace {

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

// Runs fn(tx) on a leased connection; again (on a new lease) after a deadlock or serialisation failure, or when a
// stale pooled connection failed before anything ran on it.
template <typename Fn>
auto WithTx(PgPool* pool, Fn&& fn) -> decltype(fn(std::declval<PgStore::Tx&>())) {
  using R = decltype(fn(std::declval<PgStore::Tx&>()));
  for (int attempt = 0;; ++attempt) {
    auto c = pool->Acquire();
    if (!c.ok()) return R(c.status());
    PgStore::Tx tx(pool, std::move(c).value());
    R r = fn(tx);
    if (StatusOf(r).ok()) return r;
    bool again = (tx.retryable() && attempt < 8) || (tx.broken() && tx.fresh_failure() && attempt < 2);
    if (!again) return r;
  }
}

// Runs `sql` (binding $1 = project_id, $2 = text) and tells whether it gave a row.
Result<bool> Exists(PgStore::Tx& tx, const char* sql, int64_t project_id, const std::string& text) {
  auto r = tx.Exec(sql, {I(project_id), T(text)});
  if (!r.ok()) return r.status();
  return PQntuples(r->get()) > 0;
}

Result<std::string> FirstText(PgStore::Tx& tx, const char* sql, int64_t project_id, const std::string& text) {
  auto r = tx.Exec(sql, {I(project_id), T(text)});
  if (!r.ok()) return r.status();
  return PQntuples(r->get()) > 0 ? Get(r->get(), 0, 0) : std::string();
}

}  // namespace

// ---- Open, schema ----

PgStore::PgStore(const PgOptions& options) : opts_(options) {
  if (opts_.pool_size < 1) opts_.pool_size = 1;
  pool_ = std::make_unique<PgPool>(opts_);
}

PgStore::~PgStore() = default;

Result<std::unique_ptr<PgStore>> PgStore::Open(const PgOptions& options) {
  if (!base::EnsureSodium()) return Status::Internal("libsodium failed to start");
  if (options.conninfo.empty()) return Status::InvalidArgument("an empty PostgreSQL connection string");
  std::unique_ptr<PgStore> store(new PgStore(options));
  FERRY_RETURN_IF_ERROR(store->Migrate());
  // This month and the next have their partitions before the first event arrives.
  int64_t now = base::NowMs();
  FERRY_RETURN_IF_ERROR(store->EnsurePartitions({now, MonthOf(now).hi_ms}));
  return store;
}

Status PgStore::Migrate() {
  Status s = WithTx(pool_.get(), [&](Tx& tx) -> Status {
    FERRY_RETURN_IF_ERROR(tx.Begin());
    FERRY_RETURN_IF_ERROR(tx.Run("SELECT pg_advisory_xact_lock($1)", {I(kLockMigrate)}));
    auto has = tx.Exec("SELECT to_regclass('ferry_schema') IS NOT NULL");
    if (!has.ok()) return has.status();
    int64_t v = 0;
    if (GetBool(has->get(), 0, 0)) {
      auto r = tx.Exec("SELECT version FROM ferry_schema");
      if (!r.ok()) return r.status();
      if (PQntuples(r->get()) > 0) v = GetInt(r->get(), 0, 0);
    } else {
      FERRY_RETURN_IF_ERROR(tx.Run("CREATE TABLE ferry_schema(version bigint NOT NULL)"));
      FERRY_RETURN_IF_ERROR(tx.Run("INSERT INTO ferry_schema(version) VALUES(0)"));
    }
    const auto& migrations = Migrations();
    if (v > static_cast<int64_t>(migrations.size())) {
      return Status::Storage("the database has schema version " + std::to_string(v) + ", newer than this build (" +
                             std::to_string(migrations.size()) + ")");
    }
    for (; v < static_cast<int64_t>(migrations.size()); ++v) {
      for (const char* sql : migrations[static_cast<size_t>(v)]) FERRY_RETURN_IF_ERROR(tx.Run(sql));
      FERRY_RETURN_IF_ERROR(tx.Run("UPDATE ferry_schema SET version = $1", {I(v + 1)}));
    }
    // The key of the id hashes (suppression list, audit log): made once per database, shared by its collectors.
    FERRY_RETURN_IF_ERROR(tx.Run("INSERT INTO meta(k, v) VALUES('id_hash_key', $1) ON CONFLICT (k) DO NOTHING",
                                 {T(base::SecretBytes::Random(32).ToHex())}));
    auto key = tx.Exec("SELECT v FROM meta WHERE k = 'id_hash_key'");
    if (!key.ok()) return key.status();
    std::string hex = PQntuples(key->get()) > 0 ? Get(key->get(), 0, 0) : std::string();
    id_key_ = hex.size() == 64 ? base::SecretBytes::FromHex(hex) : base::SecretBytes();
    base::WipeString(hex);
    if (id_key_.size() != 32) return Status::Storage("meta.id_hash_key is damaged");
    return tx.Commit();
  });
  static_assert(kPgSchemaVersion == 1, "one migration per schema version");
  return s;
}

Result<int64_t> PgStore::SchemaVersion() {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<int64_t> {
    auto r = tx.Exec("SELECT version FROM ferry_schema");
    if (!r.ok()) return r.status();
    return PQntuples(r->get()) > 0 ? GetInt(r->get(), 0, 0) : int64_t{0};
  });
}

Status PgStore::EnsurePartitions(const std::vector<int64_t>& timestamps_ms) {
  int64_t now = base::NowMs();
  std::vector<Month> wanted;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (int64_t ts : timestamps_ms) {
      // Only within a window around now: a client cannot make the store create partitions for any month it likes.
      if (ts < now - 2 * 366 * kDayMs || ts > now + 62 * kDayMs) continue;
      Month m = MonthOf(ts);
      auto it = partitions_.find(m.lo_ms);
      if (it != partitions_.end() && (it->second == 0 || it->second > now)) continue;
      if (std::none_of(wanted.begin(), wanted.end(), [&](const Month& w) { return w.lo_ms == m.lo_ms; })) {
        wanted.push_back(m);
      }
    }
  }
  for (const Month& m : wanted) {
    std::string name = PartitionName(m);
    Status s = WithTx(pool_.get(), [&](Tx& tx) -> Status {
      FERRY_RETURN_IF_ERROR(tx.Begin());
      FERRY_RETURN_IF_ERROR(tx.Run("SELECT pg_advisory_xact_lock($1)", {I(kLockPartitions)}));
      auto have = tx.Exec("SELECT 1 FROM event_partitions WHERE name = $1", {T(name)});
      if (!have.ok()) return have.status();
      if (PQntuples(have->get()) == 0) {
        // DDL takes no parameters: the name and the bounds are made here from integers.
        std::string ddl = "CREATE TABLE " + tx.Ident(name) + " PARTITION OF events FOR VALUES FROM (" +
                          std::to_string(m.lo_ms) + ") TO (" + std::to_string(m.hi_ms) + ")";
        FERRY_RETURN_IF_ERROR(tx.Run(ddl.c_str()));
        FERRY_RETURN_IF_ERROR(tx.Run("INSERT INTO event_partitions(name, lo_ms, hi_ms) VALUES($1, $2, $3)",
                                     {T(name), I(m.lo_ms), I(m.hi_ms)}));
      }
      return tx.Commit();
    });
    std::lock_guard<std::mutex> l(mu_);
    // A month whose rows already sit in the DEFAULT partition cannot get its own: its events stay there (still
    // correct, purged row by row). Any other failure is retried later; the events go to DEFAULT meanwhile.
    partitions_[m.lo_ms] = s.ok() ? 0 : now + kPartitionRetryMs;
    if (!s.ok() && s.message().find("SQLSTATE 08") != std::string::npos) return s;
  }
  return Status::Ok();
}

Result<std::vector<std::string>> PgStore::EventPartitions() {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<std::vector<std::string>> {
    auto r = tx.Exec(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "LEFT JOIN event_partitions p ON p.name = c.relname "
        "WHERE i.inhparent = 'events'::regclass ORDER BY p.lo_ms NULLS LAST, c.relname");
    if (!r.ok()) return r.status();
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(Get(r->get(), i, 0));
    return out;
  });
}

int PgStore::PoolOpen() const { return pool_->open(); }
int PgStore::PoolLeased() const { return pool_->leased(); }

Status PgStore::Check() {
  return WithTx(pool_.get(), [&](Tx& tx) -> Status { return tx.Run("SELECT 1"); });
}

// ---- Keys, ingest ----

Result<std::string> PgStore::CreateWriteKey(const std::string& project) {
  if (project.empty() || project.size() > 200) return Status::InvalidArgument("a project name is 1-200 bytes");
  std::string key = "fw_" + base::RandomHex(32);
  std::string hash = SecretHash(key);
  std::string hash_hex = HexOf(reinterpret_cast<const unsigned char*>(hash.data()), hash.size());
  Status s = WithTx(pool_.get(), [&](Tx& tx) -> Status {
    int64_t now = base::NowMs();
    FERRY_RETURN_IF_ERROR(tx.Begin());
    FERRY_RETURN_IF_ERROR(tx.Run(
        "INSERT INTO projects(name, created_ms) VALUES($1, $2) ON CONFLICT (name) DO NOTHING", {T(project), I(now)}));
    FERRY_RETURN_IF_ERROR(
        tx.Run("INSERT INTO write_keys(project_id, key_hash, prefix, created_ms) "
               "SELECT id, $2, $3, $4 FROM projects WHERE name = $1",
               {T(project), T(hash_hex), T(key.substr(0, 7)), I(now)}));
    return tx.Commit();
  });
  if (!s.ok()) return s;
  return key;
}

Result<std::optional<WriteKeyInfo>> PgStore::LookupWriteKey(const std::string& key) {
  std::string hash = SecretHash(key);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = key_cache_.find(hash);
    if (it != key_cache_.end()) return std::optional<WriteKeyInfo>(it->second);
  }
  std::string hash_hex = HexOf(reinterpret_cast<const unsigned char*>(hash.data()), hash.size());
  auto found = WithTx(pool_.get(), [&](Tx& tx) -> Result<std::optional<WriteKeyInfo>> {
    auto r = tx.Exec(
        "SELECT p.id, p.name FROM write_keys k JOIN projects p ON p.id = k.project_id "
        "WHERE k.key_hash = $1 AND k.revoked_ms IS NULL",
        {T(hash_hex)});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<WriteKeyInfo>();
    return std::optional<WriteKeyInfo>(WriteKeyInfo{GetInt(r->get(), 0, 0), Get(r->get(), 0, 1)});
  });
  if (found.ok() && found->has_value()) {
    std::lock_guard<std::mutex> l(mu_);
    if (key_cache_.size() > 10000) key_cache_.clear();
    key_cache_.emplace(hash, **found);
  }
  return found;
}

std::string PgStore::IdHash(const std::string& id) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(id.data()), id.size(), id_key_.data(),
                     id_key_.size());
  return HexOf(h, sizeof h);
}

Result<bool> PgStore::IsSuppressed(int64_t project_id, const std::string& id_hash) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<bool> {
    return Exists(tx, "SELECT 1 FROM suppressions WHERE project_id = $1 AND id_hash = $2", project_id, id_hash);
  });
}

Status PgStore::Suppress(int64_t project_id, const std::string& id_hash) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Status {
    return tx.Run(
        "INSERT INTO suppressions(project_id, id_hash, created_ms) VALUES($1, $2, $3) ON CONFLICT DO NOTHING",
        {I(project_id), T(id_hash), I(base::NowMs())});
  });
}

Status PgStore::Insert(std::vector<InsertRequest*>& requests) {
  std::vector<int64_t> stamps;
  for (InsertRequest* req : requests) {
    for (const StoredEvent& e : req->events) stamps.push_back(e.timestamp_ms);
  }
  Status s = EnsurePartitions(stamps);
  if (s.ok()) s = WithTx(pool_.get(), [&](Tx& tx) { return InsertOnce(tx, requests); });
  if (!s.ok()) {
    for (InsertRequest* r : requests) r->outcomes.clear();
  }
  return s;
}

