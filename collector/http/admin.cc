#include "collector/http/admin.h"

#include <sodium.h>
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>

#include "collector/rights/copy.h"
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

void Answer(HttpResponse& res, int status, const json& body) {
  res.status = status;
  res.set_content(Dump(body), kJson);
}
// A failure, by its code (the one mapping to HTTP, lib/wire/http_status.h) and its message for people.
void Fail(HttpResponse& res, const base::Status& s) {
  res.status = wire::HttpStatusFor(s.code());
  res.set_content(wire::ErrorBody(s.code(), s.message()), kJson);
}
// A malformed request (400), before the rights service is asked anything.
void BadRequest(HttpResponse& res, const std::string& reason) { Fail(res, base::Status::InvalidArgument(reason)); }

// The body of an admin call as JSON, within the same size and depth limits as ingest (wire::ParseJson); on failure
// the answer (400 or 413) is written and nullopt returned. An empty body is an empty object.
std::optional<json> ParseBody(const HttpRequest& req, HttpResponse& res) {
  if (req.body.empty()) return json::object();
  auto parsed = wire::ParseJson(req.body, wire::BodyLimits());
  if (!parsed.ok()) {
    Fail(res, parsed.status());
    if (parsed.status().code() == base::Code::kResourceExhausted) res.status = 413;
    return std::nullopt;
  }
  return std::move(parsed).value();
}

std::string Bearer(const HttpRequest& req) { return wire::BearerToken(req.get_header_value("Authorization")); }

json SummaryJson(const SubjectSummary& s) {
  json ids = json::array();
  for (const auto& i : s.identities) {
    json o = {{"kind", i.kind}, {"id", i.id}, {"source", i.source}};
    if (!i.linked_to.empty()) o["linkedTo"] = i.linked_to;
    if (i.first_seen_ms > 0) o["linkedAt"] = Iso(i.first_seen_ms);
    ids.push_back(std::move(o));
  }
  // Every link into or out of the subject's userIds, with its provenance: whether the walk follows it, who asserted
  // it through which credential and event, and its state (a pending link waits for an officer's confirmation).
  json links = json::array();
  for (const auto& l : s.links) {
    links.push_back({{"linkId", l.id},
                     {"kind", l.kind},
                     {"from", l.from_id},
                     {"to", l.user_id},
                     {"source", l.source},
                     {"state", l.state},
                     {"followed", l.followed},
                     {"credential", l.credential},
                     {"keyId", l.key_id},
                     {"viaMessageId", l.via_message_id},
                     {"viaAnonymousId", l.via_anonymous_id.empty() ? json(nullptr) : json(l.via_anonymous_id)},
                     {"assertedAt", l.asserted_ms > 0 ? json(Iso(l.asserted_ms)) : json(nullptr)},
                     {"linkedAt", l.first_seen_ms > 0 ? json(Iso(l.first_seen_ms)) : json(nullptr)},
                     {"confirmedBy", l.confirmed_by.empty() ? json(nullptr) : json(l.confirmed_by)},
                     {"confirmedAt", l.confirmed_ms > 0 ? json(Iso(l.confirmed_ms)) : json(nullptr)}});
  }
  json consent = json::array();
  for (const auto& c : s.consent)
    consent.push_back({{"purpose", c.purpose}, {"state", c.state}, {"at", Iso(c.timestamp_ms)}});
  json traits = json::parse(s.traits, nullptr, false);
  json out = {{"project", s.project},
              {"userId", s.user_id.empty() ? json(nullptr) : json(s.user_id)},
              {"identities", ids},
              {"links", links},
              {"eventCount", s.event_count},
              {"eventsByType", s.events_by_type},
              {"firstSeen", s.first_seen_ms > 0 ? json(Iso(s.first_seen_ms)) : json(nullptr)},
              {"lastSeen", s.last_seen_ms > 0 ? json(Iso(s.last_seen_ms)) : json(nullptr)},
              {"consent", consent},
              {"traits", traits.is_discarded() ? json::object() : traits}};
  return out;
}

}  // namespace

json RequestJson(const RightsRequest& r, int64_t now) {
  json result = r.result.empty() ? json(nullptr) : json::parse(r.result, nullptr, false);
  if (result.is_discarded()) result = r.result;
  bool open = r.state != "completed" && r.state != "rejected";
  auto member = [&result](const char* k) {
    return result.is_object() && result.contains(k) ? result[k] : json(nullptr);
  };
  return {{"id", r.id},
          {"refusalReason", r.state == "rejected" ? member("reason") : json(nullptr)},
          {"verification", member("verification")},
          {"delivered", member("delivered")},
          {"purposes", member("purposes")},
          {"inForce", member("inForce")},
          {"lifted", member("lifted")},
          {"extension", member("extension")},
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

namespace {

json AuditJson(const AuditEntry& e) {
  return {{"seq", e.seq},       {"time", Iso(e.time_ms)}, {"actor", e.actor},
          {"role", e.role},     {"action", e.action},     {"subjectHash", e.subject_hash},
          {"result", e.result}, {"detail", e.detail},     {"prevHash", e.prev_hash},
          {"hash", e.hash}};
}

// Writes JSON text to a chunked answer in blocks of about 64 KiB.
class ChunkWriter {
 public:
  explicit ChunkWriter(httpd::BodyWriter& sink) : sink_(sink) {}
  bool Put(std::string_view s) {
    buf_.append(s);
    return buf_.size() < 65536 || Flush();
  }
  bool Flush() {
    if (buf_.empty()) return ok_;
    ok_ = ok_ && sink_.Write(buf_);
    buf_.clear();
    return ok_;
  }

 private:
  httpd::BodyWriter& sink_;
  std::string buf_;
  bool ok_ = true;
};

// The export document, written as the store hands the pieces over:
// {"format","subject","exportedAt","projects":[{...summary, "consentHistory":[...], "events":[...]}]}
class JsonExport : public ExportVisitor {
 public:
  // restrictions: those in force over the subject (RightsService::RestrictionsOfSubject): each project lists its
  // own ("restrictions") and every event they cover is marked "restricted": true (the person's own copy keeps them).
  JsonExport(ChunkWriter& w, const std::string& subject, int64_t now_ms,
             std::vector<RestrictionRecord> restrictions = {})
      : w_(w), restrictions_(std::move(restrictions)) {
    std::string head = Dump(
        json{{"format", "ferry-subject-export/1"}, {"subject", subject}, {"exportedAt", base::FormatIso8601(now_ms)}});
    head.pop_back();  // reopen the object
    w_.Put(head);
    w_.Put(",\"projects\":[");
  }
  bool BeginProject(const SubjectSummary& s) override {
    json summary = SummaryJson(s);
    project_ = s.project;
    if (!restrictions_.empty()) {
      json list = json::array();
      for (const RestrictionRecord& r : restrictions_) {
        if (r.project != s.project) continue;
        json one = {{"kind", r.kind},
                    {"purposes", r.purposes.empty() ? json("all") : json(r.purposes)},
                    {"requestId", r.request_id},
                    {"since", base::FormatIso8601(r.since_ms)}};
        if (std::find(list.begin(), list.end(), one) == list.end()) list.push_back(one);
      }
      summary["restrictions"] = list;
    }
    std::string p = Dump(summary);
    p.pop_back();
    consent_n_ = events_n_ = 0;
    in_events_ = false;
    coverage_.Clear();
    return w_.Put(projects_++ ? "," : "") && w_.Put(p) && w_.Put(",\"consentHistory\":[");
  }
  bool Consent(const ConsentRecord& c) override {
    coverage_.Add(c);
    return w_.Put(consent_n_++ ? "," : "") && w_.Put(Dump(rights::ConsentRecordDocument(c)));
  }
  bool Event(const EventRow& e) override {
    ++total_events_;
    if (!in_events_) {
      in_events_ = true;
      if (!w_.Put("],\"events\":[")) return false;
    }
    // The stored body is the event as received (JSON written by the collector at ingest); the export adds
    // "consentProof": which consent record covered it (store/consent_proof.h).
    if (!w_.Put(events_n_++ ? "," : "")) return false;
    std::string proof = Dump(rights::ConsentProofDocument(coverage_.For(e)));
    if (e.body.size() < 2 || e.body.back() != '}') return w_.Put(e.body);
    std::string_view head(e.body.data(), e.body.size() - 1);
    return w_.Put(head) && w_.Put(head.size() > 1 ? ",\"consentProof\":" : "\"consentProof\":") && w_.Put(proof) &&
           w_.Put(Restricted(e) ? ",\"restricted\":true}" : "}");
  }
  // Whether a restriction in force covers the event (its ids and purpose).
  bool Restricted(const EventRow& e) const {
    for (const RestrictionRecord& r : restrictions_) {
      if (r.project != project_ || !r.Covers(e.purpose)) continue;
      if ((!e.user_id.empty() && r.subject_id == e.user_id) ||
          (!e.anonymous_id.empty() && r.subject_id == e.anonymous_id))
        return true;
    }
    return false;
  }
  bool EndProject() override {
    if (!in_events_ && !w_.Put("],\"events\":[")) return false;
    return w_.Put("]}");
  }
  bool Finish() { return w_.Put("]}\n") && w_.Flush(); }
  int64_t total_events() const { return total_events_; }

 private:
  ChunkWriter& w_;
  int64_t total_events_ = 0;
  int projects_ = 0;
  int64_t consent_n_ = 0, events_n_ = 0;
  bool in_events_ = false;
  ConsentCoverage coverage_;  // the project's consent records, for each event's proof
  std::vector<RestrictionRecord> restrictions_;
  std::string project_;
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
      refusals_(options.refusal_rate, options.refusal_burst),
      insight_(options.insight),
      registry_(options.registry),
      copy_link_ttl_ms_(options.copy_link_ttl_ms),
      device_filings_(options.device_request_rate, options.device_request_burst),
      key_filings_(options.device_key_request_rate, options.device_key_request_burst),
      device_calls_(1, 30) {}

bool AdminApi::HasRole(const HttpRequest& req, const std::string& role) { return rights_->HasRole(Bearer(req), role); }

std::optional<rights::Actor> AdminApi::Caller(const HttpRequest& req, HttpResponse& res, rights::Action action,
                                              const std::string& subject) {
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

void AdminApi::Register(httpd::Router& svr) {
  // Subject routes are matched on the decoded path, but the id is taken from the raw target so an id may hold an
  // encoded '/'.
  auto subject = Adapt([this](const HttpRequest& req, HttpResponse& res) { Subject(req, res); });
  svr.Get("/v1/subjects/{rest*}", subject);
  svr.Post("/v1/subjects/{rest*}", subject);
  svr.Patch("/v1/subjects/{rest*}", subject);
  svr.Get("/v1/requests", Adapt([this](const HttpRequest& req, HttpResponse& res) { ListRequests(req, res); }));
  svr.Post("/v1/requests", Adapt([this](const HttpRequest& req, HttpResponse& res) { AddRequest(req, res); }));
  svr.Post("/v1/requests/{id}/approve",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { ActOnRequest(req, res, true); }));
  svr.Post("/v1/requests/{id}/reject",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { ActOnRequest(req, res, false); }));
  svr.Post("/v1/requests/{id}/complete",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { CompleteRequest(req, res); }));
  svr.Get("/v1/requests/{id}/copy",
          Adapt([this](const HttpRequest& req, HttpResponse& res) { DeliverCopy(req, res); }));
  svr.Get("/v1/requests/stats", Adapt([this](const HttpRequest& req, HttpResponse& res) { RequestStats(req, res); }));
  svr.Post("/v1/requests/{id}/lift",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { LiftRequest(req, res); }));
  svr.Get("/v1/projects/{project}/restriction-mode",
          Adapt([this](const HttpRequest& req, HttpResponse& res) { RestrictionModeRoute(req, res, false); }));
  svr.Put("/v1/projects/{project}/restriction-mode",
          Adapt([this](const HttpRequest& req, HttpResponse& res) { RestrictionModeRoute(req, res, true); }));
  svr.Get("/v1/audit", Adapt([this](const HttpRequest& req, HttpResponse& res) { ListAudit(req, res); }));
  svr.Get("/v1/audit/verify", Adapt([this](const HttpRequest& req, HttpResponse& res) { VerifyAudit(req, res); }));
  svr.Post("/v1/keys/write-keys",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { CreateWriteKey(req, res, false); }));
  svr.Post("/v1/keys/server-keys",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { CreateWriteKey(req, res, true); }));
  svr.Post("/v1/links/{id}/confirm",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { ConfirmLink(req, res); }));
  svr.Get("/v1/keys", Adapt([this](const HttpRequest& req, HttpResponse& res) { ListKeys(req, res); }));
  svr.Post("/v1/keys/{kind}/{id}/{op}",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { ChangeKey(req, res); }));
  svr.Post("/v1/forget", Adapt([this](const HttpRequest& req, HttpResponse& res) { Forget(req, res); }));
  svr.Post("/v1/suppression", Adapt([this](const HttpRequest& req, HttpResponse& res) { Suppression(req, res); }));
  svr.Post("/v1/device/requests",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { FileDeviceRequest(req, res); }));
  svr.Post("/v1/device/requests/{id}/status",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { DeviceRequestStatus(req, res); }));
  svr.Post("/v1/device/requests/{id}/copy-link",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { DeviceCopyLink(req, res); }));
  // A one-time link works by itself (the token is the credential): POST for the SDK's transport, GET for a browser.
  svr.Post("/v1/copies/{id}/{token}",
           Adapt([this](const HttpRequest& req, HttpResponse& res) { CopyByLink(req, res); }));
  svr.Get("/v1/copies/{id}/{token}",
          Adapt([this](const HttpRequest& req, HttpResponse& res) { CopyByLink(req, res); }));
  svr.Get("/v1/whoami", Adapt([this](const HttpRequest& req, HttpResponse& res) { WhoAmI(req, res); }));
}

void AdminApi::Subject(const HttpRequest& req, HttpResponse& res) {
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
  if (req.method == "GET" && action == "events") return SubjectEvents(req, res, q);
  // events/{messageId}/consent: which consent record covered one of the subject's events.
  static const std::string kEvents = "events/", kConsent = "/consent";
  if (req.method == "GET" && action.size() > kEvents.size() + kConsent.size() && action.rfind(kEvents, 0) == 0 &&
      action.compare(action.size() - kConsent.size(), kConsent.size(), kConsent) == 0) {
    auto mid = DecodePathSegment(action.substr(kEvents.size(), action.size() - kEvents.size() - kConsent.size()));
    if (!mid || mid->empty() || mid->size() > kMaxIdBytes) {
      return BadRequest(res, "bad messageId in the path");
    }
    return EventConsent(req, res, q, *mid);
  }
  if (req.method == "POST" && action == "erase") return EraseSubject(req, res, q);
  if (req.method == "PATCH" && action == "traits") return PatchTraits(req, res, q);
  Fail(res, base::Status::NotFound("not found"));
}

void AdminApi::ShowSubject(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q) {
  auto c = Caller(req, res, rights::Action::kSubjectShow, q.id);
  if (!c) return;
  auto found = rights_->Show(*c, q);
  if (!found.ok()) return Fail(res, found.status());
  // Whether the subject is a minor in each project, and who said so (issue 12 item 8).
  auto minors = rights_->MinorStatesOf(q);
  if (!minors.ok()) return Fail(res, minors.status());
  json projects = json::array();
  for (const auto& s : *found) {
    json one = SummaryJson(s);
    one["minor"] = rights::MinorStateJson(rights::MinorState{s.project, false, {}, {}});
    for (const rights::MinorState& m : *minors) {
      if (m.project == s.project) one["minor"] = rights::MinorStateJson(m);
    }
    projects.push_back(std::move(one));
  }
  Answer(res, 200, json{{"subject", q.id}, {"projects", projects}});
}

void AdminApi::ExportSubject(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q) {
  auto c = Caller(req, res, rights::Action::kSubjectExport, q.id);
  if (!c) return;
  // The copy's form: JSON (default; docs/schema/export.schema.json), a readable HTML page or a CSV of events, in
  // English or Simplified Chinese (rights/copy.h).
  auto format = rights::ParseCopyFormat(req.has_param("format") ? req.get_param_value("format") : "json");
  if (!format) return BadRequest(res, "format must be json, html or csv");
  auto lang = rights::ParseLang(req.has_param("lang") ? req.get_param_value("lang") : "en");
  if (!lang) return BadRequest(res, "lang must be en or zh-CN");
  std::map<std::string, rights::RegistryContext> registries;
  if (*format == rights::CopyFormat::kHtml && registry_ != nullptr) {
    auto loaded = registry_->Contexts(q.project.empty() ? std::vector<std::string>() : std::vector{q.project});
    if (!loaded.ok()) return Fail(res, loaded.status());
    registries = std::move(loaded).value();
  }
  // An officer's lookup: audited, not a request (an access request's copy is GET /v1/requests/{id}/copy).
  if (auto looked = rights_->BeginLookup(*c, q); !looked.ok()) return Fail(res, looked);
  rights::RightsService* rights = rights_;
  base::Logger log = log_;
  if (*format != rights::CopyFormat::kJson) {
    auto f = *format;
    auto l = *lang;
    auto regs = std::make_shared<std::map<std::string, rights::RegistryContext>>(std::move(registries));
    res.set_chunked_content_provider(rights::CopyContentType(f), [rights, log, q, f, l, regs](httpd::BodyWriter& sink) {
      ChunkWriter w(sink);
      rights::TextSink put = [&w](std::string_view s) { return w.Put(s); };
      bool ok = false;
      if (f == rights::CopyFormat::kHtml) {
        rights::HtmlCopy doc(put, q.id, rights->NowMs(), l, std::move(*regs));
        auto r = rights->Export(q, doc);
        if (!r.ok()) {
          log.Warn("export stopped: " + r.status().ToString());
          return false;
        }
        ok = doc.Finish();
      } else {
        rights::CsvCopy doc(put);
        auto r = rights->Export(q, doc);
        if (!r.ok()) {
          log.Warn("export stopped: " + r.status().ToString());
          return false;
        }
        ok = doc.Finish();
      }
      return ok && w.Flush();
    });
    return;
  }
  auto restricted = rights_->RestrictionsOfSubject(q);
  if (!restricted.ok()) return Fail(res, restricted.status());
  std::vector<RestrictionRecord> in_force = std::move(restricted).value();
  res.set_chunked_content_provider(kJson, [rights, log, q, in_force](httpd::BodyWriter& sink) {
    ChunkWriter w(sink);
    JsonExport doc(w, q.id, rights->NowMs(), in_force);
    auto r = rights->Export(q, doc);
    if (!r.ok()) {
      // The answer has started: end it unfinished, so the client sees a broken document rather than a short one.
      log.Warn("export stopped: " + r.status().ToString());
      return false;
    }
    return doc.Finish();
  });
}

void AdminApi::SubjectEvents(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q) {
  auto c = Caller(req, res, rights::Action::kSubjectEvents, q.id);
  if (!c) return;
  int64_t offset = 0;
  size_t limit = 50;
  if (req.has_param("offset"))
    offset = std::max<int64_t>(0, std::strtoll(req.get_param_value("offset").c_str(), nullptr, 10));
  if (req.has_param("limit")) {
    long long l = std::strtoll(req.get_param_value("limit").c_str(), nullptr, 10);
    if (l < 1 || l > 500) return BadRequest(res, "limit must be 1 to 500");
    limit = static_cast<size_t>(l);
  }
  auto page = rights_->ListEvents(*c, q, offset, limit);
  if (!page.ok()) return Fail(res, page.status());
  json events = json::array();
  for (const auto& e : page->events) {
    json body = json::parse(e.body, nullptr, false);
    events.push_back({{"project", e.project},
                      {"messageId", e.message_id},
                      {"type", e.type},
                      {"name", e.name.empty() ? json(nullptr) : json(e.name)},
                      {"userId", e.user_id.empty() ? json(nullptr) : json(e.user_id)},
                      {"anonymousId", e.anonymous_id.empty() ? json(nullptr) : json(e.anonymous_id)},
                      {"purpose", e.purpose},
                      {"timestamp", Iso(e.timestamp_ms)},
                      {"receivedAt", Iso(e.received_ms)},
                      {"event", body.is_discarded() ? json(e.body) : body}});
  }
  Answer(res, 200,
         json{{"subject", q.id}, {"offset", offset}, {"limit", limit}, {"events", events}, {"more", page->more}});
}

void AdminApi::EventConsent(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q,
                            const std::string& message_id) {
  auto c = Caller(req, res, rights::Action::kSubjectEventConsent, q.id);
  if (!c) return;
  auto found = rights_->EventConsentOf(*c, q, message_id);
  if (!found.ok()) return Fail(res, found.status());
  json out = rights::ConsentProofDocument(found->proof);
  out["subject"] = q.id;
  out["project"] = found->event.project;
  out["messageId"] = found->event.message_id;
  out["type"] = found->event.type;
  out["purpose"] = found->event.purpose;
  out["timestamp"] = Iso(found->event.timestamp_ms);
  Answer(res, 200, out);
}

void AdminApi::EraseSubject(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q) {
  auto c = Caller(req, res, rights::Action::kSubjectErase, q.id);
  if (!c) return;
  auto parsed = ParseBody(req, res);
  if (!parsed) return;
  auto flag = [&parsed](const char* k) {
    return parsed->is_object() && parsed->contains(k) && (*parsed)[k].is_boolean() && (*parsed)[k].get<bool>();
  };
  rights::EraseOptions o;
  o.dry_run = flag("dryRun");
  o.force = flag("force");
  auto receipt = rights_->Erase(*c, q, o);
  if (!receipt.ok()) return Fail(res, receipt.status());
  json doc = rights::ReceiptDocument(*receipt);
  if (o.dry_run) doc["dryRun"] = true;
  Answer(res, 200, doc);
}

void AdminApi::PatchTraits(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q) {
  auto c = Caller(req, res, rights::Action::kSubjectCorrect, q.id);
  if (!c) return;
  auto patch = ParseBody(req, res);
  if (!patch) return;
  auto out = rights_->Correct(*c, q, req.body);  // within the limits: checked above
  if (!out.ok()) return Fail(res, out.status());
  json projects = json::array();
  for (const auto& s : out->subjects) projects.push_back(SummaryJson(s));
  Answer(res, 200,
         json{{"requestId", out->request_id},
              {"subject", q.id},
              {"projects", projects},
              {"eventsRewritten", out->events_rewritten}});
}

void AdminApi::ListRequests(const HttpRequest& req, HttpResponse& res) {
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

void AdminApi::AddRequest(const HttpRequest& req, HttpResponse& res) {
  auto c = Caller(req, res, rights::Action::kRequestsAdd, "");
  if (!c) return;
  auto parsed = ParseBody(req, res);
  if (!parsed) return;
  const json& b = *parsed;
  auto str = [&](const char* k) {
    auto it = b.is_object() ? b.find(k) : b.end();
    return (b.is_object() && it != b.end() && it->is_string()) ? it->get<std::string>() : std::string();
  };
  rights::NewRequest in{str("kind"), str("subject"), str("project"), 0, str("state")};
  std::vector<std::string> purposes;
  if (b.is_object() && b.contains("purposes")) {
    const json& p = b["purposes"];
    bool ok = p.is_array() && p.size() <= 64;
    for (const auto& one : ok ? p : json::array()) {
      ok = ok && one.is_string();
      if (ok) purposes.push_back(one.get<std::string>());
    }
    // Not an array of names: an empty name, which the service refuses (and audits) like any other bad purpose.
    if (!ok) purposes = {std::string()};
  }
  if (!str("receivedAt").empty()) {
    auto t = base::ParseIso8601(str("receivedAt"));
    if (!t || *t <= 0) return BadRequest(res, "receivedAt is not an ISO-8601 time after 1970");
    in.received_ms = *t;
  }
  auto stored = rights_->AddRequest(*c, in, purposes);
  if (!stored.ok()) return Fail(res, stored.status());
  Answer(res, 201, RequestJson(*stored, rights_->NowMs()));
}

void AdminApi::ActOnRequest(const HttpRequest& req, HttpResponse& res, bool approve) {
  std::string rid = req.path_param("id");
  auto c = Caller(req, res, approve ? rights::Action::kRequestsApprove : rights::Action::kRequestsReject, "");
  if (!c) return;
  base::Result<RightsRequest> done = base::Status::Internal("unset");
  if (approve) {
    auto parsed = ParseBody(req, res);
    if (!parsed) return;
    const json& b = *parsed;
    rights::Verification v;
    auto it = b.is_object() ? b.find("verification") : b.end();
    if (b.is_object() && it != b.end() && !it->is_null()) {
      auto text = [&it](const char* k) {
        auto f = it->find(k);
        return f != it->end() && f->is_string() ? f->get<std::string>() : std::string();
      };
      if (!it->is_object()) return BadRequest(res, "verification: {\"method\": ..., \"reference\": ...}");
      v.method = text("method");
      v.reference = text("reference");
      if (v.method.size() > 200 || v.reference.size() > 1000) return BadRequest(res, "verification too long");
    }
    done = rights_->Approve(*c, rid, v);
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

void AdminApi::CompleteRequest(const HttpRequest& req, HttpResponse& res) {
  auto c = Caller(req, res, rights::Action::kRequestsComplete, "");
  if (!c) return;
  auto parsed = ParseBody(req, res);
  if (!parsed) return;
  const json& b = *parsed;
  std::string note = b.is_object() && b.contains("note") && b["note"].is_string() ? b["note"].get<std::string>() : "";
  auto done = rights_->Complete(*c, req.path_param("id"), note);
  if (!done.ok()) return Fail(res, done.status());
  Answer(res, 200, RequestJson(*done, rights_->NowMs()));
}

void AdminApi::DeliverCopy(const HttpRequest& req, HttpResponse& res) {
  auto c = Caller(req, res, rights::Action::kRequestsDeliver, "");
  if (!c) return;
  auto r = rights_->BeginDelivery(*c, req.path_param("id"));
  if (!r.ok()) return Fail(res, r.status());
  StreamCopy(res, *r, *c);
}

void AdminApi::StreamCopy(HttpResponse& res, const RightsRequest& r, const rights::Actor& actor) {
  res.set_header("X-Ferry-Request-Id", r.id);
  rights::RightsService* rights = rights_;
  base::Logger log = log_;
  const SubjectQuery q{r.project, r.subject};
  const std::string rid = r.id;
  // The person's own copy keeps what is restricted, marked as such.
  auto restricted = rights_->RestrictionsOfSubject(q);
  if (!restricted.ok()) return Fail(res, restricted.status());
  std::vector<RestrictionRecord> in_force = std::move(restricted).value();
  res.set_chunked_content_provider(kJson, [rights, log, q, rid, actor, in_force](httpd::BodyWriter& sink) {
    ChunkWriter w(sink);
    JsonExport doc(w, q.id, rights->NowMs(), in_force);
    auto exported = rights->Export(q, doc);
    if (!exported.ok() || !doc.Finish()) {
      log.Warn("copy of " + rid + " not delivered in full; the request stays open");
      return false;
    }
    // Written out in full: the request is delivered, so completed.
    auto done = rights->Delivered(actor, rid, doc.total_events());
    if (!done.ok()) log.Error("copy of " + rid + " delivered but not recorded: " + done.status().ToString());
    return true;
  });
}

void AdminApi::LiftRequest(const HttpRequest& req, HttpResponse& res) {
  auto c = Caller(req, res, rights::Action::kRequestsLift, "");
  if (!c) return;
  auto parsed = ParseBody(req, res);
  if (!parsed) return;
  const json& b = *parsed;
  std::string reason =
      b.is_object() && b.contains("reason") && b["reason"].is_string() ? b["reason"].get<std::string>() : std::string();
  if (reason.size() > 1000) return BadRequest(res, "reason too long");
  auto done = rights_->Lift(*c, req.path_param("id"), reason);
  if (!done.ok()) return Fail(res, done.status());
  Answer(res, 200, RequestJson(*done, rights_->NowMs()));
}

void AdminApi::RestrictionModeRoute(const HttpRequest& req, HttpResponse& res, bool set) {
  auto c = Caller(req, res, rights::Action::kRestrictionMode, "");
  if (!c) return;
  const std::string project = req.path_param("project");
  base::Result<std::string> mode = base::Status::Internal("unset");
  if (set) {
    auto parsed = ParseBody(req, res);
    if (!parsed) return;
    const json& b = *parsed;
    mode = rights_->SetRestrictionMode(
        *c, project, b.is_object() && b.contains("mode") && b["mode"].is_string() ? b["mode"].get<std::string>() : "");
  } else {
    mode = rights_->RestrictionMode(*c, project);
  }
  if (!mode.ok()) return Fail(res, mode.status());
  Answer(res, 200, json{{"project", project}, {"mode", *mode}});
}

void AdminApi::RequestStats(const HttpRequest& req, HttpResponse& res) {
  auto c = Caller(req, res, rights::Action::kRequestsStats, "");
  if (!c) return;
  auto st = rights_->Stats(*c);
  if (!st.ok()) return Fail(res, st.status());
  Answer(res, 200,
         json{{"total", st->total},
              {"byKind", st->by_kind},
              {"byState", st->by_state},
              {"lateness",
               {{"openOverdue", st->open_overdue},
                {"openOnTime", st->open_on_time},
                {"closedLate", st->closed_late},
                {"closedOnTime", st->closed_on_time}}}});
}

void AdminApi::ListAudit(const HttpRequest& req, HttpResponse& res) {
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

void AdminApi::VerifyAudit(const HttpRequest& req, HttpResponse& res) {
  auto c = Caller(req, res, rights::Action::kAuditVerify, "");
  if (!c) return;
  auto v = rights_->VerifyAudit(*c);
  if (!v.ok()) return Fail(res, v.status());
  Answer(res, 200, rights::VerifyDocument(*v));
}

void AdminApi::CreateWriteKey(const HttpRequest& req, HttpResponse& res, bool server) {
  auto c = Caller(req, res, server ? rights::Action::kKeysCreateServerKey : rights::Action::kKeysCreateWriteKey, "");
  if (!c) return;
  auto parsed = ParseBody(req, res);
  if (!parsed) return;
  const json& b = *parsed;
  if (!b.is_object() || !b.contains("project") || !b["project"].is_string()) {
    return BadRequest(res, "body: {\"project\": NAME}");
  }
  std::string project = b["project"].get<std::string>();
  auto key = server ? rights_->CreateServerKey(*c, project) : rights_->CreateWriteKey(*c, project);
  if (!key.ok()) return Fail(res, key.status());
  Answer(res, 201, json{{"project", project}, {server ? "serverKey" : "writeKey", *key}});
}

void AdminApi::ConfirmLink(const HttpRequest& req, HttpResponse& res) {
  auto c = Caller(req, res, rights::Action::kLinksConfirm, "");
  if (!c) return;
  // Link ids are positive 64-bit row ids: 1 to 18 digits; anything else names no link.
  const std::string raw = req.path_param("id");
  if (raw.empty() || raw.size() > 18 || raw.find_first_not_of("0123456789") != std::string::npos) {
    return Fail(res, base::Status::NotFound("no such link"));
  }
  int64_t id = std::strtoll(raw.c_str(), nullptr, 10);
  auto link = rights_->ConfirmLink(*c, id);
  if (!link.ok()) return Fail(res, link.status());
  Answer(res, 200,
         json{{"linkId", link->id},
              {"kind", link->kind},
              {"from", link->from_id},
              {"to", link->user_id},
              {"state", link->state},
              {"confirmedBy", link->confirmed_by},
              {"confirmedAt", Iso(link->confirmed_ms)}});
}

void AdminApi::LimitForgets(double rate_per_s, double burst, base::Clock* clock) {
  forget_limiter_ = std::make_unique<RateLimiter>(rate_per_s, burst);
  clock_ = clock;
}

void AdminApi::ListKeys(const HttpRequest& req, HttpResponse& res) {
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
                    {"kind", k.kind},
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

void AdminApi::ChangeKey(const HttpRequest& req, HttpResponse& res) {
  // /v1/keys/{write-keys|admin-tokens}/{id: 1-18 digits}/{revoke|expiry}; anything else names nothing (404).
  const std::string kind_name = req.path_param("kind"), raw_id = req.path_param("id"), op = req.path_param("op");
  if ((kind_name != "write-keys" && kind_name != "admin-tokens") || (op != "revoke" && op != "expiry") ||
      raw_id.empty() || raw_id.size() > 18 || raw_id.find_first_not_of("0123456789") != std::string::npos) {
    return Fail(res, base::Status::NotFound("no such route"));
  }
  const bool revoke = op == "revoke";
  auto c = Caller(req, res, revoke ? rights::Action::kKeysRevoke : rights::Action::kKeysExpire, "");
  if (!c) return;
  const auto kind = kind_name == "write-keys" ? rights::CredentialKind::kWriteKey : rights::CredentialKind::kAdminToken;
  const int64_t id = std::strtoll(raw_id.c_str(), nullptr, 10);
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
  json out = {{"kind", kind_name == "write-keys" ? "write-key" : "admin-token"}, {"id", id}};
  if (revoke) {
    out["revoked"] = true;
  } else {
    out["expiresAt"] = expires_ms > 0 ? json(Iso(expires_ms)) : json(nullptr);
  }
  Answer(res, 200, out);
}

void AdminApi::Forget(const HttpRequest& req, HttpResponse& res) {
  const std::string key = Bearer(req);
  auto project = rights_->AuthorizeDevice(key);
  if (!project.ok()) return Fail(res, project.status());
  if (int64_t wait = forget_limiter_->Take(key, clock_->MonotonicMs()); wait > 0) {
    Fail(res, base::Status::ResourceExhausted("too many forget requests for this key"));
    res.set_header("Retry-After", std::to_string(wait));
    return;
  }
  auto parsed = ParseBody(req, res);  // the same size and depth limits as every admin body
  if (!parsed) return;
  const json& b = *parsed;
  if (!b.is_object()) return BadRequest(res, "body must be {\"anonymousIds\": [...], \"userId\": ...}");
  std::vector<std::string> anon;
  auto a = b.find("anonymousIds");
  if (a != b.end()) {
    if (!a->is_array() || a->size() > kMaxForgetIds) return BadRequest(res, "anonymousIds must be an array of ids");
    for (const auto& v : *a) {
      if (!v.is_string() || v.get_ref<const std::string&>().empty() ||
          !wire::IsValidIdText(v.get_ref<const std::string&>(), 200)) {
        return BadRequest(res, "each anonymousId is a string of 1-200 bytes without control characters");
      }
      anon.push_back(v.get<std::string>());
    }
  }
  std::string user;
  auto u = b.find("userId");
  if (u != b.end() && !u->is_null()) {
    if (!u->is_string() || u->get_ref<const std::string&>().empty() ||
        !wire::IsValidIdText(u->get_ref<const std::string&>(), 200)) {
      return BadRequest(res, "userId is a string of 1-200 bytes without control characters");
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

// ---- Requests filed by a device ----

namespace {

// A request as its device sees it: no subject, no officer's names, no evidence.
json DeviceRequestJson(const RightsRequest& r) {
  json result = json::parse(r.result.empty() ? "{}" : r.result, nullptr, false);
  const bool copy = r.kind == "access" || r.kind == "portability";
  const bool ready = copy && (r.state == "in_progress" || r.state == "extended") && r.subject.rfind("hash:", 0) != 0;
  json reason = r.state == "rejected" && result.is_object() && result.contains("reason") ? result["reason"] : json();
  // An extension is told to the person (GDPR art. 12(3)): the reason, the days and the due date it replaced; not who.
  json extension;
  if (result.is_object() && result.contains("extension") && result["extension"].is_object()) {
    const json& e = result["extension"];
    extension = {{"reason", e.value("reason", json())},
                 {"days", e.value("days", json())},
                 {"previousDue", e.value("previousDue", json())},
                 {"at", e.value("at", json())}};
  }
  return {{"reference", r.id},
          {"kind", r.kind},
          {"state", r.state},
          {"receivedAt", Iso(r.received_ms)},
          {"dueAt", Iso(r.due_ms)},
          {"refusalReason", reason},
          {"extension", extension},
          {"copyReady", ready},
          {"delivered", result.is_object() && result.contains("delivered")}};
}

// Request ids are "req_" and 24 hex digits; link tokens 64 hex digits.
bool IsHexText(const std::string& s, size_t n) {
  return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}
bool IsRequestId(const std::string& s) { return s.rfind("req_", 0) == 0 && IsHexText(s.substr(4), 24); }

}  // namespace

std::optional<std::pair<WriteKeyInfo, std::string>> AdminApi::DeviceCaller(const HttpRequest& req, HttpResponse& res) {
  const std::string rid = req.path_param("id");
  if (!IsRequestId(rid)) {
    Fail(res, base::Status::NotFound("no such request"));
    return std::nullopt;
  }
  if (int64_t wait = device_calls_.Take(rid, clock_->MonotonicMs()); wait > 0) {
    Fail(res, base::Status::ResourceExhausted("too many calls about this request"));
    res.set_header("Retry-After", std::to_string(wait));
    return std::nullopt;
  }
  auto project = rights_->AuthorizeDevice(Bearer(req));
  if (!project.ok()) {
    Fail(res, project.status());
    return std::nullopt;
  }
  auto parsed = ParseBody(req, res);
  if (!parsed) return std::nullopt;
  const json& b = *parsed;
  auto c = b.is_object() ? b.find("claim") : b.end();
  if (!b.is_object() || c == b.end() || !c->is_string()) {
    BadRequest(res, "body must be {\"claim\": the 64 hex digits given when the request was filed}");
    return std::nullopt;
  }
  return std::make_pair(*project, c->get<std::string>());
}

void AdminApi::FileDeviceRequest(const HttpRequest& req, HttpResponse& res) {
  const std::string key = Bearer(req);
  auto project = rights_->AuthorizeDevice(key);
  if (!project.ok()) return Fail(res, project.status());
  auto parsed = ParseBody(req, res);  // the same size and depth limits as every admin body
  if (!parsed) return;
  const json& b = *parsed;
  if (!b.is_object() || !b.contains("kind") || !b["kind"].is_string() || !b.contains("claim") ||
      !b["claim"].is_string() || !b.contains("anonymousIds") || !b["anonymousIds"].is_array()) {
    return BadRequest(res, "body must be {\"kind\": ..., \"anonymousIds\": [...], \"claim\": 64 hex digits}");
  }
  rights::DeviceFiling f;
  f.kind = b["kind"].get<std::string>();
  f.claim = b["claim"].get<std::string>();
  const json& a = b["anonymousIds"];
  if (a.empty() || a.size() > 100) return BadRequest(res, "anonymousIds must hold 1-100 ids");
  for (const auto& v : a) {
    if (!v.is_string() || v.get_ref<const std::string&>().empty() ||
        !wire::IsValidIdText(v.get_ref<const std::string&>(), 200)) {
      return BadRequest(res, "each anonymousId is a string of 1-200 bytes without control characters");
    }
    f.anonymous_ids.push_back(v.get<std::string>());
  }
  // Per write key (which is public) and per device: one device cannot use up another's filings.
  const int64_t now = clock_->MonotonicMs();
  int64_t wait = key_filings_.Take(key, now);
  if (wait == 0) wait = device_filings_.Take(key + "\n" + f.anonymous_ids.front(), now);
  if (wait > 0) {
    Fail(res, base::Status::ResourceExhausted("too many requests from this device"));
    res.set_header("Retry-After", std::to_string(wait));
    return;
  }
  auto filed = rights_->FileDeviceRequest(*project, f);
  sodium_memzero(f.claim.data(), f.claim.size());
  if (!filed.ok()) return Fail(res, filed.status());
  json out = DeviceRequestJson(filed->request);
  out["folded"] = filed->folded;
  Answer(res, filed->folded ? 200 : 201, out);
}

void AdminApi::DeviceRequestStatus(const HttpRequest& req, HttpResponse& res) {
  const std::string rid = req.path_param("id");
  auto caller = DeviceCaller(req, res);
  if (!caller) return;
  auto r = rights_->DeviceRequest(caller->first, rid, caller->second);
  sodium_memzero(caller->second.data(), caller->second.size());
  if (!r.ok()) return Fail(res, r.status());
  res.set_header("Cache-Control", "no-store");
  Answer(res, 200, DeviceRequestJson(*r));
}

void AdminApi::DeviceCopyLink(const HttpRequest& req, HttpResponse& res) {
  const std::string rid = req.path_param("id");
  auto caller = DeviceCaller(req, res);
  if (!caller) return;
  auto link = rights_->IssueCopyLink(caller->first, rid, caller->second, copy_link_ttl_ms_);
  sodium_memzero(caller->second.data(), caller->second.size());
  if (!link.ok()) return Fail(res, link.status());
  res.set_header("Cache-Control", "no-store");
  Answer(res, 201,
         json{{"url", "/v1/copies/" + rid + "/" + link->token}, {"expiresAt", Iso(link->expires_ms)}, {"uses", 1}});
  sodium_memzero(link->token.data(), link->token.size());
}

void AdminApi::CopyByLink(const HttpRequest& req, HttpResponse& res) {
  const std::string rid = req.path_param("id"), token = req.path_param("token");
  if (!IsRequestId(rid) || !IsHexText(token, 64)) {
    return Fail(res, base::Status::NotFound("this link is unknown, used or expired"));
  }
  auto r = rights_->RedeemCopyLink(rid, token);
  if (!r.ok()) return Fail(res, r.status());
  res.set_header("Cache-Control", "no-store");
  res.set_header("Content-Disposition", "attachment; filename=\"" + r->id + ".json\"");
  StreamCopy(res, *r, rights::RightsService::LinkActor(*r));
}

// POST /v1/suppression (server key): {"ids": [...]} -> {"ids": [{"id", "suppressed", "since"}]}.
void AdminApi::Suppression(const HttpRequest& req, HttpResponse& res) {
  const std::string key = Bearer(req);
  auto project = rights_->AuthorizeDevice(key);
  if (!project.ok()) return Fail(res, project.status());
  auto parsed = ParseBody(req, res);  // the same size and depth limits as every admin body
  if (!parsed) return;
  const json& b = *parsed;
  auto ids = b.is_object() ? b.find("ids") : b.end();
  if (!b.is_object() || ids == b.end() || !ids->is_array() || ids->empty() || ids->size() > kMaxForgetIds) {
    return BadRequest(res, "body must be {\"ids\": [1-" + std::to_string(kMaxForgetIds) + " ids]}");
  }
  std::vector<std::string> list;
  for (const auto& v : *ids) {
    if (!v.is_string() || v.get_ref<const std::string&>().empty() ||
        !wire::IsValidIdText(v.get_ref<const std::string&>(), 200)) {
      return BadRequest(res, "each id is a string of 1-200 bytes without control characters");
    }
    list.push_back(v.get<std::string>());
  }
  auto out = rights_->SuppressionOf(*project, list);
  if (!out.ok()) return Fail(res, out.status());
  json answer = json::array();
  for (const auto& s : *out) {
    answer.push_back({{"id", s.id},
                      {"suppressed", s.since_ms > 0},
                      {"since", s.since_ms > 0 ? json(Iso(s.since_ms)) : json(nullptr)}});
  }
  res.set_header("Cache-Control", "no-store");
  Answer(res, 200, json{{"ids", answer}});
}

void AdminApi::WhoAmI(const HttpRequest& req, HttpResponse& res) {
  auto c = Caller(req, res, rights::Action::kWhoAmI, "");
  if (!c) return;
  auto me = rights_->WhoAmI(Bearer(req));
  if (!me.ok()) return Fail(res, me.status());
  res.set_header("Cache-Control", "no-store");
  Answer(res, 200, json{{"name", me->name}, {"prefix", me->prefix}, {"roles", me->roles}, {"insight", insight_}});
}

}  // namespace ferry::collector
