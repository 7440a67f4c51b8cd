// The embedded store: one SQLCipher-encrypted database file in the data directory.
#ifndef FERRY_COLLECTOR_SQLITE_STORE_H_
#define FERRY_COLLECTOR_SQLITE_STORE_H_

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/secret.h"
#include "base/sqlite.h"
#include "store.h"

namespace ferry::collector {

// The schema version this build writes (PRAGMA user_version); older files are migrated on open.
inline constexpr int64_t kSchemaVersion = 1;

// Loads the store key from key_file, or (key_file empty) from DIR/collector.key, creating that file with 32 random
// bytes (64 hex characters, mode 0600) on first use. A key file holds 64 hex characters or 32 raw bytes.
base::Result<base::SecretBytes> LoadOrCreateStoreKey(const std::string& data_dir, const std::string& key_file);

// Thread-safe: one connection behind a mutex (the ingest path reaches it through the single group-commit writer).
class SqliteStore : public Store {
 public:
  // Opens (creating the directory, key and file) DIR/collector.db and migrates its schema.
  static base::Result<std::unique_ptr<SqliteStore>> Open(const std::string& data_dir, const std::string& key_file = "");
  // Opens the database at `path` with `key` (tests).
  static base::Result<std::unique_ptr<SqliteStore>> OpenFile(const std::string& path, const base::SecretBytes& key);

  base::Status Check() override;
  base::Result<std::string> CreateWriteKey(const std::string& project) override;
  base::Result<std::optional<WriteKeyInfo>> LookupWriteKey(const std::string& key) override;
  base::Status Insert(std::vector<InsertRequest*>& requests) override;
  std::string IdHash(const std::string& id) override;
  base::Result<bool> IsSuppressed(int64_t project_id, const std::string& id_hash) override;
  base::Status Suppress(int64_t project_id, const std::string& id_hash) override;
  base::Result<std::vector<EventRow>> DumpEvents(const std::string& project) override;
  base::Result<std::map<std::string, int64_t>> DroppedCounters(const std::string& project) override;

  int64_t SchemaVersion();

 private:
  explicit SqliteStore(base::Db db) : db_(std::move(db)) {}
  base::Status Migrate();
  base::Status InsertLocked(std::vector<InsertRequest*>& requests);

  std::mutex mu_;
  base::Db db_;                                              // guarded by mu_
  base::SecretBytes id_key_;                                 // keyed hash of subject ids (suppression list)
  std::unordered_map<std::string, WriteKeyInfo> key_cache_;  // key hash -> project; guarded by mu_
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_SQLITE_STORE_H_
