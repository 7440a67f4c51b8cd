#include "collector/store/store.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "collector/store/audit.h"
#include "lib/base/digest.h"

#include <nlohmann/json.hpp>

namespace ferry::collector {

using base::Result;
using base::Status;

namespace {

// Hands a subject's rows to an export visitor.
class VisitorSink : public RowSink {
 public:
  explicit VisitorSink(ExportVisitor& v) : v_(v) {}
  bool Consent(const ConsentRecord& record) override { return v_.Consent(record); }
  bool Event(const EventRow& event) override { return v_.Event(event); }

 private:
  ExportVisitor& v_;
};

constexpr size_t kAuditPage = 2000;  // entries read at a time while verifying

// A stored policy row as a ConsentPolicy.
ConsentPolicy PolicyOfRow(const std::pair<std::string, std::string>& row) {
  ConsentPolicy p;
  p.mode = row.first;
  nlohmann::json names = nlohmann::json::parse(row.second, nullptr, false);
  if (names.is_array()) {
    for (const auto& n : names) {
      if (n.is_string()) p.necessary.insert(n.get<std::string>());
    }
  }
  return p;
}

}  // namespace

Status EngineTxn::IngestGateRows(int64_t project_id, const std::vector<std::string>& starts,
                                 const std::vector<std::string>& ids, GateRows* out) {
  auto policy = ConsentPolicyRow(project_id);
  if (!policy.ok()) return policy.status();
  out->consent_policy = std::move(policy).value();
  auto marks = MinorMarksOf(project_id, /*active_only=*/true);
  if (!marks.ok()) return marks.status();
  out->minor_marks = std::move(marks).value();
  if (!starts.empty()) {
    auto walk = IdsToWalk(project_id, starts);
    if (!walk.ok()) return walk.status();
    out->ids_to_walk = std::move(walk).value();
  }
  // The records of the people made of their own ids: none when every starting id is walked (this default's
  // IdsToWalk names them all).
  const std::set<std::string> walked(out->ids_to_walk.begin(), out->ids_to_walk.end());
  const bool all_walked =
      std::all_of(starts.begin(), starts.end(), [&](const std::string& id) { return walked.count(id) > 0; });
  if (!ids.empty() && !all_walked) {
    auto records = ConsentRecordsOf(project_id, ids);
    if (!records.ok()) return records.status();
    out->consent_records = std::move(records).value();
  }
  auto restrictions = RestrictionsOf(project_id, /*active_only=*/true);
  if (!restrictions.ok()) return restrictions.status();
  out->restrictions = std::move(restrictions).value();
  auto mode = RestrictionMode(project_id);
  if (!mode.ok()) return mode.status();
  out->restriction_mode = std::move(mode).value();
  return Status::Ok();
}

Store::Store(std::unique_ptr<Engine> engine, base::Clock* clock) : engine_(std::move(engine)), clock_(clock) {}

Store::~Store() = default;

Status Store::Transact(TxnMode mode, const std::function<Status(StoreTxn& tx)>& fn) {
  return engine_->Transact(mode, [&](EngineTxn& t) {
    StoreTxn tx(t, engine_->id_hasher(), clock_);
    return fn(tx);
  });
}

// ---- IngestSink ----

Status Store::Insert(std::vector<InsertRequest*>& requests) { return engine_->Insert(requests); }

void Store::Prepare(InsertRequest* request) { engine_->PrepareInsert(request); }

// ---- Credentials ----

Result<std::string> Store::CreateWriteKey(const std::string& project) {
  return TransactFor<std::string>(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.CreateWriteKey(project); });
}

Result<std::string> Store::CreateServerKey(const std::string& project) {
  return TransactFor<std::string>(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.CreateWriteKey(project, "server"); });
}

Result<std::optional<WriteKeyInfo>> Store::LookupWriteKey(const std::string& key) {
  using Opt = std::optional<WriteKeyInfo>;
  std::string hash = base::Blake2b256(key);
  const int64_t mono = clock_->MonotonicMs();
  auto live = [this](const WriteKeyInfo& k) { return k.expires_ms <= 0 || clock_->NowMs() < k.expires_ms; };
  {
    std::lock_guard<std::mutex> l(key_mu_);
    auto it = key_cache_.find(hash);
    if (it != key_cache_.end() && mono - it->second.fetched_ms < kWriteKeyCacheMs) {
      return live(it->second.info) ? Opt(it->second.info) : Opt();
    }
  }
  auto found = TransactFor<Opt>(TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().FindWriteKey(hash); });
  if (!found.ok()) return found;
  std::lock_guard<std::mutex> l(key_mu_);
  if (!found->has_value()) {
    key_cache_.erase(hash);
    return found;
  }
  if (key_cache_.size() > 10000) key_cache_.clear();
  key_cache_[hash] = CachedKey{**found, mono};
  return live(**found) ? found : Result<Opt>(Opt());
}

Result<std::vector<WriteKeyRecord>> Store::ListWriteKeys() {
  return TransactFor<std::vector<WriteKeyRecord>>(TxnMode::kRead,
                                                  [&](StoreTxn& tx) { return tx.primitives().WriteKeys(); });
}

Result<bool> Store::RevokeWriteKey(int64_t id) {
  auto done =
      TransactFor<bool>(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.primitives().RevokeWriteKey(id, tx.NowMs()); });
  ForgetCachedKeys();
  return done;
}

Result<bool> Store::SetWriteKeyExpiry(int64_t id, int64_t expires_ms) {
  auto done = TransactFor<bool>(TxnMode::kWrite, [&](StoreTxn& tx) {
    return tx.primitives().SetWriteKeyExpiry(id, std::max<int64_t>(expires_ms, 0));
  });
  ForgetCachedKeys();
  return done;
}

Result<bool> Store::SetAdminTokenExpiry(int64_t id, int64_t expires_ms) {
  return TransactFor<bool>(TxnMode::kWrite, [&](StoreTxn& tx) {
    return tx.primitives().SetAdminTokenExpiry(id, std::max<int64_t>(expires_ms, 0));
  });
}

void Store::ForgetCachedKeys() {
  std::lock_guard<std::mutex> l(key_mu_);
  key_cache_.clear();
}

Result<std::string> Store::CreateAdminToken(const std::string& name, const std::vector<std::string>& roles) {
  return TransactFor<std::string>(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.CreateAdminToken(name, roles); });
}

Result<std::optional<AdminTokenInfo>> Store::LookupAdminToken(const std::string& token) {
  return TransactFor<std::optional<AdminTokenInfo>>(TxnMode::kRead,
                                                    [&](StoreTxn& tx) { return tx.LookupAdminToken(token); });
}

Result<std::vector<AdminTokenInfo>> Store::ListAdminTokens() {
  return TransactFor<std::vector<AdminTokenInfo>>(TxnMode::kRead,
                                                  [&](StoreTxn& tx) -> Result<std::vector<AdminTokenInfo>> {
                                                    auto rows = tx.primitives().AdminTokens();
                                                    if (!rows.ok()) return rows.status();
                                                    std::vector<AdminTokenInfo> out;
                                                    for (const AdminTokenRow& r : *rows)
                                                      out.push_back(TokenInfoFromRow(r));
                                                    return out;
                                                  });
}

Result<bool> Store::RevokeAdminToken(int64_t id) {
  return TransactFor<bool>(TxnMode::kWrite,
                           [&](StoreTxn& tx) { return tx.primitives().RevokeAdminToken(id, tx.NowMs()); });
}

// ---- IdentityGraph ----

std::string Store::IdHash(const std::string& id) { return engine_->id_hasher()(id); }

Result<std::vector<SubjectSummary>> Store::FindSubject(const SubjectQuery& q) {
  return TransactFor<std::vector<SubjectSummary>>(TxnMode::kSnapshot, [&](StoreTxn& tx) { return tx.FindSubject(q); });
}

Result<bool> Store::ExportSubject(const SubjectQuery& q, ExportVisitor& visitor) {
  const Status stopped = Status::Closed("the export was stopped by its reader");
  bool found = false;
  Status s = engine_->Export([&](EngineTxn& t, ExportCursor& cursor) -> Status {
    StoreTxn tx(t, engine_->id_hasher(), clock_);
    auto subjects = tx.ResolveAll(q);
    if (!subjects.ok()) return subjects.status();
    std::vector<SubjectSummary> summaries;
    for (const SubjectIds& r : *subjects) {
      auto summary = tx.Summary(r);
      if (!summary.ok()) return summary.status();
      summaries.push_back(std::move(summary).value());
    }
    found = !subjects->empty();
    VisitorSink sink(visitor);
    for (size_t i = 0; i < subjects->size(); ++i) {
      const SubjectIds& r = (*subjects)[i];
      if (!cursor.Unlocked([&] { return visitor.BeginProject(summaries[i]); })) return stopped;
      Status streamed = cursor.StreamRows(r.project_id, r.project, r.ids, sink);
      if (streamed.code() == base::Code::kClosed) return stopped;
      FERRY_RETURN_IF_ERROR(streamed);
      if (!cursor.Unlocked([&] { return visitor.EndProject(); })) return stopped;
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return found;
}

Result<EraseReceipt> Store::EraseSubject(const SubjectQuery& q, const std::string& request_id) {
  return TransactFor<EraseReceipt>(TxnMode::kErase, [&](StoreTxn& tx) { return tx.EraseSubject(q, request_id); });
}

Result<EraseReceipt> Store::EraseAnonymousIds(int64_t project_id, const std::vector<std::string>& ids,
                                              const std::string& request_id) {
  return TransactFor<EraseReceipt>(TxnMode::kErase,
                                   [&](StoreTxn& tx) { return tx.EraseAnonymousIds(project_id, ids, request_id); });
}

Result<EraseReceipt> Store::ForgetDeviceIds(int64_t project_id, const std::vector<std::string>& ids,
                                            const std::string& request_id) {
  return TransactFor<EraseReceipt>(TxnMode::kErase,
                                   [&](StoreTxn& tx) { return tx.ForgetDeviceIds(project_id, ids, request_id); });
}

Result<std::optional<IdentityLink>> Store::ConfirmLink(int64_t link_id, const std::string& confirmed_by) {
  return TransactFor<std::optional<IdentityLink>>(TxnMode::kWrite,
                                                  [&](StoreTxn& tx) { return tx.ConfirmLink(link_id, confirmed_by); });
}

Result<std::vector<SubjectSummary>> Store::PatchTraits(const SubjectQuery& q, const std::string& patch_json) {
  return TransactFor<std::vector<SubjectSummary>>(TxnMode::kWrite,
                                                  [&](StoreTxn& tx) { return tx.PatchTraits(q, patch_json); });
}

// ---- RequestRegister ----

Result<RightsRequest> Store::CreateRequest(RightsRequest r) {
  return TransactFor<RightsRequest>(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.CreateRequest(r); });
}

Result<std::optional<RightsRequest>> Store::GetRequest(const std::string& id) {
  return TransactFor<std::optional<RightsRequest>>(TxnMode::kRead, [&](StoreTxn& tx) { return tx.GetRequest(id); });
}

Result<RequestUpdate> Store::UpdateRequest(const std::string& id, const std::string& expected_state,
                                           const std::string& new_state, const std::string& acted_by, int64_t acted_ms,
                                           const std::string& result) {
  return TransactFor<RequestUpdate>(TxnMode::kWrite, [&](StoreTxn& tx) {
    return tx.UpdateRequest(id, expected_state, new_state, acted_by, acted_ms, result);
  });
}

Result<std::vector<RightsRequest>> Store::ListRequests(const RequestFilter& filter) {
  return TransactFor<std::vector<RightsRequest>>(TxnMode::kRead,
                                                 [&](StoreTxn& tx) { return tx.primitives().ListRequests(filter); });
}

// ---- AuditLog ----

Result<AuditEntry> Store::AppendAudit(AuditEntry e) {
  return TransactFor<AuditEntry>(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.AppendAudit(e); });
}

Result<std::vector<AuditEntry>> Store::ListAudit(int64_t after_seq, size_t limit, const std::string& subject_hash) {
  return TransactFor<std::vector<AuditEntry>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().ListAudit(after_seq, limit, subject_hash); });
}

Result<AuditVerifyResult> Store::VerifyAudit() {
  // Page by page, each page its own read: a long chain does not hold the store.
  AuditChainChecker checker;
  int64_t after = 0;
  for (;;) {
    auto page = ListAudit(after, kAuditPage, "");
    if (!page.ok()) return page.status();
    for (const AuditEntry& e : *page) {
      if (!checker.Add(e)) return checker.Result();
      after = e.seq;
    }
    if (page->size() < kAuditPage) break;
  }
  return checker.Result();
}

// ---- RetentionStore ----

Result<bool> Store::SetRetention(const std::string& project, int64_t max_age_ms) {
  return TransactFor<bool>(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.SetRetention(project, max_age_ms); });
}

Result<std::map<std::string, int64_t>> Store::Retention() {
  return TransactFor<std::map<std::string, int64_t>>(TxnMode::kRead,
                                                     [&](StoreTxn& tx) { return tx.primitives().MaxEventAges(); });
}

Result<bool> Store::SetConsentKeep(const std::string& project, int64_t keep_ms) {
  return TransactFor<bool>(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.SetConsentKeep(project, keep_ms); });
}

Result<int64_t> Store::PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows,
                                    int64_t default_consent_keep_ms) {
  return engine_->PurgeExpired(now_ms, default_max_age_ms, max_rows, default_consent_keep_ms);
}

Result<int64_t> Store::PruneOutbox(int64_t cutoff_ms) {
  return TransactFor<int64_t>(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.primitives().PruneOutbox(cutoff_ms); });
}

// ---- Suppressions ----

Result<bool> Store::IsSuppressed(int64_t project_id, const std::string& id_hash) {
  return TransactFor<bool>(TxnMode::kRead,
                           [&](StoreTxn& tx) { return tx.primitives().IsSuppressed(project_id, id_hash); });
}

Result<int64_t> Store::SuppressedSince(int64_t project_id, const std::string& id_hash) {
  return TransactFor<int64_t>(TxnMode::kRead,
                              [&](StoreTxn& tx) { return tx.primitives().SuppressedSince(project_id, id_hash); });
}

Status Store::Suppress(int64_t project_id, const std::string& id_hash) {
  return Transact(TxnMode::kWrite, [&](StoreTxn& tx) -> Status {
    auto n = tx.primitives().Suppress(project_id, {id_hash}, tx.NowMs());
    return n.ok() ? Status::Ok() : n.status();
  });
}

// ---- ConsentLedger ----

Result<std::optional<ConsentPolicy>> Store::ConsentPolicyOf(int64_t project_id) {
  using Opt = std::optional<ConsentPolicy>;
  return TransactFor<Opt>(TxnMode::kRead, [&](StoreTxn& tx) -> Result<Opt> {
    auto row = tx.primitives().ConsentPolicyRow(project_id);
    if (!row.ok()) return row.status();
    if (!row->has_value()) return Opt();
    return Opt(PolicyOfRow(**row));
  });
}

Result<bool> Store::SetConsentPolicy(const std::string& project, const ConsentPolicy& policy) {
  if (policy.mode != kConsentEnforce && policy.mode != kConsentReportOnly) {
    return Status::InvalidArgument("the consent mode is enforce or report-only");
  }
  nlohmann::json names = nlohmann::json::array();
  for (const std::string& n : policy.necessary) {
    if (n.empty() || n.size() > 200) return Status::InvalidArgument("a necessary event name is 1-200 bytes");
    names.push_back(n);
  }
  const std::string text = names.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return TransactFor<bool>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<bool> {
    auto p = tx.primitives().Projects(project);
    if (!p.ok()) return p.status();
    if (project.empty() || p->empty()) return false;
    FERRY_RETURN_IF_ERROR(tx.primitives().SetConsentPolicyRow(p->front().id, policy.mode, text));
    return true;
  });
}

Result<bool> Store::SetWithdrawalAction(const std::string& project, const std::string& purpose,
                                        const std::string& action) {
  if (action != kWithdrawErase && action != kWithdrawRestrict) {
    return Status::InvalidArgument("a withdrawal erases or restricts");
  }
  if (purpose.empty() || purpose.size() > 64) return Status::InvalidArgument("a purpose is 1-64 bytes");
  return TransactFor<bool>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<bool> {
    auto p = tx.primitives().Projects(project);
    if (!p.ok()) return p.status();
    if (project.empty() || p->empty()) return false;
    FERRY_RETURN_IF_ERROR(tx.primitives().SetWithdrawalAction(p->front().id, purpose, action));
    return true;
  });
}

Result<std::optional<std::map<std::string, std::string>>> Store::WithdrawalActionsOf(const std::string& project) {
  using Opt = std::optional<std::map<std::string, std::string>>;
  return TransactFor<Opt>(TxnMode::kRead, [&](StoreTxn& tx) -> Result<Opt> {
    auto p = tx.primitives().Projects(project);
    if (!p.ok()) return p.status();
    if (project.empty() || p->empty()) return Opt();
    auto actions = tx.primitives().WithdrawalActions(p->front().id);
    if (!actions.ok()) return actions.status();
    return Opt(std::move(actions).value());
  });
}

// ---- Restrictions ----

Result<std::vector<MinorMark>> Store::ActiveMinorMarks(int64_t project_id) {
  return TransactFor<std::vector<MinorMark>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().MinorMarksOf(project_id, /*active_only=*/true); });
}

Result<std::vector<RestrictionRecord>> Store::ActiveRestrictions(int64_t project_id) {
  return TransactFor<std::vector<RestrictionRecord>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().RestrictionsOf(project_id, /*active_only=*/true); });
}

Result<std::vector<RestrictionRecord>> Store::ActiveRestrictionsOf(const std::string& project) {
  return TransactFor<std::vector<RestrictionRecord>>(TxnMode::kRead,
                                                     [&](StoreTxn& tx) -> Result<std::vector<RestrictionRecord>> {
                                                       if (project.empty())
                                                         return tx.primitives().RestrictionsOf(0, true);
                                                       auto p = tx.primitives().Projects(project);
                                                       if (!p.ok()) return p.status();
                                                       if (p->empty()) return std::vector<RestrictionRecord>();
                                                       return tx.primitives().RestrictionsOf(p->front().id, true);
                                                     });
}

Result<std::string> Store::RestrictionModeOf(int64_t project_id) {
  return TransactFor<std::string>(TxnMode::kRead, [&](StoreTxn& tx) -> Result<std::string> {
    auto mode = tx.primitives().RestrictionMode(project_id);
    if (!mode.ok()) return mode.status();
    return mode->empty() ? std::string(kRestrictQuarantine) : *mode;
  });
}

Result<bool> Store::SetRestrictionMode(const std::string& project, const std::string& mode) {
  if (mode != kRestrictQuarantine && mode != kRestrictRefuse) {
    return Status::InvalidArgument("the restriction mode is quarantine or refuse");
  }
  return TransactFor<bool>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<bool> {
    auto p = tx.primitives().Projects(project);
    if (!p.ok()) return p.status();
    if (project.empty() || p->empty()) return false;
    FERRY_RETURN_IF_ERROR(tx.primitives().SetRestrictionMode(p->front().id, mode));
    return true;
  });
}

namespace {

// The ids whose consent records are the person's (ConsentLedger::PersonConsent): the walk from user_id, else from
// anonymous_id, and both ids themselves.
Result<std::vector<std::string>> PersonIds(StoreTxn& tx, const ProjectRef& project, const std::string& user_id,
                                           const std::string& anonymous_id) {
  std::vector<std::string> ids;
  const std::string& start = user_id.empty() ? anonymous_id : user_id;
  if (!start.empty()) {
    auto subject = tx.Resolve(project, start);
    if (!subject.ok()) return subject.status();
    if (subject->has_value()) ids = (*subject)->ids;
  }
  for (const std::string* own : {&user_id, &anonymous_id}) {
    if (!own->empty() && std::find(ids.begin(), ids.end(), *own) == ids.end()) ids.push_back(*own);
  }
  return ids;
}

}  // namespace

Result<std::vector<ConsentRecord>> Store::PersonConsent(int64_t project_id, const std::string& user_id,
                                                        const std::string& anonymous_id) {
  return TransactFor<std::vector<ConsentRecord>>(
      TxnMode::kRead, [&](StoreTxn& tx) -> Result<std::vector<ConsentRecord>> {
        auto name = tx.primitives().ProjectName(project_id);
        if (!name.ok()) return name.status();
        auto ids = PersonIds(tx, ProjectRef{project_id, *name}, user_id, anonymous_id);
        if (!ids.ok()) return ids.status();
        if (ids->empty()) return std::vector<ConsentRecord>();
        return tx.primitives().ConsentRecordsOf(project_id, *ids);
      });
}

namespace {

// The starting ids of people (userId, else anonymousId), for IdsToWalk; and every id of them, for ConsentRecordsOf.
void PeopleIds(const std::vector<std::pair<std::string, std::string>>& people, std::vector<std::string>* starts,
               std::vector<std::string>* ids) {
  std::set<std::string> seen;
  for (const auto& [user_id, anonymous_id] : people) {
    const std::string& start = user_id.empty() ? anonymous_id : user_id;
    if (!start.empty()) starts->push_back(start);
    for (const std::string* id : {&user_id, &anonymous_id}) {
      if (!id->empty() && seen.insert(*id).second) ids->push_back(*id);
    }
  }
}

// PeopleConsent's answer, given the starting ids the walk can take further (IdsToWalk) and a reader of the records of
// the other people's own ids. A person whose starting id the graph cannot take further (a device never linked or
// seen with a userId, the usual case) is made of its own ids: the records of all of them come from one read, each
// person taking those under its ids, in the order the engine gave them. The others are walked one by one, as
// PersonConsent does. `own_records` may give more records than those of the ids it is asked for (the records of
// every id of the batch, read beforehand): a record under none of them belongs to no one here.
Result<std::vector<std::vector<ConsentRecord>>> AssemblePeople(
    StoreTxn& tx, int64_t project_id, const std::vector<std::pair<std::string, std::string>>& people,
    const std::set<std::string>& to_walk,
    const std::function<Result<std::vector<ConsentRecord>>(const std::vector<std::string>&)>& own_records) {
  std::vector<std::vector<ConsentRecord>> out(people.size());
  std::optional<ProjectRef> project;
  std::map<std::string, std::vector<size_t>> own;  // id -> the people made of their own ids that hold it
  for (size_t i = 0; i < people.size(); ++i) {
    const std::string& user_id = people[i].first;
    const std::string& anonymous_id = people[i].second;
    if (to_walk.count(user_id.empty() ? anonymous_id : user_id) == 0) {
      own[user_id].push_back(i);
      if (anonymous_id != user_id) own[anonymous_id].push_back(i);
      continue;
    }
    if (!project) {
      auto name = tx.primitives().ProjectName(project_id);
      if (!name.ok()) return name.status();
      project = ProjectRef{project_id, *name};
    }
    auto ids = PersonIds(tx, *project, user_id, anonymous_id);
    if (!ids.ok()) return ids.status();
    if (ids->empty()) continue;
    auto records = tx.primitives().ConsentRecordsOf(project_id, *ids);
    if (!records.ok()) return records.status();
    out[i] = std::move(records).value();
  }
  own.erase(std::string());
  if (own.empty()) return out;
  std::vector<std::string> ids;
  for (const auto& entry : own) ids.push_back(entry.first);
  auto records = own_records(ids);
  if (!records.ok()) return records.status();
  for (const ConsentRecord& r : *records) {
    // A record under both of a person's ids is theirs once.
    std::vector<size_t> holders;
    for (const std::string* id : {&r.user_id, &r.anonymous_id}) {
      auto it = own.find(*id);
      if (it != own.end()) holders.insert(holders.end(), it->second.begin(), it->second.end());
    }
    std::sort(holders.begin(), holders.end());
    holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
    for (size_t i : holders) out[i].push_back(r);
  }
  return out;
}

}  // namespace

// One transaction for the batch (AssemblePeople).
Result<std::vector<std::vector<ConsentRecord>>> Store::PeopleConsent(
    int64_t project_id, const std::vector<std::pair<std::string, std::string>>& people) {
  using Out = std::vector<std::vector<ConsentRecord>>;
  return TransactFor<Out>(TxnMode::kRead, [&](StoreTxn& tx) -> Result<Out> {
    std::vector<std::string> starts, all_ids;
    PeopleIds(people, &starts, &all_ids);
    if (starts.empty()) return Out(people.size());
    auto walk = tx.primitives().IdsToWalk(project_id, starts);
    if (!walk.ok()) return walk.status();
    return AssemblePeople(
        tx, project_id, people, std::set<std::string>(walk->begin(), walk->end()),
        [&](const std::vector<std::string>& ids) { return tx.primitives().ConsentRecordsOf(project_id, ids); });
  });
}

// One read transaction; the engine reads its rows together (EngineTxn::IngestGateRows), then only the people the
// identity walk can take further cost statements of their own.
Result<IngestGateInput> Store::ReadIngestGate(int64_t project_id,
                                              const std::vector<std::pair<std::string, std::string>>& people) {
  return TransactFor<IngestGateInput>(TxnMode::kRead, [&](StoreTxn& tx) -> Result<IngestGateInput> {
    std::vector<std::string> starts, all_ids;
    PeopleIds(people, &starts, &all_ids);
    GateRows rows;
    FERRY_RETURN_IF_ERROR(tx.primitives().IngestGateRows(project_id, starts, all_ids, &rows));
    IngestGateInput in;
    if (rows.consent_policy) in.consent_policy = PolicyOfRow(*rows.consent_policy);
    in.minor_marks = std::move(rows.minor_marks);
    in.restrictions = std::move(rows.restrictions);
    in.restriction_mode = rows.restriction_mode.empty() ? std::string(kRestrictQuarantine) : rows.restriction_mode;
    if (starts.empty()) {
      in.people.resize(people.size());
      return in;
    }
    auto assembled =
        AssemblePeople(tx, project_id, people, std::set<std::string>(rows.ids_to_walk.begin(), rows.ids_to_walk.end()),
                       [&](const std::vector<std::string>&) -> Result<std::vector<ConsentRecord>> {
                         return std::move(rows.consent_records);
                       });
    if (!assembled.ok()) return assembled.status();
    in.people = std::move(assembled).value();
    return in;
  });
}

// ---- StoreInspection ----

Status Store::Check() { return engine_->Check(); }

Result<std::vector<EventRow>> Store::DumpEvents(const std::string& project) {
  return TransactFor<std::vector<EventRow>>(TxnMode::kRead,
                                            [&](StoreTxn& tx) { return tx.primitives().DumpEvents(project); });
}

Result<std::map<std::string, int64_t>> Store::DroppedCounters(const std::string& project) {
  return TransactFor<std::map<std::string, int64_t>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().DroppedCounters(project); });
}

Status Store::ScanAllText(const TextScanFn& fn) { return engine_->ScanAllText(fn); }

// ---- EventFeedSource ----

Result<std::vector<EventRow>> Store::EventsAfter(int64_t after_seq, size_t limit) {
  return TransactFor<std::vector<EventRow>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().EventsAfter(after_seq, limit); });
}

Result<std::vector<std::string>> Store::IdsWithLatestConsent(const std::string& project, const std::string& purpose,
                                                             const std::string& state) {
  auto records = TransactFor<std::vector<ConsentRecord>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().ConsentOfPurpose(project, purpose); });
  if (!records.ok()) return records.status();
  // Oldest first: the last record naming an id is its latest.
  std::map<std::string, bool> latest;  // id -> whether its latest record has `state`
  for (const ConsentRecord& r : *records) {
    for (const std::string* id : {&r.user_id, &r.anonymous_id}) {
      if (!id->empty()) latest[*id] = r.state == state;
    }
  }
  std::vector<std::string> out;
  for (const auto& [id, match] : latest) {
    if (match) out.push_back(id);
  }
  return out;
}

}  // namespace ferry::collector
