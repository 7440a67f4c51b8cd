// Minors at the collector (issue 12 item 8) through a real ferry-collector over TLS, on both stores, enforcing:
// - an officer marks a person as a minor (ferryctl subject minor): their marketing events are refused with the reason
//   guardian_missing (counted in /metrics, invisible in the batch's answer) until a guardian's grant is recorded from
//   the device; the subject view says so and who marked it; the mark's undo restores; every change is audited.
// - a device's own flag (a consent record of method "minor" with minor true) binds only that installation: a device
//   that names someone else's userId cannot silence that person's other devices.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "tests/integration/store_collector.h"
#include "tests/support/collector_process.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorProcess;

class MinorTest : public StoreCollectorTest {
 protected:
  void SetUp() override {
    extra_args_ = {"--consent-default", "enforce"};
    StoreCollectorTest::SetUp();
  }

  static json Track(const std::string& anon, const std::string& user, const std::string& purpose, int64_t seq,
                    const std::string& receipt) {
    json e = {{"messageId", base::NewUuidV4()},
              {"type", "track"},
              {"event", purpose + "_seen"},
              {"anonymousId", anon},
              {"userId", user},
              {"timestamp", base::FormatIso8601(base::NowMs())},
              {"purpose", purpose},
              {"deviceSeq", seq},
              {"consentReceipt", receipt}};
    return e;
  }
  // A consent record as the SDK sends it; `minor` -1 leaves the member out.
  static json Consent(const std::string& anon, const std::string& user, const std::string& purpose,
                      const std::string& state, const std::string& method, int64_t seq, const std::string& receipt,
                      int minor = -1) {
    json e = {{"messageId", base::NewUuidV4()},
              {"type", "consent"},
              {"anonymousId", anon},
              {"userId", user},
              {"timestamp", base::FormatIso8601(base::NowMs())},
              {"purpose", "necessary"},
              {"deviceSeq", seq},
              {"properties",
               {{"purpose", purpose},
                {"state", state},
                {"previous", purpose == "necessary" ? "granted" : "pending"},
                {"method", method},
                {"seq", seq},
                {"receiptId", receipt}}}};
    if (minor >= 0) e["properties"]["minor"] = minor == 1;
    return e;
  }
  void Post(const json& batch) {
    auto r = testsupport::HttpRequest(
        "POST", col_->batch_url(), json{{"sentAt", base::FormatIso8601(base::NowMs())}, {"batch", batch}}.dump(),
        {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
    // Refused or not, every event of the batch is answered as accepted.
    json answer = json::parse(r.body, nullptr, false);
    EXPECT_EQ(answer.value("accepted", -1), static_cast<int>(batch.size())) << r.body;
  }
  // The subject's stored track events of `purpose` sent from installation `anon`, with the receipts that covered them.
  std::vector<std::string> Stored(const std::string& subject, const std::string& anon, const std::string& purpose) {
    int rc = 0;
    const std::string file = dir_.File("export.json");
    std::string out =
        Ctl("subject export " + ShellQuote(subject) + " --project shop --output " + ShellQuote(file), &rc);
    EXPECT_EQ(rc, 0) << out;
    std::ifstream in(file);
    json doc = json::parse(in, nullptr, false);
    std::vector<std::string> receipts;
    if (doc.is_discarded() || doc["projects"].empty()) return receipts;
    for (const json& e : doc["projects"][0].value("events", json::array())) {
      if (e["type"] != "track" || e["purpose"] != purpose || e["anonymousId"] != anon) continue;
      const json& record = e["consentProof"]["record"];
      receipts.push_back(record.is_object() ? record.value("receiptId", "") : "");
    }
    return receipts;
  }
  double GuardianMissing() {
    auto m = testsupport::HttpRequest("GET", col_->url() + "/metrics", "", {}, col_->ca_file());
    EXPECT_EQ(m.status, 200);
    return CollectorProcess::MetricValue(
        m.body, "ferry_events_consent_refused_total{reason=\"guardian_missing\",mode=\"enforce\"}");
  }
  // The subject view's minor state in project shop.
  json MinorOf(const std::string& subject) {
    json doc = CtlJson("subject show " + ShellQuote(subject) + " --project shop");
    if (!doc.contains("projects") || doc["projects"].empty()) return json();
    return doc["projects"][0]["minor"];
  }

  TempDir dir_;
};

TEST_P(MinorTest, AnOfficersMarkAsksForAGuardianAndItsUndoRestores) {
  // The child's phone: the child's own grant of marketing admits their events while nobody says they are a minor.
  Post(json::array({Consent("kid-phone", "u-kid", "marketing", "granted", "explicit", 1, "r-own"),
                    Track("kid-phone", "u-kid", "marketing", 2, "r-own")}));
  EXPECT_EQ(Stored("u-kid", "kid-phone", "marketing").size(), 1u);
  EXPECT_EQ(MinorOf("u-kid")["minor"], false);

  // The officer marks the person: every id of them.
  json marked = CtlJson("subject minor u-kid --project shop");
  ASSERT_EQ(marked["projects"].size(), 1u) << marked.dump();
  EXPECT_EQ(marked["projects"][0]["minor"]["minor"], true) << marked.dump();
  json view = MinorOf("u-kid");
  EXPECT_EQ(view["minor"], true) << view.dump();
  bool by_officer = false;
  for (const json& s : view["sources"]) {
    by_officer = by_officer || (s["source"] == "officer" && s["by"] == "officer" && s["scope"] == "person");
  }
  EXPECT_TRUE(by_officer) << view.dump();

  // The child's own grant no longer admits anything: refused, with its own reason.
  Post(json::array({Track("kid-phone", "u-kid", "marketing", 3, "r-own")}));
  EXPECT_EQ(Stored("u-kid", "kid-phone", "marketing").size(), 1u);
  EXPECT_EQ(GuardianMissing(), 1);

  // Undo: the mark is lifted, the child's own grant admits again.
  json lifted = CtlJson("subject minor u-kid --project shop --undo");
  EXPECT_EQ(lifted["projects"][0]["minor"]["minor"], false) << lifted.dump();
  EXPECT_EQ(MinorOf("u-kid")["minor"], false);
  Post(json::array({Track("kid-phone", "u-kid", "marketing", 4, "r-own")}));
  EXPECT_EQ(Stored("u-kid", "kid-phone", "marketing").size(), 2u);
  // A second undo has nothing to lift.
  int rc = 0;
  std::string out = Ctl("subject minor u-kid --project shop --undo", &rc);
  EXPECT_NE(rc, 0) << out;

  // Marked again: refused until a guardian grants marketing from the device; that grant then covers the events.
  CtlJson("subject minor u-kid");
  Post(json::array({Track("kid-phone", "u-kid", "marketing", 5, "r-own")}));
  EXPECT_EQ(Stored("u-kid", "kid-phone", "marketing").size(), 2u);
  EXPECT_EQ(GuardianMissing(), 2);
  Post(json::array({Consent("kid-phone", "u-kid", "marketing", "granted", "guardian", 6, "r-guardian"),
                    Track("kid-phone", "u-kid", "marketing", 7, "r-guardian")}));
  std::vector<std::string> stored = Stored("u-kid", "kid-phone", "marketing");
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(stored.back(), "r-guardian");
  EXPECT_EQ(GuardianMissing(), 2);

  // Only a compliance token may mark; every change is in the audit log.
  std::string analyst = Token("analyst", "analyst");
  out = Ctl("subject minor u-kid", &rc, analyst);
  EXPECT_NE(rc, 0) << out;
  int audited = 0;
  const json audit = CtlJson("audit --limit 10000")["entries"];
  for (const json& e : audit) {
    if (e["action"] == "subject.minor" && e["result"] == "ok") ++audited;
  }
  EXPECT_EQ(audited, 3) << audit.dump();  // marked, lifted, marked again
}

TEST_P(MinorTest, ADevicesFlagCannotSilenceAnIdItNeverUsed) {
  // The person's own phone grants marketing.
  Post(json::array({Consent("victim-phone", "u-victim", "marketing", "granted", "explicit", 1, "r-victim"),
                    Track("victim-phone", "u-victim", "marketing", 2, "r-victim")}));
  // Another installation, holding the public write key, names the person's userId and says its user is a minor.
  Post(json::array({Consent("other-phone", "u-victim", "necessary", "granted", "minor", 1, "r-mark", 1),
                    Consent("other-phone", "u-victim", "marketing", "granted", "explicit", 2, "r-other", 1),
                    Track("other-phone", "u-victim", "marketing", 3, "r-other")}));
  // Its word binds its own installation: its event needs a guardian...
  EXPECT_EQ(Stored("u-victim", "other-phone", "marketing").size(), 0u);
  EXPECT_EQ(GuardianMissing(), 1);
  // ... and nothing else: the person's own phone goes on as before.
  Post(json::array({Track("victim-phone", "u-victim", "marketing", 3, "r-victim")}));
  EXPECT_EQ(Stored("u-victim", "victim-phone", "marketing").size(), 2u);
  EXPECT_EQ(GuardianMissing(), 1);
  // The subject view shows where the flag came from and what it binds.
  json view = MinorOf("u-victim");
  ASSERT_EQ(view["sources"].size(), 1u) << view.dump();
  EXPECT_EQ(view["sources"][0]["source"], "device");
  EXPECT_EQ(view["sources"][0]["scope"], "installation");
  EXPECT_EQ(view["sources"][0]["anonymousId"], "other-phone");
  EXPECT_EQ(view["sources"][0]["receiptId"], "r-mark");

  // The device lifts its flag (minor false): its own grant admits again.
  Post(json::array({Consent("other-phone", "u-victim", "necessary", "granted", "minor", 4, "r-unmark", 0),
                    Track("other-phone", "u-victim", "marketing", 5, "r-other")}));
  EXPECT_EQ(Stored("u-victim", "other-phone", "marketing").size(), 1u);
  EXPECT_EQ(MinorOf("u-victim")["minor"], false);
}

INSTANTIATE_TEST_SUITE_P(Stores, MinorTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace ferry::testing
