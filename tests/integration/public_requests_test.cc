// Public intake with verification (issue 13 item 3), through the real SDK (shared library `ferry`), a real
// ferry-collector over TLS with --public-requests on, on both stores, and the real ferryctl: a person files an access
// request on the public endpoint, the app shows a code (ferry_request_verification_code) that binds the request to the
// app's own subject (not to what the person typed), the officer approves, and the person downloads the copy once
// through a one-time link, which completes the request. Also: no data before verification, the same answer for an
// unknown reference and a wrong secret, wrong, expired and replayed codes, bounded attempts, the per-address limit,
// an erasure to completion, an officer's identification by hand, and public intake off by default.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "ferry/ferry.h"
#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "tests/integration/device_client.h"
#include "tests/support/collector_process.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

class PublicRequestsTest : public DeviceClientTest {
 protected:
  void SetUp() override {
    extra_args_ = {"--public-requests", "on", "--public-code-ttl-s", "2"};
    DeviceClientTest::SetUp();
  }
  // The app on a device, with a few events of its own.
  ferry_client* App(const std::string& buffer) {
    ferry_client* c = OpenApp(buffer);
    for (const char* name : {"Viewed", "Added", "Paid"}) EXPECT_EQ(ferry_track(c, name, "{}", nullptr), FERRY_OK);
    return c;
  }
  static std::string AnonOf(ferry_client* c) {
    char* s = nullptr;
    EXPECT_EQ(ferry_export_local(c, &s), FERRY_OK);
    return Take(s)["anonymousId"];
  }
  // The code the app shows its user.
  std::string CodeFrom(ferry_client* c) {
    char* s = nullptr;
    EXPECT_EQ(ferry_request_verification_code(c, 20000, &s), FERRY_OK);
    json doc = Take(s);
    EXPECT_TRUE(doc["code"].is_string()) << doc.dump();
    EXPECT_TRUE(doc["expiresAt"].is_string()) << doc.dump();
    return doc["code"].is_string() ? doc["code"].get<std::string>() : std::string();
  }
  testsupport::HttpResult Post(const std::string& path, const json& body) {
    return testsupport::HttpRequest("POST", col_->url() + path, body.dump(), {"Content-Type: application/json"},
                                    col_->ca_file());
  }
  // Files a request on the public endpoint: {reference, secret, ...}.
  json File(const std::string& kind, const std::string& identifier = "me@example.com") {
    auto r = Post("/v1/public/requests", {{"kind", kind},
                                          {"project", "shop"},
                                          {"contact", "person@example.com"},
                                          {"identifier", identifier},
                                          {"lang", "zh-CN"}});
    EXPECT_EQ(r.status, 201) << r.body;
    json doc = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(doc.is_object()) << r.body;
    return doc;
  }
  testsupport::HttpResult Verify(const json& filed, const std::string& code) {
    return Post("/v1/public/requests/" + filed["reference"].get<std::string>() + "/verify",
                {{"secret", filed["secret"]}, {"code", code}});
  }
  testsupport::HttpResult Status(const json& filed) {
    return Post("/v1/public/requests/" + filed["reference"].get<std::string>() + "/status",
                {{"secret", filed["secret"]}});
  }
  json Request(const std::string& id) {
    json doc = CtlJson("requests");
    for (const json& r : doc["requests"]) {
      if (r["id"] == id) return r;
    }
    return json();
  }
  json Audit() { return CtlJson("audit --limit 10000")["entries"]; }
};

TEST_P(PublicRequestsTest, AnAccessRequestFiledOnThePageIsVerifiedByTheAppsCodeAndDeliveredOnce) {
  ferry_client* app = App("app.db");
  const std::string anon = AnonOf(app);

  // Filed by the person: a reference and a secret, shown once; the identifier typed is not the subject.
  json filed = File("access", "someone-else-entirely");
  const std::string rid = filed["reference"];
  ASSERT_EQ(filed["secret"].get<std::string>().size(), 32u);
  EXPECT_EQ(filed["state"], "received");
  EXPECT_EQ(filed["identified"], false);
  json reg = Request(rid);
  EXPECT_EQ(reg["source"], "public");
  EXPECT_EQ(reg["subject"], "");
  EXPECT_EQ(reg["state"], "received");
  EXPECT_EQ(reg["result"]["public"]["contact"], "person@example.com");
  EXPECT_FALSE(reg["result"]["public"].contains("secret"));
  EXPECT_NE(reg["result"]["public"]["secretHash"], filed["secret"]);

  // Before verification: the state and nothing held about anyone; no link to a copy; the officer cannot approve.
  auto st = Status(filed);
  ASSERT_EQ(st.status, 200) << st.body;
  json status = json::parse(st.body);
  EXPECT_EQ(status["state"], "received");
  EXPECT_EQ(status["copyReady"], false);
  for (const char* k : {"subject", "contact", "identifier", "result", "secret"}) EXPECT_FALSE(status.contains(k)) << k;
  EXPECT_EQ(Post("/v1/public/requests/" + rid + "/copy-link", {{"secret", filed["secret"]}}).status, 409);
  int rc = 0;
  std::string out = Ctl("requests approve " + rid + " --method app-code", &rc);
  EXPECT_NE(rc, 0) << out;

  // The app shows a code; the person types it on the page: the request is now about the app's own subject.
  const std::string code = CodeFrom(app);
  ASSERT_EQ(code.size(), 8u);
  auto v = Verify(filed, code.substr(0, 4) + " " + code.substr(4));  // people type spaces between groups
  ASSERT_EQ(v.status, 200) << v.body;
  EXPECT_EQ(json::parse(v.body)["state"], "awaiting_verification");
  EXPECT_EQ(json::parse(v.body)["identifiedBy"], "app-code");
  reg = Request(rid);
  EXPECT_EQ(reg["subject"], anon);
  EXPECT_EQ(reg["state"], "awaiting_verification");
  EXPECT_EQ(reg["result"]["identity"]["method"], "app-code");

  // The officer approves; the person downloads the copy once through the page's one-time link.
  json approved = CtlJson("requests approve " + rid + " --method app-code --reference page");
  EXPECT_EQ(approved["state"], "in_progress");
  status = json::parse(Status(filed).body);
  EXPECT_EQ(status["copyReady"], true);
  auto l = Post("/v1/public/requests/" + rid + "/copy-link", {{"secret", filed["secret"]}});
  ASSERT_EQ(l.status, 201) << l.body;
  const std::string url = json::parse(l.body)["url"];
  auto got = testsupport::HttpRequest("GET", col_->url() + url, "", {}, col_->ca_file());
  ASSERT_EQ(got.status, 200) << got.body;
  json copy = json::parse(got.body, nullptr, false);
  EXPECT_EQ(copy["format"], "ferry-subject-export/1");
  EXPECT_EQ(copy["subject"], anon);
  ASSERT_EQ(copy["projects"].size(), 1u);
  std::set<std::string> names;
  for (const json& e : copy["projects"][0]["events"]) {
    if (e["type"] == "track") names.insert(e.value("event", ""));
  }
  EXPECT_EQ(names, (std::set<std::string>{"Viewed", "Added", "Paid"}));
  EXPECT_EQ(testsupport::HttpRequest("GET", col_->url() + url, "", {}, col_->ca_file()).status, 404);
  reg = Request(rid);
  EXPECT_EQ(reg["state"], "completed");
  EXPECT_EQ(reg["delivered"]["by"], "person");
  status = json::parse(Status(filed).body);
  EXPECT_EQ(status["state"], "completed");
  EXPECT_EQ(status["delivered"], true);

  // Every step is audited, and the chain verifies.
  std::vector<std::string> steps;
  for (const json& e : Audit()) {
    const std::string a = e["action"];
    if (a.rfind("public.", 0) == 0 || a == "device.verification-code" || a == "requests.deliver" ||
        a == "requests.approve") {
      steps.push_back(a + ":" + e["result"].get<std::string>());
    }
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"public.request:ok", "requests.approve:conflict",
                                             "device.verification-code:ok", "public.verify:ok", "requests.approve:ok",
                                             "public.copy-link:ok", "requests.deliver:started", "requests.deliver:ok",
                                             "requests.deliver:refused"}));  // the spent link, tried again
  EXPECT_EQ(CtlJson("audit verify")["ok"], true);
}

TEST_P(PublicRequestsTest, WrongExpiredAndReplayedCodesAndUnknownReferencesAreRefused) {
  ferry_client* app = App("app.db");
  json a = File("access"), b = File("access"), c = File("erasure");

  // Unknown reference and wrong secret: the same answer.
  auto unknown = Post("/v1/public/requests/req_" + base::RandomHex(12) + "/status", {{"secret", a["secret"]}});
  auto wrong =
      Post("/v1/public/requests/" + a["reference"].get<std::string>() + "/status", {{"secret", base::RandomHex(16)}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(wrong.status, 404);
  EXPECT_EQ(unknown.body, wrong.body);

  // A wrong code counts an attempt and binds nothing.
  auto v = Verify(a, "00000000");
  EXPECT_EQ(v.status, 400) << v.body;
  EXPECT_EQ(json::parse(Status(a).body)["codeAttemptsLeft"], 4);
  EXPECT_EQ(Request(a["reference"])["subject"], "");

  // A code works once: replayed on another request, it is refused.
  const std::string code = CodeFrom(app);
  ASSERT_EQ(Verify(a, code).status, 200);
  v = Verify(b, code);
  EXPECT_EQ(v.status, 400) << v.body;
  EXPECT_EQ(Request(b["reference"])["subject"], "");
  EXPECT_EQ(Request(b["reference"])["state"], "received");
  // A verified request takes no second code.
  EXPECT_EQ(Verify(a, code).status, 409);

  // An expired code is refused (the collector runs with codes valid 2 s).
  const std::string stale = CodeFrom(app);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  v = Verify(b, stale);
  EXPECT_EQ(v.status, 400) << v.body;
  EXPECT_EQ(Request(b["reference"])["state"], "received");

  // After kPublicCodeAttempts wrong codes the code step is closed, even for a good code.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Verify(b, "1234567" + std::to_string(i)).status, 400);
  EXPECT_EQ(json::parse(Status(b).body)["codeAttemptsLeft"], 0);
  const std::string good = CodeFrom(app);
  v = Verify(b, good);
  EXPECT_EQ(v.status, 429) << v.body;
  EXPECT_EQ(Request(b["reference"])["subject"], "");
  // ... and the good code, unspent, still serves another request (an erasure, carried out on approval).
  ASSERT_EQ(Verify(c, good).status, 200);
  json done = CtlJson("requests approve " + c["reference"].get<std::string>() + " --method app-code");
  EXPECT_EQ(done["state"], "completed");
  EXPECT_EQ(json::parse(Status(c).body)["state"], "completed");
  int rc = 0;
  std::string shown = Ctl("show " + AnonOf(app), &rc);
  EXPECT_NE(rc, 0) << shown;  // erased

  // The officer identifies the person by hand: received -> awaiting_verification, with the evidence kept.
  json d = File("correction");
  auto id = testsupport::HttpRequest(
      "POST", col_->url() + "/v1/requests/" + d["reference"].get<std::string>() + "/identify",
      json{{"subject", "user-42"}, {"method", "id-document"}, {"reference", "ticket-9"}}.dump(),
      {"Authorization: Bearer " + token_, "Content-Type: application/json"}, col_->ca_file());
  ASSERT_EQ(id.status, 200) << id.body;
  EXPECT_EQ(json::parse(id.body)["state"], "awaiting_verification");
  json reg = Request(d["reference"]);
  EXPECT_EQ(reg["subject"], "user-42");
  EXPECT_EQ(reg["result"]["identity"]["evidence"], "id-document");

  int refused = 0, ok = 0;
  for (const json& e : Audit()) {
    if (e["action"] != "public.verify") continue;
    refused += e["result"] == "refused";
    ok += e["result"] == "ok";
  }
  EXPECT_EQ(refused, 7);  // wrong, replayed, expired, 3 wrong, closed
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(CtlJson("audit verify")["ok"], true);
}

// `ferryctl requests identify`: the officer binds a received public request to its subject with the evidence kept;
// a role without the right, a request already identified and an unknown request are refused with their exit codes.
TEST_P(PublicRequestsTest, TheOfficerIdentifiesAPublicRequestWithFerryctl) {
  json filed = File("access");
  const std::string rid = filed["reference"];
  int rc = 0;
  std::string help = Ctl("requests identify --help", &rc);
  EXPECT_EQ(rc, 0) << help;
  for (const char* opt : {"RID", "--subject", "--method", "--reference"}) {
    EXPECT_NE(help.find(opt), std::string::npos) << opt << ": " << help;
  }
  EXPECT_NE(Ctl("requests --help", &rc).find("identify"), std::string::npos);

  // No subject: a usage error, nothing sent.
  std::string out = Ctl("requests identify " + rid, &rc);
  EXPECT_EQ(rc, 2) << out;
  // An analyst may not identify anyone.
  const std::string analyst = Token("analyst", "ana");
  ASSERT_FALSE(analyst.empty());
  out = Ctl("requests identify " + rid + " --subject user-7", &rc, analyst);
  EXPECT_EQ(rc, 6) << out;
  EXPECT_EQ(Request(rid)["subject"], "");
  EXPECT_EQ(Request(rid)["state"], "received");

  out = Ctl("requests identify " + rid + " --subject user-7 --method id-document --reference ticket-12", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(rid), std::string::npos) << out;
  EXPECT_NE(out.find("awaiting_verification"), std::string::npos) << out;
  EXPECT_NE(out.find("id-document"), std::string::npos) << out;
  json reg = Request(rid);
  EXPECT_EQ(reg["subject"], "user-7");
  EXPECT_EQ(reg["state"], "awaiting_verification");
  EXPECT_EQ(reg["result"]["identity"]["method"], "officer");
  EXPECT_EQ(reg["result"]["identity"]["evidence"], "id-document");
  EXPECT_EQ(reg["result"]["identity"]["reference"], "ticket-12");
  // The person sees it identified (and not by whom or as whom).
  json status = json::parse(Status(filed).body);
  EXPECT_EQ(status["identified"], true);
  EXPECT_EQ(status["identifiedBy"], "officer");
  EXPECT_EQ(status.dump().find("user-7"), std::string::npos);

  // Once only: a second identification is a conflict and changes nothing.
  out = Ctl("requests identify " + rid + " --subject someone-else", &rc);
  EXPECT_EQ(rc, 7) << out;
  EXPECT_EQ(Request(rid)["subject"], "user-7");
  out = Ctl("requests identify req_" + base::RandomHex(12) + " --subject user-7", &rc);
  EXPECT_EQ(rc, 4) << out;

  // --json prints the request as the collector answered it; the officer then approves it as usual.
  json other = File("erasure");
  json doc = CtlJson("requests identify " + other["reference"].get<std::string>() + " --subject user-8");
  EXPECT_EQ(doc["reference"], other["reference"]);
  EXPECT_EQ(doc["state"], "awaiting_verification");
  EXPECT_EQ(doc["identified"], true);
  EXPECT_TRUE(Request(other["reference"])["result"]["identity"]["evidence"].is_null());
  json done = CtlJson("requests approve " + other["reference"].get<std::string>() + " --method id-document");
  EXPECT_EQ(done["state"], "completed");

  int identified = 0, conflict = 0, not_found = 0;
  for (const json& e : Audit()) {
    if (e["action"] != "requests.identify") continue;
    identified += e["result"] == "ok";
    conflict += e["result"] == "conflict";
    not_found += e["result"] == "not_found";
  }
  EXPECT_EQ(identified, 2);
  EXPECT_EQ(conflict, 1);   // the second identification
  EXPECT_EQ(not_found, 1);  // the unknown request
  EXPECT_EQ(CtlJson("audit verify")["ok"], true);
}

TEST_P(PublicRequestsTest, GuessingIsLimitedPerAddressAndBadFilingsAreRefused) {
  // Bad filings: an unknown kind, project or language, no contact.
  EXPECT_EQ(Post("/v1/public/requests", {{"kind", "teleport"}, {"project", "shop"}, {"contact", "x"}}).status, 400);
  EXPECT_EQ(Post("/v1/public/requests", {{"kind", "access"}, {"project", "nope"}, {"contact", "x"}}).status, 404);
  EXPECT_EQ(Post("/v1/public/requests", {{"kind", "access"}, {"project", "shop"}}).status, 400);
  EXPECT_EQ(
      Post("/v1/public/requests", {{"kind", "access"}, {"project", "shop"}, {"contact", "x"}, {"lang", "fr"}}).status,
      400);
  // The fifth filing from this address is the last of its bucket: the next one waits.
  auto limited = Post("/v1/public/requests", {{"kind", "access"}, {"project", "shop"}, {"contact", "x"}});
  EXPECT_EQ(limited.status, 201) << limited.body;
  json filed = json::parse(limited.body);
  auto r = Post("/v1/public/requests", {{"kind", "access"}, {"project", "shop"}, {"contact", "x"}});
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_FALSE(r.retry_after.empty());

  // Code guessing from one address: 5 wrong codes close the request's code step; 20 attempts from the address,
  // then 429 with Retry-After whatever the request.
  int wrong = 0, closed = 0, slowed = 0;
  for (int i = 0; i < 22; ++i) {
    auto v = Verify(filed, "9999999" + std::to_string(i % 10));
    wrong += v.status == 400;
    closed += v.status == 429 && v.retry_after.empty() && v.body.find("wrong codes") != std::string::npos;
    slowed += v.status == 429 && !v.retry_after.empty();
  }
  EXPECT_EQ(wrong, 5);
  EXPECT_EQ(closed, 15);
  EXPECT_EQ(slowed, 2);
  EXPECT_EQ(json::parse(Status(filed).body)["codeAttemptsLeft"], 0);
  // A body that is not a JSON object is refused by the bounded parser; an oversized one too.
  auto raw = testsupport::HttpRequest(
      "POST", col_->url() + "/v1/public/requests/" + filed["reference"].get<std::string>() + "/status", "[1,2", {},
      col_->ca_file());
  EXPECT_EQ(raw.status, 400) << raw.body;
  raw = testsupport::HttpRequest(
      "POST", col_->url() + "/v1/public/requests/" + filed["reference"].get<std::string>() + "/status",
      "{\"secret\":\"" + std::string(2 << 20, 'a') + "\"}", {}, col_->ca_file());
  EXPECT_TRUE(raw.status == 413 || raw.status == 400) << raw.status;
}

INSTANTIATE_TEST_SUITE_P(Stores, PublicRequestsTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// Without --public-requests nothing of the public intake is served.
class PublicIntakeOffTest : public StoreCollectorTest {};

TEST_P(PublicIntakeOffTest, PublicIntakeIsOffByDefault) {
  auto r = testsupport::HttpRequest("POST", col_->url() + "/v1/public/requests",
                                    json{{"kind", "access"}, {"project", "shop"}, {"contact", "x"}}.dump(),
                                    {"Content-Type: application/json"}, col_->ca_file());
  EXPECT_EQ(r.status, 404) << r.body;
  r = testsupport::HttpRequest("POST", col_->url() + "/v1/device/verification-code",
                               json{{"anonymousIds", {"a"}}}.dump(),
                               {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
  EXPECT_EQ(r.status, 404) << r.body;
}

INSTANTIATE_TEST_SUITE_P(Stores, PublicIntakeOffTest, ::testing::Values("sqlite"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace ferry::testing
