// Consent statistics (issue 12 item 9) through a real ferry-collector over TLS and the real ferryctl, on both stores:
// consent records seeded through ingest on known days, and the exact figures per day and per week, purpose and
// notice version (latest state per subject in the bucket), the rates, the roles that may ask, and bad requests.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "tests/integration/store_collector.h"
#include "tests/support/collector_process.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

class ConsentStatsTest : public StoreCollectorTest {
 protected:
  // A consent record of `purpose` for `user` (a userId, or an anonymousId when it starts with "anon-") at `when`.
  static json Record(const std::string& user, const std::string& purpose, const std::string& state,
                     const std::string& version, const std::string& when) {
    json e = {{"messageId", base::NewUuidV4()},
              {"type", "consent"},
              {"anonymousId", user.rfind("anon-", 0) == 0 ? user : "dev-" + user},
              {"timestamp", when},
              {"purpose", "necessary"},
              {"properties",
               {{"purpose", purpose},
                {"state", state},
                {"method", "explicit"},
                {"noticeId", "privacy"},
                {"noticeVersion", version}}}};
    if (user.rfind("anon-", 0) != 0) e["userId"] = user;
    return e;
  }
  void Seed() {
    // No sentAt: the times are kept as sent (no clock-skew shift), all at midday UTC.
    json batch = json::array({
        // Monday 2026-11-02: marketing under notice v1; u1 grants, then denies the same day (the latest counts).
        Record("u1", "marketing", "granted", "1", "2026-11-02T09:00:00.000Z"),
        Record("u2", "marketing", "granted", "1", "2026-11-02T10:00:00.000Z"),
        Record("u3", "marketing", "denied", "1", "2026-11-02T11:00:00.000Z"),
        Record("u4", "marketing", "pending", "1", "2026-11-02T12:00:00.000Z"),
        Record("u1", "marketing", "denied", "1", "2026-11-02T13:00:00.000Z"),
        Record("u1", "analytics", "granted", "1", "2026-11-02T09:00:00.000Z"),
        Record("anon-5", "analytics", "granted", "1", "2026-11-02T09:30:00.000Z"),
        // Tuesday 2026-11-03: notice v2; u2 grants again under it, u5 denies.
        Record("u2", "marketing", "granted", "2", "2026-11-03T10:00:00.000Z"),
        Record("u5", "marketing", "denied", "2", "2026-11-03T11:00:00.000Z"),
        // The next week, Tuesday 2026-11-10: u3 grants under v2.
        Record("u3", "marketing", "granted", "2", "2026-11-10T12:00:00.000Z"),
        // Outside the asked range.
        Record("u6", "marketing", "granted", "2", "2026-11-20T12:00:00.000Z"),
    });
    auto r =
        testsupport::HttpRequest("POST", col_->batch_url(), json{{"batch", batch}}.dump(),
                                 {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["accepted"], batch.size()) << r.body;
  }
  // The row of (bucket, purpose, version) in an answer; null when absent.
  static json Row(const json& doc, const std::string& bucket, const std::string& purpose, const std::string& version) {
    for (const json& r : doc["rows"]) {
      if (r["bucket"] == bucket && r["purpose"] == purpose && r["noticeVersion"] == version) return r;
    }
    return json();
  }
  static void Expect(const json& doc, const std::string& bucket, const std::string& purpose, const std::string& version,
                     int granted, int denied, int pending) {
    json r = Row(doc, bucket, purpose, version);
    ASSERT_FALSE(r.is_null()) << bucket << " " << purpose << " v" << version << " in " << doc.dump();
    EXPECT_EQ(r["granted"], granted) << r.dump();
    EXPECT_EQ(r["denied"], denied) << r.dump();
    EXPECT_EQ(r["pending"], pending) << r.dump();
    const int subjects = granted + denied + pending;
    EXPECT_EQ(r["subjects"], subjects) << r.dump();
    EXPECT_NEAR(r["optInRate"].get<double>(), static_cast<double>(granted) / subjects, 1e-4) << r.dump();
    EXPECT_NEAR(r["optOutRate"].get<double>(), static_cast<double>(denied) / subjects, 1e-4) << r.dump();
  }
};

TEST_P(ConsentStatsTest, PerDayAndPerWeekPurposeAndNoticeVersion) {
  ASSERT_NO_FATAL_FAILURE(Seed());

  json day = CtlJson("consent stats --project shop --from 2026-11-02 --to 2026-11-10");
  EXPECT_EQ(day["bucket"], "day");
  EXPECT_EQ(day["from"], "2026-11-02T00:00:00.000Z");
  EXPECT_EQ(day["to"], "2026-11-11T00:00:00.000Z");  // the last day included
  ASSERT_EQ(day["rows"].size(), 4u) << day.dump();
  Expect(day, "2026-11-02", "marketing", "1", 1, 2, 1);  // u2 | u1 (latest), u3 | u4
  Expect(day, "2026-11-02", "analytics", "1", 2, 0, 0);  // u1 and an anonymous installation
  Expect(day, "2026-11-03", "marketing", "2", 1, 1, 0);  // u2 | u5
  Expect(day, "2026-11-10", "marketing", "2", 1, 0, 0);  // u3

  // Weekly (ISO weeks from Monday): u2's latest in the first week is its v2 grant.
  json week = CtlJson("consent stats --project shop --bucket week --from 2026-11-02 --to 2026-11-15");
  EXPECT_EQ(week["bucket"], "week");
  ASSERT_EQ(week["rows"].size(), 4u) << week.dump();
  Expect(week, "2026-11-02", "marketing", "1", 0, 2, 1);
  Expect(week, "2026-11-02", "marketing", "2", 1, 1, 0);
  Expect(week, "2026-11-02", "analytics", "1", 2, 0, 0);
  Expect(week, "2026-11-09", "marketing", "2", 1, 0, 0);

  // The human form names the columns.
  int rc = 0;
  std::string out = Ctl("consent stats --project shop --bucket week --from 2026-11-02 --to 2026-11-15", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("opt-in"), std::string::npos) << out;
  EXPECT_NE(out.find("2026-11-09  marketing"), std::string::npos) << out;

  // An analyst may ask too; an operator may not. Bad buckets and ranges are refused; an unknown project is 404.
  const std::string analyst = Token("analyst", "ana");
  const std::string path = "/v1/projects/shop/consent/stats?from=2026-11-02&to=2026-11-10";
  auto get = [&](const std::string& p, const std::string& token) {
    return testsupport::HttpRequest("GET", col_->url() + p, "", {"Authorization: Bearer " + token}, col_->ca_file());
  };
  auto a = get(path, analyst);
  EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(json::parse(a.body)["rows"], day["rows"]);
  EXPECT_EQ(get(path, Token("operator", "ops")).status, 403);
  EXPECT_EQ(get(path + "&bucket=month", analyst).status, 400);
  EXPECT_EQ(get("/v1/projects/shop/consent/stats?from=2026-11-10&to=2026-11-01", analyst).status, 400);
  EXPECT_EQ(get("/v1/projects/nope/consent/stats", analyst).status, 404);
  // Audited.
  bool audited = false;
  const json audit = CtlJson("audit --limit 10000")["entries"];
  for (const json& e : audit) {
    audited = audited || (e["action"] == "consent.stats" && e["result"] == "ok" && e["role"] == "analyst");
  }
  EXPECT_TRUE(audited);
}

INSTANTIATE_TEST_SUITE_P(Stores, ConsentStatsTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace ferry::testing
