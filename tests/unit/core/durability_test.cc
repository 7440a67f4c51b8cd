// Durability under kill -9: a child process tracks and reports each OK'd event over a pipe; the parent kills it at a
// random point, reopens the buffer and checks what survived.
//   SYNC: every event whose track returned OK is on disk.
//   BATCHED: every event that returned OK more than 100 ms before the kill is on disk.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ferry/ferry.h"
#include "lib/base/time.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

// The guarantee is for production builds. Sanitizers slow the writer several times over, so their builds check the
// same property with a wider window.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int64_t kBatchedWindowMs = 400;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr int64_t kBatchedWindowMs = 400;
#else
constexpr int64_t kBatchedWindowMs = 100;
#endif
#else
constexpr int64_t kBatchedWindowMs = 100;
#endif

// A child that reports nothing for this long is stuck (the test fails rather than hangs).
constexpr int kSilentChildMs = 60000;

struct Report {
  int32_t seq;
  int64_t ms;  // monotonic, when track returned OK
};

[[noreturn]] void Child(const std::string& path, ferry_durability d, int fd) {
  ferry_options* o = BaseOptions(path);
  ferry_options_set_durability(o, d);
  ferry_options_set_max_storage_bytes(o, 1ull << 30);  // no eviction: every acknowledged event must be there
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  ferry_client* c = nullptr;
  if (ferry_open(o, &c) != FERRY_OK) _exit(3);
  for (int32_t i = 0;; ++i) {
    std::string props = "{\"seq\":" + std::to_string(i) + "}";
    if (ferry_track(c, "Durable", props.c_str(), nullptr) != FERRY_OK) _exit(4);
    Report r{i, base::MonotonicMs()};
    if (write(fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) _exit(5);
  }
}

void KillRound(ferry_durability d, std::mt19937& rng, int round) {
  TempDir dir;
  std::string path = dir.File("b.db");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    Child(path, d, fds[1]);
  }
  close(fds[1]);
  // Read reports until the child has been tracking for kill_after_ms (measured from its first acknowledged event, so
  // how long the child takes to start does not matter), then kill it where it stands and read what is left.
  int kill_after_ms = 150 + static_cast<int>(rng() % 400);
  std::vector<Report> reports;
  int64_t kill_at = 0;
  Report r;
  for (;;) {
    pollfd pfd{fds[0], POLLIN, 0};
    if (kill_at == 0 && poll(&pfd, 1, kSilentChildMs) == 0) {
      kill(pid, SIGKILL);  // the child reported nothing for 60 s: fail below instead of hanging
      ADD_FAILURE() << "round " << round << ": the child stopped reporting";
      break;
    }
    if (read(fds[0], &r, sizeof r) != static_cast<ssize_t>(sizeof r)) break;
    reports.push_back(r);
    if (kill_at == 0 && r.ms - reports.front().ms >= kill_after_ms) {
      kill_at = base::MonotonicMs();
      kill(pid, SIGKILL);
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);
  ASSERT_GT(reports.size(), 0u) << "round " << round << " child never tracked (" << kill_after_ms << " ms)";

  ferry_options* o = BaseOptions(path);
  ferry_options_set_max_storage_bytes(o, 1ull << 30);
  ferry_client* c = nullptr;
  ASSERT_EQ(ferry_open(o, &c), FERRY_OK);
  nlohmann::json e = Export(c);
  std::set<int> stored;
  for (const auto& ev : e["events"]) stored.insert(ev["properties"]["seq"].get<int>());
  ferry_close(c, 0);
  int must = 0, missing = 0, first_missing = -1, last_missing = -1;
  for (const Report& rep : reports) {
    bool required = d == FERRY_DURABILITY_SYNC || rep.ms < kill_at - kBatchedWindowMs;
    if (!required) continue;
    must++;
    if (!stored.count(rep.seq)) {
      missing++;
      if (first_missing < 0) first_missing = rep.seq;
      last_missing = rep.seq;
    }
  }
  if (missing) {
    ADD_FAILURE() << "missing seq " << first_missing << ".." << last_missing << "; stored " << stored.size() << " (max "
                  << (stored.empty() ? -1 : *stored.rbegin()) << "), reported " << reports.size() << ", kill after "
                  << kill_after_ms << " ms";
  }
  EXPECT_EQ(missing, 0) << "round " << round << ": " << missing << " of " << must << " acknowledged events lost";
  // Nothing is stored twice, and nothing that was never tracked appears.
  EXPECT_EQ(stored.size(), e["events"].size());
  if (!stored.empty()) {
    EXPECT_LE(*stored.rbegin(), reports.back().seq + 1);
  }
}

TEST(Durability, SyncLosesNothingAcknowledgedUnderKill9) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 12; ++round) KillRound(FERRY_DURABILITY_SYNC, rng, round);
}

TEST(Durability, BatchedLosesNothingOlderThan100msUnderKill9) {
  std::mt19937 rng(54321);
  for (int round = 0; round < 12; ++round) KillRound(FERRY_DURABILITY_BATCHED, rng, round);
}

}  // namespace
}  // namespace ferry::testing
