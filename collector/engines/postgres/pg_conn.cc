// The PostgreSQL engine's connection layer: the pool, leased connections, statements and error codes.
#include "collector/engines/postgres/pg_conn.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <strings.h>

namespace ferry::collector::pg {

using base::Result;
using base::Status;

namespace {

// The binary array form's integers: 4 or 8 bytes, most significant first.
void PutBigEndian(char* out, uint64_t v, int bytes) {
  for (int k = 0; k < bytes; ++k) out[k] = static_cast<char>((v >> ((bytes - 1 - k) * 8)) & 0xff);
}
void AppendBigEndian(std::string* out, uint64_t v, int bytes) {
  char b[8];
  PutBigEndian(b, v, bytes);
  out->append(b, static_cast<size_t>(bytes));
}

// array_send's layout of a one-dimension array: the number of dimensions, the has-nulls flag, the element type, then
// the dimension's size and lower bound (1); an empty array has no dimension.
constexpr size_t kArrayHeaderBytes = 20;
constexpr size_t kEmptyArrayHeaderBytes = 12;

std::string Trimmed(std::string msg) {
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

// The status code of a server error (SQLSTATE, https://www.postgresql.org/docs/15/errcodes-appendix.html).
Status StatusForSqlState(const std::string& state, const std::string& msg, bool connection_lost) {
  auto is = [&](const char* prefix) { return state.rfind(prefix, 0) == 0; };
  if (connection_lost || is("08") || state == "57P01" || state == "57P02" || state == "57P03" || state == "53300") {
    return Status::Unavailable(msg);  // the server went away, is shutting down or starting, or has no room for us
  }
  if (state == "57014" || state == "55P03") return Status::Timeout(msg);      // statement_timeout, lock_timeout
  if (state == "40001" || state == "40P01") return Status::Unavailable(msg);  // still failing after the retries
  if (state == "23505") return Status::AlreadyExists(msg);                    // unique_violation
  if (is("53")) return Status::ResourceExhausted(msg);                        // disk full, out of memory
  if (is("XX")) return Status::Corruption(msg);                               // data_corrupted, index_corrupted
  return Status::Storage(msg);
}

// Statements worth preparing (a plain query or command; not BEGIN/COMMIT, DDL, cursors or VACUUM, which run unnamed).
bool Preparable(const char* sql) {
  for (const char* verb : {"SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH "}) {
    if (strncasecmp(sql, verb, std::strlen(verb)) == 0) return true;
  }
  return false;
}

// A statement's parameters as libpq takes them (lengths and formats only when one is binary).
struct LibpqParams {
  explicit LibpqParams(const std::vector<Param>& params)
      : values(params.size()), lengths(params.size()), formats(params.size()) {
    for (size_t i = 0; i < params.size(); ++i) {
      values[i] = params[i].null ? nullptr : params[i].v.data();
      lengths[i] = static_cast<int>(params[i].v.size());
      formats[i] = params[i].binary ? 1 : 0;
      binary = binary || params[i].binary;
    }
  }
  int n() const { return static_cast<int>(values.size()); }
  const int* length_ptr() const { return binary ? lengths.data() : nullptr; }
  const int* format_ptr() const { return binary ? formats.data() : nullptr; }

  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  bool binary = false;
};

}  // namespace

ArrayParam::ArrayParam(uint32_t oid) : oid_(oid), v_(kArrayHeaderBytes, '\0') {}

void ArrayParam::Add(std::string_view e) {
  AppendBigEndian(&v_, e.size(), 4);
  v_.append(e.data(), e.size());
  ++n_;
}

void ArrayParam::AddOrNull(std::string_view e) {
  if (!e.empty()) return Add(e);
  AppendBigEndian(&v_, 0xffffffffu, 4);  // length -1: NULL
  has_nulls_ = true;
  ++n_;
}

void ArrayParam::Add(int64_t e) {
  AppendBigEndian(&v_, 8, 4);
  AppendBigEndian(&v_, static_cast<uint64_t>(e), 8);
  ++n_;
}

Param ArrayParam::Finish() && {
  if (n_ == 0) v_.resize(kEmptyArrayHeaderBytes);  // no dimension
  PutBigEndian(&v_[0], n_ > 0 ? 1 : 0, 4);
  PutBigEndian(&v_[4], has_nulls_ ? 1 : 0, 4);
  PutBigEndian(&v_[8], oid_, 4);
  if (n_ > 0) {
    PutBigEndian(&v_[12], n_, 4);
    PutBigEndian(&v_[16], 1, 4);
  }
  return Param{std::move(v_), false, true};
}

Param TextArray(const std::vector<std::string>& v, bool empty_is_null) {
  ArrayParam a = ArrayParam::Text();
  size_t bytes = 0;
  for (const std::string& e : v) bytes += 4 + e.size();
  a.Reserve(bytes);
  for (const std::string& e : v) {
    if (empty_is_null) {
      a.AddOrNull(e);
    } else {
      a.Add(e);
    }
  }
  return std::move(a).Finish();
}

Param IntArray(const std::vector<int64_t>& v) {
  ArrayParam a = ArrayParam::Int();
  a.Reserve(v.size() * 12);
  for (int64_t e : v) a.Add(e);
  return std::move(a).Finish();
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

// ---- Pool ----

Result<ConnPtr> Pool::Acquire() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(o_.acquire_timeout_ms, 0));
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    while (!idle_.empty()) {
      ConnPtr c = std::move(idle_.back());
      idle_.pop_back();
      if (PQstatus(c->pg.get()) == CONNECTION_OK) {
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

void Pool::Release(ConnPtr c, bool broken) {
  std::vector<ConnPtr> drop;
  {
    std::lock_guard<std::mutex> l(mu_);
    --leased_;
    bool bad = broken || PQstatus(c->pg.get()) != CONNECTION_OK || PQtransactionStatus(c->pg.get()) != PQTRANS_IDLE;
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

int Pool::open() const {
  std::lock_guard<std::mutex> l(mu_);
  return open_;
}

int Pool::leased() const {
  std::lock_guard<std::mutex> l(mu_);
  return leased_;
}

Result<ConnPtr> Pool::Connect() {
  // Defaults first: the keywords of the conninfo (expanded from dbname, processed last) override them.
  std::string timeout = std::to_string(std::max(o_.connect_timeout_s, 1));
  const char* keys[] = {"application_name", "connect_timeout", "dbname", nullptr};
  const char* vals[] = {"ferry-collector", timeout.c_str(), o_.conninfo.c_str(), nullptr};
  PgConnPtr c(PQconnectdbParams(keys, vals, 1));
  if (!c) return Status::ResourceExhausted("postgres: out of memory");
  if (PQstatus(c.get()) != CONNECTION_OK) {
    return Status::Unavailable("postgres: cannot connect: " + Trimmed(PQerrorMessage(c.get())));
  }
  std::string st = std::to_string(std::max(o_.statement_timeout_ms, 0));
  std::string lt = std::to_string(std::max(o_.lock_timeout_ms, 0));
  const char* params[] = {st.c_str(), lt.c_str()};
  ResultPtr r(PQexecParams(c.get(),
                           "SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false), "
                           "set_config('client_min_messages', 'warning', false), "
                           "set_config('plan_cache_mode', 'force_custom_plan', false)",
                           2, nullptr, params, nullptr, nullptr, 0));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    return Status::Unavailable(std::string("postgres: session setup failed: ") + PQerrorMessage(c.get()));
  }
  return std::make_unique<Conn>(std::move(c));
}

// ---- Lease ----

Lease::~Lease() {
  PGconn* conn = c_ ? c_->pg.get() : nullptr;
  if (conn != nullptr && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
    ResultPtr r(PQexecParams(conn, "ROLLBACK", 0, nullptr, nullptr, nullptr, nullptr, 0));
  }
  if (conn != nullptr && PQstatus(conn) != CONNECTION_OK) broken_ = true;
  pool_->Release(std::move(c_), broken_);
}

Result<ResultPtr> Lease::Exec(const char* sql, const std::vector<Param>& params) {
  const LibpqParams lp(params);
  PGconn* conn = c_->pg.get();
  const int n = lp.n();
  ResultPtr r;
  bool prepare_failed = false;
  if (Preparable(sql)) {
    auto it = c_->prepared.find(sql);
    if (it == c_->prepared.end() && c_->prepared.size() < kMaxPreparedPerConn) {
      std::string name = "ferry_" + std::to_string(c_->prepared.size() + 1);
      r.reset(PQprepare(conn, name.c_str(), sql, n, nullptr));
      if (r && PQresultStatus(r.get()) == PGRES_COMMAND_OK) {
        it = c_->prepared.emplace(sql, std::move(name)).first;
        r.reset();
      } else {
        prepare_failed = true;  // r holds the failure (or is null: out of memory)
      }
    }
    if (!prepare_failed && it != c_->prepared.end()) {
      r.reset(PQexecPrepared(conn, it->second.c_str(), n, lp.values.data(), lp.length_ptr(), lp.format_ptr(), 0));
    }
  }
  if (!r && !prepare_failed) {
    r.reset(PQexecParams(conn, sql, n, nullptr, lp.values.data(), lp.length_ptr(), lp.format_ptr(), 0));
  }
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    ++ok_statements_;
    return r;
  }
  return Failure(r.get());
}

Status Lease::Failure(const PGresult* r) {
  PGconn* conn = c_->pg.get();
  const char* code = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  sqlstate_ = code != nullptr ? code : "";
  bool lost = PQstatus(conn) != CONNECTION_OK;
  if (lost || sqlstate_.rfind("08", 0) == 0 || sqlstate_ == "57P01" || sqlstate_ == "57P02" || sqlstate_ == "57P03") {
    broken_ = true;
  }
  // A prepared statement that no longer fits its tables ("cached plan must not change result type" after another
  // collector migrated the schema) or that the server no longer holds: the connection is closed with its statements,
  // and the next lease prepares them again on a new one.
  if (sqlstate_ == "0A000" || sqlstate_ == "26000") broken_ = true;
  std::string msg = Trimmed(r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn));
  if (msg.empty()) msg = Trimmed(PQerrorMessage(conn));
  return StatusForSqlState(sqlstate_, "postgres: " + msg + (sqlstate_.empty() ? "" : " (SQLSTATE " + sqlstate_ + ")"),
                           lost);
}

Result<std::vector<ResultPtr>> Lease::ExecAll(const std::vector<Statement>& statements) {
  PGconn* conn = c_->pg.get();
  if (PQenterPipelineMode(conn) != 1) return Failure(nullptr);
  // What was sent for each statement: whether a PQsendPrepare went first (and under which name).
  struct Sent {
    std::string prepare_name;
    bool sent = false;
  };
  std::vector<Sent> sent(statements.size());
  bool send_failed = false;
  for (size_t k = 0; k < statements.size() && !send_failed; ++k) {
    const Statement& st = statements[k];
    const LibpqParams lp(st.params);
    const int n = lp.n();
    const std::string* name = nullptr;
    if (Preparable(st.sql)) {
      auto it = c_->prepared.find(st.sql);
      if (it != c_->prepared.end()) {
        name = &it->second;
      } else if (c_->prepared.size() < kMaxPreparedPerConn) {
        // Named after what the map will hold once the prepare succeeded (two new statements in one pipeline get
        // different names).
        sent[k].prepare_name = "ferry_" + std::to_string(c_->prepared.size() + 1) + "_" + std::to_string(k);
        if (PQsendPrepare(conn, sent[k].prepare_name.c_str(), st.sql, n, nullptr) != 1) {
          send_failed = true;
          break;
        }
        name = &sent[k].prepare_name;
      }
    }
    int ok = name != nullptr
                 ? PQsendQueryPrepared(conn, name->c_str(), n, lp.values.data(), lp.length_ptr(), lp.format_ptr(), 0)
                 : PQsendQueryParams(conn, st.sql, n, nullptr, lp.values.data(), lp.length_ptr(), lp.format_ptr(), 0);
    if (ok != 1) {
      send_failed = true;
      break;
    }
    sent[k].sent = true;
  }
  if (send_failed || PQpipelineSync(conn) != 1) {
    // Nothing can be read back in order: the connection is closed (and the transaction with it).
    broken_ = true;
    Status s = Failure(nullptr);
    return s.ok() ? Status::Unavailable("postgres: sending a pipeline failed") : s;
  }
  // Every result up to the sync is read, whatever failed, so that the connection leaves pipeline mode clean.
  std::vector<ResultPtr> out(statements.size());
  ResultPtr failure;
  bool failed = false;
  for (size_t k = 0; k < statements.size(); ++k) {
    if (!sent[k].prepare_name.empty()) {
      ResultPtr p(PQgetResult(conn));
      const bool got = p != nullptr;  // a result is followed by a null one that ends its statement
      const ExecStatusType ps = got ? PQresultStatus(p.get()) : PGRES_FATAL_ERROR;
      if (ps == PGRES_COMMAND_OK) {
        c_->prepared.emplace(statements[k].sql, sent[k].prepare_name);
      } else if (!failed) {
        failed = true;
        if (ps != PGRES_PIPELINE_ABORTED) failure = std::move(p);
      }
      if (got) {
        while (ResultPtr extra{PQgetResult(conn)}) {
        }
      }
    }
    ResultPtr r(PQgetResult(conn));
    const bool got = r != nullptr;
    if (!got) broken_ = true;  // out of step with the pipeline: the connection is not used again
    const ExecStatusType rs = got ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
      ++ok_statements_;
      out[k] = std::move(r);
    } else if (!failed) {
      failed = true;
      if (rs != PGRES_PIPELINE_ABORTED) failure = std::move(r);
    }
    if (got) {
      while (ResultPtr extra{PQgetResult(conn)}) {
      }
    }
  }
  // The sync's own result, then back to the usual mode.
  for (int nulls = 0;;) {
    ResultPtr s(PQgetResult(conn));
    if (!s) {
      // Nothing queued any more (a lost connection, or out of step): the connection is not used again.
      if (PQstatus(conn) != CONNECTION_OK || ++nulls > 1) {
        broken_ = true;
        break;
      }
      continue;
    }
    nulls = 0;
    if (PQresultStatus(s.get()) == PGRES_PIPELINE_SYNC) break;
  }
  if (PQexitPipelineMode(conn) != 1) broken_ = true;
  if (failed) {
    Status s = Failure(failure.get());
    return s.ok() ? Status::Storage("postgres: a pipelined statement failed") : s;
  }
  return out;
}

Status Lease::Run(const std::string& sql, const std::vector<Param>& params) {
  auto r = Exec(sql, params);
  return r.ok() ? Status::Ok() : r.status();
}

Result<int64_t> Lease::Count(const std::string& sql, const std::vector<Param>& params) {
  auto r = Exec(sql, params);
  if (!r.ok()) return r.status();
  return static_cast<int64_t>(std::strtoll(PQcmdTuples(r->get()), nullptr, 10));
}

Result<bool> Lease::Exists(const std::string& sql, const std::vector<Param>& params) {
  auto r = Exec(sql, params);
  if (!r.ok()) return r.status();
  return PQntuples(r->get()) > 0;
}

base::Status Lease::LockWhenFree(int64_t key) {
  for (int i = 0; i < 50; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto got = Exec("SELECT pg_try_advisory_xact_lock($1)", {I(key)});
    if (!got.ok()) return got.status();
    if (GetBool(got->get(), 0, 0)) return base::Status::Ok();
  }
  return Lock(key);
}

std::string Lease::Ident(const std::string& name) {
  char* q = PQescapeIdentifier(c_->pg.get(), name.data(), name.size());
  if (q == nullptr) return "\"\"";
  std::string out(q);
  PQfreemem(q);
  return out;
}

}  // namespace ferry::collector::pg
