#include "collector/engines/postgres/pg_store.h"

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

#include "collector/store/audit.h"
#include "lib/base/digest.h"
#include "lib/base/ids.h"
#include "lib/base/time.h"

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
bool GetBool(const PGresult* r, int row, int col) {
  return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

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
  mo.hi_ms =
      mo.month == 12 ? DaysFromCivil(mo.year + 1, 1, 1) * kDayMs : DaysFromCivil(mo.year, mo.month + 1, 1) * kDayMs;
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
          "CREATE TABLE requests(id text PRIMARY KEY, kind text NOT NULL, project text NOT NULL, subject text NOT "
          "NULL, "
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
    ResultPtr r(
        PQexecParams(c.get(),
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
      ResultPtr r(PQexecParams(c_.get(), "ROLLBACK", 0, nullptr, nullptr, nullptr, nullptr, 0));
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
    ResultPtr r(
        PQexecParams(c_.get(), sql, static_cast<int>(params.size()), nullptr, values.data(), nullptr, nullptr, 0));
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
    bool ddl_failed = false;
    Status s = WithTx(pool_.get(), [&](Tx& tx) -> Status {
      FERRY_RETURN_IF_ERROR(tx.Begin());
      FERRY_RETURN_IF_ERROR(tx.Run("SELECT pg_advisory_xact_lock($1)", {I(kLockPartitions)}));
      auto have = tx.Exec("SELECT 1 FROM event_partitions WHERE name = $1", {T(name)});
      if (!have.ok()) return have.status();
      if (PQntuples(have->get()) == 0) {
        // DDL takes no parameters: the name and the bounds are made here from integers.
        std::string ddl = "CREATE TABLE " + tx.Ident(name) + " PARTITION OF events FOR VALUES FROM (" +
                          std::to_string(m.lo_ms) + ") TO (" + std::to_string(m.hi_ms) + ")";
        Status created = tx.Run(ddl.c_str());
        ddl_failed = !created.ok() && !tx.broken();
        FERRY_RETURN_IF_ERROR(created);
        FERRY_RETURN_IF_ERROR(tx.Run("INSERT INTO event_partitions(name, lo_ms, hi_ms) VALUES($1, $2, $3)",
                                     {T(name), I(m.lo_ms), I(m.hi_ms)}));
      }
      return tx.Commit();
    });
    if (!s.ok() && !ddl_failed) return s;  // the database is unreachable: the batch fails (503) and is resent
    // A month whose rows already sit in the DEFAULT partition cannot get its own (the DDL fails): its events stay
    // there (still correct, purged row by row) and the DDL is tried again an hour later.
    std::lock_guard<std::mutex> l(mu_);
    partitions_[m.lo_ms] = s.ok() ? 0 : now + kPartitionRetryMs;
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
  std::string hash = base::Blake2b256(key);
  std::string hash_hex = base::Hex(hash);
  Status s = WithTx(pool_.get(), [&](Tx& tx) -> Status {
    int64_t now = base::NowMs();
    FERRY_RETURN_IF_ERROR(tx.Begin());
    FERRY_RETURN_IF_ERROR(tx.Run("INSERT INTO projects(name, created_ms) VALUES($1, $2) ON CONFLICT (name) DO NOTHING",
                                 {T(project), I(now)}));
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
  std::string hash = base::Blake2b256(key);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = key_cache_.find(hash);
    if (it != key_cache_.end()) return std::optional<WriteKeyInfo>(it->second);
  }
  std::string hash_hex = base::Hex(hash);
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
  return base::Blake2b256Hex(id, std::string_view(reinterpret_cast<const char*>(id_key_.data()), id_key_.size()));
}

Result<bool> PgStore::IsSuppressed(int64_t project_id, const std::string& id_hash) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<bool> {
    return Exists(tx, "SELECT 1 FROM suppressions WHERE project_id = $1 AND id_hash = $2", project_id, id_hash);
  });
}

Status PgStore::Suppress(int64_t project_id, const std::string& id_hash) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Status {
    return tx.Run("INSERT INTO suppressions(project_id, id_hash, created_ms) VALUES($1, $2, $3) ON CONFLICT DO NOTHING",
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

Status PgStore::InsertOnce(Tx& tx, std::vector<InsertRequest*>& requests) {
  for (InsertRequest* req : requests) req->outcomes.assign(req->events.size(), InsertOutcome::kAccepted);
  FERRY_RETURN_IF_ERROR(tx.Begin());
  // Shared against an erasure's exclusive lock: an erasure waits for ingest transactions in flight, and a batch that
  // starts after an erasure committed sees its suppressions (each statement reads what committed before it began).
  FERRY_RETURN_IF_ERROR(tx.Run("SELECT pg_advisory_xact_lock_shared($1)", {I(kLockErase)}));

  // Suppressed subjects: one query for the hashes of every id in the batch.
  std::set<std::pair<int64_t, std::string>> suppressed;
  {
    std::vector<int64_t> pids;
    std::vector<std::string> hashes;
    for (InsertRequest* req : requests) {
      for (const StoredEvent& e : req->events) {
        for (const std::string* id : {&e.user_id, &e.anonymous_id}) {
          if (id->empty()) continue;
          pids.push_back(req->project_id);
          hashes.push_back(IdHash(*id));
        }
      }
    }
    if (!pids.empty()) {
      auto r = tx.Exec(
          "SELECT s.project_id, s.id_hash FROM suppressions s "
          "JOIN unnest($1::bigint[], $2::text[]) AS u(p, h) ON s.project_id = u.p AND s.id_hash = u.h",
          {T(IntArray(pids)), T(TextArray(hashes))});
      if (!r.ok()) return r.status();
      for (int i = 0; i < PQntuples(r->get()); ++i) suppressed.emplace(GetInt(r->get(), i, 0), Get(r->get(), i, 1));
    }
  }
  auto is_suppressed = [&](int64_t pid, const StoredEvent& e) {
    if (suppressed.empty()) return false;
    return (!e.user_id.empty() && suppressed.count({pid, IdHash(e.user_id)})) ||
           (!e.anonymous_id.empty() && suppressed.count({pid, IdHash(e.anonymous_id)}));
  };

  // Dedup: claim (project, messageId) in event_ids, in key order so that two collectors inserting overlapping
  // batches take the unique-index entries in the same order (no deadlock); a claim another transaction holds is
  // waited for, then skipped once that one commits.
  std::set<std::pair<int64_t, std::string>> claimed;
  {
    std::vector<int64_t> pids, stamps;
    std::vector<std::string> mids;
    for (InsertRequest* req : requests) {
      for (size_t i = 0; i < req->events.size(); ++i) {
        const StoredEvent& e = req->events[i];
        if (is_suppressed(req->project_id, e)) {
          req->outcomes[i] = InsertOutcome::kSuppressed;
          continue;
        }
        pids.push_back(req->project_id);
        mids.push_back(e.message_id);
        stamps.push_back(e.timestamp_ms);
      }
    }
    if (!pids.empty()) {
      auto r = tx.Exec(
          "INSERT INTO event_ids(project_id, message_id, timestamp_ms) "
          "SELECT p, m, t FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(p, m, t) ORDER BY p, m "
          "ON CONFLICT DO NOTHING RETURNING project_id, message_id",
          {T(IntArray(pids)), T(TextArray(mids)), T(IntArray(stamps))});
      if (!r.ok()) return r.status();
      for (int i = 0; i < PQntuples(r->get()); ++i) claimed.emplace(GetInt(r->get(), i, 0), Get(r->get(), i, 1));
    }
  }

  // The accepted events, in batch order, in one statement.
  std::vector<int64_t> pids, stamps, received;
  std::vector<std::string> mids, types, users, anons, names, purposes, bodies;
  std::vector<std::pair<InsertRequest*, const StoredEvent*>> accepted;
  for (InsertRequest* req : requests) {
    for (size_t i = 0; i < req->events.size(); ++i) {
      if (req->outcomes[i] == InsertOutcome::kSuppressed) continue;
      const StoredEvent& e = req->events[i];
      if (claimed.erase({req->project_id, e.message_id}) == 0) {
        req->outcomes[i] = InsertOutcome::kDuplicate;
        continue;
      }
      accepted.emplace_back(req, &e);
      pids.push_back(req->project_id);
      mids.push_back(e.message_id);
      types.push_back(e.type);
      users.push_back(e.user_id);
      anons.push_back(e.anonymous_id);
      names.push_back(e.name);
      purposes.push_back(e.purpose);
      stamps.push_back(e.timestamp_ms);
      received.push_back(e.received_ms);
      bodies.push_back(e.body);
    }
  }
  if (!accepted.empty()) {
    FERRY_RETURN_IF_ERROR(
        tx.Run("INSERT INTO events(project_id, message_id, type, user_id, anonymous_id, name, purpose, timestamp_ms, "
               "received_ms, body) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], "
               "$6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::text[])",
               {T(IntArray(pids)), T(TextArray(mids)), T(TextArray(types)), T(TextArray(users, true)),
                T(TextArray(anons, true)), T(TextArray(names, true)), T(TextArray(purposes, true)), T(IntArray(stamps)),
                T(IntArray(received)), T(TextArray(bodies))}));
  }
  // Consent records, traits and identity links (rare events: one statement each).
  for (const auto& [req, ev] : accepted) {
    const StoredEvent& e = *ev;
    if (e.type == "consent") {
      FERRY_RETURN_IF_ERROR(
          tx.Run("INSERT INTO consent_ledger(project_id, message_id, user_id, anonymous_id, purpose, state, previous, "
                 "timestamp_ms, received_ms, device) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                 {I(req->project_id), T(e.message_id), Opt(e.user_id), Opt(e.anonymous_id), T(e.consent_purpose),
                  T(e.consent_state), Opt(e.consent_previous), I(e.timestamp_ms), I(e.received_ms), Opt(e.device)}));
    }
    if (e.type == "identify" && !e.traits.empty()) {
      json t = json::parse(e.traits, nullptr, false);
      if (t.is_object()) {
        const std::string& subject = e.user_id.empty() ? e.anonymous_id : e.user_id;
        for (const auto& [k, v] : t.items()) {
          FERRY_RETURN_IF_ERROR(
              tx.Run("INSERT INTO traits(project_id, subject_id, k, v, updated_ms) VALUES($1, $2, $3, $4, $5) "
                     "ON CONFLICT (project_id, subject_id, k) DO UPDATE SET v = EXCLUDED.v, updated_ms = "
                     "EXCLUDED.updated_ms",
                     {I(req->project_id), T(subject), T(k), T(v.dump(-1, ' ', false, json::error_handler_t::replace)),
                      I(e.received_ms)}));
        }
      }
    }
    auto add_link = [&](const char* kind, const std::string& from) -> Status {
      return tx.Run(
          "INSERT INTO identity_links(project_id, from_kind, from_id, user_id, source, first_seen_ms) "
          "VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
          {I(req->project_id), T(kind), T(from), T(e.user_id), T(e.type), I(e.timestamp_ms)});
    };
    if (!e.user_id.empty()) {
      if ((e.type == "identify" || e.type == "alias") && !e.anonymous_id.empty()) {
        FERRY_RETURN_IF_ERROR(add_link("anonymousId", e.anonymous_id));
      }
      if (e.type == "alias" && !e.previous_id.empty() && e.previous_id != e.user_id) {
        FERRY_RETURN_IF_ERROR(add_link("previousId", e.previous_id));
      }
    }
  }
  // Drop counters, summed per (project, reason) and updated in key order.
  std::map<std::pair<int64_t, std::string>, int64_t> drops;
  for (InsertRequest* req : requests) {
    for (const auto& [reason, count] : req->dropped) drops[{req->project_id, reason}] += count;
  }
  for (const auto& [k, count] : drops) {
    FERRY_RETURN_IF_ERROR(
        tx.Run("INSERT INTO dropped_counters(project_id, reason, count) VALUES($1, $2, $3) "
               "ON CONFLICT (project_id, reason) DO UPDATE SET count = dropped_counters.count + EXCLUDED.count",
               {I(k.first), T(k.second), I(count)}));
  }
  return tx.Commit();
}

Result<std::vector<EventRow>> PgStore::DumpEvents(const std::string& project) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<std::vector<EventRow>> {
    auto r = tx.Exec(
        "SELECT p.name, e.message_id, e.type, e.user_id, e.anonymous_id, e.name, e.purpose, e.timestamp_ms, "
        "e.received_ms, e.body FROM events e JOIN projects p ON p.id = e.project_id "
        "WHERE $1 = '' OR p.name = $1 ORDER BY e.id",
        {T(project)});
    if (!r.ok()) return r.status();
    std::vector<EventRow> rows;
    const PGresult* res = r->get();
    for (int i = 0; i < PQntuples(res); ++i) {
      EventRow e;
      e.project = Get(res, i, 0);
      e.message_id = Get(res, i, 1);
      e.type = Get(res, i, 2);
      e.user_id = Get(res, i, 3);
      e.anonymous_id = Get(res, i, 4);
      e.name = Get(res, i, 5);
      e.purpose = Get(res, i, 6);
      e.timestamp_ms = GetInt(res, i, 7);
      e.received_ms = GetInt(res, i, 8);
      e.body = Get(res, i, 9);
      rows.push_back(std::move(e));
    }
    return rows;
  });
}

Result<std::map<std::string, int64_t>> PgStore::DroppedCounters(const std::string& project) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<std::map<std::string, int64_t>> {
    auto r = tx.Exec(
        "SELECT d.reason, d.count FROM dropped_counters d JOIN projects p ON p.id = d.project_id WHERE p.name = $1",
        {T(project)});
    if (!r.ok()) return r.status();
    std::map<std::string, int64_t> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out[Get(r->get(), i, 0)] = GetInt(r->get(), i, 1);
    return out;
  });
}

// ---- Subjects ----

Result<std::vector<std::pair<int64_t, std::string>>> PgStore::Projects(Tx& tx, const std::string& name) {
  auto r = tx.Exec("SELECT id, name FROM projects WHERE $1 = '' OR name = $1 ORDER BY id", {T(name)});
  if (!r.ok()) return r.status();
  std::vector<std::pair<int64_t, std::string>> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) out.emplace_back(GetInt(r->get(), i, 0), Get(r->get(), i, 1));
  return out;
}

Result<std::optional<PgStore::Resolved>> PgStore::Resolve(Tx& tx, int64_t project_id, const std::string& project,
                                                          const std::string& id) {
  using OptR = std::optional<Resolved>;
  if (id.empty()) return OptR();
  // Same walk as the embedded store: climb to the userId, then follow links and events down from it.
  std::string user;
  std::set<std::string> climbed;
  std::string at = id;
  for (int hops = 0; hops < 64; ++hops) {
    climbed.insert(at);
    auto up = FirstText(tx,
                        "SELECT user_id FROM identity_links WHERE project_id = $1 AND from_id = $2 "
                        "ORDER BY first_seen_ms, id LIMIT 1",
                        project_id, at);
    if (!up.ok()) return up.status();
    if (up->empty() || climbed.count(*up)) break;
    user = *up;
    at = *up;
  }
  if (user.empty()) {
    static const char* const kUserProbes[] = {
        "SELECT 1 FROM events WHERE project_id = $1 AND user_id = $2 LIMIT 1",
        "SELECT 1 FROM identity_links WHERE project_id = $1 AND user_id = $2 LIMIT 1",
        "SELECT 1 FROM consent_ledger WHERE project_id = $1 AND user_id = $2 LIMIT 1",
    };
    bool is_user = false;
    for (const char* sql : kUserProbes) {
      auto e = Exists(tx, sql, project_id, id);
      if (!e.ok()) return e.status();
      if (*e) {
        is_user = true;
        break;
      }
    }
    if (is_user) {
      user = id;
    } else {
      auto seen = FirstText(tx,
                            "SELECT user_id FROM events WHERE project_id = $1 AND anonymous_id = $2 "
                            "AND user_id IS NOT NULL LIMIT 1",
                            project_id, id);
      if (!seen.ok()) return seen.status();
      user = *seen;
    }
  }

  Resolved r;
  r.project_id = project_id;
  r.project = project;
  std::unordered_set<std::string> seen;
  auto add = [&](SubjectIdentity ident) {
    if (seen.size() >= kMaxSubjectIds || !seen.insert(ident.id).second) return false;
    r.ids.push_back(ident.id);
    r.idents.push_back(std::move(ident));
    return true;
  };
  if (user.empty()) {
    static const char* const kProbes[] = {
        "SELECT 1 FROM events WHERE project_id = $1 AND anonymous_id = $2 LIMIT 1",
        "SELECT 1 FROM consent_ledger WHERE project_id = $1 AND anonymous_id = $2 LIMIT 1",
        "SELECT 1 FROM traits WHERE project_id = $1 AND subject_id = $2 LIMIT 1",
    };
    bool known = false;
    for (const char* sql : kProbes) {
      auto e = Exists(tx, sql, project_id, id);
      if (!e.ok()) return e.status();
      if (*e) {
        known = true;
        break;
      }
    }
    if (!known) return OptR();
    add({"anonymousId", id, "", "event", 0});
    return OptR(std::move(r));
  }

  r.user_id = user;
  add({"userId", user, "", "event", 0});
  std::deque<std::string> users = {user};
  while (!users.empty() && seen.size() < kMaxSubjectIds) {
    std::string u = users.front();
    users.pop_front();
    auto links = tx.Exec(
        "SELECT from_kind, from_id, source, first_seen_ms FROM identity_links WHERE project_id = $1 AND user_id = $2 "
        "ORDER BY first_seen_ms, id",
        {I(project_id), T(u)});
    if (!links.ok()) return links.status();
    for (int i = 0; i < PQntuples(links->get()); ++i) {
      std::string kind = Get(links->get(), i, 0);
      std::string from = Get(links->get(), i, 1);
      if (add({kind, from, u, Get(links->get(), i, 2), GetInt(links->get(), i, 3)}) && kind == "previousId") {
        users.push_back(from);
      }
    }
    for (const char* sql :
         {"SELECT DISTINCT anonymous_id FROM events WHERE project_id = $1 AND user_id = $2 AND anonymous_id IS NOT "
          "NULL",
          "SELECT DISTINCT anonymous_id FROM consent_ledger WHERE project_id = $1 AND user_id = $2 AND anonymous_id IS "
          "NOT NULL"}) {
      auto a = tx.Exec(sql, {I(project_id), T(u)});
      if (!a.ok()) return a.status();
      for (int i = 0; i < PQntuples(a->get()); ++i) add({"anonymousId", Get(a->get(), i, 0), u, "event", 0});
    }
  }
  return OptR(std::move(r));
}

Result<std::vector<PgStore::Resolved>> PgStore::ResolveAll(Tx& tx, const SubjectQuery& q) {
  std::vector<Resolved> out;
  auto projects = Projects(tx, q.project);
  if (!projects.ok()) return projects.status();
  for (const auto& [pid, name] : *projects) {
    auto r = Resolve(tx, pid, name, q.id);
    if (!r.ok()) return r.status();
    if (r->has_value()) out.push_back(std::move(**r));
  }
  return out;
}

Result<SubjectSummary> PgStore::Summary(Tx& tx, const Resolved& r) {
  SubjectSummary s;
  s.project = r.project;
  s.project_id = r.project_id;
  s.user_id = r.user_id;
  s.identities = r.idents;
  std::string ids = TextArray(r.ids);
  for (const char* sql : {"SELECT type, count(*), min(timestamp_ms), max(timestamp_ms) FROM events "
                          "WHERE project_id = $1 AND user_id = ANY($2::text[]) GROUP BY type",
                          "SELECT type, count(*), min(timestamp_ms), max(timestamp_ms) FROM events "
                          "WHERE project_id = $1 AND anonymous_id = ANY($2::text[]) "
                          "AND (user_id IS NULL OR NOT (user_id = ANY($2::text[]))) GROUP BY type"}) {
    auto c = tx.Exec(sql, {I(r.project_id), T(ids)});
    if (!c.ok()) return c.status();
    for (int i = 0; i < PQntuples(c->get()); ++i) {
      int64_t n = GetInt(c->get(), i, 1);
      if (n == 0) continue;
      s.events_by_type[Get(c->get(), i, 0)] += n;
      s.event_count += n;
      int64_t lo = GetInt(c->get(), i, 2), hi = GetInt(c->get(), i, 3);
      if (s.first_seen_ms == 0 || lo < s.first_seen_ms) s.first_seen_ms = lo;
      if (hi > s.last_seen_ms) s.last_seen_ms = hi;
    }
  }
  {
    auto c = tx.Exec(
        "SELECT purpose, state, timestamp_ms FROM consent_ledger WHERE project_id = $1 AND "
        "(user_id = ANY($2::text[]) OR anonymous_id = ANY($2::text[])) ORDER BY timestamp_ms, id",
        {I(r.project_id), T(ids)});
    if (!c.ok()) return c.status();
    std::map<std::string, ConsentState> latest;
    for (int i = 0; i < PQntuples(c->get()); ++i) {
      latest[Get(c->get(), i, 0)] = {Get(c->get(), i, 0), Get(c->get(), i, 1), GetInt(c->get(), i, 2)};
    }
    for (auto& [p, st] : latest) s.consent.push_back(std::move(st));
  }
  {
    auto t = tx.Exec(
        "SELECT k, v FROM traits WHERE project_id = $1 AND subject_id = ANY($2::text[]) "
        "ORDER BY subject_id = $3, updated_ms",
        {I(r.project_id), T(ids), T(r.user_id)});
    if (!t.ok()) return t.status();
    json traits = json::object();
    for (int i = 0; i < PQntuples(t->get()); ++i) {
      std::string v = Get(t->get(), i, 1);
      json j = json::parse(v, nullptr, false);
      traits[Get(t->get(), i, 0)] = j.is_discarded() ? json(v) : j;
    }
    s.traits = traits.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return s;
}

Result<std::vector<SubjectSummary>> PgStore::FindSubject(const SubjectQuery& q) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<std::vector<SubjectSummary>> {
    FERRY_RETURN_IF_ERROR(tx.Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    auto all = ResolveAll(tx, q);
    if (!all.ok()) return all.status();
    std::vector<SubjectSummary> out;
    for (const Resolved& r : *all) {
      auto s = Summary(tx, r);
      if (!s.ok()) return s.status();
      out.push_back(std::move(s).value());
    }
    FERRY_RETURN_IF_ERROR(tx.Commit());
    return out;
  });
}

Result<bool> PgStore::ExportSubject(const SubjectQuery& q, ExportVisitor& visitor) {
  // One read-only snapshot for the whole export; events and consent records come through server-side cursors, a page
  // at a time, so memory does not grow with the number of events. The connection stays leased while the visitor
  // runs (it may block on a slow reader); no lock is held in this process.
  auto c = pool_->Acquire();
  if (!c.ok()) return c.status();
  Tx tx(pool_.get(), std::move(c).value());
  FERRY_RETURN_IF_ERROR(tx.Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  auto all = ResolveAll(tx, q);
  if (!all.ok()) return all.status();
  if (all->empty()) return false;
  std::vector<SubjectSummary> summaries;
  for (const Resolved& r : *all) {
    auto s = Summary(tx, r);
    if (!s.ok()) return s.status();
    summaries.push_back(std::move(s).value());
  }
  const Status stopped = Status::Closed("the export was stopped by its reader");
  for (size_t i = 0; i < all->size(); ++i) {
    const Resolved& r = (*all)[i];
    std::string ids = TextArray(r.ids);
    if (!visitor.BeginProject(summaries[i])) return stopped;
    FERRY_RETURN_IF_ERROR(
        tx.Run("DECLARE consent_cur NO SCROLL CURSOR FOR SELECT message_id, user_id, anonymous_id, purpose, state, "
               "previous, timestamp_ms, received_ms, device FROM consent_ledger WHERE project_id = $1 AND "
               "(user_id = ANY($2::text[]) OR anonymous_id = ANY($2::text[])) ORDER BY id",
               {I(r.project_id), T(ids)}));
    for (;;) {
      auto page = tx.Exec("FETCH 512 FROM consent_cur");
      if (!page.ok()) return page.status();
      const PGresult* p = page->get();
      int n = PQntuples(p);
      for (int j = 0; j < n; ++j) {
        ConsentRecord rec{Get(p, j, 0), Get(p, j, 1),    Get(p, j, 2),    Get(p, j, 3), Get(p, j, 4),
                          Get(p, j, 5), GetInt(p, j, 6), GetInt(p, j, 7), Get(p, j, 8)};
        if (!visitor.Consent(rec)) return stopped;
      }
      if (n < kPage) break;
    }
    FERRY_RETURN_IF_ERROR(tx.Run("CLOSE consent_cur"));
    FERRY_RETURN_IF_ERROR(
        tx.Run("DECLARE events_cur NO SCROLL CURSOR FOR SELECT message_id, type, user_id, anonymous_id, name, "
               "purpose, timestamp_ms, received_ms, body FROM events WHERE project_id = $1 AND "
               "(user_id = ANY($2::text[]) OR anonymous_id = ANY($2::text[])) ORDER BY id",
               {I(r.project_id), T(ids)}));
    for (;;) {
      auto page = tx.Exec("FETCH 512 FROM events_cur");
      if (!page.ok()) return page.status();
      const PGresult* p = page->get();
      int n = PQntuples(p);
      for (int j = 0; j < n; ++j) {
        EventRow e;
        e.project = r.project;
        e.message_id = Get(p, j, 0);
        e.type = Get(p, j, 1);
        e.user_id = Get(p, j, 2);
        e.anonymous_id = Get(p, j, 3);
        e.name = Get(p, j, 4);
        e.purpose = Get(p, j, 5);
        e.timestamp_ms = GetInt(p, j, 6);
        e.received_ms = GetInt(p, j, 7);
        e.body = Get(p, j, 8);
        if (!visitor.Event(e)) return stopped;
      }
      if (n < kPage) break;
    }
    FERRY_RETURN_IF_ERROR(tx.Run("CLOSE events_cur"));
    if (!visitor.EndProject()) return stopped;
  }
  FERRY_RETURN_IF_ERROR(tx.Commit());
  return true;
}

Status PgStore::EraseIds(Tx& tx, int64_t project_id, const std::vector<std::string>& ids, bool anonymous_only,
                         EraseReceipt* receipt) {
  for (const char* t : {"events", "consent_ledger", "identity_links", "traits", "requests_redacted"}) {
    receipt->erased.emplace(t, 0);
  }
  if (ids.empty()) return Status::Ok();
  std::string arr = TextArray(ids);
  struct Step {
    const char* table;
    const char* full;  // following links: userIds and anonymousIds
    const char* anon;  // a device's own anonymousIds only
  };
  static const Step kSteps[] = {
      {"events",
       "DELETE FROM events WHERE project_id = $1 AND (user_id = ANY($2::text[]) OR "
       "anonymous_id = ANY($2::text[]))",
       "DELETE FROM events WHERE project_id = $1 AND anonymous_id = ANY($2::text[])"},
      {"consent_ledger",
       "DELETE FROM consent_ledger WHERE project_id = $1 AND (user_id = ANY($2::text[]) OR "
       "anonymous_id = ANY($2::text[]))",
       "DELETE FROM consent_ledger WHERE project_id = $1 AND anonymous_id = ANY($2::text[])"},
      {"identity_links",
       "DELETE FROM identity_links WHERE project_id = $1 AND (from_id = ANY($2::text[]) OR user_id = ANY($2::text[]))",
       "DELETE FROM identity_links WHERE project_id = $1 AND from_id = ANY($2::text[])"},
      {"traits", "DELETE FROM traits WHERE project_id = $1 AND subject_id = ANY($2::text[])",
       "DELETE FROM traits WHERE project_id = $1 AND subject_id = ANY($2::text[])"},
  };
  for (const Step& s : kSteps) {
    auto n = tx.Count(anonymous_only ? s.anon : s.full, {I(project_id), T(arr)});
    if (!n.ok()) return n.status();
    receipt->erased[s.table] += *n;
  }
  std::vector<std::string> hashes;
  for (const std::string& id : ids) hashes.push_back(IdHash(id));
  std::string harr = TextArray(hashes);
  auto red = tx.Count(
      "UPDATE requests r SET subject = 'hash:' || r.subject_hash FROM unnest($1::text[], $2::text[]) AS u(h, i) "
      "WHERE r.subject_hash = u.h AND r.subject = u.i",
      {T(harr), T(arr)});
  if (!red.ok()) return red.status();
  receipt->erased["requests_redacted"] += *red;
  auto sup = tx.Count(
      "INSERT INTO suppressions(project_id, id_hash, created_ms) SELECT $1, h, $3 FROM unnest($2::text[]) AS h "
      "ON CONFLICT DO NOTHING",
      {I(project_id), T(harr), I(base::NowMs())});
  if (!sup.ok()) return sup.status();
  receipt->ids_suppressed += *sup;
  return Status::Ok();
}

Result<EraseReceipt> PgStore::EraseSubject(const SubjectQuery& q, const std::string& request_id) {
  auto out = WithTx(pool_.get(), [&](Tx& tx) -> Result<EraseReceipt> {
    EraseReceipt receipt;
    receipt.request_id = request_id;
    FERRY_RETURN_IF_ERROR(tx.Begin());
    // Waits for ingest transactions in flight (they hold the lock shared) and keeps new ones out until committed.
    FERRY_RETURN_IF_ERROR(tx.Run("SELECT pg_advisory_xact_lock($1)", {I(kLockErase)}));
    auto all = ResolveAll(tx, q);
    if (!all.ok()) return all.status();
    if (all->empty()) {
      auto projects = Projects(tx, q.project);
      if (!projects.ok()) return projects.status();
      for (const auto& [pid, name] : *projects) FERRY_RETURN_IF_ERROR(EraseIds(tx, pid, {q.id}, false, &receipt));
    }
    for (const Resolved& r : *all) {
      receipt.projects.push_back(r.project);
      FERRY_RETURN_IF_ERROR(EraseIds(tx, r.project_id, r.ids, false, &receipt));
    }
    FERRY_RETURN_IF_ERROR(tx.Commit());
    receipt.completed_ms = base::NowMs();
    return receipt;
  });
  return out;
}

Result<EraseReceipt> PgStore::EraseAnonymousIds(int64_t project_id, const std::vector<std::string>& ids,
                                                const std::string& request_id) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<EraseReceipt> {
    EraseReceipt receipt;
    receipt.request_id = request_id;
    FERRY_RETURN_IF_ERROR(tx.Begin());
    FERRY_RETURN_IF_ERROR(tx.Run("SELECT pg_advisory_xact_lock($1)", {I(kLockErase)}));
    std::vector<std::string> anon;
    for (const std::string& id : ids) {
      if (id.empty()) continue;
      // A device may not suppress someone's userId by naming it as one of "its" anonymousIds.
      auto is_user =
          Exists(tx, "SELECT 1 FROM identity_links WHERE project_id = $1 AND user_id = $2 LIMIT 1", project_id, id);
      if (!is_user.ok()) return is_user.status();
      if (!*is_user) {
        is_user = Exists(tx, "SELECT 1 FROM events WHERE project_id = $1 AND user_id = $2 LIMIT 1", project_id, id);
        if (!is_user.ok()) return is_user.status();
      }
      if (!*is_user && std::find(anon.begin(), anon.end(), id) == anon.end()) anon.push_back(id);
    }
    FERRY_RETURN_IF_ERROR(EraseIds(tx, project_id, anon, true, &receipt));
    auto name = tx.Exec("SELECT name FROM projects WHERE id = $1", {I(project_id)});
    if (!name.ok()) return name.status();
    if (PQntuples(name->get()) > 0) receipt.projects.push_back(Get(name->get(), 0, 0));
    FERRY_RETURN_IF_ERROR(tx.Commit());
    receipt.completed_ms = base::NowMs();
    return receipt;
  });
}

Result<std::vector<SubjectSummary>> PgStore::PatchTraits(const SubjectQuery& q, const std::string& patch_json) {
  json patch = json::parse(patch_json, nullptr, false);
  if (patch.is_discarded() || !patch.is_object()) return Status::InvalidArgument("traits must be a JSON object");
  for (const auto& [k, v] : patch.items()) {
    if (k.empty() || k.size() > 200) return Status::InvalidArgument("a trait name is 1-200 bytes");
  }
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<std::vector<SubjectSummary>> {
    std::vector<SubjectSummary> out;
    FERRY_RETURN_IF_ERROR(tx.Begin());
    auto all = ResolveAll(tx, q);
    if (!all.ok()) return all.status();
    int64_t now = base::NowMs();
    for (const Resolved& r : *all) {
      const std::string& holder = r.user_id.empty() ? r.ids.front() : r.user_id;
      std::string ids = TextArray(r.ids);
      for (const auto& [k, v] : patch.items()) {
        FERRY_RETURN_IF_ERROR(
            tx.Run("DELETE FROM traits WHERE project_id = $1 AND subject_id = ANY($2::text[]) AND k = $3",
                   {I(r.project_id), T(ids), T(k)}));
        if (v.is_null()) continue;
        FERRY_RETURN_IF_ERROR(tx.Run(
            "INSERT INTO traits(project_id, subject_id, k, v, updated_ms) VALUES($1, $2, $3, $4, $5) "
            "ON CONFLICT (project_id, subject_id, k) DO UPDATE SET v = EXCLUDED.v, updated_ms = "
            "EXCLUDED.updated_ms",
            {I(r.project_id), T(holder), T(k), T(v.dump(-1, ' ', false, json::error_handler_t::replace)), I(now)}));
      }
      auto s = Summary(tx, r);
      if (!s.ok()) return s.status();
      out.push_back(std::move(s).value());
    }
    FERRY_RETURN_IF_ERROR(tx.Commit());
    return out;
  });
}

Status PgStore::ScanAllText(
    const std::function<bool(std::string_view table, std::string_view column, std::string_view text)>& fn) {
  auto c = pool_->Acquire();
  if (!c.ok()) return c.status();
  Tx tx(pool_.get(), std::move(c).value());
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
    std::string sql = "DECLARE scan_cur NO SCROLL CURSOR FOR SELECT " + tx.Ident(column) + " FROM " + tx.Ident(table) +
                      " WHERE " + tx.Ident(column) + " IS NOT NULL";
    FERRY_RETURN_IF_ERROR(tx.Run(sql.c_str()));
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

// ---- Request register ----

Result<RightsRequest> PgStore::CreateRequest(RightsRequest r) {
  if (r.id.empty()) r.id = "req_" + base::RandomHex(12);
  if (r.subject_hash.empty() && !r.subject.empty()) r.subject_hash = IdHash(r.subject);
  Status s = WithTx(pool_.get(), [&](Tx& tx) -> Status {
    return tx.Run(
        "INSERT INTO requests(id, kind, project, subject, subject_hash, state, source, received_ms, due_ms, acted_by, "
        "acted_ms, result) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        {T(r.id), T(r.kind), T(r.project), T(r.subject), T(r.subject_hash), T(r.state), T(r.source), I(r.received_ms),
         I(r.due_ms), T(r.acted_by), I(r.acted_ms), T(r.result)});
  });
  if (!s.ok()) return s;
  return r;
}

Result<std::optional<RightsRequest>> PgStore::GetRequest(const std::string& id) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<std::optional<RightsRequest>> {
    std::string sql = std::string("SELECT ") + kRequestCols + " FROM requests WHERE id = $1";
    auto r = tx.Exec(sql.c_str(), {T(id)});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<RightsRequest>();
    return std::optional<RightsRequest>(RequestFromRow(r->get(), 0));
  });
}

Result<RequestUpdate> PgStore::UpdateRequest(const std::string& id, const std::string& expected_state,
                                             const std::string& new_state, const std::string& acted_by,
                                             int64_t acted_ms, const std::string& result) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<RequestUpdate> {
    auto n = tx.Count(
        "UPDATE requests SET state = $3, acted_by = $4, acted_ms = $5, result = $6 WHERE id = $1 AND state = $2",
        {T(id), T(expected_state), T(new_state), T(acted_by), I(acted_ms), T(result)});
    if (!n.ok()) return n.status();
    if (*n == 1) return RequestUpdate::kUpdated;
    auto ex = tx.Exec("SELECT 1 FROM requests WHERE id = $1", {T(id)});
    if (!ex.ok()) return ex.status();
    return PQntuples(ex->get()) > 0 ? RequestUpdate::kWrongState : RequestUpdate::kNotFound;
  });
}

Result<std::vector<RightsRequest>> PgStore::ListRequests(const RequestFilter& f) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<std::vector<RightsRequest>> {
    std::string sql = std::string("SELECT ") + kRequestCols +
                      " FROM requests WHERE ($1 = '' OR state = $1) AND ($2 = 0 OR (state NOT IN ('completed', "
                      "'rejected') AND due_ms < $2)) ORDER BY received_ms, id LIMIT $3";
    auto r = tx.Exec(sql.c_str(), {T(f.state), I(f.overdue_at_ms), I(static_cast<int64_t>(f.limit))});
    if (!r.ok()) return r.status();
    std::vector<RightsRequest> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(RequestFromRow(r->get(), i));
    return out;
  });
}

// ---- Audit log ----

Result<AuditEntry> PgStore::AppendAudit(AuditEntry e) {
  if (e.time_ms <= 0) e.time_ms = base::NowMs();
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<AuditEntry> {
    AuditEntry out = e;
    FERRY_RETURN_IF_ERROR(tx.Begin());
    // One appender at a time across every collector on the database: the chain's tip is read and extended under
    // the lock, which is released by the commit.
    FERRY_RETURN_IF_ERROR(tx.Run("SELECT pg_advisory_xact_lock($1)", {I(kLockAudit)}));
    auto last = tx.Exec("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
    if (!last.ok()) return last.status();
    if (PQntuples(last->get()) > 0) {
      out.seq = GetInt(last->get(), 0, 0) + 1;
      out.prev_hash = Get(last->get(), 0, 1);
    } else {
      out.seq = 1;
      out.prev_hash = kAuditGenesis;
    }
    out.hash = AuditChainHash(out.prev_hash, AuditCanonical(out));
    std::string sql =
        std::string("INSERT INTO audit_log(") + kAuditCols + ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    FERRY_RETURN_IF_ERROR(
        tx.Run(sql.c_str(), {I(out.seq), I(out.time_ms), T(out.actor), T(out.role), T(out.action), T(out.subject_hash),
                             T(out.result), T(out.detail), T(out.prev_hash), T(out.hash)}));
    FERRY_RETURN_IF_ERROR(tx.Commit());
    return out;
  });
}

Result<std::vector<AuditEntry>> PgStore::ListAudit(int64_t after_seq, size_t limit, const std::string& subject_hash) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<std::vector<AuditEntry>> {
    std::string sql = std::string("SELECT ") + kAuditCols +
                      " FROM audit_log WHERE seq > $1 AND ($2 = '' OR subject_hash = $2) ORDER BY seq LIMIT $3";
    auto r = tx.Exec(sql.c_str(), {I(after_seq), T(subject_hash), I(static_cast<int64_t>(limit))});
    if (!r.ok()) return r.status();
    std::vector<AuditEntry> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(AuditFromRow(r->get(), i));
    return out;
  });
}

Result<AuditVerifyResult> PgStore::VerifyAudit() {
  AuditChainChecker checker;
  int64_t after = 0;
  for (;;) {
    auto page = ListAudit(after, 2000, "");
    if (!page.ok()) return page.status();
    for (const AuditEntry& e : *page) {
      if (!checker.Add(e)) return checker.Result();
      after = e.seq;
    }
    if (page->size() < 2000) break;
  }
  return checker.Result();
}

// ---- Admin tokens ----

Result<std::string> PgStore::CreateAdminToken(const std::string& name, const std::vector<std::string>& roles) {
  if (roles.empty()) return Status::InvalidArgument("an admin token needs at least one role");
  std::vector<std::string> sorted;
  for (const auto& r : roles) {
    if (!ValidRole(r)) return Status::InvalidArgument("unknown role '" + r + "' (compliance, operator, analyst)");
    if (std::find(sorted.begin(), sorted.end(), r) == sorted.end()) sorted.push_back(r);
  }
  if (name.size() > 200) return Status::InvalidArgument("a token name is at most 200 bytes");
  std::string token = "fa_" + base::RandomHex(32);
  std::string hash = base::Blake2b256(token);
  std::string hash_hex = base::Hex(hash);
  Status s = WithTx(pool_.get(), [&](Tx& tx) -> Status {
    return tx.Run("INSERT INTO admin_tokens(name, token_hash, prefix, roles, created_ms) VALUES($1, $2, $3, $4, $5)",
                  {T(name.empty() ? std::string("admin") : name), T(hash_hex), T(token.substr(0, 9)),
                   T(JoinRoles(sorted)), I(base::NowMs())});
  });
  if (!s.ok()) return s;
  return token;
}

Result<std::optional<AdminTokenInfo>> PgStore::LookupAdminToken(const std::string& token) {
  using OptT = std::optional<AdminTokenInfo>;
  if (token.rfind("fa_", 0) != 0) return OptT();
  std::string hash = base::Blake2b256(token);
  std::string hash_hex = base::Hex(hash);
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<OptT> {
    auto r = tx.Exec(
        "SELECT id, name, prefix, roles, created_ms FROM admin_tokens WHERE token_hash = $1 AND revoked_ms IS NULL",
        {T(hash_hex)});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return OptT();
    const PGresult* p = r->get();
    return OptT(
        AdminTokenInfo{GetInt(p, 0, 0), Get(p, 0, 1), Get(p, 0, 2), SplitRoles(Get(p, 0, 3)), GetInt(p, 0, 4), 0});
  });
}

Result<std::vector<AdminTokenInfo>> PgStore::ListAdminTokens() {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<std::vector<AdminTokenInfo>> {
    auto r =
        tx.Exec("SELECT id, name, prefix, roles, created_ms, coalesce(revoked_ms, 0) FROM admin_tokens ORDER BY id");
    if (!r.ok()) return r.status();
    std::vector<AdminTokenInfo> out;
    const PGresult* p = r->get();
    for (int i = 0; i < PQntuples(p); ++i) {
      out.push_back(
          {GetInt(p, i, 0), Get(p, i, 1), Get(p, i, 2), SplitRoles(Get(p, i, 3)), GetInt(p, i, 4), GetInt(p, i, 5)});
    }
    return out;
  });
}

Result<bool> PgStore::RevokeAdminToken(int64_t id) {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<bool> {
    auto n = tx.Count("UPDATE admin_tokens SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL",
                      {I(id), I(base::NowMs())});
    if (!n.ok()) return n.status();
    return *n == 1;
  });
}

// ---- Retention ----

Result<bool> PgStore::SetRetention(const std::string& project, int64_t max_age_ms) {
  if (project.empty()) return false;
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<bool> {
    auto p = Projects(tx, project);
    if (!p.ok()) return p.status();
    if (p->empty()) return false;
    if (max_age_ms > 0) {
      FERRY_RETURN_IF_ERROR(
          tx.Run("INSERT INTO project_settings(project_id, max_event_age_ms) VALUES($1, $2) "
                 "ON CONFLICT (project_id) DO UPDATE SET max_event_age_ms = EXCLUDED.max_event_age_ms",
                 {I(p->front().first), I(max_age_ms)}));
    } else {
      FERRY_RETURN_IF_ERROR(tx.Run("DELETE FROM project_settings WHERE project_id = $1", {I(p->front().first)}));
    }
    return true;
  });
}

Result<std::map<std::string, int64_t>> PgStore::Retention() {
  return WithTx(pool_.get(), [&](Tx& tx) -> Result<std::map<std::string, int64_t>> {
    auto r =
        tx.Exec("SELECT p.name, s.max_event_age_ms FROM project_settings s JOIN projects p ON p.id = s.project_id");
    if (!r.ok()) return r.status();
    std::map<std::string, int64_t> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out[Get(r->get(), i, 0)] = GetInt(r->get(), i, 1);
    return out;
  });
}

Result<int64_t> PgStore::PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows) {
  // Cutoffs per project (projects kept forever have none).
  std::vector<std::pair<int64_t, int64_t>> cutoffs;
  bool every_project_expires = true;
  {
    auto r = WithTx(pool_.get(), [&](Tx& tx) -> Result<ResultPtr> {
      return tx.Exec(
          "SELECT p.id, coalesce(s.max_event_age_ms, $1) FROM projects p "
          "LEFT JOIN project_settings s ON s.project_id = p.id ORDER BY p.id",
          {I(default_max_age_ms)});
    });
    if (!r.ok()) return r.status();
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      int64_t age = GetInt(r->get(), i, 1);
      if (age > 0) {
        cutoffs.emplace_back(GetInt(r->get(), i, 0), now_ms - age);
      } else {
        every_project_expires = false;
      }
    }
  }
  if (cutoffs.empty()) return int64_t{0};
  int64_t deleted = 0;
  // Whole partitions below every project's cutoff are dropped (no row-by-row delete, no bloat).
  if (every_project_expires) {
    int64_t min_cut = cutoffs.front().second;
    for (const auto& c : cutoffs) min_cut = std::min(min_cut, c.second);
    auto dropped = WithTx(pool_.get(), [&](Tx& tx) -> Result<int64_t> {
      int64_t n = 0;
      FERRY_RETURN_IF_ERROR(tx.Begin());
      FERRY_RETURN_IF_ERROR(tx.Run("SELECT pg_advisory_xact_lock($1)", {I(kLockPartitions)}));
      auto parts = tx.Exec("SELECT name FROM event_partitions WHERE hi_ms <= $1 ORDER BY lo_ms", {I(min_cut)});
      if (!parts.ok()) return parts.status();
      for (int i = 0; i < PQntuples(parts->get()); ++i) {
        std::string name = Get(parts->get(), i, 0);
        std::string count_sql = "SELECT count(*) FROM " + tx.Ident(name);
        auto c = tx.Exec(count_sql.c_str());
        if (!c.ok()) return c.status();
        n += GetInt(c->get(), 0, 0);
        std::string drop = "DROP TABLE " + tx.Ident(name);
        FERRY_RETURN_IF_ERROR(tx.Run(drop.c_str()));
        FERRY_RETURN_IF_ERROR(tx.Run("DELETE FROM event_partitions WHERE name = $1", {T(name)}));
      }
      FERRY_RETURN_IF_ERROR(tx.Commit());
      return n;
    });
    if (!dropped.ok()) return dropped.status();
    deleted += *dropped;
  }
  // The rest row by row, bounded per call.
  auto rows = WithTx(pool_.get(), [&](Tx& tx) -> Result<int64_t> {
    int64_t n = 0;
    FERRY_RETURN_IF_ERROR(tx.Begin());
    for (const auto& [pid, cutoff] : cutoffs) {
      if (deleted + n < max_rows) {
        auto ev = tx.Count(
            "DELETE FROM events WHERE project_id = $1 AND timestamp_ms < $2 AND id IN (SELECT id FROM events WHERE "
            "project_id = $1 AND timestamp_ms < $2 LIMIT $3)",
            {I(pid), I(cutoff), I(max_rows - deleted - n)});
        if (!ev.ok()) return ev.status();
        n += *ev;
      }
      FERRY_RETURN_IF_ERROR(
          tx.Run("DELETE FROM consent_ledger WHERE id IN (SELECT id FROM consent_ledger WHERE project_id = $1 AND "
                 "timestamp_ms < $2 LIMIT $3)",
                 {I(pid), I(cutoff), I(max_rows)}));
      // Dedup keys of expired events (a resend older than the retention would be purged again anyway). They are
      // rows of a non-partitioned table: deleted with a larger budget than events, since a dropped partition leaves
      // all of its keys behind.
      FERRY_RETURN_IF_ERROR(
          tx.Run("DELETE FROM event_ids WHERE (project_id, message_id) IN (SELECT project_id, message_id FROM "
                 "event_ids WHERE project_id = $1 AND timestamp_ms < $2 LIMIT $3)",
                 {I(pid), I(cutoff), I(std::max<int64_t>(max_rows * 20, 10000))}));
    }
    FERRY_RETURN_IF_ERROR(tx.Commit());
    return n;
  });
  if (!rows.ok()) return rows.status();
  return deleted + *rows;
}

}  // namespace ferry::collector
