#include "collector/rights/rights_service.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <tuple>

#include "collector/rights/documents.h"
#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "lib/wire/event.h"

namespace ferry::collector::rights {

using base::Result;
using base::Status;

namespace {

constexpr const char* kStoreUnavailable = "store unavailable";
constexpr const char* kAuditFailed = "the audit log cannot be written; the call was not recorded";
constexpr const char* kEraseFailed = "the erasure failed; nothing was erased";
// An erasure deletes the subject's events ahead of its last transaction in chunks of about kEraseChunkMs each (the
// longest an ingest batch waits for one), their size adjusted to the time the last one took.
constexpr int64_t kFirstEraseChunk = 200;
constexpr int64_t kMinEraseChunk = 100;
constexpr int64_t kMaxEraseChunk = 20000;
constexpr double kEraseChunkMs = 30.0;
// The request result's count of the events deleted ahead so far.
constexpr const char* kEventsErasedAhead = "eventsErasedAhead";
// ... and the ids resolved before the first chunk (IdsDocument).
constexpr const char* kIdsToErase = "idsToErase";

std::string FailedErasureMessage(int64_t deleted, bool suppressed) {
  if (suppressed) {
    return "the erasure failed part way: the subject's ids were suppressed (their new events are dropped), nothing "
           "was erased; the request awaits an officer, whose approval finishes the erasure";
  }
  if (deleted == 0) return kEraseFailed;
  return "the erasure failed part way: " + std::to_string(deleted) +
         " of the subject's events were deleted, nothing else was; the request awaits an officer, whose approval "
         "finishes the erasure";
}
constexpr size_t kMaxIdBytes = 4096;

constexpr const char* kReceived = "received";
constexpr const char* kAwaiting = "awaiting_verification";
constexpr const char* kInProgress = "in_progress";
constexpr const char* kExtended = "extended";
constexpr const char* kCompleted = "completed";
constexpr const char* kRejected = "rejected";

bool IsOpen(const std::string& state) { return state != kCompleted && state != kRejected; }
bool IsCopyKind(const std::string& kind) { return kind == "access" || kind == "portability"; }

// A request's result document with `add`'s members put in (replacing those of the same name).
std::string MergedResult(const std::string& before, const Json& add) {
  Json doc = before.empty() ? Json::object() : Json::parse(before, nullptr, false);
  if (!doc.is_object()) doc = Json::object();
  for (const auto& [k, v] : add.items()) doc[k] = v;
  return Dump(doc);
}

std::string NewRequestId() { return "req_" + base::RandomHex(12); }

Json VerificationDocument(const Verification& v, const std::string& by, int64_t at_ms) {
  return {{"method", v.method.empty() ? Json(nullptr) : Json(v.method)},
          {"reference", v.reference.empty() ? Json(nullptr) : Json(v.reference)},
          {"by", by},
          {"at", Iso(at_ms)}};
}

// Which step of a transaction failed: the caller's message depends on it.
enum class Step { kNone, kAction, kRegister, kAudit };

// Every id of each subject (its userId, then its identities), by project.
std::vector<std::pair<std::string, std::vector<std::string>>> IdsOfSummaries(
    const std::vector<SubjectSummary>& subjects) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const SubjectSummary& s : subjects) {
    std::vector<std::string> ids;
    if (!s.user_id.empty()) ids.push_back(s.user_id);
    for (const SubjectIdentity& i : s.identities) {
      if (std::find(ids.begin(), ids.end(), i.id) == ids.end()) ids.push_back(i.id);
    }
    out.emplace_back(s.project, std::move(ids));
  }
  return out;
}

}  // namespace

const std::vector<std::string>& RequestKinds() {
  static const std::vector<std::string> kKinds = {"access",      "erasure",     "correction",
                                                  "portability", "restriction", "objection"};
  return kKinds;
}

std::string CanonicalKind(const std::string& kind) {
  if (kind == "rectification") return "correction";
  for (const std::string& k : RequestKinds()) {
    if (k == kind) return k;
  }
  return std::string();
}

bool KindHasPurposes(const std::string& kind) { return kind == "restriction" || kind == "objection"; }

bool IsRequestKind(const std::string& kind) {
  const auto& kinds = RequestKinds();
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

std::optional<int64_t> DueUnderPolicy(const std::string& policy, int64_t received_ms) {
  constexpr int64_t kDay = 24LL * 3600 * 1000;
  const int64_t day = received_ms >= 0 ? received_ms / kDay : (received_ms - kDay + 1) / kDay;
  const int64_t time_of_day = received_ms - day * kDay;
  if (policy == "gdpr") {
    int64_t y = 0;
    unsigned m = 0, d = 0;
    base::CivilFromDays(day, &y, &m, &d);
    if (++m > 12) {
      m = 1;
      ++y;
    }
    // The same day of the next month, or its last day (31 January -> 28/29 February).
    const unsigned next_first_m = m == 12 ? 1 : m + 1;
    const int64_t last = base::DaysFromCivil(m == 12 ? y + 1 : y, next_first_m, 1) - base::DaysFromCivil(y, m, 1);
    return base::DaysFromCivil(y, m, std::min<unsigned>(d, static_cast<unsigned>(last))) * kDay + time_of_day;
  }
  if (policy == "pipl") {
    int64_t d = day;
    for (int worked = 0; worked < 15;) {
      ++d;
      const int64_t weekday = ((d % 7) + 7 + 3) % 7;  // 1970-01-01 was a Thursday: 0 = Monday
      if (weekday < 5) ++worked;
    }
    return d * kDay + time_of_day;
  }
  if (policy.rfind("days:", 0) == 0) {
    const std::string n = policy.substr(5);
    if (n.empty() || n.size() > 3 || n.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    const int64_t days = std::stoll(n);
    if (days < 1 || days > 365) return std::nullopt;
    return received_ms + days * kDay;
  }
  return std::nullopt;
}

bool RequestTransitionAllowed(const std::string& from, const std::string& to) {
  if (to == kRejected) return IsOpen(from);
  if (from == kReceived) return to == kAwaiting || to == kInProgress || to == kCompleted;
  if (from == kAwaiting) return to == kInProgress || to == kCompleted;  // completed: an erasure carried out at once
  if (from == kInProgress) return to == kExtended || to == kCompleted;
  if (from == kExtended) return to == kCompleted;
  return false;
}

RightsService::RightsService(RightsStores stores, base::Clock* clock, RightsOptions options, base::Logger log)
    : stores_(stores), clock_(clock), opts_(options), log_(std::move(log)), refusals_(options.refusals) {}

RightsService::~RightsService() { FlushRefusals(true); }

void RightsService::Refused(const std::string& source, const Actor& actor, const std::string& action,
                            const std::string& subject, const std::string& result, const std::string& detail) {
  if (source.empty()) {
    (void)Audit(actor, action, subject, result, detail);  // the refusal stands regardless
    return;
  }
  refusals_.Count(source, result, action, actor.audit_name, clock_->NowMs());
  FlushRefusals(false);
}

void RightsService::FlushRefusals(bool all) {
  for (const RefusalTally& t : refusals_.TakeDue(clock_->NowMs(), all)) {
    Json detail = {{"source", t.source},   {"count", t.count},     {"from", Iso(t.first_ms)}, {"to", Iso(t.last_ms)},
                   {"results", t.results}, {"actions", t.actions}, {"callers", t.callers}};
    (void)Audit(Actor{"refused calls from " + t.source, "", ""}, "admin.refused", "", "refused", Dump(detail));
  }
}

AuditEntry RightsService::Entry(const Actor& actor, const std::string& action, const std::string& subject,
                                const std::string& result, const std::string& detail) {
  AuditEntry e;
  e.time_ms = clock_->NowMs();
  e.actor = actor.audit_name;
  e.role = actor.role;
  e.action = action;
  e.subject_hash = subject.empty() ? std::string() : stores_.subjects->IdHash(subject);
  e.result = result;
  e.detail = detail;
  return e;
}

Status RightsService::Audit(const Actor& actor, const std::string& action, const std::string& subject,
                            const std::string& result, const std::string& detail) {
  auto r = stores_.audit->AppendAudit(Entry(actor, action, subject, result, detail));
  if (r.ok()) return Status::Ok();
  log_.Error("cannot write the audit log: " + r.status().ToString());
  return r.status().WithMessage(kAuditFailed);
}

Status RightsService::RecordAudit(const Actor& actor, const std::string& action, const std::string& subject,
                                  const std::string& result, const std::string& detail) {
  return Audit(actor, action, subject, result, detail);
}

Status RightsService::Propagate(StoreTxn& tx, const std::string& kind, const std::string& project,
                                const std::string& request_id,
                                const std::vector<std::pair<std::string, std::vector<std::string>>>& subjects,
                                const std::string& fallback_id, Json change) {
  if (opts_.outbox == nullptr) return Status::Ok();
  Propagation p{kind, project, request_id, {}, std::move(change)};
  for (const auto& s : subjects) {
    for (const auto& id : s.second) {
      if (std::find(p.ids.begin(), p.ids.end(), id) == p.ids.end()) p.ids.push_back(id);
    }
  }
  if (p.ids.empty()) p.ids.push_back(fallback_id);
  return opts_.outbox->Record(tx, p);
}

Status RightsService::RecordDownstream(StoreTxn& tx, const std::string& kind, const SubjectQuery& q,
                                       const std::string& request_id, Json change) {
  if (opts_.outbox == nullptr) return Status::Ok();
  auto found = tx.FindSubject(q);
  if (!found.ok()) return found.status();
  return Propagate(tx, kind, q.project, request_id, IdsOfSummaries(*found), q.id, std::move(change));
}

void RightsService::TellErased(const std::vector<std::pair<std::string, std::vector<std::string>>>& subjects) {
  if (!opts_.on_erased) return;
  for (const auto& [project, ids] : subjects) opts_.on_erased(project, ids);
}

RightsRequest RightsService::NewRegisterEntry(const std::string& kind, const std::string& project,
                                              const std::string& subject, const std::string& state,
                                              const std::string& source, StoreTxn* tx) {
  RightsRequest r;
  r.id = NewRequestId();
  r.kind = kind;
  r.project = project;
  r.subject = subject;
  r.state = state;
  r.source = source;
  r.received_ms = clock_->NowMs();
  r.due_ms = DueFor(project, r.received_ms, tx);
  return r;
}

int64_t RightsService::DueFor(const std::string& project, int64_t received_ms, StoreTxn* tx) {
  auto policy = tx != nullptr ? PolicyIn(*tx, project) : RequestPolicy(project);
  if (!policy.ok()) {
    log_.Warn("cannot read the request policy; the collector's due period applies: " + policy.status().ToString());
  } else if (auto due = DueUnderPolicy(*policy, received_ms)) {
    return *due;
  }
  return received_ms + opts_.request_due_ms;
}

Result<std::string> RightsService::PolicyIn(StoreTxn& tx, const std::string& project) {
  auto own = tx.primitives().GetRequestPolicy(project);
  if (!own.ok() || !own->empty() || project.empty()) return own;
  return tx.primitives().GetRequestPolicy("");
}

Result<std::string> RightsService::RequestPolicy(const std::string& project) {
  return stores_.transactions->TransactFor<std::string>(TxnMode::kRead,
                                                        [&](StoreTxn& tx) { return PolicyIn(tx, project); });
}

Status RightsService::SetRequestPolicy(const Actor& actor, const std::string& project, const std::string& policy) {
  if (!policy.empty() && !DueUnderPolicy(policy, 0).has_value()) {
    (void)Audit(actor, ActionName(Action::kRequestsPolicy), "", "bad_request",
                Dump(Json{{"project", project.substr(0, 200)}, {"policy", policy.substr(0, 64)}}));
    return Status::InvalidArgument("policy must be gdpr, pipl or days:N (1-365), or empty to remove it");
  }
  return stores_.transactions->Transact(TxnMode::kWrite, [&](StoreTxn& tx) -> Status {
    FERRY_RETURN_IF_ERROR(tx.primitives().SetRequestPolicy(project, policy));
    return tx
        .AppendAudit(Entry(actor, ActionName(Action::kRequestsPolicy), "", "ok",
                           Dump(Json{{"project", project}, {"policy", policy}})))
        .status();
  });
}

// ---- Who calls ----

Result<Actor> RightsService::Authorize(const std::string& token, Action action, const std::string& subject,
                                       const std::string& source) {
  const std::string name = ActionName(action);
  if (token.empty()) {
    Refused(source, Actor{"anonymous", "", ""}, name, subject, "unauthenticated", "");
    return Status::Unauthenticated("an admin token is required");
  }
  auto info = stores_.credentials->LookupAdminToken(token);
  if (!info.ok()) {
    log_.Error("admin token lookup failed: " + info.status().ToString());
    return info.status().WithMessage(kStoreUnavailable);
  }
  if (!info->has_value()) {
    Refused(source, Actor{"unknown token", "", ""}, name, subject, "unauthenticated", "");
    return Status::Unauthenticated("unknown, revoked or expired admin token");
  }
  const AdminTokenInfo& t = **info;
  Actor actor{t.name + " (" + t.prefix + ")", AllowingRole(t.roles, action), t.name};
  if (actor.role.empty()) {
    Refused(source, actor, name, subject, "denied", Dump(Json{{"needs", RolesNeeded(action)}}));
    return Status::PermissionDenied("this call needs the role " + RolesNeeded(action));
  }
  if (!source.empty()) FlushRefusals(false);
  return actor;
}

bool RightsService::HasRole(const std::string& token, const std::string& role) {
  if (token.empty()) return false;
  auto info = stores_.credentials->LookupAdminToken(token);
  return info.ok() && info->has_value() && HoldsRole((**info).roles, role);
}

Result<AdminTokenInfo> RightsService::WhoAmI(const std::string& token) {
  auto info = stores_.credentials->LookupAdminToken(token);
  if (!info.ok()) return info.status().WithMessage(kStoreUnavailable);
  if (!info->has_value()) return Status::Unauthenticated("unknown, revoked or expired admin token");
  return **info;
}

Result<WriteKeyInfo> RightsService::AuthorizeDevice(const std::string& write_key) {
  if (write_key.empty()) return Status::Unauthenticated("missing write key");
  auto info = stores_.credentials->LookupWriteKey(write_key);
  if (!info.ok()) return info.status().WithMessage(kStoreUnavailable);
  if (!info->has_value()) return Status::Unauthenticated("unknown write key");
  return **info;
}

// ---- Subjects ----

Result<std::vector<SubjectSummary>> RightsService::Show(const Actor& actor, const SubjectQuery& q) {
  const char* action = ActionName(Action::kSubjectShow);
  auto found = stores_.subjects->FindSubject(q);
  if (!found.ok()) {
    (void)Audit(actor, action, q.id, "error", "");
    return found.status().WithMessage(kStoreUnavailable);
  }
  if (found->empty()) {
    FERRY_RETURN_IF_ERROR(Audit(actor, action, q.id, "not_found", ""));
    return Status::NotFound("subject not found");
  }
  FERRY_RETURN_IF_ERROR(Audit(actor, action, q.id, "ok", Dump(Json{{"projects", found->size()}})));
  return found;
}

Status RightsService::BeginLookup(const Actor& actor, const SubjectQuery& q) {
  const char* action = ActionName(Action::kSubjectExport);
  auto found = stores_.subjects->FindSubject(q);
  if (!found.ok()) return found.status().WithMessage(kStoreUnavailable);
  if (found->empty()) {
    FERRY_RETURN_IF_ERROR(Audit(actor, action, q.id, "not_found", ""));
    return Status::NotFound("subject not found");
  }
  // An officer's look at the data is not the person's request: the audit log has it, the register does not.
  return Audit(actor, action, q.id, "ok", Dump(Json{{"lookup", true}, {"projects", found->size()}}));
}

Result<bool> RightsService::Export(const SubjectQuery& q, ExportVisitor& visitor) {
  return stores_.subjects->ExportSubject(q, visitor);
}

namespace {

// Keeps the events from `offset` on, `limit` of them, and stops the stream at the one after.
class EventPager : public ExportVisitor {
 public:
  EventPager(int64_t offset, size_t limit, RightsService::EventPage* page)
      : offset_(offset), limit_(limit), page_(page) {}
  bool BeginProject(const SubjectSummary&) override { return true; }
  bool Consent(const ConsentRecord&) override { return true; }
  bool Event(const EventRow& e) override {
    if (seen_++ < offset_) return true;
    if (page_->events.size() == limit_) {
      page_->more = true;
      return false;
    }
    page_->events.push_back(e);
    return true;
  }
  bool EndProject() override { return true; }

 private:
  int64_t offset_, seen_ = 0;
  size_t limit_;
  RightsService::EventPage* page_;
};

}  // namespace

Result<RightsService::EventPage> RightsService::ListEvents(const Actor& actor, const SubjectQuery& q, int64_t offset,
                                                           size_t limit) {
  const char* action = ActionName(Action::kSubjectEvents);
  EventPage page;
  EventPager pager(offset, limit, &page);
  auto r = stores_.subjects->ExportSubject(q, pager);
  if (!r.ok() && r.status().code() != base::Code::kClosed) {
    (void)Audit(actor, action, q.id, "error", "");
    return r.status().WithMessage(kStoreUnavailable);
  }
  if (r.ok() && !*r) {
    FERRY_RETURN_IF_ERROR(Audit(actor, action, q.id, "not_found", ""));
    return Status::NotFound("no such subject");
  }
  FERRY_RETURN_IF_ERROR(
      Audit(actor, action, q.id, "ok", Dump(Json{{"offset", offset}, {"count", page.events.size()}})));
  return page;
}

namespace {

// Collects a project's consent records, then stops at the event asked for with its proof.
class EventConsentFinder : public ExportVisitor {
 public:
  EventConsentFinder(const std::string& message_id, std::optional<RightsService::EventConsent>* out)
      : message_id_(message_id), out_(out) {}
  bool BeginProject(const SubjectSummary&) override {
    coverage_.Clear();
    return true;
  }
  bool Consent(const ConsentRecord& c) override {
    coverage_.Add(c);
    return true;
  }
  bool Event(const EventRow& e) override {
    if (e.message_id != message_id_) return true;
    *out_ = RightsService::EventConsent{e, coverage_.For(e)};
    return false;
  }
  bool EndProject() override { return true; }

 private:
  const std::string& message_id_;
  std::optional<RightsService::EventConsent>* out_;
  ConsentCoverage coverage_;
};

}  // namespace

Result<RightsService::EventConsent> RightsService::EventConsentOf(const Actor& actor, const SubjectQuery& q,
                                                                  const std::string& message_id) {
  const char* action = ActionName(Action::kSubjectEventConsent);
  std::optional<EventConsent> found;
  EventConsentFinder finder(message_id, &found);
  auto r = stores_.subjects->ExportSubject(q, finder);
  if (!r.ok() && r.status().code() != base::Code::kClosed) {
    (void)Audit(actor, action, q.id, "error", "");
    return r.status().WithMessage(kStoreUnavailable);
  }
  if (!found) {
    FERRY_RETURN_IF_ERROR(Audit(actor, action, q.id, "not_found", ""));
    return Status::NotFound(r.ok() && !*r ? "no such subject" : "no such event of the subject");
  }
  FERRY_RETURN_IF_ERROR(
      Audit(actor, action, q.id, "ok", Dump(Json{{"project", found->event.project}, {"status", found->proof.status}})));
  return std::move(*found);
}

Result<EraseReceipt> RightsService::Erase(const Actor& actor, const SubjectQuery& q, const EraseOptions& options) {
  const char* action = ActionName(Action::kSubjectErase);
  // The subject's ids, resolved once for the not-found check and the erasure (the identity graph alone: no event
  // count is read).
  // A lookup that fails goes on to the erasure, which fails the same way and leaves its request for an officer.
  std::optional<std::vector<SubjectIds>> resolved;
  {
    auto found = stores_.transactions->TransactFor<std::vector<SubjectIds>>(
        TxnMode::kRead, [&](StoreTxn& tx) { return tx.ResolveAll(q); });
    if (found.ok()) resolved = std::move(found).value();
  }
  if (!options.force) {
    if (resolved.has_value() && resolved->empty()) {
      FERRY_RETURN_IF_ERROR(Audit(actor, action, q.id, "not_found", Dump(Json{{"dryRun", options.dry_run}})));
      return Status::NotFound("subject not found: nothing erased, suppressed or registered (force suppresses the id)");
    }
  }
  if (options.dry_run) {
    // The erasure itself, in a transaction rolled back: the exact counts, and nothing changed.
    std::optional<EraseReceipt> would;
    Status s = stores_.transactions->Transact(TxnMode::kWrite, [&](StoreTxn& tx) -> Status {
      auto receipt = tx.EraseSubject(q, "");
      if (!receipt.ok()) return receipt.status();
      would = std::move(receipt).value();
      return Status::Cancelled("dry run");
    });
    if (!would.has_value()) return s.WithMessage(kStoreUnavailable);
    FERRY_RETURN_IF_ERROR(Audit(actor, action, q.id, "dry_run", Dump(Json{{"wouldErase", would->erased}})));
    return *would;
  }
  RightsRequest r = NewRegisterEntry("erasure", q.project, q.id, kInProgress, "admin");
  r.acted_by = actor.name;
  r.acted_ms = r.received_ms;
  // The request goes in first, in_progress, with the first chunk of the subject's events: an erasure cut short by a
  // crash is in the register and is finished when the collector starts again (ResumeErasures).
  bool registered = false;
  if (!stores_.transactions->WritersQueue() && resolved.has_value() && !resolved->empty() && !options.many) {
    // Where writers run side by side (PostgreSQL), two transactions. The first keeps ingest out only while it
    // registers the request and suppresses the subject's ids (ingest waits for the erase lock, which it takes shared);
    // the second erases everything beside ingest, which drops every batch naming those ids from then on. (Deleting the
    // events ahead in transactions of their own measured no better: each walked again the index entries of the rows
    // deleted before it.)
    auto suppressed = SuppressAhead(actor, q, r, *resolved);
    if (!suppressed.ok()) return FailedErasure(actor, q, r, /*registered=*/false, 0, suppressed.status());
    const ErasureAhead& ahead = *suppressed;
    auto done = FinishErasure(actor, q, r, ahead, TxnMode::kEraseSuppressed);
    if (done.ok()) {
      TellErased(SubjectsOf(ahead, q.id));
      return done;
    }
    return FailedErasure(actor, q, r, /*registered=*/true, 0, done.status(), /*suppressed=*/true);
  }
  if (!stores_.transactions->WritersQueue() && resolved.has_value()) {
    // An unknown id (forced: only suppressed) or one of a bulk erasure's many: one transaction with the request
    // registered in it.
    ErasureAhead none;
    none.ids = *resolved;
    auto done = FinishErasure(actor, q, r, none, options.many ? TxnMode::kEraseMany : TxnMode::kErase, /*create=*/true);
    if (done.ok()) {
      TellErased(SubjectsOf(none, q.id));
      return done;
    }
    return FailedErasure(actor, q, r, /*registered=*/false, 0, done.status());
  }
  auto ahead = DeleteEventsAhead(
      q, r,
      [&](StoreTxn& tx) -> Status {
        // Nothing is deleted without its audit entry: "started" here, "ok" with the last transaction.
        FERRY_RETURN_IF_ERROR(tx.CreateRequest(r).status());
        FERRY_RETURN_IF_ERROR(
            tx.AppendAudit(Entry(actor, action, q.id, "started", Dump(Json{{"requestId", r.id}}))).status());
        registered = true;
        return Status::Ok();
      },
      resolved.has_value() ? &*resolved : nullptr);
  auto done = ahead.ok() ? FinishErasure(actor, q, r, *ahead, options.many ? TxnMode::kEraseMany : TxnMode::kErase)
                         : Result<EraseReceipt>(ahead.status());
  if (done.ok()) {
    TellErased(SubjectsOf(*ahead, q.id));
    return done;
  }
  return FailedErasure(actor, q, r, registered, ahead.ok() ? ahead->deleted : 0, done.status());
}

Status RightsService::FailedErasure(const Actor& actor, const SubjectQuery& q, const RightsRequest& r, bool registered,
                                    int64_t deleted, const Status& error, bool suppressed) {
  const char* action = ActionName(Action::kSubjectErase);
  log_.Error("erasure failed: " + error.ToString());
  // The subject's other data is untouched. The request waits for an officer (who approves it again to finish the
  // erasure), with the error; best effort (the store may be down).
  const std::string why = FailedErasureMessage(deleted, suppressed);
  RightsRequest failed = r;
  failed.state = kAwaiting;
  failed.result = Dump(Json{{"error", why}, {kEventsErasedAhead, deleted}});
  Status recorded = stores_.transactions->Transact(TxnMode::kWrite, [&](StoreTxn& tx) -> Status {
    if (registered) {
      auto u = tx.UpdateRequest(r.id, kInProgress, kAwaiting, actor.name, tx.NowMs(), failed.result);
      if (!u.ok()) return u.status();
    } else {
      FERRY_RETURN_IF_ERROR(tx.CreateRequest(failed).status());
    }
    return tx.AppendAudit(Entry(actor, action, q.id, "error", Dump(Json{{"requestId", r.id}}))).status();
  });
  if (!recorded.ok()) log_.Error("cannot record the failed erasure: " + recorded.ToString());
  return error.WithMessage(why);
}

namespace {

// The ids an erasure resolved before deleting anything, as kept in its request's result while it is in progress.
Json IdsDocument(const std::vector<SubjectIds>& all) {
  Json out = Json::array();
  for (const SubjectIds& s : all) out.push_back({{"projectId", s.project_id}, {"project", s.project}, {"ids", s.ids}});
  return out;
}

// `into` gains the ids of `doc` (IdsDocument) it does not have, per project.
void MergeIds(const Json& doc, std::vector<SubjectIds>* into) {
  if (!doc.is_array()) return;
  for (const Json& p : doc) {
    if (!p.is_object() || !p.contains("projectId") || !p["projectId"].is_number_integer() || !p.contains("ids") ||
        !p["ids"].is_array())
      continue;
    const int64_t pid = p["projectId"].get<int64_t>();
    auto same = std::find_if(into->begin(), into->end(), [&](const SubjectIds& s) { return s.project_id == pid; });
    if (same == into->end()) {
      SubjectIds s;
      s.project_id = pid;
      s.project = p.value("project", std::string());
      into->push_back(std::move(s));
      same = std::prev(into->end());
    }
    for (const Json& id : p["ids"]) {
      if (!id.is_string()) continue;
      const std::string v = id.get<std::string>();
      if (std::find(same->ids.begin(), same->ids.end(), v) == same->ids.end()) same->ids.push_back(v);
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, std::vector<std::string>>> RightsService::SubjectsOf(const ErasureAhead& ahead,
                                                                                        const std::string& id) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const SubjectIds& s : ahead.ids) {
    std::vector<std::string> ids = s.ids;
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    out.emplace_back(s.project, std::move(ids));
  }
  return out;
}

Result<RightsService::ErasureAhead> RightsService::SuppressAhead(const Actor& actor, const SubjectQuery& q,
                                                                 const RightsRequest& r,
                                                                 const std::vector<SubjectIds>& resolved) {
  const char* action = ActionName(Action::kSubjectErase);
  return stores_.transactions->TransactFor<ErasureAhead>(
      TxnMode::kEraseMany, [&](StoreTxn& tx) -> Result<ErasureAhead> {
        FERRY_RETURN_IF_ERROR(tx.CreateRequest(r).status());
        // Nothing is suppressed or deleted without its audit entry: "started" here, "ok" with the last transaction.
        FERRY_RETURN_IF_ERROR(
            tx.AppendAudit(Entry(actor, action, q.id, "started", Dump(Json{{"requestId", r.id}}))).status());
        // Resolved again under the erase lock: no ingest transaction is in flight, so no link is missing.
        auto now = tx.ResolveAll(q);
        if (!now.ok()) return now.status();
        ErasureAhead out;
        out.ids = resolved;
        MergeIds(IdsDocument(*now), &out.ids);
        for (const SubjectIds& s : out.ids) {
          std::vector<std::string> hashes;
          hashes.reserve(s.ids.size());
          for (const std::string& id : s.ids) hashes.push_back(tx.IdHash(id));
          auto n = tx.primitives().Suppress(s.project_id, hashes, tx.NowMs());
          if (!n.ok()) return n.status();
          out.suppressed += *n;
        }
        auto u = tx.UpdateRequest(
            r.id, kInProgress, kInProgress, r.acted_by, r.acted_ms,
            MergedResult(r.result, Json{{kEventsErasedAhead, 0}, {kIdsToErase, IdsDocument(out.ids)}}));
        if (!u.ok()) return u.status();
        if (*u != RequestUpdate::kUpdated) return Status::Conflict("the erasure's request changed meanwhile");
        return out;
      });
}

Result<RightsService::ErasureAhead> RightsService::DeleteEventsAhead(const SubjectQuery& q, const RightsRequest& r,
                                                                     const std::function<Status(StoreTxn&)>& first,
                                                                     const std::vector<SubjectIds>* resolved) {
  ErasureAhead out;
  if (resolved != nullptr) {
    out.ids = *resolved;
  } else {
    auto all = stores_.transactions->TransactFor<std::vector<SubjectIds>>(
        TxnMode::kRead, [&](StoreTxn& tx) { return tx.ResolveAll(q); });
    if (!all.ok()) return all.status();
    out.ids = std::move(all).value();
  }
  // What an earlier run of this erasure kept in the request's result (ResumeErasures): the count so far, and the ids
  // it resolved (the anonymousIds seen only on events no longer resolve once those events are gone).
  {
    Json before = r.result.empty() ? Json::object() : Json::parse(r.result, nullptr, false);
    if (before.is_object()) {
      if (before.contains(kEventsErasedAhead) && before[kEventsErasedAhead].is_number_integer())
        out.deleted = before[kEventsErasedAhead].get<int64_t>();
      if (before.contains(kIdsToErase)) MergeIds(before[kIdsToErase], &out.ids);
    }
  }
  const Json ids_doc = IdsDocument(out.ids);
  bool first_done = !first;
  // Where writers run side by side (PostgreSQL), the events go in one transaction beside ingest: chunks would gain
  // nothing there, and each would walk again the index entries of the rows the ones before deleted (dead until a
  // VACUUM).
  const bool adaptive = opts_.erase_chunk_rows <= 0 && stores_.transactions->WritersQueue();
  int64_t limit = opts_.erase_chunk_rows > 0             ? opts_.erase_chunk_rows
                  : stores_.transactions->WritersQueue() ? kFirstEraseChunk
                                                         : std::numeric_limits<int64_t>::max() / 2;
  // When the last chunk's transaction began (after any wait for the connection): a chunk's time is its own work and
  // commit, not the ingest it let go first.
  std::chrono::steady_clock::time_point began_chunk;
  bool yield_first = false;
  // In chunks, the project's rows are listed by the first chunk (after `first`, so nothing committed before the
  // request is missed) and deleted in row-id order: rows that lie together in the table (and, as they arrived
  // together, in the time index) go in the same chunk, so each of those pages is written once, not once for each of
  // the subject's devices. Rows that arrive meanwhile are the last transaction's.
  const bool chunked = limit < std::numeric_limits<int64_t>::max() / 2;
  std::vector<int64_t> rows;
  bool listed = false;
  size_t next = 0;   // rows[next..] are still to go
  size_t taken = 0;  // how many of rows the last chunk went through
  auto chunk = [&](const SubjectIds* s) -> Result<int64_t> {
    // The first chunk goes at once (a small subject's only one; a bulk erasure's many); each later one lets waiting
    // ingest go first (kEraseChunk).
    const TxnMode mode = yield_first ? TxnMode::kEraseChunk : TxnMode::kWrite;
    return stores_.transactions->TransactFor<int64_t>(mode, [&](StoreTxn& tx) -> Result<int64_t> {
      began_chunk = std::chrono::steady_clock::now();
      if (!first_done) FERRY_RETURN_IF_ERROR(first(tx));
      int64_t n = 0;
      if (s != nullptr && !chunked) {
        auto deleted = tx.primitives().DeleteEventsOf(s->project_id, s->ids);
        if (!deleted.ok()) return deleted.status();
        n = *deleted;
      } else if (s != nullptr) {
        if (!listed) {
          auto listing = tx.primitives().EventRowsOf(s->project_id, s->ids);
          if (!listing.ok()) return listing.status();
          rows = std::move(listing).value();
          listed = true;
        }
        const size_t end = next + std::min(static_cast<size_t>(limit), rows.size() - next);
        const std::vector<int64_t> slice(rows.begin() + static_cast<std::ptrdiff_t>(next),
                                         rows.begin() + static_cast<std::ptrdiff_t>(end));
        auto deleted = tx.primitives().DeleteEventRows(s->project_id, s->ids, slice);
        if (!deleted.ok()) return deleted.status();
        n = *deleted;
        taken = slice.size();
      }
      if (n > 0 || !first_done) {
        auto u = tx.UpdateRequest(
            r.id, kInProgress, kInProgress, r.acted_by, r.acted_ms,
            MergedResult(r.result, Json{{kEventsErasedAhead, out.deleted + n}, {kIdsToErase, ids_doc}}));
        if (!u.ok()) return u.status();
        if (*u != RequestUpdate::kUpdated) return Status::Conflict("the erasure's request changed meanwhile");
      }
      return n;
    });
  };
  const auto began = std::chrono::steady_clock::now();
  int64_t chunks = 0, deleted_now = 0;
  double longest_ms = 0;
  for (const SubjectIds& s : out.ids) {
    rows.clear();
    listed = false;
    next = 0;
    for (;;) {
      taken = 0;
      auto n = chunk(&s);
      if (!n.ok()) return n.status();
      next += taken;
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began_chunk).count();
      longest_ms = std::max(longest_ms, ms);
      ++chunks;
      deleted_now += *n;
      first_done = true;
      yield_first = true;
      out.deleted += *n;
      if (!chunked || next >= rows.size()) break;
      if (!adaptive) continue;
      // Chunks of about kEraseChunkMs each (ingest waits at most that long for one): at most twice the last size,
      // at once smaller when one took longer.
      const auto sized = static_cast<int64_t>(static_cast<double>(limit) * kEraseChunkMs / std::max(ms, 1.0));
      limit = std::clamp<int64_t>(std::min(sized, limit + limit / 2), kMinEraseChunk, kMaxEraseChunk);
    }
  }
  if (!first_done) {
    auto n = chunk(nullptr);
    if (!n.ok()) return n.status();
  }
  if (deleted_now > 0) {
    char line[200];
    std::snprintf(line, sizeof line, "erasure %s: %lld events deleted in %lld chunks (longest %.0f ms) in %.3f s",
                  r.id.c_str(), static_cast<long long>(deleted_now), static_cast<long long>(chunks), longest_ms,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
    log_.Info(line);
  }
  return out;
}

Result<EraseReceipt> RightsService::FinishErasure(const Actor& actor, const SubjectQuery& q, const RightsRequest& r,
                                                  const ErasureAhead& ahead, TxnMode mode, bool create) {
  const char* action = ActionName(Action::kSubjectErase);
  const auto subjects = SubjectsOf(ahead, q.id);
  // The rest in one transaction, all or nothing: the events that arrived meanwhile, consent records, links, traits,
  // the register rows naming the subject (this request's too), restrictions, minor marks; the ids suppressed.
  const auto began = std::chrono::steady_clock::now();
  auto done = stores_.transactions->TransactFor<EraseReceipt>(mode, [&](StoreTxn& tx) -> Result<EraseReceipt> {
    // The request row goes in first so that the erasure redacts it like any other row naming the subject.
    if (create) FERRY_RETURN_IF_ERROR(tx.CreateRequest(r).status());
    auto receipt = tx.EraseSubject(q, r.id, &ahead.ids);
    if (!receipt.ok()) return receipt.status();
    receipt->erased["events"] += ahead.deleted;
    receipt->ids_suppressed += ahead.suppressed;
    auto u = tx.UpdateRequest(r.id, kInProgress, kCompleted, actor.name, receipt->completed_ms,
                              Dump(ReceiptDocument(*receipt)));
    if (!u.ok()) return u.status();
    if (*u != RequestUpdate::kUpdated) return Status::Conflict("the erasure's request changed meanwhile");
    FERRY_RETURN_IF_ERROR(Propagate(tx, "erasure", q.project, r.id, subjects, q.id, Json::object()));
    FERRY_RETURN_IF_ERROR(
        tx.AppendAudit(Entry(actor, action, q.id, "ok", Dump(Json{{"requestId", r.id}, {"erased", receipt->erased}})))
            .status());
    return receipt;
  });
  if (done.ok() && ahead.deleted > 0) {
    char line[160];
    std::snprintf(line, sizeof line, "erasure %s: completed, its last transaction took %.3f s", r.id.c_str(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
    log_.Info(line);
  }
  return done;
}

void RightsService::RevertErasure(const Actor& actor, const std::string& request_id, const RightsRequest& before,
                                  const Status& why) {
  // Back to the state it was approved from, so that an officer can approve it again; the events already deleted are
  // counted on, and the ids resolved before are kept for the next run (DeleteEventsAhead reads both from the
  // result). Best effort: the store may be down, and then the request stays in_progress and the next start finishes
  // it (ResumeErasures).
  Status s = stores_.transactions->Transact(TxnMode::kWrite, [&](StoreTxn& tx) -> Status {
    auto now = tx.GetRequest(request_id);
    if (!now.ok()) return now.status();
    if (!now->has_value() || (**now).state != kInProgress) return Status::Ok();
    Json doc = Json::parse((**now).result.empty() ? "{}" : (**now).result, nullptr, false);
    Json keep = Json::object();
    for (const char* k : {kEventsErasedAhead, kIdsToErase}) {
      if (doc.is_object() && doc.contains(k)) keep[k] = doc[k];
    }
    keep["error"] = FailedErasureMessage(keep.value(kEventsErasedAhead, int64_t{0}), /*suppressed=*/false);
    auto u = tx.UpdateRequest(request_id, kInProgress, before.state, actor.name, tx.NowMs(),
                              MergedResult(before.result, keep));
    return u.status();
  });
  if (!s.ok()) log_.Error("cannot put the failed erasure back (" + why.ToString() + "): " + s.ToString());
}

Status RightsService::ResumeErasures(int64_t started_before_ms) {
  RequestFilter f;
  f.state = kInProgress;
  f.limit = 100000;
  auto open = stores_.requests->ListRequests(f);
  if (!open.ok()) return open.status();
  const Actor resumer{"ferry-collector (erasure resumed at start)", "", "ferry-collector"};
  for (const RightsRequest& r : *open) {
    if (r.kind != "erasure" || r.subject.empty() || r.subject.rfind("hash:", 0) == 0) continue;
    if (r.acted_ms >= started_before_ms) continue;  // begun by this process: its own thread finishes it
    const SubjectQuery q{r.project, r.subject};
    log_.Info("resuming erasure request " + r.id + " (cut short before the last start)");
    auto ahead = DeleteEventsAhead(q, r, nullptr);
    auto done =
        ahead.ok() ? FinishErasure(resumer, q, r, *ahead, TxnMode::kErase) : Result<EraseReceipt>(ahead.status());
    if (!done.ok()) {
      if (done.status().code() == base::Code::kConflict) continue;  // finished meanwhile
      log_.Error("cannot resume erasure request " + r.id + ": " + done.status().ToString());
      return done.status();
    }
    TellErased(SubjectsOf(*ahead, q.id));
  }
  return Status::Ok();
}

Status RightsService::ScrubAfterErasures() {
  return stores_.transactions->Transact(TxnMode::kErase, [](StoreTxn&) { return Status::Ok(); });
}

Result<Correction> RightsService::Correct(const Actor& actor, const SubjectQuery& q, const std::string& patch_json) {
  const char* action = ActionName(Action::kSubjectCorrect);
  Json patch = Json::parse(patch_json, nullptr, false);
  if (patch.is_discarded() || !patch.is_object()) {
    (void)Audit(actor, action, q.id, "bad_request", "");
    return Status::InvalidArgument("the body must be a JSON object of traits (null removes one)");
  }
  Json keys = Json::array();
  for (const auto& [k, v] : patch.items()) keys.push_back(k);
  RightsRequest r = NewRegisterEntry("correction", q.project, q.id, kCompleted, "admin");
  r.acted_by = actor.name;
  r.acted_ms = r.received_ms;
  r.result = Dump(Json{{"traitsChanged", keys}});
  Step failed_at = Step::kNone;
  auto out = stores_.transactions->TransactFor<Correction>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<Correction> {
    failed_at = Step::kAction;
    Correction c;
    auto subjects = tx.PatchTraits(q, patch_json, &c.events_rewritten);
    if (!subjects.ok()) return subjects.status();
    if (subjects->empty()) {
      failed_at = Step::kAudit;
      FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(actor, action, q.id, "not_found", "")).status());
      return c;  // committed: the refusal is on record
    }
    failed_at = Step::kRegister;
    RightsRequest entry = r;
    entry.result = Dump(Json{{"traitsChanged", keys}, {"eventsRewritten", c.events_rewritten}});
    auto stored = tx.CreateRequest(entry);
    if (!stored.ok()) return stored.status();
    FERRY_RETURN_IF_ERROR(Propagate(tx, "rectification", q.project, stored->id, IdsOfSummaries(*subjects), q.id,
                                    Json{{"traits", patch}}));
    failed_at = Step::kAudit;
    FERRY_RETURN_IF_ERROR(
        tx.AppendAudit(
              Entry(actor, action, q.id, "ok",
                    Dump(Json{{"requestId", stored->id}, {"traits", keys}, {"eventsRewritten", c.events_rewritten}})))
            .status());
    c.request_id = stored->id;
    c.subjects = std::move(subjects).value();
    return c;
  });
  if (!out.ok()) {
    switch (failed_at) {
      case Step::kAction:
        (void)Audit(actor, action, q.id, "error", "");
        return out.status().code() == base::Code::kInvalidArgument ? out.status()
                                                                   : out.status().WithMessage(kStoreUnavailable);
      case Step::kAudit: return out.status().WithMessage(kAuditFailed);
      default: return out.status().WithMessage(kStoreUnavailable);
    }
  }
  if (out->request_id.empty()) return Status::NotFound("subject not found");
  return out;
}

Result<std::vector<RightsService::Suppression>> RightsService::SuppressionOf(const WriteKeyInfo& project,
                                                                             const std::vector<std::string>& ids) {
  if (project.kind != "server") {
    return Status::PermissionDenied("a server key is required: a write key ships in apps (docs/SECURITY.md)");
  }
  using Out = std::vector<Suppression>;
  auto out = stores_.transactions->TransactFor<Out>(TxnMode::kRead, [&](StoreTxn& tx) -> Result<Out> {
    Out o;
    for (const std::string& id : ids) {
      auto since = tx.primitives().SuppressedSince(project.project_id, tx.IdHash(id));
      if (!since.ok()) return since.status();
      o.push_back({id, *since});
    }
    return o;
  });
  if (!out.ok()) return out.status().WithMessage(kStoreUnavailable);
  return out;
}

Result<ForgetOutcome> RightsService::Forget(const WriteKeyInfo& project, const std::vector<std::string>& anonymous_ids,
                                            const std::string& user_id) {
  const std::string named = anonymous_ids.empty() ? user_id : anonymous_ids.front();
  RightsRequest r = NewRegisterEntry("erasure", project.project, named, kCompleted, "device");
  r.acted_by = "device";
  r.acted_ms = r.received_ms;
  RightsRequest pending = NewRegisterEntry("erasure", project.project, user_id, kAwaiting, "device");
  const Actor device{"device:" + project.project, "", "device"};
  auto out =
      stores_.transactions->TransactFor<ForgetOutcome>(TxnMode::kErase, [&](StoreTxn& tx) -> Result<ForgetOutcome> {
        ForgetOutcome o;
        // Repeated forgets of one id fold into the register entry of the first.
        auto prior = tx.primitives().FindDeviceRequest("erasure", project.project, tx.IdHash(named), kCompleted);
        if (!prior.ok()) return prior.status();
        const std::string rid = prior->has_value() ? (*prior)->id : r.id;
        if (!prior->has_value()) FERRY_RETURN_IF_ERROR(tx.CreateRequest(r).status());
        auto receipt = tx.ForgetDeviceIds(project.project_id, anonymous_ids, rid);
        if (!receipt.ok()) return receipt.status();
        Json doc = ReceiptDocument(*receipt);
        bool changed = !prior->has_value() || receipt->ids_suppressed > 0;
        for (const auto& [table, n] : receipt->erased) changed = changed || n != 0;
        if (prior->has_value() && changed) {
          // The folded entry keeps the sum of what its forgets erased.
          Json before = Json::parse((*prior)->result, nullptr, false);
          if (before.is_object() && before.contains("erased") && before["erased"].is_object()) {
            for (auto& [table, n] : before["erased"].items()) {
              if (n.is_number_integer()) doc["erased"][table] = n.get<int64_t>() + receipt->erased[table];
            }
          }
          if (before.is_object() && before.contains("idsSuppressed") && before["idsSuppressed"].is_number_integer()) {
            doc["idsSuppressed"] = before["idsSuppressed"].get<int64_t>() + receipt->ids_suppressed;
          }
        }
        if (changed) {
          auto u = tx.UpdateRequest(rid, kCompleted, kCompleted, "device", receipt->completed_ms, Dump(doc));
          if (!u.ok()) return u.status();
          if (*u != RequestUpdate::kUpdated) return Status::Internal("the erasure's request row went missing");
          // Downstream systems hear of the device's erasure too: its own ids, never the userId (not yet verified).
          if (!anonymous_ids.empty()) {
            FERRY_RETURN_IF_ERROR(Propagate(tx, "erasure", project.project, rid, {{project.project, anonymous_ids}},
                                            named, Json{{"source", "device"}}));
          }
        }
        if (!user_id.empty()) {
          // A device's word covers only its own random ids: its userId is erased once an officer verified it.
          auto open = tx.primitives().FindDeviceRequest("erasure", project.project, tx.IdHash(user_id), kAwaiting);
          if (!open.ok()) return open.status();
          if (open->has_value()) {
            o.user_request_id = (*open)->id;
          } else {
            FERRY_RETURN_IF_ERROR(tx.CreateRequest(pending).status());
            o.user_request_id = pending.id;
          }
        }
        FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(device, "forget", named, "ok",
                                                   Dump(Json{{"requestId", rid},
                                                             {"folded", prior->has_value()},
                                                             {"anonymousIds", anonymous_ids.size()},
                                                             {"userIdPending", !user_id.empty()},
                                                             {"erased", receipt->erased}})))
                                  .status());
        o.receipt = std::move(receipt).value();
        return o;
      });
  if (!out.ok()) {
    log_.Error("device erasure failed: " + out.status().ToString());
    return out.status().WithMessage(kEraseFailed);
  }
  if (opts_.on_erased && !anonymous_ids.empty()) opts_.on_erased(project.project, anonymous_ids);
  return out;
}

Result<IdentityLink> RightsService::ConfirmLink(const Actor& actor, int64_t link_id) {
  const char* action = ActionName(Action::kLinksConfirm);
  auto link = stores_.transactions->TransactFor<std::optional<IdentityLink>>(
      TxnMode::kWrite, [&](StoreTxn& tx) -> Result<std::optional<IdentityLink>> {
        auto confirmed = tx.ConfirmLink(link_id, actor.name);
        if (!confirmed.ok() || !confirmed->has_value()) return confirmed;
        const IdentityLink& l = **confirmed;
        // The audit log names the userId the link joins (by its hash, as always) and the link, never the other id.
        FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(actor, action, l.user_id, "ok",
                                                   Dump(Json{{"linkId", l.id},
                                                             {"kind", l.kind},
                                                             {"fromHash", tx.IdHash(l.from_id)},
                                                             {"credential", l.credential}})))
                                  .status());
        return confirmed;
      });
  if (!link.ok()) return link.status().WithMessage(kStoreUnavailable);
  if (!link->has_value()) {
    FERRY_RETURN_IF_ERROR(Audit(actor, action, "", "not_found", Dump(Json{{"linkId", link_id}})));
    return Status::NotFound("no unconfirmed identity link has this id");
  }
  return **link;
}

// ---- The request register ----

Result<std::vector<RightsRequest>> RightsService::ListRequests(const Actor& actor, const RequestFilter& filter) {
  auto list = stores_.requests->ListRequests(filter);
  if (!list.ok()) return list.status().WithMessage(kStoreUnavailable);
  FERRY_RETURN_IF_ERROR(Audit(actor, ActionName(Action::kRequestsList), "", "ok", Dump(Json{{"count", list->size()}})));
  return list;
}

Result<RightsRequest> RightsService::AddRequest(const Actor& actor, const NewRequest& in,
                                                const std::vector<std::string>& purposes) {
  const char* action = ActionName(Action::kRequestsAdd);
  const std::string kind = CanonicalKind(in.kind);
  std::string why;
  if (kind.empty()) {
    why = "kind must be one of access, erasure, correction (or rectification), portability, restriction, objection";
  } else if (!purposes.empty() && !KindHasPurposes(kind)) {
    why = "only a restriction or an objection names purposes";
  } else if (in.subject.empty() || in.subject.size() > kMaxIdBytes) {
    why = "subject must be a non-empty id";
  } else if (std::string_view bad = wire::CheckIdText(in.subject, kMaxIdBytes); !bad.empty()) {
    why = "invalid subject: " + std::string(bad);
  } else if (!in.state.empty() && in.state != kReceived && in.state != kAwaiting) {
    why = "a new request is received or awaiting_verification";
  }
  for (const std::string& p : purposes) {
    if (why.empty() && !wire::IsValidPurpose(p)) why = "invalid purpose: " + p.substr(0, 64);
  }
  if (!why.empty()) {
    // Refused bodies are on record too (issue 13): what was asked, never the subject in the clear.
    (void)Audit(actor, action, in.subject.size() <= kMaxIdBytes ? in.subject : std::string(), "bad_request",
                Dump(Json{{"kind", in.kind.substr(0, 64)}, {"why", why}}));
    return Status::InvalidArgument(why);
  }
  RightsRequest r = NewRegisterEntry(kind, in.project, in.subject, in.state.empty() ? kAwaiting : in.state, "admin");
  if (in.received_ms > 0) r.received_ms = in.received_ms;
  r.due_ms = DueFor(in.project, r.received_ms);
  Json result = Json::object();
  if (KindHasPurposes(kind)) result["purposes"] = purposes;
  // An objection to direct marketing is absolute (GDPR art. 21(2)-(3)): in force for marketing on receipt.
  const bool covers_marketing = kind == "objection" && (purposes.empty() || std::find(purposes.begin(), purposes.end(),
                                                                                      "marketing") != purposes.end());
  const bool only_marketing = covers_marketing && purposes.size() == 1;
  std::vector<RestrictionRecord> rows;
  auto out =
      stores_.transactions->TransactFor<RightsRequest>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<RightsRequest> {
        RightsRequest entry = r;
        rows.clear();
        Json doc = result;
        if (covers_marketing) {
          auto put = PutInForce(tx, entry, "objection", {"marketing"}, &doc);
          if (!put.ok()) return put.status().WithMessage(kStoreUnavailable);
          rows = std::move(put).value();
          doc["directMarketing"] = "in force on receipt, without a balancing step (GDPR art. 21(3))";
          if (only_marketing) {
            entry.state = kCompleted;
            entry.acted_by = actor.name;
            entry.acted_ms = tx.NowMs();
          }
        }
        if (!doc.empty()) entry.result = Dump(doc);
        auto stored = tx.CreateRequest(entry);
        if (!stored.ok()) return stored.status().WithMessage(kStoreUnavailable);
        Json detail = {{"requestId", stored->id}, {"kind", kind}, {"state", stored->state}};
        if (KindHasPurposes(kind)) detail["purposes"] = purposes;
        auto audited = tx.AppendAudit(Entry(actor, action, in.subject, "ok", Dump(detail)));
        if (!audited.ok()) return audited.status().WithMessage(kAuditFailed);
        if (covers_marketing) {
          FERRY_RETURN_IF_ERROR(
              RecordPropagation(tx, "restriction", *stored, Json{{"kind", "objection"}, {"purposes", {"marketing"}}}));
        }
        return stored;
      });
  if (out.ok()) TellRestricted(rows, true);
  return out;
}

Result<std::vector<RestrictionRecord>> RightsService::PutInForce(StoreTxn& tx, const RightsRequest& r,
                                                                 const std::string& kind,
                                                                 const std::vector<std::string>& purposes,
                                                                 Json* result) {
  auto rows = tx.Restrict({r.project, r.subject}, kind, purposes, r.id);
  if (!rows.ok()) return rows.status();
  Json projects = Json::array();
  for (const RestrictionRecord& row : *rows) {
    if (std::find(projects.begin(), projects.end(), row.project) == projects.end()) projects.push_back(row.project);
  }
  Json in_force = {{"kind", kind},
                   {"purposes", purposes.empty() ? Json("all") : Json(purposes)},
                   {"since", Iso(tx.NowMs())},
                   {"projects", projects},
                   {"ids", rows->size()}};
  // An objection first in force for marketing on receipt, then for the rest on approval: both are kept.
  if (result->contains("inForce") && (*result)["inForce"].is_array()) {
    (*result)["inForce"].push_back(in_force);
  } else {
    (*result)["inForce"] = Json::array({in_force});
  }
  return rows;
}

void RightsService::TellRestricted(const std::vector<RestrictionRecord>& rows, bool restricted) {
  if (!opts_.on_restricted || rows.empty()) return;
  // One call per (project, request kind, purposes), with every id of the subject there.
  std::map<std::tuple<std::string, std::string, std::vector<std::string>>, std::vector<std::string>> groups;
  for (const RestrictionRecord& r : rows) groups[{r.project, r.kind, r.purposes}].push_back(r.subject_id);
  for (const auto& [key, ids] : groups) {
    const std::string& project = std::get<0>(key);
    opts_.on_restricted(project, ids, std::get<2>(key), std::get<1>(key), restricted);
  }
}

Status RightsService::RecordPropagation(StoreTxn& tx, const char* effect, const RightsRequest& r, const Json& detail) {
  // The outbox entry for `effect` of request r, in the transaction that carries the effect out (downstream systems
  // learn of a restriction or its lifting like of an erasure).
  return RecordDownstream(tx, effect, {r.project, r.subject}, r.id, detail);
}

Result<std::vector<RestrictionRecord>> RightsService::RestrictionsOfSubject(const SubjectQuery& q) {
  auto rows = stores_.restrictions->ActiveRestrictionsOf(q.project);
  if (!rows.ok()) return rows.status().WithMessage(kStoreUnavailable);
  auto found = stores_.subjects->FindSubject(q);
  if (!found.ok()) return found.status().WithMessage(kStoreUnavailable);
  std::vector<RestrictionRecord> out;
  for (const RestrictionRecord& row : *rows) {
    bool mine = row.subject_id == q.id;
    for (const SubjectSummary& s : *found) {
      if (s.project != row.project) continue;
      mine = mine || row.subject_id == s.user_id;
      for (const SubjectIdentity& i : s.identities) mine = mine || i.id == row.subject_id;
    }
    if (mine) out.push_back(row);
  }
  return out;
}

Result<RightsRequest> RightsService::Lift(const Actor& actor, const std::string& request_id,
                                          const std::string& reason) {
  const char* action = ActionName(Action::kRequestsLift);
  auto got = FindRequest(actor, request_id, action);
  if (!got.ok()) return got.status();
  const RightsRequest r = std::move(got).value();
  const std::string subject = r.subject.rfind("hash:", 0) == 0 ? std::string() : r.subject;
  // A withdrawal of consent set to restrict (withdrawal.cc) puts a restriction in force too.
  if (!KindHasPurposes(r.kind) && r.kind != "withdrawal") {
    (void)Audit(actor, action, subject, "conflict", Dump(Json{{"requestId", request_id}, {"kind", r.kind}}));
    return Status::FailedPrecondition("only a restriction, an objection or a restricting withdrawal is lifted");
  }
  std::vector<RestrictionRecord> lifted;
  auto out =
      stores_.transactions->TransactFor<RightsRequest>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<RightsRequest> {
        auto all = tx.primitives().RestrictionsOf(0, /*active_only=*/true);
        if (!all.ok()) return all.status();
        lifted.clear();
        for (const RestrictionRecord& row : *all) {
          if (row.request_id == request_id) lifted.push_back(row);
        }
        if (lifted.empty()) return Status::FailedPrecondition("nothing of this request is in force");
        auto n = tx.primitives().LiftRestrictions(request_id, tx.NowMs());
        if (!n.ok()) return n.status();
        Json add = {{"lifted", {{"at", Iso(tx.NowMs())}, {"by", actor.name}, {"reason", reason}, {"ids", *n}}}};
        // The state stays: the request was carried out; lifting is a later event on it.
        auto u = tx.UpdateRequest(request_id, r.state, r.state, r.acted_by.empty() ? actor.name : r.acted_by,
                                  r.acted_ms > 0 ? r.acted_ms : tx.NowMs(), MergedResult(r.result, add));
        if (!u.ok()) return u.status();
        if (*u != RequestUpdate::kUpdated) return Status::Conflict("the request changed meanwhile");
        FERRY_RETURN_IF_ERROR(
            tx.AppendAudit(Entry(actor, action, subject, "ok", Dump(Json{{"requestId", request_id}, {"ids", *n}})))
                .status());
        FERRY_RETURN_IF_ERROR(RecordPropagation(tx, "lift", r, add["lifted"]));
        auto after = tx.GetRequest(request_id);
        if (!after.ok()) return after.status();
        if (!after->has_value()) return Status::Internal("the request went missing");
        return std::move(**after);
      });
  if (out.ok()) {
    TellRestricted(lifted, false);
    return out;
  }
  if (out.status().code() == base::Code::kFailedPrecondition) {
    (void)Audit(actor, action, subject, "conflict", Dump(Json{{"requestId", request_id}, {"state", r.state}}));
    return out;
  }
  if (out.status().code() == base::Code::kConflict) return out;
  return out.status().WithMessage(kStoreUnavailable);
}

Result<std::string> RightsService::RestrictionMode(const Actor& actor, const std::string& project) {
  const char* action = ActionName(Action::kRestrictionMode);
  auto found = stores_.restrictions->ActiveRestrictionsOf(project);  // the project's existence is read below
  if (!found.ok()) return found.status().WithMessage(kStoreUnavailable);
  auto mode = stores_.transactions->TransactFor<std::string>(TxnMode::kRead, [&](StoreTxn& tx) -> Result<std::string> {
    auto p = tx.primitives().Projects(project);
    if (!p.ok()) return p.status();
    if (project.empty() || p->empty()) return std::string();
    auto m = tx.primitives().RestrictionMode(p->front().id);
    if (!m.ok()) return m.status();
    return m->empty() ? std::string(kRestrictQuarantine) : *m;
  });
  if (!mode.ok()) return mode.status().WithMessage(kStoreUnavailable);
  if (mode->empty()) {
    FERRY_RETURN_IF_ERROR(Audit(actor, action, "", "not_found", Dump(Json{{"project", project}})));
    return Status::NotFound("no such project");
  }
  FERRY_RETURN_IF_ERROR(Audit(actor, action, "", "ok", Dump(Json{{"project", project}, {"mode", *mode}})));
  return mode;
}

Result<std::string> RightsService::SetRestrictionMode(const Actor& actor, const std::string& project,
                                                      const std::string& mode) {
  const char* action = ActionName(Action::kRestrictionMode);
  if (mode != kRestrictQuarantine && mode != kRestrictRefuse) {
    (void)Audit(actor, action, "", "bad_request", Dump(Json{{"project", project}, {"mode", mode.substr(0, 64)}}));
    return Status::InvalidArgument("the restriction mode is quarantine or refuse");
  }
  auto set = stores_.transactions->TransactFor<bool>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<bool> {
    auto p = tx.primitives().Projects(project);
    if (!p.ok()) return p.status();
    if (project.empty() || p->empty()) return false;
    FERRY_RETURN_IF_ERROR(tx.primitives().SetRestrictionMode(p->front().id, mode));
    FERRY_RETURN_IF_ERROR(
        tx.AppendAudit(Entry(actor, action, "", "ok", Dump(Json{{"project", project}, {"mode", mode}, {"set", true}})))
            .status());
    return true;
  });
  if (!set.ok()) return set.status().WithMessage(kStoreUnavailable);
  if (!*set) {
    FERRY_RETURN_IF_ERROR(Audit(actor, action, "", "not_found", Dump(Json{{"project", project}})));
    return Status::NotFound("no such project");
  }
  return mode;
}

Result<RightsRequest> RightsService::Approve(const Actor& actor, const std::string& request_id,
                                             const Verification& verification) {
  return Act(actor, request_id, /*approve=*/true, "", verification);
}

Result<RightsRequest> RightsService::Reject(const Actor& actor, const std::string& request_id,
                                            const std::string& reason) {
  return Act(actor, request_id, /*approve=*/false, reason, Verification());
}

Result<RightsRequest> RightsService::Act(const Actor& actor, const std::string& request_id, bool approve,
                                         const std::string& reason, const Verification& verification) {
  const char* action = ActionName(approve ? Action::kRequestsApprove : Action::kRequestsReject);
  auto got = FindRequest(actor, request_id, action);
  if (!got.ok()) return got.status();
  const RightsRequest r = std::move(got).value();
  const bool may = approve ? (r.state == kAwaiting || r.state == kReceived) : IsOpen(r.state);
  if (!may) {
    (void)Audit(actor, action, "", "conflict", Dump(Json{{"requestId", request_id}, {"state", r.state}}));
    return Status::FailedPrecondition(approve ? "the request is " + r.state + ", not awaiting_verification"
                                              : "the request is " + r.state + "; only an open request is rejected");
  }
  if (approve && r.subject.empty()) {  // a public request whose person is not yet identified (VerifyPublicRequest)
    (void)Audit(actor, action, "", "conflict",
                Dump(Json{{"requestId", request_id}, {"state", r.state}, {"why", "no subject yet"}}));
    return Status::FailedPrecondition(
        "the request names no subject yet: the person's identity is verified first (a code from the app, or "
        "requests identify with evidence)");
  }
  // The subject as named: plain, or (already erased) only its hash.
  const bool redacted = r.subject.rfind("hash:", 0) == 0;
  const std::string subject = redacted ? std::string() : r.subject;
  const bool erases = approve && r.kind == "erasure" && !redacted;
  std::vector<std::pair<std::string, std::vector<std::string>>> subjects;
  // An erasure's events go first, in chunks (DeleteEventsAhead): the first moves the request to in_progress, and the
  // transaction below finishes it from there.
  std::string expected_state = r.state;
  ErasureAhead ahead_done;
  if (erases && !stores_.transactions->WritersQueue()) {
    // One transaction below (see Erase); the ids resolved first, for the outbox and the listener.
    auto all = stores_.transactions->TransactFor<std::vector<SubjectIds>>(TxnMode::kRead, [&](StoreTxn& tx) {
      return tx.ResolveAll({r.project, r.subject});
    });
    if (all.ok()) ahead_done.ids = std::move(all).value();
    subjects = SubjectsOf(ahead_done, r.subject);
  } else if (erases) {
    RightsRequest going = r;
    going.state = kInProgress;
    going.acted_by = actor.name;
    going.acted_ms = clock_->NowMs();
    going.result =
        MergedResult(r.result, Json{{"verification", VerificationDocument(verification, actor.name, going.acted_ms)}});
    bool moved = false;
    auto ahead = DeleteEventsAhead({r.project, r.subject}, going, [&](StoreTxn& tx) -> Status {
      auto u = tx.UpdateRequest(request_id, r.state, kInProgress, actor.name, going.acted_ms, going.result);
      if (!u.ok()) return u.status();
      if (*u != RequestUpdate::kUpdated) return Status::Conflict("the request changed meanwhile");
      FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(actor, action, subject, "started",
                                                 Dump(Json{{"requestId", request_id}, {"state", kInProgress}})))
                                .status());
      moved = true;
      return Status::Ok();
    });
    if (!ahead.ok()) {
      if (ahead.status().code() == base::Code::kConflict && !moved) return ahead.status();
      log_.Error("erasure failed: " + ahead.status().ToString());
      if (moved) RevertErasure(actor, request_id, r, ahead.status());
      (void)Audit(actor, action, subject, "error", Dump(Json{{"requestId", request_id}}));
      return ahead.status().WithMessage(kEraseFailed);
    }
    ahead_done = std::move(ahead).value();
    subjects = SubjectsOf(ahead_done, r.subject);
    expected_state = kInProgress;
  }
  std::vector<RestrictionRecord> restricted_rows;
  Step failed_at = Step::kNone;
  auto out = stores_.transactions->TransactFor<
      RightsRequest>(erases ? TxnMode::kErase : TxnMode::kWrite, [&](StoreTxn& tx) -> Result<RightsRequest> {
    Json result;
    std::string to = kRejected;
    if (!approve) {
      result = {{"reason", reason}};
    } else {
      result = {{"verification", VerificationDocument(verification, actor.name, tx.NowMs())}};
      to = kInProgress;
      if (erases) {
        failed_at = Step::kAction;
        auto receipt = tx.EraseSubject({r.project, r.subject}, request_id, &ahead_done.ids);
        if (!receipt.ok()) return receipt.status();
        receipt->erased["events"] += ahead_done.deleted;
        const Json receipt_doc = ReceiptDocument(*receipt);
        for (const auto& [k, v] : receipt_doc.items()) result[k] = v;
        FERRY_RETURN_IF_ERROR(Propagate(tx, "erasure", r.project, request_id, subjects, r.subject, Json::object()));
        to = kCompleted;
      } else if (r.kind == "erasure") {
        result["note"] = "the subject had already been erased";
        to = kCompleted;
      } else if (KindHasPurposes(r.kind) && !redacted) {
        // In force at once: the request is carried out (completed); POST /v1/requests/{id}/lift lifts it.
        failed_at = Step::kAction;
        Json before = Json::parse(r.result.empty() ? "{}" : r.result, nullptr, false);
        std::vector<std::string> purposes;
        if (before.is_object() && before.contains("purposes") && before["purposes"].is_array()) {
          for (const auto& p : before["purposes"]) {
            if (p.is_string()) purposes.push_back(p.get<std::string>());
          }
        }
        // An objection's marketing part was in force on receipt.
        if (r.kind == "objection")
          purposes.erase(std::remove(purposes.begin(), purposes.end(), "marketing"), purposes.end());
        Json merged = before.is_object() ? before : Json::object();
        auto put = PutInForce(tx, r, r.kind, purposes, &merged);
        if (!put.ok()) return put.status();
        restricted_rows = std::move(put).value();
        result["inForce"] = merged["inForce"];
        FERRY_RETURN_IF_ERROR(RecordPropagation(tx, "restriction", r, Json{{"kind", r.kind}, {"purposes", purposes}}));
        to = kCompleted;
      } else if (IsCopyKind(r.kind)) {
        result["note"] = "completes when the copy is delivered (GET /v1/requests/{id}/copy)";
      } else {
        result["note"] = "completes when an officer records it as carried out (POST /v1/requests/{id}/complete)";
      }
    }
    failed_at = Step::kRegister;
    // Only from the state read: a second officer (or a concurrent reject) finds it changed.
    auto u = tx.UpdateRequest(request_id, expected_state, to, actor.name, tx.NowMs(), MergedResult(r.result, result));
    if (!u.ok()) return u.status();
    if (*u != RequestUpdate::kUpdated) return Status::Conflict("the request changed meanwhile");
    failed_at = Step::kAudit;
    Json detail = {{"requestId", request_id}, {"state", to}};
    if (approve) {
      detail["kind"] = r.kind;
      detail["verification"] = verification.method;  // how, never the evidence itself
    }
    FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(actor, action, subject, "ok", Dump(detail))).status());
    failed_at = Step::kRegister;
    auto after = tx.GetRequest(request_id);
    if (!after.ok()) return after.status();
    if (!after->has_value()) return Status::Internal("the request went missing");
    return std::move(**after);
  });
  if (out.ok()) {
    TellErased(subjects);
    TellRestricted(restricted_rows, true);
    return out;
  }
  if (erases) RevertErasure(actor, request_id, r, out.status());
  if (out.status().code() == base::Code::kConflict) return out;
  switch (failed_at) {
    case Step::kAction:
      log_.Error((erases ? "erasure failed: " : "restriction failed: ") + out.status().ToString());
      (void)Audit(actor, action, subject, "error", Dump(Json{{"requestId", request_id}}));
      return out.status().WithMessage(erases ? kEraseFailed : "the restriction failed; nothing was put in force");
    case Step::kAudit: return out.status().WithMessage(kAuditFailed);
    default: return out.status().WithMessage(kStoreUnavailable);
  }
}

Result<RightsRequest> RightsService::FindRequest(const Actor& actor, const std::string& request_id,
                                                 const char* action) {
  auto got = stores_.requests->GetRequest(request_id);
  if (!got.ok()) return got.status().WithMessage(kStoreUnavailable);
  if (!got->has_value()) {
    FERRY_RETURN_IF_ERROR(Audit(actor, action, "", "not_found", Dump(Json{{"requestId", request_id}})));
    return Status::NotFound("no such request");
  }
  return std::move(**got);
}

Result<RightsRequest> RightsService::Move(const Actor& actor, const std::string& request_id, const char* action,
                                          const std::string& to, const Json& add) {
  auto got = FindRequest(actor, request_id, action);
  if (!got.ok()) return got.status();
  const RightsRequest r = std::move(got).value();
  const std::string subject = r.subject.rfind("hash:", 0) == 0 ? std::string() : r.subject;
  const bool by_delivery = IsCopyKind(r.kind);
  const bool delivering = std::string(action) == ActionName(Action::kRequestsDeliver);
  std::string why;
  if (!RequestTransitionAllowed(r.state, to) || (to == kCompleted && r.state != kInProgress && r.state != kExtended)) {
    why = "the request is " + r.state + "; it cannot become " + to;
  } else if (to == kCompleted && by_delivery != delivering) {
    why = by_delivery ? "an " + r.kind + " request completes when its copy is delivered (GET /v1/requests/" +
                            request_id + "/copy)"
                      : "only an access or portability request has a copy to deliver";
  } else if (delivering && subject.empty()) {
    why = "the subject was erased; there is nothing to deliver";
  }
  if (!why.empty()) {
    (void)Audit(actor, action, subject, "conflict", Dump(Json{{"requestId", request_id}, {"state", r.state}}));
    return Status::FailedPrecondition(why);
  }
  return UpdateAudited(actor, action, subject, r, to, add, Json{{"requestId", request_id}, {"state", to}});
}

Result<RightsRequest> RightsService::UpdateAudited(const Actor& actor, const char* action, const std::string& subject,
                                                   const RightsRequest& r, const std::string& to, const Json& add,
                                                   const Json& detail, const std::function<Status(StoreTxn&)>& also) {
  auto out =
      stores_.transactions->TransactFor<RightsRequest>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<RightsRequest> {
        auto u = tx.UpdateRequest(r.id, r.state, to, actor.name, tx.NowMs(), MergedResult(r.result, add));
        if (!u.ok()) return u.status();
        if (*u != RequestUpdate::kUpdated) return Status::Conflict("the request changed meanwhile");
        if (also) FERRY_RETURN_IF_ERROR(also(tx));
        FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(actor, action, subject, "ok", Dump(detail))).status());
        auto after = tx.GetRequest(r.id);
        if (!after.ok()) return after.status();
        if (!after->has_value()) return Status::Internal("the request went missing");
        return std::move(**after);
      });
  if (!out.ok() && out.status().code() != base::Code::kConflict) return out.status().WithMessage(kStoreUnavailable);
  return out;
}

Result<RightsRequest> RightsService::Complete(const Actor& actor, const std::string& request_id,
                                              const std::string& note) {
  return Move(actor, request_id, ActionName(Action::kRequestsComplete), kCompleted,
              Json{{"completion", {{"note", note}, {"by", actor.name}, {"at", Iso(clock_->NowMs())}}}});
}

Result<RightsRequest> RightsService::BeginDelivery(const Actor& actor, const std::string& request_id) {
  const char* action = ActionName(Action::kRequestsDeliver);
  auto got = FindRequest(actor, request_id, action);
  if (!got.ok()) return got.status();
  const RightsRequest r = std::move(got).value();
  const bool redacted = r.subject.rfind("hash:", 0) == 0;
  std::string why;
  if (!IsCopyKind(r.kind)) {
    why = "only an access or portability request has a copy to deliver";
  } else if (r.state != kInProgress && r.state != kExtended) {
    why = "the request is " + r.state + "; a copy is delivered once it was approved (in_progress or extended)";
  } else if (redacted) {
    why = "the subject was erased; there is nothing to deliver";
  }
  if (!why.empty()) {
    (void)Audit(actor, action, redacted ? "" : r.subject, "conflict",
                Dump(Json{{"requestId", request_id}, {"state", r.state}}));
    return Status::FailedPrecondition(why);
  }
  FERRY_RETURN_IF_ERROR(Audit(actor, action, r.subject, "started", Dump(Json{{"requestId", request_id}})));
  return r;
}

Result<RightsRequest> RightsService::Delivered(const Actor& actor, const std::string& request_id, int64_t events) {
  return Move(actor, request_id, ActionName(Action::kRequestsDeliver), kCompleted,
              Json{{"delivered", {{"at", Iso(clock_->NowMs())}, {"by", actor.name}, {"events", events}}}});
}

Result<RequestStats> RightsService::Stats(const Actor& actor) {
  RequestFilter f;
  f.limit = std::numeric_limits<size_t>::max() / 2;
  auto list = stores_.requests->ListRequests(f);
  if (!list.ok()) return list.status().WithMessage(kStoreUnavailable);
  const int64_t now = clock_->NowMs();
  RequestStats st;
  for (const RightsRequest& r : *list) {
    ++st.total;
    ++st.by_kind[r.kind];
    ++st.by_state[r.state];
    if (IsOpen(r.state)) {
      ++(r.due_ms < now ? st.open_overdue : st.open_on_time);
    } else {
      ++(r.acted_ms > r.due_ms ? st.closed_late : st.closed_on_time);
    }
  }
  FERRY_RETURN_IF_ERROR(Audit(actor, ActionName(Action::kRequestsStats), "", "ok", Dump(Json{{"total", st.total}})));
  return st;
}

Result<RightsRequest> RightsService::Extend(const Actor& actor, const std::string& request_id, int64_t days,
                                            const std::string& reason) {
  const char* action = ActionName(Action::kRequestsExtend);
  std::string why;
  if (days < 1 || days > 62) why = "days must be 1 to 62 (two further months at most)";
  if (why.empty() && (reason.empty() || reason.size() > 2000)) why = "a reason (told to the person) of 1-2000 bytes";
  if (!why.empty()) {
    (void)Audit(actor, action, "", "bad_request", Dump(Json{{"requestId", request_id.substr(0, 64)}, {"why", why}}));
    return Status::InvalidArgument(why);
  }
  auto got = FindRequest(actor, request_id, action);
  if (!got.ok()) return got.status();
  const RightsRequest r = std::move(got).value();
  const std::string subject = r.subject.rfind("hash:", 0) == 0 ? std::string() : r.subject;
  if (r.state != kInProgress) {
    (void)Audit(actor, action, subject, "conflict", Dump(Json{{"requestId", request_id}, {"state", r.state}}));
    return Status::FailedPrecondition("the request is " + r.state + "; only an in_progress request is extended, once");
  }
  const int64_t due = r.due_ms + days * 24LL * 3600 * 1000;
  const Json add = {{"extension",
                     {{"reason", reason},
                      {"days", days},
                      {"previousDue", Iso(r.due_ms)},
                      {"by", actor.name},
                      {"at", Iso(clock_->NowMs())}}}};
  return UpdateAudited(actor, action, subject, r, kExtended, add, Json{{"requestId", request_id}, {"days", days}},
                       [&](StoreTxn& tx) -> Status {
                         auto moved = tx.primitives().SetRequestDueIf(request_id, kExtended, due);
                         if (!moved.ok()) return moved.status();
                         if (!*moved) return Status::Conflict("the request changed meanwhile");
                         return Status::Ok();
                       });
}

Result<std::vector<RightsRequest>> RightsService::DueWithin(const Actor& actor, int64_t within_ms) {
  RequestFilter f;
  f.limit = std::numeric_limits<size_t>::max() / 2;
  auto list = stores_.requests->ListRequests(f);
  if (!list.ok()) return list.status().WithMessage(kStoreUnavailable);
  const int64_t until = clock_->NowMs() + within_ms;
  std::vector<RightsRequest> out;
  for (RightsRequest& r : *list) {
    if (IsOpen(r.state) && r.due_ms < until) out.push_back(std::move(r));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const RightsRequest& a, const RightsRequest& b) { return a.due_ms < b.due_ms; });
  FERRY_RETURN_IF_ERROR(Audit(actor, ActionName(Action::kRequestsDue), "", "ok",
                              Dump(Json{{"withinMs", within_ms}, {"count", out.size()}})));
  return out;
}

// ---- The audit log ----

Result<std::vector<AuditEntry>> RightsService::ListAudit(const Actor& actor, int64_t after_seq, size_t limit,
                                                         const std::string& subject) {
  FlushRefusals(true);  // the log as read holds every refusal counted so far
  auto list =
      stores_.audit->ListAudit(after_seq, limit, subject.empty() ? std::string() : stores_.subjects->IdHash(subject));
  if (!list.ok()) return list.status().WithMessage(kStoreUnavailable);
  FERRY_RETURN_IF_ERROR(
      Audit(actor, ActionName(Action::kAuditList), subject, "ok", Dump(Json{{"count", list->size()}})));
  return list;
}

Result<AuditVerifyResult> RightsService::VerifyAudit(const Actor& actor) {
  FlushRefusals(true);
  auto v = stores_.audit->VerifyAudit();
  if (!v.ok()) return v.status().WithMessage(kStoreUnavailable);
  FERRY_RETURN_IF_ERROR(
      Audit(actor, ActionName(Action::kAuditVerify), "", v->ok ? "ok" : "broken", Dump(VerifyDocument(*v))));
  return v;
}

// ---- Credentials ----

Result<std::string> RightsService::CreateWriteKey(const Actor& actor, const std::string& project) {
  return CreateKey(actor, project, Action::kKeysCreateWriteKey);
}

Result<std::string> RightsService::CreateServerKey(const Actor& actor, const std::string& project) {
  return CreateKey(actor, project, Action::kKeysCreateServerKey);
}

Result<std::string> RightsService::CreateKey(const Actor& actor, const std::string& project, Action action) {
  Step failed_at = Step::kNone;
  auto key = stores_.transactions->TransactFor<std::string>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<std::string> {
    failed_at = Step::kAction;
    auto made = tx.CreateWriteKey(project, action == Action::kKeysCreateServerKey ? "server" : "write");
    if (!made.ok()) return made.status();
    failed_at = Step::kAudit;
    FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(actor, ActionName(action), "", "ok",
                                               Dump(Json{{"project", project}, {"prefix", made->substr(0, 7)}})))
                              .status());
    return made;
  });
  if (key.ok() || key.status().code() == base::Code::kInvalidArgument) return key;
  return key.status().WithMessage(failed_at == Step::kAudit ? kAuditFailed : kStoreUnavailable);
}

Result<CredentialList> RightsService::ListCredentials(const Actor& actor) {
  CredentialList out;
  auto keys = stores_.credentials->ListWriteKeys();
  if (!keys.ok()) return keys.status().WithMessage(kStoreUnavailable);
  auto tokens = stores_.credentials->ListAdminTokens();
  if (!tokens.ok()) return tokens.status().WithMessage(kStoreUnavailable);
  out.write_keys = std::move(keys).value();
  out.admin_tokens = std::move(tokens).value();
  FERRY_RETURN_IF_ERROR(
      Audit(actor, ActionName(Action::kKeysList), "", "ok",
            Dump(Json{{"writeKeys", out.write_keys.size()}, {"adminTokens", out.admin_tokens.size()}})));
  return out;
}

namespace {
const char* KindName(CredentialKind kind) { return kind == CredentialKind::kWriteKey ? "write-key" : "admin-token"; }
}  // namespace

Result<bool> RightsService::RevokeCredential(const Actor& actor, CredentialKind kind, int64_t id) {
  auto done = kind == CredentialKind::kWriteKey ? stores_.credentials->RevokeWriteKey(id)
                                                : stores_.credentials->RevokeAdminToken(id);
  return CredentialChanged(actor, Action::kKeysRevoke, kind, Json{{"kind", KindName(kind)}, {"id", id}}, done);
}

Result<bool> RightsService::ExpireCredential(const Actor& actor, CredentialKind kind, int64_t id, int64_t expires_ms) {
  auto done = kind == CredentialKind::kWriteKey ? stores_.credentials->SetWriteKeyExpiry(id, expires_ms)
                                                : stores_.credentials->SetAdminTokenExpiry(id, expires_ms);
  Json detail = {{"kind", KindName(kind)}, {"id", id}, {"expiresAt", expires_ms > 0 ? Json(Iso(expires_ms)) : Json()}};
  return CredentialChanged(actor, Action::kKeysExpire, kind, detail, done);
}

Result<bool> RightsService::CredentialChanged(const Actor& actor, Action action, CredentialKind kind,
                                              const Json& detail, const Result<bool>& done) {
  if (!done.ok()) {
    (void)Audit(actor, ActionName(action), "", "error", Dump(detail));
    return done.status().WithMessage(kStoreUnavailable);
  }
  const bool changed = done.value();
  FERRY_RETURN_IF_ERROR(Audit(actor, ActionName(action), "", changed ? "ok" : "not_found", Dump(detail)));
  if (!changed) return Status::NotFound(std::string("no valid ") + KindName(kind) + " has that id");
  return true;
}

Result<std::string> RightsService::CreateAdminToken(const Actor& actor, const std::string& name,
                                                    const std::vector<std::string>& roles) {
  const std::string holder = name.empty() ? std::string("admin") : name;
  return stores_.transactions->TransactFor<std::string>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<std::string> {
    auto token = tx.CreateAdminToken(holder, roles);
    if (!token.ok()) return token.status();
    std::string joined;
    for (const auto& r : roles) joined += (joined.empty() ? "" : ",") + r;
    auto audited =
        tx.AppendAudit(Entry(actor, "keys.create-admin-token", "", "ok",
                             Dump(Json{{"name", holder}, {"roles", joined}, {"prefix", token->substr(0, 9)}})));
    if (!audited.ok())
      return audited.status().WithMessage(std::string(kAuditFailed) + ": " + audited.status().message());
    return token;
  });
}

}  // namespace ferry::collector::rights
