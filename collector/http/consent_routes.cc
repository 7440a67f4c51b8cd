#include "collector/http/consent_routes.h"

#include <optional>
#include <string>

#include "collector/http/exchange.h"
#include "lib/base/time.h"
#include "lib/wire/auth.h"
#include "lib/wire/http_status.h"

namespace ferry::collector {

namespace {

constexpr const char* kJson = "application/json";
constexpr int64_t kDayMs = 24LL * 3600 * 1000;

void Fail(HttpResponse& res, const base::Status& s) {
  res.status = wire::HttpStatusFor(s.code());
  res.set_content(wire::ErrorBody(s.code(), s.message()), kJson);
}

// A day (YYYY-MM-DD: its start, or with `end` the start of the next day) or an ISO-8601 time.
std::optional<int64_t> ParseWhen(const std::string& text, bool end) {
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    auto t = base::ParseIso8601(text + "T00:00:00Z");
    if (!t) return std::nullopt;
    return end ? *t + kDayMs : *t;
  }
  return base::ParseIso8601(text);
}

}  // namespace

void RegisterConsentRoutes(httpd::Router& svr, rights::RightsService* rights) {
  svr.Get("/v1/projects/{project}/consent/stats", Adapt([rights](const HttpRequest& req, HttpResponse& res) {
            auto actor =
                rights->Authorize(wire::BearerToken(req.get_header_value("Authorization")),
                                  rights::Action::kConsentStats, "", req.remote_addr.empty() ? "?" : req.remote_addr);
            if (!actor.ok()) return Fail(res, actor.status());
            const std::string bucket = req.has_param("bucket") ? req.get_param_value("bucket") : "day";
            // Default: the 30 days up to the end of today (UTC).
            int64_t to_ms = (base::NowMs() / kDayMs + 1) * kDayMs;
            if (req.has_param("to")) {
              auto t = ParseWhen(req.get_param_value("to"), true);
              if (!t) return Fail(res, base::Status::InvalidArgument("to must be YYYY-MM-DD or an ISO-8601 time"));
              to_ms = *t;
            }
            int64_t from_ms = to_ms - 30 * kDayMs;
            if (req.has_param("from")) {
              auto f = ParseWhen(req.get_param_value("from"), false);
              if (!f) return Fail(res, base::Status::InvalidArgument("from must be YYYY-MM-DD or an ISO-8601 time"));
              from_ms = *f;
            }
            auto stats = rights->ConsentStatsOf(*actor, req.path_param("project"), bucket, from_ms, to_ms);
            if (!stats.ok()) return Fail(res, stats.status());
            res.status = 200;
            res.set_content(rights::Dump(rights::ConsentStatsDocument(*stats)), kJson);
          }));
}

}  // namespace ferry::collector
