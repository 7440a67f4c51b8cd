// A person who returns after an erasure (issue 19) through a real ferry-collector over TLS, on both stores: what was
// collected before the erasure stays suppressed (stale buffered events, late retries, another installation, a
// developer default), a new explicit choice starts anew on the installation that made it, the app's backend learns
// of the suppression with its server key (never with the public write key), and a second erasure suppresses the new
// start as well.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "tests/integration/store_collector.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

json Track(const std::string& name, const std::string& anon, int64_t ts, int64_t seq, const std::string& receipt) {
  return {{"messageId", base::NewUuidV4()},
          {"type", "track"},
          {"event", name},
          {"userId", "bob"},
          {"anonymousId", anon},
          {"timestamp", base::FormatIso8601(ts)},
          {"purpose", "analytics"},
          {"deviceSeq", seq},
          {"consentReceipt", receipt.empty() ? json(nullptr) : json(receipt)}};
}

json Consent(const std::string& anon, const std::string& method, int64_t ts, int64_t seq, const std::string& receipt) {
  return {{"messageId", base::NewUuidV4()},
          {"type", "consent"},
          {"userId", "bob"},
          {"anonymousId", anon},
          {"timestamp", base::FormatIso8601(ts)},
          {"purpose", "necessary"},
          {"deviceSeq", seq},
          {"properties",
           {{"purpose", "analytics"},
            {"state", "granted"},
            {"previous", "pending"},
            {"method", method},
            {"seq", seq},
            {"receiptId", receipt}}}};
}

class ReturningSubjectTest : public StoreCollectorTest {
 protected:
  // Posts a batch with the write key; the answer counts every event as accepted (suppressed or not).
  void Post(const std::vector<json>& batch) {
    json body = {{"sentAt", base::FormatIso8601(base::NowMs())}, {"batch", json(batch)}};
    auto r =
        testsupport::HttpRequest("POST", col_->batch_url(), body.dump(),
                                 {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
    json a = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(a.is_object()) << r.body;
    EXPECT_EQ(a["accepted"], batch.size()) << r.body;
  }
  // The names of bob's stored track events, through the officer's API.
  std::multiset<std::string> Stored() {
    auto r = testsupport::HttpRequest("GET", col_->url() + "/v1/subjects/bob/events?project=shop&limit=500", "",
                                      {"Authorization: Bearer " + token_}, col_->ca_file());
    std::multiset<std::string> names;
    if (r.status == 404) return names;
    EXPECT_EQ(r.status, 200) << r.body;
    json page = json::parse(r.body, nullptr, false);
    for (const json& e : page["events"]) {
      if (e["type"] == "track") names.insert(e["name"].get<std::string>());
    }
    return names;
  }
  testsupport::HttpResult Suppression(const std::string& key, const json& ids) {
    return testsupport::HttpRequest("POST", col_->url() + "/v1/suppression", json{{"ids", ids}}.dump(),
                                    {"Authorization: Bearer " + key, "Content-Type: application/json"},
                                    col_->ca_file());
  }
  void Erase() {
    auto r = testsupport::HttpRequest("POST", col_->url() + "/v1/subjects/bob/erase?project=shop", "{}",
                                      {"Authorization: Bearer " + token_, "Content-Type: application/json"},
                                      col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // A time that the collector's clock has certainly passed the erasure by.
  static int64_t After() {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return base::NowMs();
  }
};

TEST_P(ReturningSubjectTest, NewExplicitChoiceStartsAnewAndNothingOlderComesBack) {
  const int64_t t0 = base::NowMs() - 60000;
  Post({Consent("anon-a", "explicit", t0, 1, "r-1"), Track("Before", "anon-a", t0 + 1000, 2, "r-1"),
        Track("Before", "anon-a", t0 + 2000, 3, "r-1")});
  ASSERT_EQ(Stored(), (std::multiset<std::string>{"Before", "Before"}));

  const int64_t erased_before = base::NowMs();
  Erase();
  ASSERT_TRUE(Stored().empty());

  // The app's backend asks with its server key; the public write key is refused.
  auto made = testsupport::HttpRequest(
      "POST", col_->url() + "/v1/keys/server-keys", R"({"project":"shop"})",
      {"Authorization: Bearer " + Token("operator", "ops"), "Content-Type: application/json"}, col_->ca_file());
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string server = json::parse(made.body)["serverKey"].get<std::string>();
  auto asked = Suppression(server, {"bob", "anon-a", "carol"});
  ASSERT_EQ(asked.status, 200) << asked.body;
  json ids = json::parse(asked.body)["ids"];
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0]["suppressed"], true);
  EXPECT_EQ(ids[1]["suppressed"], true);
  EXPECT_EQ(ids[2]["suppressed"], false);
  EXPECT_TRUE(ids[2]["since"].is_null());
  const std::string since = ids[0]["since"].get<std::string>();
  EXPECT_EQ(Suppression(key_, {"bob"}).status, 403);

  // What was collected before the erasure and arrives late stays suppressed, whatever receipt it names.
  Post({Track("Stale", "anon-a", erased_before - 500, 4, "r-1")});
  // After the erasure, without a new choice: still suppressed. A developer default is not a choice.
  int64_t t1 = After();
  Post({Track("NoChoice", "anon-a", t1, 5, "r-1"), Consent("anon-a", "default", t1 + 1, 6, "r-d"),
        Track("AfterDefault", "anon-a", t1 + 2, 7, "r-d")});
  EXPECT_TRUE(Stored().empty());

  // The person chooses again on installation A: a new start from there on, in this batch and later ones.
  int64_t t2 = After();
  Post({Consent("anon-a", "explicit", t2, 8, "r-2"), Track("Again", "anon-a", t2 + 1, 9, "r-2")});
  Post({Track("Again", "anon-a", t2 + 2, 10, "r-2"),
        // a retry of something tracked before the new choice, arriving after it: still suppressed
        Track("Late", "anon-a", t2 - 5, 7, "r-1"),
        // another installation of the same person made no new choice
        Track("OtherDevice", "anon-b", t2 + 3, 3, "")});
  EXPECT_EQ(Stored(), (std::multiset<std::string>{"Again", "Again"}));

  // A second erasure moves the suppression: the new start is erased and what it covered stays out.
  Erase();
  EXPECT_TRUE(Stored().empty());
  auto again = Suppression(server, {"bob"});
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_GT(json::parse(again.body)["ids"][0]["since"].get<std::string>(), since);
  Post({Track("AfterSecondErasure", "anon-a", After(), 11, "r-2")});
  EXPECT_TRUE(Stored().empty());
}

INSTANTIATE_TEST_SUITE_P(Stores, ReturningSubjectTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace ferry::testing
