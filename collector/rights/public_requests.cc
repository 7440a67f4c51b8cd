// Public intake (rights_service.h, "Public intake"): a person's request filed through the self-service page, its
// status by reference and secret, the verification code an app shows its user, the code typed on the page binding the
// request to the app's subject, an officer's identification by hand, and the one-time link to the person's copy.
#include <sodium.h>

#include "collector/rights/documents.h"
#include "collector/rights/request_secrets.h"
#include "collector/rights/rights_service.h"
#include "lib/base/ids.h"
#include "lib/wire/event.h"

namespace ferry::collector::rights {

using base::Result;
using base::Status;

namespace {

constexpr const char* kReceived = "received";
constexpr const char* kAwaiting = "awaiting_verification";
constexpr const char* kPublic = "public";
constexpr const char* kNoSuchRequest = "no such request";
constexpr const char* kStoreUnavailable = "store unavailable";
constexpr size_t kMaxField = 200;

// Whether `secret` is the public request's own status secret (result.public.secretHash holds its hash).
bool HoldsSecret(const RightsRequest& r, const std::string& secret) {
  if (r.source != kPublic || secret.empty()) return false;
  const Json doc = ResultOf(r);
  auto p = doc.find("public");
  if (p == doc.end() || !p->is_object() || !(*p)["secretHash"].is_string()) return false;
  return SameHash((*p)["secretHash"].get<std::string>(), SecretHash(secret));
}

// An 8-digit code, uniformly drawn.
std::string NewCode() {
  char buf[9];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>('0' + randombytes_uniform(10));
  buf[8] = '\0';
  std::string out(buf, 8);
  sodium_memzero(buf, sizeof buf);
  return out;
}

// The key a code is kept under: the store's keyed id hash, so the table alone does not give the codes away.
std::string CodeKey(StoreTxn& tx, const std::string& code) { return tx.IdHash("verification-code:" + code); }

}  // namespace

Result<PublicFiled> RightsService::FilePublicRequest(const PublicFiling& filing, const std::string& source) {
  const Actor person = PublicActor(filing.project.substr(0, 64));
  const char* action = "public.request";
  auto bad = [&](const std::string& why) -> Status {
    Refused(source, person, action, "", "bad_request", Dump(Json{{"why", why}}));
    return Status::InvalidArgument(why);
  };
  const std::string kind = CanonicalKind(filing.kind);
  if (kind.empty()) {
    std::string kinds;
    for (const auto& k : RequestKinds()) kinds += (kinds.empty() ? "" : ", ") + k;
    return bad("kind must be one of " + kinds);
  }
  if (filing.project.empty() || !wire::IsValidIdText(filing.project, kMaxField)) return bad("bad project");
  if (filing.contact.empty() || !wire::IsValidIdText(filing.contact, kMaxField)) {
    return bad("contact must be 1-200 bytes without control characters");
  }
  if (!filing.identifier.empty() && !wire::IsValidIdText(filing.identifier, kMaxField)) {
    return bad("identifier must be at most 200 bytes without control characters");
  }
  if (filing.lang != "en" && filing.lang != "zh-CN") return bad("lang must be en or zh-CN");

  PublicFiled filed;
  filed.secret = base::RandomHex(16);
  const std::string secret_hash = SecretHash(filed.secret);
  bool known_project = true;
  auto out =
      stores_.transactions->TransactFor<RightsRequest>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<RightsRequest> {
        auto projects = tx.primitives().Projects(filing.project);
        if (!projects.ok()) return projects.status();
        if (projects->empty()) {
          known_project = false;
          return RightsRequest();
        }
        RightsRequest r = NewRegisterEntry(kind, filing.project, "", kReceived, kPublic, &tx);
        r.result = Dump(Json{{"public",
                              {{"secretHash", secret_hash},
                               {"contact", filing.contact},
                               {"identifier", filing.identifier},
                               {"lang", filing.lang},
                               {"codeAttempts", 0}}}});
        auto stored = tx.CreateRequest(r);
        if (!stored.ok()) return stored.status();
        FERRY_RETURN_IF_ERROR(
            tx.AppendAudit(Entry(person, action, "", "ok",
                                 Dump(Json{{"requestId", stored->id}, {"kind", kind}, {"state", stored->state}})))
                .status());
        return stored;
      });
  if (!out.ok()) {
    sodium_memzero(filed.secret.data(), filed.secret.size());
    log_.Error("a public request could not be registered: " + out.status().ToString());
    return out.status().WithMessage(kStoreUnavailable);
  }
  if (!known_project) {
    sodium_memzero(filed.secret.data(), filed.secret.size());
    Refused(source, person, action, "", "not_found", Dump(Json{{"why", "unknown project"}}));
    return Status::NotFound("no such project");
  }
  filed.request = std::move(out).value();
  return filed;
}

Result<RightsRequest> RightsService::PublicRequest(const std::string& reference, const std::string& secret,
                                                   const std::string& source) {
  auto got = stores_.requests->GetRequest(reference);
  if (!got.ok()) return got.status().WithMessage(kStoreUnavailable);
  if (!got->has_value() || !HoldsSecret(**got, secret)) {
    Refused(source, PublicActor(""), "public.status", "", "not_found",
            Dump(Json{{"requestId", reference.substr(0, 64)}}));
    return Status::NotFound(kNoSuchRequest);
  }
  return std::move(**got);
}

Result<VerificationCode> RightsService::IssueVerificationCode(const WriteKeyInfo& project,
                                                              const std::vector<std::string>& anonymous_ids,
                                                              int64_t ttl_ms) {
  const Actor device = DeviceActor(project.project);
  const char* action = "device.verification-code";
  VerificationCode code;
  auto out = stores_.transactions->TransactFor<bool>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<bool> {
    // The device's own subject: the first id it demonstrably used (FileDeviceRequest's rule).
    auto own = DeviceSubject(tx, project.project_id, anonymous_ids);
    if (!own.ok()) return own.status();
    const std::string subject = *own;
    if (subject.empty()) {
      FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(device, action, "", "refused",
                                                 Dump(Json{{"why", "no id of this device is known"},
                                                           {"anonymousIds", anonymous_ids.size()}})))
                                .status());
      return false;  // committed: the refusal is on record
    }
    const int64_t now = tx.NowMs();
    VerificationCodeRow row;
    row.project = project.project;
    row.subject = subject;
    row.created_ms = now;
    row.expires_ms = now + ttl_ms;
    Status inserted = Status::AlreadyExists("");
    for (int tries = 0; tries < 4 && inserted.code() == base::Code::kAlreadyExists; ++tries) {
      sodium_memzero(code.code.data(), code.code.size());
      code.code = NewCode();
      row.code_hash = CodeKey(tx, code.code);
      inserted = tx.primitives().InsertVerificationCode(row, now);
    }
    FERRY_RETURN_IF_ERROR(inserted);
    code.expires_ms = row.expires_ms;
    FERRY_RETURN_IF_ERROR(
        tx.AppendAudit(Entry(device, action, subject, "ok", Dump(Json{{"expiresAt", Iso(row.expires_ms)}}))).status());
    return true;
  });
  if (!out.ok()) {
    sodium_memzero(code.code.data(), code.code.size());
    log_.Error("a verification code could not be issued: " + out.status().ToString());
    return out.status().WithMessage(kStoreUnavailable);
  }
  if (!*out) {
    sodium_memzero(code.code.data(), code.code.size());
    return Status::FailedPrecondition("none of these ids has sent events to this project as an anonymousId");
  }
  return code;
}

Result<RightsRequest> RightsService::VerifyPublicRequest(const std::string& reference, const std::string& secret,
                                                         const std::string& code, const std::string& source) {
  const char* action = "public.verify";
  // What the transaction found; the answer is made after it committed (a wrong code's attempt is recorded).
  enum class Outcome { kUnknown, kNotReceived, kClosed, kWrongCode, kBound };
  Outcome outcome = Outcome::kUnknown;
  int attempts_left = 0;
  std::string state;
  auto out =
      stores_.transactions->TransactFor<RightsRequest>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<RightsRequest> {
        // The audit chain's lock first: two verifications (any process) of one request or one code run one after the
        // other, so a code binds once and every attempt is counted.
        FERRY_RETURN_IF_ERROR(tx.primitives().LockAuditTip().status());
        auto got = tx.GetRequest(reference);
        if (!got.ok()) return got.status();
        if (!got->has_value() || !HoldsSecret(**got, secret)) return RightsRequest();
        RightsRequest r = std::move(**got);
        const Actor person = PublicActor(r.project);
        state = r.state;
        if (r.state != kReceived || !r.subject.empty()) {
          outcome = Outcome::kNotReceived;
          FERRY_RETURN_IF_ERROR(
              tx.AppendAudit(Entry(person, action, "", "conflict", Dump(Json{{"requestId", r.id}, {"state", r.state}})))
                  .status());
          return r;
        }
        Json doc = ResultOf(r);
        Json& pub = doc["public"];
        const int64_t used = pub.value("codeAttempts", int64_t{0});
        if (used >= kPublicCodeAttempts) {
          outcome = Outcome::kClosed;
          FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(person, action, "", "refused",
                                                     Dump(Json{{"requestId", r.id}, {"why", "no attempts left"}})))
                                    .status());
          return r;
        }
        const int64_t now = tx.NowMs();
        std::string why;
        std::optional<VerificationCodeRow> row;
        if (code.size() != 8 || code.find_first_not_of("0123456789") != std::string::npos) {
          why = "malformed";
        } else {
          auto found = tx.primitives().GetVerificationCode(CodeKey(tx, code));
          if (!found.ok()) return found.status();
          row = std::move(*found);
          if (!row || row->project != r.project) {
            why = "unknown";
          } else if (row->used_ms > 0) {
            why = "used";
          } else if (row->expires_ms <= now) {
            why = "expired";
          }
        }
        if (why.empty()) {
          auto spent = tx.primitives().SpendVerificationCode(row->code_hash, now);
          if (!spent.ok()) return spent.status();
          if (!*spent) why = "used";
        }
        if (!why.empty()) {
          outcome = Outcome::kWrongCode;
          pub["codeAttempts"] = used + 1;
          attempts_left = static_cast<int>(kPublicCodeAttempts - used - 1);
          auto u = tx.UpdateRequest(r.id, r.state, r.state, r.acted_by, r.acted_ms, Dump(doc));
          if (!u.ok()) return u.status();
          if (*u != RequestUpdate::kUpdated) return Status::Conflict("the request changed meanwhile; try again");
          FERRY_RETURN_IF_ERROR(
              tx.AppendAudit(
                    Entry(person, action, "", "refused",
                          Dump(Json{{"requestId", r.id}, {"why", why + " code"}, {"attemptsLeft", attempts_left}})))
                  .status());
          return r;
        }
        // The code is the app's: the request is about the subject the app's device demonstrably uses.
        auto bound = tx.primitives().BindRequestSubject(r.id, row->subject, tx.IdHash(row->subject));
        if (!bound.ok()) return bound.status();
        if (!*bound) return Status::Conflict("the request changed meanwhile; try again");
        doc["identity"] = {{"method", "app-code"}, {"at", Iso(now)}};
        auto u = tx.UpdateRequest(r.id, kReceived, kAwaiting, r.acted_by, r.acted_ms, Dump(doc));
        if (!u.ok()) return u.status();
        if (*u != RequestUpdate::kUpdated) return Status::Conflict("the request changed meanwhile; try again");
        FERRY_RETURN_IF_ERROR(
            tx.AppendAudit(Entry(person, action, row->subject, "ok",
                                 Dump(Json{{"requestId", r.id}, {"method", "app-code"}, {"state", kAwaiting}})))
                .status());
        outcome = Outcome::kBound;
        r.subject = row->subject;
        r.state = kAwaiting;
        r.result = Dump(doc);
        return r;
      });
  if (!out.ok()) {
    if (out.status().code() == base::Code::kConflict) return out.status();
    log_.Error("a public request's verification failed: " + out.status().ToString());
    return out.status().WithMessage(kStoreUnavailable);
  }
  switch (outcome) {
    case Outcome::kUnknown:
      Refused(source, PublicActor(""), action, "", "not_found", Dump(Json{{"requestId", reference.substr(0, 64)}}));
      return Status::NotFound(kNoSuchRequest);
    case Outcome::kNotReceived: return Status::FailedPrecondition("the request is " + state + "; it needs no code");
    case Outcome::kClosed:
      return Status::ResourceExhausted("too many wrong codes for this request; the officer will verify you by hand");
    case Outcome::kWrongCode:
      return Status::InvalidArgument("this code is wrong, used or expired; " + std::to_string(attempts_left) +
                                     " attempts left");
    case Outcome::kBound: break;
  }
  return out;
}

Result<RightsRequest> RightsService::IdentifyPublicRequest(const Actor& actor, const std::string& request_id,
                                                           const std::string& subject, const Verification& evidence) {
  const char* action = ActionName(Action::kRequestsIdentify);
  if (subject.empty() || !wire::IsValidIdText(subject, 4096)) {
    (void)Audit(actor, action, "", "bad_request", Dump(Json{{"requestId", request_id.substr(0, 64)}}));
    return Status::InvalidArgument("subject must be a non-empty id without control characters");
  }
  auto got = FindRequest(actor, request_id, action);
  if (!got.ok()) return got.status();
  const RightsRequest r = std::move(got).value();
  if (r.source != kPublic || r.state != kReceived || !r.subject.empty()) {
    (void)Audit(actor, action, "", "conflict", Dump(Json{{"requestId", request_id}, {"state", r.state}}));
    return Status::FailedPrecondition("only a received public request without a subject is identified by hand");
  }
  auto out =
      stores_.transactions->TransactFor<RightsRequest>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<RightsRequest> {
        auto bound = tx.primitives().BindRequestSubject(r.id, subject, tx.IdHash(subject));
        if (!bound.ok()) return bound.status();
        if (!*bound) return Status::Conflict("the request changed meanwhile");
        Json doc = ResultOf(r);
        doc["identity"] = {{"method", "officer"},
                           {"evidence", evidence.method.empty() ? Json(nullptr) : Json(evidence.method)},
                           {"reference", evidence.reference.empty() ? Json(nullptr) : Json(evidence.reference)},
                           {"by", actor.name},
                           {"at", Iso(tx.NowMs())}};
        auto u = tx.UpdateRequest(r.id, kReceived, kAwaiting, r.acted_by, r.acted_ms, Dump(doc));
        if (!u.ok()) return u.status();
        if (*u != RequestUpdate::kUpdated) return Status::Conflict("the request changed meanwhile");
        FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(actor, action, subject, "ok",
                                                   Dump(Json{{"requestId", r.id}, {"method", evidence.method}})))
                                  .status());
        RightsRequest done = r;
        done.subject = subject;
        done.state = kAwaiting;
        done.result = Dump(doc);
        return done;
      });
  if (!out.ok()) {
    if (out.status().code() == base::Code::kConflict) return out.status();
    return out.status().WithMessage(kStoreUnavailable);
  }
  return out;
}

Result<CopyLink> RightsService::IssuePublicCopyLink(const std::string& reference, const std::string& secret,
                                                    int64_t ttl_ms, const std::string& source) {
  auto mine = PublicRequest(reference, secret, source);
  if (!mine.ok()) return mine.status();
  return NewCopyLink(PublicActor(mine->project), "public.copy-link", *mine, ttl_ms);
}

}  // namespace ferry::collector::rights
