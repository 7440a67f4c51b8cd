// StoreTxn: erasure, correction, the request register, the audit chain and credentials, written once for every
// engine. The identity graph is in identity.cc.
#include "collector/store/store_txn.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "collector/store/audit.h"
#include "collector/store/roles.h"
#include "lib/base/digest.h"
#include "lib/base/ids.h"

namespace ferry::collector {

using base::Result;
using base::Status;

// ---- Erasure and correction ----

Status StoreTxn::EraseIds(int64_t project_id, const std::vector<std::string>& ids, EraseScope scope,
                          EraseReceipt* receipt) {
  for (const char* t : {"events", "consent_ledger", "identity_links", "traits", "requests_redacted"}) {
    receipt->erased.emplace(t, 0);
  }
  if (ids.empty()) return Status::Ok();
  FERRY_RETURN_IF_ERROR(txn_.DeleteSubjectRows(project_id, ids, scope, &receipt->erased));
  std::vector<std::string> hashes;
  hashes.reserve(ids.size());
  for (const std::string& id : ids) hashes.push_back(IdHash(id));
  auto redacted = txn_.RedactRequests(ids, hashes);
  if (!redacted.ok()) return redacted.status();
  receipt->erased["requests_redacted"] += *redacted;
  // A restriction names the ids it covers: they go with the subject (not counted in the receipt's tables).
  auto restrictions = txn_.DeleteRestrictions(project_id, ids);
  if (!restrictions.ok()) return restrictions.status();
  // So does an officer's mark of a minor.
  auto minors = txn_.DeleteMinorMarks(project_id, ids);
  if (!minors.ok()) return minors.status();
  auto suppressed = txn_.Suppress(project_id, hashes, NowMs());
  if (!suppressed.ok()) return suppressed.status();
  receipt->ids_suppressed += *suppressed;
  return Status::Ok();
}

Result<EraseReceipt> StoreTxn::EraseSubject(const SubjectQuery& q, const std::string& request_id,
                                            const std::vector<SubjectIds>* known) {
  EraseReceipt receipt;
  receipt.request_id = request_id;
  auto all = ResolveAll(q);
  if (!all.ok()) return all.status();
  if (known != nullptr) {
    for (const SubjectIds& k : *known) {
      auto same =
          std::find_if(all->begin(), all->end(), [&](const SubjectIds& s) { return s.project_id == k.project_id; });
      if (same == all->end()) {
        all->push_back(k);
        continue;
      }
      for (const std::string& id : k.ids) {
        if (std::find(same->ids.begin(), same->ids.end(), id) == same->ids.end()) same->ids.push_back(id);
      }
    }
  }
  if (all->empty()) {
    // Unknown: nothing to erase, but the id is suppressed so that what devices still hold never lands.
    auto projects = txn_.Projects(q.project);
    if (!projects.ok()) return projects.status();
    for (const ProjectRef& p : *projects)
      FERRY_RETURN_IF_ERROR(EraseIds(p.id, {q.id}, EraseScope::kFollowingLinks, &receipt));
  }
  for (const SubjectIds& r : *all) {
    receipt.projects.push_back(r.project);
    FERRY_RETURN_IF_ERROR(EraseIds(r.project_id, r.ids, EraseScope::kFollowingLinks, &receipt));
  }
  receipt.completed_ms = NowMs();
  return receipt;
}

Result<std::vector<RestrictionRecord>> StoreTxn::Restrict(const SubjectQuery& q, const std::string& kind,
                                                          const std::vector<std::string>& purposes,
                                                          const std::string& request_id) {
  auto all = ResolveAll(q);
  if (!all.ok()) return all.status();
  std::vector<std::pair<ProjectRef, std::vector<std::string>>> targets;
  for (const SubjectIds& r : *all) targets.push_back({ProjectRef{r.project_id, r.project}, r.ids});
  if (all->empty()) {
    auto projects = txn_.Projects(q.project);
    if (!projects.ok()) return projects.status();
    for (const ProjectRef& p : *projects) targets.push_back({p, {q.id}});
  }
  std::vector<RestrictionRecord> out;
  for (const auto& target : targets) {
    for (const std::string& id : target.second) {
      RestrictionRecord r;
      r.project_id = target.first.id;
      r.project = target.first.name;
      r.subject_id = id;
      r.kind = kind;
      r.purposes = purposes;
      r.request_id = request_id;
      r.since_ms = NowMs();
      FERRY_RETURN_IF_ERROR(txn_.InsertRestriction(r));
      out.push_back(std::move(r));
    }
  }
  return out;
}

Result<EraseReceipt> StoreTxn::EraseAnonymousIds(int64_t project_id, const std::vector<std::string>& ids,
                                                 const std::string& request_id) {
  return EraseOwnIds(project_id, ids, request_id, /*device=*/false);
}

Result<EraseReceipt> StoreTxn::ForgetDeviceIds(int64_t project_id, const std::vector<std::string>& ids,
                                               const std::string& request_id) {
  return EraseOwnIds(project_id, ids, request_id, /*device=*/true);
}

Result<EraseReceipt> StoreTxn::EraseOwnIds(int64_t project_id, const std::vector<std::string>& ids,
                                           const std::string& request_id, bool device) {
  EraseReceipt receipt;
  receipt.request_id = request_id;
  std::vector<std::string> anon;
  for (const std::string& id : ids) {
    if (id.empty() || std::find(anon.begin(), anon.end(), id) != anon.end()) continue;
    // A device may not suppress someone's userId by naming it as one of "its" anonymousIds.
    auto is_user = txn_.HeldAsUserId(project_id, id, /*consent_too=*/false);
    if (!is_user.ok()) return is_user.status();
    if (*is_user) continue;
    if (device) {
      // Nor an id it never used: only an id seen as an anonymousId on this project's events is the device's own
      // (a userId not seen yet would otherwise be silenced before its first event).
      auto seen = txn_.HeldAsAnonymousId(project_id, id, /*events_only=*/true);
      if (!seen.ok()) return seen.status();
      if (!*seen) continue;
    }
    anon.push_back(id);
  }
  FERRY_RETURN_IF_ERROR(
      EraseIds(project_id, anon, device ? EraseScope::kDeviceOwn : EraseScope::kAnonymousIds, &receipt));
  auto name = txn_.ProjectName(project_id);
  if (!name.ok()) return name.status();
  if (!name->empty()) receipt.projects.push_back(*name);
  receipt.completed_ms = NowMs();
  return receipt;
}

Result<std::optional<IdentityLink>> StoreTxn::ConfirmLink(int64_t link_id, const std::string& confirmed_by) {
  using Opt = std::optional<IdentityLink>;
  auto changed = txn_.ConfirmLink(link_id, confirmed_by, NowMs());
  if (!changed.ok()) return changed.status();
  if (!*changed) return Opt();
  return txn_.GetLink(link_id);
}

Result<std::vector<SubjectSummary>> StoreTxn::PatchTraits(const SubjectQuery& q, const std::string& patch_json,
                                                          int64_t* events_rewritten) {
  using nlohmann::json;
  json patch = json::parse(patch_json, nullptr, false);
  if (patch.is_discarded() || !patch.is_object()) return Status::InvalidArgument("traits must be a JSON object");
  for (const auto& [k, v] : patch.items()) {
    if (k.empty() || k.size() > 200) return Status::InvalidArgument("a trait name is 1-200 bytes");
  }
  auto all = ResolveAll(q);
  if (!all.ok()) return all.status();
  std::vector<SubjectSummary> out;
  int64_t now = NowMs();
  for (const SubjectIds& r : *all) {
    const std::string& holder = r.user_id.empty() ? r.ids.front() : r.user_id;
    for (const auto& [k, v] : patch.items()) {
      // A corrected value replaces what any linked id held for that trait.
      FERRY_RETURN_IF_ERROR(txn_.DeleteTrait(r.project_id, r.ids, k));
      if (v.is_null()) continue;
      FERRY_RETURN_IF_ERROR(
          txn_.PutTrait(r.project_id, holder, k, v.dump(-1, ' ', false, json::error_handler_t::replace), now));
    }
    // Rectification reaches the stored events (issue 13): the identify events that carried a corrected trait carry
    // the corrected value (or no longer the removed one), their other members and order kept.
    auto bodies = txn_.IdentifyBodies(r.project_id, r.ids);
    if (!bodies.ok()) return bodies.status();
    for (const auto& [row, body] : *bodies) {
      nlohmann::ordered_json ev = nlohmann::ordered_json::parse(body, nullptr, false);
      if (!ev.is_object() || !ev.contains("traits") || !ev["traits"].is_object()) continue;
      nlohmann::ordered_json& traits = ev["traits"];
      bool changed = false;
      for (const auto& [k, v] : patch.items()) {
        if (!traits.contains(k)) continue;
        if (v.is_null()) {
          traits.erase(k);
        } else {
          traits[k] = nlohmann::ordered_json::parse(v.dump());
        }
        changed = true;
      }
      if (!changed) continue;
      FERRY_RETURN_IF_ERROR(txn_.SetEventBody(
          r.project_id, row, ev.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)));
      if (events_rewritten != nullptr) ++*events_rewritten;
    }
    auto s = Summary(r);
    if (!s.ok()) return s.status();
    out.push_back(std::move(s).value());
  }
  return out;
}

// ---- The request register ----

Result<RightsRequest> StoreTxn::CreateRequest(RightsRequest r) {
  if (r.id.empty()) r.id = "req_" + base::RandomHex(12);
  if (r.subject_hash.empty() && !r.subject.empty()) r.subject_hash = IdHash(r.subject);
  FERRY_RETURN_IF_ERROR(txn_.InsertRequest(r));
  return r;
}

Result<std::optional<RightsRequest>> StoreTxn::GetRequest(const std::string& id) { return txn_.GetRequest(id); }

Result<RequestUpdate> StoreTxn::UpdateRequest(const std::string& id, const std::string& expected_state,
                                              const std::string& new_state, const std::string& acted_by,
                                              int64_t acted_ms, const std::string& result) {
  auto changed = txn_.UpdateRequestIf(id, expected_state, new_state, acted_by, acted_ms, result);
  if (!changed.ok()) return changed.status();
  if (*changed) return RequestUpdate::kUpdated;
  auto got = txn_.GetRequest(id);
  if (!got.ok()) return got.status();
  return got->has_value() ? RequestUpdate::kWrongState : RequestUpdate::kNotFound;
}

// ---- The audit log ----

Result<AuditEntry> StoreTxn::AppendAudit(AuditEntry e) {
  if (e.time_ms <= 0) e.time_ms = NowMs();
  auto tip = txn_.LockAuditTip();
  if (!tip.ok()) return tip.status();
  if (tip->has_value()) {
    e.seq = (*tip)->seq + 1;
    e.prev_hash = (*tip)->hash;
  } else {
    e.seq = 1;
    e.prev_hash = kAuditGenesis;
  }
  e.hash = AuditChainHash(e.prev_hash, AuditCanonical(e));
  FERRY_RETURN_IF_ERROR(txn_.InsertAudit(e));
  return e;
}

// ---- Credentials ----

Result<std::string> StoreTxn::CreateWriteKey(const std::string& project, const std::string& kind) {
  if (project.empty() || project.size() > 200) return Status::InvalidArgument("a project name is 1-200 bytes");
  if (kind != "write" && kind != "server") return Status::InvalidArgument("a key is a write key or a server key");
  std::string key = (kind == "server" ? "fs_" : "fw_") + base::RandomHex(32);
  int64_t now = NowMs();
  FERRY_RETURN_IF_ERROR(txn_.EnsureProject(project, now));
  FERRY_RETURN_IF_ERROR(txn_.InsertWriteKey(project, base::Blake2b256(key), key.substr(0, 7), kind, now));
  return key;
}

Result<std::string> StoreTxn::CreateAdminToken(const std::string& name, const std::vector<std::string>& roles) {
  auto canonical = CanonicalRoles(roles);
  if (!canonical.ok()) return canonical.status();
  if (name.size() > 200) return Status::InvalidArgument("a token name is at most 200 bytes");
  std::string token = "fa_" + base::RandomHex(32);
  AdminTokenRow row;
  row.name = name.empty() ? std::string("admin") : name;
  row.prefix = token.substr(0, 9);
  row.roles = JoinRoles(*canonical);
  row.created_ms = NowMs();
  FERRY_RETURN_IF_ERROR(txn_.InsertAdminToken(row, base::Blake2b256(token)));
  return token;
}

Result<std::optional<AdminTokenInfo>> StoreTxn::LookupAdminToken(const std::string& token) {
  using Opt = std::optional<AdminTokenInfo>;
  if (token.rfind("fa_", 0) != 0) return Opt();  // write keys are never admin tokens
  auto row = txn_.FindAdminToken(base::Blake2b256(token));
  if (!row.ok()) return row.status();
  if (!row->has_value()) return Opt();
  if ((*row)->expires_ms > 0 && NowMs() >= (*row)->expires_ms) return Opt();  // expired
  return Opt(TokenInfoFromRow(**row));
}

AdminTokenInfo TokenInfoFromRow(const AdminTokenRow& row) {
  return AdminTokenInfo{row.id,         row.name,       row.prefix,    SplitRoles(row.roles),
                        row.created_ms, row.revoked_ms, row.expires_ms};
}

// ---- Retention ----

Result<bool> StoreTxn::SetRetention(const std::string& project, int64_t max_age_ms) {
  if (project.empty()) return false;
  auto p = txn_.Projects(project);
  if (!p.ok()) return p.status();
  if (p->empty()) return false;
  FERRY_RETURN_IF_ERROR(txn_.SetMaxEventAge(p->front().id, std::max<int64_t>(max_age_ms, 0)));
  return true;
}

Result<bool> StoreTxn::SetConsentKeep(const std::string& project, int64_t keep_ms) {
  if (project.empty()) return false;
  auto p = txn_.Projects(project);
  if (!p.ok()) return p.status();
  if (p->empty()) return false;
  FERRY_RETURN_IF_ERROR(txn_.SetConsentKeep(p->front().id, keep_ms < 0 ? -1 : keep_ms));
  return true;
}

}  // namespace ferry::collector
