#include "lib/wire/event.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry::wire {
namespace {

Json Track() {
  return Json{{"messageId", "m-1"},
              {"type", "track"},
              {"event", "Order Completed"},
              {"anonymousId", "a-1"},
              {"timestamp", "2026-01-02T03:04:05.678Z"},
              {"purpose", "analytics"},
              {"properties", {{"total", 12.5}}},
              {"context", {{"app", {{"name", "demo"}}}}}};
}

TEST(ValidateEvent, AcceptsEachType) {
  EXPECT_EQ(ValidateEvent(Track()), "");
  Json id = Track();
  id["type"] = "identify";
  id.erase("event");
  id["userId"] = "u-1";
  id["traits"] = {{"plan", "pro"}};
  EXPECT_EQ(ValidateEvent(id), "");
  Json sc = Track();
  sc["type"] = "screen";
  sc.erase("event");
  sc["name"] = "Home";
  EXPECT_EQ(ValidateEvent(sc), "");
  Json al = Track();
  al["type"] = "alias";
  al["userId"] = "u-1";
  al["previousId"] = "a-1";
  EXPECT_EQ(ValidateEvent(al), "");
  Json co = Track();
  co["type"] = "consent";
  co["properties"] = {{"purpose", "marketing"}, {"state", "granted"}, {"previous", "pending"}};
  EXPECT_EQ(ValidateEvent(co), "");
  co["properties"]["previous"] = nullptr;
  EXPECT_EQ(ValidateEvent(co), "");
}

TEST(ValidateEvent, Reasons) {
  EXPECT_EQ(ValidateEvent(Json::array()), "event is not an object");
  Json e = Track();
  e.erase("messageId");
  EXPECT_EQ(ValidateEvent(e), "missing messageId");
  e = Track();
  e["messageId"] = "";
  EXPECT_EQ(ValidateEvent(e), "invalid messageId");
  e["messageId"] = std::string(65, 'x');
  EXPECT_EQ(ValidateEvent(e), "invalid messageId");
  e["messageId"] = std::string(64, 'x');
  EXPECT_EQ(ValidateEvent(e), "");
  e["messageId"] = 7;
  EXPECT_EQ(ValidateEvent(e), "invalid messageId");
  e = Track();
  e["type"] = "page";
  EXPECT_EQ(ValidateEvent(e), "invalid type");
  e = Track();
  e.erase("event");
  EXPECT_EQ(ValidateEvent(e), "missing event");
  e = Track();
  e["type"] = "screen";
  EXPECT_EQ(ValidateEvent(e), "missing name");
  e = Track();
  e.erase("anonymousId");
  EXPECT_EQ(ValidateEvent(e), "missing userId and anonymousId");
  e["userId"] = std::string(201, 'u');
  EXPECT_EQ(ValidateEvent(e), "invalid userId");
  e["userId"] = 12;
  EXPECT_EQ(ValidateEvent(e), "invalid userId");
  e = Track();
  e["timestamp"] = "yesterday";
  EXPECT_EQ(ValidateEvent(e), "invalid timestamp");
  e.erase("timestamp");
  EXPECT_EQ(ValidateEvent(e), "missing timestamp");
  e = Track();
  e["purpose"] = "Analytics!";
  EXPECT_EQ(ValidateEvent(e), "invalid purpose");
  e.erase("purpose");
  EXPECT_EQ(ValidateEvent(e), "missing purpose");
  e = Track();
  e["properties"] = Json::array({1, 2});
  EXPECT_EQ(ValidateEvent(e), "invalid properties");
  e = Track();
  e["context"] = "x";
  EXPECT_EQ(ValidateEvent(e), "invalid context");
}

TEST(ValidateEvent, ConsentAndAlias) {
  Json co = Track();
  co["type"] = "consent";
  co["properties"] = {{"purpose", "marketing"}, {"state", "maybe"}};
  EXPECT_EQ(ValidateEvent(co), "invalid consent state");
  co["properties"] = {{"state", "granted"}};
  EXPECT_EQ(ValidateEvent(co), "invalid consent purpose");
  co["properties"] = {{"purpose", "marketing"}, {"state", "denied"}, {"previous", "yes"}};
  EXPECT_EQ(ValidateEvent(co), "invalid consent previous");
  co.erase("properties");
  EXPECT_EQ(ValidateEvent(co), "missing consent properties");

  Json al = Track();
  al["type"] = "alias";
  al["previousId"] = "a-0";
  EXPECT_EQ(ValidateEvent(al), "alias needs userId");
  al["userId"] = "u-1";
  al.erase("previousId");
  EXPECT_EQ(ValidateEvent(al), "missing previousId");
}

TEST(ValidateEvent, DepthAndSize) {
  Limits lim;
  Json e = Track();
  Json deep = Json::object();
  Json* cur = &deep;
  for (int i = 0; i < 31; ++i) cur = &((*cur)["k"] = Json::object());
  e["properties"] = deep;  // 32 levels
  EXPECT_EQ(JsonDepth(e["properties"]), 32u);
  EXPECT_EQ(ValidateEvent(e, lim), "");
  (*cur)["k"] = Json::object();
  e["properties"] = deep;  // 33 levels
  EXPECT_EQ(ValidateEvent(e, lim), "too deeply nested");

  e = Track();
  e["properties"]["blob"] = std::string(33 * 1024, 'x');
  EXPECT_EQ(ValidateEvent(e, lim), "event too large");
  e["properties"]["blob"] = std::string(30 * 1024, 'x');
  EXPECT_EQ(ValidateEvent(e, lim), "");
}

TEST(Purpose, Names) {
  EXPECT_TRUE(IsValidPurpose("analytics"));
  EXPECT_TRUE(IsValidPurpose("crash_reports-2"));
  EXPECT_FALSE(IsValidPurpose(""));
  EXPECT_FALSE(IsValidPurpose("Analytics"));
  EXPECT_FALSE(IsValidPurpose(std::string(33, 'a')));
  EXPECT_TRUE(IsValidPurpose(std::string(32, 'a')));
}

TEST(Utf8, Validity) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xe4\xb8\xad\xe6\x96\x87"));
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xe4\xb8"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST(RawJsonDepth, CountsOutsideStrings) {
  EXPECT_EQ(RawJsonDepth("{}"), 1u);
  EXPECT_EQ(RawJsonDepth(R"({"a":[{"b":"[[[[\"{{"}]})"), 3u);
  EXPECT_EQ(RawJsonDepth("1"), 0u);
  std::string hostile(1000000, '[');
  EXPECT_EQ(RawJsonDepth(hostile, 64), 65u);
  EXPECT_EQ(RawJsonDepth(hostile), 1000000u);
}

}  // namespace
}  // namespace ferry::wire
