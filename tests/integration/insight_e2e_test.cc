// The operations insight inside a real ferry-collector (--insight embedded) over TLS: events posted to /v1/batch
// reach the insight as they are accepted (rule tags evaluated incrementally), the analyst role answers
// /v1/insight/*, the privacy rules hold (personalization refused: no tags or scores; audiences only with marketing
// consent, audit-logged; small cohorts suppressed), an erasure is reflected at once, and ferryctl insight prints the
// same answers.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>

#include "tests/support/collector_process.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorProcess;
using testsupport::HttpRequest;
using testsupport::HttpResult;
using testsupport::RunCommand;

constexpr int64_t kDayMs = 86400000;

std::string Q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string Iso(int64_t ms) {
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf) + ".000Z";
}

std::string Date(int64_t ms) { return Iso(ms).substr(0, 10); }

class InsightE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    now_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count();
    today_start_ = now_ms_ / kDayMs * kDayMs;
    config_ = ::testing::TempDir() + "insight_e2e_config.json";
    json config = {
        {"key_events", {"order_completed"}},
        {"tags",
         {{{"name", "recent_buyer"},
           {"description", "ordered in the last 30 days"},
           {"rule", {{"count", {{"event", "order_completed"}, {"within_days", 30}}}, {"op", "gte"}, {"value", 1}}}}}}};
    std::ofstream(config_) << config.dump();
    std::string err;
    testsupport::CollectorOptions o;
    o.extra_args = {"--insight", "embedded", "--insight-config", config_};
    col_ = CollectorProcess::Start(o, &err);
    ASSERT_NE(col_, nullptr) << err;
    analyst_ = col_->CreateAdminToken("analyst", "ana");
    officer_ = col_->CreateAdminToken("compliance,operator", "officer");
    ASSERT_FALSE(analyst_.empty());
    ASSERT_FALSE(officer_.empty());
  }

  json Event(const std::string& user, const std::string& type, const std::string& name, int64_t ts,
             json properties = json::object()) {
    json e = {{"messageId", "m" + std::to_string(++seq_)},
              {"type", type},
              {"userId", user},
              {"timestamp", Iso(ts)},
              {"purpose", "analytics"},
              {"context", {{"app", {{"name", "shop"}}}, {"sessionId", user + "-" + std::to_string(ts / kDayMs)}}}};
    if (type == "track") e["event"] = name;
    if (type == "consent") e["purpose"] = "necessary";
    if (!properties.empty()) e["properties"] = properties;
    return e;
  }
  json Consent(const std::string& user, const std::string& purpose, const std::string& state, int64_t ts) {
    return Event(user, "consent", "", ts, {{"purpose", purpose}, {"state", state}});
  }
  void Post(const json& batch) {
    HttpResult r =
        HttpRequest("POST", col_->batch_url(), json{{"batch", batch}}.dump(),
                    {"Authorization: Bearer " + col_->write_key(), "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
    json answer = json::parse(r.body);
    ASSERT_EQ(answer.value("accepted", -1), static_cast<int>(batch.size())) << r.body;
  }
  HttpResult Get(const std::string& path, const std::string& token) {
    return HttpRequest("GET", col_->url() + path, "", {"Authorization: Bearer " + token}, col_->ca_file());
  }
  json GetOk(const std::string& path) {
    HttpResult r = Get(path, analyst_);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }
  // The retention row of the cohort that starts on `date`.
  static json Row(const json& table, const std::string& date) {
    for (const auto& row : table["rows"]) {
      if (row["cohort"] == date) return row;
    }
    return json();
  }

  int64_t now_ms_ = 0, today_start_ = 0;
  int seq_ = 0;
  std::string config_, analyst_, officer_;
  std::unique_ptr<CollectorProcess> col_;
};

TEST_F(InsightE2ETest, AnswersWithThePrivacyRulesAndErasureAtOnce) {
  // Six persons first seen 10 days ago, four of them back the next day; two first seen 5 days ago (a cohort too
  // small to show). a, b, c ordered 9 days ago. Consent: a personalization + marketing, b personalization only,
  // c nothing beyond analytics.
  const int64_t d10 = today_start_ - 10 * kDayMs + 3600000, d9 = d10 + kDayMs, d5 = today_start_ - 5 * kDayMs;
  json batch = json::array();
  for (const std::string u : {"a", "b", "c", "d", "e", "f"}) batch.push_back(Event(u, "track", "app_opened", d10));
  for (const std::string u : {"a", "b", "c", "d"}) batch.push_back(Event(u, "track", "app_opened", d9));
  for (const std::string u : {"a", "b", "c"}) {
    batch.push_back(Event(u, "track", "order_completed", d9 + 60000, {{"revenue", 12.5}}));
  }
  for (const std::string u : {"g", "h"}) batch.push_back(Event(u, "track", "app_opened", d5));
  batch.push_back(Consent("a", "personalization", "granted", d10));
  batch.push_back(Consent("a", "marketing", "granted", d10));
  batch.push_back(Consent("b", "personalization", "granted", d10));
  ASSERT_NO_FATAL_FAILURE(Post(batch));

  const std::string q = "project=test&granularity=day&periods=3&from=" + Date(d10) + "&to=" + Date(d5);
  // Only the analyst role asks the insight.
  EXPECT_EQ(Get("/v1/insight/retention?" + q, officer_).status, 403);
  EXPECT_EQ(Get("/v1/insight/retention?" + q, "").status, 401);

  json table = GetOk("/v1/insight/retention?" + q);
  json big = Row(table, Date(d10));
  ASSERT_TRUE(big.is_object()) << table.dump();
  EXPECT_EQ(big["size"], 6);
  EXPECT_EQ(big["counts"], json({6, 4, 0}));
  EXPECT_EQ(big["converted"], 3);
  json small = Row(table, Date(d5));
  ASSERT_TRUE(small.is_object()) << table.dump();
  EXPECT_EQ(small["suppressed"], true);
  EXPECT_FALSE(small.contains("size"));

  // A tag with its reason, evaluated as the events arrived; none for the person who did not consent to
  // personalization.
  json a = GetOk("/v1/insight/profile?project=test&person=a");
  EXPECT_EQ(a["personalized"], true);
  ASSERT_EQ(a["tags"].size(), 1u) << a.dump();
  EXPECT_EQ(a["tags"][0]["tag"], "recent_buyer");
  EXPECT_NE(a["tags"][0]["reason"].get<std::string>().find("order_completed: 1 in the last 30 days"), std::string::npos)
      << a.dump();
  EXPECT_TRUE(a["lifecycle"]["stage"].is_string());
  json c = GetOk("/v1/insight/profile?project=test&person=c");
  EXPECT_EQ(c["personalized"], false);
  EXPECT_FALSE(c.contains("tags"));
  EXPECT_FALSE(c.contains("rfm"));
  EXPECT_FALSE(c.contains("lifecycle"));
  EXPECT_EQ(c["events"], 3);

  // The audience: only a (b has no marketing consent; c has no personalization consent, so no tags at all),
  // audit-logged.
  HttpResult exp =
      HttpRequest("POST", col_->url() + "/v1/insight/audiences",
                  json{{"project", "test"}, {"name", "winback"}, {"tag", "recent_buyer"}}.dump(),
                  {"Authorization: Bearer " + analyst_, "Content-Type: application/json"}, col_->ca_file());
  ASSERT_EQ(exp.status, 200) << exp.body;
  json audience = json::parse(exp.body);
  ASSERT_EQ(audience["members"].size(), 1u) << exp.body;
  EXPECT_EQ(audience["members"][0]["person"], "a");
  // Tags are judged only for persons who allow personalization (a, b): the six others are counted as skipped.
  EXPECT_EQ(audience["matched"], 2);
  EXPECT_EQ(audience["skippedNoMarketing"], 1);
  EXPECT_EQ(audience["skippedNoPersonalization"], 6);
  HttpResult audit = Get("/v1/audit?limit=1000", officer_);
  ASSERT_EQ(audit.status, 200) << audit.body;
  EXPECT_NE(audit.body.find("\"insight.audience\""), std::string::npos) << audit.body;
  EXPECT_EQ(audit.body.find("\"a\""), std::string::npos);  // counts and names only, no ids

  // Erasure through the admin API: gone from every answer at once.
  HttpResult erased = HttpRequest("POST", col_->url() + "/v1/subjects/a/erase?project=test", "",
                                  {"Authorization: Bearer " + officer_}, col_->ca_file());
  ASSERT_EQ(erased.status, 200) << erased.body;
  EXPECT_EQ(Get("/v1/insight/profile?project=test&person=a", analyst_).status, 404);
  table = GetOk("/v1/insight/retention?" + q);
  big = Row(table, Date(d10));
  EXPECT_EQ(big["size"], 5) << table.dump();
  EXPECT_EQ(big["counts"], json({5, 3, 0}));
  EXPECT_EQ(big["converted"], 2);

  // ferryctl insight prints the same answer.
  std::string out;
  int rc = RunCommand(Q(testsupport::FerryctlBinary()) + " --url " + Q(col_->url()) + " --token " + Q(analyst_) +
                          " --ca-file " + Q(col_->ca_file()) + " insight retention --project test --granularity day " +
                          "--periods 3 --from " + Date(d10) + " --to " + Date(d5) + " --json",
                      &out);
  ASSERT_EQ(rc, 0) << out;
  json printed = json::parse(out, nullptr, false);
  ASSERT_FALSE(printed.is_discarded()) << out;
  EXPECT_EQ(Row(printed, Date(d10))["counts"], json({5, 3, 0}));
  rc = RunCommand(Q(testsupport::FerryctlBinary()) + " --url " + Q(col_->url()) + " --token " + Q(analyst_) +
                      " --ca-file " + Q(col_->ca_file()) + " insight profile b --project test",
                  &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("recent_buyer"), std::string::npos) << out;
}

}  // namespace
}  // namespace ferry::testing
