// The SDK against a real ferry-collector process over real TLS on loopback: what is stored, exactly once.
#include <map>
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

class SdkCollectorTest : public ::testing::Test {
 protected:
  void StartCollector(CollectorOptions opts = {}) {
    std::string err;
    col_ = CollectorProcess::Start(opts, &err);
    ASSERT_NE(col_, nullptr) << err;
  }
  ferry_options* Options(const std::string& key = "", const std::string& buffer = "b.db") {
    ferry_options* o = BaseOptions(dir_.File(buffer));
    EXPECT_EQ(ferry_options_set_endpoint(o, col_->url().c_str()), FERRY_OK);
    EXPECT_EQ(ferry_options_set_write_key(o, (key.empty() ? col_->write_key() : key).c_str()), FERRY_OK);
    EXPECT_EQ(ferry_options_set_ca_file(o, col_->ca_file().c_str()), FERRY_OK);
    ferry_options_set_flush_interval_ms(o, 60000);
    ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
    return o;
  }
  void Open(ferry_options* o) {
    if (c_) ferry_close(c_, 0);
    ASSERT_EQ(ferry_open(o, &c_), FERRY_OK);
  }
  void TearDown() override {
    if (c_) ferry_close(c_, 0);
  }
  // Stored events by type, and a count per messageId.
  std::vector<json> Stored(const std::string& type = "") {
    std::vector<json> out;
    for (auto& row : col_->DumpEvents()) {
      json body = row["body"].is_string() ? json::parse(row["body"].get<std::string>(), nullptr, false) : row["body"];
      if (type.empty() || body["type"] == type) out.push_back(body);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<CollectorProcess> col_;
  ferry_client* c_ = nullptr;
};

TEST_F(SdkCollectorTest, EveryEventStoredOnceMaskedAndConsentRespected) {
  StartCollector();
  ferry_options* o = Options();
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  ferry_options_set_default_consent(o, "personalization", FERRY_CONSENT_DENIED);
  ASSERT_EQ(ferry_options_set_hold_pending(o, "marketing", 3600000), FERRY_OK);  // pending, held (issue 12 item 7)
  Open(o);
  for (int i = 0; i < 250; ++i) {
    std::string props = R"({"seq":)" + std::to_string(i) +
                        R"(,"email":"li.lei@example.com","phone":"+86 139-1234-5678","password":"pw"})";
    ASSERT_EQ(ferry_track(c_, "Checkout", props.c_str(), nullptr), FERRY_OK);
  }
  ASSERT_EQ(ferry_track(c_, "Promo", R"({"k":1})", "marketing"), FERRY_OK);
  ASSERT_EQ(ferry_track(c_, "Recommend", nullptr, "personalization"), FERRY_ERR_CONSENT_DENIED);
  ASSERT_EQ(ferry_identify(c_, "user-1", R"({"name":"Li Lei","mail":"li.lei@example.com"})"), FERRY_OK);
  ASSERT_EQ(ferry_flush(c_, 15000), FERRY_OK);

  auto tracks = Stored("track");
  std::set<int> seqs;
  for (const auto& t : tracks) {
    ASSERT_NE(t["event"], "Promo") << "a pending-consent event reached the collector";
    ASSERT_NE(t["event"], "Recommend");
    EXPECT_TRUE(seqs.insert(t["properties"]["seq"].get<int>()).second) << "stored twice";
    EXPECT_EQ(t["properties"]["email"], "[email]");
    EXPECT_EQ(t["properties"]["phone"], "[phone]");
    EXPECT_FALSE(t["properties"].contains("password"));
    EXPECT_TRUE(t.contains("receivedAt"));
  }
  EXPECT_EQ(seqs.size(), 250u);
  auto ids = Stored("identify");
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0]["userId"], "user-1");
  EXPECT_EQ(ids[0]["traits"]["mail"], "[email]");
  json st = Stats(c_);
  EXPECT_EQ(st["sent"], 251 + 2);  // and the records of the two defaults (issue 12)
  EXPECT_EQ(st["queued"], 0);
  EXPECT_EQ(st["pending_consent"], 1);

  // Granting sends the pending event (and the consent record) — once.
  ASSERT_EQ(ferry_set_consent(c_, "marketing", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_flush(c_, 15000), FERRY_OK);
  int promos = 0;
  for (const auto& t : Stored("track")) promos += t["event"] == "Promo";
  EXPECT_EQ(promos, 1);
  // The grant, once, beside the records of the two defaults made at open (issue 12: method "default").
  auto consent = Stored("consent");
  ASSERT_EQ(consent.size(), 3u);
  std::map<std::string, json> by_purpose;
  for (const auto& r : consent) by_purpose[r["properties"]["purpose"].get<std::string>()] = r;
  ASSERT_EQ(by_purpose.size(), 3u);
  EXPECT_EQ(by_purpose["marketing"]["properties"]["state"], "granted");
  EXPECT_EQ(by_purpose["marketing"]["properties"]["method"], "explicit");
  EXPECT_EQ(by_purpose["marketing"]["purpose"], "necessary");
  EXPECT_EQ(by_purpose["analytics"]["properties"]["state"], "granted");
  EXPECT_EQ(by_purpose["analytics"]["properties"]["method"], "default");
  EXPECT_EQ(by_purpose["personalization"]["properties"]["state"], "denied");
  EXPECT_EQ(by_purpose["personalization"]["properties"]["method"], "default");
}

TEST_F(SdkCollectorTest, LostAnswersAreResentAndStoredOnce) {
  CollectorOptions co;
  co.fault_plan_json = R"([{"status":500,"after_store":true},{"status":503,"after_store":true,"retry_after":1}])";
  StartCollector(co);
  ferry_options* o = Options();
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  Open(o);
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(ferry_track(c_, "E", ("{\"seq\":" + std::to_string(i) + "}").c_str(), nullptr), FERRY_OK);
  ferry_status s = FERRY_ERR_TIMEOUT;
  for (int i = 0; i < 10 && s != FERRY_OK; ++i) s = ferry_flush(c_, 5000);
  ASSERT_EQ(s, FERRY_OK);
  EXPECT_EQ(Stored("track").size(), 20u);
  json st = Stats(c_);
  EXPECT_EQ(st["duplicate"], 20 + 1);  // the default's record (issue 12) went in the same lost-answer batch
  EXPECT_EQ(st["retries"], 2);
}

TEST_F(SdkCollectorTest, TlsIsVerified) {
  StartCollector();
  // Without the test CA the collector's certificate is not trusted: nothing is sent.
  ferry_options* o = BaseOptions(dir_.File("b.db"));
  ferry_options_set_endpoint(o, col_->url().c_str());
  ferry_options_set_write_key(o, col_->write_key().c_str());
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  Open(o);
  ASSERT_EQ(ferry_track(c_, "E", nullptr, nullptr), FERRY_OK);
  EXPECT_NE(ferry_flush(c_, 1500), FERRY_OK);
  EXPECT_TRUE(Stored().empty());
  EXPECT_NE(Stats(c_)["last_error"].get<std::string>().find("reached"), std::string::npos);
  ferry_close(c_, 0);
  c_ = nullptr;
  // With the CA, the same buffer is delivered.
  o = Options();
  Open(o);
  EXPECT_EQ(ferry_flush(c_, 15000), FERRY_OK);
  EXPECT_EQ(Stored("track").size(), 1u);
}

TEST_F(SdkCollectorTest, PinnedPublicKeyIsEnforced) {
  StartCollector();
  std::string pin;
  ASSERT_EQ(testsupport::RunCommand("openssl x509 -in " + col_->ca_file() +
                                        " -pubkey -noout | openssl pkey -pubin -outform der | "
                                        "openssl dgst -sha256 -binary | base64",
                                    &pin),
            0);
  while (!pin.empty() && (pin.back() == '\n' || pin.back() == '\r')) pin.pop_back();
  ferry_options* o = Options();
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  ASSERT_EQ(ferry_options_set_pinned_public_key(o, "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), FERRY_OK);
  Open(o);
  ASSERT_EQ(ferry_track(c_, "E", nullptr, nullptr), FERRY_OK);
  EXPECT_NE(ferry_flush(c_, 1500), FERRY_OK);
  EXPECT_TRUE(Stored().empty());
  o = Options();
  ASSERT_EQ(ferry_options_set_pinned_public_key(o, ("sha256//" + pin).c_str()), FERRY_OK);
  Open(o);
  EXPECT_EQ(ferry_flush(c_, 15000), FERRY_OK);
  EXPECT_EQ(Stored("track").size(), 1u);
}

TEST_F(SdkCollectorTest, WrongWriteKeyKeepsDataUntilReopenedWithTheRightOne) {
  StartCollector();
  ferry_options* o = Options("fw_not_a_real_key");
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  Open(o);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(ferry_track(c_, "E", nullptr, nullptr), FERRY_OK);
  EXPECT_EQ(ferry_flush(c_, 5000), FERRY_ERR_NETWORK);
  json st = Stats(c_);
  EXPECT_EQ(st["auth_failed"], true);
  EXPECT_EQ(st["queued"], 5 + 1);  // and the record of the default (issue 12)
  Open(Options());
  EXPECT_EQ(ferry_flush(c_, 15000), FERRY_OK);
  EXPECT_EQ(Stored("track").size(), 5u);
}

TEST_F(SdkCollectorTest, CloseIsBoundedWhileARequestHangs) {
  CollectorOptions co;
  co.fault_plan_json = R"([{"status":500,"delay_ms":8000}])";
  StartCollector(co);
  ferry_options* o = Options();
  ferry_options_set_batch_size(o, 1);
  Open(o);
  ASSERT_EQ(ferry_track(c_, "E", nullptr, nullptr), FERRY_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the upload is now in flight, held by the collector
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ferry_close(c_, 300), FERRY_ERR_TIMEOUT);
  c_ = nullptr;
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 4000) << "close waited for the hanging request";
  // The event stayed in the buffer and goes out on the next open.
  Open(Options());
  EXPECT_EQ(ferry_flush(c_, 15000), FERRY_OK);
  EXPECT_EQ(Stored("track").size(), 1u);
}

TEST_F(SdkCollectorTest, PlainHttpOnLoopback) {
  CollectorOptions co;
  co.tls = false;
  StartCollector(co);
  ferry_options* o = BaseOptions(dir_.File("b.db"));
  ASSERT_EQ(ferry_options_set_endpoint(o, col_->url().c_str()), FERRY_OK);
  ferry_options_set_write_key(o, col_->write_key().c_str());
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  Open(o);
  ASSERT_EQ(ferry_track(c_, "E", nullptr, nullptr), FERRY_OK);
  EXPECT_EQ(ferry_flush(c_, 15000), FERRY_OK);
  EXPECT_EQ(Stored("track").size(), 1u);
}

}  // namespace
}  // namespace ferry::testing
