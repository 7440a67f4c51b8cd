// Requests filed by the person from the device (issue 13 item 3), through the real SDK (shared library `ferry`), a
// real ferry-collector over TLS on both stores and the real ferryctl: ferry_request registers an access request for
// the device's own subject, awaiting verification; the officer approves it; the device fetches its copy once through
// a one-time link, which completes the request; the protocol refuses ids the device never used, a wrong claim, a
// spent link and unknown kinds, folds repeated filings and limits filings per device.
#include <gtest/gtest.h>

#include <memory>
#include <string>

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

class DeviceRequestsTest : public DeviceClientTest {
 protected:
  ferry_client* Device(const std::string& buffer) { return OpenApp(buffer); }
  json Requests() {
    json doc = CtlJson("requests");
    EXPECT_TRUE(doc.contains("requests")) << doc.dump();
    return doc["requests"];
  }
  json Request(const std::string& id) {
    for (const json& r : Requests()) {
      if (r["id"] == id) return r;
    }
    return json();
  }
  json Audit() { return CtlJson("audit --limit 10000")["entries"]; }
  // Events of `anon` through the ingest API (what a device demonstrably used).
  void Ingest(const std::string& anon, const std::string& user = "") {
    json e = {{"messageId", base::NewUuidV4()},
              {"type", "track"},
              {"event", "Opened"},
              {"anonymousId", anon},
              {"timestamp", base::FormatIso8601(base::NowMs())},
              {"purpose", "analytics"}};
    if (!user.empty()) e["userId"] = user;
    auto r = testsupport::HttpRequest(
        "POST", col_->batch_url(), json{{"sentAt", base::FormatIso8601(base::NowMs())}, {"batch", {e}}}.dump(),
        {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  testsupport::HttpResult Device(const std::string& path, const json& body) {
    return testsupport::HttpRequest("POST", col_->url() + path, body.dump(),
                                    {"Authorization: Bearer " + key_, "Content-Type: application/json"},
                                    col_->ca_file());
  }
};

TEST_P(DeviceRequestsTest, AnAccessRequestFiledByTheDeviceIsDeliveredToThatDeviceOnce) {
  ferry_client* dev = Device("dev.db");
  for (const char* name : {"Viewed", "Added", "Paid"}) ASSERT_EQ(ferry_track(dev, name, "{}", nullptr), FERRY_OK);
  json local = [&] {
    char* s = nullptr;
    EXPECT_EQ(ferry_export_local(dev, &s), FERRY_OK);
    return Take(s);
  }();
  const std::string anon = local["anonymousId"];

  // Filed from the device: the events go first, then the request, registered for the device's own id.
  char* receipt_text = nullptr;
  ASSERT_EQ(ferry_request(dev, "access", 20000, &receipt_text), FERRY_OK);
  json receipt = Take(receipt_text);
  ASSERT_TRUE(receipt["reference"].is_string()) << receipt.dump();
  const std::string rid = receipt["reference"], handle = receipt["receipt"];
  EXPECT_EQ(receipt["state"], "awaiting_verification");
  EXPECT_EQ(receipt["kind"], "access");
  EXPECT_FALSE(receipt.contains("claim"));
  json reg = Request(rid);
  EXPECT_EQ(reg["source"], "device");
  EXPECT_EQ(reg["subject"], anon);
  EXPECT_EQ(reg["state"], "awaiting_verification");

  // Filed again while open: folded into the same request.
  ASSERT_EQ(ferry_request(dev, "access", 20000, &receipt_text), FERRY_OK);
  json again = Take(receipt_text);
  EXPECT_EQ(again["reference"], rid);
  EXPECT_NE(again["receipt"], handle);

  // Before the officer verified the person: no copy.
  char* copy_text = reinterpret_cast<char*>(1);
  ASSERT_EQ(ferry_request_copy(dev, handle.c_str(), 20000, &copy_text), FERRY_OK);
  EXPECT_EQ(copy_text, nullptr);
  char* status_text = nullptr;
  ASSERT_EQ(ferry_request_status(dev, handle.c_str(), 20000, &status_text), FERRY_OK);
  json status = Take(status_text);
  EXPECT_EQ(status["state"], "awaiting_verification");
  EXPECT_EQ(status["copyReady"], false);
  EXPECT_FALSE(status.contains("subject"));

  json approved = CtlJson("requests approve " + rid + " --method app-login --reference session-77");
  EXPECT_EQ(approved["state"], "in_progress");
  ASSERT_EQ(ferry_request_status(dev, handle.c_str(), 20000, &status_text), FERRY_OK);
  EXPECT_EQ(Take(status_text)["copyReady"], true);

  // The device fetches its copy once: the download is the delivery and completes the request.
  ASSERT_EQ(ferry_request_copy(dev, handle.c_str(), 20000, &copy_text), FERRY_OK);
  json copy = Take(copy_text);
  ASSERT_TRUE(copy.is_object());
  EXPECT_EQ(copy["format"], "ferry-subject-export/1");
  EXPECT_EQ(copy["subject"], anon);
  ASSERT_EQ(copy["projects"].size(), 1u);
  std::set<std::string> names;
  for (const json& e : copy["projects"][0]["events"]) {
    if (e["type"] == "track") names.insert(e.value("event", ""));
  }
  EXPECT_EQ(names, (std::set<std::string>{"Viewed", "Added", "Paid"}));
  reg = Request(rid);
  EXPECT_EQ(reg["state"], "completed");
  EXPECT_EQ(reg["delivered"]["by"], "device");
  EXPECT_EQ(reg["delivered"]["events"], copy["projects"][0]["events"].size());  // the consent record too
  EXPECT_EQ(reg["verification"]["method"], "app-login");
  ASSERT_EQ(ferry_request_status(dev, handle.c_str(), 20000, &status_text), FERRY_OK);
  status = Take(status_text);
  EXPECT_EQ(status["state"], "completed");
  EXPECT_EQ(status["delivered"], true);
  EXPECT_EQ(status["copyReady"], false);
  // Completed: no second copy.
  ASSERT_EQ(ferry_request_copy(dev, handle.c_str(), 20000, &copy_text), FERRY_OK);
  EXPECT_EQ(copy_text, nullptr);

  // Every step is in the audit log, which still verifies.
  std::vector<std::string> steps;
  for (const json& e : Audit()) {
    const std::string a = e["action"];
    if (a == "device.request" || a == "device.copy-link" || a == "requests.deliver" || a == "requests.approve") {
      steps.push_back(a + ":" + e["result"].get<std::string>());
    }
  }
  EXPECT_EQ(steps,
            (std::vector<std::string>{"device.request:ok", "device.request:ok", "requests.approve:ok",
                                      "device.copy-link:ok", "requests.deliver:started", "requests.deliver:ok"}));
  EXPECT_EQ(CtlJson("audit verify")["ok"], true);

  // An unknown receipt is the app's mistake.
  EXPECT_EQ(ferry_request_status(dev, "no-such-receipt", 1000, &status_text), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(status_text, nullptr);
}

TEST_P(DeviceRequestsTest, TheProtocolActsOnlyForTheDevicesOwnIdsAndALinkIsSpentOnce) {
  const std::string anon = "anon-" + base::NewUuidV4(), claim = base::RandomHex(32);
  Ingest(anon);
  Ingest("anon-of-someone", "user-known-7");

  // Ids never seen on this project's events, or held as a userId, are not the device's: nothing is registered.
  auto r = Device("/v1/device/requests", {{"kind", "access"}, {"anonymousIds", {"never-seen"}}, {"claim", claim}});
  EXPECT_EQ(r.status, 409) << r.body;
  r = Device("/v1/device/requests", {{"kind", "erasure"}, {"anonymousIds", {"user-known-7"}}, {"claim", claim}});
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_TRUE(Requests().empty());
  // Kinds the register does not accept, a malformed claim, no write key.
  r = Device("/v1/device/requests", {{"kind", "teleportation"}, {"anonymousIds", {anon}}, {"claim", claim}});
  EXPECT_EQ(r.status, 400) << r.body;
  r = Device("/v1/device/requests", {{"kind", "access"}, {"anonymousIds", {anon}}, {"claim", "short"}});
  EXPECT_EQ(r.status, 400) << r.body;
  auto anonymous = testsupport::HttpRequest("POST", col_->url() + "/v1/device/requests",
                                            json{{"kind", "access"}, {"anonymousIds", {anon}}, {"claim", claim}}.dump(),
                                            {}, col_->ca_file());
  EXPECT_EQ(anonymous.status, 401);

  r = Device("/v1/device/requests", {{"kind", "access"}, {"anonymousIds", {"never-seen", anon}}, {"claim", claim}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string rid = json::parse(r.body)["reference"];
  EXPECT_EQ(Request(rid)["subject"], anon);

  // Another claim, or another request's id, tells nothing.
  r = Device("/v1/device/requests/" + rid + "/status", {{"claim", base::RandomHex(32)}});
  EXPECT_EQ(r.status, 404);
  r = Device("/v1/device/requests/" + rid + "/status", {{"claim", claim}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["state"], "awaiting_verification");
  r = Device("/v1/device/requests/" + rid + "/copy-link", {{"claim", claim}});
  EXPECT_EQ(r.status, 409) << r.body;  // not approved: no link

  CtlJson("requests approve " + rid + " --method phone-call");
  r = Device("/v1/device/requests/" + rid + "/copy-link", {{"claim", base::RandomHex(32)}});
  EXPECT_EQ(r.status, 404);
  // A link replaced by a newer one is dead.
  r = Device("/v1/device/requests/" + rid + "/copy-link", {{"claim", claim}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string first = json::parse(r.body)["url"];
  r = Device("/v1/device/requests/" + rid + "/copy-link", {{"claim", claim}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string url = json::parse(r.body)["url"];
  EXPECT_NE(url, first);
  EXPECT_EQ(testsupport::HttpRequest("GET", col_->url() + first, "", {}, col_->ca_file()).status, 404);
  // A forged token on the right request is refused.
  EXPECT_EQ(testsupport::HttpRequest("GET", col_->url() + "/v1/copies/" + rid + "/" + base::RandomHex(32), "", {},
                                     col_->ca_file())
                .status,
            404);
  // The link works by itself (a browser), once.
  auto got = testsupport::HttpRequest("GET", col_->url() + url, "", {}, col_->ca_file());
  ASSERT_EQ(got.status, 200) << got.body;
  json copy = json::parse(got.body, nullptr, false);
  EXPECT_EQ(copy["subject"], anon);
  EXPECT_EQ(Request(rid)["state"], "completed");
  EXPECT_EQ(testsupport::HttpRequest("GET", col_->url() + url, "", {}, col_->ca_file()).status, 404);
  int refused = 0;
  for (const json& e : Audit()) refused += e["action"] == "requests.deliver" && e["result"] == "refused";
  EXPECT_EQ(refused, 3);  // the replaced link, the forged token, the spent link
}

TEST_P(DeviceRequestsTest, FilingsAreFoldedAndLimitedPerDevice) {
  const std::string anon = "anon-" + base::NewUuidV4(), other = "anon-" + base::NewUuidV4();
  Ingest(anon);
  Ingest(other);
  std::string rid;
  int limited = 0;
  for (int i = 0; i < 8; ++i) {
    auto r =
        Device("/v1/device/requests", {{"kind", "erasure"}, {"anonymousIds", {anon}}, {"claim", base::RandomHex(32)}});
    if (r.status == 429) {
      ++limited;
      EXPECT_FALSE(r.retry_after.empty());
      continue;
    }
    ASSERT_TRUE(r.status == 201 || r.status == 200) << r.body;
    json b = json::parse(r.body);
    if (rid.empty()) rid = b["reference"];
    EXPECT_EQ(b["reference"], rid);
    EXPECT_EQ(b["folded"], r.status == 200);
  }
  EXPECT_EQ(limited, 3);  // a bucket of 5 per device
  // Another device on the same (public) write key is not held up by the first.
  auto r =
      Device("/v1/device/requests", {{"kind", "erasure"}, {"anonymousIds", {other}}, {"claim", base::RandomHex(32)}});
  EXPECT_EQ(r.status, 201) << r.body;
  int erasures = 0;
  for (const json& q : Requests()) erasures += q["kind"] == "erasure";
  EXPECT_EQ(erasures, 2);
}

INSTANTIATE_TEST_SUITE_P(Stores, DeviceRequestsTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ferry::testing
