// Consent records on record (issue 12): the real SDK records each explicit choice with its method, notice, language,
// the device's sequence number and a receipt id; every event names the device's sequence number and the receipt that
// admitted it; a real ferry-collector over TLS stores the records on both stores and exports them.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "collector/engines/postgres/pg_store.h"
#include "ferry/ferry.h"
#include "tests/support/collector_process.h"
#include "tests/support/pg_cluster.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorProcess;

class ConsentRecordsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string err;
    testsupport::CollectorOptions o;
    if (GetParam() == "postgres") {
      if (!testsupport::PgCluster::Available()) GTEST_SKIP() << "*** SKIPPED: PostgreSQL binaries not found ***";
      cluster_ = testsupport::PgCluster::Start(&err);
      ASSERT_NE(cluster_, nullptr) << err;
      std::string uri = cluster_->CreateDatabase("consent", &err);
      ASSERT_FALSE(uri.empty()) << err;
      collector::PgOptions po;
      po.conninfo = uri;
      auto s = collector::PgStore::Open(po);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      auto k = (*s)->CreateWriteKey("shop");
      auto t = (*s)->CreateAdminToken("officer", {"compliance"});
      ASSERT_TRUE(k.ok() && t.ok());
      key_ = *k;
      token_ = *t;
      o.extra_args = {"--storage", uri};
    }
    col_ = CollectorProcess::Start(o, &err);
    ASSERT_NE(col_, nullptr) << err;
    if (key_.empty()) {
      key_ = col_->write_key();
      token_ = col_->CreateAdminToken("compliance", "officer");
    }
    ASSERT_FALSE(token_.empty());
  }
  void TearDown() override {
    if (client_ != nullptr) ferry_close(client_, 0);
    col_.reset();
    cluster_.reset();
  }

  TempDir dir_;
  std::unique_ptr<testsupport::PgCluster> cluster_;
  std::unique_ptr<CollectorProcess> col_;
  std::string key_, token_;
  ferry_client* client_ = nullptr;
};

TEST_P(ConsentRecordsTest, ChoicesAreRecordedWithReceiptsAndEveryEventNamesTheOneThatAdmittedIt) {
  ferry_options* o = BaseOptions(dir_.File("phone.db"));
  ASSERT_EQ(ferry_options_set_endpoint(o, col_->url().c_str()), FERRY_OK);
  ASSERT_EQ(ferry_options_set_write_key(o, key_.c_str()), FERRY_OK);
  ASSERT_EQ(ferry_options_set_ca_file(o, col_->ca_file().c_str()), FERRY_OK);
  ASSERT_EQ(ferry_options_set_flush_interval_ms(o, 3600000), FERRY_OK);
  EXPECT_EQ(ferry_options_set_notice(o, "privacy", "bad\x01version"), FERRY_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(ferry_options_set_notice(o, "privacy-notice", "2026-11"), FERRY_OK);
  ASSERT_EQ(ferry_options_set_consent_language(o, "de-CH"), FERRY_OK);
  ASSERT_EQ(ferry_open(o, &client_), FERRY_OK);
  ASSERT_EQ(ferry_identify(client_, "user-consent-1", nullptr), FERRY_OK);  // pending analytics: held
  ASSERT_EQ(ferry_set_consent(client_, "marketing", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_track(client_, "Promo Seen", nullptr, "marketing"), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(client_, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_track(client_, "Page Viewed", nullptr, "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(client_, "marketing", FERRY_CONSENT_DENIED), FERRY_OK);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);

  auto r = testsupport::HttpRequest("GET", col_->url() + "/v1/subjects/user-consent-1/export", "",
                                    {"Authorization: Bearer " + token_}, col_->ca_file());
  ASSERT_EQ(r.status, 200) << r.body;
  json doc = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << r.body;
  ASSERT_EQ(doc["projects"].size(), 1u);
  const json& p = doc["projects"][0];

  // Three records, in the device's order, each complete and with a receipt of its own.
  ASSERT_EQ(p["consentHistory"].size(), 3u) << p.dump();
  std::map<int64_t, json> by_seq;
  std::set<std::string> receipts;
  for (const json& c : p["consentHistory"]) {
    EXPECT_EQ(c["method"], "explicit");
    EXPECT_EQ(c["noticeId"], "privacy-notice");
    EXPECT_EQ(c["noticeVersion"], "2026-11");
    EXPECT_EQ(c["language"], "de-CH");
    ASSERT_TRUE(c["seq"].is_number_integer()) << c.dump();
    ASSERT_TRUE(c["receiptId"].is_string()) << c.dump();
    EXPECT_EQ(c["receiptId"].get<std::string>().size(), 36u);
    receipts.insert(c["receiptId"].get<std::string>());
    by_seq[c["seq"].get<int64_t>()] = c;
  }
  EXPECT_EQ(receipts.size(), 3u);
  ASSERT_EQ(by_seq.size(), 3u);
  auto it = by_seq.begin();
  const json grant_marketing = (it++)->second, grant_analytics = (it++)->second, deny_marketing = it->second;
  EXPECT_EQ(grant_marketing["purpose"], "marketing");
  EXPECT_EQ(grant_marketing["state"], "granted");
  EXPECT_EQ(grant_marketing["previous"], "pending");
  EXPECT_EQ(grant_analytics["purpose"], "analytics");
  EXPECT_EQ(deny_marketing["purpose"], "marketing");
  EXPECT_EQ(deny_marketing["state"], "denied");
  EXPECT_EQ(deny_marketing["previous"], "granted");

  // The events: the marketing event was still buffered when marketing was denied, so the device purged it. The
  // identify (made while analytics was pending) names the grant that released it, the page view the grant in force;
  // their sequence numbers place them before and after that grant, as they were made.
  std::map<std::string, json> events;
  for (const json& e : p["events"]) {
    if (e["type"] != "consent") events[e.value("event", e["type"].get<std::string>())] = e;
  }
  EXPECT_EQ(events.count("Promo Seen"), 0u);
  ASSERT_EQ(events.count("identify"), 1u) << p["events"].dump();
  ASSERT_EQ(events.count("Page Viewed"), 1u);
  for (const char* name : {"identify", "Page Viewed"}) {
    const json& e = events[name];
    EXPECT_EQ(e["consentReceipt"], grant_analytics["receiptId"]) << e.dump();
    ASSERT_TRUE(e["deviceSeq"].is_number_integer()) << e.dump();
  }
  EXPECT_LT(events["identify"]["deviceSeq"].get<int64_t>(), grant_analytics["seq"].get<int64_t>());
  EXPECT_GT(events["Page Viewed"]["deviceSeq"].get<int64_t>(), grant_analytics["seq"].get<int64_t>());
  EXPECT_LT(events["Page Viewed"]["deviceSeq"].get<int64_t>(), deny_marketing["seq"].get<int64_t>());
}

INSTANTIATE_TEST_SUITE_P(Stores, ConsentRecordsTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ferry::testing
