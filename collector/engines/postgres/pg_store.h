// The PostgreSQL store: the Store (collector/store/store.h) over a shared PostgreSQL database (libpq), so that several
// collector processes can serve one project behind a load balancer. See docs/POSTGRES.md.
//
// - The schema is created and migrated by the collector (table ferry_schema, one row with the version); migrations
//   run under a transaction-level advisory lock, so collectors starting together migrate once.
// - events is partitioned by RANGE(timestamp_ms), one partition a month (made on demand within a window around now;
//   anything outside goes to a DEFAULT partition), so retention drops whole partitions.
// - Dedup: a UNIQUE constraint on a partitioned table must include the partition key, and the timestamp of a resent
//   event may differ (clock-skew correction), so (project, messageId) uniqueness lives in a separate, non-partitioned
//   table event_ids with INSERT ... ON CONFLICT DO NOTHING in the same transaction as the event rows: two collectors
//   receiving the same resend store it once (the second waits on the first's unique-index entry, then skips it).
// - The audit hash chain is appended under a transaction-level advisory lock, so concurrent writers in different
//   processes never share a seq or a prev_hash. An erasure holds an advisory lock exclusively that ingest holds
//   shared.
// - A small connection pool (size configurable); acquiring waits at most acquire_timeout_ms and then fails with
//   Timeout. A broken connection (database restarted) is dropped and replaced on the next acquire; a database that
//   cannot be reached gives Unavailable.
//
// The engine's files, one concern each (pg_parts.h): pg_conn (pool, leased connections, statements, error codes),
// pg_schema (migrations and partitions), pg_ingest (group-commit inserts), pg_txn (the primitives of a transaction and
// the export's cursors), pg_retention (the purge), pg_store (the engine put together, and this class).
#ifndef FERRY_COLLECTOR_ENGINES_POSTGRES_PG_STORE_H_
#define FERRY_COLLECTOR_ENGINES_POSTGRES_PG_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "collector/store/store.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

namespace ferry::collector {

namespace pg {
class PgEngine;
}  // namespace pg

// The schema version this build writes (table ferry_schema); older databases are migrated on open.
inline constexpr int64_t kPgSchemaVersion = 17;

struct PgOptions {
  std::string conninfo;              // "postgresql://user@host:5432/db?sslmode=verify-full&..." or "key=value ..."
  int pool_size = 8;                 // most connections held open
  int acquire_timeout_ms = 2000;     // waiting for a free connection longer than this fails (Timeout)
  int statement_timeout_ms = 30000;  // server-side statement_timeout of every connection (0 = none)
  int lock_timeout_ms = 10000;       // server-side lock_timeout (0 = none)
  int connect_timeout_s = 5;         // libpq connect_timeout unless the conninfo names one
  base::Clock* clock = base::SystemClock();  // the store's time (records, the partition window)
  base::Logger log;                          // the background scrub's lines (an erasure's VACUUM)
};

class PgStore : public Store {
 public:
  // Connects, creates or migrates the schema, and loads the id-hash key (made once per database).
  static base::Result<std::unique_ptr<PgStore>> Open(const PgOptions& options);

  // ---- Beyond the Store (tests, docs, operators) ----
  base::Result<int64_t> SchemaVersion();
  // Names of the events table's partitions, oldest first (the DEFAULT partition last).
  base::Result<std::vector<std::string>> EventPartitions();
  // Connections currently open / leased (tests of the pool).
  int PoolOpen() const;
  int PoolLeased() const;

 private:
  PgStore(std::unique_ptr<pg::PgEngine> engine, base::Clock* clock);
  pg::PgEngine* pg_;  // owned by Store
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_ENGINES_POSTGRES_PG_STORE_H_
