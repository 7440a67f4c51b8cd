// Consent on the device (issue 12, items 2, 7 and 8) through the C API and a real ferry-collector over TLS, on both
// stores: a new notice version sends the person's grants back to pending and records it (method "notice_change"),
// and the collector refuses from that record on what the old grant would have admitted.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/store/consent_policy.h"
#include "ferry/ferry.h"
#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "tests/integration/store_collector.h"
#include "tests/support/collector_process.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorProcess;

class ConsentDeviceTest : public StoreCollectorTest {
 protected:
  void SetUp() override {
    extra_args_ = {"--consent-default", "enforce"};
    StoreCollectorTest::SetUp();
  }
  void TearDown() override {
    Close();
    StoreCollectorTest::TearDown();
  }

  // Opens the phone's buffer against the collector; `configure` sets more options.
  template <typename F>
  void Open(F&& configure) {
    ferry_options* o = BaseOptions(dir_.File("phone.db"));
    ASSERT_EQ(ferry_options_set_endpoint(o, col_->url().c_str()), FERRY_OK);
    ASSERT_EQ(ferry_options_set_write_key(o, key_.c_str()), FERRY_OK);
    ASSERT_EQ(ferry_options_set_ca_file(o, col_->ca_file().c_str()), FERRY_OK);
    ASSERT_EQ(ferry_options_set_flush_interval_ms(o, 3600000), FERRY_OK);
    configure(o);
    ASSERT_EQ(ferry_open(o, &client_), FERRY_OK);
  }
  void Close() {
    if (client_ != nullptr) {
      EXPECT_EQ(ferry_close(client_, 10000), FERRY_OK);
    }
    client_ = nullptr;
  }

  // The subject's export over TLS: its one project.
  json Export(const std::string& subject) {
    auto r = testsupport::HttpRequest("GET", col_->url() + "/v1/subjects/" + subject + "/export", "",
                                      {"Authorization: Bearer " + token_}, col_->ca_file());
    EXPECT_EQ(r.status, 200) << r.body;
    json doc = json::parse(r.body, nullptr, false);
    if (!doc.is_object() || !doc["projects"].is_array() || doc["projects"].size() != 1) {
      ADD_FAILURE() << r.body;
      return json::object({{"consentHistory", json::array()}, {"events", json::array()}});
    }
    return doc["projects"][0];
  }

  // Stored non-consent events by name.
  static std::map<std::string, json> Events(const json& project) {
    std::map<std::string, json> out;
    for (const json& e : project["events"]) {
      if (e["type"] != "consent") out[e.value("event", e["type"].get<std::string>())] = e;
    }
    return out;
  }

  double Refused(const std::string& reason) {
    auto m = testsupport::HttpRequest("GET", col_->url() + "/metrics", "", {}, col_->ca_file());
    EXPECT_EQ(m.status, 200) << m.body;
    double v = CollectorProcess::MetricValue(
        m.body, "ferry_events_consent_refused_total{reason=\"" + reason + "\",mode=\"enforce\"}");
    return v < 0 ? 0 : v;  // (no sample yet: none refused)
  }

  TempDir dir_;
  ferry_client* client_ = nullptr;
};

TEST_P(ConsentDeviceTest, ANoticeVersionBumpSendsGrantsBackToPendingOnRecord) {
  // Version 1: the person grants three purposes; their events go up.
  Open([](ferry_options* o) { ASSERT_EQ(ferry_options_set_notice(o, "privacy", "1"), FERRY_OK); });
  ASSERT_NE(client_, nullptr);
  for (const char* p : {"analytics", "marketing", "personalization"}) {
    ASSERT_EQ(ferry_set_consent(client_, p, FERRY_CONSENT_GRANTED), FERRY_OK) << p;
  }
  ASSERT_EQ(ferry_identify(client_, "bump-user", nullptr), FERRY_OK);
  ASSERT_EQ(ferry_track(client_, "Promo Seen", nullptr, "marketing"), FERRY_OK);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);
  Close();

  // Version 2 changed the terms of marketing and analytics only: those two fall back to pending, personalization
  // carries over.
  EXPECT_EQ(ferry_options_set_notice_changed_purposes(nullptr, "marketing"), FERRY_ERR_INVALID_ARGUMENT);
  Open([](ferry_options* o) {
    ASSERT_EQ(ferry_options_set_notice(o, "privacy", "2"), FERRY_OK);
    EXPECT_EQ(ferry_options_set_notice_changed_purposes(o, ""), FERRY_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(ferry_options_set_notice_changed_purposes(o, "marketing,Bad Name"), FERRY_ERR_INVALID_ARGUMENT);
    ASSERT_EQ(ferry_options_set_notice_changed_purposes(o, "marketing, analytics"), FERRY_OK);
    ASSERT_EQ(ferry_options_set_hold_pending(o, "marketing", 3600000), FERRY_OK);
  });
  ASSERT_NE(client_, nullptr);
  EXPECT_EQ(ferry_get_consent(client_, "marketing"), FERRY_CONSENT_PENDING);
  EXPECT_EQ(ferry_get_consent(client_, "analytics"), FERRY_CONSENT_PENDING);
  EXPECT_EQ(ferry_get_consent(client_, "personalization"), FERRY_CONSENT_GRANTED);
  ASSERT_EQ(ferry_track(client_, "Recommendation Shown", nullptr, "personalization"), FERRY_OK);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);

  json p = Export("bump-user");
  std::map<std::string, json> grant, fallback;
  for (const json& c : p["consentHistory"]) {
    const std::string purpose = c["purpose"].get<std::string>();
    if (c["method"] == "explicit") {
      EXPECT_EQ(c["noticeVersion"], "1") << c.dump();
      grant[purpose] = c;
    } else {
      EXPECT_EQ(c["method"], "notice_change") << c.dump();
      EXPECT_EQ(c["previous"], "granted") << c.dump();
      EXPECT_EQ(c["state"], "pending") << c.dump();
      EXPECT_EQ(c["noticeId"], "privacy") << c.dump();
      EXPECT_EQ(c["noticeVersion"], "2") << c.dump();
      ASSERT_TRUE(c["receiptId"].is_string()) << c.dump();
      EXPECT_EQ(fallback.count(purpose), 0u) << "recorded twice: " << c.dump();
      fallback[purpose] = c;
    }
  }
  EXPECT_EQ(grant.size(), 3u) << p["consentHistory"].dump();
  ASSERT_EQ(fallback.size(), 2u) << p["consentHistory"].dump();
  ASSERT_EQ(fallback.count("marketing"), 1u);
  ASSERT_EQ(fallback.count("analytics"), 1u);
  EXPECT_GT(fallback["marketing"]["seq"].get<int64_t>(), grant["marketing"]["seq"].get<int64_t>());
  std::map<std::string, json> events = Events(p);
  ASSERT_EQ(events.count("Recommendation Shown"), 1u) << p["events"].dump();
  EXPECT_EQ(events["Recommendation Shown"]["consentReceipt"], grant["personalization"]["receiptId"]);
  EXPECT_EQ(events["Recommendation Shown"]["consentProof"]["status"], "covered");

  // The collector treats marketing as not granted from the fallback on: an event naming the old grant, made after the
  // fallback in the device's sequence (as a device that ignored the new notice would send it), is refused.
  const double missing_before = Refused(collector::kRefusedConsentMissing);
  ASSERT_TRUE(events.count("Promo Seen")) << p["events"].dump();
  const std::string anon = events["Promo Seen"]["anonymousId"].get<std::string>();
  json stale = {{"messageId", base::NewUuidV4()},
                {"type", "track"},
                {"event", "Stale Promo"},
                {"userId", "bump-user"},
                {"anonymousId", anon},
                {"timestamp", base::FormatIso8601(base::NowMs())},
                {"purpose", "marketing"},
                {"deviceSeq", fallback["marketing"]["seq"].get<int64_t>() + 1},
                {"consentReceipt", grant["marketing"]["receiptId"]}};
  json body = {{"sentAt", base::FormatIso8601(base::NowMs())}, {"batch", json::array({stale})}};
  auto r =
      testsupport::HttpRequest("POST", col_->batch_url(), body.dump(),
                               {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Refused(collector::kRefusedConsentMissing), missing_before + 1);

  // On the device, a marketing event now waits for a new choice (held: the app opted in), then goes up under it.
  ASSERT_EQ(ferry_track(client_, "Promo Held", nullptr, "marketing"), FERRY_OK);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);
  events = Events(Export("bump-user"));
  EXPECT_EQ(events.count("Promo Held"), 0u);
  EXPECT_EQ(events.count("Stale Promo"), 0u);
  ASSERT_EQ(ferry_set_consent(client_, "marketing", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);
  p = Export("bump-user");
  events = Events(p);
  ASSERT_EQ(events.count("Promo Held"), 1u) << p["events"].dump();
  EXPECT_EQ(events["Promo Held"]["consentProof"]["status"], "covered") << events["Promo Held"].dump();
  EXPECT_EQ(events["Promo Held"]["consentProof"]["record"]["noticeVersion"], "2") << events["Promo Held"].dump();
  EXPECT_EQ(events.count("Stale Promo"), 0u);
  Close();

  // Reopened under version 2 without a list: nothing more falls back (personalization carried over to version 2,
  // marketing was granted under it); the history grows by nothing.
  const size_t records = p["consentHistory"].size();
  Open([](ferry_options* o) { ASSERT_EQ(ferry_options_set_notice(o, "privacy", "2"), FERRY_OK); });
  EXPECT_EQ(ferry_get_consent(client_, "personalization"), FERRY_CONSENT_GRANTED);
  EXPECT_EQ(ferry_get_consent(client_, "marketing"), FERRY_CONSENT_GRANTED);
  EXPECT_EQ(ferry_get_consent(client_, "analytics"), FERRY_CONSENT_PENDING);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);
  EXPECT_EQ(Export("bump-user")["consentHistory"].size(), records);
}

// A minor: the mark is recorded and persisted, the minor's own grants admit nothing, a guardian's grant releases the
// waiting events (named with the guardian's receipt), sensitive stays refused until a guardian grants it.
TEST_P(ConsentDeviceTest, AMinorsEventsWaitForTheGuardian) {
  auto stats = [this] {
    char* j = nullptr;
    EXPECT_EQ(ferry_stats_json(client_, &j), FERRY_OK);
    json out = json::parse(j != nullptr ? j : "{}", nullptr, false);
    ferry_free(j);
    return out;
  };
  auto open = [this] {
    Open([](ferry_options* o) {
      ASSERT_EQ(ferry_options_set_notice(o, "privacy", "1"), FERRY_OK);
      ASSERT_EQ(ferry_options_set_hold_pending(o, "analytics", 3600000), FERRY_OK);  // wait for the guardian
    });
  };
  open();
  ASSERT_NE(client_, nullptr);
  ASSERT_EQ(ferry_identify(client_, "minor-user", nullptr), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(client_, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(client_, "marketing", FERRY_CONSENT_DENIED), FERRY_OK);
  EXPECT_EQ(ferry_set_minor(client_, 2), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_set_minor(nullptr, 1), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_set_consent_guardian(client_, "necessary", FERRY_CONSENT_DENIED), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_set_consent_guardian(client_, nullptr, FERRY_CONSENT_GRANTED), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(stats()["minor"], false);
  ASSERT_EQ(ferry_set_minor(client_, 1), FERRY_OK);
  ASSERT_EQ(ferry_set_minor(client_, 1), FERRY_OK);  // unchanged: nothing more on record
  EXPECT_EQ(stats()["minor"], true);
  // The plain grant no longer admits anything; a minor's own grant is recorded but admits nothing either.
  EXPECT_EQ(ferry_get_consent(client_, "analytics"), FERRY_CONSENT_PENDING);
  EXPECT_EQ(ferry_get_consent(client_, "marketing"), FERRY_CONSENT_DENIED);
  EXPECT_EQ(ferry_get_consent(client_, "necessary"), FERRY_CONSENT_GRANTED);
  ASSERT_EQ(ferry_track(client_, "Lesson Opened", nullptr, "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(client_, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  EXPECT_EQ(ferry_get_consent(client_, "analytics"), FERRY_CONSENT_PENDING);
  ASSERT_EQ(ferry_track(client_, "Lesson Finished", nullptr, "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(client_, "sensitive", FERRY_CONSENT_GRANTED), FERRY_OK);
  EXPECT_EQ(ferry_track(client_, "Mood Logged", nullptr, "sensitive"), FERRY_ERR_CONSENT_DENIED);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);
  std::map<std::string, json> events = Events(Export("minor-user"));
  EXPECT_EQ(events.count("Lesson Opened"), 0u);
  EXPECT_EQ(events.count("Lesson Finished"), 0u);
  Close();

  // The mark survives a restart; the guardian's grant releases the waiting events.
  open();
  EXPECT_EQ(stats()["minor"], true);
  EXPECT_EQ(ferry_get_consent(client_, "analytics"), FERRY_CONSENT_PENDING);
  EXPECT_EQ(ferry_get_consent(client_, "sensitive"), FERRY_CONSENT_PENDING);
  ASSERT_EQ(ferry_set_consent_guardian(client_, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  EXPECT_EQ(ferry_get_consent(client_, "analytics"), FERRY_CONSENT_GRANTED);
  ASSERT_EQ(ferry_track(client_, "Quiz Passed", nullptr, "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);

  json p = Export("minor-user");
  const json* guardian = nullptr;
  const json* mark = nullptr;
  int minor_fallbacks = 0, minors_own = 0;
  for (const json& c : p["consentHistory"]) {
    if (c["method"] == "guardian") guardian = &c;
    if (c["method"] == "minor" && c["purpose"] == "necessary") {
      EXPECT_EQ(mark, nullptr) << "the unchanged second mark was recorded: " << c.dump();
      mark = &c;
    }
    if (c["method"] == "minor" && c["purpose"] == "analytics") {
      ++minor_fallbacks;
      EXPECT_EQ(c["previous"], "granted") << c.dump();
      EXPECT_EQ(c["state"], "pending") << c.dump();
    }
  }
  ASSERT_NE(mark, nullptr) << p["consentHistory"].dump();
  for (const json& c : p["consentHistory"]) {
    if (c["method"] == "explicit" && c["seq"].get<int64_t>() > (*mark)["seq"].get<int64_t>()) ++minors_own;
  }
  ASSERT_NE(guardian, nullptr) << p["consentHistory"].dump();
  EXPECT_EQ(minor_fallbacks, 1) << p["consentHistory"].dump();
  EXPECT_EQ(minors_own, 2) << p["consentHistory"].dump();  // the minor's own analytics and sensitive grants
  events = Events(p);
  for (const char* name : {"Lesson Opened", "Lesson Finished", "Quiz Passed"}) {
    ASSERT_EQ(events.count(name), 1u) << name << " " << p["events"].dump();
    EXPECT_EQ(events[name]["consentReceipt"], (*guardian)["receiptId"]) << events[name].dump();
    EXPECT_EQ(events[name]["consentProof"]["status"], "covered") << events[name].dump();
  }
  EXPECT_EQ(events.count("Mood Logged"), 0u);
  // Every record since the mark says so on the wire; the ones before it say it was not marked.
  int marked = 0;
  for (const json& e : p["events"]) {
    if (e["type"] != "consent") continue;
    const json& props = e["properties"];
    ASSERT_TRUE(props["minor"].is_boolean()) << e.dump();
    if (props["minor"] == true) ++marked;
    if (props["seq"].get<int64_t>() < (*mark)["seq"].get<int64_t>()) {
      EXPECT_EQ(props["minor"], false) << e.dump();
    }
  }
  EXPECT_EQ(marked, 1 + 1 + 2 + 1);  // the mark, the fallback, the minor's two grants, the guardian's grant

  // Lifting the mark is recorded too; the minor's grant of sensitive then stands on its own.
  ASSERT_EQ(ferry_set_minor(client_, 0), FERRY_OK);
  EXPECT_EQ(ferry_get_consent(client_, "sensitive"), FERRY_CONSENT_GRANTED);
  ASSERT_EQ(ferry_flush(client_, 20000), FERRY_OK);
  int unmarks = 0;
  json consent_events = json::array();
  const json last = Export("minor-user");
  for (const json& e : last["events"]) {
    if (e["type"] != "consent") continue;
    consent_events.push_back(e["properties"]);
    if (e["properties"]["method"] == "minor" && e["properties"]["minor"] == false) ++unmarks;
  }
  EXPECT_EQ(unmarks, 1) << consent_events.dump();
}

INSTANTIATE_TEST_SUITE_P(Stores, ConsentDeviceTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ferry::testing
