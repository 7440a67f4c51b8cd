// Prometheus counters and the request latency histogram of GET /metrics.
#ifndef FERRY_COLLECTOR_HTTP_METRICS_H_
#define FERRY_COLLECTOR_HTTP_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "collector/ingest/group_commit.h"
#include "collector/store/engine.h"

namespace ferry::collector {

// Thread-safe.
class Metrics {
 public:
  void AddEvents(int64_t accepted, int64_t duplicate, int64_t rejected, int64_t suppressed);
  // Events the consent gate refused, per reason; enforced: not stored (else only reported, stored).
  void AddConsentRefusals(const std::map<std::string, int64_t>& by_reason, bool enforced);
  // New events of restricted subjects for a restricted purpose (collector/ingest/restriction_gate.h): kept
  // (quarantined) or not stored (refused).
  void AddRestricted(int64_t quarantined, int64_t refused) {
    restricted_quarantined_ += quarantined;
    restricted_refused_ += refused;
  }
  // Events deleted by the retention job.
  void AddPurged(int64_t n) { purged_ += n; }
  // One finished /v1/batch request: its HTTP status and duration.
  void ObserveBatch(int code, double seconds);
  // The text exposition format (version 0.0.4).
  std::string Render() const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1,    2.5,   5};
  std::atomic<int64_t> accepted_{0}, duplicate_{0}, rejected_{0}, suppressed_{0}, purged_{0};
  std::atomic<int64_t> restricted_quarantined_{0}, restricted_refused_{0};
  mutable std::mutex mu_;
  std::map<int, int64_t> batches_;                                   // guarded by mu_
  std::map<std::pair<std::string, bool>, int64_t> consent_refused_;  // (reason, enforced) -> events; guarded by mu_
  std::array<int64_t, kBuckets.size() + 1> hist_{};                  // guarded by mu_; last = +Inf
  double sum_ = 0;                                                   // guarded by mu_
  int64_t count_ = 0;                                                // guarded by mu_
};

// The group-commit writer's counters (GroupCommitter::stats) in the text exposition format: ferry_store_commits_total,
// ferry_store_commit_failures_total, ferry_store_commit_requests_total, ferry_store_commit_events_total,
// ferry_store_commit_seconds_total (counters), ferry_store_commit_queue (gauge), ferry_store_commit_duration_seconds
// and ferry_store_commit_wait_seconds (histograms), ferry_store_commit_longest_seconds (gauge).
std::string RenderGroupCommit(const GroupCommitter::Stats& s);

// The embedded store's checkpoints (Engine::Checkpoints): ferry_store_checkpoints_total and
// ferry_store_checkpoint_seconds_total, each by="checkpointer" and by="writer". Nothing for an engine that does not
// report them.
std::string RenderCheckpoints(const Engine::CheckpointStats& s);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_METRICS_H_
