// The embedded store: one SQLCipher-encrypted database file in the data directory.
#ifndef FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_STORE_H_
#define FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_STORE_H_

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "collector/store/store.h"
#include "lib/base/secret.h"
#include "lib/base/sqlite.h"

namespace ferry::collector {

// The schema version this build writes (PRAGMA user_version); older files are migrated on open.
inline constexpr int64_t kSchemaVersion = 2;

// Loads the store key from key_file, or (key_file empty) from DIR/collector.key, creating that file with 32 random
// bytes (64 hex characters, mode 0600) on first use. A key file holds 64 hex characters or 32 raw bytes, and is
// refused when it is a symbolic link or has group/other permissions (platform::LoadOrCreateKey).
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
  base::Result<int64_t> PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows) override;

  int64_t SchemaVersion();
  // The database file (tests read its raw pages).
  const std::string& path() const { return path_; }

  // A subject's ids in one project (the identity graph walked from one id). Public for tests.
  struct Resolved {
    int64_t project_id = 0;
    std::string project;
    std::string user_id;                  // "" for an anonymous-only subject
    std::vector<SubjectIdentity> idents;  // the userId first
    std::vector<std::string> ids;         // every id (userIds, anonymousIds, previousIds), no repeats
  };

 private:
  explicit SqliteStore(base::Db db) : db_(std::move(db)) {}
  base::Status Migrate();
  base::Status InsertLocked(std::vector<InsertRequest*>& requests);
  // Subject resolution and reads; mu_ held.
  base::Result<std::vector<std::pair<int64_t, std::string>>> ProjectsLocked(const std::string& name);
  base::Result<std::optional<Resolved>> ResolveLocked(int64_t project_id, const std::string& project,
                                                      const std::string& id);
  base::Result<std::vector<Resolved>> ResolveAllLocked(const SubjectQuery& q);
  base::Result<SubjectSummary> SummaryLocked(const Resolved& r);
  base::Status EraseIdsLocked(int64_t project_id, const std::vector<std::string>& ids, bool anonymous_only,
                              EraseReceipt* receipt);

  std::string path_;

  std::mutex mu_;
  base::Db db_;                                              // guarded by mu_
  base::SecretBytes id_key_;                                 // keyed hash of subject ids (suppression list)
  std::unordered_map<std::string, WriteKeyInfo> key_cache_;  // key hash -> project; guarded by mu_
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_STORE_H_
