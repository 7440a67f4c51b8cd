#include "collector/http/insight_routes.h"

#include <memory>
#include <nlohmann/json.hpp>

#include "collector/analysis/insight_api.h"
#include "collector/http/exchange.h"
#include "lib/wire/auth.h"
#include "lib/wire/http_status.h"

namespace ferry::collector {

namespace {

using nlohmann::json;
constexpr const char* kJson = "application/json";
constexpr size_t kMaxBody = 64 * 1024;

void Fail(HttpResponse& res, const base::Status& s) {
  res.status = wire::HttpStatusFor(s.code());
  res.set_content(wire::ErrorBody(s.code(), s.message()), kJson);
}

void Serve(analysis::InsightApi& api, rights::RightsService& rights, const std::string& op, const json& query,
           const HttpRequest& req, HttpResponse& res) {
  auto action = analysis::InsightApi::ActionOf(op);
  auto actor = rights.Authorize(wire::BearerToken(req.get_header_value("Authorization")), *action, "");
  if (!actor.ok()) return Fail(res, actor.status());
  analysis::InsightAnswer a = api.Handle(*actor, op, query);
  if (!a.status.ok()) return Fail(res, a.status);
  res.status = 200;
  res.set_content(a.body.dump(), kJson);
}

}  // namespace

void RegisterInsightRoutes(httpd::Router& svr, insight::Insight* insight, rights::RightsService* rights,
                           base::Logger log) {
  if (insight == nullptr) return;
  auto api = std::make_shared<analysis::InsightApi>(insight, rights);
  for (const char* op : {"profile", "retention", "funnel", "rfm", "lifecycle", "tags", "churn"}) {
    std::string name = op;
    svr.Get("/v1/insight/" + name, Adapt([api, rights, name](const HttpRequest& req, HttpResponse& res) {
              // The first value of each parameter name counts (a repeated name cannot smuggle a second value past a
              // check).
              json query = json::object();
              for (const auto& [k, v] : req.raw().query) {
                if (!query.contains(k)) query[k] = v;
              }
              Serve(*api, *rights, name, query, req, res);
            }));
  }
  svr.Post("/v1/insight/audiences", Adapt([api, rights, log](const HttpRequest& req, HttpResponse& res) {
             if (req.body.size() > kMaxBody) return Fail(res, base::Status::InvalidArgument("body too large"));
             json body = json::parse(req.body, nullptr, false);
             if (body.is_discarded() || !body.is_object()) {
               return Fail(res, base::Status::InvalidArgument("the body must be a JSON object"));
             }
             Serve(*api, *rights, "audience", body, req, res);
           }));
}

}  // namespace ferry::collector
