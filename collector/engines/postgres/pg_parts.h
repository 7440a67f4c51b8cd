// The PostgreSQL engine's parts (internal to collector/engines/postgres/), one concern a file; pg_store.cc puts them
// together into the engine (and PgStore, the Store over it).
//   pg_conn.cc       the pool, leased connections, statements, error codes (pg_conn.h)
//   pg_schema.cc     migrations, the id-hash key, the monthly partitions of the events table
//   pg_ingest.cc     a group-commit batch in one transaction
//   pg_txn.cc        the primitives of one transaction and the export's cursors (pg_conn.h)
//   pg_retention.cc  the purge
#ifndef FERRY_COLLECTOR_ENGINES_POSTGRES_PG_PARTS_H_
#define FERRY_COLLECTOR_ENGINES_POSTGRES_PG_PARTS_H_

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "collector/engines/postgres/pg_conn.h"
#include "collector/store/id_hash.h"
#include "lib/base/clock.h"

namespace ferry::collector::pg {

// Creates or migrates the schema (under an advisory lock: collectors starting together migrate once) and loads the
// database's id-hash key, making it on first use.
base::Status Migrate(Pool& pool, IdHasher* id_hash);
// The schema version of the database.
base::Result<int64_t> SchemaVersion(Pool& pool);

// The monthly partitions of the events table, made on demand within a window around now (so a client cannot make
// the store create partitions for any month it likes); a month whose rows already sit in the DEFAULT partition is
// tried again an hour later. Thread-safe.
class Partitions {
 public:
  Partitions(Pool* pool, base::Clock* clock) : pool_(pool), clock_(clock) {}
  // Makes the partitions of these event times' months. Fails only when the database cannot be reached.
  base::Status Ensure(const std::vector<int64_t>& timestamps_ms);
  // The partitions' names, oldest first (the DEFAULT partition last).
  base::Result<std::vector<std::string>> List();

 private:
  Pool* pool_;
  base::Clock* clock_;
  std::mutex mu_;
  std::unordered_map<int64_t, int64_t> made_;  // month start ms -> retry-after ms (0 = exists); guarded by mu_
};

// Stores every request's events in one transaction (IngestSink::Insert), making their months' partitions first.
base::Status InsertBatch(Pool& pool, Partitions& partitions, const IdHasher& id_hash,
                         std::vector<InsertRequest*>& requests);

// Drops whole monthly partitions that every project's cutoff has passed (their rows count towards the result, which
// may then exceed max_rows), then deletes at most max_rows older rows from the rest, and the expired dedup keys.
base::Result<int64_t> PurgeExpired(Pool& pool, int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows,
                                   int64_t default_consent_keep_ms);

}  // namespace ferry::collector::pg

#endif  // FERRY_COLLECTOR_ENGINES_POSTGRES_PG_PARTS_H_
