// What the insight's tests share: an in-memory privacy view, engines made for a test (an embedded file in a temporary
// directory; a fresh database on throwaway ClickHouse servers the binary starts once), and the generated data set.
#ifndef FERRY_TESTS_UNIT_INSIGHT_INSIGHT_ENV_H_
#define FERRY_TESTS_UNIT_INSIGHT_INSIGHT_ENV_H_

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "collector/insight/clickhouse_engine.h"
#include "collector/insight/insight.h"
#include "tools/insight_gen/generator.h"

namespace ferry::insight::test {

// Consent, restriction and objection per person, in memory. Unknown persons get `fallback`.
class MemoryPrivacy : public PrivacyView {
 public:
  base::Result<std::vector<PersonPrivacy>> Lookup(const std::string& project,
                                                  const std::vector<std::string>& persons) override;
  base::Result<std::vector<std::string>> ExcludedFromAnalytics(const std::string& project) override;
  void Set(const std::string& person, PersonPrivacy p);
  PersonPrivacy Get(const std::string& person);
  void SetFallback(PersonPrivacy p);
  int64_t lookups();

 private:
  std::mutex mu_;
  std::map<std::string, PersonPrivacy> states_;
  PersonPrivacy fallback_;
  int64_t lookups_ = 0;
};

// A privacy state that allows everything.
PersonPrivacy AllGranted();

enum class Kind { kEmbedded, kClickHouse, kClickHouseShards };
const char* KindName(Kind k);

// Whether the engine kind can run here (ClickHouse needs clickhouse-server); *why says why not.
bool KindAvailable(Kind k, std::string* why);

// A fresh engine of that kind (its own file or its own database). The ClickHouse servers are started on first use
// and stopped when the test binary ends.
base::Result<std::unique_ptr<Engine>> MakeEngine(Kind k, ClickHouseOptions tweak = {});
// ClickHouse: the servers in use (nullptr / empty for embedded).
std::vector<std::string> ShardUrls(Kind k);
// Kills the single ClickHouse server (SIGKILL) / starts it again (same ports, same data).
void StopSingleClickHouse();
bool RestartSingleClickHouse(std::string* error);

struct Made {
  std::unique_ptr<Insight> insight;
  std::shared_ptr<MemoryPrivacy> privacy;
  std::shared_ptr<std::vector<AuditRecord>> audits;
  Engine* engine = nullptr;
};

// An Insight over a fresh engine, with an in-memory privacy view (fallback: all granted) and an audit list.
Made MakeInsight(Kind k, InsightConfig config, ClickHouseOptions tweak = {});
// The same engine store opened again by a new Insight (e.g. with new tags); the old one is closed first.
Made Reopen(Kind k, Made old, InsightConfig config);

// ---- The generated data set ----

struct Dataset {
  insightgen::Options options;
  int32_t as_of = 0;                 // the day the tests ask about
  std::vector<InsightEvent> events;  // every generated event, through as_of + 28
  std::vector<insightgen::UserTruth> users;
  std::map<std::string, int64_t> truth_of;  // person id (userId or anonymousId) -> index in users
};
// Generated once per process: 2,000 users over 120 days, seed 20260101; as_of = day 89.
const Dataset& TheDataset();
// The configuration the data set is meant for, with the tests' tags.
InsightConfig DatasetConfig();
// Sets every person's consent from the data set's truth (personalization / marketing).
void ApplyTruth(MemoryPrivacy& p, const Dataset& d);
// Feeds events to the insight in batches of 500 and flushes.
void Feed(Insight& in, const std::vector<InsightEvent>& events);

// ---- Building small hand-made event streams ----

struct EventMaker {
  std::string project = "p";
  int64_t seq = 0;
  // A track event of person `user` (userId) at day `day` + ms, with properties, session and context extras.
  InsightEvent Track(const std::string& user, const std::string& name, int32_t day, int64_t ms_of_day,
                     const std::string& props = "{}", const std::string& session = "s1",
                     const std::string& context_extra = "");
  InsightEvent Identify(const std::string& user, int32_t day, int64_t ms_of_day, const std::string& traits);

 private:
  InsightEvent Base(const std::string& user, const std::string& type, int32_t day, int64_t ms_of_day);
};

}  // namespace ferry::insight::test

#endif  // FERRY_TESTS_UNIT_INSIGHT_INSIGHT_ENV_H_
