// The client on a manual clock (the internal ClientOptions::clock, not in the C ABI): time moves only when the test
// advances it, so the session timeout, the age limit, the flush interval and a Retry-After are checked without
// sleeping and whatever the speed of the machine.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lib/base/clock.h"
#include "lib/wire/codec.h"
#include "platform/platform.h"
#include "sdk/core/client.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

// A collector stand-in behind the platform transport interface: answers from a script (then 200 with every event
// accepted) and records when each request came, by the manual clock.
class ScriptedTransport : public platform::HttpTransport {
 public:
  struct Sent {
    std::string url;
    int64_t at_ms;  // the clock's monotonic time
  };

  ScriptedTransport(base::Clock* clock, std::vector<platform::HttpResponse> script)
      : clock_(clock), script_(std::move(script)) {}

  base::Status Post(const platform::HttpRequest& req, platform::HttpResponse* resp) override {
    std::lock_guard<std::mutex> l(mu_);
    sent_.push_back({req.url, clock_->MonotonicMs()});
    std::string plain;
    bool zstd = false;
    for (const auto& h : req.headers) zstd |= h == "Content-Encoding: zstd";
    if (!zstd) {
      plain = req.body;
    } else if (wire::Decode(wire::Encoding::kZstd, req.body, 5 << 20, &plain) != wire::DecodeResult::kOk) {
      ADD_FAILURE() << "a body that does not decode";
    }
    nlohmann::json body = nlohmann::json::parse(plain, nullptr, false);
    if (body.is_object() && body["batch"].is_array()) {
      for (auto& ev : body["batch"]) events_.push_back(std::move(ev));
    }
    if (next_ < script_.size()) {
      *resp = script_[next_++];
    } else {
      resp->status = 200;
      resp->body = R"({"accepted":0,"duplicate":0,"suppressed":0,"rejected":[]})";
    }
    cv_.notify_all();
    return base::Status::Ok();
  }

  // Waits (in real time, for the uploader thread) until n requests came; false after 30 s.
  bool WaitForRequests(size_t n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(30), [&] { return sent_.size() >= n; });
  }
  std::vector<Sent> Requests() {
    std::lock_guard<std::mutex> l(mu_);
    return sent_;
  }
  // Every event the batches carried, in the order sent.
  std::vector<nlohmann::json> Events() {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }

 private:
  base::Clock* clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<platform::HttpResponse> script_;
  size_t next_ = 0;
  std::vector<Sent> sent_;
  std::vector<nlohmann::json> events_;
};

class ClockTest : public ::testing::Test {
 protected:
  void TearDown() override { client_.reset(); }

  using Setter = std::function<void(core::ClientOptions*)>;

  // Opens a client on the manual clock (closing the one open before); set adjusts the options.
  core::Client* Open(const Setter& set = nullptr) {
    client_.reset();
    core::ClientOptions o;
    o.storage_path = dir_.File("buffer.db");
    auto k = TestKey();
    o.encryption_key = base::SecretBytes(k.data(), k.size());
    o.app_name = "ferry-tests";
    o.clock = &clock_;
    // The tests track analytics events without granting it: they opt in to holding them (issue 12 item 7).
    o.hold_pending["analytics"] = core::kMaxHoldPendingMs;
    if (set) set(&o);
    auto c = core::Client::Open(std::move(o));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    client_ = c.ok() ? std::move(c).value() : nullptr;
    return client_.get();
  }
  // Opens with an endpoint and the scripted transport (kept in transport_).
  core::Client* OpenUploading(std::vector<platform::HttpResponse> script, const Setter& set) {
    auto t = std::make_unique<ScriptedTransport>(&clock_, std::move(script));
    transport_ = t.get();
    return Open([&](core::ClientOptions* o) {
      o->endpoint = "https://collector.test";
      o->write_key = "wk_test";
      o->default_consent["analytics"] = core::Consent::kGranted;
      o->transport = std::move(t);
      set(o);
    });
  }
  std::vector<json> Events(const std::string& type) {
    std::vector<json> out;
    auto e = client_->ExportLocal();  // waits for the writer's commits
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    if (!e.ok()) return out;
    json exported = json::parse(e.value());
    for (auto& ev : exported["events"]) {
      if (ev["type"] == type) out.push_back(ev);
    }
    return out;
  }

  TempDir dir_;
  base::ManualClock clock_;
  std::unique_ptr<core::Client> client_;
  ScriptedTransport* transport_ = nullptr;  // owned by the client
};

// (Was ClientTest.SessionsRotateAfterIdleTime, which slept 1.2 s of real time.)
TEST_F(ClockTest, SessionsRotateAfterIdleTime) {
  core::Client* c = Open([](core::ClientOptions* o) { o->session_timeout_ms = 1000; });
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Track("A", nullptr, nullptr).ok());
  ASSERT_TRUE(c->Track("B", nullptr, nullptr).ok());
  clock_.Advance(1200);
  ASSERT_TRUE(c->Track("C", nullptr, nullptr).ok());
  auto t = Events("track");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0]["context"]["sessionId"], t[1]["context"]["sessionId"]);
  EXPECT_NE(t[1]["context"]["sessionId"], t[2]["context"]["sessionId"]);
}

TEST_F(ClockTest, SessionStaysWithinTheTimeout) {
  core::Client* c = Open([](core::ClientOptions* o) { o->session_timeout_ms = 1000; });
  ASSERT_NE(c, nullptr);
  for (const char* name : {"A", "B", "C"}) {
    ASSERT_TRUE(c->Track(name, nullptr, nullptr).ok());
    clock_.Advance(1000);  // idle exactly the timeout: not over it
  }
  auto t = Events("track");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0]["context"]["sessionId"], t[2]["context"]["sessionId"]);
}

// (Was ClientTest.AgeLimitEvictsOldEvents, which slept 1.3 s of real time.)
TEST_F(ClockTest, AgeLimitEvictsOldEvents) {
  Setter max_age = [](core::ClientOptions* o) { o->max_event_age_ms = 1000; };
  core::Client* c = Open(max_age);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Track("Old", nullptr, nullptr).ok());
  EXPECT_EQ(Events("track").size(), 1u);
  clock_.Advance(1300);
  c = Open(max_age);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(Events("track").empty());
  EXPECT_EQ(json::parse(c->StatsJson())["evicted"], 1);
}

TEST_F(ClockTest, EventsCarryTheClocksTime) {
  core::Client* c = Open();
  ASSERT_NE(c, nullptr);
  clock_.SetNowMs(1767225600123);  // 2026-01-01T00:00:00.123Z
  ASSERT_TRUE(c->Track("A", nullptr, nullptr).ok());
  auto t = Events("track");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0]["timestamp"], "2026-01-01T00:00:00.123Z");
  // Its messageId is a UUIDv7 of the same time (0x019b76daa87b ms), and so is a consent record's: the collector's
  // index on messageIds takes them at its end.
  EXPECT_EQ(t[0]["messageId"].get<std::string>().substr(0, 15), "019b76da-a87b-7");
  clock_.Advance(1);
  ASSERT_TRUE(c->SetConsent("marketing", core::Consent::kGranted).ok());
  auto records = Events("consent");
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back()["messageId"].get<std::string>().substr(0, 15), "019b76da-a87c-7");
}

TEST_F(ClockTest, FlushIntervalFollowsTheClock) {
  core::Client* c = OpenUploading({}, [](core::ClientOptions* o) {
    o->batch_size = 100;
    o->flush_interval_ms = 60000;
    o->durability = core::Durability::kSync;  // committed (and so sendable) when Track returns
  });
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Track("Tick", nullptr, nullptr).ok());
  EXPECT_TRUE(transport_->Requests().empty());  // one event of a batch of 100, and no time has passed
  clock_.Advance(60000);
  ASSERT_TRUE(transport_->WaitForRequests(1));
  auto sent = transport_->Requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].url, "https://collector.test/v1/batch");
}

TEST_F(ClockTest, RetryAfterHoldsEvenAFlushUntilTheClockPassesIt) {
  platform::HttpResponse busy;
  busy.status = 503;
  busy.retry_after_s = 30;
  core::Client* c = OpenUploading({busy}, [](core::ClientOptions* o) {
    o->batch_size = 1;  // the first event is sent at once
    o->flush_interval_ms = 3600000;
  });
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Track("Tick", nullptr, nullptr).ok());
  ASSERT_TRUE(transport_->WaitForRequests(1));  // answered 503, Retry-After: 30
  // The retry is counted once the uploader has set its backoff from the clock: only then may the clock move.
  ASSERT_TRUE(Eventually([&] { return json::parse(c->StatsJson())["retries"] == 1; }));
  auto flushed = std::async(std::launch::async, [c] { return c->Flush(120000); });
  clock_.Advance(29999);
  EXPECT_EQ(transport_->Requests().size(), 1u);
  clock_.Advance(1);
  EXPECT_TRUE(transport_->WaitForRequests(2));
  if (flushed.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "the flush did not end";
    clock_.Advance(120000);  // ends it (past its deadline) rather than hang the test
  }
  EXPECT_TRUE(flushed.get().ok());
  auto sent = transport_->Requests();
  // With batches of one, the consent record of the default (made at open, issue 12) is a batch of its own: the
  // answered 503, then the record and the event.
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_GE(sent[1].at_ms - sent[0].at_ms, 30000);
  EXPECT_EQ(json::parse(c->StatsJson())["retries"], 1);
}

// ---- Issue 12 item 7: holding the events of a pending purpose is opt-in, per purpose, for at most a maximum hold ----

constexpr int64_t kHourMs = 3600 * 1000;

json StatsOf(core::Client* c) { return json::parse(c->StatsJson()); }

// The uploaded events of one type and name.
std::vector<json> Named(const std::vector<json>& events, const std::string& name) {
  std::vector<json> out;
  for (const auto& ev : events) {
    if (ev.value("event", std::string()) == name) out.push_back(ev);
  }
  return out;
}

// The receipt of the uploaded consent record that set `purpose` to `state` ("" when none was uploaded).
std::string ReceiptOf(const std::vector<json>& events, const std::string& purpose, const std::string& state) {
  for (const auto& ev : events) {
    if (ev["type"] == "consent" && ev["properties"]["purpose"] == purpose && ev["properties"]["state"] == state) {
      return ev["properties"]["receiptId"].get<std::string>();
    }
  }
  return "";
}

TEST_F(ClockTest, APendingPurposesEventIsDroppedByDefault) {
  std::vector<std::string> lines;
  std::mutex lines_mu;
  core::Client* c = Open([&](core::ClientOptions* o) {
    o->hold_pending.clear();  // nothing held: the default
    o->logger = base::Logger([&](base::LogLevel, const std::string& m) {
      std::lock_guard<std::mutex> l(lines_mu);
      lines.push_back(m);
    });
  });
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->GetConsent("marketing"), core::Consent::kPending);
  for (int i = 0; i < 3; ++i) {
    base::Status s = c->Track("Promo Seen", R"({"slot":1})", "marketing");
    EXPECT_EQ(s.code(), base::Code::kConsentDenied) << s.ToString();
  }
  EXPECT_EQ(c->Screen("Home", nullptr).code(), base::Code::kConsentDenied);  // analytics: pending too
  EXPECT_TRUE(Events("track").empty());
  EXPECT_TRUE(Events("screen").empty());
  json s = StatsOf(c);
  EXPECT_EQ(s["dropped_pending"], 4);
  EXPECT_EQ(s["dropped_consent"], 0);
  EXPECT_EQ(s["pending_consent"], 0);
  {
    std::lock_guard<std::mutex> l(lines_mu);
    int marketing = 0;
    for (const auto& m : lines) marketing += m.find("purpose 'marketing' is pending") != std::string::npos;
    EXPECT_EQ(marketing, 1) << "logged once per purpose";
  }
  // The grant brings nothing back; from then on the purpose's events are kept.
  ASSERT_TRUE(c->SetConsent("marketing", core::Consent::kGranted).ok());
  EXPECT_TRUE(Events("track").empty());
  ASSERT_TRUE(c->Track("Promo Seen", nullptr, "marketing").ok());
  EXPECT_EQ(Events("track").size(), 1u);
  EXPECT_EQ(StatsOf(c)["dropped_pending"], 4);
  client_.reset();  // before `lines`, which its logger writes to, goes
}

TEST_F(ClockTest, AHeldPurposeIsUploadedAfterTheGrantNamingIt) {
  core::Client* c = OpenUploading({}, [](core::ClientOptions* o) {
    o->hold_pending["marketing"] = 24 * kHourMs;
    o->flush_interval_ms = 3600000;
    o->durability = core::Durability::kSync;
  });
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Track("Promo Seen", R"({"slot":1})", "marketing").ok());
  clock_.Advance(kHourMs);  // an hour later, well within the day's hold
  ASSERT_TRUE(c->Track("Promo Seen", R"({"slot":2})", "marketing").ok());
  ASSERT_TRUE(c->Track("Other", nullptr, "personalization").code() == base::Code::kConsentDenied);  // not held
  json s = StatsOf(c);
  EXPECT_EQ(s["pending_consent"], 2);
  EXPECT_EQ(s["dropped_pending"], 1);
  ASSERT_TRUE(c->Flush(60000).ok());
  EXPECT_TRUE(Named(transport_->Events(), "Promo Seen").empty()) << "held: never sent while pending";

  ASSERT_TRUE(c->SetConsent("marketing", core::Consent::kGranted).ok());
  ASSERT_TRUE(c->Flush(60000).ok());
  std::vector<json> sent = transport_->Events();
  std::vector<json> promos = Named(sent, "Promo Seen");
  ASSERT_EQ(promos.size(), 2u);
  std::string grant = ReceiptOf(sent, "marketing", "granted");
  ASSERT_FALSE(grant.empty());
  for (const auto& ev : promos) EXPECT_EQ(ev["consentReceipt"], grant) << ev.dump();
  EXPECT_EQ(promos[0]["properties"]["slot"], 1);
  EXPECT_EQ(promos[1]["properties"]["slot"], 2);
  s = StatsOf(c);
  EXPECT_EQ(s["pending_consent"], 0);
  EXPECT_EQ(s["dropped_pending"], 1);
}

TEST_F(ClockTest, HeldEventsOlderThanTheHoldAreDroppedNotReleasedByTheGrant) {
  core::Client* c = OpenUploading({}, [](core::ClientOptions* o) {
    o->hold_pending["marketing"] = 60000;
    o->flush_interval_ms = 3600000;
    o->durability = core::Durability::kSync;
  });
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Track("Old", nullptr, "marketing").ok());
  clock_.Advance(30000);
  ASSERT_TRUE(c->Track("Young", nullptr, "marketing").ok());
  clock_.Advance(30001);  // "Old" is past the minute's hold, "Young" is not
  ASSERT_TRUE(c->SetConsent("marketing", core::Consent::kGranted).ok());
  ASSERT_TRUE(c->Flush(60000).ok());
  std::vector<json> sent = transport_->Events();
  EXPECT_TRUE(Named(sent, "Old").empty());
  ASSERT_EQ(Named(sent, "Young").size(), 1u);
  EXPECT_EQ(StatsOf(c)["dropped_pending"], 1);
}

TEST_F(ClockTest, HeldEventsOlderThanTheHoldAreDroppedWhilePending) {
  core::Client* c = OpenUploading({}, [](core::ClientOptions* o) {
    o->hold_pending["marketing"] = 60000;
    o->flush_interval_ms = 10000;
    o->durability = core::Durability::kSync;
  });
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Track("Stale", nullptr, "marketing").ok());
  EXPECT_EQ(StatsOf(c)["pending_consent"], 1);
  clock_.Advance(60001);  // past the hold, and past the flush interval: the uploader's pass drops it
  ASSERT_TRUE(Eventually([&] { return StatsOf(c)["dropped_pending"] == 1; }));
  EXPECT_EQ(StatsOf(c)["pending_consent"], 0);
  EXPECT_TRUE(Events("track").empty());

  // At open too: a held event past its hold while the app was closed is gone before anything else happens.
  Setter held = [](core::ClientOptions* o) { o->hold_pending["marketing"] = 60000; };
  c = Open(held);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Track("Stale", nullptr, "marketing").ok());
  EXPECT_EQ(Events("track").size(), 1u);
  clock_.Advance(60001);
  c = Open(held);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(Events("track").empty());
  EXPECT_EQ(StatsOf(c)["dropped_pending"], 1);
  // Opened without the hold, what an earlier run held is dropped at once.
  ASSERT_TRUE(c->Track("Kept Then Dropped", nullptr, "marketing").ok());
  EXPECT_EQ(Events("track").size(), 1u);
  c = Open();
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(Events("track").empty());
  EXPECT_EQ(StatsOf(c)["dropped_pending"], 1);
}

TEST_F(ClockTest, SensitiveIsNeverHeldEvenWhenAsked) {
  // ClientOptions directly (the C ABI refuses a hold of "sensitive": client_test).
  core::Client* c = Open([](core::ClientOptions* o) { o->hold_pending["sensitive"] = 24 * kHourMs; });
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Track("Glucose Logged", R"({"mg_dl":140})", "sensitive").code(), base::Code::kConsentDenied);
  EXPECT_TRUE(Events("track").empty());
  json s = StatsOf(c);
  EXPECT_EQ(s["dropped_consent"], 1);
  EXPECT_EQ(s["pending_consent"], 0);
  // A sensitive event made under a grant that went back to pending (a minor's mark) is not kept for the hold either.
  ASSERT_TRUE(c->SetConsent("sensitive", core::Consent::kGranted).ok());
  ASSERT_TRUE(c->Track("Glucose Logged", R"({"mg_dl":120})", "sensitive").ok());
  EXPECT_EQ(Events("track").size(), 1u);
  ASSERT_TRUE(c->SetMinor(true).ok());
  ASSERT_EQ(c->GetConsent("sensitive"), core::Consent::kPending);
  EXPECT_EQ(c->Track("Glucose Logged", nullptr, "sensitive").code(), base::Code::kConsentDenied);
  c = Open([](core::ClientOptions* o) { o->hold_pending["sensitive"] = 24 * kHourMs; });
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(Events("track").empty());
  EXPECT_EQ(StatsOf(c)["dropped_pending"], 1);
}

}  // namespace
}  // namespace ferry::testing
