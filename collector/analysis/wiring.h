// The operations insight (collector/insight/, docs/INSIGHT.md) wired to the collector: the privacy view answered
// from the identity graph's consent records, the ingest feed (accepted events handed to the insight after their
// commit) and opening the engine a --insight value names. No HTTP here.
#ifndef FERRY_COLLECTOR_ANALYSIS_WIRING_H_
#define FERRY_COLLECTOR_ANALYSIS_WIRING_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "collector/insight/insight.h"
#include "collector/insight/privacy.h"
#include "collector/store/interfaces.h"
#include "lib/base/log.h"
#include "lib/base/status.h"

namespace ferry::collector::analysis {

// A person's privacy state from the collector's consent ledger (the latest state per purpose, as
// GET /v1/subjects/{id} shows it): personalization and marketing granted; "denied" for analytics counts as an
// objection to analytics. ExcludedFromAnalytics lists the ids whose analytics consent was denied in a consent event
// this process accepted (the feed tells it, NoteConsent). The collector has no restriction of processing yet, so
// nobody is restricted through this view (Insight::Restrict still works).
class StorePrivacyView : public insight::PrivacyView {
 public:
  explicit StorePrivacyView(IdentityGraph* graph) : graph_(graph) {}
  base::Result<std::vector<insight::PersonPrivacy>> Lookup(const std::string& project,
                                                           const std::vector<std::string>& persons) override;
  base::Result<std::vector<std::string>> ExcludedFromAnalytics(const std::string& project) override;
  void NoteConsent(const std::string& project, const std::vector<std::string>& ids, const std::string& purpose,
                   const std::string& state);

 private:
  IdentityGraph* graph_;
  std::mutex mu_;
  std::map<std::string, std::set<std::string>> analytics_denied_;  // project -> ids
};

// An IngestSink in front of the store's: stores through it, then hands the events it accepted to the insight (in
// commit order, on the group-commit thread: tags are evaluated incrementally as events arrive). The insight never
// fails an ingest: an Accept that fails is logged and counted (failures()).
class InsightFeed : public IngestSink {
 public:
  InsightFeed(IngestSink* inner, insight::Insight* insight, StorePrivacyView* privacy, base::Logger log)
      : inner_(inner), insight_(insight), privacy_(privacy), log_(std::move(log)) {}
  base::Status Insert(std::vector<InsertRequest*>& requests) override;
  int64_t failures() const { return failures_.load(); }

 private:
  IngestSink* inner_;
  insight::Insight* insight_;
  StorePrivacyView* privacy_;
  base::Logger log_;
  std::atomic<int64_t> failures_{0};
};

// The insight's stored form of an accepted event (the fields it reads from the event's JSON body).
insight::InsightEvent ToInsightEvent(const std::string& project, const StoredEvent& e);

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
