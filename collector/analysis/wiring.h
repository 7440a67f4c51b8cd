// The operations insight (collector/insight/, docs/INSIGHT.md) wired to the collector: the privacy view answered
// from the identity graph's consent records, the ingest feed (accepted events handed to the insight after their
// commit) and opening the engine a --insight value names. No HTTP here.
#ifndef FERRY_COLLECTOR_ANALYSIS_WIRING_H_
#define FERRY_COLLECTOR_ANALYSIS_WIRING_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collector/insight/insight.h"
#include "collector/insight/privacy.h"
#include "collector/store/interfaces.h"
#include "lib/base/log.h"
#include "lib/base/status.h"

namespace ferry::collector::analysis {

// A person's privacy state from the collector's consent ledger (the latest state per purpose, as
// GET /v1/subjects/{id} shows it): personalization and marketing granted; "denied" for analytics counts as an
// objection to analytics. ExcludedFromAnalytics lists the ids whose latest analytics consent record in the store is
// "denied" (asked at answer time, so it holds across restarts and after an erasure of the records). With
// `restrictions` (issue 13), the restrictions and objections in force count too: one covering every purpose or
// "analytics" makes the person restricted (and excluded), one covering "personalization" or "marketing" an objection
// to it (no per-person judgements, no audiences).
class StorePrivacyView : public insight::PrivacyView {
 public:
  StorePrivacyView(IdentityGraph* graph, EventFeedSource* ledger, Restrictions* restrictions = nullptr)
      : graph_(graph), ledger_(ledger), restrictions_(restrictions) {}
  base::Result<std::vector<insight::PersonPrivacy>> Lookup(const std::string& project,
                                                           const std::vector<std::string>& persons) override;
  base::Result<std::vector<std::string>> ExcludedFromAnalytics(const std::string& project) override;

 private:
  IdentityGraph* graph_;
  EventFeedSource* ledger_;
  Restrictions* restrictions_;
};

// A restriction or objection put in force (restricted) or lifted in the collector (RightsOptions::on_restricted),
// followed in the insight: one covering every purpose or a purpose the insight uses restricts the ids there
// (Insight::Restrict: excluded from every answer, no hits); a lift lifts those ids that no other restriction in force
// still covers that way (Insight::Lift: their hits are computed again).
base::Status FollowRestriction(insight::Insight* insight, Restrictions* restrictions, const std::string& project,
                               const std::vector<std::string>& ids, const std::vector<std::string>& purposes,
                               bool restricted);

struct FeedOptions {
  // Where the feed keeps its position (the store sequence up to which every accepted event is in the engine);
  // "" keeps none (every start replays the whole store).
  std::string position_file;
  // What the position belongs to (the --insight value): a position of another engine is not used.
  std::string engine_key;
  size_t max_queue_events = 200000;  // beyond this the commit thread drops events; the feed replays them
  size_t batch_events = 4000;        // events per Accept
  int64_t retry_min_ms = 100, retry_max_ms = 5000;
  int64_t save_interval_ms = 1000;
  // The feed thread's nice value (0..19; 0 leaves it at the collector's priority). Above 0 the feed uses the CPU
  // time the ingest threads and the commit stage leave, so on a saturated machine ingest keeps its pace and the feed
  // catches up in the gaps (its queue, then a replay from the store, absorb a lag). docs/INSIGHT.md, "Ingest cost".
  int feed_nice = 10;
};

// An IngestSink in front of the store's. The group-commit thread stores each batch through the store and only
// queues the accepted events (bounded); a feed thread of its own hands them to the insight in commit order (tags are
// evaluated as events arrive). Nothing is lost on the way: the feed keeps a position in the store's insertion
// sequence (every accepted event up to it is in the insight's engine: Engine acked_seq) in a small file, and
// replays events from the store after it — at start (events queued but not delivered when the collector stopped or
// was killed), after an Accept that failed (ClickHouse's queue full, the embedded file unwritable) and after the
// queue overflowed. Redelivery is harmless (the engines keep one row per (project, messageId)). The insight never
// fails an ingest.
class InsightFeed : public IngestSink {
 public:
  InsightFeed(IngestSink* inner, EventFeedSource* source, insight::Insight* insight, base::Logger log,
              FeedOptions options);
  ~InsightFeed() override;
  // Reads the position and starts the feed thread (which replays from it first).
  base::Status Start();
  // Stores through the inner sink, then queues the accepted events, moving their bodies out of the requests (the
  // store has them).
  base::Status Insert(std::vector<InsertRequest*>& requests) override;
  void Prepare(InsertRequest* request) override { inner_->Prepare(request); }
  // Hands over what is queued, flushes the insight (at most timeout_ms), saves the position, stops the thread.
  base::Status Stop(int64_t timeout_ms);
  // Waits until every event accepted before the call was handed to the insight, and the replay at start caught up
  // with the store (at most timeout_ms; false then).
  // Questions wait on it (Insight::SetInputBarrier), so an answer includes every event accepted before it was asked.
  bool WaitHandedOver(int64_t timeout_ms);
  // An erasure the store committed: drops the ids' queued events, waits for a delivery in flight, then erases them
  // from the insight (Insight::Erase) while no delivery runs, so no event of theirs comes back after it.
  base::Status Erase(const std::string& project, const std::vector<std::string>& ids);
  int64_t failures() const { return failures_.load(); }      // Accepts that failed
  int64_t replayed() const { return replayed_.load(); }      // events read back from the store
  int64_t overflowed() const { return overflowed_.load(); }  // events the commit thread did not queue
  int64_t position();                                        // the position last saved

 private:
  void Loop();
  // Accepts events; true when the insight took them.
  bool Deliver(std::vector<insight::InsightEvent>& events);
  void MaybeSave(bool force);
  void Backoff(int64_t* backoff_ms);

  IngestSink* inner_;
  EventFeedSource* source_;
  insight::Insight* insight_;
  base::Logger log_;
  FeedOptions o_;
  std::mutex insert_mu_;  // held by Insert (store, then queue) and Erase: no accepted event escapes an erasure
  std::vector<insight::InsightEvent> taken_;  // Insert's events of one commit on their way to the queue (insert_mu_)
  std::mutex deliver_mu_;  // held from taking events (queue or store) to their Accept; Erase takes it too
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<insight::InsightEvent> queue_;  // accepted, not yet handed over (seq set)
  bool overflow_ = false;                    // events were dropped since the last replay: replay again
  bool stop_ = false, started_ = false;
  bool replaying_ = true;
  bool caught_up_ = false;      // the replay at start reached the store's end once
  int64_t last_committed_ = 0;  // highest seq the commit thread queued (WaitHandedOver)
  int64_t handed_ = 0;          // every event up to this seq was taken by the insight (feed thread; under mu_)
  int64_t saved_ = 0;           // the position in the file
  int64_t last_save_ms_ = 0;
  std::thread thread_;
  std::atomic<int64_t> failures_{0}, replayed_{0}, overflowed_{0};
};

// The insight's form of a stored event (the body is parsed once, by the insight's normalisation).
insight::InsightEvent ToInsightEvent(const std::string& project, StoredEvent&& e, int64_t seq);
insight::InsightEvent ToInsightEvent(const EventRow& e);

struct InsightSetup {
  // "embedded": a SQLCipher file DATA_DIR/insight.db (key DATA_DIR/insight.key, made when missing);
  // "clickhouse://HOST:PORT[,HOST:PORT...][?cluster=NAME&database=DB&user=U]": ClickHouse over HTTP (several
  // shards need the cluster that names them in the servers' <remote_servers>).
  std::string spec;
  std::string data_dir;
  std::string config_file;  // JSON of insight::InsightConfig ("" = defaults)
  insight::PrivacyView* privacy = nullptr;
  insight::AuditHook audit;
  base::Logger log;
};
base::Result<std::unique_ptr<insight::Insight>> OpenInsight(const InsightSetup& setup);

// Whether a --insight value names an engine ("off" and "" do not).
bool InsightEnabled(const std::string& spec);

}  // namespace ferry::collector::analysis

#endif  // FERRY_COLLECTOR_ANALYSIS_WIRING_H_
