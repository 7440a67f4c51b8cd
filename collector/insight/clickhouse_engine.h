// The ClickHouse engine: accepted rows are streamed to ClickHouse over its HTTP interface (batched, at-least-once
// with retry; ReplacingMergeTree tables keyed by messageId so each event counts once) and questions run there as SQL.
// One server, or several shards behind Distributed tables. docs/INSIGHT.md, "Engines" and "Erasure on ClickHouse".
#ifndef FERRY_COLLECTOR_INSIGHT_CLICKHOUSE_ENGINE_H_
#define FERRY_COLLECTOR_INSIGHT_CLICKHOUSE_ENGINE_H_

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "collector/insight/ch_client.h"
#include "collector/insight/engine.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/secret.h"

namespace ferry::insight {

struct ClickHouseOptions {
  // HTTP base URLs of the shards ("http://127.0.0.1:8123"). urls[0] answers the questions and keeps the small state
  // tables (restrictions, erasures in progress, backfilled leaves).
  std::vector<std::string> urls;
  // With several urls: the <remote_servers> cluster that names the same shards (the Distributed tables use it).
  std::string cluster;
  std::string database = "ferry_insight";  // [A-Za-z0-9_]
  std::string user = "default";
  base::SecretBytes password;
  size_t batch_rows = 50000;        // rows per insert (events + hits + traits)
  int64_t flush_interval_ms = 500;  // a partial batch waits at most this long
  size_t max_queue_rows = 4000000;  // Write answers kUnavailable beyond this
  int64_t query_timeout_ms = 600000;
  int64_t retry_min_ms = 100, retry_max_ms = 10000;
  base::Clock* clock = nullptr;  // SystemClock() when null
  base::Logger log;
};

class ClickHouseEngine : public Engine {
 public:
  // Connects, creates the database and tables when missing (on every shard), loads the erasures in progress and
  // starts the sender thread.
  static base::Result<std::unique_ptr<ClickHouseEngine>> Open(ClickHouseOptions options);
  ~ClickHouseEngine() override;  // stops the sender (unsent rows are dropped: the collector replays from acked_seq)

  const char* name() const override { return urls_.size() > 1 ? "clickhouse-distributed" : "clickhouse"; }
  base::Status Write(WriteBatch batch) override;
  base::Status Flush(int64_t timeout_ms) override;
  base::Status Erase(const std::string& project, const std::vector<std::string>& ids) override;
  base::Status SaveRestriction(const std::string& project, const std::vector<std::string>& ids,
                               bool restricted) override;
  base::Result<std::vector<std::pair<std::string, std::string>>> LoadRestrictions() override;
  base::Result<std::set<std::string>> LoadLeaves() override;
  base::Status PurgeThrough(const std::string& project, int32_t last_day) override;
  base::Result<std::vector<std::string>> Projects() override;
  base::Status SaveLeaves(const std::vector<HitLeaf>& leaves) override;
  base::Status Maintain() override;
  std::vector<std::string> EngineExclusions(const std::string& project) override;
  EngineStats Stats() override;
  base::Status ScanEvents(const std::string& project, const std::set<std::string>& names,
                          const std::set<std::string>& ids, const std::function<bool(const ActivityRow&)>& fn) override;

  base::Result<std::vector<PersonFeatures>> Features(const std::string& project, const FeatureParams& p,
                                                     const PersonFilter& persons, const Exclusion& ex) override;
  base::Result<RfmThresholds> Thresholds(const std::string& project, const FeatureParams& p,
                                         const Exclusion& ex) override;
  base::Result<std::vector<RetentionCountRow>> Retention(const RetentionQuery& q, const std::string& value_event,
                                                         const Exclusion& ex) override;
  base::Result<std::vector<FunnelRow>> Funnel(const FunnelQuery& q, const Exclusion& ex) override;
  base::Result<std::map<std::string, PersonLeafValues>> LeafValues(const std::string& project, int32_t as_of_day,
                                                                   const std::vector<HitLeaf>& leaves,
                                                                   const std::vector<LeafWindow>& windows,
                                                                   const PersonFilter& persons,
                                                                   const Exclusion& ex) override;
  base::Result<std::map<std::string, std::map<std::string, std::string>>> Traits(const std::string& project,
                                                                                 int32_t as_of_day,
                                                                                 const PersonFilter& persons,
                                                                                 const Exclusion& ex) override;
  base::Result<std::vector<KeyEventStat>> KeyEvents(const std::string& project, const std::string& person,
                                                    const std::vector<std::string>& names, int32_t as_of_day,
                                                    const Exclusion& ex) override;

  // Every accepted event up to this collector sequence number is in ClickHouse.
  int64_t acked_seq();
  // Number of mutations not yet done on all shards (erasures in progress).
  base::Result<int64_t> PendingMutations();
  // The query client of urls[0] (tests, benchmarks).
  ClickHouseClient& client() { return *clients_[0]; }
  const std::string& database() const { return db_; }

 private:
  explicit ClickHouseEngine(ClickHouseOptions o);
  base::Status CreateSchema();
  void SenderLoop();
  base::Status SendInflight();
  // The exclusion SQL for a row: "" when nothing is excluded.
  std::string ExclusionSql(const std::string& project, const Exclusion& ex);
  base::Status SubmitErasure(const std::string& project, const std::vector<std::string>& ids);
  std::string Table(const std::string& t) const { return db_ + "." + t; }
  std::string LocalTable(const std::string& t) const { return db_ + "." + t + (urls_.size() > 1 ? "_local" : ""); }
  Settings QuerySettings() const;

  ClickHouseOptions opts_;
  std::vector<std::string> urls_;
  std::string db_;
  base::Clock* clock_;
  std::vector<std::unique_ptr<ClickHouseClient>> clients_;

  // The sink. mu_ guards queue_, queued_rows_, flush_wanted_, stop_, stats_; send_mu_ is held while a batch is
  // in flight (Erase takes it to purge a person's rows from the batch and the queue).
  std::mutex mu_;
  std::condition_variable cv_;       // wakes the sender
  std::condition_variable idle_cv_;  // wakes Flush
  std::deque<WriteBatch> queue_;
  size_t queued_rows_ = 0;
  int64_t oldest_ms_ = 0;
  bool flush_wanted_ = false;
  bool stop_ = false;
  std::mutex send_mu_;
  WriteBatch inflight_;
  bool inflight_parts_done_[3] = {false, false, false};
  bool busy_ = false;  // a batch is taken out of the queue and not yet acknowledged
  EngineStats stats_;
  std::thread sender_;

  // Erasures in progress: project -> ids, excluded from every answer until no mutation is pending. erase_mu_
  // serialises Erase and Maintain; ids_mu_ guards erasing_ and unsubmitted_ (held briefly, also by Write).
  std::mutex erase_mu_;
  std::mutex ids_mu_;
  std::map<std::string, std::set<std::string>> erasing_;
  std::vector<std::pair<std::string, std::vector<std::string>>> unsubmitted_;
  int64_t restriction_version_ = 0;
};

}  // namespace ferry::insight

#endif  // FERRY_COLLECTOR_INSIGHT_CLICKHOUSE_ENGINE_H_
