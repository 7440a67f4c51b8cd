#include "collector/http/minor_routes.h"

#include <string>

#include "collector/http/exchange.h"
#include "collector/http/route_util.h"
#include "lib/wire/event.h"

namespace ferry::collector {

namespace {

constexpr size_t kMaxIdBytes = 4096;  // as the other subject routes (admin.cc)

void Mark(rights::RightsService* rights, const HttpRequest& req, HttpResponse& res, bool undo) {
  const std::string id = req.path_param("id");
  if (id.empty() || id.size() > kMaxIdBytes || wire::CheckIdText(id, kMaxIdBytes) == "control character") {
    return FailJson(res, base::Status::InvalidArgument("bad subject id in the path"));
  }
  auto actor = RouteCaller(*rights, req, res, rights::Action::kSubjectMinor, id);
  if (!actor) return;
  const SubjectQuery q{req.has_param("project") ? req.get_param_value("project") : std::string(), id};
  auto states = rights->MarkMinor(*actor, q, undo);
  if (!states.ok()) return FailJson(res, states.status());
  rights::Json projects = rights::Json::array();
  for (const rights::MinorState& s : *states) {
    projects.push_back(rights::Json{{"project", s.project}, {"minor", rights::MinorStateJson(s)}});
  }
  OkJson(res, rights::Json{{"subject", id}, {"undo", undo}, {"projects", projects}});
}

}  // namespace

void RegisterMinorRoutes(httpd::Router& svr, rights::RightsService* rights) {
  svr.Post("/v1/subjects/{id}/minor",
           Adapt([rights](const HttpRequest& req, HttpResponse& res) { Mark(rights, req, res, false); }));
  svr.Delete("/v1/subjects/{id}/minor",
             Adapt([rights](const HttpRequest& req, HttpResponse& res) { Mark(rights, req, res, true); }));
}

}  // namespace ferry::collector
