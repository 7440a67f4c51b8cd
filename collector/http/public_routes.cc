#include "collector/http/public_routes.h"

#include <sodium.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "collector/http/exchange.h"
#include "collector/http/rate_limit.h"
#include "collector/http/route_util.h"
#include "collector/rights/documents.h"
#include "lib/wire/auth.h"
#include "lib/wire/event.h"
#include "lib/wire/json_body.h"

namespace ferry::collector {

namespace {

using rights::Iso;
using rights::Json;

struct Limits {
  Limits(const PublicOptions& o, base::Clock* c)
      : opts(o),
        clock(c),
        filings(o.filing_rate, o.filing_burst),
        verifies(o.verify_rate, o.verify_burst),
        reads(o.status_rate, o.status_burst),
        codes(o.code_rate, o.code_burst),
        key_codes(o.code_key_rate, o.code_key_burst) {}
  PublicOptions opts;
  base::Clock* clock;
  RateLimiter filings, verifies, reads, codes, key_codes;
};

std::string Source(const HttpRequest& req) { return req.remote_addr.empty() ? "?" : req.remote_addr; }

// Takes a token from `limiter` for `key`; on refusal answers 429 with Retry-After and returns false.
bool Within(RateLimiter& limiter, const std::string& key, base::Clock* clock, HttpResponse& res) {
  const int64_t wait = limiter.Take(key, clock->MonotonicMs());
  if (wait == 0) return true;
  FailJson(res, base::Status::ResourceExhausted("too many calls from this address; retry later"));
  res.set_header("Retry-After", std::to_string(wait));
  return false;
}

// The body as a JSON object within the bounded parser's limits; on failure the answer is written.
std::optional<Json> Body(const HttpRequest& req, HttpResponse& res) {
  auto parsed = wire::ParseJson(req.body.empty() ? std::string("{}") : req.body, wire::BodyLimits());
  if (!parsed.ok()) {
    FailJson(res, parsed.status());
    if (parsed.status().code() == base::Code::kResourceExhausted) res.status = 413;
    return std::nullopt;
  }
  if (!parsed->is_object()) {
    FailJson(res, base::Status::InvalidArgument("the body must be a JSON object"));
    return std::nullopt;
  }
  return std::move(parsed).value();
}

// A string member ("" when absent); false (answered 400) when present but not a string.
bool Text(const Json& b, const char* key, std::string* out, HttpResponse& res) {
  auto it = b.find(key);
  if (it == b.end() || it->is_null()) return true;
  if (!it->is_string()) {
    FailJson(res, base::Status::InvalidArgument(std::string(key) + " must be a string"));
    return false;
  }
  *out = it->get<std::string>();
  return true;
}

// The request as the person sees it: never the subject, the contact or anything held about them.
Json PublicJson(const RightsRequest& r) {
  Json result = Json::parse(r.result.empty() ? "{}" : r.result, nullptr, false);
  if (!result.is_object()) result = Json::object();
  const bool copy = r.kind == "access" || r.kind == "portability";
  const bool ready = copy && (r.state == "in_progress" || r.state == "extended") && !r.subject.empty() &&
                     r.subject.rfind("hash:", 0) != 0;
  Json pub = result.contains("public") && result["public"].is_object() ? result["public"] : Json::object();
  const int64_t attempts = pub.value("codeAttempts", int64_t{0});
  return {{"reference", r.id},
          {"kind", r.kind},
          {"state", r.state},
          {"receivedAt", Iso(r.received_ms)},
          {"dueAt", Iso(r.due_ms)},
          {"identified", !r.subject.empty()},
          {"identifiedBy", result.contains("identity") && result["identity"].is_object()
                               ? result["identity"].value("method", Json(nullptr))
                               : Json(nullptr)},
          {"codeAttemptsLeft", std::max<int64_t>(0, rights::kPublicCodeAttempts - attempts)},
          {"refusalReason", r.state == "rejected" && result.contains("reason") ? result["reason"] : Json(nullptr)},
          {"copyReady", ready},
          {"delivered", result.contains("delivered")}};
}

bool IsReference(const std::string& s) {
  return s.size() == 28 && s.rfind("req_", 0) == 0 && s.find_first_not_of("0123456789abcdef", 4) == std::string::npos;
}

void Wipe(std::string& s) { sodium_memzero(s.data(), s.size()); }

// {secret} of a call about /v1/public/requests/{id}; on failure the answer is written.
std::optional<std::pair<std::string, std::string>> ReferenceAndSecret(const HttpRequest& req, HttpResponse& res,
                                                                      Json* body) {
  auto b = Body(req, res);
  if (!b) return std::nullopt;
  std::string secret;
  if (!Text(*b, "secret", &secret, res)) return std::nullopt;
  const std::string ref = req.path_param("id");
  if (!IsReference(ref) || secret.size() != 32) {
    Wipe(secret);
    FailJson(res, base::Status::NotFound("no such request"));
    return std::nullopt;
  }
  *body = std::move(*b);
  return std::make_pair(ref, std::move(secret));
}

}  // namespace

void RegisterPublicRoutes(httpd::Router& svr, rights::RightsService* rights, bool enabled, const PublicOptions& options,
                          base::Clock* clock) {
  // The officer binds a received public request to a subject after checking the person's identity by other means.
  svr.Post("/v1/requests/{id}/identify", Adapt([rights](const HttpRequest& req, HttpResponse& res) {
             const std::string rid = req.path_param("id");
             auto c = RouteCaller(*rights, req, res, rights::Action::kRequestsIdentify);
             if (!c) return;
             auto b = Body(req, res);
             if (!b) return;
             std::string subject;
             rights::Verification evidence;
             if (!Text(*b, "subject", &subject, res) || !Text(*b, "method", &evidence.method, res) ||
                 !Text(*b, "reference", &evidence.reference, res)) {
               return;
             }
             if (evidence.method.size() > 64 || evidence.reference.size() > 200) {
               return FailJson(res, base::Status::InvalidArgument("method or reference too long"));
             }
             auto r = rights->IdentifyPublicRequest(*c, rid, subject, evidence);
             if (!r.ok()) return FailJson(res, r.status());
             OkJson(res, PublicJson(*r));
           }));
  if (!enabled) return;
  auto limits = std::make_shared<Limits>(options, clock != nullptr ? clock : base::SystemClock());

  svr.Post("/v1/public/requests", Adapt([rights, limits](const HttpRequest& req, HttpResponse& res) {
             const std::string source = Source(req);
             if (!Within(limits->filings, source, limits->clock, res)) return;
             auto b = Body(req, res);
             if (!b) return;
             rights::PublicFiling f;
             if (!Text(*b, "kind", &f.kind, res) || !Text(*b, "project", &f.project, res) ||
                 !Text(*b, "contact", &f.contact, res) || !Text(*b, "identifier", &f.identifier, res) ||
                 !Text(*b, "lang", &f.lang, res)) {
               return;
             }
             if (f.lang.empty()) f.lang = "en";
             auto filed = rights->FilePublicRequest(f, source);
             if (!filed.ok()) return FailJson(res, filed.status());
             Json out = PublicJson(filed->request);
             out["secret"] = filed->secret;
             Wipe(filed->secret);
             OkJson(res, out);
             res.status = 201;
             res.set_header("Cache-Control", "no-store");
           }));
  svr.Post("/v1/public/requests/{id}/status", Adapt([rights, limits](const HttpRequest& req, HttpResponse& res) {
             const std::string source = Source(req);
             if (!Within(limits->reads, source, limits->clock, res)) return;
             Json body;
             auto rs = ReferenceAndSecret(req, res, &body);
             if (!rs) return;
             auto r = rights->PublicRequest(rs->first, rs->second, source);
             Wipe(rs->second);
             if (!r.ok()) return FailJson(res, r.status());
             res.set_header("Cache-Control", "no-store");
             OkJson(res, PublicJson(*r));
           }));
  svr.Post("/v1/public/requests/{id}/verify", Adapt([rights, limits](const HttpRequest& req, HttpResponse& res) {
             const std::string source = Source(req);
             if (!Within(limits->verifies, source, limits->clock, res)) return;
             Json body;
             auto rs = ReferenceAndSecret(req, res, &body);
             if (!rs) return;
             std::string code;
             if (!Text(body, "code", &code, res)) return Wipe(rs->second);
             // Spaces and dashes people type between groups of digits are not part of the code.
             std::string digits;
             for (char ch : code) {
               if (ch != ' ' && ch != '-') digits += ch;
             }
             Wipe(code);
             auto r = rights->VerifyPublicRequest(rs->first, rs->second, digits, source);
             Wipe(rs->second);
             Wipe(digits);
             if (!r.ok()) return FailJson(res, r.status());
             res.set_header("Cache-Control", "no-store");
             OkJson(res, PublicJson(*r));
           }));
  svr.Post("/v1/public/requests/{id}/copy-link", Adapt([rights, limits](const HttpRequest& req, HttpResponse& res) {
             const std::string source = Source(req);
             if (!Within(limits->reads, source, limits->clock, res)) return;
             Json body;
             auto rs = ReferenceAndSecret(req, res, &body);
             if (!rs) return;
             auto link = rights->IssuePublicCopyLink(rs->first, rs->second, limits->opts.copy_link_ttl_ms, source);
             Wipe(rs->second);
             if (!link.ok()) return FailJson(res, link.status());
             res.set_header("Cache-Control", "no-store");
             OkJson(res, Json{{"url", "/v1/copies/" + rs->first + "/" + link->token},
                              {"expiresAt", Iso(link->expires_ms)},
                              {"uses", 1}});
             res.status = 201;
             Wipe(link->token);
           }));
  svr.Post("/v1/device/verification-code", Adapt([rights, limits](const HttpRequest& req, HttpResponse& res) {
             const std::string key = wire::BearerToken(req.get_header_value("Authorization"));
             auto project = rights->AuthorizeDevice(key);
             if (!project.ok()) return FailJson(res, project.status());
             auto b = Body(req, res);
             if (!b) return;
             auto a = b->find("anonymousIds");
             if (a == b->end() || !a->is_array() || a->empty() || a->size() > 100) {
               return FailJson(res, base::Status::InvalidArgument("body must be {\"anonymousIds\": [1-100 ids]}"));
             }
             std::vector<std::string> ids;
             for (const auto& v : *a) {
               if (!v.is_string() || v.get_ref<const std::string&>().empty() ||
                   !wire::IsValidIdText(v.get_ref<const std::string&>(), 200)) {
                 return FailJson(res, base::Status::InvalidArgument(
                                          "each anonymousId is a string of 1-200 bytes without control characters"));
               }
               ids.push_back(v.get<std::string>());
             }
             // Per write key (which is public) and per device: one device cannot use up another's codes.
             if (!Within(limits->key_codes, key, limits->clock, res)) return;
             if (!Within(limits->codes, key + "\n" + ids.front(), limits->clock, res)) return;
             auto code = rights->IssueVerificationCode(*project, ids, limits->opts.code_ttl_ms);
             if (!code.ok()) return FailJson(res, code.status());
             res.set_header("Cache-Control", "no-store");
             OkJson(res, Json{{"code", code->code}, {"expiresAt", Iso(code->expires_ms)}});
             res.status = 201;
             Wipe(code->code);
           }));
}

}  // namespace ferry::collector
