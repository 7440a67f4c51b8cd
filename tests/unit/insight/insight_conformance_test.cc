// The insight's conformance suite: the same questions asked of every engine, demanding the same answers — exact
// answers on small hand-made streams (the definitions of docs/INSIGHT.md), brute-force references and engine-to-engine
// equality on the generated data set, the churn model's AUC, and the privacy rules (consent filters, restriction,
// erasure, small-group suppression). Compiled twice: for the embedded engine, and for ClickHouse (one server, and a
// Distributed table over two shards; those tests start their servers and carry the "clickhouse" label).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "collector/insight/normalize.h"
#include "collector/insight/scoring.h"
#include "tests/unit/insight/insight_env.h"

namespace ferry::insight::test {
namespace {

using nlohmann::json;

#if defined(FERRY_INSIGHT_CLICKHOUSE)
const Kind kKinds[] = {Kind::kClickHouse, Kind::kClickHouseShards};
#else
const Kind kKinds[] = {Kind::kEmbedded};
#endif

const int32_t D0 = DateToDay("2026-03-02");  // a Monday
constexpr int64_t H = 3600000;

class Conformance : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    std::string why;
    if (!KindAvailable(GetParam(), &why)) {
      // Loud on purpose: a missing ClickHouse is a gap in coverage, never a silent pass.
      std::fprintf(stderr, "\n*** SKIPPED %s: %s ***\n\n", KindName(GetParam()), why.c_str());
      GTEST_SKIP() << "ClickHouse unavailable: " << why;
    }
  }

  Made Make(InsightConfig c = InsightConfig()) {
    Made m = MakeInsight(GetParam(), std::move(c));
    EXPECT_NE(m.insight, nullptr);
    return m;
  }
};

std::string Name(const ::testing::TestParamInfo<Kind>& info) { return KindName(info.param); }

#define FEED(m, events) ASSERT_NO_FATAL_FAILURE(Feed(*(m).insight, events))

// ---------------------------------------------------------------------------------------------------------------
// Hand-made streams with exact answers
// ---------------------------------------------------------------------------------------------------------------

std::vector<InsightEvent> RetentionStream(EventMaker& mk) {
  std::vector<InsightEvent> ev;
  auto first = [&](const std::string& u, int32_t day, const std::string& source) {
    ev.push_back(mk.Track(u, "app_opened", day, 10 * H, "{}", "s-" + u,
                          "\"campaign\":{\"source\":\"" + source + "\",\"name\":\"c-" + source + "\"}"));
  };
  auto act = [&](const std::string& u, int32_t day, const std::string& name = "app_opened") {
    ev.push_back(mk.Track(u, name, day, 11 * H, R"({"revenue": 10})", "s2-" + u,
                          "\"campaign\":{\"source\":\"email\",\"name\":\"later\"}"));
  };
  first("a1", D0, "wechat");
  act("a1", D0 + 7);
  act("a1", D0 + 14);
  act("a1", D0 + 30, "order_completed");  // after as_of: ignored
  first("a2", D0, "wechat");
  act("a2", D0 + 8);
  act("a2", D0 + 21);  // after as_of
  first("a3", D0 + 1, "wechat");
  first("a4", D0 + 2, "wechat");
  act("a4", D0 + 16);
  first("a5", D0 + 6, "wechat");  // a Sunday: its next day is the next week
  act("a5", D0 + 7);
  first("a6", D0 + 3, "baidu");
  act("a6", D0 + 9, "order_completed");
  act("a6", D0 + 10);
  for (const char* b : {"b1", "b2", "b3"}) first(b, D0 + 8, "wechat");
  first("c1", D0 - 10, "wechat");  // first seen before the cohorts asked for
  act("c1", D0 + 1);
  return ev;
}

TEST_P(Conformance, RetentionByWeekWithConversionAndSuppression) {
  Made m = Make();
  EventMaker mk;
  FEED(m, RetentionStream(mk));
  RetentionQuery q;
  q.project = "p";
  q.as_of_day = D0 + 20;
  q.granularity = Granularity::kWeek;
  q.periods = 4;
  q.from_day = D0;
  q.to_day = D0 + 13;
  auto t = m.insight->Retention(q);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->rows.size(), 2u);
  const RetentionRow& w0 = t->rows[0];
  EXPECT_EQ(w0.cohort_start_day, D0);
  EXPECT_FALSE(w0.suppressed);
  EXPECT_EQ(w0.size, 6);
  EXPECT_EQ(w0.counts, (std::vector<int64_t>{6, 4, 2, -1}));  // week 3 is after as_of: not observable
  EXPECT_EQ(w0.converted, 1);
  EXPECT_EQ(t->rows[1].cohort_start_day, D0 + 7);
  EXPECT_TRUE(t->rows[1].suppressed);  // three persons: below the minimum of 5
  EXPECT_EQ(t->rows[1].size, 0);
  EXPECT_TRUE(t->rows[1].counts.empty());
  EXPECT_EQ(t->suppressed_rows, 1);

  // Split by first-touch source: a6 came from baidu (alone: suppressed); a later campaign never moves the split.
  q.split = Split::kSource;
  t = m.insight->Retention(q);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->rows.size(), 3u);
  EXPECT_EQ(t->rows[0].source, "baidu");
  EXPECT_TRUE(t->rows[0].suppressed);
  EXPECT_EQ(t->rows[1].source, "wechat");
  EXPECT_EQ(t->rows[1].size, 5);
  EXPECT_EQ(t->rows[1].counts, (std::vector<int64_t>{5, 3, 2, -1}));
  EXPECT_EQ(t->rows[1].converted, 0);
  EXPECT_TRUE(t->rows[2].suppressed);

  // Days: every cohort here is below 5.
  q.split = Split::kNone;
  q.granularity = Granularity::kDay;
  q.periods = 8;
  t = m.insight->Retention(q);
  ASSERT_TRUE(t.ok());
  for (const auto& r : t->rows) EXPECT_TRUE(r.suppressed) << r.cohort_start_day;
  // With the minimum at 1 the day cohorts show: D0 holds a1 and a2, both back on day 7/8 only.
  InsightConfig one;
  one.min_cohort_size = 1;
  Made m1 = Make(one);
  EventMaker mk1;
  FEED(m1, RetentionStream(mk1));
  t = m1.insight->Retention(q);
  ASSERT_TRUE(t.ok());
  ASSERT_FALSE(t->rows.empty());
  EXPECT_EQ(t->rows[0].cohort_start_day, D0);
  EXPECT_EQ(t->rows[0].size, 2);
  EXPECT_EQ(t->rows[0].counts, (std::vector<int64_t>{2, 0, 0, 0, 0, 0, 0, 1}));
}

std::vector<InsightEvent> FunnelStream(EventMaker& mk) {
  std::vector<InsightEvent> ev;
  auto e = [&](const std::string& u, const std::string& n, int32_t day, int64_t ms) {
    ev.push_back(
        mk.Track(u, n, day, ms, "{}", "s", "\"campaign\":{\"source\":\"" + std::string(u < "f5" ? "x" : "y") + "\"}"));
  };
  e("f1", "view", D0, 1000), e("f1", "cart", D0, 2000), e("f1", "buy", D0, 3000);
  e("f2", "view", D0, 1000), e("f2", "buy", D0, 2000);
  e("f3", "cart", D0, 500), e("f3", "view", D0, 1000);
  e("f4", "view", D0, 10 * H), e("f4", "cart", D0, 10 * H), e("f4", "buy", D0, 10 * H);  // one millisecond
  e("f5", "view", D0, 0), e("f5", "cart", D0, H), e("f5", "buy", D0, H + 1);             // the window is inclusive
  e("f6", "view", D0 - 1, 1000), e("f6", "cart", D0, 1000);                              // entered before the range
  e("f7", "view", D0, 86000000), e("f7", "cart", D0 + 1, 1000), e("f7", "buy", D0 + 2, 1000);  // buy after as_of
  e("f8", "view", D0, 1000), e("f8", "cart", D0, 500000), e("f8", "view", D0, 4000000), e("f8", "buy", D0, 4100000);
  e("f9", "view", D0, 1000), e("f9", "cart", D0, 5000000), e("f9", "view", D0, 4000000), e("f9", "buy", D0, 6000000);
  return ev;
}

TEST_P(Conformance, FunnelOrderWindowTiesAndRange) {
  Made m = Make();
  EventMaker mk;
  FEED(m, FunnelStream(mk));
  FunnelQuery q;
  q.project = "p";
  q.as_of_day = D0 + 1;
  q.steps = {"view", "cart", "buy"};
  q.window_seconds = 3600;
  q.from_day = D0;
  q.to_day = D0;
  auto r = m.insight->Funnel(q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->rows[0].counts, (std::vector<int64_t>{8, 6, 3}));
  // Split by source: x = f1..f4 (4 entered: suppressed), y = f5, f7, f8, f9 (4: suppressed too) — and with a
  // minimum of 4 both show.
  q.split = Split::kSource;
  r = m.insight->Funnel(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->rows.size(), 2u);
  EXPECT_TRUE(r->rows[0].suppressed);
  EXPECT_TRUE(r->rows[1].suppressed);
  EXPECT_EQ(r->suppressed_rows, 2);
  InsightConfig four;
  four.min_cohort_size = 4;
  Made m4 = Make(four);
  EventMaker mk4;
  FEED(m4, FunnelStream(mk4));
  r = m4.insight->Funnel(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(r->rows[0].source, "x");
  EXPECT_EQ(r->rows[0].counts, (std::vector<int64_t>{4, 2, 2}));
  EXPECT_EQ(r->rows[1].source, "y");
  EXPECT_EQ(r->rows[1].counts, (std::vector<int64_t>{4, 4, 1}));
  // Bad questions are refused.
  q.steps = {"view", "view"};
  EXPECT_EQ(m.insight->Funnel(q).status().code(), base::Code::kInvalidArgument);
  q.steps = {"view"};
  EXPECT_EQ(m.insight->Funnel(q).status().code(), base::Code::kInvalidArgument);
}

std::vector<InsightEvent> RfmStream(EventMaker& mk, int32_t D) {
  std::vector<InsightEvent> ev;
  for (int i = 0; i < 6; ++i) ev.push_back(mk.Track("n" + std::to_string(i), "app_opened", D - 3, H));
  auto buy = [&](const std::string& u, int32_t day, const char* revenue) {
    ev.push_back(mk.Track(u, "order_completed", day, 2 * H, std::string("{\"revenue\": ") + revenue + "}"));
  };
  buy("r1", D - 2, "100.00");
  buy("r2", D - 10, "50.50");
  buy("r3", D - 5, "20.00");
  buy("r3", D, "0.125");
  buy("r4", D - 25, "99.99"), buy("r4", D - 22, "99.99"), buy("r4", D - 20, "99.99");
  buy("r4", D - 40, "1000");                               // outside the 30-day window
  ev.push_back(mk.Track("old", "app_opened", D - 31, H));  // no activity in the window: not in the population
  return ev;
}

TEST_P(Conformance, RfmQuantileScoresWithTiesAndConsent) {
  Made m = Make();
  const int32_t D = D0 + 40;
  EventMaker mk;
  FEED(m, RfmStream(mk, D));
  PersonPrivacy no_personalization;
  no_personalization.marketing = true;
  m.privacy->Set("r2", no_personalization);
  RfmQuery q;
  q.project = "p";
  q.as_of_day = D;
  q.window_days = 30;
  auto rep = m.insight->Rfm(q);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  ASSERT_FALSE(rep->suppressed);
  EXPECT_EQ(rep->thresholds.population, 10);
  EXPECT_EQ(rep->thresholds.t[kFrequency], (std::vector<int64_t>{0, 0, 0, 1}));
  EXPECT_EQ(rep->thresholds.t[kRecency], (std::vector<int64_t>{30, 30, 30, 10}));
  EXPECT_EQ(rep->thresholds.t[kMonetary], (std::vector<int64_t>{0, 0, 0, 5050}));
  std::map<std::string, RfmRow> rows;
  for (const auto& r : rep->rows) rows[r.person] = r;
  EXPECT_EQ(rows.size(), 9u);  // r2 refused personalization
  EXPECT_EQ(rep->withheld, 1);
  EXPECT_EQ(rows.count("r2"), 0u);
  EXPECT_EQ(rows["r1"].code, "545");
  EXPECT_EQ(rows["r3"].code, "554");
  EXPECT_EQ(rows["r3"].metrics[kMonetary], 2013);  // 20.00 + 0.125 rounded half up
  EXPECT_EQ(rows["r4"].code, "455");
  EXPECT_EQ(rows["r4"].metrics[kFrequency], 3);
  EXPECT_EQ(rows["r4"].metrics[kMonetary], 29997);
  EXPECT_EQ(rows["n0"].code, "111");
  EXPECT_EQ(rows["n0"].metrics[kRecency], 30);
  EXPECT_EQ(rows.count("old"), 0u);
  // Recency scores: six persons score 1 (shown), two score 4 and two score 5 (below 5: suppressed).
  EXPECT_EQ(rep->distribution[kRecency], (std::vector<int64_t>{6, 0, 0, -1, -1}));
  // The engine's own thresholds (the profile's path) agree with the report's.
  FeatureParams params = ParamsFor(InsightConfig(), D);
  params.rfm_window_days = 30;
  auto th = m.engine->Thresholds("p", params, Exclusion());
  ASSERT_TRUE(th.ok()) << th.status().ToString();
  EXPECT_EQ(th.value(), rep->thresholds);
  // Fewer persons than the minimum: no scores at all.
  q.as_of_day = D - 11;  // the window then holds only r4 and 'old': a population of 2
  auto small = m.insight->Rfm(q);
  ASSERT_TRUE(small.ok());
  EXPECT_TRUE(small->suppressed);
  EXPECT_TRUE(small->rows.empty());
}

std::vector<InsightEvent> LifecycleStream(EventMaker& mk, int32_t D) {
  std::vector<InsightEvent> ev;
  auto a = [&](const std::string& u, int32_t day, const std::string& name = "app_opened") {
    ev.push_back(mk.Track(u, name, day, 9 * H));
  };
  a("l_new", D - 2);
  a("l_act_event", D - 3, "signup_completed");
  a("l_act_days", D - 3), a("l_act_days", D - 2), a("l_act_days", D - 1);
  a("l_ret", D - 10), a("l_ret", D - 1);
  a("l_conv", D - 1, "order_completed");
  a("l_ref", D - 1, "order_completed"), a("l_ref", D - 1, "invite_sent");
  a("l_dorm", D - 20);
  a("l_churn", D - 31);
  a("l_won", D - 50), a("l_won", D - 5);
  a("l_won_old", D - 80), a("l_won_old", D - 45), a("l_won_old", D - 30), a("l_won_old", D - 16);
  a("l_won_old", D - 2);  // came back 45 days ago: too long ago to count as won back
  return ev;
}

TEST_P(Conformance, LifecycleStagesWithReasonsAndSuppressedCounts) {
  Made m = Make();
  const int32_t D = D0 + 60;  // a Friday
  EventMaker mk;
  FEED(m, LifecycleStream(mk, D));
  auto rep = m.insight->Lifecycle("p", D);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  std::map<std::string, StageResult> st(rep->persons.begin(), rep->persons.end());
  EXPECT_EQ(st["l_new"].stage, "new");
  EXPECT_EQ(st["l_new"].reason, "first seen 2 days ago, not activated yet");
  EXPECT_EQ(st["l_act_event"].stage, "activated");
  EXPECT_EQ(st["l_act_days"].stage, "activated");
  EXPECT_EQ(st["l_act_days"].reason, "3 active days within 7 days of the first visit");
  EXPECT_EQ(st["l_ret"].stage, "retained");
  EXPECT_EQ(st["l_conv"].stage, "converted");
  EXPECT_EQ(st["l_ref"].stage, "referring");
  EXPECT_EQ(st["l_dorm"].stage, "dormant");
  EXPECT_EQ(st["l_dorm"].reason, "last active 20 days ago (dormant after 14 days)");
  EXPECT_EQ(st["l_churn"].stage, "churned");
  EXPECT_EQ(st["l_won"].stage, "won_back");
  EXPECT_EQ(st["l_won"].reason, "came back on " + DayToDate(D - 5) + " after at least 30 days without activity");
  EXPECT_EQ(st["l_won_old"].stage, "retained");
  for (const auto& [stage, n] : rep->counts) {
    EXPECT_TRUE(n == 0 || n == -1) << stage << " " << n;  // at most two persons per stage: suppressed
  }
}

InsightConfig TagConfig() {
  InsightConfig c;
  c.tags = json::parse(R"([
    {"name": "digital_browser_no_order", "rule": {"all": [
       {"count": {"event": "product_viewed", "where": [{"prop": "category", "op": "eq", "value": "digital"}],
                  "within_days": 30}, "op": "gte", "value": 3},
       {"not": {"count": {"event": "order_completed", "within_days": 30}, "op": "gte", "value": 1}},
       {"count": {"event": "promotion_clicked", "within_days": 90}, "op": "gte", "value": 1}]}},
    {"name": "big_spender",
     "rule": {"sum": {"event": "order_completed", "prop": "revenue", "within_days": 90}, "op": "gte", "value": 300}},
    {"name": "lapsing_buyer", "rule": {"all": [{"count": {"event": "order_completed"}, "op": "gte", "value": 1},
                                               {"recency": {}, "op": "gte", "value": 14}]}},
    {"name": "pro", "rule": {"any": [{"channel": "miniprogram"}, {"trait": "plan", "op": "eq", "value": "pro"}]}}
  ])");
  return c;
}

std::vector<InsightEvent> TagStream(EventMaker& mk, int32_t D) {
  std::vector<InsightEvent> ev;
  auto v = [&](const std::string& u, int32_t day, const char* cat) {
    ev.push_back(mk.Track(u, "product_viewed", day, 9 * H, std::string("{\"category\": \"") + cat + "\"}"));
  };
  for (const char* u : {"t1", "t2", "t3"}) {
    v(u, D - 35, "digital"), v(u, D - 35, "digital");
    v(u, D - 5, "digital"), v(u, D - 4, "digital"), v(u, D - 4, "apparel");
    ev.push_back(mk.Track(u, "promotion_clicked", D - 40, 9 * H));
  }
  v("t1", D - 29, "digital"), v("t1", D - 1, "digital");  // t1: 4 in 30 days
  v("t2", D - 1, "digital");
  ev.push_back(mk.Track("t2", "order_completed", D - 3, 9 * H, R"({"revenue": 12})"));  // t2 ordered lately
  ev.push_back(mk.Track("t4", "order_completed", D - 80, 9 * H, R"({"revenue": 150})"));
  ev.push_back(mk.Track("t4", "order_completed", D - 10, 9 * H, R"({"revenue": 150.00})"));
  ev.push_back(mk.Track("t4", "order_completed", D - 100, 9 * H, R"({"revenue": 900})"));  // outside 90 days
  ev.push_back(mk.Track("t5", "order_completed", D - 20, 9 * H, R"({"revenue": 5})"));
  ev.push_back(mk.Identify("t6", D - 2, 9 * H, R"({"plan": "free"})"));
  ev.push_back(mk.Identify("t6", D - 1, 9 * H, R"({"plan": "pro"})"));
  ev.push_back(mk.Identify("t6", D + 5, 9 * H, R"({"plan": "free"})"));  // after as_of
  ev.push_back(mk.Track("t6", "app_opened", D - 1, 9 * H));
  return ev;
}

TEST_P(Conformance, TagsWithReasons) {
  Made m = Make(TagConfig());
  const int32_t D = D0 + 100;
  EventMaker mk;
  FEED(m, TagStream(mk, D));
  auto tags = m.insight->Tags("p", D, {});
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  std::map<std::string, std::map<std::string, std::string>> got;
  for (const auto& pt : tags.value()) {
    for (const auto& t : pt.tags) got[pt.person][t.name] = t.reason;
  }
  EXPECT_EQ(got["t1"]["digital_browser_no_order"],
            "product_viewed where category = \"digital\": 4 in the last 30 days (≥ 3); order_completed: 0 in the "
            "last 30 days (not ≥ 1); promotion_clicked: 1 in the last 90 days (≥ 1)");
  EXPECT_EQ(got["t2"].count("digital_browser_no_order"), 0u);  // ordered 3 days ago
  EXPECT_EQ(got["t3"].count("digital_browser_no_order"), 0u);  // only 2 in 30 days
  EXPECT_EQ(got["t4"]["big_spender"], "sum of revenue over order_completed: 300.00 in the last 90 days (≥ 300)");
  EXPECT_EQ(got["t5"]["lapsing_buyer"], "order_completed: 1 in total (≥ 1); last activity: 20 days ago (≥ 14)");
  EXPECT_EQ(got["t6"]["pro"], "trait plan = \"pro\" (= \"pro\")");
  EXPECT_EQ(got["t4"].count("pro"), 0u);
  // One person's profile carries the same tags and reasons.
  auto p = m.insight->GetProfile("p", "t1", D);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->tags.size(), 1u);
  EXPECT_EQ(p->tags[0].reason, got["t1"]["digital_browser_no_order"]);
  auto p6 = m.insight->GetProfile("p", "t6", D);
  ASSERT_TRUE(p6.ok());
  EXPECT_EQ(p6->traits["plan"], "\"pro\"");
}

TEST_P(Conformance, TagDefinedLaterIsBackfilledOnceThenIncremental) {
  Made m = Make();  // no tags yet
  const int32_t D = D0 + 100;
  EventMaker mk;
  FEED(m, TagStream(mk, D));
  m = Reopen(GetParam(), std::move(m), TagConfig());
  ASSERT_NE(m.insight, nullptr);
  EXPECT_GT(m.insight->Stats().backfilled_events, 0);
  auto tags = m.insight->Tags("p", D, {"t1", "t4"});
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  ASSERT_EQ(tags->size(), 2u);
  EXPECT_EQ(tags->at(0).person, "t1");
  ASSERT_EQ(tags->at(0).tags.size(), 1u);
  EXPECT_EQ(tags->at(0).tags[0].name, "digital_browser_no_order");
  // A new order for t1 arrives: the tag stops applying without any rescan.
  FEED(m, {mk.Track("t1", "order_completed", D, 9 * H, R"({"revenue": 1})")});
  tags = m.insight->Tags("p", D, {"t1"});
  ASSERT_TRUE(tags.ok());
  EXPECT_TRUE(tags->empty() || tags->at(0).tags.empty());
  // Opening again does not backfill again.
  m = Reopen(GetParam(), std::move(m), TagConfig());
  ASSERT_NE(m.insight, nullptr);
  EXPECT_EQ(m.insight->Stats().backfilled_events, 0);
}

TEST_P(Conformance, ChurnRiskWithMainFactors) {
  Made m = Make();
  const int32_t D = D0 + 100;
  EventMaker mk;
  std::vector<InsightEvent> ev;
  for (int i = 0; i < 6; ++i)
    ev.push_back(mk.Track("c1", "app_opened", D - 50 + 3 * i, H, "{}", "old" + std::to_string(i)));
  ev.push_back(mk.Track("c1", "order_completed", D - 41, 2 * H, R"({"revenue": 5})", "old3"));
  ev.push_back(mk.Track("c1", "app_opened", D - 12, H, "{}", "new1"));
  ev.push_back(mk.Track("c1", "app_opened", D - 10, H, "{}", "new2"));
  FEED(m, ev);
  auto rep = m.insight->Churn("p", D);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  ASSERT_EQ(rep->persons.size(), 1u);
  const ChurnRisk& r = rep->persons[0].second;
  EXPECT_EQ(r.score, 53);
  ASSERT_EQ(r.factors.size(), 3u);
  EXPECT_EQ(r.factors[0].text, "active days fell from 6 to 2 (last 28 days vs the 28 days before) (+16)");
  EXPECT_EQ(r.factors[1].text, "last active 10 days ago (+14)");
  EXPECT_EQ(r.factors[2].text, "sessions fell from 6 to 2 (+13)");
  auto p = m.insight->GetProfile("p", "c1", D);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->churn.score, 53);
  EXPECT_EQ(p->sessions, 8);
  EXPECT_EQ(p->active_days, 8);
  EXPECT_EQ(p->channels, (std::vector<std::string>{"shop-app"}));
}

TEST_P(Conformance, DuplicatesCountOnceAndProfileFacts) {
  InsightConfig c;
  c.key_events = {"order_completed", "invite_sent"};
  Made m = Make(c);
  EventMaker mk;
  std::vector<InsightEvent> ev;
  ev.push_back(mk.Track("u", "app_opened", D0, 5 * H, "{}", "s1",
                        R"("campaign":{"source":"douyin","name":"kol"},"channel":"miniprogram")"));
  ev.push_back(mk.Track("u", "order_completed", D0 + 1, 5 * H, R"({"revenue": 19.9})", "s2"));
  ev.push_back(ev.back());  // delivered twice
  ev.push_back(mk.Track("u", "order_completed", D0 + 2, 5 * H, R"({"revenue": 5})", ""));
  ev.push_back(mk.Identify("u", D0, 6 * H, R"({"plan": "free", "city": "Wuhan"})"));
  InsightEvent consent = mk.Track("u", "consent", D0, 1000);
  consent.type = "consent";
  consent.purpose = "necessary";
  ev.push_back(consent);
  InsightEvent necessary = mk.Track("u", "login", D0, 2000);
  necessary.purpose = "necessary";
  ev.push_back(necessary);
  FEED(m, ev);
  FEED(m, ev);  // the whole stream again (at-least-once delivery)
  auto p = m.insight->GetProfile("p", "u", D0 + 10);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->events, 3);  // consent and the necessary login are not analytics
  EXPECT_EQ(p->first_seen_ms, static_cast<int64_t>(D0) * 86400000 + 5 * H);
  EXPECT_EQ(p->sessions, 2);
  EXPECT_EQ(p->active_days, 3);
  EXPECT_EQ(p->channels, (std::vector<std::string>{"miniprogram", "shop-app"}));
  EXPECT_EQ(p->source, "douyin");
  EXPECT_EQ(p->campaign, "kol");
  ASSERT_EQ(p->key_events.size(), 2u);
  EXPECT_EQ(p->key_events[0].name, "order_completed");
  EXPECT_EQ(p->key_events[0].count, 2);
  EXPECT_EQ(p->key_events[1].count, 0);
  EXPECT_EQ(p->traits["city"], "\"Wuhan\"");
  EXPECT_TRUE(p->personalized);
  EXPECT_EQ(p->lifecycle.stage, "converted");
  ASSERT_FALSE(p->has_rfm);  // a population of one is below the minimum
  auto s = m.insight->Stats();
  EXPECT_EQ(s.skipped["type"], 2);
  EXPECT_EQ(s.skipped["purpose"], 2);
  EXPECT_EQ(m.insight->GetProfile("p", "nobody", D0 + 10).status().code(), base::Code::kNotFound);
}

// ---------------------------------------------------------------------------------------------------------------
// Privacy: consent filters, restriction, erasure
// ---------------------------------------------------------------------------------------------------------------

TEST_P(Conformance, RefusedPersonalizationMeansNoTagsNoScoresNoStage) {
  Made m = Make(TagConfig());
  const int32_t D = D0 + 100;
  EventMaker mk;
  FEED(m, TagStream(mk, D));
  PersonPrivacy refused;  // personalization not granted; analytics use allowed
  refused.marketing = true;
  m.privacy->Set("t1", refused);
  PersonPrivacy objects = AllGranted();
  objects.objects_personalization = true;
  m.privacy->Set("t4", objects);
  auto p = m.insight->GetProfile("p", "t1", D);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_FALSE(p->personalized);
  EXPECT_EQ(p->withheld_reason, "personalization consent is not granted");
  EXPECT_TRUE(p->tags.empty());
  EXPECT_FALSE(p->has_rfm);
  EXPECT_TRUE(p->lifecycle.stage.empty());
  EXPECT_EQ(p->churn.score, 0);
  EXPECT_GT(p->events, 0);  // the facts are still there
  auto p4 = m.insight->GetProfile("p", "t4", D);
  ASSERT_TRUE(p4.ok());
  EXPECT_EQ(p4->withheld_reason, "the person objects to personalised treatment");
  auto tags = m.insight->Tags("p", D, {});
  ASSERT_TRUE(tags.ok());
  for (const auto& pt : tags.value()) {
    EXPECT_NE(pt.person, "t1");
    EXPECT_NE(pt.person, "t4");
  }
  auto churn = m.insight->Churn("p", D);
  ASSERT_TRUE(churn.ok());
  EXPECT_EQ(churn->withheld, 2);
  auto lc = m.insight->Lifecycle("p", D);
  ASSERT_TRUE(lc.ok());
  EXPECT_EQ(lc->withheld, 2);
  for (const auto& [person, st] : lc->persons) EXPECT_TRUE(person != "t1" && person != "t4");
}

TEST_P(Conformance, AudienceOnlyWithMarketingAtExportTimeAndAudited) {
  Made m = Make(TagConfig());
  const int32_t D = D0 + 100;
  EventMaker mk;
  std::vector<InsightEvent> ev;
  for (int i = 0; i < 8; ++i) {
    ev.push_back(mk.Track("s" + std::to_string(i), "order_completed", D - 5, H, R"({"revenue": 400})"));
  }
  ev.push_back(mk.Track("small", "order_completed", D - 5, H, R"({"revenue": 4})"));
  FEED(m, ev);
  PersonPrivacy no_marketing;
  no_marketing.personalization = true;
  m.privacy->Set("s1", no_marketing);
  PersonPrivacy objects = AllGranted();
  objects.objects_marketing = true;
  m.privacy->Set("s2", objects);
  PersonPrivacy no_personalization;
  no_personalization.marketing = true;
  m.privacy->Set("s3", no_personalization);
  AudienceQuery q;
  q.project = "p";
  q.as_of_day = D;
  q.name = "vip-push";
  q.tag = "big_spender";
  auto a = m.insight->ExportAudience(q);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  std::vector<std::string> ids;
  for (const auto& mem : a->members) ids.push_back(mem.person);
  EXPECT_EQ(ids, (std::vector<std::string>{"s0", "s4", "s5", "s6", "s7"}));
  EXPECT_EQ(a->members[0].reason,
            "tag big_spender: sum of revenue over order_completed: 400.00 in the last 90 days (≥ 300)");
  EXPECT_EQ(a->matched, 7);
  EXPECT_EQ(a->skipped_no_marketing, 2);
  EXPECT_EQ(a->skipped_no_personalization, 1);
  ASSERT_EQ(m.audits->size(), 1u);
  const AuditRecord& rec = m.audits->at(0);
  EXPECT_EQ(rec.action, "insight.audience.export");
  json detail = json::parse(rec.detail);
  EXPECT_EQ(detail["exported"], 5);
  EXPECT_EQ(detail["tag"], "big_spender");
  EXPECT_EQ(rec.detail.find("s0"), std::string::npos);  // counts, never ids
  // Marketing withdrawn now: the next export leaves the person out.
  PersonPrivacy withdrawn = AllGranted();
  withdrawn.marketing = false;
  m.privacy->Set("s0", withdrawn);
  a = m.insight->ExportAudience(q);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->members.size(), 4u);
  // Segments: a lifecycle stage and a churn threshold.
  q.tag.clear();
  q.stage = "converted";
  a = m.insight->ExportAudience(q);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->members.size(), 5u);  // s4..s7 and 'small'
  EXPECT_EQ(a->members[0].reason, "lifecycle stage converted: 1 purchase(s)");
  q.stage.clear();
  q.min_churn_risk = 0;
  a = m.insight->ExportAudience(q);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->members.size(), 5u);
  // An unknown tag is refused.
  q.min_churn_risk = -1;
  q.tag = "nope";
  EXPECT_EQ(m.insight->ExportAudience(q).status().code(), base::Code::kNotFound);
}

TEST_P(Conformance, RestrictionAndObjectionReflectedAtOnceAndLifted) {
  Made m = Make(TagConfig());
  EventMaker mk;
  std::vector<InsightEvent> ev = RetentionStream(mk);
  const int32_t D = D0 + 20;
  FEED(m, ev);
  RetentionQuery q;
  q.project = "p";
  q.as_of_day = D;
  q.periods = 4;
  q.from_day = D0;
  q.to_day = D0 + 6;
  auto size = [&]() {
    auto t = m.insight->Retention(q);
    EXPECT_TRUE(t.ok());
    return t.ok() && !t->rows.empty() ? (t->rows[0].suppressed ? -1 : t->rows[0].size) : -2;
  };
  EXPECT_EQ(size(), 6);
  ASSERT_TRUE(m.insight->Restrict("p", {"a1", "a-a1"}).ok());
  EXPECT_EQ(size(), 5);
  EXPECT_EQ(m.insight->GetProfile("p", "a1", D).status().code(), base::Code::kFailedPrecondition);
  // Events arriving while restricted are kept but not processed into tag hits.
  FEED(m, {mk.Track("a1", "order_completed", D, H, R"({"revenue": 500})")});
  EXPECT_EQ(m.insight->Stats().restricted_skipped_hits, 1);
  // Objection through the privacy view works the same way, for another person.
  PersonPrivacy objects = AllGranted();
  objects.objects_analytics = true;
  m.privacy->Set("a2", objects);
  EXPECT_EQ(size(), -1);  // 4 left: below the minimum
  m.privacy->Set("a2", AllGranted());
  EXPECT_EQ(size(), 5);
  // A restriction survives a restart of the insight.
  m = Reopen(GetParam(), std::move(m), TagConfig());
  ASSERT_NE(m.insight, nullptr);
  EXPECT_EQ(size(), 5);
  ASSERT_TRUE(m.insight->Lift("p", {"a1", "a-a1"}).ok());
  ASSERT_TRUE(m.insight->Flush(60000).ok());
  EXPECT_EQ(size(), 6);
  // Lifting computed the hits of the event that came in while restricted.
  auto tags = m.insight->Tags("p", D, {"a1"});
  ASSERT_TRUE(tags.ok());
  ASSERT_EQ(tags->size(), 1u);
  EXPECT_EQ(tags->at(0).tags[0].name, "big_spender");
}

int64_t CountRows(Kind k, Engine* e, const std::string& table, const std::string& person) {
  if (k == Kind::kEmbedded) {
    int64_t n = 0;
    (void)e->ScanEvents("p", {}, {person}, [&](const ActivityRow&) {
      ++n;
      return true;
    });
    return n;
  }
  auto* ch = static_cast<ClickHouseEngine*>(e);
  int64_t n = -1;
  (void)ch->client().Select("SELECT count() FROM " + ch->database() + "." + table + " WHERE person = '" + person + "'",
                            [&](const std::vector<std::string>& f) {
                              n = std::stoll(f[0]);
                              return true;
                            });
  return n;
}

TEST_P(Conformance, ErasureReflectedAtOnceAndThenGone) {
  Made m = Make(TagConfig());
  EventMaker mk;
  const int32_t D = D0 + 20;
  std::vector<InsightEvent> ev = RetentionStream(mk);
  ev.push_back(mk.Track("a3", "order_completed", D0 + 2, H, R"({"revenue": 400})"));
  ev.push_back(mk.Identify("a3", D0 + 2, H, R"({"plan": "pro"})"));
  FEED(m, ev);
  ASSERT_TRUE(m.insight->GetProfile("p", "a3", D).ok());
  ASSERT_GT(CountRows(GetParam(), m.engine, "events", "a3"), 0);
  ASSERT_TRUE(m.insight->Erase("p", {"a3", "a-a3"}).ok());
  // At once, in every answer.
  EXPECT_EQ(m.insight->GetProfile("p", "a3", D).status().code(), base::Code::kNotFound);
  RetentionQuery q;
  q.project = "p";
  q.as_of_day = D;
  q.periods = 4;
  q.from_day = D0;
  q.to_day = D0 + 6;
  auto t = m.insight->Retention(q);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->rows[0].size, 5);
  auto tags = m.insight->Tags("p", D, {});
  ASSERT_TRUE(tags.ok());
  for (const auto& pt : tags.value()) EXPECT_NE(pt.person, "a3");
  auto rfm = m.insight->Rfm(RfmQuery{"p", D, 0, "", "", ""});
  ASSERT_TRUE(rfm.ok());
  for (const auto& r : rfm->rows) EXPECT_NE(r.person, "a3");
  // And then physically gone (ClickHouse: once the mutations are done; Maintain ends the exclusion).
  if (GetParam() != Kind::kEmbedded) {
    auto* ch = static_cast<ClickHouseEngine*>(m.engine);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    int64_t pending = 1;
    while (std::chrono::steady_clock::now() < deadline) {
      auto p = ch->PendingMutations();
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      pending = p.value();
      if (pending == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(pending, 0);
    ASSERT_TRUE(m.insight->Maintain().ok());
    EXPECT_TRUE(ch->EngineExclusions("p").empty());
  }
  for (const char* table : {"events", "hits", "traits"}) {
    if (GetParam() == Kind::kEmbedded && std::string(table) != "events") continue;
    EXPECT_EQ(CountRows(GetParam(), m.engine, table, "a3"), 0) << table;
  }
  EXPECT_EQ(m.insight->GetProfile("p", "a3", D).status().code(), base::Code::kNotFound);
  t = m.insight->Retention(q);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->rows[0].size, 5);
  // Events of the erased person that arrive again are not counted while the erasure is in progress either; the
  // collector's suppression list keeps them out for good.
}

TEST_P(Conformance, RetentionPurgeRemovesWholeExpiredDays) {
  Made m = Make(TagConfig());
  EventMaker mk;
  std::vector<InsightEvent> ev = RetentionStream(mk);
  ev.push_back(mk.Identify("a3", D0 + 2, H, R"({"plan": "pro"})"));
  ev.push_back(mk.Track("a3", "order_completed", D0 + 2, H, R"({"revenue": 400})"));
  FEED(m, ev);
  const int32_t D = D0 + 20;
  auto before = m.insight->GetProfile("p", "a1", D);
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->events, 3);  // D0, D0+7, D0+14 (D0+30 is after as_of)
  // A maximum age of 12 days as of D0+20, 05:00: the cutoff is on day D0+8, so days up to D0+8 go. Project "q" has
  // no events; another project's own age does not apply to "p".
  const int64_t now = (static_cast<int64_t>(D0) + 20) * 86400000 + 5 * H;
  ASSERT_TRUE(m.insight->PurgeExpired(now, 12LL * 86400000, {{"other", 1}}).ok());
  if (GetParam() != Kind::kEmbedded) {
    auto* ch = static_cast<ClickHouseEngine*>(m.engine);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    int64_t pending = 1;
    while (std::chrono::steady_clock::now() < deadline) {
      auto p = ch->PendingMutations();
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      pending = p.value();
      if (pending == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(pending, 0);
  }
  auto after = m.insight->GetProfile("p", "a1", D);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->events, 1);  // D0+14 only
  EXPECT_EQ(after->first_seen_ms, (static_cast<int64_t>(D0) + 14) * 86400000 + 11 * H);
  EXPECT_EQ(m.insight->GetProfile("p", "a3", D).status().code(), base::Code::kNotFound);  // all of a3 was expired
  for (const char* table : {"events", "hits", "traits"}) {
    if (GetParam() == Kind::kEmbedded && std::string(table) != "events") continue;
    EXPECT_EQ(CountRows(GetParam(), m.engine, table, "a3"), 0) << table;
  }
  // A maximum age of zero or less keeps everything.
  ASSERT_TRUE(m.insight->PurgeExpired(now + 30LL * 86400000, 0, {}).ok());
  EXPECT_EQ(m.insight->GetProfile("p", "a1", D)->events, 1);
}

// ---------------------------------------------------------------------------------------------------------------
// The generated data set
// ---------------------------------------------------------------------------------------------------------------

// Brute force from the generated events: activity rows per person (deduplicated, day <= as_of), ordered.
std::map<std::string, std::vector<ActivityRow>> Reference(const Dataset& d, const InsightConfig& c, int32_t as_of) {
  std::map<std::string, std::vector<ActivityRow>> by;
  std::set<std::string> seen;
  for (const auto& e : d.events) {
    Normalized n = Normalize(e, c);
    if (n.kind != Normalized::Kind::kActivity || n.activity.day > as_of) continue;
    if (!seen.insert(e.message_id).second) continue;
    by[n.activity.person].push_back(n.activity);
  }
  for (auto& [p, v] : by) {
    std::sort(v.begin(), v.end(), [](const ActivityRow& a, const ActivityRow& b) {
      return std::tie(a.ts_ms, a.message_id) < std::tie(b.ts_ms, b.message_id);
    });
  }
  return by;
}

Made& Loaded(Kind k) {
  static std::map<Kind, Made> loaded;
  auto it = loaded.find(k);
  if (it != loaded.end()) return it->second;
  Made m = MakeInsight(k, DatasetConfig());
  if (m.insight != nullptr) {
    ApplyTruth(*m.privacy, TheDataset());
    Feed(*m.insight, TheDataset().events);
  }
  return loaded[k] = std::move(m);
}

TEST_P(Conformance, GeneratedDataMatchesBruteForceReferences) {
  const Dataset& d = TheDataset();
  Made& m = Loaded(GetParam());
  ASSERT_NE(m.insight, nullptr);
  const InsightConfig c = DatasetConfig();
  const int32_t D = d.as_of;
  auto ref = Reference(d, c, D);
  // Features of every person equal the reference fold of their events.
  const FeatureParams p = ParamsFor(c, D);
  auto feats = m.engine->Features("p", p, {}, Exclusion());
  ASSERT_TRUE(feats.ok()) << feats.status().ToString();
  ASSERT_EQ(feats->size(), ref.size());
  size_t i = 0;
  for (const auto& [person, rows] : ref) {
    std::vector<const ActivityRow*> ptrs;
    for (const auto& r : rows) ptrs.push_back(&r);
    PersonFeatures want;
    ASSERT_TRUE(FoldFeatures(ptrs, p, &want));
    ASSERT_EQ((*feats)[i].person, person);
    EXPECT_TRUE((*feats)[i] == want) << person;
    ++i;
  }
  // Retention by week, counted by hand.
  RetentionQuery q;
  q.project = "p";
  q.as_of_day = D;
  q.periods = 12;
  q.from_day = d.options.start_day;
  q.to_day = D;
  auto t = m.insight->Retention(q);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  std::map<int32_t, std::vector<int64_t>> want;
  for (const auto& [person, rows] : ref) {
    int32_t cohort = WeekOf(rows.front().day);
    auto& v = want[cohort];
    if (v.empty()) v.assign(13, 0);
    ++v[12];
    std::set<int32_t> weeks;
    for (const auto& r : rows) weeks.insert(WeekOf(r.day));
    for (int k = 0; k < 12; ++k) v[static_cast<size_t>(k)] += weeks.count(cohort + k);
  }
  ASSERT_EQ(t->rows.size(), want.size());
  for (const auto& row : t->rows) {
    const auto& v = want[WeekOf(row.cohort_start_day)];
    if (v[12] < 5) {
      EXPECT_TRUE(row.suppressed);
      continue;
    }
    EXPECT_EQ(row.size, v[12]);
    for (int k = 0; k < 12; ++k) {
      int64_t expect = WeekOf(row.cohort_start_day) + k > WeekOf(D) ? -1 : v[static_cast<size_t>(k)];
      EXPECT_EQ(row.counts[static_cast<size_t>(k)], expect) << row.cohort_start_day << " +" << k;
    }
  }
  // A funnel, by exhaustive search over chains (not the greedy the engines use).
  FunnelQuery fq;
  fq.project = "p";
  fq.as_of_day = D;
  fq.steps = {"product_viewed", "add_to_cart", "checkout_started", "order_completed"};
  fq.window_seconds = 600;
  fq.from_day = D - 29;
  fq.to_day = D;
  auto f = m.insight->Funnel(fq);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  std::vector<int64_t> counts(4, 0);
  for (const auto& [person, rows] : ref) {
    std::vector<std::vector<int64_t>> times(4);
    for (const auto& r : rows) {
      for (size_t s = 0; s < 4; ++s) {
        if (r.name != fq.steps[s]) continue;
        if (s == 0 && (r.day < fq.from_day || r.day > fq.to_day)) continue;
        times[s].push_back(r.ts_ms);
      }
    }
    int best = 0;
    std::function<void(size_t, int64_t, int64_t)> dfs = [&](size_t s, int64_t prev, int64_t start) {
      best = std::max(best, static_cast<int>(s));
      if (s == 4 || best == 4) return;
      for (int64_t t2 : times[s]) {
        if (t2 >= prev && t2 - start <= fq.window_seconds * 1000) dfs(s + 1, t2, start);
      }
    };
    for (int64_t t1 : times[0]) dfs(1, t1, t1);
    for (int j = 0; j < best; ++j) ++counts[static_cast<size_t>(j)];
  }
  ASSERT_EQ(f->rows.size(), 1u);
  EXPECT_EQ(f->rows[0].counts, counts);
  EXPECT_GT(counts[3], 0);
}

TEST_P(Conformance, GeneratedDataSuppressesSmallGroups) {
  Made& m = Loaded(GetParam());
  ASSERT_NE(m.insight, nullptr);
  RetentionQuery q;
  q.project = "p";
  q.as_of_day = TheDataset().as_of;
  q.granularity = Granularity::kDay;
  q.periods = 8;
  q.from_day = q.as_of_day - 30;
  q.to_day = q.as_of_day;
  q.split = Split::kSourceCampaign;
  auto t = m.insight->Retention(q);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  int64_t shown = 0;
  for (const auto& r : t->rows) {
    if (r.suppressed) {
      EXPECT_TRUE(r.counts.empty());
      continue;
    }
    ++shown;
    EXPECT_GE(r.size, 5);
  }
  EXPECT_GT(t->suppressed_rows, 0);
  EXPECT_GT(shown, 0);
}

TEST_P(Conformance, ChurnModelRanksFutureChurnersHigher) {
  const Dataset& d = TheDataset();
  Made& m = Loaded(GetParam());
  ASSERT_NE(m.insight, nullptr);
  const InsightConfig c = DatasetConfig();
  const int32_t D = d.as_of, L = c.churn.window_days;
  // Truth from the stream itself: active again in the L days after D?
  std::set<std::string> active_after, active_before;
  for (const auto& e : d.events) {
    Normalized n = Normalize(e, c);
    if (n.kind != Normalized::Kind::kActivity) continue;
    if (n.activity.day > D && n.activity.day <= D + L) active_after.insert(n.activity.person);
    if (n.activity.day > D - L && n.activity.day <= D) active_before.insert(n.activity.person);
  }
  auto rep = m.insight->Churn("p", D);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  std::vector<std::pair<double, bool>> scored, customers;
  int64_t churners = 0, customer_churners = 0;
  for (const auto& [person, risk] : rep->persons) {
    if (active_before.count(person) == 0) continue;  // only persons still active lately
    bool churned = active_after.count(person) == 0;
    churners += churned;
    scored.emplace_back(risk.score, churned);
    auto t = d.truth_of.find(person);
    if (t != d.truth_of.end() && d.users[static_cast<size_t>(t->second)].user_id == person) {
      customers.emplace_back(risk.score, churned);  // signed-up users only (no one-visit anonymous visitors)
      customer_churners += churned;
    }
  }
  double auc = Auc(scored), customer_auc = Auc(customers);
  std::printf(
      "[ %s ] churn AUC %.3f over %zu persons active in the last %d days (%lld churned in the next %d); "
      "signed-up users only: AUC %.3f over %zu (%lld churned)\n",
      KindName(GetParam()), auc, scored.size(), L, static_cast<long long>(churners), L, customer_auc, customers.size(),
      static_cast<long long>(customer_churners));
  ASSERT_GT(scored.size(), 300u);
  ASSERT_GT(churners, 50);
  // The margin: with these class sizes the AUC of a random score has a standard error of about 0.015, so 0.70 is
  // more than 13 standard errors above chance (docs/INSIGHT.md, "Figures").
  EXPECT_GT(auc, 0.70);
}

INSTANTIATE_TEST_SUITE_P(Engines, Conformance, ::testing::ValuesIn(kKinds), Name);

#if defined(FERRY_INSIGHT_CLICKHOUSE)

// ---------------------------------------------------------------------------------------------------------------
// ClickHouse against the embedded engine on the generated data, and the sink's at-least-once delivery
// ---------------------------------------------------------------------------------------------------------------

class ClickHouseVsEmbedded : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    std::string why;
    if (!KindAvailable(GetParam(), &why)) {
      std::fprintf(stderr, "\n*** SKIPPED %s: %s ***\n\n", KindName(GetParam()), why.c_str());
      GTEST_SKIP() << "ClickHouse unavailable: " << why;
    }
  }
};

TEST_P(ClickHouseVsEmbedded, SameAnswersToEveryQuestion) {
  const Dataset& d = TheDataset();
  Made& ch = Loaded(GetParam());
  Made& em = Loaded(Kind::kEmbedded);
  ASSERT_NE(ch.insight, nullptr);
  ASSERT_NE(em.insight, nullptr);
  const int32_t D = d.as_of;
  for (Granularity g : {Granularity::kWeek, Granularity::kDay}) {
    for (Split s : {Split::kNone, Split::kSource, Split::kSourceCampaign}) {
      RetentionQuery q;
      q.project = "p";
      q.as_of_day = D;
      q.granularity = g;
      q.periods = g == Granularity::kWeek ? 12 : 14;
      q.from_day = g == Granularity::kWeek ? d.options.start_day : D - 30;
      q.to_day = D;
      q.split = s;
      auto a = ch.insight->Retention(q), b = em.insight->Retention(q);
      ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << b.status().ToString();
      ASSERT_EQ(a->rows.size(), b->rows.size());
      for (size_t i = 0; i < a->rows.size(); ++i) {
        EXPECT_EQ(a->rows[i].cohort_start_day, b->rows[i].cohort_start_day);
        EXPECT_EQ(a->rows[i].source, b->rows[i].source);
        EXPECT_EQ(a->rows[i].campaign, b->rows[i].campaign);
        EXPECT_EQ(a->rows[i].size, b->rows[i].size);
        EXPECT_EQ(a->rows[i].counts, b->rows[i].counts);
        EXPECT_EQ(a->rows[i].converted, b->rows[i].converted);
      }
    }
  }
  for (Split s : {Split::kNone, Split::kCampaign}) {
    FunnelQuery q;
    q.project = "p";
    q.as_of_day = D;
    q.steps = {"app_opened", "product_viewed", "add_to_cart", "order_completed"};
    q.window_seconds = 1800;
    q.from_day = D - 60;
    q.to_day = D;
    q.split = s;
    auto a = ch.insight->Funnel(q), b = em.insight->Funnel(q);
    ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << b.status().ToString();
    ASSERT_EQ(a->rows.size(), b->rows.size());
    for (size_t i = 0; i < a->rows.size(); ++i) {
      EXPECT_EQ(a->rows[i].source, b->rows[i].source);
      EXPECT_EQ(a->rows[i].campaign, b->rows[i].campaign);
      EXPECT_EQ(a->rows[i].counts, b->rows[i].counts);
    }
  }
  auto ra = ch.insight->Rfm(RfmQuery{"p", D, 0, "", "", ""});
  auto rb = em.insight->Rfm(RfmQuery{"p", D, 0, "", "", ""});
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(ra->thresholds, rb->thresholds);
  EXPECT_EQ(ra->distribution, rb->distribution);
  ASSERT_EQ(ra->rows.size(), rb->rows.size());
  for (size_t i = 0; i < ra->rows.size(); ++i) {
    EXPECT_EQ(ra->rows[i].person, rb->rows[i].person);
    EXPECT_EQ(ra->rows[i].code, rb->rows[i].code);
    EXPECT_TRUE(
        std::equal(std::begin(ra->rows[i].metrics), std::end(ra->rows[i].metrics), std::begin(rb->rows[i].metrics)));
  }
  auto la = ch.insight->Lifecycle("p", D), lb = em.insight->Lifecycle("p", D);
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_EQ(la->counts, lb->counts);
  ASSERT_EQ(la->persons.size(), lb->persons.size());
  for (size_t i = 0; i < la->persons.size(); ++i) {
    EXPECT_EQ(la->persons[i].first, lb->persons[i].first);
    EXPECT_EQ(la->persons[i].second.stage, lb->persons[i].second.stage);
    EXPECT_EQ(la->persons[i].second.reason, lb->persons[i].second.reason);
  }
  auto ta = ch.insight->Tags("p", D, {}), tb = em.insight->Tags("p", D, {});
  ASSERT_TRUE(ta.ok() && tb.ok());
  ASSERT_EQ(ta->size(), tb->size());
  size_t applied = 0;
  for (size_t i = 0; i < ta->size(); ++i) {
    EXPECT_EQ((*ta)[i].person, (*tb)[i].person);
    ASSERT_EQ((*ta)[i].tags.size(), (*tb)[i].tags.size());
    for (size_t j = 0; j < (*ta)[i].tags.size(); ++j) {
      EXPECT_EQ((*ta)[i].tags[j].name, (*tb)[i].tags[j].name);
      EXPECT_EQ((*ta)[i].tags[j].reason, (*tb)[i].tags[j].reason);
    }
    applied += (*ta)[i].tags.size();
  }
  EXPECT_GT(applied, 100u);
  auto ca = ch.insight->Churn("p", D), cb = em.insight->Churn("p", D);
  ASSERT_TRUE(ca.ok() && cb.ok());
  ASSERT_EQ(ca->persons.size(), cb->persons.size());
  for (size_t i = 0; i < ca->persons.size(); ++i) {
    EXPECT_EQ(ca->persons[i].first, cb->persons[i].first);
    EXPECT_EQ(ca->persons[i].second.score, cb->persons[i].second.score);
  }
  for (const char* tag : {"digital_browser_no_order", "big_spender", "mini_or_pro", "wechat_inviter"}) {
    AudienceQuery q;
    q.project = "p";
    q.as_of_day = D;
    q.name = "same";
    q.tag = tag;
    auto aa = ch.insight->ExportAudience(q), ab = em.insight->ExportAudience(q);
    ASSERT_TRUE(aa.ok() && ab.ok());
    ASSERT_EQ(aa->members.size(), ab->members.size()) << tag;
    for (size_t i = 0; i < aa->members.size(); ++i) {
      EXPECT_EQ(aa->members[i].person, ab->members[i].person);
      EXPECT_EQ(aa->members[i].reason, ab->members[i].reason);
    }
    EXPECT_EQ(aa->skipped_no_marketing, ab->skipped_no_marketing);
  }
  // Profiles of a sample of persons, one by one.
  int checked = 0;
  for (size_t u = 0; u < d.users.size() && checked < 25; u += 37) {
    const auto& truth = d.users[u];
    std::string person = truth.user_id.empty() ? truth.anonymous_id : truth.user_id;
    auto pa = ch.insight->GetProfile("p", person, D), pb = em.insight->GetProfile("p", person, D);
    ASSERT_EQ(pa.ok(), pb.ok()) << person;
    if (!pa.ok()) continue;
    ++checked;
    EXPECT_EQ(pa->events, pb->events);
    EXPECT_EQ(pa->first_seen_ms, pb->first_seen_ms);
    EXPECT_EQ(pa->channels, pb->channels);
    EXPECT_EQ(pa->traits, pb->traits);
    EXPECT_EQ(pa->lifecycle.stage, pb->lifecycle.stage);
    EXPECT_EQ(pa->rfm.code, pb->rfm.code);
    EXPECT_EQ(pa->churn.score, pb->churn.score);
    ASSERT_EQ(pa->tags.size(), pb->tags.size());
    for (size_t j = 0; j < pa->tags.size(); ++j) EXPECT_EQ(pa->tags[j].reason, pb->tags[j].reason);
    ASSERT_EQ(pa->key_events.size(), pb->key_events.size());
    for (size_t j = 0; j < pa->key_events.size(); ++j) EXPECT_EQ(pa->key_events[j].count, pb->key_events[j].count);
  }
  EXPECT_GT(checked, 10);
}

INSTANTIATE_TEST_SUITE_P(Engines, ClickHouseVsEmbedded, ::testing::ValuesIn(kKinds), Name);

TEST(ClickHouseShards, BothShardsHoldDataAndTheDistributedTableSeesAll) {
  std::string why;
  if (!KindAvailable(Kind::kClickHouseShards, &why)) {
    std::fprintf(stderr, "\n*** SKIPPED clickhouse_2shards: %s ***\n\n", why.c_str());
    GTEST_SKIP() << "ClickHouse unavailable: " << why;
  }
  Made& ch = Loaded(Kind::kClickHouseShards);
  ASSERT_NE(ch.insight, nullptr);
  auto* engine = static_cast<ClickHouseEngine*>(ch.engine);
  int64_t total = 0;
  for (const std::string& url : ShardUrls(Kind::kClickHouseShards)) {
    ClickHouseClient c(url, "default", base::SecretBytes(), 60000);
    int64_t n = -1;
    ASSERT_TRUE(c.Select("SELECT count() FROM " + engine->database() + ".events_local FINAL",
                         [&](const std::vector<std::string>& f) {
                           n = std::stoll(f[0]);
                           return true;
                         })
                    .ok());
    EXPECT_GT(n, 1000) << url;
    total += n;
  }
  int64_t via = -1;
  ASSERT_TRUE(engine->client()
                  .Select("SELECT count() FROM " + engine->database() + ".events FINAL",
                          [&](const std::vector<std::string>& f) {
                            via = std::stoll(f[0]);
                            return true;
                          })
                  .ok());
  EXPECT_EQ(via, total);
}

TEST(ClickHouseSink, RetriesUntilTheServerIsBackAndCountsEachEventOnce) {
  std::string why;
  if (!KindAvailable(Kind::kClickHouse, &why)) {
    std::fprintf(stderr, "\n*** SKIPPED clickhouse: %s ***\n\n", why.c_str());
    GTEST_SKIP() << "ClickHouse unavailable: " << why;
  }
  ClickHouseOptions fast_retry;
  fast_retry.retry_max_ms = 400;
  Made m = MakeInsight(Kind::kClickHouse, InsightConfig(), std::move(fast_retry));
  ASSERT_NE(m.insight, nullptr);
  auto* ch = static_cast<ClickHouseEngine*>(m.engine);
  EventMaker mk;
  std::vector<InsightEvent> ev;
  for (int i = 0; i < 50; ++i) ev.push_back(mk.Track("u" + std::to_string(i % 7), "app_opened", D0, i * 1000));
  FEED(m, std::vector<InsightEvent>(ev.begin(), ev.begin() + 20));
  EXPECT_EQ(ch->acked_seq(), 20);
  StopSingleClickHouse();
  ASSERT_TRUE(m.insight->Accept(std::vector<InsightEvent>(ev.begin() + 20, ev.end())).ok());  // queued
  EXPECT_EQ(m.insight->Flush(300).code(), base::Code::kTimeout);
  EXPECT_GT(ch->Stats().send_failures, 0);
  EXPECT_EQ(ch->acked_seq(), 20);  // nothing past 20 is acknowledged
  std::string err;
  ASSERT_TRUE(RestartSingleClickHouse(&err)) << err;
  ASSERT_TRUE(m.insight->Flush(60000).ok());
  EXPECT_EQ(ch->acked_seq(), 50);
  // Everything once more (a collector replaying from an older acknowledged sequence).
  FEED(m, ev);
  int64_t total = 0;
  for (int u = 0; u < 7; ++u) {
    auto p = m.insight->GetProfile("p", "u" + std::to_string(u), D0);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    total += p->events;
  }
  EXPECT_EQ(total, 50);
}

#endif  // FERRY_INSIGHT_CLICKHOUSE

}  // namespace
}  // namespace ferry::insight::test
