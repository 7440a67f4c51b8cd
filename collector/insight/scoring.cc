#include "collector/insight/scoring.h"

#include <algorithm>

#include "collector/insight/normalize.h"

namespace ferry::insight {

namespace {

std::string Days(int64_t n) { return std::to_string(n) + (n == 1 ? " day" : " days"); }

}  // namespace

RfmValues RfmMetricsOf(const PersonFeatures& f, int32_t as_of_day, int32_t window_days) {
  RfmValues v{};
  v[kRecency] = f.w_last_value_day < 0 ? window_days : static_cast<int64_t>(as_of_day) - f.w_last_value_day;
  v[kFrequency] = f.w_value_events;
  v[kMonetary] = f.w_value_cents;
  v[kActiveDays] = f.w_active_days;
  v[kDepth] = f.w_sessions > 0 ? (100 * f.w_session_events) / f.w_sessions : 0;
  v[kInvites] = f.w_invites;
  return v;
}

RfmThresholds ComputeThresholds(const std::vector<RfmValues>& population) {
  RfmThresholds t;
  const int64_t n = static_cast<int64_t>(population.size());
  t.population = n;
  if (n == 0) return t;
  std::vector<int64_t> col(population.size());
  for (int m = 0; m < kRfmMetricCount; ++m) {
    for (size_t i = 0; i < population.size(); ++i) col[i] = population[i][static_cast<size_t>(m)];
    std::sort(col.begin(), col.end());
    std::vector<int64_t> th;
    for (int64_t s = 1; s <= 4; ++s) {
      int64_t c = (s * n + 4) / 5;  // ceil(s*N/5), 1..N
      th.push_back(m == kRecency ? col[static_cast<size_t>(n - c)] : col[static_cast<size_t>(c - 1)]);
    }
    t.t.push_back(std::move(th));
  }
  return t;
}

int RfmScore(RfmMetric m, int64_t value, const RfmThresholds& t) {
  if (t.t.size() != static_cast<size_t>(kRfmMetricCount)) return 0;
  int score = 1;
  for (int64_t th : t.t[static_cast<size_t>(m)]) {
    if (m == kRecency ? value < th : value > th) ++score;
  }
  return score;
}

RfmRow ScoreRfm(const std::string& person, const RfmValues& v, const RfmThresholds& t) {
  RfmRow r;
  r.person = person;
  for (int m = 0; m < kRfmMetricCount; ++m) {
    r.metrics[m] = v[static_cast<size_t>(m)];
    r.scores[m] = RfmScore(static_cast<RfmMetric>(m), v[static_cast<size_t>(m)], t);
  }
  r.code =
      std::to_string(r.scores[kRecency]) + std::to_string(r.scores[kFrequency]) + std::to_string(r.scores[kMonetary]);
  return r;
}

StageResult LifecycleStage(const PersonFeatures& f, int32_t as_of_day, const LifecycleRules& r) {
  const int64_t gap = static_cast<int64_t>(as_of_day) - f.last_day;
  if (gap >= r.churned_days) {
    return {"churned", "last active " + Days(gap) + " ago (churned after " + Days(r.churned_days) + ")"};
  }
  if (gap >= r.dormant_days) {
    return {"dormant", "last active " + Days(gap) + " ago (dormant after " + Days(r.dormant_days) + ")"};
  }
  if (f.last_return_day >= 0 && static_cast<int64_t>(as_of_day) - f.last_return_day < r.won_back_days) {
    return {"won_back", "came back on " + DayToDate(f.last_return_day) + " after at least " + Days(r.churned_days) +
                            " without activity"};
  }
  if (f.invite_events >= r.referral_min) {
    return {"referring", std::to_string(f.invite_events) + " invitation(s) sent"};
  }
  if (f.value_events >= r.conversion_min) {
    return {"converted", std::to_string(f.value_events) + " purchase(s)"};
  }
  if (f.active_weeks >= r.retained_weeks) {
    return {"retained", "active in " + std::to_string(f.active_weeks) + " different weeks"};
  }
  if (f.activation_events > 0) {
    return {"activated", r.activation_event + " done"};
  }
  if (f.early_active_days >= r.activation_active_days) {
    return {"activated", std::to_string(f.early_active_days) + " active days within " + Days(r.activation_within_days) +
                             " of the first visit"};
  }
  return {"new", "first seen " + Days(static_cast<int64_t>(as_of_day) - f.first_day) + " ago, not activated yet"};
}

ChurnRisk ChurnScore(const PersonFeatures& f, int32_t as_of_day, const ChurnModel& m) {
  ChurnRisk risk;
  const int64_t L = m.window_days;
  std::vector<ChurnFactor> all;
  const int64_t r = static_cast<int64_t>(as_of_day) - f.last_day;
  if (int pts = static_cast<int>(m.recency_points * std::min<int64_t>(r, L) / L); pts > 0) {
    all.push_back({"recency", pts, "last active " + Days(r) + " ago"});
  }
  if (f.recent_active_days < f.prev_active_days) {
    int pts = static_cast<int>(m.activity_points * (f.prev_active_days - f.recent_active_days) / f.prev_active_days);
    if (pts > 0) {
      all.push_back({"activity_decline", pts,
                     "active days fell from " + std::to_string(f.prev_active_days) + " to " +
                         std::to_string(f.recent_active_days) + " (last " + Days(L) + " vs the " + Days(L) +
                         " before)"});
    }
  }
  if (f.recent_sessions < f.prev_sessions) {
    int pts = static_cast<int>(m.session_points * (f.prev_sessions - f.recent_sessions) / f.prev_sessions);
    if (pts > 0) {
      all.push_back(
          {"session_decline", pts,
           "sessions fell from " + std::to_string(f.prev_sessions) + " to " + std::to_string(f.recent_sessions)});
    }
  }
  if (f.prev_value_events > 0 && f.recent_value_events == 0 && m.purchase_stop_points > 0) {
    all.push_back({"purchases_stopped", m.purchase_stop_points,
                   "no purchase in the last " + Days(L) + " after " + std::to_string(f.prev_value_events) + " in the " +
                       Days(L) + " before"});
  }
  if (f.recent_active_days <= 1 && m.low_activity_points > 0) {
    all.push_back({"low_activity", m.low_activity_points,
                   std::to_string(f.recent_active_days) + " active day(s) in the last " + Days(L)});
  }
  int total = 0;
  for (const auto& x : all) total += x.points;
  risk.score = std::min(total, 100);
  // Largest first; equal points keep the table's order (stable).
  std::stable_sort(all.begin(), all.end(),
                   [](const ChurnFactor& a, const ChurnFactor& b) { return a.points > b.points; });
  if (all.size() > 3) all.resize(3);
  for (auto& x : all) x.text += " (+" + std::to_string(x.points) + ")";
  risk.factors = std::move(all);
  return risk;
}

double Auc(const std::vector<std::pair<double, bool>>& score_label) {
  std::vector<std::pair<double, bool>> v = score_label;
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double pos = 0, neg = 0;
  for (const auto& x : v) (x.second ? pos : neg) += 1;
  if (pos == 0 || neg == 0) return 0.5;
  // Mann-Whitney U with mid-ranks for ties.
  double rank_sum = 0;
  size_t i = 0;
  while (i < v.size()) {
    size_t j = i;
    while (j < v.size() && v[j].first == v[i].first) ++j;
    double mid = (static_cast<double>(i) + static_cast<double>(j) + 1) / 2;  // ranks i+1..j
    for (size_t k = i; k < j; ++k) {
      if (v[k].second) rank_sum += mid;
    }
    i = j;
  }
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

}  // namespace ferry::insight
