#include "collector/http/admin.h"

#include <httplib.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>

#include "collector/ingest/ingest.h"
#include "lib/base/time.h"
#include "lib/wire/auth.h"
#include "lib/wire/http_status.h"

namespace ferry::collector {

namespace {

using nlohmann::json;
constexpr const char* kJson = "application/json";
constexpr size_t kMaxIdBytes = 4096;
constexpr size_t kMaxForgetIds = 1000;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void Answer(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(Dump(body), kJson);
}
void Error(httplib::Response& res, int status, const std::string& reason) {
  res.status = status;
  res.set_content(wire::ErrorBody(wire::CodeForHttpStatus(status), reason), kJson);
}

std::string Bearer(const httplib::Request& req) { return wire::BearerToken(req.get_header_value("Authorization")); }

std::string Iso(int64_t ms) { return ms > 0 ? base::FormatIso8601(ms) : std::string(); }

json SummaryJson(const SubjectSummary& s) {
  json ids = json::array();
  for (const auto& i : s.identities) {
    json o = {{"kind", i.kind}, {"id", i.id}, {"source", i.source}};
    if (!i.linked_to.empty()) o["linkedTo"] = i.linked_to;
    if (i.first_seen_ms > 0) o["linkedAt"] = Iso(i.first_seen_ms);
    ids.push_back(std::move(o));
  }
  json consent = json::array();
  for (const auto& c : s.consent)
    consent.push_back({{"purpose", c.purpose}, {"state", c.state}, {"at", Iso(c.timestamp_ms)}});
  json traits = json::parse(s.traits, nullptr, false);
  json out = {{"project", s.project},
              {"userId", s.user_id.empty() ? json(nullptr) : json(s.user_id)},
              {"identities", ids},
              {"eventCount", s.event_count},
              {"eventsByType", s.events_by_type},
              {"firstSeen", s.first_seen_ms > 0 ? json(Iso(s.first_seen_ms)) : json(nullptr)},
              {"lastSeen", s.last_seen_ms > 0 ? json(Iso(s.last_seen_ms)) : json(nullptr)},
              {"consent", consent},
              {"traits", traits.is_discarded() ? json::object() : traits}};
  return out;
}

json ReceiptJson(const EraseReceipt& r) {
  return {{"requestId", r.request_id},
          {"erased", r.erased},
          {"idsSuppressed", r.ids_suppressed},
          {"projects", r.projects},
          {"completedAt", Iso(r.completed_ms)}};
}

json RequestJson(const RightsRequest& r, int64_t now) {
  json result = r.result.empty() ? json(nullptr) : json::parse(r.result, nullptr, false);
  if (result.is_discarded()) result = r.result;
  bool open = r.state != "completed" && r.state != "rejected";
  return {{"id", r.id},
          {"kind", r.kind},
          {"project", r.project},
          {"subject", r.subject},
          {"state", r.state},
          {"source", r.source},
          {"receivedAt", Iso(r.received_ms)},
          {"dueAt", Iso(r.due_ms)},
          {"overdue", open && r.due_ms < now},
          {"actedBy", r.acted_by},
          {"actedAt", r.acted_ms > 0 ? json(Iso(r.acted_ms)) : json(nullptr)},
          {"result", result}};
}

json AuditJson(const AuditEntry& e) {
  return {{"seq", e.seq},       {"time", Iso(e.time_ms)}, {"actor", e.actor},
          {"role", e.role},     {"action", e.action},     {"subjectHash", e.subject_hash},
          {"result", e.result}, {"detail", e.detail},     {"prevHash", e.prev_hash},
          {"hash", e.hash}};
}

// Writes JSON text to a chunked answer in blocks of about 64 KiB.
class ChunkWriter {
 public:
  explicit ChunkWriter(httplib::DataSink& sink) : sink_(sink) {}
  bool Put(std::string_view s) {
    buf_.append(s);
    return buf_.size() < 65536 || Flush();
  }
  bool Flush() {
    if (buf_.empty()) return ok_;
    ok_ = ok_ && sink_.write(buf_.data(), buf_.size());
    buf_.clear();
    return ok_;
  }

 private:
  httplib::DataSink& sink_;
  std::string buf_;
  bool ok_ = true;
};

// The export document, written as the store hands the pieces over:
// {"format","subject","exportedAt","projects":[{...summary, "consentHistory":[...], "events":[...]}]}
class JsonExport : public ExportVisitor {
 public:
  JsonExport(ChunkWriter& w, const std::string& subject) : w_(w) {
    std::string head = Dump(json{{"format", "ferry-subject-export/1"},
                                 {"subject", subject},
                                 {"exportedAt", base::FormatIso8601(base::NowMs())}});
    head.pop_back();  // reopen the object
    w_.Put(head);
    w_.Put(",\"projects\":[");
  }
  bool BeginProject(const SubjectSummary& s) override {
    std::string p = Dump(SummaryJson(s));
    p.pop_back();
    consent_n_ = events_n_ = 0;
    in_events_ = false;
    return w_.Put(projects_++ ? "," : "") && w_.Put(p) && w_.Put(",\"consentHistory\":[");
  }
  bool Consent(const ConsentRecord& c) override {
    json dev = c.device.empty() ? json(nullptr) : json::parse(c.device, nullptr, false);
    if (dev.is_discarded()) dev = c.device;
    json o = {{"messageId", c.message_id},
              {"purpose", c.purpose},
              {"state", c.state},
              {"previous", c.previous.empty() ? json(nullptr) : json(c.previous)},
              {"at", Iso(c.timestamp_ms)},
              {"receivedAt", Iso(c.received_ms)},
              {"userId", c.user_id.empty() ? json(nullptr) : json(c.user_id)},
              {"anonymousId", c.anonymous_id.empty() ? json(nullptr) : json(c.anonymous_id)},
              {"device", dev}};
    return w_.Put(consent_n_++ ? "," : "") && w_.Put(Dump(o));
  }
  bool Event(const EventRow& e) override {
    if (!in_events_) {
      in_events_ = true;
      if (!w_.Put("],\"events\":[")) return false;
    }
    // The stored body is the event as received (JSON written by the collector at ingest).
    return w_.Put(events_n_++ ? "," : "") && w_.Put(e.body);
  }
  bool EndProject() override {
    if (!in_events_ && !w_.Put("],\"events\":[")) return false;
    return w_.Put("]}");
  }
  bool Finish() { return w_.Put("]}\n") && w_.Flush(); }

 private:
  ChunkWriter& w_;
  int projects_ = 0;
  int64_t consent_n_ = 0, events_n_ = 0;
  bool in_events_ = false;
};

}  // namespace

std::optional<std::string> DecodePathSegment(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    char c = static_cast<char>(hi * 16 + lo);
    if (c == '\0') return std::nullopt;
    out += c;
    i += 2;
  }
  return out;
}

AdminApi::AdminApi(Store* store, Metrics* metrics, base::Logger log, AdminOptions opts)
    : store_(store), metrics_(metrics), log_(std::move(log)), opts_(opts) {}

bool AdminApi::HasRole(const httplib::Request& req, const std::string& role) {
  std::string token = Bearer(req);
  if (token.empty()) return false;
  auto info = store_->LookupAdminToken(token);
  if (!info.ok() || !info->has_value()) return false;
  const auto& roles = (**info).roles;
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

bool AdminApi::Audit(const std::string& actor, const std::string& role, const std::string& action,
                     const std::string& subject, const std::string& result, const std::string& detail,
                     httplib::Response* res) {
  AuditEntry e;
  e.actor = actor;
  e.role = role;
  e.action = action;
  e.subject_hash = subject.empty() ? std::string() : store_->IdHash(subject);
  e.result = result;
  e.detail = detail;
  auto r = store_->AppendAudit(std::move(e));
  if (r.ok()) return true;
  log_.Error("cannot write the audit log: " + r.status().ToString());
  if (res) Error(*res, 503, "the audit log cannot be written; the call was not recorded");
  return false;
}

bool AdminApi::AuditCaller(const Caller& c, const std::string& action, const std::string& subject,
                           const std::string& result, const std::string& detail, httplib::Response* res) {
  return Audit(c.token.name + " (" + c.token.prefix + ")", c.role, action, subject, result, detail, res);
}

std::optional<AdminApi::Caller> AdminApi::Authorize(const httplib::Request& req, httplib::Response& res,
                                                    const std::string& action, std::initializer_list<const char*> roles,
                                                    const std::string& subject) {
  std::string token = Bearer(req);
  if (token.empty()) {
    Audit("anonymous", "", action, subject, "unauthenticated", "", nullptr);
    Error(res, 401, "an admin token is required");
    return std::nullopt;
  }
  auto info = store_->LookupAdminToken(token);
  if (!info.ok()) {
    log_.Error("admin token lookup failed: " + info.status().ToString());
    Error(res, 503, "store unavailable");
    return std::nullopt;
  }
  if (!info->has_value()) {
    Audit("unknown token", "", action, subject, "unauthenticated", "", nullptr);
    Error(res, 401, "unknown or revoked admin token");
    return std::nullopt;
  }
  Caller c{std::move(**info), ""};
  for (const char* want : roles) {
    if (std::find(c.token.roles.begin(), c.token.roles.end(), want) != c.token.roles.end()) {
      c.role = want;
      return c;
    }
  }
  std::string need;
  for (const char* want : roles) need += (need.empty() ? "" : " or ") + std::string(want);
  AuditCaller(c, action, subject, "denied", Dump(json{{"needs", need}}), nullptr);
  Error(res, 403, "this call needs the role " + need);
  return std::nullopt;
}

void AdminApi::Register(httplib::Server& svr) {
  // Subject routes are matched on the decoded path, but the id is taken from the raw target so an id may hold an
  // encoded '/'.
  auto subject = [this](const httplib::Request& req, httplib::Response& res) { Subject(req, res); };
  svr.Get(R"(/v1/subjects/.+)", subject);
  svr.Post(R"(/v1/subjects/.+)", subject);
  svr.Patch(R"(/v1/subjects/.+)", subject);
  svr.Get("/v1/requests", [this](const httplib::Request& req, httplib::Response& res) { ListRequests(req, res); });
  svr.Post("/v1/requests", [this](const httplib::Request& req, httplib::Response& res) { AddRequest(req, res); });
  svr.Post(R"(/v1/requests/([A-Za-z0-9_]+)/approve)",
           [this](const httplib::Request& req, httplib::Response& res) { ActOnRequest(req, res, true); });
  svr.Post(R"(/v1/requests/([A-Za-z0-9_]+)/reject)",
           [this](const httplib::Request& req, httplib::Response& res) { ActOnRequest(req, res, false); });
  svr.Get("/v1/audit", [this](const httplib::Request& req, httplib::Response& res) { ListAudit(req, res); });
  svr.Get("/v1/audit/verify", [this](const httplib::Request& req, httplib::Response& res) { VerifyAudit(req, res); });
  svr.Post("/v1/keys/write-keys",
           [this](const httplib::Request& req, httplib::Response& res) { CreateWriteKey(req, res); });
  svr.Post("/v1/forget", [this](const httplib::Request& req, httplib::Response& res) { Forget(req, res); });
}

void AdminApi::Subject(const httplib::Request& req, httplib::Response& res) {
  // Raw target: /v1/subjects/<encoded id>[/export|/erase|/traits][?query]
  std::string target = req.target.substr(0, req.target.find('?'));
  static const std::string kPrefix = "/v1/subjects/";
  if (target.rfind(kPrefix, 0) != 0) return Error(res, 404, "not found");
  std::string rest = target.substr(kPrefix.size());
  std::string action;
  size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    action = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  auto id = DecodePathSegment(rest);
  if (!id || id->empty()) return Error(res, 400, "bad subject id in the path");
  if (id->size() > kMaxIdBytes) return Error(res, 400, "subject id too long");
  SubjectQuery q{req.has_param("project") ? req.get_param_value("project") : std::string(), *id};
  if (req.method == "GET" && action.empty()) return ShowSubject(req, res, q);
  if (req.method == "GET" && action == "export") return ExportSubject(req, res, q);
  if (req.method == "POST" && action == "erase") return EraseSubject(req, res, q);
  if (req.method == "PATCH" && action == "traits") return PatchTraits(req, res, q);
  Error(res, 404, "not found");
}

void AdminApi::ShowSubject(const httplib::Request& req, httplib::Response& res, const SubjectQuery& q) {
  auto c = Authorize(req, res, "subject.show", {"compliance", "analyst"}, q.id);
  if (!c) return;
  auto found = store_->FindSubject(q);
  if (!found.ok()) {
    AuditCaller(*c, "subject.show", q.id, "error", "", nullptr);
    return Error(res, 503, "store unavailable");
  }
  if (found->empty()) {
    if (AuditCaller(*c, "subject.show", q.id, "not_found", "", &res)) Error(res, 404, "subject not found");
    return;
  }
  json projects = json::array();
  for (const auto& s : *found) projects.push_back(SummaryJson(s));
  if (!AuditCaller(*c, "subject.show", q.id, "ok", Dump(json{{"projects", found->size()}}), &res)) return;
  Answer(res, 200, json{{"subject", q.id}, {"projects", projects}});
}

void AdminApi::ExportSubject(const httplib::Request& req, httplib::Response& res, const SubjectQuery& q) {
  auto c = Authorize(req, res, "subject.export", {"compliance"}, q.id);
  if (!c) return;
  auto found = store_->FindSubject(q);
  if (!found.ok()) return Error(res, 503, "store unavailable");
  if (found->empty()) {
    if (AuditCaller(*c, "subject.export", q.id, "not_found", "", &res)) Error(res, 404, "subject not found");
    return;
  }
  int64_t now = base::NowMs();
  RightsRequest r;
  r.kind = "access";
  r.project = q.project;
  r.subject = q.id;
  r.state = "completed";
  r.source = "admin";
  r.received_ms = now;
  r.due_ms = now + opts_.request_due_ms;
  r.acted_by = c->token.name;
  r.acted_ms = now;
  r.result = Dump(json{{"exported", true}});
  auto stored = store_->CreateRequest(r);
  if (!stored.ok()) return Error(res, 503, "store unavailable");
  if (!AuditCaller(*c, "subject.export", q.id, "ok", Dump(json{{"requestId", stored->id}}), &res)) return;
  res.set_header("X-Ferry-Request-Id", stored->id);
  Store* store = store_;
  base::Logger log = log_;
  res.set_chunked_content_provider(kJson, [store, log, q](size_t, httplib::DataSink& sink) {
    ChunkWriter w(sink);
    JsonExport doc(w, q.id);
    auto r = store->ExportSubject(q, doc);
    if (!r.ok()) {
      // The answer has started: end it unfinished, so the client sees a broken document rather than a short one.
      log.Warn("export stopped: " + r.status().ToString());
      return false;
    }
    if (!doc.Finish()) return false;
    sink.done();
    return true;
  });
}

void AdminApi::EraseSubject(const httplib::Request& req, httplib::Response& res, const SubjectQuery& q) {
  auto c = Authorize(req, res, "subject.erase", {"compliance"}, q.id);
  if (!c) return;
  int64_t now = base::NowMs();
  RightsRequest r;
  r.kind = "erasure";
  r.project = q.project;
  r.subject = q.id;
  r.state = "processing";
  r.source = "admin";
  r.received_ms = now;
  r.due_ms = now + opts_.request_due_ms;
  auto stored = store_->CreateRequest(r);
  if (!stored.ok()) return Error(res, 503, "store unavailable");
  auto receipt = store_->EraseSubject(q, stored->id);
  if (!receipt.ok()) {
    log_.Error("erasure failed: " + receipt.status().ToString());
    (void)store_->UpdateRequest(stored->id, "processing", "awaiting_verification", c->token.name, base::NowMs(),
                                Dump(json{{"error", "the erasure failed; nothing was erased"}}));
    AuditCaller(*c, "subject.erase", q.id, "error", Dump(json{{"requestId", stored->id}}), nullptr);
    return Error(res, 503, "the erasure failed; nothing was erased");
  }
  json body = ReceiptJson(*receipt);
  (void)store_->UpdateRequest(stored->id, "processing", "completed", c->token.name, receipt->completed_ms, Dump(body));
  if (!AuditCaller(*c, "subject.erase", q.id, "ok", Dump(json{{"requestId", stored->id}, {"erased", receipt->erased}}),
                   &res)) {
    return;
  }
  Answer(res, 200, body);
}

void AdminApi::PatchTraits(const httplib::Request& req, httplib::Response& res, const SubjectQuery& q) {
  auto c = Authorize(req, res, "subject.correct", {"compliance"}, q.id);
  if (!c) return;
  json patch = json::parse(req.body, nullptr, false);
  if (patch.is_discarded() || !patch.is_object()) {
    AuditCaller(*c, "subject.correct", q.id, "bad_request", "", nullptr);
    return Error(res, 400, "the body must be a JSON object of traits (null removes one)");
  }
  auto out = store_->PatchTraits(q, req.body);
  if (!out.ok()) {
    AuditCaller(*c, "subject.correct", q.id, "error", "", nullptr);
    return Error(res, out.status().code() == base::Code::kInvalidArgument ? 400 : 503, out.status().message());
  }
  if (out->empty()) {
    if (AuditCaller(*c, "subject.correct", q.id, "not_found", "", &res)) Error(res, 404, "subject not found");
    return;
  }
  int64_t now = base::NowMs();
  json keys = json::array();
  for (const auto& [k, v] : patch.items()) keys.push_back(k);
  RightsRequest r;
  r.kind = "correction";
  r.project = q.project;
  r.subject = q.id;
  r.state = "completed";
  r.source = "admin";
  r.received_ms = now;
  r.due_ms = now + opts_.request_due_ms;
  r.acted_by = c->token.name;
  r.acted_ms = now;
  r.result = Dump(json{{"traitsChanged", keys}});
  auto stored = store_->CreateRequest(r);
  if (!stored.ok()) return Error(res, 503, "store unavailable");
  if (!AuditCaller(*c, "subject.correct", q.id, "ok", Dump(json{{"requestId", stored->id}, {"traits", keys}}), &res)) {
    return;
  }
  json projects = json::array();
  for (const auto& s : *out) projects.push_back(SummaryJson(s));
  Answer(res, 200, json{{"requestId", stored->id}, {"subject", q.id}, {"projects", projects}});
}

void AdminApi::ListRequests(const httplib::Request& req, httplib::Response& res) {
  auto c = Authorize(req, res, "requests.list", {"compliance"}, "");
  if (!c) return;
  RequestFilter f;
  int64_t now = base::NowMs();
  if (req.has_param("state")) f.state = req.get_param_value("state");
  std::string overdue = req.has_param("overdue") ? req.get_param_value("overdue") : "";
  if (overdue == "1" || overdue == "true") f.overdue_at_ms = now;
  auto list = store_->ListRequests(f);
  if (!list.ok()) return Error(res, 503, "store unavailable");
  json out = json::array();
  for (const auto& r : *list) out.push_back(RequestJson(r, now));
  if (!AuditCaller(*c, "requests.list", "", "ok", Dump(json{{"count", list->size()}}), &res)) return;
  Answer(res, 200, json{{"requests", out}});
}

void AdminApi::AddRequest(const httplib::Request& req, httplib::Response& res) {
  auto c = Authorize(req, res, "requests.add", {"compliance"}, "");
  if (!c) return;
  json b = json::parse(req.body, nullptr, false);
  auto str = [&](const char* k) {
    auto it = b.is_object() ? b.find(k) : b.end();
    return (b.is_object() && it != b.end() && it->is_string()) ? it->get<std::string>() : std::string();
  };
  std::string kind = str("kind"), subject = str("subject"), project = str("project");
  if (kind != "access" && kind != "erasure" && kind != "correction") {
    return Error(res, 400, "kind must be access, erasure or correction");
  }
  if (subject.empty() || subject.size() > kMaxIdBytes) return Error(res, 400, "subject must be a non-empty id");
  int64_t now = base::NowMs();
  RightsRequest r;
  r.kind = kind;
  r.project = project;
  r.subject = subject;
  r.state = "awaiting_verification";
  r.source = "admin";
  r.received_ms = now;
  if (b.is_object() && b.contains("receivedAt") && b["receivedAt"].is_string()) {
    if (auto t = base::ParseIso8601(b["receivedAt"].get<std::string>())) r.received_ms = *t;
  }
  r.due_ms = r.received_ms + opts_.request_due_ms;
  auto stored = store_->CreateRequest(r);
  if (!stored.ok()) return Error(res, 503, "store unavailable");
  if (!AuditCaller(*c, "requests.add", subject, "ok", Dump(json{{"requestId", stored->id}, {"kind", kind}}), &res)) {
    return;
  }
  Answer(res, 201, RequestJson(*stored, now));
}

void AdminApi::ActOnRequest(const httplib::Request& req, httplib::Response& res, bool approve) {
  std::string action = approve ? "requests.approve" : "requests.reject";
  std::string rid = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
  auto c = Authorize(req, res, action, {"compliance"}, "");
  if (!c) return;
  auto got = store_->GetRequest(rid);
  if (!got.ok()) return Error(res, 503, "store unavailable");
  if (!got->has_value()) {
    if (AuditCaller(*c, action, "", "not_found", Dump(json{{"requestId", rid}}), &res)) {
      Error(res, 404, "no such request");
    }
    return;
  }
  RightsRequest r = std::move(**got);
  const std::string from = r.state;
  if (from != "awaiting_verification") {
    AuditCaller(*c, action, "", "conflict", Dump(json{{"requestId", rid}, {"state", from}}), nullptr);
    return Error(res, 409, "the request is " + from + ", not awaiting_verification");
  }
  // The subject as named: plain, or (already erased) only its hash.
  bool redacted = r.subject.rfind("hash:", 0) == 0;
  std::string subject = redacted ? std::string() : r.subject;
  int64_t now = base::NowMs();
  if (!approve) {
    json b = json::parse(req.body, nullptr, false);
    std::string reason = b.is_object() && b.contains("reason") && b["reason"].is_string()
                             ? b["reason"].get<std::string>()
                             : std::string("rejected");
    auto u = store_->UpdateRequest(rid, from, "rejected", c->token.name, now, Dump(json{{"reason", reason}}));
    if (!u.ok()) return Error(res, 503, "store unavailable");
    if (*u != RequestUpdate::kUpdated) return Error(res, 409, "the request changed meanwhile");
    if (!AuditCaller(*c, action, subject, "ok", Dump(json{{"requestId", rid}}), &res)) return;
    r.state = "rejected";
    r.acted_by = c->token.name;
    r.acted_ms = now;
    r.result = Dump(json{{"reason", reason}});
    return Answer(res, 200, RequestJson(r, now));
  }
  auto u = store_->UpdateRequest(rid, from, "processing", c->token.name, now, "");
  if (!u.ok()) return Error(res, 503, "store unavailable");
  if (*u != RequestUpdate::kUpdated) return Error(res, 409, "the request changed meanwhile");
  json result;
  if (r.kind == "erasure" && !redacted) {
    auto receipt = store_->EraseSubject({r.project, r.subject}, rid);
    if (!receipt.ok()) {
      (void)store_->UpdateRequest(rid, "processing", from, "", 0, "");
      AuditCaller(*c, action, subject, "error", Dump(json{{"requestId", rid}}), nullptr);
      return Error(res, 503, "the erasure failed; nothing was erased");
    }
    result = ReceiptJson(*receipt);
  } else if (r.kind == "erasure") {
    result = {{"note", "the subject had already been erased"}};
  } else {
    result = {{"note", "approved; the " + r.kind + " is carried out with ferryctl subject export/traits"}};
  }
  now = base::NowMs();
  auto done = store_->UpdateRequest(rid, "processing", "completed", c->token.name, now, Dump(result));
  if (!done.ok()) return Error(res, 503, "store unavailable");
  if (!AuditCaller(*c, action, subject, "ok", Dump(json{{"requestId", rid}, {"kind", r.kind}}), &res)) return;
  auto after = store_->GetRequest(rid);
  if (!after.ok() || !after->has_value()) return Error(res, 503, "store unavailable");
  Answer(res, 200, RequestJson(**after, now));
}

void AdminApi::ListAudit(const httplib::Request& req, httplib::Response& res) {
  std::string subject = req.has_param("subject") ? req.get_param_value("subject") : std::string();
  auto c = Authorize(req, res, "audit.list", {"operator", "compliance"}, subject);
  if (!c) return;
  int64_t after = 0;
  size_t limit = 1000;
  if (req.has_param("after")) after = std::strtoll(req.get_param_value("after").c_str(), nullptr, 10);
  if (req.has_param("limit")) {
    long long l = std::strtoll(req.get_param_value("limit").c_str(), nullptr, 10);
    if (l > 0 && l <= 10000) limit = static_cast<size_t>(l);
  }
  auto list = store_->ListAudit(after, limit, subject.empty() ? std::string() : store_->IdHash(subject));
  if (!list.ok()) return Error(res, 503, "store unavailable");
  json out = json::array();
  for (const auto& e : *list) out.push_back(AuditJson(e));
  if (!AuditCaller(*c, "audit.list", subject, "ok", Dump(json{{"count", list->size()}}), &res)) return;
  Answer(res, 200, json{{"entries", out}});
}

void AdminApi::VerifyAudit(const httplib::Request& req, httplib::Response& res) {
  auto c = Authorize(req, res, "audit.verify", {"operator", "compliance"}, "");
  if (!c) return;
  auto v = store_->VerifyAudit();
  if (!v.ok()) return Error(res, 503, "store unavailable");
  json out = {{"ok", v->ok}, {"entries", v->entries}};
  if (!v->ok) {
    out["firstBrokenSeq"] = v->first_broken_seq;
    out["reason"] = v->reason;
  }
  // Recorded after the check, so the verification itself is not part of what it checked.
  if (!AuditCaller(*c, "audit.verify", "", v->ok ? "ok" : "broken", Dump(out), &res)) return;
  Answer(res, 200, out);
}

void AdminApi::CreateWriteKey(const httplib::Request& req, httplib::Response& res) {
  auto c = Authorize(req, res, "keys.create-write-key", {"operator"}, "");
  if (!c) return;
  json b = json::parse(req.body, nullptr, false);
  if (!b.is_object() || !b.contains("project") || !b["project"].is_string()) {
    return Error(res, 400, "body: {\"project\": NAME}");
  }
  std::string project = b["project"].get<std::string>();
  auto key = store_->CreateWriteKey(project);
  if (!key.ok())
    return Error(res, key.status().code() == base::Code::kInvalidArgument ? 400 : 503, key.status().message());
  if (!AuditCaller(*c, "keys.create-write-key", "", "ok",
                   Dump(json{{"project", project}, {"prefix", key->substr(0, 7)}}), &res)) {
    return;
  }
  Answer(res, 201, json{{"project", project}, {"writeKey", *key}});
}

void AdminApi::Forget(const httplib::Request& req, httplib::Response& res) {
  std::string key = Bearer(req);
  if (key.empty()) return Error(res, 401, "missing write key");
  auto info = store_->LookupWriteKey(key);
  if (!info.ok()) return Error(res, 503, "store unavailable");
  if (!info->has_value()) return Error(res, 401, "unknown write key");
  const WriteKeyInfo& project = **info;
  json b = json::parse(req.body, nullptr, false);
  if (!b.is_object()) return Error(res, 400, "body must be {\"anonymousIds\": [...], \"userId\": ...}");
  std::vector<std::string> anon;
  auto a = b.find("anonymousIds");
  if (a != b.end()) {
    if (!a->is_array() || a->size() > kMaxForgetIds) return Error(res, 400, "anonymousIds must be an array of ids");
    for (const auto& v : *a) {
      if (!v.is_string() || v.get_ref<const std::string&>().empty() || v.get_ref<const std::string&>().size() > 200) {
        return Error(res, 400, "each anonymousId is a string of 1-200 bytes");
      }
      anon.push_back(v.get<std::string>());
    }
  }
  std::string user;
  auto u = b.find("userId");
  if (u != b.end() && !u->is_null()) {
    if (!u->is_string() || u->get_ref<const std::string&>().empty() || u->get_ref<const std::string&>().size() > 200) {
      return Error(res, 400, "userId is a string of 1-200 bytes");
    }
    user = u->get<std::string>();
  }
  if (anon.empty() && user.empty()) return Error(res, 400, "nothing to forget: no anonymousIds and no userId");

  int64_t now = base::NowMs();
  RightsRequest r;
  r.kind = "erasure";
  r.project = project.project;
  r.subject = anon.empty() ? user : anon.front();
  r.state = "processing";
  r.source = "device";
  r.received_ms = now;
  r.due_ms = now + opts_.request_due_ms;
  auto stored = store_->CreateRequest(r);
  if (!stored.ok()) return Error(res, 503, "store unavailable");
  auto receipt = store_->EraseAnonymousIds(project.project_id, anon, stored->id);
  if (!receipt.ok()) {
    log_.Error("device erasure failed: " + receipt.status().ToString());
    return Error(res, 503, "the erasure failed; nothing was erased");
  }
  json body = ReceiptJson(*receipt);
  (void)store_->UpdateRequest(stored->id, "processing", "completed", "device", receipt->completed_ms, Dump(body));
  if (!user.empty()) {
    RightsRequest ur;
    ur.kind = "erasure";
    ur.project = project.project;
    ur.subject = user;
    ur.state = "awaiting_verification";
    ur.source = "device";
    ur.received_ms = now;
    ur.due_ms = now + opts_.request_due_ms;
    auto pending = store_->CreateRequest(ur);
    if (!pending.ok()) return Error(res, 503, "store unavailable");
    body["userRequest"] = {{"requestId", pending->id}, {"state", "awaiting_verification"}};
  }
  if (!Audit("device:" + project.project, "", "forget", anon.empty() ? user : anon.front(), "ok",
             Dump(json{{"requestId", stored->id},
                       {"anonymousIds", anon.size()},
                       {"userIdPending", !user.empty()},
                       {"erased", receipt->erased}}),
             &res)) {
    return;
  }
  Answer(res, 200, body);
}

}  // namespace ferry::collector
