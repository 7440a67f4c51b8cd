// StoreTxn: the collector's storage algorithms, written once over any engine's primitives (engine.h), inside one
// engine transaction. The Store (store.h) runs each of its calls through one; the rights service (collector/rights/)
// runs several in one transaction, so that an action, its register row and its audit entry commit together or not at
// all.
#ifndef FERRY_COLLECTOR_STORE_STORE_TXN_H_
#define FERRY_COLLECTOR_STORE_STORE_TXN_H_

#include <optional>
#include <string>
#include <vector>

#include "collector/store/engine.h"
#include "collector/store/records.h"
#include "lib/base/clock.h"
#include "lib/base/status.h"

namespace ferry::collector {

// A subject's ids in one project: the identity graph walked from one of them.
struct SubjectIds {
  int64_t project_id = 0;
  std::string project;
  std::string user_id;                  // "" for an anonymous-only subject
  std::vector<SubjectIdentity> idents;  // the userId first
  std::vector<std::string> ids;         // every id (userIds, anonymousIds, previousIds), no repeats
  std::vector<IdentityLink> links;      // every link into or out of its userIds, followed or not
};

// The most ids one subject may have (a bound on the identity-graph walk).
inline constexpr size_t kMaxSubjectIds = 100000;

class StoreTxn {
 public:
  StoreTxn(EngineTxn& txn, const IdHasher& id_hash, base::Clock* clock) : txn_(txn), id_hash_(id_hash), clock_(clock) {}
  StoreTxn(const StoreTxn&) = delete;
  StoreTxn& operator=(const StoreTxn&) = delete;

  // The engine's primitives, for what has no algorithm of its own.
  EngineTxn& primitives() { return txn_; }
  std::string IdHash(const std::string& id) const { return id_hash_(id); }
  int64_t NowMs() const { return clock_->NowMs(); }

  // ---- Subjects (the meaning of each call: IdentityGraph in interfaces.h) ----
  // The identity-graph walk from `id` in one project: climbs links to the userId the id belongs to (and up alias
  // chains), then collects every id linked to that userId (transitively through previousIds) and the anonymousIds
  // seen with it. nullopt when nothing is held under the id there.
  base::Result<std::optional<SubjectIds>> Resolve(const ProjectRef& project, const std::string& id);
  // Resolve in each project of the query; across projects a userId is one person (see records.h).
  base::Result<std::vector<SubjectIds>> ResolveAll(const SubjectQuery& q);
  base::Result<SubjectSummary> Summary(const SubjectIds& s);
  base::Result<std::vector<SubjectSummary>> FindSubject(const SubjectQuery& q);
  // With `known`: the ids resolved before part of the subject was deleted (an erasure's events go first, and the
  // anonymousIds seen only on them would no longer resolve): erased too, merged with what resolves now per project.
  base::Result<EraseReceipt> EraseSubject(const SubjectQuery& q, const std::string& request_id,
                                          const std::vector<SubjectIds>* known = nullptr);
  base::Result<EraseReceipt> EraseAnonymousIds(int64_t project_id, const std::vector<std::string>& ids,
                                               const std::string& request_id);
  base::Result<EraseReceipt> ForgetDeviceIds(int64_t project_id, const std::vector<std::string>& ids,
                                             const std::string& request_id);
  // An officer's confirmation of a link (IdentityGraph::ConfirmLink).
  base::Result<std::optional<IdentityLink>> ConfirmLink(int64_t link_id, const std::string& confirmed_by);
  // With `events_rewritten`: how many stored identify events had a corrected trait rewritten (PatchTraits rewrites the
  // top-level "traits" of the subject's identify events: a corrected key takes the new value, a removed one goes).
  base::Result<std::vector<SubjectSummary>> PatchTraits(const SubjectQuery& q, const std::string& patch_json,
                                                        int64_t* events_rewritten = nullptr);

  // Restricts processing of the subject `q` names for `purposes` (empty: all) under `request_id` (kind "restriction"
  // or "objection"): one RestrictionRecord per id in each project it is found in (an unknown subject: its id in each
  // project of the query, so that its events are caught when they come). Returns the rows written.
  base::Result<std::vector<RestrictionRecord>> Restrict(const SubjectQuery& q, const std::string& kind,
                                                        const std::vector<std::string>& purposes,
                                                        const std::string& request_id);

  // ---- The request register (RequestRegister) ----
  base::Result<RightsRequest> CreateRequest(RightsRequest r);
  base::Result<std::optional<RightsRequest>> GetRequest(const std::string& id);
  base::Result<RequestUpdate> UpdateRequest(const std::string& id, const std::string& expected_state,
                                            const std::string& new_state, const std::string& acted_by, int64_t acted_ms,
                                            const std::string& result);

  // ---- The audit log (AuditLog) ----
  base::Result<AuditEntry> AppendAudit(AuditEntry e);

  // ---- Credentials (Credentials) ----
  // kind "write" ("fw_" keys) or "server" ("fs_" keys).
  base::Result<std::string> CreateWriteKey(const std::string& project, const std::string& kind = "write");
  base::Result<std::string> CreateAdminToken(const std::string& name, const std::vector<std::string>& roles);
  base::Result<std::optional<AdminTokenInfo>> LookupAdminToken(const std::string& token);

  // ---- Retention (RetentionStore) ----
  base::Result<bool> SetRetention(const std::string& project, int64_t max_age_ms);
  base::Result<bool> SetConsentKeep(const std::string& project, int64_t keep_ms);

 private:
  base::Status EraseIds(int64_t project_id, const std::vector<std::string>& ids, EraseScope scope,
                        EraseReceipt* receipt);
  // Erases the anonymousIds among `ids` (EraseAnonymousIds; with `device`, ForgetDeviceIds: only ids seen as
  // anonymousIds on events, never rows under a userId).
  base::Result<EraseReceipt> EraseOwnIds(int64_t project_id, const std::vector<std::string>& ids,
                                         const std::string& request_id, bool device);
  // Whether the walk follows a stored link (identity.h).
  base::Result<bool> Followable(int64_t project_id, const LinkRow& link);

  EngineTxn& txn_;
  const IdHasher& id_hash_;
  base::Clock* clock_;
};

// Turns an admin token row into what callers see.
AdminTokenInfo TokenInfoFromRow(const AdminTokenRow& row);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_STORE_TXN_H_
