// The PostgreSQL store: the same Store interface as the embedded SQLCipher store, on a shared PostgreSQL database
// (libpq), so that several collector processes can serve one project behind a load balancer. See docs/POSTGRES.md.
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
//   processes never share a seq or a prev_hash.
// - A small connection pool (size configurable); acquiring waits at most acquire_timeout_ms and then fails (the
//   server answers 503). A broken connection (database restarted) is dropped and replaced on the next acquire.
// - Only parameterised queries (PQexecParams), RAII for PGconn/PGresult.
#ifndef FERRY_COLLECTOR_ENGINES_POSTGRES_PG_STORE_H_
#define FERRY_COLLECTOR_ENGINES_POSTGRES_PG_STORE_H_

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "collector/store/store.h"
#include "lib/base/secret.h"

namespace ferry::collector {

// The schema version this build writes (table ferry_schema); older databases are migrated on open.
inline constexpr int64_t kPgSchemaVersion = 1;

struct PgOptions {
  std::string conninfo;              // "postgresql://user@host:5432/db?sslmode=verify-full&..." or "key=value ..."
  int pool_size = 8;                 // most connections held open
  int acquire_timeout_ms = 2000;     // waiting for a free connection longer than this fails (-> 503)
  int statement_timeout_ms = 30000;  // server-side statement_timeout of every connection (0 = none)
  int lock_timeout_ms = 10000;       // server-side lock_timeout (0 = none)
  int connect_timeout_s = 5;         // libpq connect_timeout unless the conninfo names one
};

class PgPool;

class PgStore : public Store {
 public:
  // Connects, creates or migrates the schema, and loads the id-hash key (made once per database).
  static base::Result<std::unique_ptr<PgStore>> Open(const PgOptions& options);
  ~PgStore() override;

  base::Status Check() override;
  base::Result<std::string> CreateWriteKey(const std::string& project) override;
  base::Result<std::optional<WriteKeyInfo>> LookupWriteKey(const std::string& key) override;
  base::Status Insert(std::vector<InsertRequest*>& requests) override;
  std::string IdHash(const std::string& id) override;
  base::Result<bool> IsSuppressed(int64_t project_id, const std::string& id_hash) override;
  base::Status Suppress(int64_t project_id, const std::string& id_hash) override;
  base::Result<std::vector<EventRow>> DumpEvents(const std::string& project) override;
  base::Result<std::map<std::string, int64_t>> DroppedCounters(const std::string& project) override;

  base::Result<std::vector<SubjectSummary>> FindSubject(const SubjectQuery& q) override;
  base::Result<bool> ExportSubject(const SubjectQuery& q, ExportVisitor& visitor) override;
  base::Result<EraseReceipt> EraseSubject(const SubjectQuery& q, const std::string& request_id) override;
  base::Result<EraseReceipt> EraseAnonymousIds(int64_t project_id, const std::vector<std::string>& ids,
                                               const std::string& request_id) override;
  base::Result<std::vector<SubjectSummary>> PatchTraits(const SubjectQuery& q, const std::string& patch_json) override;
  base::Status ScanAllText(
      const std::function<bool(std::string_view table, std::string_view column, std::string_view text)>& fn) override;

  base::Result<RightsRequest> CreateRequest(RightsRequest r) override;
  base::Result<std::optional<RightsRequest>> GetRequest(const std::string& id) override;
  base::Result<RequestUpdate> UpdateRequest(const std::string& id, const std::string& expected_state,
                                            const std::string& new_state, const std::string& acted_by, int64_t acted_ms,
                                            const std::string& result) override;
  base::Result<std::vector<RightsRequest>> ListRequests(const RequestFilter& filter) override;

  base::Result<AuditEntry> AppendAudit(AuditEntry e) override;
  base::Result<std::vector<AuditEntry>> ListAudit(int64_t after_seq, size_t limit,
                                                  const std::string& subject_hash) override;
  base::Result<AuditVerifyResult> VerifyAudit() override;

  base::Result<std::string> CreateAdminToken(const std::string& name, const std::vector<std::string>& roles) override;
  base::Result<std::optional<AdminTokenInfo>> LookupAdminToken(const std::string& token) override;
  base::Result<std::vector<AdminTokenInfo>> ListAdminTokens() override;
  base::Result<bool> RevokeAdminToken(int64_t id) override;

  base::Result<bool> SetRetention(const std::string& project, int64_t max_age_ms) override;
  base::Result<std::map<std::string, int64_t>> Retention() override;
  // Drops whole monthly partitions that every project's cutoff has passed (their rows count towards the result, which
  // may then exceed max_rows), then deletes at most max_rows older rows from the remaining partitions.
  base::Result<int64_t> PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows) override;

  // ---- Beyond the interface (tests, docs, operators) ----
  base::Result<int64_t> SchemaVersion();
  // Names of the events table's partitions, oldest first (the DEFAULT partition last).
  base::Result<std::vector<std::string>> EventPartitions();
  // Connections currently open / leased (tests of the pool).
  int PoolOpen() const;
  int PoolLeased() const;

  struct Resolved {
    int64_t project_id = 0;
    std::string project;
    std::string user_id;
    std::vector<SubjectIdentity> idents;
    std::vector<std::string> ids;
  };
  class Tx;  // a leased connection (pg_store.cc)

 private:
  explicit PgStore(const PgOptions& options);
  base::Status Migrate();
  base::Status EnsurePartitions(const std::vector<int64_t>& timestamps_ms);
  base::Status InsertOnce(Tx& tx, std::vector<InsertRequest*>& requests);

  base::Result<std::vector<std::pair<int64_t, std::string>>> Projects(Tx& tx, const std::string& name);
  base::Result<std::optional<Resolved>> Resolve(Tx& tx, int64_t project_id, const std::string& project,
                                                const std::string& id);
  base::Result<std::vector<Resolved>> ResolveAll(Tx& tx, const SubjectQuery& q);
  base::Result<SubjectSummary> Summary(Tx& tx, const Resolved& r);
  base::Status EraseIds(Tx& tx, int64_t project_id, const std::vector<std::string>& ids, bool anonymous_only,
                        EraseReceipt* receipt);

  PgOptions opts_;
  std::unique_ptr<PgPool> pool_;
  base::SecretBytes id_key_;

  std::mutex mu_;
  std::unordered_map<std::string, WriteKeyInfo> key_cache_;  // key hash -> project; guarded by mu_
  std::unordered_map<int64_t, int64_t> partitions_;          // month start ms -> retry-after ms (0 = exists)
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_ENGINES_POSTGRES_PG_STORE_H_
