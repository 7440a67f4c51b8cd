// The data the insight works on: accepted events as the collector hands them over, the normalised rows the engines
// store, and the questions and answers. The semantics are docs/INSIGHT.md's; comments here name the fields only.
#ifndef FERRY_COLLECTOR_INSIGHT_TYPES_H_
#define FERRY_COLLECTOR_INSIGHT_TYPES_H_

#include <cstdint>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

namespace ferry::insight {

// One event the collector accepted, in its stored form.
struct InsightEvent {
  std::string project;
  int64_t seq = 0;  // the collector's insertion sequence (0 = none); see ClickHouseEngine::acked_seq()
  std::string message_id, type, user_id, anonymous_id;
  std::string person;  // a resolved person id; "" = userId, else anonymousId
  std::string name;    // track: event; screen: name
  std::string purpose;
  int64_t timestamp_ms = 0, received_ms = 0;
  std::string properties, traits, context;  // JSON object texts, "" when absent
  // The event's whole JSON text, as the collector stored it: when set, properties, traits and context are read from
  // it (one parse) and the three fields above are not used.
  std::string body;
  // What the collector's ingest already read from the body (issue 15: the feed does not read it again). When
  // `preread`, an activity event's flat properties (`props`: canonical JSON, normalize.h FlatProps) and context
  // strings come from here and neither the body nor properties/context is read.
  bool preread = false;
  std::string props, session, channel, app_name, source, campaign;
};

// A normalised activity event (track/screen of a used purpose), as both engines store it.
struct ActivityRow {
  std::string project, person, user_id, anonymous_id, message_id, type, name, purpose;
  int64_t ts_ms = 0, received_ms = 0;
  int32_t day = 0;
  std::string session, channel, source, campaign;
  std::string props;  // canonical JSON of the top-level scalar properties (keys without '"' or '\')
};

// One trait key set by an identify event.
struct TraitRow {
  std::string project, person, user_id, anonymous_id, key;
  std::string value;  // the value as JSON text
  int64_t ts_ms = 0;
  int32_t day = 0;
  std::string message_id;
};

// A tag leaf matched by an activity event.
struct HitRow {
  std::string project, person, user_id, anonymous_id, leaf, message_id;
  int32_t day = 0;
  int64_t value_cents = 0;
};

struct WriteBatch {
  std::vector<ActivityRow> events;
  std::vector<TraitRow> traits;
  std::vector<HitRow> hits;
  int64_t max_seq = 0;
  size_t rows() const { return events.size() + traits.size() + hits.size(); }
};

// Ids whose rows an answer leaves out (restricted, objecting, being erased). A row is excluded when its person,
// userId or anonymousId is in the set.
struct Exclusion {
  std::unordered_set<std::string> ids;
  bool Excludes(const std::string& person, const std::string& user_id, const std::string& anonymous_id) const {
    if (ids.empty()) return false;
    return ids.count(person) > 0 || (!user_id.empty() && ids.count(user_id) > 0) ||
           (!anonymous_id.empty() && ids.count(anonymous_id) > 0);
  }
};

// ---- Per-person features an engine computes (docs/INSIGHT.md; all over activity events with day <= as_of) ----

struct FeatureParams {
  int32_t as_of_day = 0;
  std::string value_event, value_prop, invite_event, activation_event;
  int32_t activation_within_days = 7;
  int32_t churned_days = 30;       // gap that makes a return a win-back
  int32_t churn_window_days = 28;  // L: recent = (D-L, D], previous = (D-2L, D-L]
  int32_t rfm_window_days = 365;   // W: (D-W, D]
};

struct PersonFeatures {
  std::string person;
  int64_t first_ms = 0, last_ms = 0;
  int32_t first_day = 0, last_day = 0;
  int64_t events = 0, active_days = 0, sessions = 0;
  std::string source, campaign;       // of the first (ts_ms, messageId) activity event
  std::vector<std::string> channels;  // sorted
  // lifecycle
  int64_t activation_events = 0;
  int64_t early_active_days = 0;  // active days d < first_day + activation_within_days
  int64_t value_events = 0, invite_events = 0;
  int64_t active_weeks = 0;
  int32_t last_return_day = -1;  // latest active day whose previous active day is >= churned_days before it
  // churn windows
  int64_t recent_active_days = 0, prev_active_days = 0;
  int64_t recent_sessions = 0, prev_sessions = 0;
  int64_t recent_value_events = 0, prev_value_events = 0;
  // RFM window
  int64_t w_events = 0, w_active_days = 0, w_sessions = 0, w_session_events = 0;
  int64_t w_value_events = 0, w_value_cents = 0, w_invites = 0;
  int32_t w_last_value_day = -1;

  bool operator==(const PersonFeatures& o) const;
};

// ---- Questions ----

enum class Granularity { kDay, kWeek };
enum class Split { kNone, kSource, kCampaign, kSourceCampaign };

struct RetentionQuery {
  std::string project;
  int32_t as_of_day = 0;
  Granularity granularity = Granularity::kWeek;
  int32_t periods = 12;
  int32_t from_day = 0, to_day = 0;  // first-seen days of the cohorts (inclusive)
  Split split = Split::kNone;
};

struct RetentionRow {
  int32_t cohort_start_day = 0;  // first day of the cohort's period
  std::string source, campaign;  // split values ("" when not split or missing)
  bool suppressed = false;       // size below min_cohort_size: no numbers
  int64_t size = 0;
  std::vector<int64_t> counts;  // counts[k]: active in period cohort+k; -1 = not observable yet
  int64_t converted = 0;
};

struct RetentionTable {
  std::vector<RetentionRow> rows;  // by cohort, then source, campaign
  int64_t suppressed_rows = 0;
};

struct FunnelQuery {
  std::string project;
  int32_t as_of_day = 0;
  std::vector<std::string> steps;
  int64_t window_seconds = 86400;
  int32_t from_day = 0, to_day = 0;
  Split split = Split::kNone;
};

struct FunnelRow {
  std::string source, campaign;
  bool suppressed = false;
  std::vector<int64_t> counts;  // counts[j]: persons who reached step j+1 (counts[0] = entered)
};

struct FunnelReport {
  std::vector<FunnelRow> rows;
  int64_t suppressed_rows = 0;
};

// Raw engine answers (before suppression).
struct RetentionCountRow {
  int32_t cohort = 0;  // period number (day, or week = floor((day+3)/7))
  std::string source, campaign;
  int64_t size = 0;
  std::vector<int64_t> counts;  // N periods, unobservable ones included (the shared layer masks them)
  int64_t converted = 0;
};

// Values of the RFM population: N and the four thresholds per metric (docs/INSIGHT.md).
struct RfmThresholds {
  int64_t population = 0;
  // [metric][s-1]; metrics in RfmMetric order. Higher-is-better metrics: v[ceil(sN/5)-1]; recency: v[N-ceil(sN/5)].
  std::vector<std::vector<int64_t>> t;
  bool operator==(const RfmThresholds& o) const { return population == o.population && t == o.t; }
};

enum RfmMetric { kRecency = 0, kFrequency, kMonetary, kActiveDays, kDepth, kInvites, kRfmMetricCount };

struct RfmQuery {
  std::string project;
  int32_t as_of_day = 0;
  int32_t window_days = 0;                            // 0 = config
  std::string value_event, value_prop, invite_event;  // "" = config
};

struct RfmRow {
  std::string person;
  int64_t metrics[kRfmMetricCount] = {};  // recency days, frequency, monetary cents, active days, depth x100, invites
  int scores[kRfmMetricCount] = {};       // 1-5
  std::string code;                       // "545": R F M
};

struct RfmReport {
  bool suppressed = false;  // population below min_cohort_size: no scores at all
  RfmThresholds thresholds;
  std::vector<RfmRow> rows;  // persons whose personalization allows it, by person
  // persons per score (1-5) per metric; -1 where the bucket is below min_cohort_size
  std::vector<std::vector<int64_t>> distribution;
  int64_t withheld = 0;  // population members without per-person rows (personalization)
};

struct StageResult {
  std::string stage, reason;
};

struct LifecycleReport {
  std::map<std::string, int64_t> counts;                     // stage -> persons; -1 = suppressed
  std::vector<std::pair<std::string, StageResult>> persons;  // personalization allowed, by person
  int64_t withheld = 0;
};

struct ChurnFactor {
  std::string name;  // recency, activity_decline, session_decline, purchases_stopped, low_activity
  int points = 0;
  std::string text;
};

struct ChurnRisk {
  int score = 0;                     // 0-100
  std::vector<ChurnFactor> factors;  // main factors, largest first (at most three)
};

struct ChurnReport {
  std::vector<std::pair<std::string, ChurnRisk>> persons;  // by person
  int64_t withheld = 0;
};

struct AppliedTag {
  std::string name, reason;
};

struct KeyEventStat {
  std::string name;
  int64_t count = 0, last_ms = 0;
};

struct Profile {
  std::string project, person;
  int32_t as_of_day = 0;
  int64_t first_seen_ms = 0, last_seen_ms = 0, events = 0, active_days = 0, sessions = 0;
  std::vector<std::string> channels;
  std::string source, campaign;
  std::vector<KeyEventStat> key_events;
  std::map<std::string, std::string> traits;  // key -> JSON text of the latest value
  bool personalized = false;                  // false: the judgements below are withheld
  std::string withheld_reason;
  StageResult lifecycle;
  bool has_rfm = false;
  RfmRow rfm;
  std::vector<AppliedTag> tags;
  ChurnRisk churn;
};

struct PersonTags {
  std::string person;
  std::vector<AppliedTag> tags;
};

struct AudienceQuery {
  std::string project;
  int32_t as_of_day = 0;
  std::string name;  // the audience's name (audit)
  // exactly one source:
  std::string tag;
  std::string stage;
  int min_churn_risk = -1;
};

struct AudienceMember {
  std::string person, reason;
};

struct Audience {
  std::vector<AudienceMember> members;  // by person
  int64_t matched = 0;                  // persons the source selected before consent filters
  int64_t skipped_no_personalization = 0, skipped_no_marketing = 0;
};

}  // namespace ferry::insight

#endif  // FERRY_COLLECTOR_INSIGHT_TYPES_H_
