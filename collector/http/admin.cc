#include "collector/http/admin.h"

#include <httplib.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>

#include "collector/rights/documents.h"
#include "lib/base/time.h"
#include "lib/wire/auth.h"
#include "lib/wire/event.h"
#include "lib/wire/http_status.h"
#include "lib/wire/json_body.h"

namespace ferry::collector {

namespace {

using nlohmann::json;
using rights::Dump;
using rights::Iso;
constexpr const char* kJson = "application/json";
constexpr size_t kMaxIdBytes = 4096;
constexpr size_t kMaxForgetIds = 1000;

void Answer(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(Dump(body), kJson);
}
// A failure, by its code (the one mapping to HTTP, lib/wire/http_status.h) and its message for people.
void Fail(httplib::Response& res, const base::Status& s) {
  res.status = wire::HttpStatusFor(s.code());
  res.set_content(wire::ErrorBody(s.code(), s.message()), kJson);
}
// A malformed request (400), before the rights service is asked anything.
void BadRequest(httplib::Response& res, const std::string& reason) { Fail(res, base::Status::InvalidArgument(reason)); }

// The body of an admin call as JSON, within the same size and depth limits as ingest (wire::ParseJson); on failure
// the answer (400 or 413) is written and nullopt returned. An empty body is an empty object.
std::optional<json> ParseBody(const httplib::Request& req, httplib::Response& res) {
  if (req.body.empty()) return json::object();
  auto parsed = wire::ParseJson(req.body, wire::BodyLimits());
  if (!parsed.ok()) {
    Fail(res, parsed.status());
    if (parsed.status().code() == base::Code::kResourceExhausted) res.status = 413;
    return std::nullopt;
  }
  return std::move(parsed).value();
}

std::string Bearer(const httplib::Request& req) { return wire::BearerToken(req.get_header_value("Authorization")); }

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
  JsonExport(ChunkWriter& w, const std::string& subject, int64_t now_ms) : w_(w) {
    std::string head = Dump(
        json{{"format", "ferry-subject-export/1"}, {"subject", subject}, {"exportedAt", base::FormatIso8601(now_ms)}});
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
      if (s[i] == '\0') return std::nullopt;  // raw as well as encoded (found by fuzz_admin_body)
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

AdminApi::AdminApi(rights::RightsService* rights, base::Logger log, AdminOptions options, base::Clock* clock)
    : rights_(rights),
      log_(std::move(log)),
      clock_(clock != nullptr ? clock : base::SystemClock()),
      refusals_(options.refusal_rate, options.refusal_burst) {}

bool AdminApi::HasRole(const httplib::Request& req, const std::string& role) {
  return rights_->HasRole(Bearer(req), role);
}

std::optional<rights::Actor> AdminApi::Caller(const httplib::Request& req, httplib::Response& res,
                                              rights::Action action, const std::string& subject) {
  // Refusals are counted per source address (and audited in aggregate by the rights service); a source that keeps
  // being refused is slowed down.
  auto actor = rights_->Authorize(Bearer(req), action, subject, req.remote_addr.empty() ? "?" : req.remote_addr);
  if (actor.ok()) return std::move(actor).value();
  base::Code code = actor.status().code();
  if (code == base::Code::kUnauthenticated || code == base::Code::kPermissionDenied) {
    if (int64_t wait = refusals_.Take(req.remote_addr, clock_->MonotonicMs()); wait > 0) {
      Fail(res, base::Status::ResourceExhausted("too many refused admin calls from this address; retry later"));
      res.status = 429;
      res.set_header("Retry-After", std::to_string(wait));
      return std::nullopt;
    }
  }
  Fail(res, actor.status());
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
  svr.Get("/v1/keys", [this](const httplib::Request& req, httplib::Response& res) { ListKeys(req, res); });
  svr.Post(R"(/v1/keys/(write-keys|admin-tokens)/([0-9]{1,18})/(revoke|expiry))",
           [this](const httplib::Request& req, httplib::Response& res) { ChangeKey(req, res); });
  svr.Post("/v1/forget", [this](const httplib::Request& req, httplib::Response& res) { Forget(req, res); });
}

void AdminApi::Subject(const httplib::Request& req, httplib::Response& res) {
  // Raw target: /v1/subjects/<encoded id>[/export|/erase|/traits][?query]
  std::string target = req.target.substr(0, req.target.find('?'));
  static const std::string kPrefix = "/v1/subjects/";
  if (target.rfind(kPrefix, 0) != 0) return Fail(res, base::Status::NotFound("not found"));
  std::string rest = target.substr(kPrefix.size());
  std::string action;
  size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    action = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  auto id = DecodePathSegment(rest);
  if (!id || id->empty()) return BadRequest(res, "bad subject id in the path");
  if (id->size() > kMaxIdBytes) return BadRequest(res, "subject id too long");
  if (wire::CheckIdText(*id, kMaxIdBytes) == "control character") {
    return BadRequest(res, "invalid subject id: control character");
  }
  SubjectQuery q{req.has_param("project") ? req.get_param_value("project") : std::string(), *id};
  if (req.method == "GET" && action.empty()) return ShowSubject(req, res, q);
  if (req.method == "GET" && action == "export") return ExportSubject(req, res, q);
  if (req.method == "POST" && action == "erase") return EraseSubject(req, res, q);
  if (req.method == "PATCH" && action == "traits") return PatchTraits(req, res, q);
  Fail(res, base::Status::NotFound("not found"));
}

void AdminApi::ShowSubject(const httplib::Request& req, httplib::Response& res, const SubjectQuery& q) {
  auto c = Caller(req, res, rights::Action::kSubjectShow, q.id);
  if (!c) return;
  auto found = rights_->Show(*c, q);
  if (!found.ok()) return Fail(res, found.status());
  json projects = json::array();
  for (const auto& s : *found) projects.push_back(SummaryJson(s));
  Answer(res, 200, json{{"subject", q.id}, {"projects", projects}});
}

void AdminApi::ExportSubject(const httplib::Request& req, httplib::Response& res, const SubjectQuery& q) {
  auto c = Caller(req, res, rights::Action::kSubjectExport, q.id);
  if (!c) return;
  auto registered = rights_->BeginExport(*c, q);
  if (!registered.ok()) return Fail(res, registered.status());
  res.set_header("X-Ferry-Request-Id", registered->id);
  rights::RightsService* rights = rights_;
  base::Logger log = log_;
  res.set_chunked_content_provider(kJson, [rights, log, q](size_t, httplib::DataSink& sink) {
    ChunkWriter w(sink);
    JsonExport doc(w, q.id, rights->NowMs());
    auto r = rights->Export(q, doc);
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
  auto c = Caller(req, res, rights::Action::kSubjectErase, q.id);
  if (!c) return;
  auto receipt = rights_->Erase(*c, q);
  if (!receipt.ok()) return Fail(res, receipt.status());
  Answer(res, 200, rights::ReceiptDocument(*receipt));
}

void AdminApi::PatchTraits(const httplib::Request& req, httplib::Response& res, const SubjectQuery& q) {
  auto c = Caller(req, res, rights::Action::kSubjectCorrect, q.id);
  if (!c) return;
  auto patch = ParseBody(req, res);
  if (!patch) return;
  auto out = rights_->Correct(*c, q, req.body);  // within the limits: checked above
  if (!out.ok()) return Fail(res, out.status());
  json projects = json::array();
  for (const auto& s : out->subjects) projects.push_back(SummaryJson(s));
  Answer(res, 200, json{{"requestId", out->request_id}, {"subject", q.id}, {"projects", projects}});
}

void AdminApi::ListRequests(const httplib::Request& req, httplib::Response& res) {
  auto c = Caller(req, res, rights::Action::kRequestsList, "");
  if (!c) return;
  RequestFilter f;
  int64_t now = rights_->NowMs();
  if (req.has_param("state")) f.state = req.get_param_value("state");
  std::string overdue = req.has_param("overdue") ? req.get_param_value("overdue") : "";
  if (overdue == "1" || overdue == "true") f.overdue_at_ms = now;
  auto list = rights_->ListRequests(*c, f);
  if (!list.ok()) return Fail(res, list.status());
  json out = json::array();
  for (const auto& r : *list) out.push_back(RequestJson(r, now));
  Answer(res, 200, json{{"requests", out}});
}

void AdminApi::AddRequest(const httplib::Request& req, httplib::Response& res) {
  auto c = Caller(req, res, rights::Action::kRequestsAdd, "");
  if (!c) return;
  auto parsed = ParseBody(req, res);
  if (!parsed) return;
  const json& b = *parsed;
  auto str = [&](const char* k) {
    auto it = b.is_object() ? b.find(k) : b.end();
    return (b.is_object() && it != b.end() && it->is_string()) ? it->get<std::string>() : std::string();
  };
  rights::NewRequest in{str("kind"), str("subject"), str("project"), 0};
  if (auto t = base::ParseIso8601(str("receivedAt"))) in.received_ms = *t;
  auto stored = rights_->AddRequest(*c, in);
  if (!stored.ok()) return Fail(res, stored.status());
  Answer(res, 201, RequestJson(*stored, rights_->NowMs()));
}

void AdminApi::ActOnRequest(const httplib::Request& req, httplib::Response& res, bool approve) {
  std::string rid = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
  auto c = Caller(req, res, approve ? rights::Action::kRequestsApprove : rights::Action::kRequestsReject, "");
  if (!c) return;
  base::Result<RightsRequest> done = base::Status::Internal("unset");
  if (approve) {
    done = rights_->Approve(*c, rid);
  } else {
    auto parsed = ParseBody(req, res);
    if (!parsed) return;
    const json& b = *parsed;
    std::string reason = b.is_object() && b.contains("reason") && b["reason"].is_string()
                             ? b["reason"].get<std::string>()
                             : std::string("rejected");
    done = rights_->Reject(*c, rid, reason);
  }
  if (!done.ok()) return Fail(res, done.status());
  Answer(res, 200, RequestJson(*done, rights_->NowMs()));
}

void AdminApi::ListAudit(const httplib::Request& req, httplib::Response& res) {
  std::string subject = req.has_param("subject") ? req.get_param_value("subject") : std::string();
  auto c = Caller(req, res, rights::Action::kAuditList, subject);
  if (!c) return;
  int64_t after = 0;
  size_t limit = 1000;
  if (req.has_param("after")) after = std::strtoll(req.get_param_value("after").c_str(), nullptr, 10);
  if (req.has_param("limit")) {
    long long l = std::strtoll(req.get_param_value("limit").c_str(), nullptr, 10);
    if (l > 0 && l <= 10000) limit = static_cast<size_t>(l);
  }
  auto list = rights_->ListAudit(*c, after, limit, subject);
  if (!list.ok()) return Fail(res, list.status());
  json out = json::array();
  for (const auto& e : *list) out.push_back(AuditJson(e));
  Answer(res, 200, json{{"entries", out}});
}

void AdminApi::VerifyAudit(const httplib::Request& req, httplib::Response& res) {
  auto c = Caller(req, res, rights::Action::kAuditVerify, "");
  if (!c) return;
  auto v = rights_->VerifyAudit(*c);
  if (!v.ok()) return Fail(res, v.status());
  Answer(res, 200, rights::VerifyDocument(*v));
}

void AdminApi::CreateWriteKey(const httplib::Request& req, httplib::Response& res) {
  auto c = Caller(req, res, rights::Action::kKeysCreateWriteKey, "");
  if (!c) return;
  auto parsed = ParseBody(req, res);
  if (!parsed) return;
  const json& b = *parsed;
  if (!b.is_object() || !b.contains("project") || !b["project"].is_string()) {
    return BadRequest(res, "body: {\"project\": NAME}");
  }
  std::string project = b["project"].get<std::string>();
  auto key = rights_->CreateWriteKey(*c, project);
  if (!key.ok()) return Fail(res, key.status());
  Answer(res, 201, json{{"project", project}, {"writeKey", *key}});
}

void AdminApi::ListKeys(const httplib::Request& req, httplib::Response& res) {
  auto c = Caller(req, res, rights::Action::kKeysList, "");
  if (!c) return;
  auto list = rights_->ListCredentials(*c);
  if (!list.ok()) return Fail(res, list.status());
  auto opt_time = [](int64_t ms) { return ms > 0 ? json(Iso(ms)) : json(nullptr); };
  json keys = json::array(), tokens = json::array();
  for (const WriteKeyRecord& k : list->write_keys) {
    keys.push_back({{"id", k.id},
                    {"project", k.project},
                    {"prefix", k.prefix},
                    {"createdAt", Iso(k.created_ms)},
                    {"revokedAt", opt_time(k.revoked_ms)},
                    {"expiresAt", opt_time(k.expires_ms)}});
  }
  for (const AdminTokenInfo& t : list->admin_tokens) {
    tokens.push_back({{"id", t.id},
                      {"name", t.name},
                      {"prefix", t.prefix},
                      {"roles", t.roles},
                      {"createdAt", Iso(t.created_ms)},
                      {"revokedAt", opt_time(t.revoked_ms)},
                      {"expiresAt", opt_time(t.expires_ms)}});
  }
  Answer(res, 200, json{{"writeKeys", keys}, {"adminTokens", tokens}});
}

void AdminApi::ChangeKey(const httplib::Request& req, httplib::Response& res) {
  const bool revoke = req.matches[3] == "revoke";
  auto c = Caller(req, res, revoke ? rights::Action::kKeysRevoke : rights::Action::kKeysExpire, "");
  if (!c) return;
  const auto kind =
      req.matches[1] == "write-keys" ? rights::CredentialKind::kWriteKey : rights::CredentialKind::kAdminToken;
  const int64_t id = std::strtoll(std::string(req.matches[2]).c_str(), nullptr, 10);
  base::Result<bool> done = true;
  int64_t expires_ms = 0;
  if (revoke) {
    done = rights_->RevokeCredential(*c, kind, id);
  } else {
    auto parsed = ParseBody(req, res);
    if (!parsed) return;
    const json& b = *parsed;
    auto at = b.is_object() ? b.find("expiresAt") : b.end();
    if (!b.is_object() || at == b.end() || !(at->is_null() || at->is_string())) {
      return BadRequest(res, "body: {\"expiresAt\": ISO-8601 time or null}");
    }
    if (at->is_string()) {
      auto t = base::ParseIso8601(at->get<std::string>());
      if (!t || *t <= 0) return BadRequest(res, "expiresAt is not an ISO-8601 time after 1970");
      expires_ms = *t;
    }
    done = rights_->ExpireCredential(*c, kind, id, expires_ms);
  }
  if (!done.ok()) return Fail(res, done.status());
  json out = {{"kind", req.matches[1] == "write-keys" ? "write-key" : "admin-token"}, {"id", id}};
  if (revoke) {
    out["revoked"] = true;
  } else {
    out["expiresAt"] = expires_ms > 0 ? json(Iso(expires_ms)) : json(nullptr);
  }
  Answer(res, 200, out);
}

void AdminApi::Forget(const httplib::Request& req, httplib::Response& res) {
  auto project = rights_->AuthorizeDevice(Bearer(req));
  if (!project.ok()) return Fail(res, project.status());
  json b = json::parse(req.body, nullptr, false);
  if (!b.is_object()) return BadRequest(res, "body must be {\"anonymousIds\": [...], \"userId\": ...}");
  std::vector<std::string> anon;
  auto a = b.find("anonymousIds");
  if (a != b.end()) {
    if (!a->is_array() || a->size() > kMaxForgetIds) return BadRequest(res, "anonymousIds must be an array of ids");
    for (const auto& v : *a) {
      if (!v.is_string() || v.get_ref<const std::string&>().empty() || v.get_ref<const std::string&>().size() > 200) {
        return BadRequest(res, "each anonymousId is a string of 1-200 bytes");
      }
      anon.push_back(v.get<std::string>());
    }
  }
  std::string user;
  auto u = b.find("userId");
  if (u != b.end() && !u->is_null()) {
    if (!u->is_string() || u->get_ref<const std::string&>().empty() || u->get_ref<const std::string&>().size() > 200) {
      return BadRequest(res, "userId is a string of 1-200 bytes");
    }
    user = u->get<std::string>();
  }
  if (anon.empty() && user.empty()) return BadRequest(res, "nothing to forget: no anonymousIds and no userId");
  auto out = rights_->Forget(*project, anon, user);
  if (!out.ok()) return Fail(res, out.status());
  json body = rights::ReceiptDocument(out->receipt);
  if (!out->user_request_id.empty()) {
    body["userRequest"] = {{"requestId", out->user_request_id}, {"state", "awaiting_verification"}};
  }
  Answer(res, 200, body);
}

}  // namespace ferry::collector
