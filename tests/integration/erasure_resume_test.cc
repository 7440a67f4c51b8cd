// An erasure cut short (issue 13), through a real ferry-collector over TLS and the real ferryctl, on the embedded
// store. There an erasure deletes the subject's events in chunks, each its own short transaction (so ingest never waits
// for the whole erasure), before one last transaction that erases everything else and completes the request. Here the
// collector is killed (SIGKILL) while the chunks run: the register shows the request in_progress with the events
// deleted so far, and the next start finishes it: every event gone, the request completed with the whole count, the ids
// suppressed, another subject untouched, the audit chain intact.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "lib/base/time.h"
#include "tests/integration/store_collector.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

constexpr int kBigEvents = 3000;
constexpr int kOtherEvents = 50;

class EraseResumeTest : public StoreCollectorTest {
 protected:
  void SetUp() override {
    // One event a chunk: 3,000 chunks for the big subject, so the kill lands in the middle even when the machine is
    // quick (with ten a chunk, the erasure could finish between the look at the register and the kill).
    extra_args_ = {"--erase-chunk-rows", "1"};
    StoreCollectorTest::SetUp();
  }

  void Send(const std::string& who, int count) {
    for (int first = 0; first < count; first += 500) {
      json batch = json::array();
      for (int i = first; i < std::min(first + 500, count); ++i) {
        batch.push_back({{"messageId", who + "-m" + std::to_string(i)},
                         {"type", "track"},
                         {"event", "Resume Test"},
                         {"userId", who},
                         {"anonymousId", "dev-" + who + "-" + std::to_string(i % 3)},
                         {"timestamp", base::FormatIso8601(base::NowMs() - 1000)},
                         {"purpose", "analytics"}});
      }
      auto sent = testsupport::HttpRequest("POST", col_->batch_url(), json{{"batch", batch}}.dump(),
                                           {"Authorization: Bearer " + key_, "Content-Type: application/json"},
                                           col_->ca_file());
      ASSERT_EQ(sent.status, 200) << sent.body;
    }
  }

  // The erasure requests in `state` (ferryctl requests --state).
  json Requests(const std::string& state) {
    int rc = 0;
    std::string out = Ctl("--json requests --state " + state, &rc);
    if (rc != 0) return json::array();
    json doc = json::parse(out, nullptr, false);
    return doc.is_object() && doc.contains("requests") ? doc["requests"] : json::array();
  }
};

TEST_P(EraseResumeTest, AKilledErasureIsFinishedAtTheNextStart) {
  if (IsSkipped()) return;
  Send("big-user", kBigEvents);
  Send("other-user", kOtherEvents);

  // The erasure, from another thread: its call is cut off by the kill.
  int erase_rc = -1;
  std::string erase_out;
  std::thread eraser([&] { erase_out = Ctl("subject erase big-user --yes", &erase_rc); });

  // Killed once the register shows the request in_progress with some (not all) events deleted.
  std::string request_id;
  int64_t deleted_before_kill = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (request_id.empty() && std::chrono::steady_clock::now() < give_up) {
    for (const auto& r : Requests("in_progress")) {
      if (r["kind"] != "erasure" || !r["result"].is_object()) continue;
      int64_t n = r["result"].value("eventsErasedAhead", int64_t{0});
      if (n > 0 && n < kBigEvents) {
        request_id = r["id"];
        deleted_before_kill = n;
      }
    }
    if (request_id.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_FALSE(request_id.empty()) << "the erasure was never seen part way";
  col_->Kill();
  eraser.join();
  EXPECT_NE(erase_rc, 0) << erase_out;  // the officer's call got no answer

  std::string err;
  ASSERT_TRUE(col_->Restart(&err)) << err;
  // The first pass of the collector's background job finishes it.
  json done;
  const auto wait_until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < wait_until) {
    for (const auto& r : Requests("completed")) {
      if (r["id"] == request_id) done = r;
    }
    if (!done.is_null()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(done.is_null()) << "request " << request_id << " was not completed after the restart";
  EXPECT_EQ(done["actedBy"], "ferry-collector");
  // The receipt counts every event: those deleted before the kill (in the count the request kept) and after.
  EXPECT_EQ(done["result"]["erased"]["events"], kBigEvents)
      << done.dump() << " (" << deleted_before_kill << " were deleted before the kill)";
  EXPECT_GE(done["result"]["idsSuppressed"].get<int64_t>(), 4) << done.dump();         // the userId and its 3 devices
  EXPECT_EQ(done["subject"].get<std::string>().rfind("hash:", 0), 0u) << done.dump();  // redacted
  EXPECT_TRUE(Requests("in_progress").empty());

  int rc = 0;
  std::string out = Ctl("subject show big-user", &rc);
  EXPECT_EQ(rc, 4) << out;  // not found
  out = Ctl("subject show dev-big-user-1", &rc);
  EXPECT_EQ(rc, 4) << out;
  out = Ctl("--json subject show other-user", &rc);
  ASSERT_EQ(rc, 0) << out;
  json other = json::parse(out, nullptr, false);
  ASSERT_TRUE(other.is_object()) << out;
  EXPECT_EQ(other["projects"][0]["eventCount"], kOtherEvents) << out;

  // Suppressed: an event the device still held is refused as erased.
  Send("big-user", 1);
  out = Ctl("subject show big-user", &rc);
  EXPECT_EQ(rc, 4) << out;

  // Who finished it is in the audit log, and the chain holds.
  out = Ctl("--json audit --limit 1000", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("erasure resumed at start"), std::string::npos) << out;
  out = Ctl("audit verify", &rc);
  EXPECT_EQ(rc, 0) << out;
}

// The embedded store only: on PostgreSQL an erasure is one transaction (writers run side by side there, so nothing
// is gained by deleting ahead), and a kill leaves it either done or not begun.
INSTANTIATE_TEST_SUITE_P(Stores, EraseResumeTest, ::testing::Values("sqlite"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace ferry::testing
