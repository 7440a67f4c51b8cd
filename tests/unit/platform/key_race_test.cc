// Several openers creating the same key file at once must all end up with one key (the one on disk).
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "platform/platform.h"
#include "tests/unit/platform/test_dir.h"

namespace ferry::platform {
namespace {

TEST(KeyRaceTest, ThreadsCreatingTheSameKeyAgreeOnIt) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 20;
  testing::TempDir t;
  for (int round = 0; round < kRounds; ++round) {
    std::string path = t / ("k" + std::to_string(round) + "/buffer.key");
    std::vector<std::string> hex(kThreads);
    std::vector<char> ok(kThreads, 0);  // not vector<bool>: its bits share words across threads
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        auto key = LoadOrCreateKey(path);
        if (key.ok()) hex[i] = key->ToHex();
        ok[i] = key.ok();
      });
    }
    for (auto& th : threads) th.join();
    std::set<std::string> distinct(hex.begin(), hex.end());
    for (int i = 0; i < kThreads; ++i) EXPECT_TRUE(ok[i]) << "round " << round << " thread " << i;
    EXPECT_EQ(distinct.size(), 1u) << "round " << round;
    auto again = LoadOrCreateKey(path);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->ToHex(), *distinct.begin());
  }
}

TEST(KeyRaceTest, ProcessesCreatingTheSameKeyAgreeOnIt) {
  constexpr int kProcs = 4;
  testing::TempDir t;
  std::string path = t / "buffer.key";
  std::vector<int> fds;
  std::vector<pid_t> pids;
  for (int i = 0; i < kProcs; ++i) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(p[0]);
      auto key = LoadOrCreateKey(path);
      std::string hex = key.ok() ? key->ToHex() : "error";
      ssize_t w = write(p[1], hex.data(), hex.size());
      _exit(w == static_cast<ssize_t>(hex.size()) ? 0 : 1);
    }
    close(p[1]);
    fds.push_back(p[0]);
    pids.push_back(pid);
  }
  std::set<std::string> distinct;
  for (int i = 0; i < kProcs; ++i) {
    std::string got;
    char buf[256];
    ssize_t n;
    while ((n = read(fds[i], buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
    close(fds[i]);
    int status = 0;
    waitpid(pids[i], &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(got.size(), 64u) << got;
    distinct.insert(got);
  }
  EXPECT_EQ(distinct.size(), 1u);
  auto mine = LoadOrCreateKey(path);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine->ToHex(), *distinct.begin());
}

}  // namespace
}  // namespace ferry::platform
