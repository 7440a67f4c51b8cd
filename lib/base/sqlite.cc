#include "lib/base/sqlite.h"

namespace ferry::base {

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

Result<Db> Db::OpenEncrypted(const std::string& path, const SecretBytes& key) {
  if (key.size() != 32) return Status::InvalidArgument("the encryption key must be 32 bytes");
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
  FERRY_RETURN_IF_ERROR(db.Exec("PRAGMA cipher_page_size = 4096;"));
  rc = sqlite3_exec(raw, "SELECT count(*) FROM sqlite_master;", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqlError(raw, rc, ("key check of " + path).c_str());
  FERRY_RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode = WAL;"));
  FERRY_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous = NORMAL;"));
  FERRY_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys = ON;"));
  return db;
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
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  if (rc != SQLITE_OK) return SqlError(db_.get(), rc, "prepare");
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
