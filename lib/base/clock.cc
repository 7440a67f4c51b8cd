#include "lib/base/clock.h"

#include <chrono>
#include <thread>

#include "lib/base/time.h"

namespace ferry::base {

void Clock::SleepUntil(int64_t deadline_ms) {
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  WaitUntil(lock, cv, deadline_ms, [] { return false; });
}

namespace {

class RealClock : public Clock {
 public:
  int64_t NowMs() override { return base::NowMs(); }
  int64_t MonotonicMs() override { return base::MonotonicMs(); }
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms,
                 const std::function<bool()>& pred) override {
    while (!pred()) {
      int64_t left = deadline_ms - MonotonicMs();
      if (left <= 0) return pred();
      cv.wait_for(lock, std::chrono::milliseconds(left));
    }
    return true;
  }
};

}  // namespace

Clock* SystemClock() {
  static RealClock* clock = new RealClock();  // never destroyed: threads may use it during exit
  return clock;
}

int64_t ManualClock::NowMs() {
  std::lock_guard<std::mutex> l(mu_);
  return now_ms_;
}

int64_t ManualClock::MonotonicMs() {
  std::lock_guard<std::mutex> l(mu_);
  return mono_ms_;
}

bool ManualClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms,
                            const std::function<bool()>& pred) {
  {
    std::lock_guard<std::mutex> l(mu_);
    waiting_.insert(&cv);
  }
  bool result;
  for (;;) {
    if (pred()) {
      result = true;
      break;
    }
    if (MonotonicMs() >= deadline_ms) {
      result = pred();
      break;
    }
    // Advance() notifies every registered condition variable. A notification that lands between the checks above
    // and the wait below would be missed, so the wait is also bounded in real time (a few ms): no wake-up is lost.
    cv.wait_for(lock, std::chrono::milliseconds(5));
  }
  std::lock_guard<std::mutex> l(mu_);
  waiting_.erase(waiting_.find(&cv));
  return result;
}

void ManualClock::Advance(int64_t ms) {
  std::lock_guard<std::mutex> l(mu_);
  if (ms > 0) {
    now_ms_ += ms;
    mono_ms_ += ms;
  }
  for (std::condition_variable* cv : waiting_) cv->notify_all();
}

void ManualClock::SetNowMs(int64_t now_ms) {
  std::lock_guard<std::mutex> l(mu_);
  now_ms_ = now_ms;
}

int ManualClock::Waiters() {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(waiting_.size());
}

}  // namespace ferry::base
