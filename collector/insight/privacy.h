// What the insight asks about a person's privacy at answer time, and where it reports audience exports. The collector
// implements both (its consent ledger, request register and audit log); tests implement them in memory.
#ifndef FERRY_COLLECTOR_INSIGHT_PRIVACY_H_
#define FERRY_COLLECTOR_INSIGHT_PRIVACY_H_

#include <functional>
#include <string>
#include <vector>

#include "lib/base/status.h"

namespace ferry::insight {

// One person's state. Unknown persons are all false (no consent, nothing restricted).
struct PersonPrivacy {
  bool personalization = false;  // personalization consent granted
  bool marketing = false;        // marketing consent granted
  bool restricted = false;       // processing restricted (GDPR art. 18)
  bool objects_analytics = false, objects_personalization = false, objects_marketing = false;

  // May the person's per-person judgements (stage, scores, tags, churn risk) be computed and shown?
  bool AllowsPersonalization() const {
    return personalization && !restricted && !objects_analytics && !objects_personalization;
  }
  // May the person be exported in an audience for outreach?
  bool AllowsMarketing() const { return AllowsPersonalization() && marketing && !objects_marketing; }
  // May the person's data be used at all (aggregates included)?
  bool AllowsAnalytics() const { return !restricted && !objects_analytics; }
};

class PrivacyView {
 public:
  virtual ~PrivacyView() = default;
  // The state of each person (same order). Persons are insight person ids (a userId or an anonymousId).
  virtual base::Result<std::vector<PersonPrivacy>> Lookup(const std::string& project,
                                                          const std::vector<std::string>& persons) = 0;
  // Every id (userId or anonymousId) whose data may not be used for analytics right now: restricted persons and
  // persons objecting to analytics. Expected to be small.
  virtual base::Result<std::vector<std::string>> ExcludedFromAnalytics(const std::string& project) = 0;
};

// One audited insight action (never personal data: counts and names only).
struct AuditRecord {
  std::string action;  // "insight.audience.export"
  std::string project;
  std::string detail;  // JSON text: name, source, as_of_day, counts
};
// Returns a failure to refuse the action (the export is not returned then).
using AuditHook = std::function<base::Status(const AuditRecord&)>;

}  // namespace ferry::insight

#endif  // FERRY_COLLECTOR_INSIGHT_PRIVACY_H_
