// The embedded store: one SQLCipher-encrypted database file in the data directory. SqliteStore is the Store
// (collector/store/store.h) over the embedded engine, plus what only this engine has (its file, its schema version).
#ifndef FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_STORE_H_
#define FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "collector/store/store.h"
#include "lib/base/clock.h"
#include "lib/base/secret.h"
#include "lib/base/sqlite.h"

namespace ferry::collector {

namespace sqlite {
class SqliteEngine;
}  // namespace sqlite

// The schema version this build writes (PRAGMA user_version); older files are migrated on open.
inline constexpr int64_t kSchemaVersion = 17;

// Loads the store key from key_file, or (key_file empty) from DIR/collector.key, creating that file with 32 random
// bytes (64 hex characters, mode 0600) on first use. A key file holds 64 hex characters or 32 raw bytes, and is
// refused when it is a symbolic link or has group/other permissions (platform::LoadOrCreateKey).
base::Result<base::SecretBytes> LoadOrCreateStoreKey(const std::string& data_dir, const std::string& key_file);

// How a new store file is made; an existing one keeps what it was made with.
struct SqliteStoreOptions {
  // The cipher page size (base::Db::kPageSizes: 4096 or 16384) of a new file. 16 KiB pages store events faster (a
  // group commit writes a quarter as many log frames: 1.03-1.27x the events a second under ferry_bench_collector) and
  // erase a subject's events slower (each erased event rewrites a page four times as large: 1.4-2.3x the time under
  // ferry_bench_erasure); docs/PERFORMANCE.md.
  int new_file_page_size = base::Db::kDefaultPageSize;
};

// Thread-safe: one connection behind a mutex (the ingest path reaches it through the single group-commit writer).
class SqliteStore : public Store {
 public:
  // Opens (creating the directory, key and file) DIR/collector.db and migrates its schema.
  static base::Result<std::unique_ptr<SqliteStore>> Open(const std::string& data_dir, const std::string& key_file = "",
                                                         base::Clock* clock = base::SystemClock(),
                                                         const SqliteStoreOptions& options = {});
  // Opens the database at `path` with `key` (tests).
  static base::Result<std::unique_ptr<SqliteStore>> OpenFile(const std::string& path, const base::SecretBytes& key,
                                                             base::Clock* clock = base::SystemClock(),
                                                             const SqliteStoreOptions& options = {});

  int64_t SchemaVersion();
  // The database file (tests read its raw pages).
  const std::string& path() const;

 private:
  SqliteStore(std::unique_ptr<sqlite::SqliteEngine> engine, base::Clock* clock);
  sqlite::SqliteEngine* sqlite_;  // owned by Store
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_STORE_H_
