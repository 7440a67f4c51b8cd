// Every client function from many threads at once (run under ThreadSanitizer too).
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ferry/ferry.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

TEST(ClientThreads, EightThreadsTenThousandEventsEachLoseNothing) {
  TempDir dir;
  ferry_options* o = BaseOptions(dir.File("b.db"));
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  ferry_options_set_max_storage_bytes(o, 512ull << 20);  // 80,000 events are ~45 MB: no eviction here
  ferry_client* c = nullptr;
  ASSERT_EQ(ferry_open(o, &c), FERRY_OK);
  constexpr int kThreads = 8, kEach = 10000;
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string props = "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + ",\"s\":\"v\"}";
        if (ferry_track(c, "Tick", props.c_str(), nullptr) != FERRY_OK) failures++;
        if (i % 2500 == 0) {
          char* s = nullptr;
          if (ferry_stats_json(c, &s) == FERRY_OK) ferry_free(s);
          (void)ferry_get_consent(c, "analytics");
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  nlohmann::json e = Export(c);
  std::vector<std::vector<bool>> seen(kThreads, std::vector<bool>(kEach, false));
  int n = 0;
  for (const auto& ev : e["events"]) {
    if (ev["type"] != "track") continue;
    int t = ev["properties"]["t"], i = ev["properties"]["i"];
    EXPECT_FALSE(seen[t][i]) << "duplicate " << t << "/" << i;
    seen[t][i] = true;
    n++;
  }
  EXPECT_EQ(n, kThreads * kEach);
  EXPECT_EQ(Stats(c)["queued"], kThreads * kEach + 1);  // and the consent record of the default (issue 12)
  EXPECT_EQ(Stats(c)["evicted"], 0);
  // Eight threads outrun the committing thread: with a second core, the compressing thread took part (the events
  // above were read back exactly either way).
  if (std::thread::hardware_concurrency() > 1) {
    EXPECT_GT(Stats(c)["compressed_ahead"], 0);
  }
  EXPECT_EQ(ferry_close(c, 0), FERRY_OK);
}

TEST(ClientThreads, AFewEventsAtATimeNeverWakeTheCompressingThread) {
  TempDir dir;
  ferry_options* o = BaseOptions(dir.File("b.db"));
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  ferry_client* c = nullptr;
  ASSERT_EQ(ferry_open(o, &c), FERRY_OK);
  // An app's pace: the writer thread keeps up, so no event waits behind a commit for another thread to compress it.
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(ferry_track(c, "Tick", ("{\"i\":" + std::to_string(i) + "}").c_str(), nullptr), FERRY_OK);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Stats(c)["uncommitted"] != 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  nlohmann::json s = Stats(c);
  EXPECT_EQ(s["queued"], 101);  // and the consent record of the default
  EXPECT_EQ(s["compressed_ahead"], 0);
  EXPECT_EQ(ferry_close(c, 0), FERRY_OK);
}

TEST(ClientThreads, ConsentChangesRaceWithTracking) {
  TempDir dir;
  ferry_options* o = BaseOptions(dir.File("b.db"));
  ferry_client* c = nullptr;
  ASSERT_EQ(ferry_open(o, &c), FERRY_OK);
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      while (!stop.load()) {
        ferry_status s = ferry_track(c, "Promo", "{\"a\":1}", "marketing");
        EXPECT_TRUE(s == FERRY_OK || s == FERRY_ERR_CONSENT_DENIED);
      }
    });
  }
  std::thread toggler([&] {
    for (int i = 0; i < 40; ++i) {
      ferry_set_consent(c, "marketing", i % 2 ? FERRY_CONSENT_GRANTED : FERRY_CONSENT_DENIED);
      ferry_reset(c);
    }
    ferry_set_consent(c, "marketing", FERRY_CONSENT_DENIED);
    stop = true;
  });
  toggler.join();
  for (auto& t : ts) t.join();
  // After the final denial, no marketing event may remain anywhere in the buffer.
  nlohmann::json s = Stats(c);
  EXPECT_EQ(s["pending_consent"], 0);
  EXPECT_EQ(s["queued"], 41);  // the consent records only
  nlohmann::json e = Export(c);
  int consent_records = 0;
  for (const auto& ev : e["events"]) {
    EXPECT_NE(ev["purpose"], "marketing");
    consent_records += ev["type"] == "consent";
  }
  EXPECT_EQ(consent_records, 41);
  EXPECT_EQ(ferry_close(c, 0), FERRY_OK);
}

}  // namespace
}  // namespace ferry::testing
