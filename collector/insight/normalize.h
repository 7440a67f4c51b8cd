// From an accepted event to the rows the engines store (docs/INSIGHT.md, "Events, persons, days"): the purpose and
// type filter, the person, the day, channel, session, first-touch campaign fields and the flat property object.
#ifndef FERRY_COLLECTOR_INSIGHT_NORMALIZE_H_
#define FERRY_COLLECTOR_INSIGHT_NORMALIZE_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/insight/config.h"
#include "collector/insight/types.h"

namespace ferry::insight {

// Day number (days since 1970-01-01) of a timestamp in a fixed offset; floor division.
int32_t DayOf(int64_t ts_ms, int32_t tz_offset_minutes);
// Monday-based week number of a day: floor((day + 3) / 7).
int32_t WeekOf(int32_t day);
// The first day of a week number.
inline int32_t WeekStartDay(int32_t week) { return week * 7 - 3; }
// "YYYY-MM-DD" of a day number.
std::string DayToDate(int32_t day);
// Day number of "YYYY-MM-DD"; -1 if malformed.
int32_t DateToDay(const std::string& date);

// A JSON number's value in cents: floor(v * 100 + 0.5); 0 for anything else and for |v| >= 1e13.
int64_t CentsOf(const nlohmann::json& v);
// Cents as "12.34" / "-0.50".
std::string FormatCents(int64_t cents);

struct Normalized {
  enum class Kind { kActivity, kIdentify, kSkip };
  Kind kind = Kind::kSkip;
  std::string skip_reason;  // kSkip: "type", "purpose", "person", "timestamp", "message_id", "json"
  ActivityRow activity;     // kActivity
  // kActivity: the flat property object (what activity.props holds); null for a preread event (InsightEvent::preread,
  // only the text is at hand): PropsOf parses activity.props when asked.
  nlohmann::json props;
  std::vector<TraitRow> traits;  // kIdentify
};

Normalized Normalize(const InsightEvent& e, const InsightConfig& config);
// n.props, parsed from n.activity.props first when it is null (a preread event).
const nlohmann::json& PropsOf(Normalized& n);

// The flat property object: top-level string, number and boolean values whose keys hold neither '"' nor '\'.
nlohmann::json FlatProps(const nlohmann::json& properties);
// Canonical JSON text (sorted keys, no spaces, invalid UTF-8 replaced).
std::string Canonical(const nlohmann::json& j);

}  // namespace ferry::insight

#endif  // FERRY_COLLECTOR_INSIGHT_NORMALIZE_H_
