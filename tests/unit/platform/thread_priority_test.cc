// platform::SetThreadNice changes the calling thread's nice value and no other thread's (the insight feed lowers
// its own priority, never the ingest threads').
#include "platform/thread_priority.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

namespace ferry::platform {
namespace {

int NiceOf(pid_t tid) {
  errno = 0;
  return getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
}

pid_t ThisTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

TEST(ThreadPriority, OnlyTheCallingThreadIsLowered) {
  const pid_t main_tid = ThisTid();
  const int before = NiceOf(main_tid);
  ASSERT_LT(before, 19) << "the test runs at the lowest priority already";
  const int wanted = before + 1;
  int seen = -100, main_seen = -100;
  base::Status st;
  std::thread t([&] {
    st = SetThreadNice(wanted);
    seen = NiceOf(ThisTid());
    main_seen = NiceOf(main_tid);
  });
  t.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(seen, wanted);
  EXPECT_EQ(main_seen, before);
  EXPECT_EQ(NiceOf(main_tid), before);
}

TEST(ThreadPriority, OutOfRangeIsRefused) {
  EXPECT_EQ(SetThreadNice(-1).code(), base::Code::kInvalidArgument);
  EXPECT_EQ(SetThreadNice(20).code(), base::Code::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::platform
