// Requests filed by a device (rights_service.h, "A request filed by a device"): registration for the device's own
// subject, the device's view of its request, and the one-time link through which it fetches its copy.
#include <sodium.h>

#include <algorithm>

#include "collector/rights/documents.h"
#include "collector/rights/request_secrets.h"
#include "collector/rights/rights_service.h"
#include "lib/base/ids.h"

namespace ferry::collector::rights {

using base::Result;
using base::Status;

namespace {

constexpr const char* kAwaiting = "awaiting_verification";
constexpr const char* kInProgress = "in_progress";
constexpr const char* kExtended = "extended";
constexpr size_t kMaxClaims = 8;  // devices whose filings folded into one request, each with its claim
constexpr const char* kNoSuchRequest = "no such request";
constexpr const char* kStoreUnavailable = "store unavailable";
constexpr const char* kAuditFailed = "the audit log cannot be written; the call was not recorded";

// Which step of a transaction failed: the caller's message depends on it.
enum class Step { kNone, kAction, kRegister, kAudit };

// Whether `claim` is one of the request's own (result.device.claims holds their hashes).
bool HoldsClaim(const RightsRequest& r, const std::string& claim) {
  if (r.source != "device" || claim.empty()) return false;
  const Json doc = ResultOf(r);
  auto d = doc.find("device");
  if (d == doc.end() || !d->is_object() || !d->contains("claims") || !(*d)["claims"].is_array()) return false;
  const std::string h = SecretHash(claim);
  bool held = false;
  for (const auto& c : (*d)["claims"]) held = (c.is_string() && SameHash(c.get<std::string>(), h)) || held;
  return held;
}

bool IsCopy(const std::string& kind) { return kind == "access" || kind == "portability"; }
bool Delivering(const RightsRequest& r) {
  return IsCopy(r.kind) && (r.state == kInProgress || r.state == kExtended) && !r.subject.empty() &&
         r.subject.rfind("hash:", 0) != 0;
}

}  // namespace

Result<DeviceFiled> RightsService::FileDeviceRequest(const WriteKeyInfo& project, const DeviceFiling& filing) {
  const Actor device = DeviceActor(project.project);
  const char* action = "device.request";
  if (!IsRequestKind(filing.kind)) {
    (void)Audit(device, action, "", "bad_request", Dump(Json{{"kind", filing.kind.substr(0, 64)}}));
    std::string kinds;
    for (const auto& k : RequestKinds()) kinds += (kinds.empty() ? "" : ", ") + k;
    return Status::InvalidArgument("kind must be one of " + kinds);
  }
  if (filing.claim.size() != 64 || filing.claim.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Status::InvalidArgument("claim must be 64 lowercase hex digits (32 random bytes)");
  }
  const std::string claim_hash = SecretHash(filing.claim);
  Step failed_at = Step::kNone;
  auto out = stores_.transactions->TransactFor<DeviceFiled>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<DeviceFiled> {
    failed_at = Step::kAction;
    // The device's own subject: the first id it demonstrably used (Forget's rule).
    int64_t proven = 0;
    auto own = DeviceSubject(tx, project.project_id, filing.anonymous_ids, &proven);
    if (!own.ok()) return own.status();
    const std::string subject = *own;
    DeviceFiled f;
    if (subject.empty()) {
      failed_at = Step::kAudit;
      FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(device, action, "", "refused",
                                                 Dump(Json{{"kind", filing.kind},
                                                           {"why", "no id of this device is known"},
                                                           {"anonymousIds", filing.anonymous_ids.size()}})))
                                .status());
      return f;  // committed: the refusal is on record
    }
    // A second filing for the same id and kind while the first is open folds into it.
    failed_at = Step::kRegister;
    std::optional<RightsRequest> open;
    for (const char* state : {kAwaiting, kInProgress, kExtended}) {
      auto found = tx.primitives().FindDeviceRequest(filing.kind, project.project, tx.IdHash(subject), state);
      if (!found.ok()) return found.status();
      if (found->has_value()) {
        open = std::move(*found);
        break;
      }
    }
    if (open) {
      Json doc = ResultOf(*open);
      Json& claims = doc["device"]["claims"];
      if (!claims.is_array()) claims = Json::array();
      bool known = false;
      for (const auto& c : claims) known = known || (c.is_string() && SameHash(c.get<std::string>(), claim_hash));
      if (!known) {
        claims.push_back(claim_hash);
        while (claims.size() > kMaxClaims) claims.erase(claims.begin());
      }
      auto u = tx.UpdateRequest(open->id, open->state, open->state, open->acted_by, open->acted_ms, Dump(doc));
      if (!u.ok()) return u.status();
      if (*u != RequestUpdate::kUpdated) return Status::Conflict("the request changed meanwhile");
      f.folded = true;
      f.request = *open;
      f.request.result = Dump(doc);
    } else {
      RightsRequest r = NewRegisterEntry(filing.kind, project.project, subject, kAwaiting, "device", &tx);
      r.result = Dump(Json{{"device", {{"claims", Json::array({claim_hash})}, {"idsProven", proven}}}});
      auto stored = tx.CreateRequest(r);
      if (!stored.ok()) return stored.status();
      f.request = std::move(stored).value();
    }
    failed_at = Step::kAudit;
    FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(device, action, subject, "ok",
                                               Dump(Json{{"requestId", f.request.id},
                                                         {"kind", filing.kind},
                                                         {"folded", f.folded},
                                                         {"state", f.request.state}})))
                              .status());
    return f;
  });
  if (!out.ok()) {
    if (out.status().code() == base::Code::kConflict) return out.status();
    log_.Error("a device's request could not be registered: " + out.status().ToString());
    return out.status().WithMessage(failed_at == Step::kAudit ? kAuditFailed : kStoreUnavailable);
  }
  if (out->request.id.empty()) {
    return Status::FailedPrecondition("none of these ids has sent events to this project as an anonymousId");
  }
  return out;
}

Result<RightsRequest> RightsService::DeviceRequest(const WriteKeyInfo& project, const std::string& request_id,
                                                   const std::string& claim) {
  auto got = stores_.requests->GetRequest(request_id);
  if (!got.ok()) return got.status().WithMessage(kStoreUnavailable);
  if (!got->has_value() || (*got)->project != project.project || !HoldsClaim(**got, claim)) {
    return Status::NotFound(kNoSuchRequest);
  }
  return std::move(**got);
}

Result<CopyLink> RightsService::IssueCopyLink(const WriteKeyInfo& project, const std::string& request_id,
                                              const std::string& claim, int64_t ttl_ms) {
  const Actor device = DeviceActor(project.project);
  const char* action = "device.copy-link";
  auto mine = DeviceRequest(project, request_id, claim);
  if (!mine.ok()) return mine.status();
  return NewCopyLink(device, action, *mine, ttl_ms);
}

Result<CopyLink> RightsService::NewCopyLink(const Actor& actor, const char* action, const RightsRequest& request,
                                            int64_t ttl_ms) {
  const RightsRequest* mine = &request;
  if (!Delivering(*mine)) {
    return Status::FailedPrecondition("the request is " + mine->state + "; its copy is not ready");
  }
  CopyLink link;
  link.token = base::RandomHex(32);
  link.expires_ms = clock_->NowMs() + ttl_ms;
  const Json add = {{"copyLink",
                     {{"tokenHash", SecretHash(link.token)},
                      {"expiresAt", Iso(link.expires_ms)},
                      {"expiresMs", link.expires_ms},
                      {"usedAt", nullptr}}}};
  Step failed_at = Step::kRegister;
  auto done = stores_.transactions->TransactFor<bool>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<bool> {
    Json doc = ResultOf(*mine);
    for (const auto& [k, v] : add.items()) doc[k] = v;
    auto u = tx.UpdateRequest(mine->id, mine->state, mine->state, mine->acted_by, mine->acted_ms, Dump(doc));
    if (!u.ok()) return u.status();
    if (*u != RequestUpdate::kUpdated) return Status::Conflict("the request changed meanwhile; ask again");
    failed_at = Step::kAudit;
    FERRY_RETURN_IF_ERROR(
        tx.AppendAudit(Entry(actor, action, mine->subject, "ok",
                             Dump(Json{{"requestId", mine->id}, {"expiresAt", Iso(link.expires_ms)}})))
            .status());
    return true;
  });
  if (!done.ok()) {
    sodium_memzero(link.token.data(), link.token.size());
    if (done.status().code() == base::Code::kConflict) return done.status();
    return done.status().WithMessage(failed_at == Step::kAudit ? kAuditFailed : kStoreUnavailable);
  }
  return link;
}

Result<RightsRequest> RightsService::RedeemCopyLink(const std::string& request_id, const std::string& token) {
  const char* action = ActionName(Action::kRequestsDeliver);
  const std::string token_hash = SecretHash(token);
  std::string project;
  auto out = stores_.transactions->TransactFor<std::optional<RightsRequest>>(
      TxnMode::kWrite, [&](StoreTxn& tx) -> Result<std::optional<RightsRequest>> {
        // The audit chain's lock first: every other redemption (any process) waits here, and then reads this one's
        // outcome, so a link is spent once.
        FERRY_RETURN_IF_ERROR(tx.primitives().LockAuditTip().status());
        auto got = tx.GetRequest(request_id);
        if (!got.ok()) return got.status();
        if (!got->has_value()) return std::optional<RightsRequest>();
        RightsRequest r = std::move(**got);
        project = r.project;
        Json doc = ResultOf(r);
        auto l = doc.find("copyLink");
        const bool live = l != doc.end() && l->is_object() && (*l)["tokenHash"].is_string() &&
                          SameHash((*l)["tokenHash"].get<std::string>(), token_hash) && (*l)["usedAt"].is_null() &&
                          (*l)["expiresMs"].is_number_integer() && (*l)["expiresMs"].get<int64_t>() > tx.NowMs() &&
                          Delivering(r);
        if (!live) return std::optional<RightsRequest>();
        (*l)["usedAt"] = Iso(tx.NowMs());
        auto u = tx.UpdateRequest(r.id, r.state, r.state, r.acted_by, r.acted_ms, Dump(doc));
        if (!u.ok()) return u.status();
        if (*u != RequestUpdate::kUpdated) return std::optional<RightsRequest>();
        FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(LinkActor(r), action, r.subject, "started",
                                                   Dump(Json{{"requestId", r.id}, {"via", "one-time link"}})))
                                  .status());
        r.result = Dump(doc);
        return std::optional<RightsRequest>(std::move(r));
      });
  if (!out.ok()) return out.status().WithMessage(kStoreUnavailable);
  if (!out->has_value()) {
    (void)Audit(DeviceActor(project), action, "", "refused",
                Dump(Json{{"requestId", request_id.substr(0, 64)}, {"via", "one-time link"}}));
    return Status::NotFound("this link is unknown, used or expired");
  }
  return std::move(**out);
}

}  // namespace ferry::collector::rights
