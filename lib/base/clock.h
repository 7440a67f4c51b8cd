// Clock: the one source of time for the SDK client, the uploader, the collector and the agent, so that tests can
// drive time instead of sleeping. Production code uses SystemClock(); tests hand a ManualClock to the object under
// test and advance it.
//
// Waiting goes through the clock too (WaitUntil), because a thread that sleeps on the real clock would not notice a
// manual clock moving: with a ManualClock, waiters wake when the clock is advanced past their deadline.
#ifndef FERRY_LIB_BASE_CLOCK_H_
#define FERRY_LIB_BASE_CLOCK_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>

namespace ferry::base {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (the wall clock; it may jump).
  virtual int64_t NowMs() = 0;
  // Milliseconds from a clock that never goes back (timeouts, intervals, backoff).
  virtual int64_t MonotonicMs() = 0;
  // Blocks on `cv` (whose mutex `lock` holds) until pred() is true or MonotonicMs() reaches deadline_ms. Returns
  // pred()'s last value. Spurious wake-ups are handled here. Thread-safe.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms,
                         const std::function<bool()>& pred) = 0;
  // Sleeps until MonotonicMs() reaches deadline_ms (no condition to wait for).
  void SleepUntil(int64_t deadline_ms);
  // WaitUntil with a relative timeout.
  bool WaitFor(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t timeout_ms,
               const std::function<bool()>& pred) {
    return WaitUntil(lock, cv, MonotonicMs() + timeout_ms, pred);
  }
};

// The real clocks (system_clock and steady_clock). Never null; lives for the whole process.
Clock* SystemClock();

// A clock that moves only when told. Starts at the given times; Advance() moves both clocks forward and wakes every
// thread waiting in WaitUntil so it can check its deadline again. Thread-safe.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 1767225600000 /* 2026-01-01T00:00:00Z */, int64_t monotonic_ms = 1000000)
      : now_ms_(now_ms), mono_ms_(monotonic_ms) {}
  int64_t NowMs() override;
  int64_t MonotonicMs() override;
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms,
                 const std::function<bool()>& pred) override;

  // Moves both clocks forward by ms (>= 0).
  void Advance(int64_t ms);
  // Sets the wall clock only (a device whose clock is wrong, a jump); the monotonic clock is untouched.
  void SetNowMs(int64_t now_ms);
  // The number of threads blocked in WaitUntil right now (tests wait for a worker to be idle before advancing).
  int Waiters();

 private:
  std::mutex mu_;
  int64_t now_ms_;
  int64_t mono_ms_;
  std::multiset<std::condition_variable*> waiting_;
};

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_CLOCK_H_
