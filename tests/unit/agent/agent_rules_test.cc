// The local API's rules on plain facts (agent/api.h): who may call which route, and what the body parsers accept.
// The same attacks through a real agent process are in tests/integration/agent_security_test.cc.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/api.h"

namespace {

using ferry::agent::AccessPolicy;
using ferry::agent::Admit;
using ferry::agent::Caller;
using ferry::agent::Route;
using Json = nlohmann::json;

AccessPolicy Policy() {
  AccessPolicy p;
  p.local_token = "local-token-0123456789";
  p.forward_token = "forward-token-0123456789";
  p.origins = {"http://localhost:3000"};
  p.consent_uids = {1000};
  p.consent_gids = {998};
  return p;
}

Caller Tcp(const std::string& bearer = "") {
  Caller c;
  c.loopback_peer = true;
  c.bearer = bearer;
  return c;
}

Caller Socket(std::vector<ferry::agent::PeerCred> peers, const std::string& bearer = "") {
  Caller c;
  c.unix_socket = true;
  c.peers = std::move(peers);
  c.bearer = bearer;
  return c;
}

TEST(AgentRules, BatchTakesTheForwardTokenOnlyAndNeverAPage) {
  AccessPolicy p = Policy();
  EXPECT_TRUE(Admit(Route::kBatch, Tcp("forward-token-0123456789"), p).ok);
  EXPECT_EQ(Admit(Route::kBatch, Tcp(), p).http_status, 401);
  EXPECT_EQ(Admit(Route::kBatch, Tcp("local-token-0123456789"), p).http_status, 401);
  EXPECT_EQ(Admit(Route::kBatch, Socket({{1, 1000, 998}}), p).http_status, 401) << "the socket is no way around it";
  Caller page = Tcp("forward-token-0123456789");
  page.has_origin = true;
  page.origin = "http://localhost:3000";
  EXPECT_EQ(Admit(Route::kBatch, page, p).http_status, 403);
  Caller fetch = Tcp("forward-token-0123456789");
  fetch.browser_fetch = true;
  EXPECT_EQ(Admit(Route::kBatch, fetch, p).http_status, 403);
  EXPECT_FALSE(ferry::agent::AdmitPreflight("/v1/batch", page, p).ok);
  EXPECT_TRUE(ferry::agent::AdmitPreflight("/v1/track", page, p).ok);
  p.forward_token.clear();
  EXPECT_EQ(Admit(Route::kBatch, Tcp(""), p).http_status, 403) << "no forward_token: forwarding is off";
}

TEST(AgentRules, ConsentChangesNeedTheLocalTokenOrAnAllowedPeer) {
  AccessPolicy p = Policy();
  EXPECT_TRUE(Admit(Route::kConsentChange, Tcp("local-token-0123456789"), p).ok);
  EXPECT_EQ(Admit(Route::kConsentChange, Tcp(), p).http_status, 401);
  Caller remote = Tcp("local-token-0123456789");
  remote.loopback_peer = false;
  EXPECT_EQ(Admit(Route::kConsentChange, remote, p).http_status, 403);
  EXPECT_TRUE(Admit(Route::kConsentChange, Socket({{7, 1000, 5}}), p).ok) << "uid allowed";
  EXPECT_TRUE(Admit(Route::kConsentChange, Socket({{7, 5, 998}}), p).ok) << "gid allowed";
  EXPECT_EQ(Admit(Route::kConsentChange, Socket({{7, 5, 5}}), p).http_status, 403);
  EXPECT_EQ(Admit(Route::kConsentChange, Socket({}), p).http_status, 403) << "peer unknown";
  EXPECT_EQ(Admit(Route::kConsentChange, Socket({{7, 1000, 5}, {7, 5, 5}}), p).http_status, 403)
      << "every connection of the peer process must be allowed";
  EXPECT_TRUE(Admit(Route::kConsentChange, Socket({{7, 5, 5}}, "local-token-0123456789"), p).ok);
  EXPECT_EQ(Admit(Route::kConsentChange, Socket({{7, 1000, 5}}, "wrong"), p).http_status, 401);
  EXPECT_TRUE(ferry::agent::NeedsPeerCredentials(Route::kConsentChange, Socket({}), p));
  EXPECT_FALSE(ferry::agent::NeedsPeerCredentials(Route::kConsentChange, Socket({}, "local-token-0123456789"), p));
  EXPECT_FALSE(ferry::agent::NeedsPeerCredentials(Route::kEvent, Socket({}), p));
  // Without a local token, TCP cannot change consent at all; other routes stay open on loopback.
  p.local_token.clear();
  EXPECT_EQ(Admit(Route::kConsentChange, Tcp(), p).http_status, 403);
  EXPECT_TRUE(Admit(Route::kEvent, Tcp(), p).ok);
  EXPECT_TRUE(Admit(Route::kConsentRead, Tcp(), p).ok);
}

TEST(AgentRules, SecretsCompareWhateverTheirLength) {
  EXPECT_TRUE(ferry::agent::SameSecret("abc", "abc"));
  EXPECT_FALSE(ferry::agent::SameSecret("abc", "abd"));
  EXPECT_FALSE(ferry::agent::SameSecret("abc", "abcd"));
  EXPECT_FALSE(ferry::agent::SameSecret("", "abc"));
}

TEST(AgentRules, ControlCharactersInIdsAndNames) {
  for (const std::string& bad : {std::string("a\0b", 3), std::string("a\x1f"), std::string("\x7f"),
                                 std::string("\xc2\x80"), std::string("x\xc2\x9fy"), std::string("\n")}) {
    EXPECT_NE(ferry::agent::ControlCharProblem("userId", bad), "") << Json(bad).dump();
  }
  for (const std::string& fine :
       {std::string("carol"), std::string("caf\xc3\xa9"), std::string("\xc2\xa0"), std::string("\xe7\x8e\x8b")}) {
    EXPECT_EQ(ferry::agent::ControlCharProblem("userId", fine), "") << Json(fine).dump();
  }
  ferry::agent::EventRequest req;
  EXPECT_NE(ferry::agent::ParseEventRequest("track", R"({"event":"e","anonymousId":"a\u0000"})", &req)
                .find("anonymousId holds a control character"),
            std::string::npos);
  EXPECT_EQ(ferry::agent::ParseEventRequest("track", R"({"event":"e","properties":{"note":"line\nbreak"}})", &req), "")
      << "property values are data, not ids";
  EXPECT_NE(ferry::agent::EventIdsProblem(Json{{"previousId", std::string("p\0", 2)}}), "");
}

TEST(AgentRules, NecessaryOnlyForListedTrackEventsAndConsentRecords) {
  const std::vector<std::string> listed = {"payment_receipt"};
  EXPECT_EQ(ferry::agent::NecessaryProblem("track", "analytics", "anything", {}), "");
  EXPECT_EQ(ferry::agent::NecessaryProblem("track", "necessary", "payment_receipt", listed), "");
  EXPECT_EQ(ferry::agent::NecessaryProblem("consent", "necessary", "", {}), "");
  EXPECT_NE(ferry::agent::NecessaryProblem("track", "necessary", "page_view", listed), "");
  EXPECT_NE(ferry::agent::NecessaryProblem("track", "necessary", "payment_receipt", {}), "");
  EXPECT_NE(ferry::agent::NecessaryProblem("screen", "necessary", "payment_receipt", listed), "");
  EXPECT_NE(ferry::agent::NecessaryProblem("identify", "necessary", "", listed), "");
}

TEST(AgentRules, PreparedBatchRejectsEachBadEventByItself) {
  const std::string ts = "2026-01-01T00:00:00Z";
  Json b = {{"sentAt", ts},
            {"batch",
             {{{"messageId", "ok"},
               {"type", "track"},
               {"event", "e"},
               {"anonymousId", "d"},
               {"timestamp", ts},
               {"purpose", "analytics"}},
              {{"messageId", "nul"},
               {"type", "track"},
               {"event", "e"},
               {"userId", std::string("c\0x", 3)},
               {"timestamp", ts},
               {"purpose", "analytics"}},
              {{"messageId", "nec"},
               {"type", "track"},
               {"event", "page_view"},
               {"anonymousId", "d"},
               {"timestamp", ts},
               {"purpose", "necessary"}},
              {{"messageId", "rec"},
               {"type", "consent"},
               {"userId", "v"},
               {"timestamp", ts},
               {"purpose", "necessary"},
               {"properties", {{"purpose", "analytics"}, {"state", "granted"}}}}}}};
  auto p = ferry::agent::PrepareBatch(b.dump(), 1767225600000, {});
  ASSERT_EQ(p.http_status, 0) << p.error;
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.events[0]["messageId"], "ok");
  EXPECT_EQ(p.events[1]["messageId"], "rec");
  ASSERT_EQ(p.rejected.size(), 2u);
  EXPECT_EQ(p.rejected[0]["messageId"], "nul");
  EXPECT_EQ(p.rejected[1]["messageId"], "nec");
  EXPECT_EQ(p.rejected[1]["reason"].get<std::string>().rfind("necessary_not_allowed", 0), 0u);

  // A sender's clock far off cannot move a time out of range.
  Json skew = {{"sentAt", "0001-01-01T00:00:00Z"},
               {"batch",
                {{{"messageId", "far"},
                  {"type", "track"},
                  {"event", "e"},
                  {"anonymousId", "d"},
                  {"timestamp", "9999-12-31T00:00:00Z"},
                  {"purpose", "analytics"}}}}};
  p = ferry::agent::PrepareBatch(skew.dump(), 1767225600000, {});
  EXPECT_TRUE(p.events.empty());
  ASSERT_EQ(p.rejected.size(), 1u);
  EXPECT_EQ(p.rejected[0]["messageId"], "far");
}

}  // namespace
