#include "collector/http/route_util.h"

#include <utility>

#include "lib/wire/auth.h"
#include "lib/wire/http_status.h"

namespace ferry::collector {

namespace {
constexpr const char* kJson = "application/json";
}  // namespace

void FailJson(HttpResponse& res, const base::Status& s) {
  res.status = wire::HttpStatusFor(s.code());
  res.set_content(wire::ErrorBody(s.code(), s.message()), kJson);
}

void OkJson(HttpResponse& res, const rights::Json& body) {
  res.status = 200;
  res.set_content(rights::Dump(body), kJson);
}

std::optional<rights::Actor> RouteCaller(rights::RightsService& rights, const HttpRequest& req, HttpResponse& res,
                                         rights::Action action, const std::string& subject) {
  auto actor = rights.Authorize(wire::BearerToken(req.get_header_value("Authorization")), action, subject,
                                req.remote_addr.empty() ? "?" : req.remote_addr);
  if (!actor.ok()) {
    FailJson(res, actor.status());
    return std::nullopt;
  }
  return std::move(actor).value();
}

}  // namespace ferry::collector
