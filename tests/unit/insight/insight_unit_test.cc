// The insight's shared pieces on their own: normalisation, days and money, the tag grammar and matcher, quantile
// scores, lifecycle and churn rules, AUC, the ClickHouse client's escaping, and the generator's determinism.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "collector/insight/ch_client.h"
#include "collector/insight/config.h"
#include "collector/insight/engine.h"
#include "collector/insight/normalize.h"
#include "collector/insight/rules.h"
#include "collector/insight/scoring.h"
#include "tests/unit/insight/body_shapes.h"
#include "tools/insight_gen/generator.h"

namespace ferry::insight {
namespace {

using nlohmann::json;

TEST(InsightNormalize, DaysWeeksAndDates) {
  EXPECT_EQ(DateToDay("1970-01-01"), 0);
  EXPECT_EQ(DateToDay("2026-01-01"), 20454);
  EXPECT_EQ(DayToDate(20454), "2026-01-01");
  EXPECT_EQ(DayToDate(DateToDay("2024-02-29")), "2024-02-29");
  EXPECT_EQ(DateToDay("2026-13-01"), -1);
  // 2026-03-02 is a Monday: its week starts on itself; the Sunday before belongs to the previous week.
  const int32_t monday = DateToDay("2026-03-02");
  EXPECT_EQ(WeekStartDay(WeekOf(monday)), monday);
  EXPECT_EQ(WeekStartDay(WeekOf(monday + 6)), monday);
  EXPECT_EQ(WeekOf(monday - 1), WeekOf(monday) - 1);
  // A fixed offset moves the day boundary: 20:00 UTC is the next day in UTC+8.
  const int64_t ts = static_cast<int64_t>(monday) * 86400000 + 20 * 3600000LL;
  EXPECT_EQ(DayOf(ts, 0), monday);
  EXPECT_EQ(DayOf(ts, 480), monday + 1);
  EXPECT_EQ(DayOf(-1, 0), -1);  // floor division
}

TEST(InsightNormalize, MoneyIsIntegerCents) {
  EXPECT_EQ(CentsOf(json(12.34)), 1234);
  EXPECT_EQ(CentsOf(json(99.99)), 9999);
  EXPECT_EQ(CentsOf(json(0.125)), 13);  // half up
  EXPECT_EQ(CentsOf(json(-0.125)), -12);
  EXPECT_EQ(CentsOf(json(7)), 700);
  EXPECT_EQ(CentsOf(json("12.34")), 0);  // a string is not money
  EXPECT_EQ(CentsOf(json(true)), 0);
  EXPECT_EQ(CentsOf(json(1e14)), 0);  // out of range
  EXPECT_EQ(FormatCents(123456), "1234.56");
  EXPECT_EQ(FormatCents(-5), "-0.05");
  EXPECT_EQ(FormatCents(0), "0.00");
}

TEST(InsightNormalize, ActivityIdentifyAndSkips) {
  InsightConfig c;
  c.channel_by_app = {{"ferry-agent", "web"}};
  InsightEvent e;
  e.project = "p";
  e.message_id = "m1";
  e.type = "track";
  e.name = "order_completed";
  e.purpose = "analytics";
  e.anonymous_id = "anon";
  e.timestamp_ms = 1767225600000;  // 2026-01-01
  e.properties = R"({"revenue": 12.5, "nested": {"a": 1}, "list": [1], "bad\"key": 1, "ok": true, "none": null})";
  e.context =
      R"({"app": {"name": "ferry-agent"}, "sessionId": "s9", "campaign": {"source": "wechat", "name": "spring"}})";
  Normalized n = Normalize(e, c);
  ASSERT_EQ(n.kind, Normalized::Kind::kActivity);
  EXPECT_EQ(n.activity.person, "anon");  // no userId: the anonymousId
  EXPECT_EQ(n.activity.day, 20454);
  EXPECT_EQ(n.activity.channel, "web");
  EXPECT_EQ(n.activity.session, "s9");
  EXPECT_EQ(n.activity.source, "wechat");
  EXPECT_EQ(n.activity.campaign, "spring");
  EXPECT_EQ(n.activity.props, R"({"ok":true,"revenue":12.5})");  // only top-level scalars with plain keys
  e.user_id = "u1";
  e.context = R"({"app": {"name": "shop"}, "channel": "miniprogram"})";
  n = Normalize(e, c);
  EXPECT_EQ(n.activity.person, "u1");
  EXPECT_EQ(n.activity.channel, "miniprogram");  // context.channel wins
  e.context = R"({"app": {"name": "shop"}})";
  EXPECT_EQ(Normalize(e, c).activity.channel, "shop");  // unmapped app name
  e.context = "";
  EXPECT_EQ(Normalize(e, c).activity.channel, "unknown");

  e.purpose = "necessary";
  n = Normalize(e, c);
  EXPECT_EQ(n.kind, Normalized::Kind::kSkip);
  EXPECT_EQ(n.skip_reason, "purpose");
  e.purpose = "analytics";
  e.type = "consent";
  EXPECT_EQ(Normalize(e, c).skip_reason, "type");
  e.type = "track";
  e.user_id.clear();
  e.anonymous_id.clear();
  EXPECT_EQ(Normalize(e, c).skip_reason, "person");
  e.user_id = "u1";
  e.properties = "{not json";
  EXPECT_EQ(Normalize(e, c).skip_reason, "json");

  InsightEvent id;
  id.project = "p";
  id.message_id = "m2";
  id.type = "identify";
  id.user_id = "u1";
  id.purpose = "analytics";
  id.timestamp_ms = 1767225600000;
  id.traits = R"({"plan": "pro", "address": {"city": "Shanghai"}})";
  n = Normalize(id, c);
  ASSERT_EQ(n.kind, Normalized::Kind::kIdentify);
  ASSERT_EQ(n.traits.size(), 2u);
  EXPECT_EQ(n.traits[0].key, "address");
  EXPECT_EQ(n.traits[0].value, R"({"city":"Shanghai"})");
  EXPECT_EQ(n.traits[1].value, R"("pro")");
}

// An activity event of project "p" on 2026-01-01 for analytics, without a person or a body.
InsightEvent Activity(const std::string& type, const std::string& name) {
  InsightEvent e;
  e.project = "p";
  e.message_id = "m1";
  e.type = type;
  e.name = name;
  e.purpose = "analytics";
  e.timestamp_ms = 1767225600000;
  return e;
}

// The feed hands over the event's whole body, which normalisation reads in one streaming pass (issue 15); the
// answer must be the one the parsed properties and context give, for every shape they can take.
TEST(InsightNormalize, BodyReadInOnePassGivesWhatThePartsGive) {
  InsightConfig c;
  c.channel_by_app = {{"ferry-agent", "web"}};
  const std::vector<std::string> props = testing::PropertyShapes();
  const std::vector<std::string> contexts = testing::ContextShapes();
  for (const std::string& p : props) {
    for (const std::string& ctx : contexts) {
      InsightEvent parts = Activity("track", "order_completed");
      parts.anonymous_id = "anon";
      parts.properties = p;
      parts.context = ctx;
      InsightEvent whole = parts;
      whole.properties.clear();
      whole.context.clear();
      whole.body = R"({"messageId": "m1", "properties": )" + p + R"(, "context": )" + ctx +
                   R"(, "traits": {"t": 1}, "list": [{"properties": {"x": 1}}]})";
      Normalized a = Normalize(parts, c), b = Normalize(whole, c);
      SCOPED_TRACE(whole.body);
      // A properties or context value that is not an object counts as an empty object either way.
      ASSERT_EQ(a.kind, Normalized::Kind::kActivity);
      ASSERT_EQ(b.kind, Normalized::Kind::kActivity);
      EXPECT_EQ(b.activity.props, a.activity.props);
      EXPECT_EQ(b.props, a.props);
      EXPECT_EQ(b.activity.session, a.activity.session);
      EXPECT_EQ(b.activity.channel, a.activity.channel);
      EXPECT_EQ(b.activity.source, a.activity.source);
      EXPECT_EQ(b.activity.campaign, a.activity.campaign);
      EXPECT_EQ(b.activity.person, a.activity.person);
      EXPECT_EQ(b.activity.day, a.activity.day);
    }
  }
  // A repeated "properties" or "context" at the top: the last one counts.
  InsightEvent e = Activity("screen", "Home");
  e.user_id = "u1";
  e.body = R"({"properties": {"a": 1}, "context": {"sessionId": "s1"}, "properties": {"b": 2}, "context": 3})";
  Normalized n = Normalize(e, c);
  ASSERT_EQ(n.kind, Normalized::Kind::kActivity);
  EXPECT_EQ(n.activity.props, R"({"b":2})");
  EXPECT_EQ(n.activity.session, "");
  EXPECT_EQ(n.activity.channel, "unknown");
  // A body that is not JSON, or has trailing text, is skipped as "json"; one that is not an object reads as empty.
  for (const char* bad : {"{not json", R"({"properties": {"a": 1}} x)", R"({"properties": {"a": 1})", "[1,"}) {
    e.body = bad;
    EXPECT_EQ(Normalize(e, c).skip_reason, "json") << bad;
  }
  e.body = "[1, 2]";
  n = Normalize(e, c);
  ASSERT_EQ(n.kind, Normalized::Kind::kActivity);
  EXPECT_EQ(n.activity.props, "{}");
  e.name.clear();
  e.body = "{not json";
  EXPECT_EQ(Normalize(e, c).skip_reason, "json");  // the body is read before the name is asked for, as before
  e.body = "{}";
  EXPECT_EQ(Normalize(e, c).skip_reason, "type");
}

TEST(InsightConfigTest, FromJsonRefusesWhatItDoesNotKnow) {
  auto ok = InsightConfig::FromJson(json::parse(R"({"min_cohort_size": 10, "lifecycle": {"dormant_days": 7}})"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->min_cohort_size, 10);
  EXPECT_EQ(ok->lifecycle.dormant_days, 7);
  EXPECT_EQ(ok->lifecycle.churned_days, 30);
  EXPECT_FALSE(InsightConfig::FromJson(json::parse(R"({"min_cohort": 10})")).ok());
  EXPECT_FALSE(InsightConfig::FromJson(json::parse(R"({"lifecycle": {"dormant_days": 40}})")).ok());
  EXPECT_FALSE(InsightConfig::FromJson(json::parse(R"({"purposes": ["analytics", "sensitive"]})")).ok());
  EXPECT_FALSE(InsightConfig::FromJson(json::parse(R"({"min_cohort_size": "5"})")).ok());
  EXPECT_FALSE(InsightConfig::FromJson(json::parse(R"({"min_cohort_size": 0})")).ok());
}

TagSet MustParse(const char* text) {
  auto t = TagSet::Parse(json::parse(text));
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t.value()) : TagSet();
}

TEST(InsightRules, GrammarErrorsAreRefusedWithAReason) {
  const char* bad[] = {
      R"([{"name": "x"}])",
      R"([{"name": "Bad Name", "rule": {"channel": "app"}}])",
      R"([{"name": "x", "rule": {"channel": "app"}}, {"name": "x", "rule": {"channel": "web"}}])",
      R"([{"name": "x", "rule": {"count": {"event": "a"}, "op": "gte"}}])",
      R"([{"name": "x", "rule": {"count": {"event": "a"}, "op": "almost", "value": 1}}])",
      R"([{"name": "x", "rule": {"count": {"event": "a", "within_days": 0}, "op": "gte", "value": 1}}])",
      R"([{"name": "x", "rule": {"count": {"where": [{"prop": "a", "op": "eq", "value": 1}]}, "op": "gte", "value": 1}}])",
      R"([{"name": "x", "rule": {"sum": {"event": "a"}, "op": "gte", "value": 1}}])",
      R"([{"name": "x", "rule": {"count": {"event": "a", "where": [{"prop": "c", "op": "gt", "value": "z"}]}, "op": "gte", "value": 1}}])",
      R"([{"name": "x", "rule": {"all": []}}])",
      R"([{"name": "x", "rule": {"unknown": 1}}])",
      R"([{"name": "x", "rule": {"count": {"event": "a"}, "op": "gte", "value": 1.5}}])",
      R"([{"name": "x", "rule": {"recency": {"within_days": 3}, "op": "gte", "value": 1}}])",
  };
  for (const char* b : bad) {
    auto t = TagSet::Parse(json::parse(b));
    EXPECT_FALSE(t.ok()) << b;
    EXPECT_EQ(t.status().code(), base::Code::kInvalidArgument) << b;
  }
  // Nesting is bounded.
  json deep = {{"channel", "app"}};
  for (int i = 0; i < 40; ++i) deep = {{"not", deep}};
  EXPECT_FALSE(TagSet::Parse(json::array({{{"name", "deep"}, {"rule", deep}}})).ok());
}

TEST(InsightRules, LeavesAreSharedAndMatchedByNameAndConditions) {
  TagSet t = MustParse(R"([
    {"name": "a", "rule": {"count": {"event": "view", "where": [{"prop": "cat", "op": "eq", "value": "digital"}],
                                     "within_days": 30}, "op": "gte", "value": 2}},
    {"name": "b", "rule": {"any": [
        {"count": {"event": "view", "where": [{"prop": "cat", "op": "eq", "value": "digital"}], "within_days": 7},
         "op": "gte", "value": 1},
        {"sum": {"event": "buy", "prop": "revenue", "where": [{"prop": "price", "op": "gt", "value": 10}]},
         "op": "gte", "value": 50},
        {"recency": {"event": "view", "where": [{"prop": "cat", "op": "in", "value": ["home", "digital"]}]},
         "op": "lte", "value": 3}]}}])");
  // view+cat=digital is one leaf used with two windows; the 'in' condition is another leaf; buy+price another.
  EXPECT_EQ(t.leaves().size(), 3u);
  EXPECT_EQ(t.windows().size(), 3u);
  EXPECT_EQ(t.leaves()[0].id.size(), 16u);
  std::vector<std::pair<int, int64_t>> m;
  t.Match("view", json::parse(R"({"cat": "digital"})"), &m);
  EXPECT_EQ(m.size(), 2u);  // the eq leaf and the in leaf
  m.clear();
  t.Match("view", json::parse(R"({"cat": "apparel"})"), &m);
  EXPECT_TRUE(m.empty());
  t.Match("view", json::parse(R"({})"), &m);
  EXPECT_TRUE(m.empty());  // a missing property never matches
  t.Match("buy", json::parse(R"({"price": 12, "revenue": 19.99})"), &m);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].second, 1999);
  m.clear();
  t.Match("buy", json::parse(R"({"price": "12", "revenue": 19.99})"), &m);
  EXPECT_TRUE(m.empty());  // "12" is a string: gt does not apply
  m.clear();
  t.Match("other", json::parse(R"({"cat": "digital"})"), &m);
  EXPECT_TRUE(m.empty());
}

TEST(InsightRules, EvaluationAndReasons) {
  TagSet t = MustParse(R"([
    {"name": "dig", "rule": {"all": [
       {"count": {"event": "product_viewed", "where": [{"prop": "category", "op": "eq", "value": "digital"}],
                  "within_days": 30}, "op": "gte", "value": 3},
       {"not": {"count": {"event": "order_completed", "within_days": 30}, "op": "gte", "value": 1}},
       {"recency": {}, "op": "lte", "value": 7}]}},
    {"name": "either", "rule": {"any": [{"channel": "miniprogram"}, {"trait": "plan", "op": "eq", "value": "pro"},
                                        {"source": "wechat"}]}},
    {"name": "never_bought", "rule": {"recency": {"event": "order_completed"}, "op": "gt", "value": 60}}])");
  PersonFeatures f;
  f.person = "u";
  f.last_day = 100;
  f.channels = {"app", "web"};
  f.source = "baidu";
  PersonLeafValues lv;
  lv.windows.assign(t.windows().size(), LeafValue{});
  lv.last_day.assign(t.leaves().size(), -1);
  lv.windows[0].count = 4;  // product_viewed digital in 30 days
  lv.windows[1].count = 0;  // order_completed in 30 days
  std::map<std::string, std::string> traits = {{"plan", R"("pro")"}};
  TagInputs in{103, &f, &lv, &traits};
  std::string why;
  ASSERT_TRUE(t.Evaluate(t.tags()[0], in, &why));
  EXPECT_EQ(why,
            "product_viewed where category = \"digital\": 4 in the last 30 days (≥ 3); order_completed: 0 in the last "
            "30 days (not ≥ 1); last activity: 3 days ago (≤ 7)");
  ASSERT_TRUE(t.Evaluate(t.tags()[1], in, &why));
  EXPECT_EQ(why, "trait plan = \"pro\" (= \"pro\")");  // any: only the branch that holds
  ASSERT_TRUE(t.Evaluate(t.tags()[2], in, &why));
  EXPECT_EQ(why, "last order_completed: never (> 60)");  // never = infinitely long ago
  lv.windows[1].count = 1;
  EXPECT_FALSE(t.Evaluate(t.tags()[0], in, &why));
  EXPECT_EQ(why, "");
  traits.clear();
  EXPECT_FALSE(t.Evaluate(t.tags()[1], in, &why));
  TagInputs nobody{103, nullptr, nullptr, nullptr};
  EXPECT_FALSE(t.Evaluate(t.tags()[0], nobody, &why));
  EXPECT_TRUE(t.Evaluate(t.tags()[2], nobody, &why));
}

TEST(InsightRules, JsonComparisonsNeedEqualTypes) {
  EXPECT_TRUE(CompareJson(json(3), Op::kEq, json(3.0)));
  EXPECT_FALSE(CompareJson(json("3"), Op::kEq, json(3)));
  EXPECT_FALSE(CompareJson(json("3"), Op::kNe, json(3)));
  EXPECT_TRUE(CompareJson(json("a"), Op::kNe, json("b")));
  EXPECT_TRUE(CompareJson(json(true), Op::kEq, json(true)));
  EXPECT_TRUE(CompareJson(json(5), Op::kIn, json::parse("[1, 5]")));
  EXPECT_FALSE(CompareJson(json("5"), Op::kIn, json::parse("[1, 5]")));
  EXPECT_FALSE(CompareJson(json("b"), Op::kGt, json("a")));
}

TEST(InsightScoring, QuantileScoresShareTiesAndFollowTheDocumentedFormula) {
  // Frequencies: six zeros, then 1, 1, 2, 3 (the docs' example of a wide tie).
  std::vector<RfmValues> pop;
  for (int64_t f : {0, 0, 0, 0, 0, 0, 1, 1, 2, 3}) {
    RfmValues v{};
    v[kFrequency] = f;
    v[kRecency] = f == 0 ? 30 : 10 - f;
    pop.push_back(v);
  }
  RfmThresholds t = ComputeThresholds(pop);
  EXPECT_EQ(t.population, 10);
  EXPECT_EQ(t.t[kFrequency], (std::vector<int64_t>{0, 0, 0, 1}));
  EXPECT_EQ(RfmScore(kFrequency, 0, t), 1);
  EXPECT_EQ(RfmScore(kFrequency, 1, t), 4);
  EXPECT_EQ(RfmScore(kFrequency, 2, t), 5);
  EXPECT_EQ(RfmScore(kFrequency, 3, t), 5);
  // score = 1 + floor(5 * worse / N) for every value of every metric.
  for (int m : {kRecency, kFrequency}) {
    for (const auto& v : pop) {
      int64_t x = v[static_cast<size_t>(m)];
      int64_t worse = 0;
      for (const auto& w : pop) {
        int64_t y = w[static_cast<size_t>(m)];
        worse += m == kRecency ? (y > x) : (y < x);
      }
      EXPECT_EQ(RfmScore(static_cast<RfmMetric>(m), x, t), 1 + 5 * worse / 10) << m << " " << x;
    }
  }
  // All different: 1..5 evenly.
  std::vector<RfmValues> even;
  for (int64_t i = 0; i < 10; ++i) {
    RfmValues v{};
    v[kMonetary] = i;
    even.push_back(v);
  }
  RfmThresholds e = ComputeThresholds(even);
  std::vector<int> scores;
  for (int64_t i = 0; i < 10; ++i) scores.push_back(RfmScore(kMonetary, i, e));
  EXPECT_EQ(scores, (std::vector<int>{1, 1, 2, 2, 3, 3, 4, 4, 5, 5}));
}

TEST(InsightScoring, LifecycleRulesInOrder) {
  LifecycleRules r;
  PersonFeatures f;
  f.first_day = 50;
  f.last_day = 100;
  EXPECT_EQ(LifecycleStage(f, 130, r).stage, "churned");
  EXPECT_EQ(LifecycleStage(f, 130, r).reason, "last active 30 days ago (churned after 30 days)");
  EXPECT_EQ(LifecycleStage(f, 114, r).stage, "dormant");
  EXPECT_EQ(LifecycleStage(f, 113, r).stage, "new");
  f.early_active_days = 3;
  EXPECT_EQ(LifecycleStage(f, 101, r).stage, "activated");
  f.active_weeks = 2;
  EXPECT_EQ(LifecycleStage(f, 101, r).stage, "retained");
  f.value_events = 1;
  EXPECT_EQ(LifecycleStage(f, 101, r).stage, "converted");
  f.invite_events = 1;
  EXPECT_EQ(LifecycleStage(f, 101, r).stage, "referring");
  f.last_return_day = 95;
  EXPECT_EQ(LifecycleStage(f, 101, r).stage, "won_back");
  EXPECT_EQ(LifecycleStage(f, 125, r).stage, "dormant");  // inactivity comes first
  f.last_return_day = 60;
  EXPECT_EQ(LifecycleStage(f, 101, r).stage, "referring");  // the return is too long ago
}

TEST(InsightScoring, ChurnScorecardAndFactors) {
  ChurnModel m;
  PersonFeatures f;
  f.last_day = 90;
  f.recent_active_days = 2;
  f.prev_active_days = 6;
  f.recent_sessions = 2;
  f.prev_sessions = 6;
  f.prev_value_events = 1;
  ChurnRisk r = ChurnScore(f, 100, m);
  // recency 40*10/28 = 14, activity 25*4/6 = 16, sessions 20*4/6 = 13, purchases stopped 10.
  EXPECT_EQ(r.score, 53);
  ASSERT_EQ(r.factors.size(), 3u);
  EXPECT_EQ(r.factors[0].name, "activity_decline");
  EXPECT_EQ(r.factors[0].text, "active days fell from 6 to 2 (last 28 days vs the 28 days before) (+16)");
  EXPECT_EQ(r.factors[1].name, "recency");
  EXPECT_EQ(r.factors[1].text, "last active 10 days ago (+14)");
  EXPECT_EQ(r.factors[2].name, "session_decline");
  f.last_day = 100;
  f.recent_active_days = 10;
  f.prev_active_days = 5;
  f.recent_sessions = 12;
  f.recent_value_events = 1;
  EXPECT_EQ(ChurnScore(f, 100, m).score, 0);
  EXPECT_TRUE(ChurnScore(f, 100, m).factors.empty());
  f.last_day = 0;  // long gone: capped
  f.recent_active_days = 0;
  f.prev_active_days = 9;
  f.prev_sessions = 9;
  f.recent_sessions = 0;
  f.prev_value_events = 3;
  f.recent_value_events = 0;
  EXPECT_EQ(ChurnScore(f, 100, m).score, 100);
}

TEST(InsightScoring, Auc) {
  EXPECT_DOUBLE_EQ(Auc({{1, false}, {2, false}, {3, true}, {4, true}}), 1.0);
  EXPECT_DOUBLE_EQ(Auc({{1, true}, {2, true}, {3, false}, {4, false}}), 0.0);
  EXPECT_DOUBLE_EQ(Auc({{1, true}, {1, false}}), 0.5);
  EXPECT_DOUBLE_EQ(Auc({{1, false}, {2, true}, {3, false}, {4, true}}), 0.75);
}

TEST(InsightFunnel, GreedyLevelMatchesTheDefinition) {
  const int64_t W = 1000;
  EXPECT_EQ(FunnelLevel({{}, {1}, {2}}, W), 0);
  EXPECT_EQ(FunnelLevel({{10}, {10}, {10}}, W), 3);          // ties count in either order
  EXPECT_EQ(FunnelLevel({{10}, {5}, {20}}, W), 1);           // a step before the first does not count
  EXPECT_EQ(FunnelLevel({{10}, {1010}, {1011}}, W), 2);      // the window is inclusive
  EXPECT_EQ(FunnelLevel({{0, 900}, {1500}, {1800}}, W), 3);  // the later start reaches further
}

TEST(InsightClient, SqlAndTsvEscaping) {
  EXPECT_EQ(SqlQuote("a'b\\c"), "'a\\'b\\\\c'");
  EXPECT_EQ(SqlList({}), "('')");
  EXPECT_EQ(SqlList({"x", "y"}), "('x', 'y')");
  std::string tsv;
  AppendTsv(&tsv, std::string("a\tb\nc\\d\0e", 9));
  EXPECT_EQ(tsv, "a\\tb\\nc\\\\d\\0e");
  std::vector<std::string> f;
  SplitTsv(tsv + "\t\tlast", &f);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0], std::string("a\tb\nc\\d\0e", 9));
  EXPECT_EQ(f[1], "");
  EXPECT_EQ(f[2], "last");
}

TEST(InsightGenerator, DeterministicPerSeedAndUserRange) {
  auto run = [](uint64_t seed, int64_t first, int64_t n) {
    insightgen::Options o;
    o.seed = seed;
    o.users = n;
    o.first_user = first;
    o.days = 60;
    std::vector<std::string> ids;
    insightgen::Generator g(o);
    g.Run([&](const InsightEvent& e) { ids.push_back(e.message_id + e.name + std::to_string(e.timestamp_ms)); },
          nullptr);
    return ids;
  };
  auto a = run(7, 0, 50), b = run(7, 0, 50), c = run(8, 0, 50);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Users 25..49 generated on their own give the tail of the full run.
  auto tail = run(7, 25, 25);
  ASSERT_LE(tail.size(), a.size());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), a.end() - static_cast<long>(tail.size())));
}

TEST(InsightGenerator, StreamHasTheLifecycleParts) {
  insightgen::Options o;
  o.users = 3000;
  o.days = 120;
  o.activity = 3;
  std::map<std::string, int64_t> names, channels;
  int64_t dups = 0;
  std::set<std::string> seen;
  int64_t signed_up = 0, churned = 0, won_back = 0, sources = 0;
  insightgen::Generator g(o);
  InsightConfig config = InsightConfig::FromJson(json::parse(insightgen::Generator::ConfigJson())).value();
  g.Run(
      [&](const InsightEvent& e) {
        if (!seen.insert(e.message_id).second) ++dups;
        ++names[e.type == "track" || e.type == "screen" ? e.name : e.type];
        Normalized n = Normalize(e, config);
        if (n.kind == Normalized::Kind::kActivity) ++channels[n.activity.channel];
      },
      [&](const insightgen::UserTruth& u) {
        signed_up += !u.user_id.empty();
        churned += u.churn_day >= 0;
        won_back += u.return_day >= 0;
        sources += !u.source.empty();
      });
  for (const char* n :
       {"app_opened", "page_viewed", "product_viewed", "add_to_cart", "checkout_started", "order_completed",
        "signup_completed", "invite_sent", "promotion_clicked", "identify", "consent", "login", "Home"}) {
    EXPECT_GT(names[n], 0) << n;
  }
  for (const char* c : {"app", "web", "miniprogram", "offline"}) EXPECT_GT(channels[c], 0) << c;
  EXPECT_GT(dups, 0);
  EXPECT_GT(signed_up, 1000);
  EXPECT_GT(churned, 300);
  EXPECT_GT(won_back, 20);
  EXPECT_GT(sources, 1500);
}

}  // namespace
}  // namespace ferry::insight
