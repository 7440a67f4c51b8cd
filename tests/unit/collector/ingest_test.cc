#include "collector/ingest/ingest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "collector/http/faults.h"
#include "collector/http/metrics.h"
#include "collector/http/rate_limit.h"
#include "collector/ingest/group_commit.h"
#include "lib/base/time.h"

namespace ferry::collector {
namespace {

using wire::Json;

Json Event(int i) {
  return Json{{"messageId", "m-" + std::to_string(i)},
              {"type", "track"},
              {"event", "Viewed"},
              {"anonymousId", "a-1"},
              {"timestamp", "2026-01-01T00:00:00.000Z"},
              {"purpose", "analytics"},
              {"properties", {{"i", i}}}};
}

std::string Body(const Json& batch, const char* sent_at = "2026-01-01T00:00:10.000Z") {
  Json b = {{"batch", batch}};
  if (sent_at) b["sentAt"] = sent_at;
  return b.dump();
}

const int64_t kReceived = *base::ParseIso8601("2026-01-01T00:00:15.000Z");

TEST(ParseBatch, ValidEventsAreCorrectedForClockSkew) {
  std::string body = Body(Json::array({Event(1), Event(2)}));
  ParsedBatch p = ParseBatch(wire::Encoding::kZstd, wire::ZstdCompress(body), wire::Limits(), kReceived);
  ASSERT_EQ(p.status, 200) << p.error;
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_TRUE(p.skew_corrected);
  EXPECT_EQ(p.skew_ms, 5000);
  const StoredEvent& e = p.events[0];
  EXPECT_EQ(e.message_id, "m-1");
  EXPECT_EQ(e.name, "Viewed");
  EXPECT_EQ(e.anonymous_id, "a-1");
  EXPECT_EQ(e.timestamp_ms, *base::ParseIso8601("2026-01-01T00:00:05.000Z"));
  EXPECT_EQ(e.received_ms, kReceived);
  Json stored = Json::parse(e.body);
  EXPECT_EQ(stored["timestamp"], "2026-01-01T00:00:05.000Z");
  EXPECT_EQ(stored["originalTimestamp"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(stored["receivedAt"], "2026-01-01T00:00:15.000Z");
  EXPECT_EQ(stored["properties"]["i"], 1);
}

TEST(ParseBatch, NoSentAtMeansNoCorrection) {
  ParsedBatch p =
      ParseBatch(wire::Encoding::kIdentity, Body(Json::array({Event(1)}), nullptr), wire::Limits(), kReceived);
  ASSERT_EQ(p.status, 200);
  EXPECT_FALSE(p.skew_corrected);
  EXPECT_EQ(p.events[0].timestamp_ms, *base::ParseIso8601("2026-01-01T00:00:00.000Z"));
  EXPECT_FALSE(Json::parse(p.events[0].body).contains("originalTimestamp"));
}

TEST(ParseBatch, RejectsBadEventsWithIndexAndReason) {
  Json bad = Event(2);
  bad.erase("purpose");
  Json batch = Json::array({Event(1), bad, 42, Event(3)});
  ParsedBatch p = ParseBatch(wire::Encoding::kIdentity, Body(batch), wire::Limits(), kReceived);
  ASSERT_EQ(p.status, 200);
  EXPECT_EQ(p.events.size(), 2u);
  ASSERT_EQ(p.rejected.size(), 2u);
  EXPECT_EQ(p.rejected[0].index, 1u);
  EXPECT_EQ(p.rejected[0].message_id, "m-2");
  EXPECT_EQ(p.rejected[0].reason, "missing purpose");
  EXPECT_EQ(p.rejected[1].index, 2u);
  EXPECT_EQ(p.rejected[1].message_id, "");
  std::string answer = BatchAnswer(2, 0, 0, p.rejected);
  Json a = Json::parse(answer);
  EXPECT_EQ(a["accepted"], 2);
  EXPECT_EQ(a["rejected"][0]["index"], 1);
  EXPECT_EQ(a["rejected"][0]["reason"], "missing purpose");
}

// Issue 12: a consent record's method, notice, language, device sequence number and receipt are kept; malformed
// ones, and a malformed deviceSeq or consentReceipt on any event, reject that event alone.
TEST(ParseBatch, ConsentRecordFieldsAreKeptAndMalformedOnesRejected) {
  Json rec = Event(1);
  rec["type"] = "consent";
  rec["purpose"] = "necessary";
  rec["deviceSeq"] = 7;
  rec["properties"] = {{"purpose", "marketing"}, {"state", "granted"},   {"previous", "pending"}, {"method", "default"},
                       {"noticeId", "privacy"},  {"noticeVersion", "3"}, {"language", "fr-CA"},   {"seq", 7},
                       {"receiptId", "r-1"}};
  Json ev = Event(2);
  ev["deviceSeq"] = 8;
  ev["consentReceipt"] = "r-1";
  Json bad_seq = Event(3);
  bad_seq["deviceSeq"] = -1;
  Json bad_receipt = Event(4);
  bad_receipt["consentReceipt"] = 5;
  Json bad_record = rec;
  bad_record["messageId"] = "m-5";
  bad_record["properties"]["seq"] = "7";
  Json batch = Json::array({rec, ev, bad_seq, bad_receipt, bad_record});
  ParsedBatch p = ParseBatch(wire::Encoding::kIdentity, Body(batch), wire::Limits(), kReceived);
  ASSERT_EQ(p.status, 200);
  ASSERT_EQ(p.events.size(), 2u);
  const StoredEvent& c = p.events[0];
  EXPECT_EQ(c.consent_method, "default");
  EXPECT_EQ(c.notice_id, "privacy");
  EXPECT_EQ(c.notice_version, "3");
  EXPECT_EQ(c.language, "fr-CA");
  EXPECT_EQ(c.consent_seq, 7);
  EXPECT_EQ(c.receipt_id, "r-1");
  EXPECT_NE(p.events[1].body.find("\"consentReceipt\":\"r-1\""), std::string::npos);
  ASSERT_EQ(p.rejected.size(), 3u);
  EXPECT_EQ(p.rejected[0].reason, "invalid deviceSeq");
  EXPECT_EQ(p.rejected[1].reason, "invalid consentReceipt");
  EXPECT_EQ(p.rejected[2].reason, "invalid consent seq");
}

TEST(ParseBatch, OversizedEventIsRejectedAlone) {
  Json big = Event(2);
  big["properties"]["blob"] = std::string(40 * 1024, 'x');
  ParsedBatch p = ParseBatch(wire::Encoding::kIdentity, Body(Json::array({Event(1), big})), wire::Limits(), kReceived);
  ASSERT_EQ(p.status, 200);
  ASSERT_EQ(p.events.size(), 1u);
  ASSERT_EQ(p.rejected.size(), 1u);
  EXPECT_EQ(p.rejected[0].index, 1u);
  EXPECT_EQ(p.rejected[0].reason, "event too large");
}

TEST(ParseBatch, EnvelopeErrors) {
  wire::Limits lim;
  EXPECT_EQ(ParseBatch(wire::Encoding::kIdentity, "{not json", lim, kReceived).status, 400);
  EXPECT_EQ(ParseBatch(wire::Encoding::kIdentity, "[]", lim, kReceived).status, 400);
  EXPECT_EQ(ParseBatch(wire::Encoding::kIdentity, "{\"batch\":{}}", lim, kReceived).status, 400);
  EXPECT_EQ(ParseBatch(wire::Encoding::kZstd, "garbage", lim, kReceived).status, 400);
  EXPECT_EQ(ParseBatch(wire::Encoding::kUnknown, "{}", lim, kReceived).status, 415);
  EXPECT_EQ(ParseBatch(wire::Encoding::kIdentity, std::string(2000000, '['), lim, kReceived).status, 400);
  lim.max_batch_events = 3;
  Json four = Json::array({Event(1), Event(2), Event(3), Event(4)});
  ParsedBatch p = ParseBatch(wire::Encoding::kIdentity, Body(four), lim, kReceived);
  EXPECT_EQ(p.status, 413);
  EXPECT_TRUE(p.events.empty());
  lim = wire::Limits();
  lim.max_decompressed_bytes = 100;
  EXPECT_EQ(ParseBatch(wire::Encoding::kZstd, wire::ZstdCompress(Body(four)), lim, kReceived).status, 413);
}

TEST(ParseBatch, EventTimesStayInTheWindowAroundTheReceivedTime) {
  // Dated 2999 (no sentAt): clamped to the window's edge and flagged, the device's value kept.
  Json future = Event(1);
  future["timestamp"] = "2999-01-01T00:00:00.000Z";
  Json past = Event(2);
  past["timestamp"] = "0001-01-01T00:00:00.000Z";
  Json fine = Event(3);  // 15 s before the received time: inside the window, untouched
  TimeWindow window;
  window.max_past_ms = 3600 * 1000;
  window.max_future_ms = 60 * 1000;
  ParsedBatch p = ParseBatch(wire::Encoding::kIdentity, Body(Json::array({future, past, fine}), nullptr),
                             wire::Limits(), kReceived, window);
  ASSERT_EQ(p.status, 200) << p.error;
  ASSERT_EQ(p.events.size(), 3u);
  EXPECT_EQ(p.clamped, 2u);
  EXPECT_EQ(p.events[0].timestamp_ms, kReceived + 60 * 1000);
  EXPECT_EQ(p.events[0].received_ms, kReceived);
  Json body0 = Json::parse(p.events[0].body);
  EXPECT_EQ(body0["timestampClamped"], "future");
  EXPECT_EQ(body0["originalTimestamp"], "2999-01-01T00:00:00.000Z");
  EXPECT_EQ(base::ParseIso8601(body0["timestamp"].get<std::string>()), kReceived + 60 * 1000);
  EXPECT_EQ(p.events[1].timestamp_ms, kReceived - 3600 * 1000);
  EXPECT_EQ(Json::parse(p.events[1].body)["timestampClamped"], "past");
  EXPECT_EQ(p.events[2].timestamp_ms, kReceived - 15000);
  EXPECT_FALSE(Json::parse(p.events[2].body).contains("timestampClamped"));
  // The default window bounds the future too.
  ParsedBatch d =
      ParseBatch(wire::Encoding::kIdentity, Body(Json::array({future}), nullptr), wire::Limits(), kReceived);
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].timestamp_ms, kReceived + TimeWindow().max_future_ms);
}

TEST(ParseBatch, SkewCorrectionNeverStoresATimeTheParserRejects) {
  // sentAt in year 1 and an event in year 9999: the correction would add ~2000 years (a 5-digit year). Even with the
  // window switched off, the stored time stays within 0000-9999 and reads back.
  Json e = Event(1);
  e["timestamp"] = "9999-06-01T00:00:00.000Z";
  Json early = Event(2);
  early["timestamp"] = "0000-01-01T00:00:00.000Z";
  for (TimeWindow window : {TimeWindow(), TimeWindow{0, 0}}) {
    for (const char* sent_at : {"0001-01-01T00:00:00.000Z", "9999-12-31T00:00:00.000Z"}) {
      ParsedBatch p = ParseBatch(wire::Encoding::kIdentity, Body(Json::array({e, early}), sent_at), wire::Limits(),
                                 kReceived, window);
      ASSERT_EQ(p.status, 200) << p.error;
      ASSERT_EQ(p.events.size(), 2u);
      for (const StoredEvent& se : p.events) {
        std::string ts = Json::parse(se.body)["timestamp"].get<std::string>();
        auto back = base::ParseIso8601(ts);
        ASSERT_TRUE(back.has_value()) << ts;
        EXPECT_EQ(*back, se.timestamp_ms) << ts;
      }
    }
  }
}

TEST(ParseBatch, DroppedCountersAndTypedFields) {
  Json consent = Event(1);
  consent["type"] = "consent";
  consent["properties"] = {{"purpose", "marketing"}, {"state", "denied"}, {"previous", "granted"}};
  Json alias = Event(2);
  alias["type"] = "alias";
  alias["userId"] = "u-1";
  alias["previousId"] = "a-1";
  Json b = {{"batch", Json::array({consent, alias})},
            {"dropped", {{"evicted", 7}, {"negative", -1}, {"text", "x"}, {"expired", 0}}}};
  ParsedBatch p = ParseBatch(wire::Encoding::kIdentity, b.dump(), wire::Limits(), kReceived);
  ASSERT_EQ(p.status, 200);
  EXPECT_EQ(p.dropped, (std::map<std::string, int64_t>{{"evicted", 7}, {"expired", 0}}));
  EXPECT_EQ(p.events[0].consent_purpose, "marketing");
  EXPECT_EQ(p.events[0].consent_state, "denied");
  EXPECT_EQ(p.events[0].consent_previous, "granted");
  EXPECT_EQ(p.events[1].previous_id, "a-1");
  EXPECT_EQ(p.events[1].user_id, "u-1");
}

// An ingest sink that records what it is given (a fake for the group-commit unit test only). Its first transaction
// waits until the test opens the gate: a slow disk, while the other requests queue up behind it.
class RecordingSink : public IngestSink {
 public:
  base::Status Insert(std::vector<InsertRequest*>& reqs) override {
    {
      std::unique_lock<std::mutex> lock(mu);
      if (transactions.empty()) {
        in_first = true;
        first_size = reqs.size();
        cv.notify_all();
        cv.wait(lock, [this] { return gate_open; });
      }
      transactions.push_back(reqs.size());
    }
    for (InsertRequest* r : reqs) r->outcomes.assign(r->events.size(), InsertOutcome::kAccepted);
    return base::Status::Ok();
  }
  // Waits until the writer is inside its first transaction; how many requests that one holds.
  size_t WaitInFirst() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return in_first; });
    return first_size;
  }
  void OpenGate() {
    std::lock_guard<std::mutex> lock(mu);
    gate_open = true;
    cv.notify_all();
  }

  std::mutex mu;
  std::condition_variable cv;
  bool in_first = false, gate_open = false;
  size_t first_size = 0;
  std::vector<size_t> transactions;
};

TEST(GroupCommitter, BatchesConcurrentRequestsIntoFewTransactions) {
  RecordingSink store;
  GroupCommitter gc(&store);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      InsertRequest r;
      r.events.resize(10);
      if (gc.Submit(&r).ok() && r.outcomes.size() == 10) ++ok;
    });
  }
  // The writer is inside its first transaction; the other requests queue up behind it (the observable event),
  // then the slow disk finishes.
  size_t in_first = store.WaitInFirst();
  while (gc.Queued() < 16 - in_first) std::this_thread::yield();
  store.OpenGate();
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 16);
  size_t total = 0;
  for (size_t n : store.transactions) total += n;
  EXPECT_EQ(total, 16u);
  EXPECT_LT(store.transactions.size(), 16u);  // at least two requests shared a transaction
  // Its counters say the same (GET /metrics).
  GroupCommitter::Stats st = gc.stats();
  EXPECT_EQ(st.transactions, static_cast<int64_t>(store.transactions.size()));
  EXPECT_EQ(st.requests, 16);
  EXPECT_EQ(st.events, 160);
  EXPECT_EQ(st.failed_transactions, 0);
  EXPECT_GT(st.busy_seconds, 0);
  EXPECT_EQ(st.queued, 0u);
  gc.Stop();
  InsertRequest late;
  EXPECT_EQ(gc.Submit(&late).code(), base::Code::kClosed);
}

// A sink whose disk is gone: every transaction fails.
class FailingSink : public IngestSink {
 public:
  base::Status Insert(std::vector<InsertRequest*>&) override { return base::Status::Storage("disk I/O error"); }
};

TEST(GroupCommitter, CountsFailedTransactions) {
  FailingSink sink;
  GroupCommitter gc(&sink);
  InsertRequest r;
  r.events.resize(3);
  EXPECT_EQ(gc.Submit(&r).code(), base::Code::kStorage);
  GroupCommitter::Stats st = gc.stats();
  EXPECT_EQ(st.transactions, 1);
  EXPECT_EQ(st.failed_transactions, 1);
  EXPECT_EQ(st.events, 3);
  std::string text = RenderGroupCommit(st);
  EXPECT_NE(text.find("ferry_store_commit_failures_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE ferry_store_commit_queue gauge\n"), std::string::npos) << text;
}

// A sink that counts the transactions under way at once; each waits (up to `patience`) until `want` are.
class OverlapSink : public IngestSink {
 public:
  OverlapSink(int want, std::chrono::milliseconds patience) : want_(want), patience_(patience) {}
  base::Status Insert(std::vector<InsertRequest*>&) override {
    std::unique_lock<std::mutex> l(mu_);
    ++now_;
    most_ = std::max(most_, now_);
    cv_.notify_all();
    cv_.wait_for(l, patience_, [&] { return most_ >= want_; });
    --now_;
    return base::Status::Ok();
  }
  // Waits until a transaction is under way.
  void AwaitOne() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return now_ > 0; });
  }
  int most() {
    std::lock_guard<std::mutex> l(mu_);
    return most_;
  }

 private:
  const int want_;
  const std::chrono::milliseconds patience_;
  std::mutex mu_;
  std::condition_variable cv_;
  int now_ = 0, most_ = 0;
};

// Two writers run two transactions side by side (PostgreSQL); one runs one at a time.
TEST(GroupCommitter, WritersRunTransactionsSideBySide) {
  for (int writers : {1, 2}) {
    // One writer can never run two at once (its first waits a little, in vain); two do at once (a long wait, that
    // only a broken committer sits out).
    OverlapSink sink(2, std::chrono::milliseconds(writers == 1 ? 300 : 10000));
    GroupCommitter gc(&sink, GroupCommitter::kMaxEvents, writers);
    InsertRequest a, b;
    a.events.resize(1);
    b.events.resize(1);
    std::thread first([&] { EXPECT_TRUE(gc.Submit(&a).ok()); });
    sink.AwaitOne();  // the first is in a transaction: the second cannot join it
    EXPECT_TRUE(gc.Submit(&b).ok());
    first.join();
    EXPECT_EQ(sink.most(), writers);
    GroupCommitter::Stats st = gc.stats();
    EXPECT_EQ(st.transactions, 2);
    EXPECT_EQ(st.requests, 2);
    gc.Stop();
    gc.Stop();  // again: nothing left to join
  }
}

// A sink on a slow disk: every transaction takes at least 30 ms.
class SlowSink : public IngestSink {
 public:
  base::Status Insert(std::vector<InsertRequest*>&) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    return base::Status::Ok();
  }
};

TEST(GroupCommitter, HistogramsOfTransactionsAndWaits) {
  SlowSink sink;
  GroupCommitter gc(&sink);
  InsertRequest a, b;
  a.events.resize(2);
  b.events.resize(1);
  ASSERT_TRUE(gc.Submit(&a).ok());
  ASSERT_TRUE(gc.Submit(&b).ok());
  GroupCommitter::Stats st = gc.stats();
  ASSERT_EQ(st.transactions, 2);
  // Each transaction took 30 ms or more: none in a bucket of 25 ms or less, both counted, the longest at least 30 ms.
  std::string text = RenderGroupCommit(st);
  EXPECT_NE(text.find("# TYPE ferry_store_commit_duration_seconds histogram\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_store_commit_duration_seconds_bucket{le=\"0.025\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_store_commit_duration_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_store_commit_duration_seconds_count 2\n"), std::string::npos) << text;
  EXPECT_GE(st.longest_seconds, 0.030);
  EXPECT_LE(st.longest_seconds, st.busy_seconds);
  // Each request waited for its whole transaction.
  EXPECT_NE(text.find("ferry_store_commit_wait_seconds_bucket{le=\"0.025\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_store_commit_wait_seconds_count 2\n"), std::string::npos) << text;
  EXPECT_GE(st.wait_seconds, 0.060);
  // An engine that does not report checkpoints adds nothing; the embedded store's are rendered by who made them.
  EXPECT_EQ(RenderCheckpoints(Engine::CheckpointStats()), "");
  Engine::CheckpointStats ck;
  ck.reported = true;
  ck.background = 7;
  ck.background_seconds = 0.5;
  ck.writer = 1;
  ck.writer_seconds = 0.25;
  text = RenderCheckpoints(ck);
  EXPECT_NE(text.find("ferry_store_checkpoints_total{by=\"checkpointer\"} 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_store_checkpoints_total{by=\"writer\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_store_checkpoint_seconds_total{by=\"writer\"} 0.250000\n"), std::string::npos) << text;
}

TEST(RateLimiter, TokenBucket) {
  RateLimiter rl(2, 2);
  EXPECT_EQ(rl.Take("k", 0), 0);
  EXPECT_EQ(rl.Take("k", 0), 0);
  EXPECT_GE(rl.Take("k", 0), 1);
  EXPECT_EQ(rl.Take("other", 0), 0);
  EXPECT_EQ(rl.Take("k", 600), 0);  // 1.2 tokens refilled
  RateLimiter off(0, 0);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(off.Take("k", 0), 0);
}

TEST(FaultPlan, ParsesItems) {
  FaultPlan fp;
  ASSERT_TRUE(fp.LoadJson(R"([503, {"status":429,"retry_after":2}, "reset", {"status":500,"after_store":true}])").ok());
  EXPECT_EQ(fp.Remaining(), 4u);
  auto a = fp.Next();
  EXPECT_EQ(a->status, 503);
  auto b = fp.Next();
  EXPECT_EQ(b->retry_after, 2);
  EXPECT_TRUE(fp.Next()->reset);
  EXPECT_TRUE(fp.Next()->after_store);
  EXPECT_FALSE(fp.Next().has_value());
  EXPECT_FALSE(fp.LoadJson("{}").ok());
  EXPECT_FALSE(fp.LoadJson("[\"boom\"]").ok());
  EXPECT_FALSE(fp.LoadJson("[{\"status\":\"x\"}]").ok());
}

TEST(Metrics, RendersPrometheusText) {
  Metrics m;
  m.AddEvents(5, 1, 2, 0);
  m.ObserveBatch(200, 0.003);
  m.ObserveBatch(401, 0.0001);
  std::string t = m.Render();
  EXPECT_NE(t.find("ferry_events_accepted_total 5\n"), std::string::npos);
  EXPECT_NE(t.find("ferry_events_duplicate_total 1\n"), std::string::npos);
  EXPECT_NE(t.find("ferry_events_rejected_total 2\n"), std::string::npos);
  EXPECT_NE(t.find("ferry_batches_total{code=\"200\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("ferry_batches_total{code=\"401\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("ferry_request_duration_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("ferry_request_duration_seconds_bucket{le=\"0.005\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("ferry_request_duration_seconds_count 2\n"), std::string::npos);
}

}  // namespace
}  // namespace ferry::collector
