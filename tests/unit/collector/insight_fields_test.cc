// Ingest reads what the insight needs from its own parse of a batch (StoredEvent::insight, issue 15), so the insight's
// feed does not read the stored body again. What the insight makes of an event must not depend on which way it came:
// the fields ingest read, or the stored body the feed replays from the store.
#include "collector/ingest/insight_fields.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "collector/analysis/wiring.h"
#include "collector/ingest/ingest.h"
#include "collector/insight/normalize.h"
#include "lib/base/time.h"
#include "tests/unit/insight/body_shapes.h"

namespace ferry::collector {
namespace {

using wire::Json;

const int64_t kReceived = *base::ParseIso8601("2026-01-01T00:00:15.000Z");

std::string Body(const std::vector<std::string>& events) {
  std::string b = R"({"sentAt": "2026-01-01T00:00:10.000Z", "batch": [)";
  for (size_t i = 0; i < events.size(); ++i) b += (i == 0 ? "" : ",") + events[i];
  return b + "]}";
}

TEST(InsightFields, WhatIngestReadsIsWhatTheStoredBodyGives) {
  // The shapes the insight's own test reads both ways (objects and null: ingest refuses an event whose properties or
  // context is anything else), and strings and numbers whose canonical text needs escaping or care.
  std::vector<std::string> props, contexts;
  for (const std::string& p : insight::testing::PropertyShapes()) {
    if (p[0] == '{' || p == "null") props.push_back(p);
  }
  for (const std::string& c : insight::testing::ContextShapes()) {
    if (c[0] == '{' || c == "null") contexts.push_back(c);
  }
  props.push_back(R"({"s": "caf\u00e9", "ctl": "a\u0001b\nc", "k\u0002ey": 1, "\u00fcber": "x", "g": 0.1, "n": -0.0})");
  props.push_back(R"({"price": 19.99, "sku": "SKU-1", "qty": 3, "on": false})");
  std::vector<std::string> events;
  int i = 0;
  for (const std::string& p : props) {
    for (const std::string& ctx : contexts) {
      const char* type = i % 2 == 0 ? "track" : "screen";
      const char* name_key = i % 2 == 0 ? "event" : "name";
      events.push_back(R"({"messageId": "m)" + std::to_string(i) + R"(", "type": ")" + type + R"(", ")" + name_key +
                       R"(": "order_completed", "anonymousId": "anon", "timestamp": "2026-01-01T00:00:00.000Z",)" +
                       R"( "purpose": "analytics", "properties": )" + p + R"(, "context": )" + ctx + "}");
      ++i;
    }
  }
  // An event without properties or context, and one identify (ingest reads nothing for it).
  events.push_back(
      R"({"messageId": "bare", "type": "track", "event": "e", "userId": "u", "timestamp": "2026-01-01T00:00:00.000Z", "purpose": "analytics"})");
  events.push_back(
      R"({"messageId": "id", "type": "identify", "userId": "u", "timestamp": "2026-01-01T00:00:00.000Z", "purpose": "analytics", "traits": {"plan": "pro"}})");

  wire::Limits limits;
  limits.max_batch_events = 1000;
  ParsedBatch with = ParseBatch(wire::Encoding::kIdentity, Body(events), limits, kReceived, TimeWindow(), true);
  ASSERT_EQ(with.status, 200) << with.error;
  ASSERT_TRUE(with.rejected.empty()) << with.rejected[0].reason;
  ASSERT_EQ(with.events.size(), events.size());
  ParsedBatch without = ParseBatch(wire::Encoding::kIdentity, Body(events), limits, kReceived);
  ASSERT_EQ(without.events.size(), events.size());

  insight::InsightConfig config;
  config.channel_by_app = {{"ferry-agent", "web"}};
  for (size_t k = 0; k < with.events.size(); ++k) {
    const StoredEvent& plain = without.events[k];
    SCOPED_TRACE(plain.body);
    EXPECT_FALSE(plain.insight.set);  // only asked for when the insight is on
    EXPECT_EQ(with.events[k].body, plain.body);
    EXPECT_EQ(with.events[k].insight.set, plain.type != "identify");
    insight::InsightEvent pre = analysis::ToInsightEvent("p", std::move(with.events[k]), 1);
    EXPECT_EQ(pre.preread, plain.type != "identify");
    EXPECT_EQ(pre.body.empty(), pre.preread);  // the body is not handed over when ingest read it
    EventRow row;
    row.project = "p";
    row.seq = 1;
    row.message_id = plain.message_id;
    row.type = plain.type;
    row.user_id = plain.user_id;
    row.anonymous_id = plain.anonymous_id;
    row.name = plain.name;
    row.purpose = plain.purpose;
    row.timestamp_ms = plain.timestamp_ms;
    row.received_ms = plain.received_ms;
    row.body = plain.body;  // what a replay from the store hands over
    insight::InsightEvent stored = analysis::ToInsightEvent(row);
    ASSERT_FALSE(stored.preread);
    insight::Normalized a = insight::Normalize(pre, config), b = insight::Normalize(stored, config);
    ASSERT_EQ(a.kind, b.kind);
    ASSERT_EQ(a.skip_reason, b.skip_reason);
    EXPECT_EQ(a.traits.size(), b.traits.size());
    if (a.kind != insight::Normalized::Kind::kActivity) continue;
    const insight::ActivityRow &x = a.activity, &y = b.activity;
    EXPECT_EQ(x.props, y.props);
    EXPECT_EQ(insight::PropsOf(a), insight::PropsOf(b));
    EXPECT_EQ(x.session, y.session);
    EXPECT_EQ(x.channel, y.channel);
    EXPECT_EQ(x.source, y.source);
    EXPECT_EQ(x.campaign, y.campaign);
    EXPECT_EQ(x.person, y.person);
    EXPECT_EQ(x.message_id, y.message_id);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.type, y.type);
    EXPECT_EQ(x.ts_ms, y.ts_ms);
    EXPECT_EQ(x.received_ms, y.received_ms);
    EXPECT_EQ(x.day, y.day);
  }
  // Spot checks of what was read, so that agreeing on nothing cannot pass.
  insight::InsightEvent first = analysis::ToInsightEvent("p", std::move(without.events[0]), 1);
  insight::Normalized n = insight::Normalize(first, config);
  EXPECT_EQ(n.activity.props, R"({"ok":true,"revenue":12.5})");
  EXPECT_EQ(n.activity.session, "s9");
  EXPECT_EQ(n.activity.channel, "web");
  EXPECT_EQ(n.activity.source, "wechat");
  EXPECT_EQ(n.activity.campaign, "spring");
}

}  // namespace
}  // namespace ferry::collector
