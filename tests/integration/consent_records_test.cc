// Consent records on record (issue 12): the real SDK records each explicit choice with its method, notice, language,
// the device's sequence number and a receipt id; every event names the device's sequence number and the receipt that
// admitted it; a real ferry-collector over TLS stores the records on both stores and exports them.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

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
  // The subject's export over TLS, parsed (null when it is not a JSON object: the test has failed then).
  json Export(const std::string& subject) {
    auto r = testsupport::HttpRequest("GET", col_->url() + "/v1/subjects/" + subject + "/export", "",
                                      {"Authorization: Bearer " + token_}, col_->ca_file());
    EXPECT_EQ(r.status, 200) << r.body;
    json doc = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(doc.is_object()) << r.body;
    return doc.is_object() ? doc : json::object({{"projects", json::array()}});
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
  ASSERT_EQ(ferry_options_set_hold_pending(o, "analytics", 3600000), FERRY_OK);  // opt in (issue 12 item 7)
  ASSERT_EQ(ferry_open(o, &client_), FERRY_OK);
  ASSERT_EQ(ferry_identify(client_, "user-consent-1", nullptr), FERRY_OK);  // pending analytics: held
  ASSERT_EQ(ferry_set_consent(client_, "marketing", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(client_, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  // A grant wakes the uploader at once; what it sends is out before the next events are made, so the marketing event
  // below is still buffered when marketing is denied.
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);
  ASSERT_EQ(ferry_track(client_, "Promo Seen", nullptr, "marketing"), FERRY_OK);
  ASSERT_EQ(ferry_track(client_, "Page Viewed", nullptr, "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(client_, "marketing", FERRY_CONSENT_DENIED), FERRY_OK);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);

  json doc = Export("user-consent-1");
  ASSERT_EQ(doc["projects"].size(), 1u) << doc.dump();
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

// Defaults are on record (method "default", once when applied, again when the app changes one), and the collector
// answers for every stored event which record covered it: in the export, through the admin route and ferryctl.
TEST_P(ConsentRecordsTest, DefaultsAreRecordedAndEveryStoredEventNamesTheRecordThatCoveredIt) {
  auto open = [&](ferry_consent analytics_default) {
    ferry_options* o = BaseOptions(dir_.File("demo.db"));
    EXPECT_EQ(ferry_options_set_endpoint(o, col_->url().c_str()), FERRY_OK);
    EXPECT_EQ(ferry_options_set_write_key(o, key_.c_str()), FERRY_OK);
    EXPECT_EQ(ferry_options_set_ca_file(o, col_->ca_file().c_str()), FERRY_OK);
    EXPECT_EQ(ferry_options_set_flush_interval_ms(o, 3600000), FERRY_OK);
    EXPECT_EQ(ferry_options_set_notice(o, "privacy-notice", "3"), FERRY_OK);
    EXPECT_EQ(ferry_options_set_default_consent(o, "analytics", analytics_default), FERRY_OK);
    EXPECT_EQ(ferry_options_set_default_consent(o, "personalization", FERRY_CONSENT_GRANTED), FERRY_OK);
    EXPECT_EQ(ferry_open(o, &client_), FERRY_OK);
  };
  open(FERRY_CONSENT_GRANTED);
  ASSERT_NE(client_, nullptr);
  ASSERT_EQ(ferry_identify(client_, "demo-user", nullptr), FERRY_OK);
  ASSERT_EQ(ferry_track(client_, "Page Viewed", nullptr, "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_track(client_, "Recommendation Shown", nullptr, "personalization"), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(client_, "marketing", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_track(client_, "Promo Seen", nullptr, "marketing"), FERRY_OK);
  ASSERT_EQ(ferry_track(client_, "App Crashed", nullptr, "necessary"), FERRY_OK);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);
  ASSERT_EQ(ferry_close(client_, 5000), FERRY_OK);
  client_ = nullptr;
  // Reopened with the same defaults: nothing new is recorded. Then a release flips the analytics default: recorded.
  open(FERRY_CONSENT_GRANTED);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);
  ASSERT_EQ(ferry_close(client_, 5000), FERRY_OK);
  client_ = nullptr;
  open(FERRY_CONSENT_DENIED);
  ASSERT_EQ(ferry_track(client_, "Page Viewed Again", nullptr, "analytics"), FERRY_ERR_CONSENT_DENIED);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);

  json doc = Export("demo-user");
  ASSERT_EQ(doc["projects"].size(), 1u) << doc.dump();
  const json& p = doc["projects"][0];

  // The records: analytics and personalization by default when first applied, marketing by the user's choice,
  // analytics again when its default changed (granted -> denied); nothing at the reopening that changed nothing.
  std::map<std::string, std::vector<json>> by_purpose;
  std::map<std::string, json> by_receipt;
  for (const json& c : p["consentHistory"]) {
    by_purpose[c["purpose"].get<std::string>()].push_back(c);
    by_receipt[c["receiptId"].get<std::string>()] = c;
    EXPECT_EQ(c["noticeId"], "privacy-notice") << c.dump();
    EXPECT_EQ(c["noticeVersion"], "3") << c.dump();
    ASSERT_TRUE(c["seq"].is_number_integer()) << c.dump();
  }
  EXPECT_EQ(p["consentHistory"].size(), 4u) << p["consentHistory"].dump();
  ASSERT_EQ(by_purpose["analytics"].size(), 2u);
  std::sort(by_purpose["analytics"].begin(), by_purpose["analytics"].end(),
            [](const json& a, const json& b) { return a["seq"].get<int64_t>() < b["seq"].get<int64_t>(); });
  EXPECT_EQ(by_purpose["analytics"][0]["method"], "default");
  EXPECT_EQ(by_purpose["analytics"][0]["state"], "granted");
  EXPECT_EQ(by_purpose["analytics"][0]["previous"], "pending");
  EXPECT_EQ(by_purpose["analytics"][1]["method"], "default");
  EXPECT_EQ(by_purpose["analytics"][1]["state"], "denied");
  EXPECT_EQ(by_purpose["analytics"][1]["previous"], "granted");
  ASSERT_EQ(by_purpose["personalization"].size(), 1u);
  EXPECT_EQ(by_purpose["personalization"][0]["method"], "default");
  ASSERT_EQ(by_purpose["marketing"].size(), 1u);
  EXPECT_EQ(by_purpose["marketing"][0]["method"], "explicit");

  // Every stored event has its proof: each purpose that admitted events has a record on file, and that record is the
  // one the event names; the necessary event needs none.
  std::map<std::string, json> events;
  for (const json& e : p["events"]) {
    if (e["type"] == "consent") {
      EXPECT_EQ(e["consentProof"]["status"], "necessary") << e.dump();
      continue;
    }
    events[e.value("event", e["type"].get<std::string>())] = e;
  }
  for (const char* name : {"identify", "Page Viewed", "Recommendation Shown", "Promo Seen"}) {
    ASSERT_EQ(events.count(name), 1u) << name << " " << p["events"].dump();
    const json& e = events[name];
    const json& proof = e["consentProof"];
    EXPECT_EQ(proof["status"], "covered") << e.dump();
    EXPECT_EQ(proof["basis"], "receipt") << e.dump();
    ASSERT_TRUE(proof["record"].is_object()) << e.dump();
    EXPECT_EQ(proof["record"]["receiptId"], e["consentReceipt"]) << e.dump();
    EXPECT_EQ(proof["record"]["purpose"], e["purpose"]) << e.dump();
    EXPECT_EQ(by_receipt.count(e["consentReceipt"].get<std::string>()), 1u) << e.dump();
  }
  EXPECT_EQ(events["Page Viewed"]["consentProof"]["record"]["method"], "default");
  EXPECT_EQ(events["Promo Seen"]["consentProof"]["record"]["method"], "explicit");
  ASSERT_EQ(events.count("App Crashed"), 1u);
  EXPECT_EQ(events["App Crashed"]["consentProof"]["status"], "necessary");
  EXPECT_EQ(events.count("Page Viewed Again"), 0u);

  // The admin route answers the same for one event, and ferryctl shows it.
  const std::string mid = events["Page Viewed"]["messageId"].get<std::string>();
  auto one = testsupport::HttpRequest("GET", col_->url() + "/v1/subjects/demo-user/events/" + mid + "/consent", "",
                                      {"Authorization: Bearer " + token_}, col_->ca_file());
  ASSERT_EQ(one.status, 200) << one.body;
  json answer = json::parse(one.body, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << one.body;
  EXPECT_EQ(answer["messageId"], mid);
  EXPECT_EQ(answer["project"], p["project"]);
  EXPECT_EQ(answer["purpose"], "analytics");
  EXPECT_EQ(answer["status"], "covered");
  EXPECT_EQ(answer["record"]["receiptId"], events["Page Viewed"]["consentReceipt"]);
  EXPECT_EQ(answer["deviceSeq"], events["Page Viewed"]["deviceSeq"]);
  auto missing = testsupport::HttpRequest("GET", col_->url() + "/v1/subjects/demo-user/events/no-such-event/consent",
                                          "", {"Authorization: Bearer " + token_}, col_->ca_file());
  EXPECT_EQ(missing.status, 404) << missing.body;

  std::string out;
  int rc = testsupport::RunCommand(testsupport::FerryctlBinary() + " --url '" + col_->url() + "' --token '" + token_ +
                                       "' --ca-file '" + col_->ca_file() + "' subject event-consent demo-user '" + mid +
                                       "' 2>&1",
                                   &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("covered by receipt"), std::string::npos) << out;
  EXPECT_NE(out.find(events["Page Viewed"]["consentReceipt"].get<std::string>()), std::string::npos) << out;
  EXPECT_NE(out.find("default"), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(Stores, ConsentRecordsTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ferry::testing
