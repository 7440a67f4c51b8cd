// The embedded store: one SQLCipher-encrypted database file in the data directory. SqliteStore is the Store
// (collector/store/store.h) over the embedded engine, plus what only this engine has (its file, its schema version).
#ifndef FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_STORE_H_
#define FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "collector/store/store.h"
#include "lib/base/clock.h"
#include "lib/base/secret.h"

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

// Thread-safe: one connection behind a mutex (the ingest path reaches it through the single group-commit writer).
class SqliteStore : public Store {
 public:
  // Opens (creating the directory, key and file) DIR/collector.db and migrates its schema.
  static base::Result<std::unique_ptr<SqliteStore>> Open(const std::string& data_dir, const std::string& key_file = "",
                                                         base::Clock* clock = base::SystemClock());
  // Opens the database at `path` with `key` (tests).
  static base::Result<std::unique_ptr<SqliteStore>> OpenFile(const std::string& path, const base::SecretBytes& key,
                                                             base::Clock* clock = base::SystemClock());

  int64_t SchemaVersion();
  // The database file (tests read its raw pages).
  const std::string& path() const;

 private:
  SqliteStore(std::unique_ptr<sqlite::SqliteEngine> engine, base::Clock* clock);
  sqlite::SqliteEngine* sqlite_;  // owned by Store
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_STORE_H_
