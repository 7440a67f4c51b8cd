// The engine interface: what an insight engine stores and what it computes. Two implementations answer the same
// questions — EmbeddedEngine (a SQLCipher file, in process) and ClickHouseEngine (ClickHouse over HTTP) — and one
// conformance suite (tests/unit/insight/) holds them to the same answers. Engines count and aggregate; judgements
// (scores, stages, tag truth, reasons) and privacy filters are the shared layer's (insight.h).
//
// Every query is "as of" a day D: rows with day > D are ignored. Every query takes an Exclusion: rows whose person,
// userId or anonymousId is in it are left out (restricted, objecting, being erased). Implementations are thread-safe.
#ifndef FERRY_COLLECTOR_INSIGHT_ENGINE_H_
#define FERRY_COLLECTOR_INSIGHT_ENGINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "collector/insight/rules.h"
#include "collector/insight/types.h"
#include "lib/base/status.h"

namespace ferry::insight {

struct EngineStats {
  int64_t events_written = 0, hits_written = 0, traits_written = 0;
  int64_t queued_rows = 0;  // ClickHouse: rows waiting in the sink
  int64_t batches_sent = 0, send_failures = 0;
  int64_t acked_seq = 0;         // ClickHouse: every accepted event up to this sequence is in ClickHouse
  int64_t pending_erasures = 0;  // ClickHouse: ids excluded until their mutations complete
};

// Which persons a query covers: all (empty) or these.
using PersonFilter = std::vector<std::string>;

class Engine {
 public:
  virtual ~Engine() = default;
  virtual const char* name() const = 0;

  // ---- Input ----

  // Stores normalised rows. Rows already stored (same key) are ignored: events by (project, messageId), hits by
  // (project, leaf, messageId), traits by (project, messageId, key). The embedded engine writes before returning;
  // the ClickHouse engine queues (kUnavailable when its queue is full).
  virtual base::Status Write(WriteBatch batch) = 0;
  // Waits until everything written so far can be queried (ClickHouse: the queue is empty). kTimeout otherwise.
  virtual base::Status Flush(int64_t timeout_ms) = 0;
  // Removes every event, hit and trait row whose person, userId or anonymousId is one of `ids`, in `project`.
  // From the moment it returns, no answer includes them (ClickHouse: excluded until the mutations complete).
  virtual base::Status Erase(const std::string& project, const std::vector<std::string>& ids) = 0;
  // Restrictions the shared layer was told about, persisted by the engine (project, id). restricted=false lifts.
  virtual base::Status SaveRestriction(const std::string& project, const std::vector<std::string>& ids,
                                       bool restricted) = 0;
  virtual base::Result<std::vector<std::pair<std::string, std::string>>> LoadRestrictions() = 0;
  // Leaves whose hits were backfilled (ids), and marking more.
  virtual base::Result<std::set<std::string>> LoadLeaves() = 0;
  virtual base::Status SaveLeaves(const std::vector<HitLeaf>& leaves) = 0;
  // Retention: removes every event, hit and trait row of `project` whose day is `last_day` or earlier (ClickHouse:
  // mutations on every shard, done when they complete). The projects with stored events.
  virtual base::Status PurgeThrough(const std::string& project, int32_t last_day) = 0;
  virtual base::Result<std::vector<std::string>> Projects() = 0;
  // Housekeeping (ClickHouse: ends exclusions of completed erasures; retries failed submissions).
  virtual base::Status Maintain() = 0;
  // Ids an engine itself still excludes in `project` (ClickHouse: erasures in progress).
  virtual std::vector<std::string> EngineExclusions(const std::string& project) = 0;
  virtual EngineStats Stats() = 0;

  // Calls fn for every stored activity event of `project` ("" = every project) whose name is in `names` (empty =
  // any) and, when `ids` is not empty, whose person/userId/anonymousId is in it. fn returning false stops.
  virtual base::Status ScanEvents(const std::string& project, const std::set<std::string>& names,
                                  const std::set<std::string>& ids,
                                  const std::function<bool(const ActivityRow&)>& fn) = 0;

  // ---- Questions ----

  // Per-person features (types.h) for the persons with at least one activity event, by person.
  virtual base::Result<std::vector<PersonFeatures>> Features(const std::string& project, const FeatureParams& p,
                                                             const PersonFilter& persons, const Exclusion& ex) = 0;
  // N and thresholds of the RFM population (persons with an activity event in the window).
  virtual base::Result<RfmThresholds> Thresholds(const std::string& project, const FeatureParams& p,
                                                 const Exclusion& ex) = 0;
  // Retention counts by cohort (and split), before suppression; counts has q.periods entries.
  virtual base::Result<std::vector<RetentionCountRow>> Retention(const RetentionQuery& q,
                                                                 const std::string& value_event,
                                                                 const Exclusion& ex) = 0;
  // Funnel counts per split (before suppression).
  virtual base::Result<std::vector<FunnelRow>> Funnel(const FunnelQuery& q, const Exclusion& ex) = 0;
  // Leaf values per person for the given windows and leaves (leaf ids; windows index into `windows`).
  virtual base::Result<std::map<std::string, PersonLeafValues>> LeafValues(
      const std::string& project, int32_t as_of_day, const std::vector<HitLeaf>& leaves,
      const std::vector<LeafWindow>& windows, const PersonFilter& persons, const Exclusion& ex) = 0;
  // The latest value of each trait key per person (latest by (ts_ms, messageId), day <= as_of).
  virtual base::Result<std::map<std::string, std::map<std::string, std::string>>> Traits(const std::string& project,
                                                                                         int32_t as_of_day,
                                                                                         const PersonFilter& persons,
                                                                                         const Exclusion& ex) = 0;
  // Count and last timestamp of each named event of one person.
  virtual base::Result<std::vector<KeyEventStat>> KeyEvents(const std::string& project, const std::string& person,
                                                            const std::vector<std::string>& names, int32_t as_of_day,
                                                            const Exclusion& ex) = 0;
};

// ---- The reference computations, shared by the embedded engine and the tests' brute-force checks ----

// Folds one person's activity events (all of the same person, sorted by (ts_ms, message_id), day <= as_of) into
// features. Returns false when there are no events.
bool FoldFeatures(const std::vector<const ActivityRow*>& events, const FeatureParams& p, PersonFeatures* out);
// The RFM values of a value-event property: cents of the property in a flat property text.
int64_t ValueCents(const std::string& props_text, const std::string& prop);
// The funnel level (0 = not entered, 1..steps) of one person: steps' timestamps (ms) sorted ascending, step 0 only
// entering events; greedy per entering event (docs/INSIGHT.md).
int FunnelLevel(const std::vector<std::vector<int64_t>>& step_times, int64_t window_ms);

}  // namespace ferry::insight

#endif  // FERRY_COLLECTOR_INSIGHT_ENGINE_H_
