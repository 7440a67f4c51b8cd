// Data-subject rights end to end: the real SDK (shared library `ferry`) on several devices, a real ferry-collector
// over TLS, and the real ferryctl over HTTPS: export, erase, suppression of late arrivals, audit verify, device forget.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "collector/engines/sqlite/sqlite_store.h"
#include "ferry/ferry.h"
#include "tests/support/collector_process.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorProcess;
using testsupport::RunCommand;

constexpr const char* kUser = "user-e2e-zebra-42";
constexpr const char* kNick = "Zebra Fortytwo";

std::string Q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class RightsE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    col_ = CollectorProcess::Start({}, &err);
    ASSERT_NE(col_, nullptr) << err;
    token_ = col_->CreateAdminToken("compliance,operator", "officer-ann");
    ASSERT_FALSE(token_.empty());
  }
  void TearDown() override {
    for (auto* c : clients_) ferry_close(c, 0);
  }
  ferry_client* Device(const std::string& buffer, bool analytics_granted = true) {
    ferry_options* o = BaseOptions(dir_.File(buffer));
    EXPECT_EQ(ferry_options_set_endpoint(o, col_->url().c_str()), FERRY_OK);
    EXPECT_EQ(ferry_options_set_write_key(o, col_->write_key().c_str()), FERRY_OK);
    EXPECT_EQ(ferry_options_set_ca_file(o, col_->ca_file().c_str()), FERRY_OK);
    ferry_options_set_flush_interval_ms(o, 3600000);  // uploads only when the test flushes
    ferry_options_set_default_consent(o, "analytics",
                                      analytics_granted ? FERRY_CONSENT_GRANTED : FERRY_CONSENT_PENDING);
    // Pending analytics (the laptop) waits for consent in the buffer only because the app holds it (issue 12 item 7).
    if (!analytics_granted) {
      EXPECT_EQ(ferry_options_set_hold_pending(o, "analytics", 3600000), FERRY_OK);
    }
    ferry_client* c = nullptr;
    EXPECT_EQ(ferry_open(o, &c), FERRY_OK);
    clients_.push_back(c);
    return c;
  }
  std::string Ctl(const std::string& args, int* rc) {
    std::string out;
    *rc = RunCommand(Q(testsupport::FerryctlBinary()) + " --url " + Q(col_->url()) + " --token " + Q(token_) +
                         " --ca-file " + Q(col_->ca_file()) + " " + args,
                     &out);
    return out;
  }
  std::vector<json> Stored() {
    std::vector<json> out;
    for (auto& row : col_->DumpEvents()) {
      json body = row["body"].is_string() ? json::parse(row["body"].get<std::string>(), nullptr, false) : row["body"];
      out.push_back(body);
    }
    return out;
  }
  double Metric(const std::string& name) {
    auto r = testsupport::HttpRequest("GET", col_->url() + "/metrics", "", {}, col_->ca_file());
    return CollectorProcess::MetricValue(r.body, name);
  }

  TempDir dir_;
  std::unique_ptr<CollectorProcess> col_;
  std::string token_;
  std::vector<ferry_client*> clients_;
};

TEST_F(RightsE2ETest, ExportEraseSuppressAndAuditAcrossDevicesOfOneUser) {
  // Three devices of one user (separate buffers, so separate anonymousIds), and another user.
  ferry_client* phone = Device("phone.db");
  ferry_client* tablet = Device("tablet.db");
  ferry_client* laptop = Device("laptop.db", /*analytics_granted=*/false);
  ferry_client* other = Device("other.db");
  std::string traits = std::string(R"({"nickname":")") + kNick + R"(","plan":"pro"})";
  ASSERT_EQ(ferry_track(phone, "Opened", "{}", "analytics"), FERRY_OK);  // anonymous, before identify
  ASSERT_EQ(ferry_identify(phone, kUser, traits.c_str()), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(phone, "marketing", FERRY_CONSENT_GRANTED), FERRY_OK);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(ferry_track(phone, "Viewed", R"({"item":1})", "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_identify(tablet, kUser, "{}"), FERRY_OK);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(ferry_screen(tablet, "Home", "{}"), FERRY_OK);
  ASSERT_EQ(ferry_identify(other, "other-user-7", R"({"nickname":"Other Seven"})"), FERRY_OK);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(ferry_track(other, "Viewed", "{}", "analytics"), FERRY_OK);
  // The laptop identifies and tracks, but its analytics events wait for consent in its buffer.
  ASSERT_EQ(ferry_identify(laptop, kUser, "{}"), FERRY_OK);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(ferry_track(laptop, "Pending", "{}", "analytics"), FERRY_OK);
  for (ferry_client* c : {phone, tablet, other, laptop}) ASSERT_EQ(ferry_flush(c, 20000), FERRY_OK);

  // The user's events as stored, and the ids they carry. The records of the devices' defaults (issue 12: made at
  // open, before any identify) carry only their device's anonymousId: they belong to whoever that device is linked to.
  std::set<std::string> user_msgs, other_msgs, user_ids = {kUser}, other_anons;
  for (const json& e : Stored()) {
    if (e.value("userId", "") == "other-user-7") other_anons.insert(e.value("anonymousId", ""));
  }
  auto others = [&other_anons](const json& e) {
    return e.value("userId", "") == "other-user-7" || other_anons.count(e.value("anonymousId", "")) > 0;
  };
  for (const json& e : Stored()) {
    if (others(e)) {
      other_msgs.insert(e["messageId"].get<std::string>());
    } else {
      user_msgs.insert(e["messageId"].get<std::string>());
      user_ids.insert(e.value("anonymousId", ""));
    }
  }
  // phone: its default's record + Opened + identify + consent + 5 tracks; tablet: its default's record + identify +
  // 4 screens; the laptop has sent nothing yet (its default, pending, is the state it starts in: nothing to record).
  ASSERT_GE(user_msgs.size(), 15u);
  ASSERT_EQ(other_msgs.size(), 5u);  // identify + 3 tracks + the record of its default
  std::string phone_anon;
  for (const json& e : Stored()) {
    if (e.value("type", "") == "track" && e.value("event", "") == "Opened") phone_anon = e["anonymousId"];
  }
  ASSERT_FALSE(phone_anon.empty());

  // Show (by the phone's anonymous id) and export (by the userId) with ferryctl over HTTPS.
  int rc = 0;
  std::string shown = Ctl("--json subject show " + Q(phone_anon), &rc);
  ASSERT_EQ(rc, 0) << shown;
  json show = json::parse(shown, nullptr, false);
  ASSERT_FALSE(show.is_discarded()) << shown;
  EXPECT_EQ(show["projects"][0]["userId"], kUser);
  EXPECT_EQ(show["projects"][0]["eventCount"].get<size_t>(), user_msgs.size());
  EXPECT_EQ(show["projects"][0]["traits"]["nickname"], kNick);

  std::string file = dir_.File("export.json");
  Ctl("subject export " + Q(kUser) + " --output " + Q(file), &rc);
  ASSERT_EQ(rc, 0);
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  json doc = json::parse(ss.str(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << ss.str().substr(0, 500);
  ASSERT_EQ(doc["projects"].size(), 1u);
  const json& p = doc["projects"][0];
  std::set<std::string> exported;
  for (const json& e : p["events"]) exported.insert(e["messageId"].get<std::string>());
  EXPECT_EQ(exported, user_msgs);
  for (const auto& m : other_msgs) EXPECT_EQ(exported.count(m), 0u);
  EXPECT_EQ(ss.str().find("other-user-7"), std::string::npos);
  EXPECT_EQ(ss.str().find("Other Seven"), std::string::npos);
  std::set<std::string> idents;
  for (const json& i : p["identities"]) idents.insert(i["id"].get<std::string>());
  EXPECT_EQ(idents, user_ids);
  EXPECT_EQ(p["traits"]["nickname"], kNick);
  bool marketing = false;
  for (const json& c : p["consentHistory"]) {
    if (c["purpose"] == "marketing" && c["state"] == "granted" && !c["at"].get<std::string>().empty() &&
        c["device"].is_object() && c["device"].contains("os") && c["anonymousId"].is_string()) {
      marketing = true;
    }
  }
  EXPECT_TRUE(marketing) << p["consentHistory"].dump();

  // Erase by the userId (any linked id would do).
  std::string erased = Ctl("--json subject erase " + Q(kUser) + " --yes", &rc);
  ASSERT_EQ(rc, 0) << erased;
  json receipt = json::parse(erased, nullptr, false);
  ASSERT_FALSE(receipt.is_discarded()) << erased;
  EXPECT_EQ(receipt["erased"]["events"].get<size_t>(), user_msgs.size());
  EXPECT_EQ(receipt["erased"]["identity_links"].get<int>(), 2);  // phone and tablet
  EXPECT_GE(receipt["erased"]["traits"].get<int>(), 1);
  EXPECT_TRUE(receipt["requestId"].get<std::string>().rfind("req_", 0) == 0);

  // Nothing of the subject is left anywhere: every text column of every table, read through the store.
  {
    auto store = collector::SqliteStore::Open(col_->data_dir());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::vector<std::string> hits;
    std::vector<std::string> secrets(user_ids.begin(), user_ids.end());
    secrets.push_back(kNick);
    ASSERT_TRUE((*store)
                    ->ScanAllText([&](std::string_view t, std::string_view c, std::string_view text) {
                      for (const auto& s : secrets) {
                        if (text.find(s) != std::string_view::npos)
                          hits.push_back(std::string(t) + "." + std::string(c));
                      }
                      return true;
                    })
                    .ok());
    EXPECT_TRUE(hits.empty()) << hits.front();
  }
  EXPECT_EQ(Stored().size(), other_msgs.size());

  // Late arrivals: the laptop's buffered events go out once consent is given, and are dropped as suppressed.
  double suppressed_before = Metric("ferry_events_suppressed_total");
  ASSERT_EQ(ferry_set_consent(laptop, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_track(phone, "AfterErase", "{}", "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_flush(laptop, 20000), FERRY_OK);
  ASSERT_EQ(ferry_flush(phone, 20000), FERRY_OK);
  EXPECT_GE(Metric("ferry_events_suppressed_total") - suppressed_before, 4);
  // The laptop's grant, made after the erasure, is the person's new choice (issue 19: a new start); it is the only
  // thing of the subject stored again. What the laptop buffered before it and the phone's event stay suppressed.
  size_t new_choices = 0;
  for (const json& e : Stored()) {
    if (others(e)) continue;
    EXPECT_EQ(e["type"], "consent") << e.dump();
    EXPECT_EQ(e["properties"]["method"], "explicit") << e.dump();
    ++new_choices;
  }
  EXPECT_EQ(new_choices, 1u);
  EXPECT_EQ(Stored().size(), other_msgs.size() + 1);

  // The audit chain holds.
  std::string verified = Ctl("audit verify", &rc);
  EXPECT_EQ(rc, 0) << verified;
  EXPECT_NE(verified.find("OK"), std::string::npos);
  std::string audit = Ctl("--json audit", &rc);
  ASSERT_EQ(rc, 0);
  json entries = json::parse(audit, nullptr, false)["entries"];
  std::set<std::string> actions;
  for (const json& e : entries) actions.insert(e["action"].get<std::string>());
  for (const char* a : {"subject.show", "subject.export", "subject.erase"}) EXPECT_EQ(actions.count(a), 1u) << a;
  EXPECT_EQ(audit.find(kUser), std::string::npos);  // the log holds hashes, never ids

  // The person returns on the phone and chooses again: a new start. What the phone tracks after the new grant is
  // stored; what it tracked between the erasure and the grant is not.
  ASSERT_EQ(ferry_track(phone, "BeforeNewChoice", "{}", "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_flush(phone, 20000), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(phone, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_track(phone, "AfterNewChoice", "{}", "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_flush(phone, 20000), FERRY_OK);
  std::multiset<std::string> back;
  for (const json& e : Stored()) {
    if (!others(e) && e["type"] == "track") back.insert(e["event"].get<std::string>());
  }
  EXPECT_EQ(back, (std::multiset<std::string>{"AfterNewChoice"}));
}

TEST_F(RightsE2ETest, FerryForgetFromADeviceErasesItsAnonymousEventsWithAReceipt) {
  ferry_client* dev = Device("forget.db");
  ferry_client* keep = Device("keep.db");
  for (int i = 0; i < 4; ++i) ASSERT_EQ(ferry_track(dev, "Viewed", "{}", "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_track(keep, "Viewed", "{}", "analytics"), FERRY_OK);
  ASSERT_EQ(ferry_flush(dev, 20000), FERRY_OK);
  ASSERT_EQ(ferry_flush(keep, 20000), FERRY_OK);
  std::set<std::string> anons;
  for (const json& e : Stored()) anons.insert(e["anonymousId"].get<std::string>());
  ASSERT_EQ(anons.size(), 2u);
  ASSERT_EQ(Stored().size(), 5u + 2);  // and each device's record of its default (issue 12)

  ASSERT_EQ(ferry_forget(dev, 20000), FERRY_OK);
  json stats = Stats(dev);
  EXPECT_EQ(stats["forgets_sent"], 1);
  auto left = Stored();
  ASSERT_EQ(left.size(), 2u);  // only the other device's event and the record of its default

  // The register holds the completed device erasure; a later event of the forgotten id would be suppressed.
  int rc = 0;
  std::string reqs = Ctl("--json requests", &rc);
  ASSERT_EQ(rc, 0);
  json list = json::parse(reqs, nullptr, false)["requests"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["source"], "device");
  EXPECT_EQ(list[0]["state"], "completed");
  EXPECT_EQ(list[0]["result"]["erased"]["events"], 4 + 1);  // with the record of the device's default

  // A device that was identified: its userId is not erased on its word, but opens a request to verify.
  ferry_client* named = Device("named.db");
  ASSERT_EQ(ferry_identify(named, "user-named-9", "{}"), FERRY_OK);
  ASSERT_EQ(ferry_flush(named, 20000), FERRY_OK);
  ASSERT_EQ(ferry_forget(named, 20000), FERRY_OK);
  std::string pending = Ctl("--json requests --state awaiting_verification", &rc);
  ASSERT_EQ(rc, 0);
  json plist = json::parse(pending, nullptr, false)["requests"];
  ASSERT_EQ(plist.size(), 1u);
  EXPECT_EQ(plist[0]["subject"], "user-named-9");
  std::string approved = Ctl("--json requests approve " + plist[0]["id"].get<std::string>(), &rc);
  ASSERT_EQ(rc, 0) << approved;
  EXPECT_EQ(json::parse(approved, nullptr, false)["state"], "completed");
  Ctl("subject show user-named-9", &rc);
  EXPECT_NE(rc, 0);
  Ctl("audit verify", &rc);
  EXPECT_EQ(rc, 0);
}

TEST(RightsRetentionTest, TheBackgroundJobPurgesEventsOlderThanTheMaximumAge) {
  std::string err;
  testsupport::CollectorOptions opts;
  opts.extra_args = {"--retention-days", "1", "--retention-interval-s", "0.2"};
  auto col = CollectorProcess::Start(opts, &err);
  ASSERT_NE(col, nullptr) << err;
  auto now = std::chrono::system_clock::now();
  auto iso = [](std::chrono::system_clock::time_point t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", std::gmtime(&tt));
    return std::string(buf);
  };
  json batch = json::array();
  batch.push_back({{"messageId", "old-1"},
                   {"type", "track"},
                   {"event", "Old"},
                   {"anonymousId", "a-1"},
                   {"purpose", "analytics"},
                   {"timestamp", iso(now - std::chrono::hours(49))}});
  batch.push_back({{"messageId", "new-1"},
                   {"type", "track"},
                   {"event", "New"},
                   {"anonymousId", "a-1"},
                   {"purpose", "analytics"},
                   {"timestamp", iso(now - std::chrono::hours(1))}});
  auto r = testsupport::HttpRequest("POST", col->batch_url(), json{{"batch", batch}}.dump(),
                                    {"Authorization: Bearer " + col->write_key()}, col->ca_file());
  ASSERT_EQ(r.status, 200) << r.body;
  // The job runs every 0.2 s; the collector says when it deleted something.
  ASSERT_TRUE(col->WaitForLog("retention: deleted 1 expired events")) << col->Log();
  std::vector<json> rows = col->DumpEvents();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["messageId"], "new-1");
  auto m = testsupport::HttpRequest("GET", col->url() + "/metrics", "", {}, col->ca_file());
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_events_purged_total"), 1);
}

}  // namespace
}  // namespace ferry::testing
