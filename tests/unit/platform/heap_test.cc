// platform::KeepFreedHeapForReuse: a worker thread that allocates a request's worth of memory, frees it and starts
// again takes no fresh pages from the kernel after its first round, where glibc's defaults hand the pages back at
// each round and fault them in again. Each case runs in a child process of its own: the setting is process-wide.
#include "platform/heap.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace ferry::platform {
namespace {

constexpr int kRounds = 20;

long MinorFaults() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_minflt;
}

// The minor page faults of rounds 2..kRounds on a new thread (a malloc arena of its own, as the collector's request
// threads): each round builds what a 500-event request does, a decoded body of 384 KiB and 2,000 strings of ~300
// bytes, touches every page, and frees it all.
long FaultsAfterTheFirstRound() {
  long faults = 0;
  std::thread t([&] {
    for (int round = 0; round < kRounds; ++round) {
      const long before = MinorFaults();
      auto body = std::make_unique<char[]>(384 << 10);
      for (size_t i = 0; i < (384u << 10); i += 512) body[i] = static_cast<char>(i);
      std::vector<std::string> strings;
      strings.reserve(2000);
      for (int i = 0; i < 2000; ++i) strings.emplace_back(300, static_cast<char>('a' + i % 26));
      strings.clear();
      strings.shrink_to_fit();
      body.reset();
      if (round > 0) faults += MinorFaults() - before;
    }
  });
  t.join();
  return faults;
}

// Runs FaultsAfterTheFirstRound in a child process, after KeepFreedHeapForReuse if `keep`; -1 if the child failed.
long InChild(bool keep) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    long faults = -1;
    if (!keep || KeepFreedHeapForReuse().ok()) faults = FaultsAfterTheFirstRound();
    const ssize_t n = write(fds[1], &faults, sizeof faults);
    _exit(n == sizeof faults ? 0 : 1);
  }
  close(fds[1]);
  long faults = -1;
  if (pid < 0 || read(fds[0], &faults, sizeof faults) != sizeof faults) faults = -1;
  close(fds[0]);
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  return faults;
}

#if defined(__GLIBC__)
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizerAllocator = true;
#else
constexpr bool kSanitizerAllocator = false;
#endif

TEST(Heap, FreedMemoryIsReusedWithoutFreshPages) {
  if (kSanitizerAllocator) GTEST_SKIP() << "the sanitizer's allocator stands in for glibc's malloc";
  const long by_default = InChild(false);
  const long kept = InChild(true);
  ASSERT_GE(by_default, 0);
  ASSERT_GE(kept, 0);
  std::printf("minor page faults in rounds 2-%d: %ld with glibc's defaults, %ld kept\n", kRounds, by_default, kept);
  // glibc's defaults hand pages back each round (~220 a round on Debian 12's glibc 2.36).
  EXPECT_GT(by_default, 50 * (kRounds - 1)) << "glibc's defaults no longer hand the pages back";
  EXPECT_LT(kept, 5 * (kRounds - 1)) << "by default: " << by_default;
}
#else
TEST(Heap, RefusedWithoutGlibc) { EXPECT_EQ(KeepFreedHeapForReuse().code(), base::Code::kFailedPrecondition); }
#endif

}  // namespace
}  // namespace ferry::platform
