// The request kinds of issue 13 and their effects, through a real ferry-collector over TLS (with the operations
// insight on, --insight embedded) on both stores and the real ferryctl: a restriction keeps a subject's data but takes
// it out of every analytics path (the insight's answers) until it is lifted, new events for the restricted purpose
// are quarantined or refused per project, the person's own copy keeps them marked restricted; an objection to direct
// marketing is in force on receipt; an objection to another purpose goes through approval; rectification is the
// issue's word for correction; portability completes when its copy is delivered; a refused kind is audited.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "lib/base/time.h"
#include "tests/integration/store_collector.h"
#include "tests/support/collector_process.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::HttpResult;

class RightsKindsTest : public StoreCollectorTest {
 protected:
  void SetUp() override {
    extra_args_ = {"--insight", "embedded"};
    StoreCollectorTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    token_ = Token("compliance,operator", "officer-kim");
    analyst_ = Token("analyst", "ana");
    ASSERT_FALSE(token_.empty());
    ASSERT_FALSE(analyst_.empty());
    today_ = base::FormatIso8601(base::NowMs()).substr(0, 10);
  }

  json Event(const std::string& user, const std::string& purpose, const std::string& type = "track") {
    json e = {{"messageId", "m-" + user + "-" + std::to_string(++seq_)},
              {"type", type},
              {"userId", user},
              {"timestamp", base::FormatIso8601(base::NowMs())},
              {"purpose", purpose}};
    if (type == "track") e["event"] = "app_opened";
    return e;
  }
  json Consent(const std::string& user, const std::string& purpose) {
    json e = Event(user, "necessary", "consent");
    e["properties"] = {{"purpose", purpose}, {"state", "granted"}};
    return e;
  }
  // Posts a batch; every event is answered as accepted (refusals are not told apart).
  void Post(const json& batch) {
    HttpResult r = testsupport::HttpRequest(
        "POST", col_->batch_url(), json{{"sentAt", base::FormatIso8601(base::NowMs())}, {"batch", batch}}.dump(),
        {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body).value("accepted", -1), static_cast<int>(batch.size())) << r.body;
  }
  HttpResult Get(const std::string& path, const std::string& token) {
    return testsupport::HttpRequest("GET", col_->url() + path, "", {"Authorization: Bearer " + token}, col_->ca_file());
  }
  // The subject's stored events in the project, as the officer's lookup shows them.
  json StoredEvents(const std::string& user) {
    int rc = 0;
    const std::string file = dir_.File("lookup-" + user + ".json");
    std::string out = Ctl("subject export " + user + " --project shop --output " + ShellQuote(file), &rc);
    EXPECT_EQ(rc, 0) << out;
    std::ifstream in(file);
    json doc = json::parse(in, nullptr, false);
    if (doc.is_discarded() || doc["projects"].empty()) return json::array();
    return doc["projects"][0]["events"];
  }
  // The size of today's cohort in the insight's retention table (what an analyst sees).
  int CohortSize() {
    HttpResult r =
        Get("/v1/insight/retention?project=shop&granularity=day&periods=1&from=" + today_ + "&to=" + today_, analyst_);
    EXPECT_EQ(r.status, 200) << r.body;
    json t = json::parse(r.body, nullptr, false);
    for (const json& row : t["rows"]) {
      if (row["cohort"] == today_) return row.value("size", -1);
    }
    return -1;
  }
  json AuditEntries() { return CtlJson("audit --limit 10000")["entries"]; }
  bool Audited(const std::string& action, const std::string& result) {
    for (const json& e : AuditEntries()) {
      if (e["action"] == action && e["result"] == result) return true;
    }
    return false;
  }
  std::string Metrics() {
    HttpResult r = Get("/metrics", Token("operator", "ops"));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }

  TempDir dir_;
  std::string analyst_, today_;
  int seq_ = 0;
};

TEST_P(RightsKindsTest, ARestrictedSubjectIsAbsentFromEveryAnalyticsPathUntilLifted) {
  json batch = json::array();
  for (int i = 1; i <= 6; ++i) batch.push_back(Event("u" + std::to_string(i), "analytics"));
  ASSERT_NO_FATAL_FAILURE(Post(batch));
  EXPECT_EQ(CohortSize(), 6);
  ASSERT_EQ(Get("/v1/insight/profile?project=shop&person=u1", analyst_).status, 200);

  // Received by mail, approved with the verification: in force at once, the request carried out.
  json added = CtlJson("requests add --kind restriction --subject u1 --project shop --purpose analytics");
  const std::string rid = added["id"];
  EXPECT_EQ(added["state"], "awaiting_verification");
  EXPECT_EQ(added["purposes"], json({"analytics"}));
  EXPECT_TRUE(added["inForce"].is_null());
  json approved = CtlJson("requests approve " + rid + " --method id-document --reference T-1");
  EXPECT_EQ(approved["state"], "completed");
  ASSERT_EQ(approved["inForce"].size(), 1u) << approved.dump();
  EXPECT_EQ(approved["inForce"][0]["purposes"], json({"analytics"}));
  EXPECT_EQ(approved["verification"]["method"], "id-document");

  // Gone from the analyst's answers: the profile is refused, the cohort is one smaller.
  EXPECT_EQ(Get("/v1/insight/profile?project=shop&person=u1", analyst_).status, 409);
  EXPECT_EQ(CohortSize(), 5);

  // New analytics events in the default mode (quarantine): kept, counted, still excluded.
  ASSERT_NO_FATAL_FAILURE(Post(json::array({Event("u1", "analytics"), Event("u1", "analytics")})));
  EXPECT_EQ(StoredEvents("u1").size(), 3u);
  EXPECT_NE(Metrics().find("ferry_events_restricted_total{mode=\"quarantine\"} 2"), std::string::npos);
  EXPECT_EQ(Get("/v1/insight/profile?project=shop&person=u1", analyst_).status, 409);
  EXPECT_EQ(CohortSize(), 5);

  // The person's own copy keeps them, marked restricted.
  const std::string access = CtlJson("requests add --kind access --subject u1 --project shop")["id"];
  CtlJson("requests approve " + access + " --method account-login");
  int rc = 0;
  const std::string copy_file = dir_.File("copy.json");
  std::string out = Ctl("requests deliver " + access + " --output " + ShellQuote(copy_file), &rc);
  ASSERT_EQ(rc, 0) << out;
  std::ifstream in(copy_file);
  json copy = json::parse(in, nullptr, false);
  ASSERT_FALSE(copy.is_discarded());
  const json& project = copy["projects"][0];
  ASSERT_EQ(project["events"].size(), 3u);
  for (const json& e : project["events"]) EXPECT_EQ(e.value("restricted", false), true) << e.dump();
  ASSERT_EQ(project["restrictions"].size(), 1u) << project.dump();
  EXPECT_EQ(project["restrictions"][0]["requestId"], rid);

  // The project refuses instead: the next event is answered as accepted but not stored.
  EXPECT_EQ(CtlJson("requests restriction-mode --project shop --set refuse")["mode"], "refuse");
  EXPECT_EQ(CtlJson("requests restriction-mode --project shop")["mode"], "refuse");
  ASSERT_NO_FATAL_FAILURE(Post(json::array({Event("u1", "analytics")})));
  EXPECT_EQ(StoredEvents("u1").size(), 3u);
  EXPECT_NE(Metrics().find("ferry_events_restricted_total{mode=\"refuse\"} 1"), std::string::npos);
  // Others are not touched.
  ASSERT_NO_FATAL_FAILURE(Post(json::array({Event("u2", "analytics")})));
  EXPECT_EQ(StoredEvents("u2").size(), 2u);

  // Lifted: back in every answer, with the events kept meanwhile.
  json lifted = CtlJson("requests lift " + rid + " --reason 'accuracy verified'");
  EXPECT_EQ(lifted["state"], "completed");
  EXPECT_EQ(lifted["lifted"]["reason"], "accuracy verified");
  HttpResult profile = Get("/v1/insight/profile?project=shop&person=u1", analyst_);
  ASSERT_EQ(profile.status, 200) << profile.body;
  EXPECT_EQ(json::parse(profile.body)["events"], 3);
  EXPECT_EQ(CohortSize(), 6);
  ASSERT_NO_FATAL_FAILURE(Post(json::array({Event("u1", "analytics")})));
  EXPECT_EQ(StoredEvents("u1").size(), 4u);
  // Nothing left to lift.
  Ctl("requests lift " + rid, &rc);
  EXPECT_NE(rc, 0);

  // Every step is on record.
  EXPECT_TRUE(Audited("requests.add", "ok"));
  EXPECT_TRUE(Audited("requests.approve", "ok"));
  EXPECT_TRUE(Audited("requests.lift", "ok"));
  EXPECT_TRUE(Audited("requests.lift", "conflict"));
  EXPECT_TRUE(Audited("restriction.mode", "ok"));
}

TEST_P(RightsKindsTest, AnObjectionToDirectMarketingIsAbsoluteAndOtherKindsFollowTheRegister) {
  ASSERT_NO_FATAL_FAILURE(Post(json::array(
      {Consent("m1", "marketing"), Consent("m1", "analytics"), Event("m1", "marketing"), Event("m1", "analytics")})));
  const size_t before = StoredEvents("m1").size();

  // On receipt, without verification: completed and in force for marketing.
  json objection = CtlJson("requests add --kind objection --subject m1 --project shop --purpose marketing");
  EXPECT_EQ(objection["state"], "completed");
  ASSERT_EQ(objection["inForce"].size(), 1u) << objection.dump();
  EXPECT_EQ(objection["inForce"][0]["purposes"], json({"marketing"}));
  // Marketing events are refused from then on, even in the quarantine mode; analytics ones are kept.
  ASSERT_NO_FATAL_FAILURE(Post(json::array({Event("m1", "marketing"), Event("m1", "analytics")})));
  json events = StoredEvents("m1");
  EXPECT_EQ(events.size(), before + 1);
  EXPECT_EQ(events.back()["purpose"], "analytics");
  EXPECT_NE(Metrics().find("ferry_events_restricted_total{mode=\"refuse\"} 1"), std::string::npos);
  EXPECT_EQ(Get("/v1/insight/profile?project=shop&person=m1", analyst_).status, 200);

  // An objection to analytics is weighed: it waits for the officer, who may refuse it with a reason.
  json weighed = CtlJson("requests add --kind objection --subject m1 --project shop --purpose analytics");
  EXPECT_EQ(weighed["state"], "awaiting_verification");
  json refused = CtlJson("requests reject " + weighed["id"].get<std::string>() + " --reason 'compelling grounds'");
  EXPECT_EQ(refused["state"], "rejected");
  EXPECT_EQ(Get("/v1/insight/profile?project=shop&person=m1", analyst_).status, 200);

  // Rectification is stored under its canonical name, correction.
  EXPECT_EQ(CtlJson("requests add --kind rectification --subject m1 --project shop")["kind"], "correction");
  // Portability completes when its copy is delivered.
  const std::string port = CtlJson("requests add --kind portability --subject m1 --project shop")["id"];
  EXPECT_EQ(CtlJson("requests approve " + port + " --method account-login")["state"], "in_progress");
  int rc = 0;
  std::string out = Ctl("requests deliver " + port + " --output " + ShellQuote(dir_.File("port.json")), &rc);
  ASSERT_EQ(rc, 0) << out;
  // The delivery is recorded once the last byte went out, which the client may see first: wait for it.
  json delivered = json::object(), listed;
  for (int i = 0; i < 100 && delivered.value("state", "") != "completed"; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    listed = CtlJson("requests");
    for (const json& r : listed["requests"]) {
      if (r["id"] == port) delivered = r;
    }
  }
  EXPECT_EQ(delivered["state"], "completed") << port << " " << listed.dump();
  EXPECT_EQ(delivered["delivered"]["by"], "officer-kim");

  // A kind the collector does not know, or purposes on a kind without them: refused, and audited.
  out = Ctl("requests add --kind frobnicate --subject m1 --project shop", &rc);
  EXPECT_NE(rc, 0) << out;
  out = Ctl("requests add --kind access --subject m1 --project shop --purpose marketing", &rc);
  EXPECT_NE(rc, 0) << out;
  int bad = 0;
  for (const json& e : AuditEntries()) bad += e["action"] == "requests.add" && e["result"] == "bad_request";
  EXPECT_EQ(bad, 2);
}

TEST_P(RightsKindsTest, RectificationReachesTheStoredIdentifyEvents) {
  json first = Event("r1", "analytics", "identify");
  first["traits"] = {{"name", "Ann"}, {"plan", "pro"}, {"phone", "555-0100"}};
  json second = Event("r1", "analytics", "identify");
  second["traits"] = {{"plan", "pro"}};
  json other = Event("r2", "analytics", "identify");
  other["traits"] = {{"plan", "pro"}, {"phone", "555-0199"}};
  ASSERT_NO_FATAL_FAILURE(Post(json::array({first, second, Event("r1", "analytics"), other})));

  // Received as "rectification", registered as a correction; approved, carried out, completed by hand.
  json request = CtlJson("requests add --kind rectification --subject r1 --project shop");
  EXPECT_EQ(request["kind"], "correction");
  EXPECT_EQ(CtlJson("requests approve " + request["id"].get<std::string>() + " --method account-login")["state"],
            "in_progress");
  json corrected = CtlJson("subject traits r1 --project shop --set plan=basic --unset phone");
  EXPECT_EQ(corrected["eventsRewritten"], 2) << corrected.dump();
  EXPECT_EQ(CtlJson("requests complete " + request["id"].get<std::string>() + " --note 'plan and phone'")["state"],
            "completed");

  // The stored identify events carry the corrected traits, their other members kept; the track event and the other
  // person's events are untouched.
  int identifies = 0;
  for (const json& e : StoredEvents("r1")) {
    if (e["type"] != "identify") {
      EXPECT_FALSE(e.contains("traits")) << e.dump();
      continue;
    }
    ++identifies;
    EXPECT_EQ(e["traits"]["plan"], "basic") << e.dump();
    EXPECT_FALSE(e["traits"].contains("phone")) << e.dump();
    EXPECT_EQ(e["userId"], "r1");
  }
  EXPECT_EQ(identifies, 2);
  EXPECT_EQ(StoredEvents("r1").front()["traits"]["name"], "Ann");
  json untouched = StoredEvents("r2");
  ASSERT_EQ(untouched.size(), 1u);
  EXPECT_EQ(untouched[0]["traits"]["phone"], "555-0199");
  // The profile shows the corrected traits too, and the correction is on record with its count.
  HttpResult shown = Get("/v1/subjects/r1?project=shop", token_);
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_EQ(json::parse(shown.body)["projects"][0]["traits"]["plan"], "basic");
  bool audited = false;
  for (const json& e : AuditEntries()) {
    if (e["action"] == "subject.correct" && e["result"] == "ok") {
      audited = json::parse(e["detail"].get<std::string>())["eventsRewritten"] == 2;
    }
  }
  EXPECT_TRUE(audited);
}

INSTANTIATE_TEST_SUITE_P(Stores, RightsKindsTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace ferry::testing
