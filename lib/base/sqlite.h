// A thin RAII layer over SQLCipher's sqlite3 API, shared by the device buffer and the collector's embedded store.
// SQLCipher 3.4.1 (SQLite 3.15.2): no UPSERT, no RETURNING, no JSON functions. Never link libsqlite3 as well.
#ifndef FERRY_LIB_BASE_SQLITE_H_
#define FERRY_LIB_BASE_SQLITE_H_

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "lib/base/secret.h"
#include "lib/base/status.h"

namespace ferry::base {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
class StmtCache;

// Gives a statement back to the cache of the connection that prepared it (reset, its bindings cleared), or finalizes
// it when it has no cache or that cache is gone.
struct StmtReturner {
  std::weak_ptr<StmtCache> cache;
  void operator()(sqlite3_stmt* s) const;
};

// A prepared statement. Bind indexes start at 1, column indexes at 0. Not thread-safe.
class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : stmt_(s) {}
  Stmt(sqlite3_stmt* s, std::weak_ptr<StmtCache> cache) : stmt_(s, StmtReturner{std::move(cache)}) {}

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, std::string_view v);  // copied by SQLite (SQLITE_TRANSIENT)
  Stmt& BindBlob(int i, const void* p, size_t n);
  Stmt& BindNull(int i);

  // Steps once. true with a row, false when done; a failure is kept in status() (and then false).
  bool Step();
  // Steps to completion (for statements that return no rows).
  Status Run();
  // Resets for reuse and clears bindings.
  void Reset();
  const Status& status() const { return status_; }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  std::string Text(int col) const;
  std::string_view TextView(int col) const;  // valid until the next Step/Reset
  bool IsNull(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  sqlite3_stmt* get() const { return stmt_.get(); }
  explicit operator bool() const { return stmt_ != nullptr; }

 private:
  std::unique_ptr<sqlite3_stmt, StmtReturner> stmt_;
  Status status_;
};

// An open database connection. Not thread-safe: one owner thread or an external mutex.
class Db {
 public:
  // Opens (creating) an SQLCipher file keyed with a raw 32-byte key (no key derivation), WAL, synchronous=NORMAL, and
  // checks right away that the key opens it: a wrong key or a file that is not a database gives Status code
  // kCorruption (the caller may move the file aside). The cipher page size is part of the file and is written nowhere
  // in the clear: a new file gets `new_file_page_size`; a file that has bytes (or a log that has) is opened with each
  // of kPageSizes in turn, `new_file_page_size` first, until the key check passes (each page's MAC fails under any
  // other size). PageSize() tells which it was.
  static constexpr int kDefaultPageSize = 4096;
  static constexpr int kPageSizes[] = {4096, 16384};
  static Result<Db> OpenEncrypted(const std::string& path, const SecretBytes& key,
                                  int new_file_page_size = kDefaultPageSize);
  // The connection's page size in bytes; 0 if it cannot be read.
  int PageSize();

  Status Exec(const std::string& sql);
  // A prepared statement for `sql`. The connection keeps the statements it prepared (the kStmtCacheSize used last,
  // one per SQL text): a Stmt given up goes back reset, with its bindings cleared, and the next Prepare of the same
  // text takes it instead of compiling it again. A text of several statements is compiled each time (only its first
  // statement is prepared, as before).
  Result<Stmt> Prepare(std::string_view sql);
  static constexpr size_t kStmtCacheSize = 128;
  int64_t Changes() const { return sqlite3_changes(db_.get()); }
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_.get()); }
  std::string ErrMsg() const { return sqlite3_errmsg(db_.get()); }
  sqlite3* get() const { return db_.get(); }
  explicit operator bool() const { return db_ != nullptr; }

  // PRAGMA user_version (the schema version).
  int64_t UserVersion();
  Status SetUserVersion(int64_t v);

 private:
  // One attempt of OpenEncrypted: the key check fails (kCorruption) when the key or the page size is not the file's.
  static Result<Db> OpenWithPageSize(const std::string& path, const SecretBytes& key, int page_size);

  // Destroyed before db_ (declared after it): the idle statements are finalized before the connection closes.
  std::unique_ptr<sqlite3, SqliteCloser> db_;
  std::shared_ptr<StmtCache> cache_;
};

// BEGIN IMMEDIATE on construction, ROLLBACK on destruction unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  const Status& begin_status() const { return begin_; }
  Status Commit();

 private:
  Db& db_;
  Status begin_;
  bool done_ = false;
};

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_SQLITE_H_
