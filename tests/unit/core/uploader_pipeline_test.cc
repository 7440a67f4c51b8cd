// The uploader with more than one transport: as many batch requests in flight, answers taken in the order sent, every
// event kept until its own batch is answered, a batch that holds a consent record sent alone, and no transport used
// by two requests at once.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lib/base/secret.h"
#include "lib/wire/codec.h"
#include "sdk/core/buffer.h"
#include "sdk/core/uploader.h"

namespace ferry::core {
namespace {

using nlohmann::json;

// What one request carried and how it went.
struct Request {
  std::vector<std::string> ids;    // messageIds, in order
  std::vector<int64_t> seqs;       // their deviceSeq
  bool consent = false;            // it holds a consent record
  std::set<int> in_flight_beside;  // requests that were in flight while it arrived
};

// A collector stand-in shared by both transports: stores by messageId (deduplicating), answers from a per-request
// script, and can hold a request's answer until another request has been answered.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Request> requests;
  std::set<int> in_flight;
  std::set<int> answered;
  std::map<std::string, int> stored;               // messageId -> times stored
  std::map<int, int> status;                       // request index -> status to answer (200 when absent)
  std::map<int, int> hold_until;                   // request index -> answer only once this request was answered
  std::function<void(const Request&)> on_request;  // called (unlocked) as each request arrives
  bool flushing = false;                           // the test has asked for a flush
  std::vector<bool> during_flush;                  // per request: it arrived after the test asked for a flush

  base::Status Post(const platform::HttpRequest& req, platform::HttpResponse* resp) {
    std::string plain;
    EXPECT_EQ(wire::Decode(wire::Encoding::kZstd, req.body, 5 << 20, &plain), wire::DecodeResult::kOk);
    json body = json::parse(plain, nullptr, false);
    Request r;
    for (const auto& ev : body["batch"]) {
      r.ids.push_back(ev["messageId"].get<std::string>());
      r.seqs.push_back(ev["deviceSeq"].get<int64_t>());
      r.consent = r.consent || ev["type"] == "consent";
    }
    std::unique_lock<std::mutex> l(mu);
    if (on_request) {
      l.unlock();
      on_request(r);
      l.lock();
    }
    r.in_flight_beside = in_flight;
    during_flush.push_back(flushing);
    const int me = static_cast<int>(requests.size());
    requests.push_back(r);
    in_flight.insert(me);
    cv.notify_all();
    if (auto h = hold_until.find(me); h != hold_until.end()) {
      const int other = h->second;
      cv.wait_for(l, std::chrono::seconds(20), [&] { return answered.count(other) > 0; });
    }
    auto st = status.find(me);
    resp->status = st == status.end() ? 200 : st->second;
    if (resp->status == 200) {
      int accepted = 0, duplicate = 0;
      for (const auto& id : r.ids) (stored[id]++ == 0 ? accepted : duplicate)++;
      resp->body = json{{"accepted", accepted}, {"duplicate", duplicate}, {"suppressed", 0}}.dump();
    } else {
      resp->body = R"({"error":"injected"})";
    }
    in_flight.erase(me);
    answered.insert(me);
    cv.notify_all();
    return base::Status::Ok();
  }
};

class Transport : public platform::HttpTransport {
 public:
  explicit Transport(Collector* c) : c_(c) {}
  base::Status Post(const platform::HttpRequest& req, platform::HttpResponse* resp) override {
    // A transport (a libcurl handle) serves one request at a time.
    EXPECT_FALSE(busy_.exchange(true)) << "a transport was given a second request while it sent one";
    base::Status s = c_->Post(req, resp);
    busy_ = false;
    return s;
  }

 private:
  Collector* c_;
  std::atomic<bool> busy_{false};
};

class UploaderPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-pipeline-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto b = Buffer::Open(dir_ + "/b.db", base::SecretBytes::Random(32), base::Logger());
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    buffer_ = std::move(b).value();
    opts_.endpoint = "https://collector.test";
    opts_.write_key = "wk_test";
    opts_.batch_size = 10;
    opts_.flush_interval_ms = 600000;
  }
  void TearDown() override {
    if (up_) up_->Stop();
    up_.reset();
    buffer_.reset();
    std::filesystem::remove_all(dir_);
  }
  static std::string Track(int i) {
    return "{\"messageId\":\"m-" + std::to_string(i) + "\",\"deviceSeq\":" + std::to_string(i) +
           ",\"consentReceipt\":null,\"type\":\"track\",\"event\":\"E\",\"anonymousId\":\"a-1\"}";
  }
  // A consent record as the client writes it (nlohmann's dump: keys sorted).
  static std::string ConsentRecord(int i) {
    return "{\"anonymousId\":\"a-1\",\"deviceSeq\":" + std::to_string(i) + ",\"messageId\":\"m-" + std::to_string(i) +
           "\",\"properties\":{\"purpose\":\"analytics\",\"state\":\"granted\"},\"purpose\":\"necessary\","
           "\"type\":\"consent\"}";
  }
  void Append(const std::vector<std::string>& bodies) {
    std::vector<NewEvent> evs;
    for (const auto& b : bodies) evs.push_back(NewEvent{"analytics", 1, "", "a-1", b, "", 0});
    ASSERT_TRUE(buffer_->Append(evs).ok());
  }
  void Start(int transports = 2) {
    up_ = std::make_unique<Uploader>(
        opts_, buffer_.get(), &stats_, base::Logger(), [] { return std::set<std::string>{"analytics"}; },
        std::make_unique<Transport>(&col_));
    for (int i = 1; i < transports; ++i) up_->AddTransport(std::make_unique<Transport>(&col_));
    up_->Start();
  }
  // Flushes until nothing is left (a failed request leaves a backoff that the next flush cuts short once).
  void FlushAll() {
    const std::set<std::string> purposes{"analytics"};
    auto max = buffer_->MaxSeq(purposes);
    ASSERT_TRUE(max.ok());
    base::Status s = base::Status::Timeout("");
    for (int i = 0; i < 10 && !s.ok(); ++i) {
      s = up_->Flush(purposes, max.value(), opts_.clock->MonotonicMs() + 30000);
    }
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::string dir_;
  std::unique_ptr<Buffer> buffer_;
  ClientOptions opts_;
  Stats stats_;
  Collector col_;
  std::unique_ptr<Uploader> up_;
};

TEST_F(UploaderPipelineTest, TheNextBatchIsSentWhileTheFirstIsAnsweredAndEachEventOnce) {
  std::vector<std::string> bodies;
  for (int i = 1; i <= 50; ++i) bodies.push_back(Track(i));
  Append(bodies);
  col_.hold_until[0] = 1;  // the first answer waits for the second request's: it can only come if both are in flight
  Start();
  FlushAll();
  std::lock_guard<std::mutex> l(col_.mu);
  ASSERT_GE(col_.requests.size(), 5u);
  EXPECT_EQ(col_.requests[1].in_flight_beside, std::set<int>{0});
  EXPECT_EQ(col_.stored.size(), 50u);
  for (const auto& [id, n] : col_.stored) EXPECT_EQ(n, 1) << id << " was sent more than once";
  EXPECT_EQ(col_.requests.size(), 5u);  // no batch was sent twice
  EXPECT_EQ(stats_.sent.load(), 50);
  EXPECT_EQ(stats_.duplicate.load(), 0);
  EXPECT_EQ(buffer_->Counts()["analytics"].events, 0);
}

TEST_F(UploaderPipelineTest, ThreeTransportsKeepThreeRequestsInFlight) {
  std::vector<std::string> bodies;
  for (int i = 1; i <= 60; ++i) bodies.push_back(Track(i));
  Append(bodies);
  // The first two answers wait for the third request's: they can only come if all three are in flight.
  col_.hold_until[0] = 2;
  col_.hold_until[1] = 2;
  Start(3);
  FlushAll();
  std::lock_guard<std::mutex> l(col_.mu);
  ASSERT_EQ(col_.requests.size(), 6u);  // no batch was sent twice
  EXPECT_EQ(col_.requests[2].in_flight_beside, (std::set<int>{0, 1}));
  for (const Request& r : col_.requests) EXPECT_LE(r.in_flight_beside.size(), 2u);
  EXPECT_EQ(col_.stored.size(), 60u);
  for (const auto& [id, n] : col_.stored) EXPECT_EQ(n, 1) << id << " was sent more than once";
  EXPECT_EQ(stats_.sent.load(), 60);
  EXPECT_EQ(buffer_->Counts()["analytics"].events, 0);
}

TEST_F(UploaderPipelineTest, AFailedFirstRequestKeepsItsEventsWhileTheSecondIsDeleted) {
  std::vector<std::string> bodies;
  for (int i = 1; i <= 20; ++i) bodies.push_back(Track(i));
  Append(bodies);
  col_.hold_until[0] = 1;  // the second is answered (200) first, then the first fails
  col_.status[0] = 503;
  Start();
  FlushAll();
  std::lock_guard<std::mutex> l(col_.mu);
  ASSERT_EQ(col_.requests.size(), 3u);
  EXPECT_EQ(col_.requests[0].ids, col_.requests[2].ids);  // the failed batch, and only it, went again
  EXPECT_EQ(col_.stored.size(), 20u);
  for (const auto& [id, n] : col_.stored) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(stats_.sent.load(), 20);
  EXPECT_EQ(stats_.retries.load(), 1);
  EXPECT_EQ(buffer_->Counts()["analytics"].events, 0);
}

TEST_F(UploaderPipelineTest, ABatchWithAConsentRecordIsAnsweredBeforeTheNextIsSent) {
  std::vector<std::string> bodies;
  for (int i = 1; i <= 12; ++i) bodies.push_back(Track(i));
  bodies.push_back(ConsentRecord(13));
  for (int i = 14; i <= 40; ++i) bodies.push_back(Track(i));
  Append(bodies);
  Start();
  FlushAll();
  std::lock_guard<std::mutex> l(col_.mu);
  ASSERT_EQ(col_.requests.size(), 4u);
  // (The first two requests may arrive in either order: each goes from its own thread.)
  int record = -1;
  for (size_t i = 0; i < col_.requests.size(); ++i) {
    if (col_.requests[i].consent) record = static_cast<int>(i);
  }
  ASSERT_GE(record, 0);
  for (size_t i = 0; i < col_.requests.size(); ++i) {
    if (col_.requests[i].seqs.front() > col_.requests[static_cast<size_t>(record)].seqs.back()) {
      EXPECT_EQ(col_.requests[i].in_flight_beside.count(record), 0u)
          << "request " << i << " went before the record's answer";
    }
  }
  EXPECT_EQ(col_.stored.size(), 40u);
  EXPECT_EQ(buffer_->Counts()["analytics"].events, 0);
}

TEST_F(UploaderPipelineTest, APassEndsAfterItsFirstPartialBatchAndAFlushSendsTheRest) {
  std::vector<std::string> bodies;
  for (int i = 1; i <= 25; ++i) bodies.push_back(Track(i));
  Append(bodies);
  // While the pass's partial batch (5 events) is on its way, 3 more events are committed: a steady stream would
  // otherwise be sent as a tiny request after every answer.
  col_.on_request = [&](const Request& r) {
    if (r.ids.size() == 5) Append({Track(26), Track(27), Track(28)});
  };
  Start();
  up_->Notify(25);  // batch_size (10) reached: a pass that no flush asked for
  {
    std::unique_lock<std::mutex> l(col_.mu);
    ASSERT_TRUE(col_.cv.wait_for(l, std::chrono::seconds(30), [&] { return col_.answered.size() >= 3; }));
  }
  // The pass deletes what was answered; the three later events stay for the next pass (batch_size of them, the
  // interval, or a flush).
  for (int i = 0; i < 3000 && buffer_->Counts()["analytics"].events != 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(buffer_->Counts()["analytics"].events, 3);
  {
    std::lock_guard<std::mutex> l(col_.mu);
    col_.flushing = true;
  }
  FlushAll();
  std::lock_guard<std::mutex> l(col_.mu);
  ASSERT_EQ(col_.requests.size(), 4u);
  // By their first event (two requests in flight may arrive in either order): 1-10, 11-20, 21-25 from the pass, and
  // 26-28 only from the flush.
  std::map<int64_t, size_t> by_first;
  for (size_t i = 0; i < col_.requests.size(); ++i) by_first[col_.requests[i].seqs.front()] = i;
  ASSERT_EQ(by_first.size(), 4u);
  std::vector<size_t> sizes;
  for (const auto& [seq, i] : by_first) sizes.push_back(col_.requests[i].ids.size());
  EXPECT_EQ(sizes, (std::vector<size_t>{10, 10, 5, 3}));
  ASSERT_EQ(by_first.count(26), 1u);
  EXPECT_EQ(col_.requests[by_first[26]].ids, (std::vector<std::string>{"m-26", "m-27", "m-28"}));
  EXPECT_FALSE(col_.during_flush[by_first[21]]);
  EXPECT_TRUE(col_.during_flush[by_first[26]]) << "the pass went on with a partial batch after its first one";
  EXPECT_EQ(col_.stored.size(), 28u);
  EXPECT_EQ(buffer_->Counts()["analytics"].events, 0);
}

TEST(UploaderMayOverlap, OnlyTheClientsTrackScreenAndPageEvents) {
  auto one = [](const std::string& body) { return Uploader::MayOverlap({QueuedEvent{1, "analytics", 0, body}}); };
  EXPECT_TRUE(one(R"({"messageId":"m","deviceSeq":3,"consentReceipt":null,"type":"track","event":"E"})"));
  EXPECT_TRUE(one(R"({"messageId":"m\"x","deviceSeq":3,"consentReceipt":"r-1","type":"screen","name":"S"})"));
  EXPECT_TRUE(one(R"({"messageId":"m","deviceSeq":3,"consentReceipt":null,"type":"page"})"));
  EXPECT_FALSE(one(R"({"messageId":"m","deviceSeq":3,"consentReceipt":null,"type":"identify","userId":"u"})"));
  EXPECT_FALSE(one(R"({"messageId":"m","deviceSeq":3,"consentReceipt":null,"type":"alias"})"));
  EXPECT_FALSE(one(R"({"messageId":"m","deviceSeq":3,"consentReceipt":null,"type":"trackx"})"));
  EXPECT_FALSE(one(R"({"anonymousId":"a","deviceSeq":3,"messageId":"m","type":"consent"})"));
  EXPECT_FALSE(one(R"({"type":"track","messageId":"m"})"));
  EXPECT_FALSE(one(R"({"messageId":"m)"));
  EXPECT_FALSE(Uploader::MayOverlap({QueuedEvent{1, "analytics", 0,
                                                 R"({"messageId":"m","deviceSeq":1,)"
                                                 R"("consentReceipt":null,"type":"track"})"},
                                     QueuedEvent{2, "necessary", 0, R"({"anonymousId":"a","type":"consent"})"}}));
}

}  // namespace
}  // namespace ferry::core
