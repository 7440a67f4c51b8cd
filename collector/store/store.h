// Store: the collector's storage, every interface of interfaces.h implemented once over an Engine (engine.h). The
// engines (collector/engines/) give only primitive reads and writes; what is done with them (the identity-graph
// walk, summaries, erasure, corrections, the request register, the audit chain and its verification, credentials and
// roles, the keyed id hash, the write-key cache) is here and in store_txn.cc, for every engine alike.
// collector/engines/open_store.h makes a Store from the --storage setting.
#ifndef FERRY_COLLECTOR_STORE_STORE_H_
#define FERRY_COLLECTOR_STORE_STORE_H_

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "collector/store/engine.h"
#include "collector/store/interfaces.h"
#include "collector/store/records.h"
#include "lib/base/clock.h"

namespace ferry::collector {

// How long a process keeps a write key it looked up (LookupWriteKey): a key revoked or expired through another
// process sharing the database is refused within this time.
inline constexpr int64_t kWriteKeyCacheMs = 2000;

class Store : public IngestSink,
              public Credentials,
              public IdentityGraph,
              public RequestRegister,
              public AuditLog,
              public RetentionStore,
              public Suppressions,
              public StoreInspection,
              public EventFeedSource,
              public RightsTransactions,
              public ConsentLedger,
              public Restrictions,
              public IngestGateSource {
 public:
  // clock: the time of every record the store stamps (keys, tokens, suppressions, traits, audit entries, receipts).
  explicit Store(std::unique_ptr<Engine> engine, base::Clock* clock = base::SystemClock());
  ~Store() override;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // IngestSink
  base::Status Insert(std::vector<InsertRequest*>& requests) override;
  void Prepare(InsertRequest* request) override;

  // Credentials
  base::Result<std::string> CreateWriteKey(const std::string& project) override;
  base::Result<std::string> CreateServerKey(const std::string& project) override;
  base::Result<std::optional<WriteKeyInfo>> LookupWriteKey(const std::string& key) override;
  base::Result<std::vector<WriteKeyRecord>> ListWriteKeys() override;
  base::Result<bool> RevokeWriteKey(int64_t id) override;
  base::Result<bool> SetWriteKeyExpiry(int64_t id, int64_t expires_ms) override;
  base::Result<bool> SetAdminTokenExpiry(int64_t id, int64_t expires_ms) override;
  base::Result<std::string> CreateAdminToken(const std::string& name, const std::vector<std::string>& roles) override;
  base::Result<std::optional<AdminTokenInfo>> LookupAdminToken(const std::string& token) override;
  base::Result<std::vector<AdminTokenInfo>> ListAdminTokens() override;
  base::Result<bool> RevokeAdminToken(int64_t id) override;

  // IdentityGraph
  std::string IdHash(const std::string& id) override;
  base::Result<std::vector<SubjectSummary>> FindSubject(const SubjectQuery& q) override;
  base::Result<bool> ExportSubject(const SubjectQuery& q, ExportVisitor& visitor) override;
  base::Result<EraseReceipt> EraseSubject(const SubjectQuery& q, const std::string& request_id) override;
  base::Result<EraseReceipt> EraseAnonymousIds(int64_t project_id, const std::vector<std::string>& ids,
                                               const std::string& request_id) override;
  base::Result<EraseReceipt> ForgetDeviceIds(int64_t project_id, const std::vector<std::string>& ids,
                                             const std::string& request_id) override;
  base::Result<std::optional<IdentityLink>> ConfirmLink(int64_t link_id, const std::string& confirmed_by) override;
  base::Result<std::vector<SubjectSummary>> PatchTraits(const SubjectQuery& q, const std::string& patch_json) override;

  // RequestRegister
  base::Result<RightsRequest> CreateRequest(RightsRequest r) override;
  base::Result<std::optional<RightsRequest>> GetRequest(const std::string& id) override;
  base::Result<RequestUpdate> UpdateRequest(const std::string& id, const std::string& expected_state,
                                            const std::string& new_state, const std::string& acted_by, int64_t acted_ms,
                                            const std::string& result) override;
  base::Result<std::vector<RightsRequest>> ListRequests(const RequestFilter& filter) override;

  // AuditLog
  base::Result<AuditEntry> AppendAudit(AuditEntry e) override;
  base::Result<std::vector<AuditEntry>> ListAudit(int64_t after_seq, size_t limit,
                                                  const std::string& subject_hash) override;
  base::Result<AuditVerifyResult> VerifyAudit() override;

  // RetentionStore
  base::Result<bool> SetRetention(const std::string& project, int64_t max_age_ms) override;
  base::Result<std::map<std::string, int64_t>> Retention() override;
  base::Result<bool> SetConsentKeep(const std::string& project, int64_t keep_ms) override;
  base::Result<int64_t> PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows,
                                     int64_t default_consent_keep_ms = 0) override;
  base::Result<int64_t> PruneOutbox(int64_t cutoff_ms) override;

  // Suppressions
  base::Result<bool> IsSuppressed(int64_t project_id, const std::string& id_hash) override;
  base::Result<int64_t> SuppressedSince(int64_t project_id, const std::string& id_hash) override;
  base::Status Suppress(int64_t project_id, const std::string& id_hash) override;

  // StoreInspection
  base::Status Check() override;
  Engine::CheckpointStats Checkpoints() override { return engine_->Checkpoints(); }
  base::Result<std::vector<EventRow>> DumpEvents(const std::string& project) override;
  base::Result<std::map<std::string, int64_t>> DroppedCounters(const std::string& project) override;

  // EventFeedSource
  base::Result<std::vector<EventRow>> EventsAfter(int64_t after_seq, size_t limit) override;
  base::Result<std::vector<std::string>> IdsWithLatestConsent(const std::string& project, const std::string& purpose,
                                                              const std::string& state) override;
  base::Status ScanAllText(const TextScanFn& fn) override;

  // ConsentLedger
  base::Result<std::optional<ConsentPolicy>> ConsentPolicyOf(int64_t project_id) override;
  base::Result<bool> SetConsentPolicy(const std::string& project, const ConsentPolicy& policy) override;
  base::Result<std::vector<ConsentRecord>> PersonConsent(int64_t project_id, const std::string& user_id,
                                                         const std::string& anonymous_id) override;
  base::Result<std::vector<std::vector<ConsentRecord>>> PeopleConsent(
      int64_t project_id, const std::vector<std::pair<std::string, std::string>>& people) override;
  base::Result<bool> SetWithdrawalAction(const std::string& project, const std::string& purpose,
                                         const std::string& action) override;
  base::Result<std::optional<std::map<std::string, std::string>>> WithdrawalActionsOf(
      const std::string& project) override;
  base::Result<std::vector<MinorMark>> ActiveMinorMarks(int64_t project_id) override;

  // Restrictions
  base::Result<std::vector<RestrictionRecord>> ActiveRestrictions(int64_t project_id) override;
  base::Result<std::vector<RestrictionRecord>> ActiveRestrictionsOf(const std::string& project) override;
  base::Result<std::string> RestrictionModeOf(int64_t project_id) override;
  base::Result<bool> SetRestrictionMode(const std::string& project, const std::string& mode) override;

  // IngestGateSource
  base::Result<IngestGateInput> ReadIngestGate(int64_t project_id,
                                               const std::vector<std::pair<std::string, std::string>>& people) override;

  // RightsTransactions
  base::Status Transact(TxnMode mode, const std::function<base::Status(StoreTxn& tx)>& fn) override;
  bool WritersQueue() const override { return engine_->WritersQueue(); }

  base::Clock* clock() const { return clock_; }

 protected:
  Engine& engine() { return *engine_; }

 private:
  std::unique_ptr<Engine> engine_;
  base::Clock* clock_;
  // Drops every cached write key (after a revocation or an expiry change through this process).
  void ForgetCachedKeys();
  std::mutex key_mu_;
  struct CachedKey {
    WriteKeyInfo info;
    int64_t fetched_ms = 0;  // clock_->MonotonicMs() when read from the engine
  };
  std::unordered_map<std::string, CachedKey> key_cache_;  // write-key hash -> project; guarded by key_mu_
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_STORE_H_
