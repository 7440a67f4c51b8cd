#include "collector/insight/config.h"

#include <algorithm>

namespace ferry::insight {

using base::Result;
using base::Status;
using nlohmann::json;

namespace {

// Reads j[key] into *out when present, refusing a value of the wrong type.
template <typename T>
Status Read(const json& j, const char* key, T* out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Ok();
  try {
    *out = it->template get<T>();
  } catch (const json::exception&) {
    return Status::InvalidArgument(where + key + ": wrong type");
  }
  return Status::Ok();
}

Status CheckKeys(const json& j, std::initializer_list<const char*> known, const std::string& where) {
  if (!j.is_object()) return Status::InvalidArgument(where + ": must be an object");
  for (const auto& item : j.items()) {
    const std::string& k = item.key();
    if (std::none_of(known.begin(), known.end(), [&](const char* n) { return k == n; })) {
      return Status::InvalidArgument("unknown key '" + where + k + "'");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<InsightConfig> InsightConfig::FromJson(const json& j) {
  InsightConfig c;
  FERRY_RETURN_IF_ERROR(
      CheckKeys(j,
                {"purposes", "tz_offset_minutes", "min_cohort_size", "channel_by_app", "key_events", "value_event",
                 "value_prop", "invite_event", "rfm_window_days", "lifecycle", "churn", "tags"},
                ""));
  FERRY_RETURN_IF_ERROR(Read(j, "purposes", &c.purposes, ""));
  FERRY_RETURN_IF_ERROR(Read(j, "tz_offset_minutes", &c.tz_offset_minutes, ""));
  FERRY_RETURN_IF_ERROR(Read(j, "min_cohort_size", &c.min_cohort_size, ""));
  FERRY_RETURN_IF_ERROR(Read(j, "channel_by_app", &c.channel_by_app, ""));
  FERRY_RETURN_IF_ERROR(Read(j, "key_events", &c.key_events, ""));
  FERRY_RETURN_IF_ERROR(Read(j, "value_event", &c.value_event, ""));
  FERRY_RETURN_IF_ERROR(Read(j, "value_prop", &c.value_prop, ""));
  FERRY_RETURN_IF_ERROR(Read(j, "invite_event", &c.invite_event, ""));
  FERRY_RETURN_IF_ERROR(Read(j, "rfm_window_days", &c.rfm_window_days, ""));
  if (auto it = j.find("lifecycle"); it != j.end()) {
    const json& l = *it;
    FERRY_RETURN_IF_ERROR(
        CheckKeys(l,
                  {"activation_event", "activation_active_days", "activation_within_days", "retained_weeks",
                   "conversion_min", "referral_min", "dormant_days", "churned_days", "won_back_days"},
                  "lifecycle."));
    LifecycleRules& r = c.lifecycle;
    FERRY_RETURN_IF_ERROR(Read(l, "activation_event", &r.activation_event, "lifecycle."));
    FERRY_RETURN_IF_ERROR(Read(l, "activation_active_days", &r.activation_active_days, "lifecycle."));
    FERRY_RETURN_IF_ERROR(Read(l, "activation_within_days", &r.activation_within_days, "lifecycle."));
    FERRY_RETURN_IF_ERROR(Read(l, "retained_weeks", &r.retained_weeks, "lifecycle."));
    FERRY_RETURN_IF_ERROR(Read(l, "conversion_min", &r.conversion_min, "lifecycle."));
    FERRY_RETURN_IF_ERROR(Read(l, "referral_min", &r.referral_min, "lifecycle."));
    FERRY_RETURN_IF_ERROR(Read(l, "dormant_days", &r.dormant_days, "lifecycle."));
    FERRY_RETURN_IF_ERROR(Read(l, "churned_days", &r.churned_days, "lifecycle."));
    FERRY_RETURN_IF_ERROR(Read(l, "won_back_days", &r.won_back_days, "lifecycle."));
  }
  if (auto it = j.find("churn"); it != j.end()) {
    const json& m = *it;
    FERRY_RETURN_IF_ERROR(CheckKeys(m,
                                    {"window_days", "recency_points", "activity_points", "session_points",
                                     "purchase_stop_points", "low_activity_points"},
                                    "churn."));
    ChurnModel& r = c.churn;
    FERRY_RETURN_IF_ERROR(Read(m, "window_days", &r.window_days, "churn."));
    FERRY_RETURN_IF_ERROR(Read(m, "recency_points", &r.recency_points, "churn."));
    FERRY_RETURN_IF_ERROR(Read(m, "activity_points", &r.activity_points, "churn."));
    FERRY_RETURN_IF_ERROR(Read(m, "session_points", &r.session_points, "churn."));
    FERRY_RETURN_IF_ERROR(Read(m, "purchase_stop_points", &r.purchase_stop_points, "churn."));
    FERRY_RETURN_IF_ERROR(Read(m, "low_activity_points", &r.low_activity_points, "churn."));
  }
  if (auto it = j.find("tags"); it != j.end()) {
    if (!it->is_array()) return Status::InvalidArgument("tags: must be an array");
    c.tags = *it;
  }
  FERRY_RETURN_IF_ERROR(c.Validate());
  return c;
}

Status InsightConfig::Validate() const {
  if (purposes.empty()) return Status::InvalidArgument("purposes: at least one purpose");
  for (const auto& p : purposes) {
    if (p == "sensitive") return Status::InvalidArgument("purposes: 'sensitive' events are never used for insight");
  }
  if (tz_offset_minutes < -14 * 60 || tz_offset_minutes > 14 * 60) {
    return Status::InvalidArgument("tz_offset_minutes: between -840 and 840");
  }
  if (min_cohort_size < 1) return Status::InvalidArgument("min_cohort_size: at least 1");
  if (value_event.empty() || value_prop.empty() || invite_event.empty()) {
    return Status::InvalidArgument("value_event, value_prop and invite_event must be set");
  }
  if (rfm_window_days < 1 || rfm_window_days > 3660) return Status::InvalidArgument("rfm_window_days: 1-3660");
  const LifecycleRules& l = lifecycle;
  if (l.activation_active_days < 1 || l.activation_within_days < 1 || l.retained_weeks < 1 || l.conversion_min < 1 ||
      l.referral_min < 1 || l.won_back_days < 1) {
    return Status::InvalidArgument("lifecycle: counts and windows must be at least 1");
  }
  if (l.dormant_days < 1 || l.churned_days <= l.dormant_days) {
    return Status::InvalidArgument("lifecycle: 1 <= dormant_days < churned_days");
  }
  if (churn.window_days < 1 || churn.window_days > 366) return Status::InvalidArgument("churn.window_days: 1-366");
  int total = churn.recency_points + churn.activity_points + churn.session_points + churn.purchase_stop_points +
              churn.low_activity_points;
  if (churn.recency_points < 0 || churn.activity_points < 0 || churn.session_points < 0 ||
      churn.purchase_stop_points < 0 || churn.low_activity_points < 0 || total <= 0) {
    return Status::InvalidArgument("churn: points must be >= 0 and not all 0");
  }
  if (!tags.is_array()) return Status::InvalidArgument("tags: must be an array");
  return Status::Ok();
}

bool InsightConfig::UsesPurpose(const std::string& purpose) const {
  return std::find(purposes.begin(), purposes.end(), purpose) != purposes.end();
}

}  // namespace ferry::insight
