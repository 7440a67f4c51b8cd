#include "collector/engines/open_store.h"

#include "collector/engines/sqlite/sqlite_store.h"
#ifdef FERRY_WITH_POSTGRES
#include "collector/engines/postgres/pg_store.h"
#endif

namespace ferry::collector {

bool IsPostgresStorage(const std::string& storage) {
  return storage.rfind("postgresql://", 0) == 0 || storage.rfind("postgres://", 0) == 0;
}

bool PostgresAvailable() {
#ifdef FERRY_WITH_POSTGRES
  return true;
#else
  return false;
#endif
}

std::string RedactStorage(const std::string& storage) {
  if (!IsPostgresStorage(storage)) return storage;
  // scheme://user:password@host... -> scheme://user:***@host...
  size_t start = storage.find("://") + 3;
  size_t at = storage.find('@', start);
  size_t slash = storage.find('/', start);
  std::string out = storage;
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    size_t colon = storage.find(':', start);
    if (colon != std::string::npos && colon < at) out = storage.substr(0, colon + 1) + "***" + storage.substr(at);
  }
  // ...?password=x&... -> ...?password=***&...
  size_t q = out.find("password=");
  if (q != std::string::npos && q > 0 && (out[q - 1] == '?' || out[q - 1] == '&')) {
    size_t end = out.find('&', q);
    out = out.substr(0, q + 9) + "***" + (end == std::string::npos ? std::string() : out.substr(end));
  }
  return out;
}

base::Result<std::unique_ptr<Store>> MakeStore(const StoreConfig& c) {
  if (c.storage == "sqlite") {
    SqliteStoreOptions so;
    so.new_file_page_size = c.sqlite_page_size;
    auto s = SqliteStore::Open(c.data_dir, c.key_file, c.clock, so);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Store>(std::move(s).value());
  }
  if (IsPostgresStorage(c.storage)) {
#ifdef FERRY_WITH_POSTGRES
    PgOptions o;
    o.conninfo = c.storage;
    o.pool_size = c.pg_pool_size;
    o.acquire_timeout_ms = c.pg_acquire_timeout_ms;
    o.statement_timeout_ms = c.pg_statement_timeout_ms;
    o.lock_timeout_ms = c.pg_lock_timeout_ms;
    o.clock = c.clock;
    o.log = c.log;
    auto s = PgStore::Open(o);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Store>(std::move(s).value());
#else
    return base::Status::InvalidArgument(
        "this build has no PostgreSQL store (configure with -DFERRY_WITH_POSTGRES=ON)");
#endif
  }
  return base::Status::InvalidArgument("unknown storage '" + RedactStorage(c.storage) +
                                       "' (use sqlite or a postgresql:// URI)");
}

}  // namespace ferry::collector
