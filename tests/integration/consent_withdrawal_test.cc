// Withdrawal acting on stored data (issue 12 item 6) through a real ferry-collector over TLS, on both stores and with
// each setting: one identified person with a phone and a tablet; the tablet denies marketing; the person's stored
// marketing events (from both devices) are erased, or restricted (kept, marked restricted in every export, under a
// restriction the register names), while their analytics events stay; the register holds a system-initiated
// "withdrawal" request, the audit log its entry and the outbox its propagation. The work happens off the ingest path
// (the withdrawal job says so in the log; the test waits on that line, never on a timer).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "collector/engines/open_store.h"
#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "tests/integration/store_collector.h"
#include "tests/support/collector_process.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

class WithdrawalTest : public StoreCollectorTest {
 protected:
  void SetUp() override {
    extra_args_ = {"--consent-default", "enforce"};
    StoreCollectorTest::SetUp();
  }

  json Event(const std::string& type, const std::string& anon, const std::string& purpose) {
    json e = {{"messageId", base::NewUuidV4()},
              {"type", type},
              {"userId", "u-ana"},
              {"anonymousId", anon},
              {"timestamp", base::FormatIso8601(base::NowMs())},
              {"purpose", purpose}};
    if (type == "track") e["event"] = purpose + "_seen";
    return e;
  }
  json Track(const std::string& anon, const std::string& purpose) { return Event("track", anon, purpose); }
  json Consent(const std::string& anon, const std::string& purpose, const std::string& state,
               const std::string& previous) {
    json e = Event("consent", anon, "necessary");
    e["properties"] = {{"purpose", purpose},
                       {"state", state},
                       {"previous", previous},
                       {"method", "explicit"},
                       {"receiptId", "rcpt-" + anon + "-" + purpose + "-" + state}};
    return e;
  }
  void Post(const json& batch) {
    auto r = testsupport::HttpRequest(
        "POST", col_->batch_url(), json{{"sentAt", base::FormatIso8601(base::NowMs())}, {"batch", batch}}.dump(),
        {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // The person's export (the officer's lookup): its first project.
  json Export() {
    int rc = 0;
    const std::string file = dir_.File("export.json");
    std::string out = Ctl("subject export u-ana --project shop --output " + ShellQuote(file), &rc);
    EXPECT_EQ(rc, 0) << out;
    std::ifstream in(file);
    json doc = json::parse(in, nullptr, false);
    if (doc.is_discarded() || doc["projects"].empty()) return json::object();
    return doc["projects"][0];
  }
  // Tracks in the export by purpose, and how many of them are marked restricted.
  void Count(const json& project, int* marketing, int* analytics, int* restricted) {
    *marketing = *analytics = *restricted = 0;
    for (const json& e : project.value("events", json::array())) {
      if (e["type"] != "track") continue;
      if (e["purpose"] == "marketing") ++*marketing;
      if (e["purpose"] == "analytics") ++*analytics;
      if (e.value("restricted", false)) ++*restricted;
    }
  }
  void SetAction(const std::string& action) {
    if (!uri_.empty()) {
      collector::PgOptions po;
      po.conninfo = uri_;
      auto s = collector::PgStore::Open(po);
      ASSERT_TRUE(s.ok());
      auto ok = (*s)->SetWithdrawalAction("shop", "marketing", action);
      ASSERT_TRUE(ok.ok() && *ok);
      return;
    }
    std::string out;
    ASSERT_EQ(testsupport::RunCommand(
                  ShellQuote(testsupport::FerryctlBinary()) + " --data-dir " + ShellQuote(col_->data_dir()) +
                      " projects set-withdrawal --project shop --purpose marketing --action " + action + " 2>&1",
                  &out),
              0)
        << out;
  }

  // Phone and tablet of u-ana: both grant analytics and marketing and send events; then the tablet denies
  // marketing (with the project's setting `action`). Waits for the withdrawal job to carry it out and checks the
  // register, the audit log and the outbox; returns the register entry.
  json DenyOnTheTablet(const std::string& action) {
    if (action != "erase") SetAction(action);  // erase is the default
    json phone = json::array(
        {Consent("phone-1", "analytics", "granted", "pending"), Consent("phone-1", "marketing", "granted", "pending")});
    for (int i = 0; i < 3; ++i) phone.push_back(Track("phone-1", "marketing"));
    for (int i = 0; i < 2; ++i) phone.push_back(Track("phone-1", "analytics"));
    Post(phone);
    Post(json::array({Consent("tablet-1", "marketing", "granted", "pending"), Track("tablet-1", "marketing"),
                      Track("tablet-1", "analytics")}));
    int marketing = 0, analytics = 0, restricted = 0;
    Count(Export(), &marketing, &analytics, &restricted);
    EXPECT_EQ(marketing, 4);
    EXPECT_EQ(analytics, 3);
    EXPECT_EQ(restricted, 0);

    Post(json::array({Consent("tablet-1", "marketing", "denied", "granted")}));
    const std::string done =
        std::string("withdrawal: marketing in shop ") + (action == "erase" ? "erased" : "restricted");
    EXPECT_TRUE(col_->WaitForLog(done)) << col_->Log();

    // The register: one system-initiated withdrawal, completed, naming the person, the purpose and the count.
    json entry;
    const json requests = CtlJson("requests")["requests"];
    for (const json& r : requests) {
      if (r["kind"] == "withdrawal") {
        EXPECT_TRUE(entry.is_null()) << "one withdrawal only: " << r.dump();
        entry = r;
      }
    }
    EXPECT_FALSE(entry.is_null()) << requests.dump();
    if (entry.is_null()) return entry;
    EXPECT_EQ(entry["source"], "system") << entry.dump();
    EXPECT_EQ(entry["state"], "completed") << entry.dump();
    EXPECT_EQ(entry["subject"], "u-ana") << entry.dump();
    EXPECT_EQ(entry["purposes"], json({"marketing"})) << entry.dump();
    EXPECT_EQ(entry["result"]["action"], action) << entry.dump();
    EXPECT_EQ(entry["result"]["events"], 4) << entry.dump();
    EXPECT_EQ(entry["result"]["receiptId"], "rcpt-tablet-1-marketing-denied") << entry.dump();

    // The audit log: its entry names the request.
    bool audited = false;
    const json audit = CtlJson("audit --limit 10000")["entries"];
    for (const json& e : audit) {
      audited = audited || (e["action"] == "consent.withdrawal" && e["result"] == "ok" &&
                            e["detail"].dump().find(entry["id"].get<std::string>()) != std::string::npos);
    }
    EXPECT_TRUE(audited);

    // The outbox: downstream systems hear of it, limited to the purpose, with every id of the person.
    json found;
    const json outbox = CtlJson("outbox list --limit 1000")["entries"];
    for (const json& e : outbox) {
      if (e["requestId"] == entry["id"]) found = e;
    }
    EXPECT_FALSE(found.is_null());
    if (!found.is_null()) {
      EXPECT_EQ(found["kind"], action == "erase" ? "erasure" : "restriction") << found.dump();
      EXPECT_EQ(found["change"]["purposes"], json({"marketing"})) << found.dump();
      EXPECT_EQ(found["change"]["source"], "withdrawal") << found.dump();
      json ids = found["ids"];
      for (const char* id : {"u-ana", "phone-1", "tablet-1"}) {
        EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << id << " in " << found.dump();
      }
    }
    return entry;
  }

  TempDir dir_;
};

TEST_P(WithdrawalTest, EraseRemovesThePersonsStoredEventsOfThePurposeFromEveryDevice) {
  json entry = DenyOnTheTablet("erase");
  ASSERT_FALSE(entry.is_null());
  int marketing = 0, analytics = 0, restricted = 0;
  json project = Export();
  Count(project, &marketing, &analytics, &restricted);
  EXPECT_EQ(marketing, 0);  // the phone's three and the tablet's one
  EXPECT_EQ(analytics, 3);  // other purposes stay
  EXPECT_EQ(restricted, 0);
  // The consent records stay: they are the proof of what was allowed when.
  EXPECT_EQ(project["consentHistory"].size(), 4u) << project.dump();

  // A first refusal of another purpose (nothing granted before) and a developer default that changes withdraw
  // nothing: no second register entry, the stored events stay.
  json analytics_default = Consent("tablet-1", "personalization", "denied", "granted");
  analytics_default["properties"]["method"] = "default";
  Post(json::array({Consent("tablet-1", "analytics", "denied", "pending"), analytics_default}));
  const json requests = CtlJson("requests")["requests"];
  EXPECT_EQ(requests.size(), 1u) << requests.dump();
  // Later marketing events from the phone are refused by enforcement (the person denied it on a device of theirs).
  Post(json::array({Track("phone-1", "marketing"), Track("phone-1", "analytics")}));
  Count(Export(), &marketing, &analytics, &restricted);
  EXPECT_EQ(marketing, 0);
  EXPECT_EQ(analytics, 3);  // the three stored before stay; the new one is refused (the tablet refused analytics)
}

TEST_P(WithdrawalTest, RestrictKeepsThemOutOfEveryExportUntilLifted) {
  json entry = DenyOnTheTablet("restrict");
  ASSERT_FALSE(entry.is_null());
  int marketing = 0, analytics = 0, restricted = 0;
  json project = Export();
  Count(project, &marketing, &analytics, &restricted);
  EXPECT_EQ(marketing, 4);  // kept
  EXPECT_EQ(analytics, 3);
  EXPECT_EQ(restricted, 4);  // every marketing event, none of the others
  ASSERT_EQ(project["restrictions"].size(), 1u) << project.dump();
  EXPECT_EQ(project["restrictions"][0]["requestId"], entry["id"]);
  EXPECT_EQ(project["restrictions"][0]["purposes"], json({"marketing"}));

  // An officer may lift it (the person granted again, say): the events are used again.
  json lifted = CtlJson("requests lift " + entry["id"].get<std::string>() + " --reason 'granted again'");
  EXPECT_FALSE(lifted["lifted"].is_null()) << lifted.dump();
  Count(Export(), &marketing, &analytics, &restricted);
  EXPECT_EQ(restricted, 0);
}

TEST_P(WithdrawalTest, AQueuedDenialIsCarriedOutAfterARestart) {
  Post(json::array({Consent("phone-1", "marketing", "granted", "pending"), Track("phone-1", "marketing"),
                    Track("phone-1", "marketing")}));
  // The collector is down when the denial is stored (by the store's own ingest, the group commit's call): the queue
  // is in the store, so the collector carries it out when it comes back.
  ASSERT_EQ(col_->Stop(), 0);
  {
    collector::StoreConfig config;
    config.storage = uri_.empty() ? "sqlite" : uri_;
    config.data_dir = col_->data_dir();
    auto store = collector::MakeStore(config);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto key = (*store)->LookupWriteKey(key_);
    ASSERT_TRUE(key.ok() && key->has_value());
    json denial = Consent("tablet-1", "marketing", "denied", "granted");
    collector::StoredEvent e;
    e.message_id = denial["messageId"];
    e.type = "consent";
    e.user_id = "u-ana";
    e.anonymous_id = "tablet-1";
    e.purpose = "necessary";
    e.timestamp_ms = e.received_ms = base::NowMs();
    e.consent_purpose = "marketing";
    e.consent_state = "denied";
    e.consent_previous = "granted";
    e.receipt_id = "rcpt-offline";
    e.body = denial.dump();
    collector::InsertRequest req;
    req.project_id = (*key)->project_id;
    req.project = "shop";
    req.events.push_back(e);
    std::vector<collector::InsertRequest*> batch = {&req};
    ASSERT_TRUE((*store)->Insert(batch).ok());
  }
  std::string err;
  ASSERT_TRUE(col_->Restart(&err)) << err;
  EXPECT_TRUE(col_->WaitForLog("withdrawal: marketing in shop erased")) << col_->Log();
  int marketing = 0, analytics = 0, restricted = 0;
  Count(Export(), &marketing, &analytics, &restricted);
  EXPECT_EQ(marketing, 0);
}

INSTANTIATE_TEST_SUITE_P(Stores, WithdrawalTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace ferry::testing
