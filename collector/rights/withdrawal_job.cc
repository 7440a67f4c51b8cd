#include "collector/rights/withdrawal_job.h"

#include <algorithm>
#include <utility>

namespace ferry::collector::rights {

namespace {
constexpr size_t kChunk = 100;  // queued denials a call
}  // namespace

WithdrawalJob::WithdrawalJob(RightsService* rights, base::Clock* clock, int64_t interval_ms, base::Logger log)
    : rights_(rights),
      clock_(clock),
      interval_ms_(std::max<int64_t>(interval_ms, 10)),
      started_ms_(clock->NowMs()),
      log_(std::move(log)) {}

WithdrawalJob::~WithdrawalJob() { Stop(); }

void WithdrawalJob::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Loop(); });
}

void WithdrawalJob::Wake() {
  {
    std::lock_guard<std::mutex> l(mu_);
    kicked_ = true;
  }
  wake_.notify_all();
}

void WithdrawalJob::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WithdrawalJob::Loop() {
  // Erasures cut short by a stop (they delete in chunks): finished first, then the queue. A failure (the store down)
  // is logged; the requests stay in_progress for the next start.
  base::Status resumed = rights_->ResumeErasures(started_ms_);
  if (!resumed.ok()) log_.Error("resuming erasures: " + resumed.ToString());
  for (;;) {
    {
      std::lock_guard<std::mutex> l(mu_);
      kicked_ = false;
      if (stop_) return;
    }
    for (;;) {
      auto n = rights_->RunWithdrawals(kChunk);
      if (!n.ok()) {
        log_.Error("withdrawal job: " + n.status().ToString());
        break;
      }
      std::lock_guard<std::mutex> l(mu_);
      if (*n < static_cast<int64_t>(kChunk) || stop_) break;
    }
    int64_t next = clock_->MonotonicMs() + interval_ms_;
    std::unique_lock<std::mutex> l(mu_);
    clock_->WaitUntil(l, wake_, next, [this] { return stop_ || kicked_; });
    if (stop_) return;
  }
}

}  // namespace ferry::collector::rights
