#include "lib/base/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace ferry::base {
namespace {

TEST(ManualClock, MovesOnlyWhenAdvanced) {
  ManualClock c(5000, 100);
  EXPECT_EQ(c.NowMs(), 5000);
  EXPECT_EQ(c.MonotonicMs(), 100);
  c.Advance(250);
  EXPECT_EQ(c.NowMs(), 5250);
  EXPECT_EQ(c.MonotonicMs(), 350);
  c.SetNowMs(1);  // a wall-clock jump leaves the monotonic clock alone
  EXPECT_EQ(c.NowMs(), 1);
  EXPECT_EQ(c.MonotonicMs(), 350);
}

TEST(ManualClock, WaiterWakesWhenTheClockPassesItsDeadline) {
  ManualClock c;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> done{false};
  bool result = true;
  std::thread t([&] {
    std::unique_lock<std::mutex> l(mu);
    result = c.WaitFor(l, cv, 1000, [] { return false; });
    done = true;
  });
  while (c.Waiters() == 0) std::this_thread::yield();
  c.Advance(999);
  // Not yet: one millisecond of logical time is left. The waiter must still be blocked after it re-checked.
  for (int i = 0; i < 20 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_FALSE(done);
  c.Advance(1);
  t.join();
  EXPECT_TRUE(done);
  EXPECT_FALSE(result);
  EXPECT_EQ(c.Waiters(), 0);
}

TEST(ManualClock, WaiterWakesOnItsConditionWithoutTimeMoving) {
  ManualClock c;
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  bool result = false;
  std::thread t([&] {
    std::unique_lock<std::mutex> l(mu);
    result = c.WaitFor(l, cv, 60000, [&] { return ready; });
  });
  {
    std::lock_guard<std::mutex> l(mu);
    ready = true;
  }
  cv.notify_all();
  t.join();
  EXPECT_TRUE(result);
}

TEST(SystemClock, WaitForTimesOutInRealTime) {
  Clock* c = SystemClock();
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> l(mu);
  int64_t t0 = c->MonotonicMs();
  EXPECT_FALSE(c->WaitFor(l, cv, 20, [] { return false; }));
  EXPECT_GE(c->MonotonicMs() - t0, 20);
}

}  // namespace
}  // namespace ferry::base
