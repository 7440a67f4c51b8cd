// The single pass of ParseBatch (collector/ingest/batch_stream.h) against the document path (ParseBatchWithDocument)
// on the same bodies: the same status, events (every field, the stored body byte for byte), rejections, dropped
// counters and skew; and which bodies the single pass takes itself.
#include "collector/ingest/batch_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "collector/ingest/ingest.h"
#include "lib/base/json_text.h"
#include "lib/base/time.h"

namespace ferry::collector {
namespace {

using wire::Json;

const int64_t kReceived = *base::ParseIso8601("2026-01-01T00:00:15.000Z");

void ExpectSameEvent(const StoredEvent& a, const StoredEvent& b) {
  EXPECT_EQ(a.message_id, b.message_id);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.user_id, b.user_id);
  EXPECT_EQ(a.anonymous_id, b.anonymous_id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.purpose, b.purpose);
  EXPECT_EQ(a.timestamp_ms, b.timestamp_ms);
  EXPECT_EQ(a.received_ms, b.received_ms);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.consent_purpose, b.consent_purpose);
  EXPECT_EQ(a.consent_state, b.consent_state);
  EXPECT_EQ(a.consent_previous, b.consent_previous);
  EXPECT_EQ(a.consent_method, b.consent_method);
  EXPECT_EQ(a.notice_id, b.notice_id);
  EXPECT_EQ(a.notice_version, b.notice_version);
  EXPECT_EQ(a.language, b.language);
  EXPECT_EQ(a.receipt_id, b.receipt_id);
  EXPECT_EQ(a.consent_seq, b.consent_seq);
  EXPECT_EQ(a.device_seq, b.device_seq);
  EXPECT_EQ(a.consent_receipt, b.consent_receipt);
  EXPECT_EQ(a.previous_id, b.previous_id);
  EXPECT_EQ(a.traits, b.traits);
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.consent_minor, b.consent_minor);
  EXPECT_EQ(a.insight.set, b.insight.set);
  EXPECT_EQ(a.insight.props, b.insight.props);
  EXPECT_EQ(a.insight.session_id, b.insight.session_id);
  EXPECT_EQ(a.insight.channel, b.insight.channel);
  EXPECT_EQ(a.insight.app_name, b.insight.app_name);
  EXPECT_EQ(a.insight.campaign_source, b.insight.campaign_source);
  EXPECT_EQ(a.insight.campaign_name, b.insight.campaign_name);
}

// ParseBatch (which tries the single pass) and ParseBatchWithDocument agree on `body`; returns whether the single
// pass took it.
bool ExpectSame(const std::string& body, bool insight, const wire::Limits& limits = wire::Limits(),
                const TimeWindow& window = TimeWindow()) {
  SCOPED_TRACE(body.substr(0, 400));
  ParsedBatch fast = ParseBatch(wire::Encoding::kIdentity, body, limits, kReceived, window, insight);
  ParsedBatch doc = ParseBatchWithDocument(wire::Encoding::kIdentity, body, limits, kReceived, window, insight);
  EXPECT_EQ(fast.status, doc.status);
  EXPECT_EQ(fast.error, doc.error);
  EXPECT_EQ(fast.skew_corrected, doc.skew_corrected);
  EXPECT_EQ(fast.skew_ms, doc.skew_ms);
  EXPECT_EQ(fast.clamped, doc.clamped);
  EXPECT_EQ(fast.dropped, doc.dropped);
  EXPECT_EQ(fast.rejected.size(), doc.rejected.size());
  for (size_t i = 0; i < std::min(fast.rejected.size(), doc.rejected.size()); ++i) {
    EXPECT_EQ(fast.rejected[i].index, doc.rejected[i].index);
    EXPECT_EQ(fast.rejected[i].message_id, doc.rejected[i].message_id);
    EXPECT_EQ(fast.rejected[i].reason, doc.rejected[i].reason);
  }
  EXPECT_EQ(fast.events.size(), doc.events.size());
  for (size_t i = 0; i < std::min(fast.events.size(), doc.events.size()); ++i)
    ExpectSameEvent(fast.events[i], doc.events[i]);
  ParsedBatch direct;
  return ParseBatchStreaming(body, limits, kReceived, window, insight, &direct);
}

// A track event as an SDK writes it: its own key order, nothing sorted.
std::string SdkEvent(int i) {
  return "{\"type\":\"track\",\"event\":\"Product Viewed\",\"messageId\":\"m-" + std::to_string(i) +
         "\",\"anonymousId\":\"a-1\",\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"purpose\":\"analytics\","
         "\"deviceSeq\":" +
         std::to_string(i + 1) +
         ",\"properties\":{\"sku\":\"S-1\",\"price\":12.5,\"name\":\"Shoe \\u0041 \\n\",\"qty\":3,\"zeta\":null,"
         "\"nested\":{\"b\":[1,{\"y\":2,\"x\":1}],\"a\":true}},"
         "\"context\":{\"sessionId\":\"s-1\",\"app\":{\"version\":\"1\",\"name\":\"shop\"},\"channel\":\"web\","
         "\"campaign\":{\"source\":\"news\",\"name\":\"spring\"}}}";
}

std::string SdkBody(int n, const char* sent_at = "2026-01-01T00:00:10.000Z") {
  std::string b = "{\"sentAt\":\"" + std::string(sent_at) + "\",\"batch\":[";
  for (int i = 0; i < n; ++i) b += (i ? "," : "") + SdkEvent(i);
  return b + "],\"dropped\":{\"evicted\":3,\"consent\":0}}";
}

TEST(ParseBatchStream, SdkBatchesTakeTheSinglePassAndMatchTheDocument) {
  for (bool insight : {false, true}) {
    EXPECT_TRUE(ExpectSame(SdkBody(20), insight));
    EXPECT_TRUE(ExpectSame(SdkBody(0), insight));
  }
  ParsedBatch p = ParseBatch(wire::Encoding::kIdentity, SdkBody(2), wire::Limits(), kReceived);
  ASSERT_EQ(p.events.size(), 2u);
  // Sorted keys, no spaces, the collector's members in place: the document path's form.
  EXPECT_EQ(
      p.events[0].body.rfind(R"({"anonymousId":"a-1","context":{"app":{"name":"shop","version":"1"},)"
                             R"("campaign":{"name":"spring","source":"news"},"channel":"web","sessionId":"s-1"},)",
                             0),
      0u);
  EXPECT_NE(p.events[0].body.find(R"("receivedAt":"2026-01-01T00:00:15.000Z")"), std::string::npos);
  EXPECT_EQ(p.events[0].device_seq, 1);
  EXPECT_EQ(p.dropped.at("evicted"), 3);
}

TEST(ParseBatchStream, WhitespaceEscapesNumbersAndTheCollectorsMembers) {
  std::string body = R"( { "sentAt" : "2026-01-01T00:00:20.000Z" , "batch" : [
    { "purpose":"analytics", "type":"screen", "name":"Home\u00e9", "userId":"u-1", "messageId":"m\u002d1",
      "timestamp":"2025-12-31T23:59:59.999+01:00", "receivedAt":"forged", "originalTimestamp":"forged",
      "timestampClamped":"forged", "extra":[ -0.0, 1e2, 1.0000000001, 18446744073709551615, -9223372036854775808,
      0.1, 5e-324, 1.7976931348623157e308, "\ud83d\ude00", "\u0001\u007f\"\\/" ],
      "properties":{ "k\"q":1, "k\\b":2, "\u0001c":"x", "":3, "é":4, "a":[], "b":{}, "n":null, "t":true } },
    { "type":"identify", "messageId":"m-2", "userId":"u-1", "timestamp":"2026-01-01T00:00:00Z",
      "purpose":"necessary", "traits":{"z":1,"a":{"y":[3],"b":"c"}}, "context":{"app":"not an object",
      "campaign":{"name":7}} },
    { "type":"identify", "messageId":"m-3", "userId":"u-1", "timestamp":"2026-01-01T00:00:00Z",
      "purpose":"necessary", "traits":{} },
    { "type":"alias", "messageId":"m-4", "userId":"u-2", "previousId":"u-1", "timestamp":"2026-01-01T00:00:00Z",
      "purpose":"necessary", "properties":null, "context":null, "deviceSeq":null, "consentReceipt":"r-1" },
    { "type":"track", "event":"E", "messageId":"m-5", "anonymousId":"a", "timestamp":"1999-01-01T00:00:00Z",
      "purpose":"analytics", "deviceSeq":9223372036854775807 },
    { "type":"track", "event":"E", "messageId":"m-6", "anonymousId":"a", "timestamp":"2030-01-01T00:00:00Z",
      "purpose":"analytics" }
  ], "dropped" : { "b":1, "a":9007199254740993, "c":-1, "d":1.5, "e":"x", "f":{"g":1} }, "other":[[{}]] } )";
  for (bool insight : {false, true}) EXPECT_TRUE(ExpectSame(body, insight));
  // The document's order (sentAt after the batch) and no sentAt at all.
  Json doc = Json::parse(body);
  EXPECT_TRUE(ExpectSame(doc.dump(), true));
  doc.erase("sentAt");
  EXPECT_TRUE(ExpectSame(doc.dump(), true));
  doc["sentAt"] = 12;
  EXPECT_TRUE(ExpectSame(doc.dump(), true));
  // Clamping with a narrow window, and no window.
  TimeWindow narrow;
  narrow.max_past_ms = 1000;
  narrow.max_future_ms = 1000;
  EXPECT_TRUE(ExpectSame(body, false, wire::Limits(), narrow));
  EXPECT_TRUE(ExpectSame(body, false, wire::Limits(), TimeWindow{0, 0}));
  EXPECT_TRUE(ExpectSame(R"({"sentAt":"0001-01-01T00:00:00Z","batch":[{"type":"track","event":"E","messageId":"m",
    "anonymousId":"a","timestamp":"9999-12-31T00:00:00Z","purpose":"p"}]})",
                         false, wire::Limits(), TimeWindow{0, 0}));
}

TEST(ParseBatchStream, WhatItDeclinesTheDocumentPathAnswers) {
  const std::string ok = SdkEvent(1);
  const std::vector<std::string> declined = {
      "",
      "[]",
      "42",
      "{",
      "{}",
      R"({"batch":{}})",
      R"({"batch":[1]})",
      R"({"batch":[[]]})",
      R"({"batch":7})",
      R"({"batch":[],"batch":[]})",
      R"({"sentAt":"2026-01-01T00:00:00Z","sentAt":"2026-01-01T00:00:00Z","batch":[]})",
      R"({"batch":[],"sentAt":"2026\u002d01-01T00:00:00Z"})",
      R"({"batch":[],"sent\u0041t":"2026-01-01T00:00:00Z"})",
      R"({"batch":[],"dropped":{"a":1,"a":2}})",
      "{\"batch\":[" + ok + "," + ok.substr(0, ok.size() - 1) + ",\"purpose\":\"x\"}]}",
      "{\"batch\":[" + ok +
          ",{\"type\":\"consent\",\"messageId\":\"c\",\"anonymousId\":\"a\",\"timestamp\":"
          "\"2026-01-01T00:00:00Z\",\"purpose\":\"necessary\",\"properties\":{\"purpose\":\"analytics\",\"state\":"
          "\"granted\"},\"context\":{\"os\":{\"name\":\"x\"}}}]}",
      R"({"batch":[{"type":"track","event":"E","messageId":"m","anonymousId":"a","timestamp":"2026-01-01T00:00:00Z",
          "purpose":"p","properties":{"a":{"b":1,"b":2}}}]})",
      R"({"batch":[{"type":"track","event":"E","messageId":"m","anonymousId":"a","timestamp":"2026-01-01T00:00:00Z",
          "purpose":"p","properties":{"s":"\u0000\ud800"}}]})",
      std::string("{\"batch\":[") + std::string(60, '[') + std::string(60, ']') + "]}",
      // What RapidJSON's reader lets through and nlohmann refuses: raw bytes that are not UTF-8, a lone low
      // surrogate, a number beyond a double's range that its own check misses. And a UTF-8 byte order mark, which
      // nlohmann skips and the pass does not.
      "{\"batch\":[" + ok.substr(0, ok.size() - 1) + ",\"x\":\"\xff\"}]}",
      "{\"batch\":[" + ok.substr(0, ok.size() - 1) + ",\"\xc0\xaf\":1}]}",
      "{\"batch\":[" + ok.substr(0, ok.size() - 1) + ",\"x\":\"\\udc00\"}]}",
      "{\"batch\":[" + ok.substr(0, ok.size() - 1) + ",\"x\":1234567890123456789e300}]}",
      "\xef\xbb\xbf{\"batch\":[" + ok + "]}",
      // Raw control bytes deep in a long string (0x1A-0x1F: what RapidJSON 1.1's SSE2 string scan, once tried here,
      // copied as text; found by fuzz_batch).
      "{\"batch\":[" + ok.substr(0, ok.size() - 1) + ",\"x\":\"" + std::string(40, 'a') + "\x1e" +
          std::string(40, 'b') + "\"}]}",
      "{\"batch\":[" + ok.substr(0, ok.size() - 1) + ",\"x\":\"" + std::string(33, 'a') + "\x1a\"}]}",
      "{\"batch\":[" + ok.substr(0, ok.size() - 1) + ",\"x\":\"" + std::string(33, 'a') + "\x1f\"}]}",
      "{\"batch\":[" + ok.substr(0, ok.size() - 1) + ",\"x\":\"" + std::string(40, 'a') + "\x01" +
          std::string(40, 'b') + "\"}]}",
      // A NUL byte ends the input for nlohmann's lexer; the body is refused whatever follows it (found by fuzz_batch).
      std::string("{\"batch\":[]}\0", 13),
      std::string("{\"batch\":[],\"x\":\"bad\"}\0{\"a\":", 28) + std::string(40, '{'),
      std::string("{\"sentAt\":\"2026-01-01T00:00:10.000Z\",\"batch\":[" + ok + "]}") + std::string(1, '\0') + "]]]",
  };
  for (const std::string& body : declined) {
    for (bool insight : {false, true}) EXPECT_FALSE(ExpectSame(body, insight)) << body;
  }
  for (size_t i = declined.size() - 3; i < declined.size(); ++i) {
    ParsedBatch p = ParseBatch(wire::Encoding::kIdentity, declined[i], wire::Limits(), kReceived, TimeWindow(), false);
    EXPECT_EQ(p.status, 400) << i;
    EXPECT_TRUE(p.events.empty()) << i;
  }
  // Every reason wire::ValidateEvent gives: the batch goes to the document path, which names it.
  const std::vector<std::pair<const char*, Json>> changes = {{"messageId", nullptr},
                                                             {"messageId", 1},
                                                             {"messageId", ""},
                                                             {"messageId", std::string(65, 'm')},
                                                             {"messageId", "a\x01"},
                                                             {"type", nullptr},
                                                             {"type", 3},
                                                             {"type", "page"},
                                                             {"event", nullptr},
                                                             {"event", std::string(201, 'e')},
                                                             {"anonymousId", 5},
                                                             {"anonymousId", "a\n"},
                                                             {"timestamp", "yesterday"},
                                                             {"timestamp", nullptr},
                                                             {"purpose", "Analytics"},
                                                             {"purpose", nullptr},
                                                             {"properties", Json::array()},
                                                             {"context", "x"},
                                                             {"traits", 1},
                                                             {"consentReceipt", 2},
                                                             {"deviceSeq", 0},
                                                             {"deviceSeq", -1},
                                                             {"deviceSeq", 1.5},
                                                             {"deviceSeq", 18446744073709551615ULL},
                                                             {"userId", nullptr}};
  for (const auto& [key, value] : changes) {
    Json ev = Json::parse(SdkEvent(2));
    if (std::string(key) == "userId") ev.erase("anonymousId");
    ev[key] = value;
    Json body = {{"sentAt", "2026-01-01T00:00:10.000Z"}, {"batch", {Json::parse(SdkEvent(1)), ev}}};
    EXPECT_FALSE(ExpectSame(body.dump(), false)) << key << " " << value.dump();
  }
  // Too deep (its own limit), too large once stored, too many events.
  Json deep = Json::parse(SdkEvent(3));
  Json* p = &deep["properties"];
  for (int i = 0; i < 32; ++i) p = &((*p)["d"] = Json::object());
  EXPECT_FALSE(ExpectSame(Json{{"batch", {deep}}}.dump(), false));
  Json big = Json::parse(SdkEvent(4));
  big["properties"]["blob"] = std::string(32 << 10, 'x');
  EXPECT_FALSE(ExpectSame(Json{{"batch", {big}}}.dump(), false));
  // A depth limit above what the pass reads recursively (128 levels of a body): read iteratively, the same answers
  // below and above that limit.
  wire::Limits deep_limits;
  deep_limits.max_depth = 200;
  for (int levels : {150, 199, 250, 5000}) {
    Json nested = Json::parse(SdkEvent(5));
    Json* q = &nested["properties"];
    for (int i = 1; i < levels; ++i) q = &((*q)["d"] = Json::object());
    EXPECT_EQ(ExpectSame(Json{{"batch", {nested}}}.dump(), false, deep_limits), levels < 200) << levels;
  }
  // Nested far beyond the usual limit: the recursive read stops at the limit's first level too deep.
  std::string very_deep = "{\"batch\":[{\"properties\":" + std::string(100000, '[') + std::string(100000, ']') + "}]}";
  EXPECT_FALSE(ExpectSame(very_deep, false));
  wire::Limits few;
  few.max_batch_events = 3;
  EXPECT_FALSE(ExpectSame(SdkBody(4), false, few));
  EXPECT_TRUE(ExpectSame(SdkBody(3), false, few));
}

// Random events, written with random key order and spacing, most of them valid.
class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}

  std::string Body(bool sent_first) {
    std::vector<std::string> members;
    std::string batch = "\"batch\":[";
    int n = Pick(12);
    for (int i = 0; i < n; ++i) batch += (i ? "," : "") + Event(i);
    batch += "]";
    members.push_back(batch);
    if (Pick(4) != 0) members.push_back("\"dropped\":{\"evicted\":" + std::to_string(Pick(5)) + "}");
    if (Pick(3) == 0) members.push_back("\"junk\":" + Value(3));
    std::shuffle(members.begin(), members.end(), rng_);
    std::string sent = "\"sentAt\":\"2026-01-01T00:00:0" + std::to_string(Pick(10)) + ".000Z\"";
    if (sent_first) {
      members.insert(members.begin(), sent);
    } else if (Pick(3) != 0) {
      members.push_back(sent);
    }
    return Object(members);
  }

 private:
  int Pick(int n) { return static_cast<int>(rng_() % static_cast<uint32_t>(n)); }
  std::string Ws() {
    static const char* kWs[] = {"", "", "", " ", "\n  ", "\t"};
    return kWs[Pick(6)];
  }
  std::string Object(std::vector<std::string> members) {
    std::string s = "{" + Ws();
    for (size_t i = 0; i < members.size(); ++i) s += (i ? "," + Ws() : "") + members[i] + Ws();
    return s + "}";
  }
  std::string Str(const std::string& raw) {
    std::string s;
    base::AppendJsonString(&s, raw);
    if (Pick(5) == 0 && raw == "a") return "\"\\u0061\"";
    return s;
  }
  std::string Key() {
    static const char* kKeys[] = {"a",       "b",    "aa",       "B",      "",          "k\"",
                                  "k\\",     "\x01", "\xc3\xa9", "z",      "sessionId", "name",
                                  "channel", "app",  "campaign", "source", "receivedAt"};
    return kKeys[Pick(17)];
  }
  std::string Value(int depth) {
    switch (Pick(depth > 0 ? 10 : 7)) {
      case 0: return "null";
      case 1: return Pick(2) ? "true" : "false";
      case 2: return std::to_string(static_cast<int64_t>(rng_()) - (1LL << 31));
      case 3: {
        static const char* kF[] = {"1.5", "-0.0", "1e3", "2.5E-3", "0.1", "123456789.125", "18446744073709551616"};
        return kF[Pick(7)];
      }
      case 4: return "18446744073709551615";
      case 5:
      case 6: return Str(Key() + "v\n\"");
      case 7: {
        std::string s = "[" + Ws();
        int n = Pick(4);
        for (int i = 0; i < n; ++i) s += (i ? "," : "") + Value(depth - 1);
        return s + "]";
      }
      default: {
        std::vector<std::string> m;
        int n = Pick(5);
        for (int i = 0; i < n; ++i) m.push_back(Str(Key()) + Ws() + ":" + Ws() + Value(depth - 1));
        return Object(m);
      }
    }
  }
  std::string Event(int i) {
    static const char* kTypes[] = {"track", "track", "track", "screen", "identify", "alias"};
    std::string type = kTypes[Pick(6)];
    std::vector<std::string> m;
    m.push_back("\"type\":" + Str(type));
    m.push_back("\"messageId\":" + Str("m-" + std::to_string(i) + "-" + std::to_string(Pick(1000))));
    if (type == "track") m.push_back("\"event\":" + Str("Viewed"));
    if (type == "screen") m.push_back("\"name\":" + Str("Home"));
    if (Pick(2)) m.push_back("\"anonymousId\":" + Str("a"));
    if (type == "alias" || Pick(2)) m.push_back("\"userId\":" + Str("u"));
    if (type == "alias") m.push_back("\"previousId\":" + Str("p"));
    static const char* kTs[] = {"2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00Z", "2020-01-01T00:00:00Z",
                                "2027-01-01T00:00:00+05:30", "2026-01-01T00:00:14.999Z"};
    m.push_back("\"timestamp\":" + Str(kTs[Pick(5)]));
    m.push_back("\"purpose\":" + Str(Pick(2) ? "analytics" : "necessary"));
    if (Pick(2)) m.push_back("\"properties\":" + (Pick(8) ? Value(3).substr(0, 0) + PropsObject() : "null"));
    if (Pick(2)) m.push_back("\"context\":" + PropsObject());
    if (Pick(3) == 0) m.push_back("\"traits\":" + PropsObject());
    if (Pick(3) == 0) m.push_back("\"deviceSeq\":" + std::to_string(Pick(3)));
    if (Pick(4) == 0) m.push_back("\"consentReceipt\":" + Str("r"));
    if (Pick(5) == 0) m.push_back("\"receivedAt\":" + Value(1));
    if (Pick(5) == 0) m.push_back("\"originalTimestamp\":" + Value(1));
    if (Pick(8) == 0) m.push_back(Str(Key()) + ":" + Value(2));
    std::shuffle(m.begin(), m.end(), rng_);
    return Object(m);
  }
  std::string PropsObject() {
    std::vector<std::string> m;
    int n = Pick(6);
    for (int i = 0; i < n; ++i) m.push_back(Str(Key()) + ":" + Value(3));
    return Object(m);
  }

  std::mt19937 rng_;
};

TEST(ParseBatchStream, RandomBatchesMatchTheDocument) {
  Gen gen(20261201);
  int taken = 0;
  for (int i = 0; i < 3000; ++i) {
    const bool first = i % 2 == 0;
    std::string body = gen.Body(first);
    TimeWindow window;
    if (i % 3 == 0) window.max_past_ms = 3LL * 365 * 24 * 3600 * 1000;
    taken += ExpectSame(body, i % 4 < 2, wire::Limits(), window) ? 1 : 0;
    if (HasFailure()) break;
  }
  // A good share of them are well formed throughout (the rest have a key twice in an object or an invalid event).
  EXPECT_GT(taken, 400);
}

}  // namespace
}  // namespace ferry::collector
