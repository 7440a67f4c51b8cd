// Downstream propagation (issue 13) through a real ferry-collector over TLS and the real ferryctl, on both stores: an
// erasure and a rectification go on the outbox feed (paged, acknowledged by a consumer) and to a webhook receiver
// running in this test (a real HTTP server, lib/httpd), which answers the first delivery 500 and the next 200; each
// delivery carries an Ed25519 signature over its body that verifies with the key `ferryctl outbox public-key`
// prints; the request shows its delivery per destination.
#include <gtest/gtest.h>
#include <sodium.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/time.h"
#include "lib/httpd/httpd.h"
#include "tests/integration/store_collector.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

std::string Q(const std::string& s) { return ShellQuote(s); }

// The webhook receiver: every POST to /hook is kept; the first answer is 500, the others 200.
struct Receiver {
  struct Delivery {
    std::string body, signature, seq, attempt;
    int answered = 0;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Delivery> got;
  std::unique_ptr<httpd::Server> server;

  bool Start() {
    httpd::ServerOptions o;
    o.io_threads = 1;
    o.worker_threads = 2;
    server = std::make_unique<httpd::Server>(std::move(o));
    server->router().Post("/hook", [this](httpd::Request& req) {
      std::lock_guard<std::mutex> l(mu);
      Delivery d{req.body, req.headers.Get("X-Ferry-Signature"), req.headers.Get("X-Ferry-Seq"),
                 req.headers.Get("X-Ferry-Attempt"), got.empty() ? 500 : 200};
      got.push_back(d);
      cv.notify_all();
      return httpd::Response::Json(d.answered, "{}");
    });
    server->AddListener(httpd::ListenerOptions::Tcp("127.0.0.1", 0));
    return server->Start().ok();
  }
  // Waits until n deliveries came in (or 60 s of real time passed).
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::seconds(60), [&] { return got.size() >= n; });
  }
};

bool Verify(const std::string& body, const std::string& header, const std::string& public_key_b64) {
  const std::string prefix = "ed25519=";
  if (header.rfind(prefix, 0) != 0) return false;
  std::string sig_b64 = header.substr(prefix.size());
  unsigned char sig[crypto_sign_BYTES], pk[crypto_sign_PUBLICKEYBYTES];
  size_t n = 0;
  if (sodium_base642bin(sig, sizeof sig, sig_b64.data(), sig_b64.size(), nullptr, &n, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      n != sizeof sig) {
    return false;
  }
  if (sodium_base642bin(pk, sizeof pk, public_key_b64.data(), public_key_b64.size(), nullptr, &n, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      n != sizeof pk) {
    return false;
  }
  return crypto_sign_verify_detached(sig, reinterpret_cast<const unsigned char*>(body.data()), body.size(), pk) == 0;
}

class OutboxTest : public StoreCollectorTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(sodium_init() >= 0, true);
    ASSERT_TRUE(receiver_.Start());
    extra_args_ = {"--webhook", "warehouse=http://127.0.0.1:" + std::to_string(receiver_.server->port(0)) + "/hook",
                   "--webhook-retry-ms", "200"};
    ASSERT_NO_FATAL_FAILURE(StoreCollectorTest::SetUp());
  }
  void TearDown() override {
    StoreCollectorTest::TearDown();
    if (receiver_.server) receiver_.server->Stop(1000);
  }
  Receiver receiver_;
};

TEST_P(OutboxTest, ErasureAndRectificationReachTheFeedAndASignedRetriedWebhook) {
  if (IsSkipped()) return;
  // Two subjects through ingest.
  json batch = json::array();
  for (const char* who : {"u-erase", "u-fix"}) {
    batch.push_back({{"messageId", std::string("i-") + who},
                     {"type", "identify"},
                     {"userId", who},
                     {"anonymousId", std::string("dev-") + who},
                     {"traits", {{"email", std::string(who) + "@a.example"}}},
                     {"timestamp", base::FormatIso8601(base::NowMs() - 1000)},
                     {"purpose", "analytics"}});
  }
  auto sent =
      testsupport::HttpRequest("POST", col_->batch_url(), json{{"batch", batch}}.dump(),
                               {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
  ASSERT_EQ(sent.status, 200) << sent.body;

  int rc = -1;
  std::string out = Ctl("outbox public-key", &rc);
  ASSERT_EQ(rc, 0) << out;
  std::string public_key = out.substr(0, out.find('\n'));
  ASSERT_EQ(public_key.size(), 44u) << out;

  out = Ctl("--json subject erase u-erase --yes", &rc);
  ASSERT_EQ(rc, 0) << out;
  json receipt = json::parse(out, nullptr, false);
  ASSERT_TRUE(receipt.is_object()) << out;
  std::string erase_request = receipt["requestId"];

  // The receiver: answered 500, then the retry 200; both signed over their exact bodies.
  ASSERT_TRUE(receiver_.WaitFor(2)) << col_->Log();
  {
    std::lock_guard<std::mutex> l(receiver_.mu);
    ASSERT_GE(receiver_.got.size(), 2u);
    EXPECT_EQ(receiver_.got[0].answered, 500);
    EXPECT_EQ(receiver_.got[1].answered, 200);
    EXPECT_EQ(receiver_.got[0].body, receiver_.got[1].body);
    EXPECT_EQ(receiver_.got[0].attempt, "1");
    EXPECT_EQ(receiver_.got[1].attempt, "2");
    for (const auto& d : receiver_.got) {
      EXPECT_TRUE(Verify(d.body, d.signature, public_key)) << d.signature;
      EXPECT_FALSE(Verify(d.body + " ", d.signature, public_key));
    }
    json doc = json::parse(receiver_.got[1].body, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << receiver_.got[1].body;
    EXPECT_EQ(doc["kind"], "erasure");
    EXPECT_EQ(doc["requestId"], erase_request);
    EXPECT_EQ(std::to_string(doc["seq"].get<int64_t>()), receiver_.got[1].seq);
    std::string ids = doc["ids"].dump();
    EXPECT_NE(ids.find("u-erase"), std::string::npos) << ids;
    EXPECT_NE(ids.find("dev-u-erase"), std::string::npos) << ids;
  }

  // The request shows its delivery: delivered at the second attempt.
  json deliveries;
  for (int i = 0; i < 100; ++i) {
    out = Ctl("--json outbox deliveries " + Q(erase_request), &rc);
    ASSERT_EQ(rc, 0) << out;
    deliveries = json::parse(out, nullptr, false);
    ASSERT_TRUE(deliveries.is_object()) << out;
    if (!deliveries["deliveries"].empty() && deliveries["deliveries"][0]["state"] == "delivered") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the receiver answered; the record follows
  }
  ASSERT_EQ(deliveries["deliveries"].size(), 1u) << deliveries.dump();
  EXPECT_EQ(deliveries["deliveries"][0]["destination"], "warehouse");
  EXPECT_EQ(deliveries["deliveries"][0]["state"], "delivered");
  EXPECT_EQ(deliveries["deliveries"][0]["attempts"], 2);
  EXPECT_EQ(deliveries["deliveries"][0]["lastStatus"], 200);

  // A rectification goes on the feed too, with the new traits.
  out = Ctl("subject traits u-fix --set email=new@a.example", &rc);
  ASSERT_EQ(rc, 0) << out;
  ASSERT_TRUE(receiver_.WaitFor(3)) << col_->Log();

  // The feed: both, in order; a consumer acknowledges and pages on.
  out = Ctl("--json outbox list --after 0 --limit 1", &rc);
  ASSERT_EQ(rc, 0) << out;
  json page = json::parse(out, nullptr, false);
  ASSERT_EQ(page["entries"].size(), 1u) << out;
  EXPECT_EQ(page["entries"][0]["kind"], "erasure");
  EXPECT_TRUE(page["more"].get<bool>());
  int64_t first = page["next"];
  out = Ctl("outbox ack --consumer warehouse-sync --seq " + std::to_string(first), &rc);
  ASSERT_EQ(rc, 0) << out;
  out = Ctl("--json outbox list --after " + std::to_string(first), &rc);
  ASSERT_EQ(rc, 0) << out;
  page = json::parse(out, nullptr, false);
  ASSERT_EQ(page["entries"].size(), 1u) << out;
  EXPECT_EQ(page["entries"][0]["kind"], "rectification");
  EXPECT_EQ(page["entries"][0]["change"]["traits"]["email"], "new@a.example");
  EXPECT_EQ(page["acknowledged"]["warehouse-sync"], first);
  out = Ctl("outbox ack --consumer '' --seq 1", &rc);
  EXPECT_EQ(rc, 8) << out;
}

INSTANTIATE_TEST_SUITE_P(Stores, OutboxTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ferry::testing
