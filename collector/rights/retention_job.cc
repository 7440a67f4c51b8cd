#include "collector/rights/retention_job.h"

#include <algorithm>
#include <chrono>

namespace ferry::collector::rights {

RetentionJob::RetentionJob(RetentionStore* store, base::Clock* clock, RetentionOptions options, base::Logger log,
                           std::function<void(int64_t)> on_purged)
    : store_(store), clock_(clock), opts_(options), log_(std::move(log)), on_purged_(std::move(on_purged)) {}

RetentionJob::~RetentionJob() { Stop(); }

void RetentionJob::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Loop(); });
}

void RetentionJob::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool RetentionJob::stopping() {
  std::lock_guard<std::mutex> l(mu_);
  return stop_;
}

base::Result<int64_t> RetentionJob::RunOnce() {
  int64_t total = 0;
  for (;;) {
    auto n = store_->PurgeExpired(clock_->NowMs(), opts_.default_max_age_ms, opts_.chunk_rows, opts_.consent_keep_ms);
    if (!n.ok()) return n.status();
    total += *n;
    if (*n < opts_.chunk_rows || stopping()) break;
  }
  if (total > 0) {
    log_.Info("retention: deleted " + std::to_string(total) + " expired events");
    if (on_purged_) on_purged_(total);
  }
  if (opts_.outbox_keep_ms > 0) {
    auto pruned = store_->PruneOutbox(clock_->NowMs() - opts_.outbox_keep_ms);
    if (!pruned.ok()) return pruned.status();
    if (*pruned > 0) log_.Info("retention: pruned " + std::to_string(*pruned) + " acknowledged outbox rows");
  }
  return total;
}

void RetentionJob::Loop() {
  for (;;) {
    auto n = RunOnce();
    if (!n.ok()) log_.Error("retention purge failed: " + n.status().ToString());
    // The next pass's time is fixed before the pass is counted, so a test that saw the count and then advances a
    // manual clock by the interval always starts the next pass.
    int64_t next = clock_->MonotonicMs() + std::max<int64_t>(opts_.interval_ms, 10);
    std::unique_lock<std::mutex> l(mu_);
    ++passes_;
    passed_.notify_all();
    clock_->WaitUntil(l, wake_, next, [this] { return stop_; });
    if (stop_) return;
  }
}

int64_t RetentionJob::passes() {
  std::lock_guard<std::mutex> l(mu_);
  return passes_;
}

bool RetentionJob::WaitForPasses(int64_t n, int64_t timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  return passed_.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return passes_ >= n; });
}

}  // namespace ferry::collector::rights
