// The operations insight's admin calls (docs/PROTOCOL.md "Operations insight", docs/INSIGHT.md), independent of any
// HTTP library: the input is the authorised caller and the parsed query (URL parameters as strings, or a JSON body),
// the output a status and a JSON document. collector/http/insight_routes.cc binds them to routes; ferryctl reaches
// them through the admin API.
//
// Calls (the op names): profile, retention, funnel, rfm, lifecycle, tags, churn (Action::kInsightRead) and audience
// (Action::kInsightAudience); both need the analyst role. Every call is recorded in the audit log ("insight.<op>",
// the person's hash for a profile, counts only); an audience export is returned only once its audit entry is written.
#ifndef FERRY_COLLECTOR_ANALYSIS_INSIGHT_API_H_
#define FERRY_COLLECTOR_ANALYSIS_INSIGHT_API_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "collector/insight/insight.h"
#include "collector/rights/rights_service.h"
#include "lib/base/status.h"

namespace ferry::collector::analysis {

struct InsightAnswer {
  base::Status status;  // ok, or the failure (its code becomes the HTTP status)
  nlohmann::json body;  // the answer when ok
};

class InsightApi {
 public:
  // Both must outlive this object.
  InsightApi(insight::Insight* insight, rights::RightsService* rights) : insight_(insight), rights_(rights) {}

  // The action an op needs; nullopt for an unknown op.
  static std::optional<rights::Action> ActionOf(const std::string& op);

  // Answers `op` for `actor` (authorised for ActionOf(op)). Query keys (strings or JSON values):
  //   every op: project (required), as_of (YYYY-MM-DD or a day number; default today)
  //   profile: person | retention: granularity (day|week), periods, from, to, split (none|source|campaign|
  //   source_campaign) | funnel: steps (comma-separated or an array), window_seconds, from, to, split |
  //   rfm: window_days, value_event, value_prop, invite_event | tags: person (optional) |
  //   audience: name, and one of tag, stage, min_churn_risk
  InsightAnswer Handle(const rights::Actor& actor, const std::string& op, const nlohmann::json& query);

 private:
  base::Result<nlohmann::json> Answer(const rights::Actor& actor, const std::string& op, const nlohmann::json& q,
                                      std::string* subject, nlohmann::json* detail);

  insight::Insight* insight_;
  rights::RightsService* rights_;
};

// The audit hook to give the Insight the API calls: it records an audience export in the audit log as the caller
// of the export under way on this thread; exports made any other way are refused.
insight::AuditHook ApiAuditHook();

}  // namespace ferry::collector::analysis

#endif  // FERRY_COLLECTOR_ANALYSIS_INSIGHT_API_H_
