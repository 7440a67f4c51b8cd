// The operations insight (docs/INSIGHT.md): what the collector calls. Input (accepted events, erasure, restriction)
// goes through here to an engine; questions are answered from the engine's counts and features by shared code —
// scores, stages, tag truth and reasons — with the privacy rules applied: only non-restricted, non-objecting persons,
// per-person judgements only with personalization consent, audiences only with marketing consent at export time,
// aggregates below the minimum group size suppressed. Thread-safe.
#ifndef FERRY_COLLECTOR_INSIGHT_INSIGHT_H_
#define FERRY_COLLECTOR_INSIGHT_INSIGHT_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "collector/insight/config.h"
#include "collector/insight/engine.h"
#include "collector/insight/privacy.h"
#include "collector/insight/rules.h"
#include "collector/insight/types.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/status.h"

namespace ferry::insight {

struct InsightStats {
  int64_t accepted = 0;                    // events handed to Accept
  std::map<std::string, int64_t> skipped;  // by reason (normalize.h)
  int64_t hits = 0;                        // tag leaf hits produced
  int64_t restricted_skipped_hits = 0;     // events of restricted persons stored without hits
  int64_t backfilled_events = 0;           // events read to backfill new leaves
};

// The feature parameters a configuration gives for a day (what every question asks the engine with).
FeatureParams ParamsFor(const InsightConfig& config, int32_t as_of_day);

class Insight {
 public:
  struct Options {
    InsightConfig config;
    PrivacyView* privacy = nullptr;  // required; outlives the Insight
    AuditHook audit;                 // required for audience exports
    base::Clock* clock = nullptr;    // SystemClock() when null ("today")
    base::Logger log;
  };

  // Checks the configuration, compiles the tags, loads the engine's restrictions and backfills the hits of leaves
  // the engine has not seen yet.
  static base::Result<std::unique_ptr<Insight>> Open(Options options, std::unique_ptr<Engine> engine);

  // ---- Input (the collector) ----

  // Events the collector stored, in its commit order. Events of unused purposes and types are skipped.
  base::Status Accept(const std::vector<InsightEvent>& events);
  // Erases every event and derived row of the person's ids (userId and anonymousIds) in the project.
  base::Status Erase(const std::string& project, const std::vector<std::string>& ids);
  // Retention (the collector, after its store's purge): removes from the engine every row of the days that hold
  // events older than now_ms minus the project's maximum age (max_age_ms, else default_max_age_ms; <= 0 keeps them),
  // whole days, so nothing the store deleted stays (up to a day of younger events may go with them).
  base::Status PurgeExpired(int64_t now_ms, int64_t default_max_age_ms,
                            const std::map<std::string, int64_t>& max_age_ms);
  // Restricts / lifts: excluded from every answer at once; no hits while restricted; lifting recomputes them.
  base::Status Restrict(const std::string& project, const std::vector<std::string>& ids);
  base::Status Lift(const std::string& project, const std::vector<std::string>& ids);
  base::Status Flush(int64_t timeout_ms);
  base::Status Maintain();
  // A wait the collector installs before it serves questions (its feed: until the events accepted before the call
  // were handed to Accept). InsightApi calls WaitForInput before every question, so an answer includes every event
  // accepted before it was asked. No barrier: WaitForInput returns at once.
  void SetInputBarrier(std::function<void()> barrier) { barrier_ = std::move(barrier); }
  void WaitForInput() {
    if (barrier_) barrier_();
  }

  // ---- Questions (as_of_day <= 0: today) ----

  base::Result<Profile> GetProfile(const std::string& project, const std::string& person, int32_t as_of_day);
  base::Result<RetentionTable> Retention(RetentionQuery q);
  base::Result<FunnelReport> Funnel(FunnelQuery q);
  base::Result<RfmReport> Rfm(RfmQuery q);
  base::Result<LifecycleReport> Lifecycle(const std::string& project, int32_t as_of_day);
  // Tags that apply, per person (persons empty: every person with activity); personalization-allowed persons only.
  base::Result<std::vector<PersonTags>> Tags(const std::string& project, int32_t as_of_day,
                                             const std::vector<std::string>& persons);
  base::Result<ChurnReport> Churn(const std::string& project, int32_t as_of_day);
  base::Result<Audience> ExportAudience(AudienceQuery q);

  Engine& engine() { return *engine_; }
  const TagSet& tags() const { return tags_; }
  const InsightConfig& config() const { return opts_.config; }
  InsightStats Stats();
  int32_t Today();

 private:
  // The persons a question covers: the exclusion in force, their features and their privacy state (same order).
  struct Population {
    Exclusion ex;
    std::vector<PersonFeatures> features;
    std::vector<PersonPrivacy> privacy;
  };

  Insight(Options o, std::unique_ptr<Engine> e, TagSet t);
  base::Result<Population> LoadPopulation(const std::string& project, const FeatureParams& params,
                                          const std::vector<std::string>& persons);
  base::Status Backfill();
  base::Result<Exclusion> BuildExclusion(const std::string& project);
  FeatureParams Params(int32_t as_of_day) const;
  int32_t AsOf(int32_t d) { return d > 0 ? d : Today(); }
  bool IsRestricted(const std::string& project, const std::string& a, const std::string& b, const std::string& c);
  // Hits for an activity row (appends to *out).
  void HitsOf(const ActivityRow& a, const nlohmann::json& props, const std::vector<int>* only,
              std::vector<HitRow>* out);
  // Evaluates every tag (or one) for the persons given (all when empty). person -> applied tags.
  base::Result<std::map<std::string, std::vector<AppliedTag>>> EvaluateTags(const std::string& project, int32_t as_of,
                                                                            const std::vector<std::string>& persons,
                                                                            const std::string& only_tag,
                                                                            const Exclusion& ex,
                                                                            std::vector<PersonFeatures>* features);

  Options opts_;
  std::function<void()> barrier_;
  std::unique_ptr<Engine> engine_;
  TagSet tags_;
  std::shared_mutex restrict_mu_;
  std::map<std::string, std::set<std::string>> restricted_;  // project -> ids (Restrict/Lift)
  std::mutex stats_mu_;
  InsightStats stats_;
};

}  // namespace ferry::insight

#endif  // FERRY_COLLECTOR_INSIGHT_INSIGHT_H_
