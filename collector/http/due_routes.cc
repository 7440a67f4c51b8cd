#include "collector/http/due_routes.h"

#include <cstdlib>
#include <optional>
#include <string>

#include "collector/http/admin.h"
#include "collector/http/route_util.h"
#include "lib/wire/json_body.h"

namespace ferry::collector {

namespace {

using rights::Json;

constexpr int64_t kHourMs = 3600LL * 1000;
constexpr int64_t kDayMs = 24 * kHourMs;

// "7d", "7" (days) or "48h" (hours), at most 4 digits; nullopt otherwise.
std::optional<int64_t> ParseWithin(std::string w) {
  int64_t unit = kDayMs;
  if (!w.empty() && (w.back() == 'd' || w.back() == 'h')) {
    if (w.back() == 'h') unit = kHourMs;
    w.pop_back();
  }
  if (w.empty() || w.size() > 4 || w.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::strtoll(w.c_str(), nullptr, 10) * unit;
}

// The body as a JSON object, or nullopt with the refusal answered.
std::optional<Json> ObjectBody(const HttpRequest& req, HttpResponse& res, const char* shape) {
  auto body =
      wire::ParseJson(req.body.empty() ? std::string_view("{}") : std::string_view(req.body), wire::BodyLimits());
  if (!body.ok()) {
    FailJson(res, body.status());
    if (body.status().code() == base::Code::kResourceExhausted) res.status = 413;
    return std::nullopt;
  }
  if (!body->is_object()) {
    FailJson(res, base::Status::InvalidArgument(std::string("body: ") + shape));
    return std::nullopt;
  }
  return std::move(body).value();
}

}  // namespace

void RegisterDueRoutes(httpd::Router& svr, rights::RightsService* rights) {
  svr.Post("/v1/requests/policy", Adapt([rights](const HttpRequest& req, HttpResponse& res) {
             auto c = RouteCaller(*rights, req, res, rights::Action::kRequestsPolicy);
             if (!c) return;
             constexpr const char* kShape =
                 "{\"project\": NAME (\"\": every project), \"policy\": gdpr|pipl|days:N|\"\"}";
             auto b = ObjectBody(req, res, kShape);
             if (!b) return;
             if (!b->contains("policy") || !(*b)["policy"].is_string() ||
                 (b->contains("project") && !(*b)["project"].is_string())) {
               return FailJson(res, base::Status::InvalidArgument(std::string("body: ") + kShape));
             }
             const std::string project = b->value("project", std::string());
             auto set = rights->SetRequestPolicy(*c, project, (*b)["policy"].get<std::string>());
             if (!set.ok()) return FailJson(res, set);
             auto in_force = rights->RequestPolicy(project);
             if (!in_force.ok()) return FailJson(res, in_force.status());
             OkJson(res, Json{{"project", project}, {"policy", *in_force}});
           }));
  svr.Post("/v1/requests/{id}/extend", Adapt([rights](const HttpRequest& req, HttpResponse& res) {
             auto c = RouteCaller(*rights, req, res, rights::Action::kRequestsExtend);
             if (!c) return;
             constexpr const char* kShape = "{\"days\": 1-62, \"reason\": TEXT}";
             auto b = ObjectBody(req, res, kShape);
             if (!b) return;
             if (!b->contains("days") || !(*b)["days"].is_number_integer() || !b->contains("reason") ||
                 !(*b)["reason"].is_string()) {
               return FailJson(res, base::Status::InvalidArgument(std::string("body: ") + kShape));
             }
             auto done = rights->Extend(*c, req.path_param("id"), (*b)["days"].get<int64_t>(),
                                        (*b)["reason"].get<std::string>());
             if (!done.ok()) return FailJson(res, done.status());
             OkJson(res, RequestJson(*done, rights->NowMs()));
           }));
  svr.Get("/v1/requests/due", Adapt([rights](const HttpRequest& req, HttpResponse& res) {
            auto c = RouteCaller(*rights, req, res, rights::Action::kRequestsDue);
            if (!c) return;
            auto within = ParseWithin(req.has_param("within") ? req.get_param_value("within") : "7d");
            if (!within) {
              return FailJson(res, base::Status::InvalidArgument("within is a number of days (7d) or hours (48h)"));
            }
            auto list = rights->DueWithin(*c, *within);
            if (!list.ok()) return FailJson(res, list.status());
            const int64_t now = rights->NowMs();
            Json out = Json::array();
            for (const auto& r : *list) out.push_back(RequestJson(r, now));
            OkJson(res, Json{{"withinMs", *within}, {"requests", out}});
          }));
}

}  // namespace ferry::collector
