// The insight's configuration (docs/INSIGHT.md, "Configuration"): purposes used, time offset, minimum group size,
// channel mapping, the value and invite events, lifecycle rules, the churn scorecard and the tag definitions.
#ifndef FERRY_COLLECTOR_INSIGHT_CONFIG_H_
#define FERRY_COLLECTOR_INSIGHT_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/status.h"

namespace ferry::insight {

struct LifecycleRules {
  std::string activation_event = "signup_completed";
  int32_t activation_active_days = 3;
  int32_t activation_within_days = 7;
  int32_t retained_weeks = 2;
  int32_t conversion_min = 1;
  int32_t referral_min = 1;
  int32_t dormant_days = 14;
  int32_t churned_days = 30;
  int32_t won_back_days = 30;
};

struct ChurnModel {
  int32_t window_days = 28;
  int recency_points = 40;
  int activity_points = 25;
  int session_points = 20;
  int purchase_stop_points = 10;
  int low_activity_points = 5;
};

struct InsightConfig {
  std::vector<std::string> purposes = {"analytics"};
  int32_t tz_offset_minutes = 0;
  int64_t min_cohort_size = 5;
  std::map<std::string, std::string> channel_by_app = {{"ferry-agent", "web"}};
  std::vector<std::string> key_events;
  std::string value_event = "order_completed";
  std::string value_prop = "revenue";
  std::string invite_event = "invite_sent";
  int32_t rfm_window_days = 365;
  LifecycleRules lifecycle;
  ChurnModel churn;
  nlohmann::json tags = nlohmann::json::array();  // tag definitions (rules.h)

  // Reads the keys present in `j` over the defaults; unknown keys and wrong types are refused.
  static base::Result<InsightConfig> FromJson(const nlohmann::json& j);
  // Checks ranges (positive windows, dormant < churned, min_cohort_size >= 1, ...).
  base::Status Validate() const;
  bool UsesPurpose(const std::string& purpose) const;
};

}  // namespace ferry::insight

#endif  // FERRY_COLLECTOR_INSIGHT_CONFIG_H_
