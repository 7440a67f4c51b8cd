#include "collector/insight/engine.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "collector/insight/normalize.h"

namespace ferry::insight {

bool PersonFeatures::operator==(const PersonFeatures& o) const {
  return person == o.person && first_ms == o.first_ms && last_ms == o.last_ms && first_day == o.first_day &&
         last_day == o.last_day && events == o.events && active_days == o.active_days && sessions == o.sessions &&
         source == o.source && campaign == o.campaign && channels == o.channels &&
         activation_events == o.activation_events && early_active_days == o.early_active_days &&
         value_events == o.value_events && invite_events == o.invite_events && active_weeks == o.active_weeks &&
         last_return_day == o.last_return_day && recent_active_days == o.recent_active_days &&
         prev_active_days == o.prev_active_days && recent_sessions == o.recent_sessions &&
         prev_sessions == o.prev_sessions && recent_value_events == o.recent_value_events &&
         prev_value_events == o.prev_value_events && w_events == o.w_events && w_active_days == o.w_active_days &&
         w_sessions == o.w_sessions && w_session_events == o.w_session_events && w_value_events == o.w_value_events &&
         w_value_cents == o.w_value_cents && w_invites == o.w_invites && w_last_value_day == o.w_last_value_day;
}

int64_t ValueCents(const std::string& props_text, const std::string& prop) {
  if (props_text.find(prop) == std::string::npos) return 0;
  nlohmann::json j = nlohmann::json::parse(props_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return 0;
  auto it = j.find(prop);
  return it == j.end() ? 0 : CentsOf(*it);
}

bool FoldFeatures(const std::vector<const ActivityRow*>& events, const FeatureParams& p, PersonFeatures* out) {
  if (events.empty()) return false;
  PersonFeatures f;
  const ActivityRow& first = *events.front();
  f.person = first.person;
  f.first_ms = first.ts_ms;
  f.first_day = first.day;
  f.source = first.source;
  f.campaign = first.campaign;
  f.last_ms = first.ts_ms;
  f.last_day = first.day;
  const int64_t D = p.as_of_day;
  const int64_t L = p.churn_window_days;
  const int64_t W = p.rfm_window_days;
  std::vector<int32_t> days;
  std::set<int32_t> weeks;
  std::set<std::string> sessions, recent_sessions, prev_sessions, w_sessions, channels;
  std::set<int32_t> recent_days, prev_days, w_days;
  for (const ActivityRow* e : events) {
    ++f.events;
    f.first_ms = std::min(f.first_ms, e->ts_ms);
    f.last_ms = std::max(f.last_ms, e->ts_ms);
    f.first_day = std::min(f.first_day, e->day);
    f.last_day = std::max(f.last_day, e->day);
    if (days.empty() || days.back() != e->day) days.push_back(e->day);
    weeks.insert(WeekOf(e->day));
    channels.insert(e->channel);
    const bool has_session = !e->session.empty();
    if (has_session) sessions.insert(e->session);
    const bool value = e->name == p.value_event;
    const bool invite = e->name == p.invite_event;
    if (e->name == p.activation_event) ++f.activation_events;
    if (value) ++f.value_events;
    if (invite) ++f.invite_events;
    const int64_t d = e->day;
    if (d > D - L) {
      recent_days.insert(e->day);
      if (has_session) recent_sessions.insert(e->session);
      if (value) ++f.recent_value_events;
    } else if (d > D - 2 * L) {
      prev_days.insert(e->day);
      if (has_session) prev_sessions.insert(e->session);
      if (value) ++f.prev_value_events;
    }
    if (d > D - W) {
      ++f.w_events;
      w_days.insert(e->day);
      if (has_session) {
        w_sessions.insert(e->session);
        ++f.w_session_events;
      }
      if (value) {
        ++f.w_value_events;
        f.w_value_cents += ValueCents(e->props, p.value_prop);
        f.w_last_value_day = std::max(f.w_last_value_day, e->day);
      }
      if (invite) ++f.w_invites;
    }
  }
  // Events come sorted by timestamp, so days are non-decreasing; keep them distinct and sorted anyway.
  std::sort(days.begin(), days.end());
  days.erase(std::unique(days.begin(), days.end()), days.end());
  f.active_days = static_cast<int64_t>(days.size());
  f.sessions = static_cast<int64_t>(sessions.size());
  f.channels.assign(channels.begin(), channels.end());
  f.active_weeks = static_cast<int64_t>(weeks.size());
  for (size_t i = 0; i < days.size(); ++i) {
    if (static_cast<int64_t>(days[i]) < static_cast<int64_t>(f.first_day) + p.activation_within_days) {
      ++f.early_active_days;
    }
    if (i > 0 && days[i] - days[i - 1] >= p.churned_days) f.last_return_day = days[i];
  }
  f.recent_active_days = static_cast<int64_t>(recent_days.size());
  f.prev_active_days = static_cast<int64_t>(prev_days.size());
  f.recent_sessions = static_cast<int64_t>(recent_sessions.size());
  f.prev_sessions = static_cast<int64_t>(prev_sessions.size());
  f.w_active_days = static_cast<int64_t>(w_days.size());
  f.w_sessions = static_cast<int64_t>(w_sessions.size());
  *out = std::move(f);
  return true;
}

int FunnelLevel(const std::vector<std::vector<int64_t>>& step_times, int64_t window_ms) {
  if (step_times.empty() || step_times[0].empty()) return 0;
  int level = 1;
  const int k = static_cast<int>(step_times.size());
  for (int64_t start : step_times[0]) {
    int64_t t = start;
    for (int j = 1; j < k; ++j) {
      const auto& v = step_times[static_cast<size_t>(j)];
      auto it = std::lower_bound(v.begin(), v.end(), t);
      if (it == v.end() || *it - start > window_ms) break;
      t = *it;
      level = std::max(level, j + 1);
    }
    if (level == k) break;
  }
  return level;
}

}  // namespace ferry::insight
