// Fault tests: each ends with every acknowledged event stored exactly once at a real collector.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "ferry/ferry.h"
#include "tests/support/collector_process.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorOptions;
using testsupport::CollectorProcess;

std::unique_ptr<CollectorProcess> Start(CollectorOptions opts = {}) {
  std::string err;
  auto c = CollectorProcess::Start(opts, &err);
  EXPECT_NE(c, nullptr) << err;
  return c;
}

ferry_options* Options(const CollectorProcess& col, const std::string& path) {
  ferry_options* o = BaseOptions(path);
  ferry_options_set_endpoint(o, col.url().c_str());
  ferry_options_set_write_key(o, col.write_key().c_str());
  ferry_options_set_ca_file(o, col.ca_file().c_str());
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  ferry_options_set_max_storage_bytes(o, 256ull << 20);
  return o;
}

// seq -> how many times it is stored.
std::map<int, int> StoredSeqs(const CollectorProcess& col) {
  std::map<int, int> out;
  for (auto& row : col.DumpEvents()) {
    json body = row["body"].is_string() ? json::parse(row["body"].get<std::string>(), nullptr, false) : row["body"];
    if (body["type"] == "track") out[body["properties"]["seq"].get<int>()]++;
  }
  return out;
}

// Flushes until OK or the deadline (each call may cut an exponential backoff short once).
ferry_status FlushHard(ferry_client* c, int seconds) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  ferry_status s = FERRY_ERR_TIMEOUT;
  while (s != FERRY_OK && std::chrono::steady_clock::now() < until) s = ferry_flush(c, 3000);
  return s;
}

void ExpectExactlyOnce(const std::map<int, int>& stored, int n) {
  EXPECT_EQ(static_cast<int>(stored.size()), n);
  for (int i = 0; i < n; ++i) {
    auto it = stored.find(i);
    if (it == stored.end()) {
      ADD_FAILURE() << "seq " << i << " was never stored";
      return;
    }
    if (it->second != 1) {
      ADD_FAILURE() << "seq " << i << " stored " << it->second << " times";
      return;
    }
  }
}

// Tracks events on its own thread, as many as the test has allowed so far (so the test decides how much is tracked
// in each phase instead of sleeping while a paced loop runs).
class Producer {
 public:
  explicit Producer(ferry_client* c) : c_(c), thread_([this] { Run(); }) {}
  ~Producer() { Stop(); }
  // n more events may be tracked.
  void Allow(int n) {
    std::lock_guard<std::mutex> l(mu_);
    allowed_ += n;
    cv_.notify_all();
  }
  // Waits until every allowed event is tracked, then ends the thread. Returns how many were tracked.
  int Stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    return next_;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      cv_.wait(l, [&] { return stop_ || next_ < allowed_; });
      if (next_ >= allowed_) return;
      int i = next_;
      l.unlock();
      ferry_status s = ferry_track(c_, "Tick", ("{\"seq\":" + std::to_string(i) + "}").c_str(), nullptr);
      l.lock();
      EXPECT_EQ(s, FERRY_OK);
      next_ = i + 1;
    }
  }

  ferry_client* c_;
  std::mutex mu_;
  std::condition_variable cv_;
  int allowed_ = 0;  // guarded by mu_
  int next_ = 0;     // guarded by mu_
  bool stop_ = false;
  std::thread thread_;
};

int64_t Stat(ferry_client* c, const char* name) { return Stats(c)[name].get<int64_t>(); }

TEST(SdkFaults, CollectorKilledAndRestartedMidStream) {
  TempDir dir;
  auto col = Start();
  ASSERT_TRUE(col);
  ferry_options* o = Options(*col, dir.File("b.db"));
  ferry_options_set_batch_size(o, 20);
  ferry_options_set_flush_interval_ms(o, 200);
  ferry_client* c = nullptr;
  ASSERT_EQ(ferry_open(o, &c), FERRY_OK);
  int tracked = 0;
  {
    Producer producer(c);
    for (int round = 0; round < 3; ++round) {
      // Up: events reach the collector.
      int64_t sent = Stat(c, "sent");
      producer.Allow(100);
      ASSERT_TRUE(Eventually([&] { return Stat(c, "sent") > sent; })) << "round " << round << ": nothing was sent";
      col->Kill();
      // Down: the uploader tries and fails while events keep coming.
      int64_t retries = Stat(c, "retries");
      producer.Allow(100);
      ASSERT_TRUE(Eventually([&] { return Stat(c, "retries") > retries; })) << "round " << round << ": no retry";
      std::string err;
      ASSERT_TRUE(col->Restart(&err)) << err;
    }
    int64_t sent = Stat(c, "sent");
    producer.Allow(100);
    ASSERT_TRUE(Eventually([&] { return Stat(c, "sent") > sent; })) << "nothing was sent after the last restart";
    tracked = producer.Stop();
  }
  ASSERT_EQ(FlushHard(c, 60), FERRY_OK);
  EXPECT_GT(Stats(c)["retries"].get<int>(), 0);
  ferry_close(c, 0);
  ExpectExactlyOnce(StoredSeqs(*col), tracked);
}

TEST(SdkFaults, ErrorAnswersResetsAndLostAnswersEndExactlyOnce) {
  TempDir dir;
  CollectorOptions co;
  co.fault_plan_json = R"([500, {"status":503,"retry_after":1}, {"status":429,"retry_after":1}, 413, "reset",
                           {"status":500,"after_store":true}, 502, "reset", {"status":503,"after_store":true}])";
  auto col = Start(co);
  ASSERT_TRUE(col);
  ferry_options* o = Options(*col, dir.File("b.db"));
  ferry_options_set_batch_size(o, 25);
  ferry_client* c = nullptr;
  ASSERT_EQ(ferry_open(o, &c), FERRY_OK);
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(ferry_track(c, "E", ("{\"seq\":" + std::to_string(i) + "}").c_str(), nullptr), FERRY_OK);
  }
  ASSERT_EQ(FlushHard(c, 90), FERRY_OK);
  json st = Stats(c);
  EXPECT_GE(st["retries"].get<int>(), 7);
  EXPECT_GT(st["duplicate"].get<int>(), 0);
  EXPECT_EQ(st["rejected"], 0);
  ferry_close(c, 0);
  ExpectExactlyOnce(StoredSeqs(*col), 300);
}

TEST(SdkFaults, Unauthorized401StopsUntilReopened) {
  TempDir dir;
  CollectorOptions co;
  co.fault_plan_json = "[401]";
  auto col = Start(co);
  ASSERT_TRUE(col);
  ferry_client* c = nullptr;
  ASSERT_EQ(ferry_open(Options(*col, dir.File("b.db")), &c), FERRY_OK);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(ferry_track(c, "E", ("{\"seq\":" + std::to_string(i) + "}").c_str(), nullptr), FERRY_OK);
  }
  EXPECT_EQ(ferry_flush(c, 5000), FERRY_ERR_NETWORK);
  EXPECT_TRUE(StoredSeqs(*col).empty());
  ferry_close(c, 0);
  ASSERT_EQ(ferry_open(Options(*col, dir.File("b.db")), &c), FERRY_OK);
  ASSERT_EQ(FlushHard(c, 30), FERRY_OK);
  ferry_close(c, 0);
  ExpectExactlyOnce(StoredSeqs(*col), 10);
}

// The app is killed with kill -9 while it tracks and uploads; reopened, it delivers the rest. SYNC durability, so
// every event the child reported as accepted must arrive, exactly once.
TEST(SdkFaults, AppKilledWhileUploadingLosesAndDoublesNothing) {
  auto col = Start();
  ASSERT_TRUE(col);
  std::mt19937 rng(777);
  for (int round = 0; round < 5; ++round) {
    TempDir dir;
    std::string path = dir.File("b.db");
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    std::string project = "kill" + std::to_string(round);
    std::string key = col->CreateWriteKey(project);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      ferry_options* o = Options(*col, path);
      ferry_options_set_write_key(o, key.c_str());
      ferry_options_set_durability(o, FERRY_DURABILITY_SYNC);
      ferry_options_set_batch_size(o, 10);
      ferry_options_set_flush_interval_ms(o, 100);
      ferry_client* c = nullptr;
      if (ferry_open(o, &c) != FERRY_OK) _exit(3);
      for (int32_t i = 0;; ++i) {
        if (ferry_track(c, "E", ("{\"seq\":" + std::to_string(i) + "}").c_str(), nullptr) != FERRY_OK) _exit(4);
        if (write(fds[1], &i, sizeof i) != sizeof i) _exit(5);
        if (i % 50 == 0) ferry_flush(c, 200);
      }
    }
    close(fds[1]);
    // Kill the child when it has reported a random number of accepted events (it flushes every 50, so uploads are
    // under way), not after a time: how fast the child runs does not matter.
    int32_t kill_at_seq = 50 + static_cast<int32_t>(rng() % 400);
    int32_t v, last = -1;
    bool killed = false;
    for (;;) {
      pollfd pfd{fds[0], POLLIN, 0};
      if (!killed && poll(&pfd, 1, 60000) == 0) {
        ADD_FAILURE() << "round " << round << ": the child reported nothing for 60 s";
        kill(pid, SIGKILL);
        break;
      }
      if (read(fds[0], &v, sizeof v) != sizeof v) break;
      last = v;
      if (!killed && v >= kill_at_seq) {
        kill(pid, SIGKILL);
        killed = true;
      }
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    ASSERT_GE(last, 0);

    ferry_options* o = Options(*col, path);
    ferry_options_set_write_key(o, key.c_str());
    ferry_client* c = nullptr;
    ASSERT_EQ(ferry_open(o, &c), FERRY_OK);
    ASSERT_EQ(FlushHard(c, 30), FERRY_OK);
    ferry_close(c, 0);
    std::map<int, int> stored;
    for (auto& row : col->DumpEvents(project)) {
      json body = row["body"].is_string() ? json::parse(row["body"].get<std::string>(), nullptr, false) : row["body"];
      if (body["type"] == "track") stored[body["properties"]["seq"].get<int>()]++;
    }
    // Every acknowledged event exactly once; at most one more (tracked and committed, killed before reporting).
    for (int i = 0; i <= last; ++i) {
      ASSERT_EQ(stored[i], 1) << "round " << round << " seq " << i << " of " << last;
    }
    EXPECT_LE(static_cast<int>(stored.size()), last + 2);
  }
}

}  // namespace
}  // namespace ferry::testing
