#include "lib/base/sqlite.h"

#include <sys/stat.h>

#include <algorithm>
#include <iterator>
#include <list>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ferry::base {

// The statements a connection prepared and that no Stmt holds now, most recently given back first. Keyed by their
// SQL text (sqlite3_sql, which is the text given to Prepare: only statements that used all of it are kept). The mutex
// covers a Stmt given back on another thread than the one using the connection; the connection itself is used by one
// thread at a time, as before.
class StmtCache {
 public:
  explicit StmtCache(size_t capacity) : capacity_(capacity) {}
  ~StmtCache() {
    for (auto& entry : lru_) sqlite3_finalize(entry.second);
  }
  StmtCache(const StmtCache&) = delete;
  StmtCache& operator=(const StmtCache&) = delete;

  // An idle statement of this text, taken out of the cache; nullptr when there is none.
  sqlite3_stmt* Take(std::string_view sql) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = index_.find(std::string(sql));
    if (it == index_.end()) return nullptr;
    sqlite3_stmt* s = it->second->second;
    lru_.erase(it->second);
    index_.erase(it);
    return s;
  }

  // Keeps `s` (reset, its bindings cleared) unless an idle one of the same text is kept already; the least recently
  // given back is finalized beyond the capacity.
  void Give(sqlite3_stmt* s) {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    const char* text = sqlite3_sql(s);
    std::lock_guard<std::mutex> l(mu_);
    if (text == nullptr || capacity_ == 0) {
      sqlite3_finalize(s);
      return;
    }
    std::string key(text);
    if (index_.count(key) > 0) {
      sqlite3_finalize(s);
      return;
    }
    lru_.emplace_front(key, s);
    index_.emplace(std::move(key), lru_.begin());
    if (lru_.size() > capacity_) {
      sqlite3_finalize(lru_.back().second);
      index_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }

 private:
  using Entry = std::pair<std::string, sqlite3_stmt*>;
  const size_t capacity_;
  std::mutex mu_;
  std::list<Entry> lru_;
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

void StmtReturner::operator()(sqlite3_stmt* s) const {
  if (std::shared_ptr<StmtCache> c = cache.lock()) {
    c->Give(s);
  } else {
    sqlite3_finalize(s);
  }
}

namespace {
Status SqlError(sqlite3* db, int rc, const char* what) {
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  if (rc == SQLITE_NOTADB) return Status::Corruption(msg + " (notadb)");
  if (rc == SQLITE_CORRUPT) return Status::Corruption(msg + " (corrupt)");
  return Status::Storage(msg);
}
}  // namespace

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_.get(), i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, std::string_view v) {
  sqlite3_bind_text(stmt_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindBlob(int i, const void* p, size_t n) {
  sqlite3_bind_blob(stmt_.get(), i, p, static_cast<int>(n), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(stmt_.get(), i);
  return *this;
}

bool Stmt::Step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) status_ = SqlError(sqlite3_db_handle(stmt_.get()), rc, "step");
  return false;
}

Status Stmt::Run() {
  while (Step()) {
  }
  Status s = status_;
  Reset();
  return s;
}

void Stmt::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  status_ = Status::Ok();
}

std::string Stmt::Text(int col) const { return std::string(TextView(col)); }

std::string_view Stmt::TextView(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_.get(), col);
  int n = sqlite3_column_bytes(stmt_.get(), col);
  if (p == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

namespace {

// True when `path` has bytes, or its write-ahead log has (a store whose first commits were never copied out of it).
bool HasBytes(const std::string& path) {
  for (const std::string& p : {path, path + "-wal"}) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && st.st_size > 0) return true;
  }
  return false;
}

}  // namespace

Result<Db> Db::OpenWithPageSize(const std::string& path, const SecretBytes& key, int page_size) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db;
  db.db_.reset(raw);
  if (rc != SQLITE_OK) return SqlError(raw, rc, ("open " + path).c_str());
  sqlite3_busy_timeout(raw, 5000);
  std::string pragma = "PRAGMA key = \"x'" + key.ToHex() + "'\";";
  rc = sqlite3_exec(raw, pragma.c_str(), nullptr, nullptr, nullptr);
  WipeString(pragma);
  if (rc != SQLITE_OK) return SqlError(raw, rc, "key");
  // Must be set right after the key and before the first read; it is part of the file format.
  FERRY_RETURN_IF_ERROR(db.Exec("PRAGMA cipher_page_size = " + std::to_string(page_size) + ";"));
  rc = sqlite3_exec(raw, "SELECT count(*) FROM sqlite_master;", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqlError(raw, rc, ("key check of " + path).c_str());
  return db;
}

Result<Db> Db::OpenEncrypted(const std::string& path, const SecretBytes& key, int new_file_page_size) {
  if (key.size() != 32) return Status::InvalidArgument("the encryption key must be 32 bytes");
  if (std::find(std::begin(kPageSizes), std::end(kPageSizes), new_file_page_size) == std::end(kPageSizes)) {
    return Status::InvalidArgument("unsupported page size " + std::to_string(new_file_page_size));
  }
  std::vector<int> sizes = {new_file_page_size};
  if (HasBytes(path)) {
    for (int size : kPageSizes) {
      if (size != new_file_page_size) sizes.push_back(size);
    }
  }
  Result<Db> opened = Status::Internal("not opened");
  for (size_t i = 0; i < sizes.size(); ++i) {
    Result<Db> attempt = OpenWithPageSize(path, key, sizes[i]);
    // Only a failed key check means "try the next size"; the first attempt's error is the one reported.
    if (attempt.ok() || i == 0) opened = std::move(attempt);
    if (opened.ok() || opened.status().code() != Code::kCorruption) break;
  }
  if (!opened.ok()) return opened.status();
  Db db = std::move(opened).value();
  FERRY_RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode = WAL;"));
  FERRY_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous = NORMAL;"));
  FERRY_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys = ON;"));
  return db;
}

int Db::PageSize() {
  auto st = Prepare("PRAGMA page_size;");
  if (!st.ok() || !st->Step()) return 0;
  return static_cast<int>(st->Int(0));
}

Status Db::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if (rc == SQLITE_NOTADB) return Status::Corruption(msg + " (notadb)");
    if (rc == SQLITE_CORRUPT) return Status::Corruption(msg + " (corrupt)");
    return Status::Storage(msg + " (" + sql.substr(0, 60) + ")");
  }
  return Status::Ok();
}

Result<Stmt> Db::Prepare(std::string_view sql) {
  if (!cache_) cache_ = std::make_shared<StmtCache>(kStmtCacheSize);
  if (sqlite3_stmt* kept = cache_->Take(sql)) return Stmt(kept, cache_);
  sqlite3_stmt* s = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &s, &tail);
  if (rc != SQLITE_OK) return SqlError(db_.get(), rc, "prepare");
  // A text with more after its first statement is not kept: its key (sqlite3_sql) would not be the text asked for.
  if (s != nullptr && tail == sql.data() + sql.size()) return Stmt(s, cache_);
  return Stmt(s);
}

int64_t Db::UserVersion() {
  auto st = Prepare("PRAGMA user_version;");
  if (!st.ok() || !st->Step()) return -1;
  return st->Int(0);
}

Status Db::SetUserVersion(int64_t v) { return Exec("PRAGMA user_version = " + std::to_string(v) + ";"); }

Transaction::Transaction(Db& db) : db_(db) { begin_ = db_.Exec("BEGIN IMMEDIATE;"); }

Transaction::~Transaction() {
  if (!done_ && begin_.ok()) (void)db_.Exec("ROLLBACK;");
}

Status Transaction::Commit() {
  if (!begin_.ok()) return begin_;
  Status s = db_.Exec("COMMIT;");
  if (s.ok()) done_ = true;
  return s;
}

}  // namespace ferry::base
