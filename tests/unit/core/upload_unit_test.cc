// The uploader through the public native-transport hook: a scripted transport answers as a collector would, and
// the tests check what the client sent and how it reacted (docs/PROTOCOL.md's answers).
#include <sys/mount.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "ferry/ferry.h"
#include "lib/base/time.h"
#include "lib/wire/codec.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

struct Sent {
  std::string url;
  std::vector<std::string> headers;
  json body;
  int64_t at_ms;
};

struct Answer {
  int status = 200;  // 0: network failure
  uint32_t retry_after = 0;
  std::string body;  // empty with 200: accept everything
  Answer() = default;
  Answer(int s, uint32_t r = 0, std::string b = "") : status(s), retry_after(r), body(std::move(b)) {}  // NOLINT
};

// A collector stand-in: records requests, answers from a script, then accepts everything (deduplicating by
// messageId like the real collector).
struct FakeCollector {
  std::mutex mu;
  std::condition_variable arrived;  // notified on every request
  std::deque<Answer> script;
  std::vector<Sent> sent;
  std::set<std::string> stored;
  int frees = 0;

  static ferry_status Send(const ferry_http_request* req, ferry_http_response* resp, void* user) {
    auto* self = static_cast<FakeCollector*>(user);
    std::lock_guard<std::mutex> l(self->mu);
    Sent s;
    s.url = req->url;
    s.at_ms = base::MonotonicMs();
    bool zstd = false;
    for (const char* const* h = req->headers; *h; ++h) {
      s.headers.emplace_back(*h);
      zstd |= std::strcmp(*h, "Content-Encoding: zstd") == 0;
    }
    std::string raw(reinterpret_cast<const char*>(req->body), req->body_len), plain;
    if (zstd) {
      EXPECT_EQ(wire::Decode(wire::Encoding::kZstd, raw, 5 << 20, &plain), wire::DecodeResult::kOk);
    } else {
      plain = raw;
    }
    s.body = json::parse(plain, nullptr, false);
    self->sent.push_back(s);
    self->arrived.notify_all();
    Answer a;
    if (!self->script.empty()) {
      a = self->script.front();
      self->script.pop_front();
    }
    if (a.status == 0) return FERRY_ERR_NETWORK;
    resp->status = a.status;
    resp->retry_after_s = a.retry_after;
    std::string body = a.body;
    if (a.status == 200 && body.empty() && s.body.contains("batch")) {
      int accepted = 0, dup = 0;
      for (const auto& ev : s.body["batch"]) {
        if (self->stored.insert(ev["messageId"].get<std::string>()).second) {
          accepted++;
        } else {
          dup++;
        }
      }
      body = json{{"accepted", accepted}, {"duplicate", dup}, {"suppressed", 0}, {"rejected", json::array()}}.dump();
    } else if (a.status == 200 && body.empty()) {
      body = R"({"requestId":"r-1","erased":{"events":0}})";
    }
    resp->body = static_cast<uint8_t*>(std::malloc(body.size()));
    std::memcpy(resp->body, body.data(), body.size());
    resp->body_len = body.size();
    return FERRY_OK;
  }
  static void Free(void* user) { static_cast<FakeCollector*>(user)->frees++; }

  size_t Requests() {
    std::lock_guard<std::mutex> l(mu);
    return sent.size();
  }
  // Waits for the uploader thread to send its first request (at most 30 s).
  void WaitForARequest() {
    std::unique_lock<std::mutex> l(mu);
    arrived.wait_for(l, std::chrono::seconds(30), [&] { return !sent.empty(); });
  }
};

class UploadTest : public ::testing::Test {
 protected:
  // Open() sets a default (analytics granted): ferry_open records it once, as a consent record (method "default")
  // that the device sends like any other event (issue 12), so every count of what is sent or buffered holds it too.
  static constexpr int kDefaultRecords = 1;
  ferry_client* Open(uint32_t batch = 10, uint32_t interval_ms = 60000) {
    ferry_options* o = BaseOptions(dir_.File("b.db"));
    ferry_options_set_endpoint(o, "https://collector.test");
    ferry_options_set_write_key(o, "wk_test");
    ferry_options_set_batch_size(o, batch);
    ferry_options_set_flush_interval_ms(o, interval_ms);
    ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
    // Pending marketing waits for consent on the device only because it is held (opt-in, issue 12 item 7).
    ferry_options_set_hold_pending(o, "marketing", 24 * 3600 * 1000);
    ferry_options_set_transport(o, FakeCollector::Send, &fake_, FakeCollector::Free);
    EXPECT_EQ(ferry_open(o, &c_), FERRY_OK);
    return c_;
  }
  void TearDown() override {
    if (c_) ferry_close(c_, 0);
  }
  void Track(int n, const char* purpose = nullptr) {
    for (int i = 0; i < n; ++i) {
      std::string p = "{\"i\":" + std::to_string(i) + "}";
      ASSERT_EQ(ferry_track(c_, "Tick", p.c_str(), purpose), FERRY_OK);
    }
  }
  std::vector<Sent> Batches() {
    std::lock_guard<std::mutex> l(fake_.mu);
    std::vector<Sent> out;
    for (auto& s : fake_.sent) {
      if (s.url.find("/v1/batch") != std::string::npos) out.push_back(s);
    }
    return out;
  }

  TempDir dir_;
  FakeCollector fake_;
  ferry_client* c_ = nullptr;
};

TEST_F(UploadTest, FlushSendsZstdBatchesWithAuthAndDeletesAccepted) {
  Open(/*batch=*/10);
  Track(25);
  ASSERT_EQ(ferry_flush(c_, 5000), FERRY_OK);
  auto b = Batches();
  ASSERT_GE(b.size(), 3u);
  size_t total = 0;
  for (const auto& s : b) {
    EXPECT_EQ(s.url, "https://collector.test/v1/batch");
    EXPECT_NE(std::find(s.headers.begin(), s.headers.end(), "Authorization: Bearer wk_test"), s.headers.end());
    EXPECT_NE(std::find(s.headers.begin(), s.headers.end(), "Content-Encoding: zstd"), s.headers.end());
    ASSERT_TRUE(s.body.is_object());
    EXPECT_TRUE(s.body["sentAt"].is_string());
    EXPECT_LE(s.body["batch"].size(), 10u);
    EXPECT_TRUE(s.body["dropped"].contains("evicted"));
    total += s.body["batch"].size();
  }
  EXPECT_EQ(total, 25u + kDefaultRecords);
  json st = Stats(c_);
  EXPECT_EQ(st["sent"], 25 + kDefaultRecords);
  EXPECT_EQ(st["queued"], 0);
}

TEST_F(UploadTest, BatchSizeTriggersUploadWithoutFlush) {
  Open(/*batch=*/5);
  Track(5);
  fake_.WaitForARequest();
  EXPECT_GE(fake_.Requests(), 1u);
}

TEST_F(UploadTest, IntervalTriggersUpload) {
  Open(/*batch=*/100, /*interval_ms=*/200);
  Track(1);
  fake_.WaitForARequest();  // the interval passes in real time here; clock_test.cc drives it with a manual clock
  EXPECT_EQ(fake_.Requests(), 1u);
}

TEST_F(UploadTest, PendingEventsWaitForConsent) {
  Open();
  Track(3, "marketing");
  Track(2);
  ASSERT_EQ(ferry_flush(c_, 5000), FERRY_OK);
  size_t sent_before = 0;
  for (const auto& s : Batches()) {
    for (const auto& ev : s.body["batch"]) {
      EXPECT_NE(ev["purpose"], "marketing");
      sent_before++;
    }
  }
  EXPECT_EQ(sent_before, 2u + kDefaultRecords);
  ASSERT_EQ(ferry_set_consent(c_, "marketing", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_flush(c_, 5000), FERRY_OK);
  int marketing = 0, consent = 0;
  for (const auto& s : Batches()) {
    for (const auto& ev : s.body["batch"]) {
      marketing += ev["purpose"] == "marketing";
      consent += ev["type"] == "consent";
    }
  }
  EXPECT_EQ(marketing, 3);
  EXPECT_EQ(consent, 1 + kDefaultRecords);  // the grant, and the default recorded at open
}

TEST_F(UploadTest, RejectedEventsAreDroppedAndCounted) {
  fake_.script.push_back({200, 0, R"({"accepted":2,"duplicate":0,"suppressed":0,
      "rejected":[{"index":0,"messageId":"m","reason":"invalid timestamp"}]})"});
  Open();
  Track(3);
  ASSERT_EQ(ferry_flush(c_, 5000), FERRY_OK);
  json st = Stats(c_);
  EXPECT_EQ(st["rejected"], 1);
  EXPECT_EQ(st["queued"], 0);
  EXPECT_NE(st["last_error"].get<std::string>().find("invalid timestamp"), std::string::npos);
}

TEST_F(UploadTest, Status413SplitsTheBatch) {
  fake_.script.push_back({413});
  fake_.script.push_back({413});
  Open(/*batch=*/8);
  Track(8);
  ASSERT_EQ(ferry_flush(c_, 5000), FERRY_OK);
  auto b = Batches();
  ASSERT_GE(b.size(), 3u);
  EXPECT_EQ(b[0].body["batch"].size(), 8u);
  EXPECT_EQ(b[1].body["batch"].size(), 4u);
  EXPECT_EQ(b[2].body["batch"].size(), 2u);
  EXPECT_EQ(fake_.stored.size(), 8u + kDefaultRecords);
}

TEST_F(UploadTest, Status401StopsSendingAndKeepsData) {
  fake_.script.push_back({401});
  Open();
  Track(4);
  EXPECT_EQ(ferry_flush(c_, 3000), FERRY_ERR_NETWORK);
  size_t n = fake_.Requests();
  Track(20);
  EXPECT_EQ(ferry_flush(c_, 300), FERRY_ERR_NETWORK);
  EXPECT_EQ(fake_.Requests(), n);
  json st = Stats(c_);
  EXPECT_EQ(st["queued"], 24 + kDefaultRecords);
  EXPECT_EQ(st["auth_failed"], true);
}

TEST_F(UploadTest, RetryAfterIsHonoured) {
  fake_.script.push_back({503, 1});
  fake_.script.push_back({429, 1});
  Open();
  Track(2);
  ASSERT_EQ(ferry_flush(c_, 10000), FERRY_OK);
  auto b = Batches();
  ASSERT_EQ(b.size(), 3u);
  EXPECT_GE(b[1].at_ms - b[0].at_ms, 1000);
  EXPECT_GE(b[2].at_ms - b[1].at_ms, 1000);
  EXPECT_EQ(Stats(c_)["retries"], 2);
}

TEST_F(UploadTest, ServerErrorsAndNetworkFailuresAreRetried) {
  fake_.script.push_back({500});
  fake_.script.push_back({0});
  fake_.script.push_back({502});
  Open();
  Track(5);
  // Each flush call may cut the exponential backoff short once.
  ferry_status s = FERRY_ERR_TIMEOUT;
  for (int i = 0; i < 10 && s != FERRY_OK; ++i) s = ferry_flush(c_, 3000);
  EXPECT_EQ(s, FERRY_OK);
  EXPECT_EQ(fake_.stored.size(), 5u + kDefaultRecords);
  EXPECT_EQ(Stats(c_)["retries"], 3);
}

TEST_F(UploadTest, UndecodableBatchIsDropped) {
  fake_.script.push_back({400, 0, "bad batch"});
  Open();
  Track(3);
  ASSERT_EQ(ferry_flush(c_, 3000), FERRY_OK);
  json st = Stats(c_);
  EXPECT_EQ(st["rejected"], 3 + kDefaultRecords);  // the whole batch, the default's record with it
  EXPECT_EQ(st["queued"], 0);
}

TEST_F(UploadTest, ForgetWipesLocallyAndSendsTheDeviceIds) {
  Open();
  ASSERT_EQ(ferry_identify(c_, "user-9", nullptr), FERRY_OK);
  json before = Export(c_);
  std::string anon = before["anonymousId"];
  ASSERT_EQ(ferry_reset(c_), FERRY_OK);
  Track(3);
  ASSERT_EQ(ferry_identify(c_, "user-9", nullptr), FERRY_OK);
  ASSERT_EQ(ferry_forget(c_, 5000), FERRY_OK);
  Sent forget;
  {
    std::lock_guard<std::mutex> l(fake_.mu);
    for (auto& s : fake_.sent) {
      if (s.url == "https://collector.test/v1/forget") forget = s;
    }
  }
  ASSERT_TRUE(forget.body.is_object());
  EXPECT_EQ(forget.body["userId"], "user-9");
  EXPECT_EQ(forget.body["anonymousIds"].size(), 2u);
  json after = Export(c_);
  EXPECT_TRUE(after["events"].empty());
  EXPECT_TRUE(after["userId"].is_null());
  EXPECT_NE(after["anonymousId"], anon);
  EXPECT_EQ(Stats(c_)["forgets_sent"], 1);
}

TEST_F(UploadTest, ForgetSurvivesRestartUntilDelivered) {
  fake_.script.push_back({503, 30});
  Open();
  Track(1);
  EXPECT_NE(ferry_forget(c_, 300), FERRY_OK);
  ferry_close(c_, 0);
  c_ = nullptr;
  Open();
  ASSERT_EQ(ferry_flush(c_, 3000), FERRY_OK);  // the reopened uploader delivers the queued erasure first
  int forgets = 0;
  {
    std::lock_guard<std::mutex> l(fake_.mu);
    for (auto& s : fake_.sent) forgets += s.url.find("/v1/forget") != std::string::npos;
  }
  EXPECT_EQ(forgets, 2);
  EXPECT_EQ(Stats(c_)["forgets_sent"], 1);
}

TEST_F(UploadTest, TransportUserIsFreedOnceAtClose) {
  Open();
  ferry_close(c_, 0);
  c_ = nullptr;
  EXPECT_EQ(fake_.frees, 1);
}

// Tracks n events into the buffer at path without an endpoint (nothing leaves), then closes.
void Prefill(const std::string& path, int n) {
  ferry_options* o = BaseOptions(path);
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  ferry_client* c = nullptr;
  ASSERT_EQ(ferry_open(o, &c), FERRY_OK);
  for (int i = 0; i < n; ++i) {
    std::string p = "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + std::string(200, 'x') + "\"}";
    ferry_status st = ferry_track(c, "Tick", p.c_str(), nullptr);
    if (st != FERRY_OK) {
      ADD_FAILURE() << "track " << i << ": " << ferry_status_str(st) << " " << Stats(c)["last_error"];
      break;
    }
  }
  ferry_close(c, 0);
}

TEST_F(UploadTest, SalvagedEventsOfADamagedBufferAreSent) {
  Prefill(dir_.File("b.db"), 1500);
  DamageMiddlePage(dir_.File("b.db"));
  Open(/*batch=*/100);
  json st = Stats(c_);
  int64_t salvaged = st["salvaged"];
  // Three damaged pages cost their rows: ~37 of these compressed events fill a leaf page.
  EXPECT_GE(salvaged, 1300);
  EXPECT_LT(salvaged, 1500);
  ASSERT_EQ(ferry_flush(c_, 30000), FERRY_OK);
  st = Stats(c_);
  // The salvage keeps the consent states but not their receipts, so the reopened buffer records its default again
  // (one record, a receipt for the state in force).
  EXPECT_EQ(st["sent"], salvaged + kDefaultRecords);
  EXPECT_EQ(st["queued"], 0);
  std::lock_guard<std::mutex> l(fake_.mu);
  EXPECT_EQ(static_cast<int64_t>(fake_.stored.size()), salvaged + kDefaultRecords);
}

// A full disk: a small tmpfs (needs CAP_SYS_ADMIN, e.g. root; skipped otherwise), the buffer on it, the rest of it
// filled (16 MiB: room for the WAL, which grows up to 4 MiB before a checkpoint while the buffer fills). The app still
// opens the buffer and drains it.
TEST_F(UploadTest, AFullDiskStillOpensAndDrains) {
  std::string mnt = dir_.File("small-disk");
  std::filesystem::create_directory(mnt);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=16m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << "); the full-disk test needs root";
  }
  struct Unmount {
    std::string at;
    ~Unmount() { umount2(at.c_str(), MNT_DETACH); }
  } unmount{mnt};
  std::string path = mnt + "/b.db";
  Prefill(path, 1000);
  {
    // Fill what is left of the disk.
    std::ofstream filler(mnt + "/filler", std::ios::binary);
    std::string chunk(64 << 10, 'f');
    while (filler.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
    }
  }
  std::ofstream probe(mnt + "/probe", std::ios::binary);
  probe << std::string(8192, 'p');
  probe.flush();
  ASSERT_FALSE(probe.good()) << "the disk is not full";
  // Opens on the full disk.
  ferry_options* o = BaseOptions(path);
  ferry_options_set_endpoint(o, "https://collector.test");
  ferry_options_set_write_key(o, "wk_test");
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  ferry_options_set_transport(o, FakeCollector::Send, &fake_, FakeCollector::Free);
  ASSERT_EQ(ferry_open(o, &c_), FERRY_OK);
  // Prefill's 1000 events and the record of its default (made at its open; the same default now writes nothing).
  EXPECT_EQ(Stats(c_)["queued"], 1000 + kDefaultRecords);
  // And drains.
  ASSERT_EQ(ferry_flush(c_, 30000), FERRY_OK) << Stats(c_).dump();
  json st = Stats(c_);
  EXPECT_EQ(st["sent"], 1000 + kDefaultRecords);
  EXPECT_EQ(st["queued"], 0);
  ferry_close(c_, 0);
  c_ = nullptr;
  {
    std::lock_guard<std::mutex> l(fake_.mu);
    EXPECT_EQ(fake_.stored.size(), 1000u + kDefaultRecords);
  }
  // What was sent is gone from the buffer for good (deleted, not resent at the next open). Reopened with the same
  // default, so that the open records nothing new (dropping it would record the fall back to pending).
  ferry_options* again = BaseOptions(path);
  ferry_options_set_default_consent(again, "analytics", FERRY_CONSENT_GRANTED);
  ferry_client* c = nullptr;
  ASSERT_EQ(ferry_open(again, &c), FERRY_OK);
  EXPECT_EQ(Stats(c)["queued"].get<int64_t>() + Stats(c)["pending_consent"].get<int64_t>(), 0);
  ferry_close(c, 0);
}

}  // namespace
}  // namespace ferry::testing
