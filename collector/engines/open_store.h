// Makes the collector's Store from the --storage setting: "sqlite" (the embedded, encrypted store in the data
// directory) or a PostgreSQL connection URI ("postgresql://..." or "postgres://...", builds with FERRY_WITH_POSTGRES).
#ifndef FERRY_COLLECTOR_ENGINES_OPEN_STORE_H_
#define FERRY_COLLECTOR_ENGINES_OPEN_STORE_H_

#include <memory>
#include <string>

#include "collector/store/store.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/status.h"

namespace ferry::collector {

struct StoreConfig {
  std::string storage = "sqlite";  // "sqlite" or a postgresql:// URI
  // sqlite
  std::string data_dir;
  std::string key_file;         // "" = DATA_DIR/collector.key
  int sqlite_page_size = 4096;  // a new store file's cipher page size (SqliteStoreOptions)
  // PostgreSQL (see PgOptions)
  int pg_pool_size = 8;
  int pg_acquire_timeout_ms = 2000;
  int pg_statement_timeout_ms = 30000;
  int pg_lock_timeout_ms = 10000;
  base::Clock* clock = base::SystemClock();  // the store's time
  base::Logger log;                          // the store's own lines (PostgreSQL: the erasure's background scrub)
};

// Whether `storage` names a PostgreSQL database.
bool IsPostgresStorage(const std::string& storage);
// Whether this build has the PostgreSQL store.
bool PostgresAvailable();
// The storage setting with any password in it replaced by "***" (for logs).
std::string RedactStorage(const std::string& storage);

// Opens (creating/migrating) the store. InvalidArgument for an unknown or unavailable backend.
base::Result<std::unique_ptr<Store>> MakeStore(const StoreConfig& config);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_ENGINES_OPEN_STORE_H_
