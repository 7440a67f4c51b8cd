// What turns per-person features into judgements, shared by both engines (docs/INSIGHT.md): RFM metrics and quantile
// scores, lifecycle stages, the churn scorecard. Integer arithmetic only, so both engines agree exactly.
#ifndef FERRY_COLLECTOR_INSIGHT_SCORING_H_
#define FERRY_COLLECTOR_INSIGHT_SCORING_H_

#include <array>
#include <cstdint>
#include <vector>

#include "collector/insight/config.h"
#include "collector/insight/types.h"

namespace ferry::insight {

using RfmValues = std::array<int64_t, kRfmMetricCount>;

// Whether the person is in the RFM population (an activity event in the window).
inline bool InRfmPopulation(const PersonFeatures& f) { return f.w_events > 0; }
// The six RFM metrics of a person (recency days, frequency, monetary cents, active days, depth x100, invites).
RfmValues RfmMetricsOf(const PersonFeatures& f, int32_t as_of_day, int32_t window_days);
// N and the four thresholds per metric from the population's values.
RfmThresholds ComputeThresholds(const std::vector<RfmValues>& population);
// 1-5 (0 when the thresholds are empty).
int RfmScore(RfmMetric m, int64_t value, const RfmThresholds& t);
RfmRow ScoreRfm(const std::string& person, const RfmValues& v, const RfmThresholds& t);

StageResult LifecycleStage(const PersonFeatures& f, int32_t as_of_day, const LifecycleRules& rules);

ChurnRisk ChurnScore(const PersonFeatures& f, int32_t as_of_day, const ChurnModel& model);

// Area under the ROC curve of scores against labels (ties count one half); 0.5 when a class is empty.
double Auc(const std::vector<std::pair<double, bool>>& score_label);

}  // namespace ferry::insight

#endif  // FERRY_COLLECTOR_INSIGHT_SCORING_H_
