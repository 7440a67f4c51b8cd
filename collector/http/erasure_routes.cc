#include "collector/http/erasure_routes.h"

#include <string>
#include <vector>

#include "collector/http/route_util.h"
#include "lib/wire/event.h"
#include "lib/wire/json_body.h"

namespace ferry::collector {

namespace {

using rights::Json;
constexpr size_t kMaxIdBytes = 4096;

bool Flag(const Json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace

void RegisterErasureRoutes(httpd::Router& svr, rights::RightsService* rights) {
  svr.Post("/v1/erasures", Adapt([rights](const HttpRequest& req, HttpResponse& res) {
             auto c = RouteCaller(*rights, req, res, rights::Action::kSubjectErase);
             if (!c) return;
             auto parsed = wire::ParseJson(req.body, wire::BodyLimits());
             if (!parsed.ok()) return FailJson(res, parsed.status());
             const Json& body = *parsed;
             if (!body.is_object() || !body.contains("ids") || !body["ids"].is_array() || body["ids"].empty() ||
                 body["ids"].size() > kMaxBulkErasureIds) {
               return FailJson(res, base::Status::InvalidArgument("the body must be {\"ids\": [1 to " +
                                                                  std::to_string(kMaxBulkErasureIds) + " ids]}"));
             }
             std::string project;
             if (body.contains("project")) {
               if (!body["project"].is_string()) {
                 return FailJson(res, base::Status::InvalidArgument("project must be a string"));
               }
               project = body["project"].get<std::string>();
             }
             std::vector<std::string> ids;
             for (size_t i = 0; i < body["ids"].size(); ++i) {
               const Json& id = body["ids"][i];
               if (!id.is_string() || id.get<std::string>().empty() ||
                   !wire::IsValidIdText(id.get<std::string>(), kMaxIdBytes)) {
                 return FailJson(res, base::Status::InvalidArgument("ids[" + std::to_string(i) +
                                                                    "] is not a subject id; nothing was erased"));
               }
               ids.push_back(id.get<std::string>());
             }
             rights::EraseOptions o;
             o.dry_run = Flag(body, "dryRun");
             o.force = Flag(body, "force");
             o.many = true;  // one scrub (VACUUM, WAL checkpoint) after the last, not one per id
             Json results = Json::array();
             int64_t erased = 0, not_found = 0, failed = 0;
             for (const std::string& id : ids) {
               auto receipt = rights->Erase(*c, SubjectQuery{project, id}, o);
               if (receipt.ok()) {
                 ++erased;
                 Json r = rights::ReceiptDocument(*receipt);
                 r["id"] = id;
                 r["status"] = o.dry_run ? "would_erase" : "erased";
                 results.push_back(std::move(r));
               } else if (receipt.status().code() == base::Code::kNotFound) {
                 ++not_found;
                 results.push_back({{"id", id}, {"status", "not_found"}});
               } else {
                 ++failed;
                 results.push_back({{"id", id}, {"status", "failed"}, {"error", receipt.status().message()}});
               }
             }
             // Best effort, as after a single erasure: the next scrub (autovacuum, a checkpoint) finishes it.
             const bool scrubbed = o.dry_run || rights->ScrubAfterErasures().ok();
             Json summary = {{"ids", ids.size()},     {o.dry_run ? "wouldErase" : "erased", erased},
                             {"notFound", not_found}, {"failed", failed},
                             {"dryRun", o.dry_run},   {"scrubbed", scrubbed}};
             auto audited = rights->RecordAudit(*c, "subject.erase-bulk", "", failed > 0 ? "partial" : "ok",
                                                rights::Dump(summary));
             if (!audited.ok()) return FailJson(res, audited);
             OkJson(res, {{"results", results}, {"summary", summary}});
           }));
}

}  // namespace ferry::collector
