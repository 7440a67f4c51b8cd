// Durability under kill -9: a child process tracks and reports each OK'd event over a pipe; the parent kills it at a
// random point, reopens the buffer and checks what survived.
//   SYNC: every event whose track returned OK is on disk.
//   BATCHED: what is lost is a tail of the acknowledged events, at most as long as the writer queue's bound.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ferry/ferry.h"
#include "lib/base/time.h"
#include "tests/support/power_cut_vfs.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

// BATCHED: the writer queue holds at most 1,000 events and one transaction takes at most 500 of them, so a kill loses
// at most the last 1,500 acknowledged events whatever the machine's speed. That bound is what the test asserts. How
// many milliseconds those events span (100 ms on an unloaded machine) depends on the machine and its load, so it is
// printed as a figure, never asserted: a timing assertion fails on a shared CI machine for reasons of its own.
constexpr size_t kBatchedMaxLostEvents = 1000 + 500;

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
  size_t tracked = 0;  // the buffer also holds the consent record of the default (issue 12): not a tracked event
  for (const auto& ev : e["events"]) {
    if (ev["type"] != "track") continue;
    stored.insert(ev["properties"]["seq"].get<int>());
    ++tracked;
  }
  ferry_close(c, 0);
  // Position (in acknowledgement order) of the first acknowledged event that is not stored.
  size_t first_missing_at = reports.size();
  size_t missing = 0;
  for (size_t i = 0; i < reports.size(); ++i) {
    if (stored.count(reports[i].seq)) continue;
    missing++;
    if (first_missing_at == reports.size()) first_missing_at = i;
  }
  if (d == FERRY_DURABILITY_SYNC) {
    EXPECT_EQ(missing, 0u) << "round " << round << ": " << missing << " of " << reports.size()
                           << " acknowledged events lost (first: seq " << reports[first_missing_at].seq << ")";
  } else {
    // What is lost is a suffix (the writer commits in order, so no hole) and no longer than the queue's bound.
    size_t lost_suffix = reports.size() - first_missing_at;
    EXPECT_EQ(missing, lost_suffix) << "round " << round << ": a hole in the stored events, not a lost tail";
    EXPECT_LE(lost_suffix, kBatchedMaxLostEvents)
        << "round " << round << ": lost the last " << lost_suffix << " acknowledged events";
    int64_t window_ms = missing ? kill_at - reports[first_missing_at].ms : 0;
    std::printf("round %2d: kill after %3d ms, %zu acknowledged, lost the last %zu (%lld ms before the kill)\n", round,
                kill_after_ms, reports.size(), missing, static_cast<long long>(window_ms));
  }
  // Nothing is stored twice, and nothing that was never tracked appears.
  EXPECT_EQ(stored.size(), tracked);
  if (!stored.empty()) {
    EXPECT_LE(*stored.rbegin(), reports.back().seq + 1);
  }
}

TEST(Durability, SyncLosesNothingAcknowledgedUnderKill9) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 12; ++round) KillRound(FERRY_DURABILITY_SYNC, rng, round);
}

TEST(Durability, BatchedLosesOnlyABoundedTailUnderKill9) {
  std::mt19937 rng(54321);
  for (int round = 0; round < 12; ++round) KillRound(FERRY_DURABILITY_BATCHED, rng, round);
}

// kill -9 leaves the operating system's cache to write what the process wrote; a power cut does not. SYNC: every
// event whose track returned OK is on the disk when the power goes right after (every write since its file's last
// sync dropped, tests/support/power_cut_vfs.h).
TEST(Durability, SyncLosesNothingAcknowledgedInAPowerCut) {
  TempDir dir;
  std::string path = dir.File("b.db");
  constexpr int kEvents = 60;
  {
    testsupport::PowerCutVfs vfs;
    ASSERT_TRUE(vfs.installed());
    ferry_options* o = BaseOptions(path);
    ferry_options_set_durability(o, FERRY_DURABILITY_SYNC);
    ferry_options_set_max_storage_bytes(o, 1ull << 30);
    ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
    ferry_client* c = nullptr;
    ASSERT_EQ(ferry_open(o, &c), FERRY_OK);
    for (int i = 0; i < kEvents; ++i) {
      std::string props = "{\"seq\":" + std::to_string(i) + "}";
      ASSERT_EQ(ferry_track(c, "Durable", props.c_str(), nullptr), FERRY_OK);
    }
    vfs.Cut();
    ferry_close(c, 0);  // with the power off: nothing it writes now reaches the file
    ASSERT_GT(vfs.files_opened(), 0u) << "the SDK's buffer did not run on the power-cut VFS";
    ASSERT_EQ(vfs.Revert(), "");
  }
  ferry_options* o = BaseOptions(path);
  ferry_options_set_max_storage_bytes(o, 1ull << 30);
  ferry_client* c = nullptr;
  ASSERT_EQ(ferry_open(o, &c), FERRY_OK);
  nlohmann::json e = Export(c);
  ferry_close(c, 0);
  std::set<int> stored;
  for (const auto& ev : e["events"]) {
    if (ev["type"] == "track") stored.insert(ev["properties"]["seq"].get<int>());
  }
  EXPECT_EQ(stored.size(), static_cast<size_t>(kEvents));
}

}  // namespace
}  // namespace ferry::testing
