#include "collector/http/registry_routes.h"

#include <nlohmann/json.hpp>

#include "collector/http/exchange.h"
#include "lib/wire/auth.h"
#include "lib/wire/http_status.h"
#include "lib/wire/json_body.h"

namespace ferry::collector {

namespace {

constexpr const char* kJson = "application/json";

void Fail(HttpResponse& res, const base::Status& s) {
  res.status = wire::HttpStatusFor(s.code());
  res.set_content(wire::ErrorBody(s.code(), s.message()), kJson);
}

std::optional<rights::Actor> Caller(rights::RightsService& rights, const HttpRequest& req, HttpResponse& res,
                                    rights::Action action) {
  // With the source address, as the other admin routes: refusals are counted and audited per source.
  auto actor = rights.Authorize(wire::BearerToken(req.get_header_value("Authorization")), action, "",
                                req.remote_addr.empty() ? "?" : req.remote_addr);
  if (!actor.ok()) {
    Fail(res, actor.status());
    return std::nullopt;
  }
  return std::move(actor).value();
}

void Render(rights::RegistryService& registry, rights::RightsService& rights, rights::RegistryView view,
            const HttpRequest& req, HttpResponse& res) {
  auto c = Caller(rights, req, res, rights::Action::kRegistryRead);
  if (!c) return;
  std::string f = req.has_param("format") ? req.get_param_value("format") : "json";
  auto format = rights::ParseRenderFormat(f);
  if (!format) return Fail(res, base::Status::InvalidArgument("format must be json, md or html"));
  auto out = registry.Render(*c, req.path_param("project"), view, *format);
  if (!out.ok()) return Fail(res, out.status());
  res.status = 200;
  res.set_content(std::move(out).value(), rights::ContentType(*format));
}

}  // namespace

void RegisterRegistryRoutes(httpd::Router& svr, rights::RegistryService* registry, rights::RightsService* rights) {
  svr.Get("/v1/projects/{project}/registry", Adapt([registry, rights](const HttpRequest& req, HttpResponse& res) {
            auto c = Caller(*rights, req, res, rights::Action::kRegistryRead);
            if (!c) return;
            auto out = registry->Get(*c, req.path_param("project"));
            if (!out.ok()) return Fail(res, out.status());
            res.status = 200;
            res.set_content(rights::Dump(*out), kJson);
          }));
  svr.Put("/v1/projects/{project}/registry", Adapt([registry, rights](const HttpRequest& req, HttpResponse& res) {
            auto c = Caller(*rights, req, res, rights::Action::kRegistryEdit);
            if (!c) return;
            auto body = wire::ParseJson(req.body, wire::BodyLimits());
            if (!body.ok()) return Fail(res, body.status());
            auto out = registry->Put(*c, req.path_param("project"), *body);
            if (!out.ok()) return Fail(res, out.status());
            res.status = 200;
            res.set_content(rights::Dump(*out), kJson);
          }));
  svr.Get("/v1/projects/{project}/registry/records",
          Adapt([registry, rights](const HttpRequest& req, HttpResponse& res) {
            Render(*registry, *rights, rights::RegistryView::kRecords, req, res);
          }));
  svr.Get("/v1/projects/{project}/registry/impact",
          Adapt([registry, rights](const HttpRequest& req, HttpResponse& res) {
            Render(*registry, *rights, rights::RegistryView::kImpact, req, res);
          }));
}

}  // namespace ferry::collector
