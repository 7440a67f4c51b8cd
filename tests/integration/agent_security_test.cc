// issue 11 against a real ferry-agent process, as an attacker with only local or page access would try it:
// - consent bypass: an event under the built-in purpose "necessary" with analytics denied (only the device owner's
//   necessary_events may use it);
// - forgery: POST /v1/batch (agent -> agent) with consent records, without its forward token, from a page, with the
//   local token; a consent grant from any local process (TCP without a token, a socket peer that is not allowed);
// - DNS rebinding: a request whose Host header names another site;
// - NUL and control characters in ids and names.
// Nothing the attacker sends is stored: the agent has no upstream, so its buffer counts are exact.
#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <string>
#include <vector>

#include "tests/integration/agent_process.h"
#include "tests/support/collector_process.h"

namespace {

using ferry::testsupport::AgentHttp;
using ferry::testsupport::AgentHttpResult;
using ferry::testsupport::AgentProcess;
using ferry::testsupport::CollectorProcess;
using Json = nlohmann::json;

// Now in ISO 8601 (UTC, whole seconds).
std::string NowIso() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char kLocalToken[] = "local-token-0123456789abcdef";
const char kForwardToken[] = "forward-token-0123456789abcdef";

// Each agent here starts with one default in its config (a purpose granted or denied): the agent records it at start
// as a consent record (method "default", issue 12), queued to be sent like any event, so every queued count holds it.
constexpr int kDefaultRecords = 1;

double Queued(const AgentProcess& a) {
  return CollectorProcess::MetricValue(AgentHttp("GET", a.url() + "/metrics").body,
                                       "ferry_agent_buffer_events{state=\"queued\"}");
}

// The error body of the agent's local API: {"error", "code", "result", "reason"}.
void ExpectError(const AgentHttpResult& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  Json j = r.Json();
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_EQ(j.value("code", ""), code) << r.body;
  EXPECT_FALSE(j.value("error", "").empty()) << r.body;
}

// A forged batch: a consent record granting "sensitive" for a victim, and an event in the victim's name.
std::string ForgedBatch() {
  std::string now = NowIso();
  Json b = {{"sentAt", now},
            {"batch",
             {{{"messageId", "forged-consent"},
               {"type", "consent"},
               {"userId", "victim"},
               {"timestamp", now},
               {"purpose", "necessary"},
               {"properties", {{"purpose", "sensitive"}, {"state", "granted"}, {"previous", "pending"}}}},
              {{"messageId", "forged-track"},
               {"type", "track"},
               {"event", "ad_click"},
               {"userId", "victim"},
               {"timestamp", now},
               {"purpose", "analytics"}}}}};
  return b.dump();
}

TEST(AgentSecurity, NecessaryIsOnlyForTheEventsTheOwnerListed) {
  std::string err;
  auto agent =
      AgentProcess::Start({{"consent", {{"analytics", "denied"}}}, {"necessary_events", {"payment_receipt"}}}, &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string track = agent->url() + "/v1/track";

  // Analytics denied: dropped, as before.
  auto denied = AgentHttp("POST", track, R"({"event":"page_view"})");
  ASSERT_EQ(denied.status, 200) << denied.body;
  EXPECT_EQ(denied.Json().value("result", ""), "dropped");
  // The bypass: the same event under "necessary" is refused, with the reason.
  auto bypass = AgentHttp("POST", track, R"({"event":"page_view","purpose":"necessary"})");
  ExpectError(bypass, 403, "permission_denied");
  EXPECT_NE(bypass.Json().value("error", "").find("necessary_events"), std::string::npos) << bypass.body;
  EXPECT_EQ(Queued(*agent), 0 + kDefaultRecords) << "nothing stored";
  // A listed event is what "necessary" is for.
  auto receipt = AgentHttp("POST", track, R"({"event":"payment_receipt","purpose":"necessary"})");
  ASSERT_EQ(receipt.status, 200) << receipt.body;
  EXPECT_EQ(receipt.Json().value("result", ""), "accepted");
  EXPECT_EQ(Queued(*agent), 1 + kDefaultRecords);

  // Without necessary_events (the default) every "necessary" event is refused.
  auto plain = AgentProcess::Start({{"consent", {{"analytics", "denied"}}}}, &err);
  ASSERT_NE(plain, nullptr) << err;
  ExpectError(AgentHttp("POST", plain->url() + "/v1/track", R"({"event":"payment_receipt","purpose":"necessary"})"),
              403, "permission_denied");
  EXPECT_EQ(Queued(*plain), 0 + kDefaultRecords);
}

TEST(AgentSecurity, BatchNeedsTheForwardTokenAndNeverServesAPage) {
  std::string err;
  // Forwarding off (no forward_token): the route is closed to everyone, local token or not.
  auto closed = AgentProcess::Start({{"consent", {{"analytics", "granted"}}}, {"local_token", kLocalToken}}, &err);
  ASSERT_NE(closed, nullptr) << err;
  ExpectError(AgentHttp("POST", closed->url() + "/v1/batch", ForgedBatch(),
                        {std::string("Authorization: Bearer ") + kLocalToken}),
              403, "permission_denied");
  EXPECT_EQ(Queued(*closed), 0 + kDefaultRecords);

  auto agent = AgentProcess::Start({{"consent", {{"analytics", "granted"}}},
                                    {"local_token", kLocalToken},
                                    {"forward_token", kForwardToken},
                                    {"unix_socket", {{"path", "agent.sock"}}},
                                    {"cors", {{"origins", {"http://localhost:3000"}}}}},
                                   &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string batch = agent->url() + "/v1/batch";
  const std::string sock = agent->dir() + "/agent.sock";
  const std::string fwd = std::string("Authorization: Bearer ") + kForwardToken;
  ExpectError(AgentHttp("POST", batch, ForgedBatch()), 401, "unauthenticated");
  ExpectError(AgentHttp("POST", batch, ForgedBatch(), {std::string("Authorization: Bearer ") + kLocalToken}), 401,
              "unauthenticated");
  ExpectError(AgentHttp("POST", batch, ForgedBatch(), {"Authorization: Bearer forward-token-0123456789abcdeX"}), 401,
              "unauthenticated");
  // The socket is no way around it.
  ExpectError(AgentHttp("POST", "http://localhost/v1/batch", ForgedBatch(), {}, sock), 401, "unauthenticated");
  // A page never reaches it, not even an allowed origin holding the token, nor its preflight.
  ExpectError(AgentHttp("POST", batch, ForgedBatch(), {fwd, "Origin: http://localhost:3000"}), 403,
              "permission_denied");
  ExpectError(AgentHttp("POST", batch, ForgedBatch(), {fwd, "Sec-Fetch-Site: cross-site"}), 403, "permission_denied");
  auto pre = AgentHttp("OPTIONS", batch, "",
                       {"Origin: http://localhost:3000", "Access-Control-Request-Method: POST",
                        "Access-Control-Request-Headers: authorization, content-type"});
  EXPECT_EQ(pre.status, 403) << pre.body;
  EXPECT_EQ(pre.Header("Access-Control-Allow-Origin"), "");
  EXPECT_EQ(Queued(*agent), 0 + kDefaultRecords) << "no forged record was stored";

  // The holder of the forward token (a downstream agent) is served.
  auto ok = AgentHttp("POST", batch, ForgedBatch(), {fwd});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.Json().value("accepted", -1), 2) << ok.body;
  EXPECT_EQ(Queued(*agent), 2 + kDefaultRecords);
  std::string metrics = AgentHttp("GET", agent->url() + "/metrics").body;
  EXPECT_EQ(CollectorProcess::MetricValue(metrics, "ferry_agent_requests_total{route=\"batch\",code=\"401\"}"), 4)
      << metrics;
}

TEST(AgentSecurity, ConsentChangesNeedTheLocalTokenOrAnAllowedSocketPeer) {
  std::string err;
  // No local token: no process can change consent over TCP; a socket peer not in consent_uids/gids neither.
  auto open =
      AgentProcess::Start({{"unix_socket", {{"path", "agent.sock"}, {"consent_uids", {getuid() + 4242}}}}}, &err);
  ASSERT_NE(open, nullptr) << err;
  const std::string sock = open->dir() + "/agent.sock";
  const std::string grant = R"({"state":"granted"})";
  ExpectError(AgentHttp("PUT", open->url() + "/v1/consent/sensitive", grant), 403, "permission_denied");
  ExpectError(AgentHttp("PUT", "http://localhost/v1/consent/sensitive", grant, {}, sock), 403, "permission_denied");
  ExpectError(AgentHttp("PUT", "http://localhost/v1/consent/sensitive", grant,
                        {"Authorization: Bearer guess-guess-guess"}, sock),
              401, "unauthenticated");
  EXPECT_EQ(AgentHttp("GET", open->url() + "/v1/consent").Json()["consent"].value("sensitive", ""), "pending");

  // The local token opens both ways; a peer whose gid is allowed may use the socket without it.
  auto agent = AgentProcess::Start(
      {{"local_token", kLocalToken}, {"unix_socket", {{"path", "agent.sock"}, {"consent_gids", {getgid()}}}}}, &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string asock = agent->dir() + "/agent.sock";
  const std::string auth = std::string("Authorization: Bearer ") + kLocalToken;
  ExpectError(AgentHttp("PUT", agent->url() + "/v1/consent/sensitive", grant), 401, "unauthenticated");
  auto tcp = AgentHttp("PUT", agent->url() + "/v1/consent/marketing", grant, {auth});
  ASSERT_EQ(tcp.status, 200) << tcp.body;
  auto peer = AgentHttp("PUT", "http://localhost/v1/consent/sensitive", grant, {}, asock);
  ASSERT_EQ(peer.status, 200) << peer.body;
  Json c = AgentHttp("GET", agent->url() + "/v1/consent", "", {auth}).Json()["consent"];
  EXPECT_EQ(c.value("marketing", ""), "granted");
  EXPECT_EQ(c.value("sensitive", ""), "granted");
}

TEST(AgentSecurity, HostsOtherThanThisMachineAreMisdirected) {
  std::string err;
  auto agent = AgentProcess::Start({{"consent", {{"analytics", "granted"}}}, {"allowed_hosts", {"kiosk.local"}}}, &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string port = std::to_string(agent->port());
  // The rebinding page: its name now resolves to 127.0.0.1, its Host header still names it.
  for (const std::string& host :
       std::vector<std::string>{"evil.example:" + port, "evil.example", "localhost.evil.example:" + port}) {
    for (const char* path : {"/v1/consent", "/metrics", "/healthz"}) {
      auto r = AgentHttp("GET", agent->url() + path, "", {"Host: " + host});
      ExpectError(r, 421, "permission_denied");
    }
    ExpectError(AgentHttp("POST", agent->url() + "/v1/track", R"({"event":"rebound"})", {"Host: " + host}), 421,
                "permission_denied");
    auto pre = AgentHttp("OPTIONS", agent->url() + "/v1/track", "",
                         {"Host: " + host, "Origin: http://" + host, "Access-Control-Request-Method: POST"});
    EXPECT_EQ(pre.status, 421) << pre.body;
  }
  EXPECT_EQ(Queued(*agent), 0 + kDefaultRecords);
  for (const std::string& host : std::vector<std::string>{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port,
                                                          "localhost", "kiosk.local:" + port, "KIOSK.LOCAL"}) {
    auto r = AgentHttp("POST", agent->url() + "/v1/track", R"({"event":"here"})", {"Host: " + host});
    EXPECT_EQ(r.status, 200) << host << ": " << r.body;
  }
  EXPECT_EQ(Queued(*agent), 6 + kDefaultRecords);
  std::string metrics = AgentHttp("GET", agent->url() + "/metrics").body;
  EXPECT_EQ(CollectorProcess::MetricValue(metrics, "ferry_agent_requests_total{route=\"misdirected\",code=\"421\"}"),
            15)
      << metrics;
}

TEST(AgentSecurity, ControlCharactersInIdsAndNamesAreRefused) {
  std::string err;
  auto agent = AgentProcess::Start({{"consent", {{"analytics", "granted"}}}, {"forward_token", kForwardToken}}, &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string base = agent->url();
  for (const auto& [path, body] :
       std::vector<std::pair<std::string, std::string>>{{"/v1/track", R"({"event":"e","userId":"carol\u0000x"})"},
                                                        {"/v1/track", R"({"event":"e","anonymousId":"dev\u001b[1m"})"},
                                                        {"/v1/track", R"({"event":"e\nforged: line"})"},
                                                        {"/v1/track", R"({"event":"e","messageId":"m\u007f"})"},
                                                        {"/v1/screen", R"({"name":"Home\u0085"})"},
                                                        {"/v1/identify", R"({"userId":"carol\u0000x","traits":{}})"}}) {
    auto r = AgentHttp("POST", base + path, body);
    ExpectError(r, 400, "invalid_argument");
    EXPECT_NE(r.Json().value("error", "").find("control character"), std::string::npos) << r.body;
  }
  // Characters that only look unusual are fine.
  auto fine = AgentHttp("POST", base + "/v1/track", R"({"event":"café ☕","userId":"王芳"})");
  EXPECT_EQ(fine.status, 200) << fine.body;

  // A forwarded batch: the event with a NUL in its userId is rejected by itself, the other one is stored.
  std::string now = NowIso();
  Json b = {{"sentAt", now},
            {"batch",
             {{{"messageId", "nul-1"},
               {"type", "track"},
               {"event", "e"},
               {"userId", std::string("carol\0x", 7)},
               {"timestamp", now},
               {"purpose", "analytics"}},
              {{"messageId", "ok-1"},
               {"type", "track"},
               {"event", "e"},
               {"userId", "carol"},
               {"timestamp", now},
               {"purpose", "analytics"}}}}};
  auto r = AgentHttp("POST", base + "/v1/batch", b.dump(), {std::string("Authorization: Bearer ") + kForwardToken});
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.Json();
  EXPECT_EQ(j.value("accepted", -1), 1) << r.body;
  ASSERT_EQ(j["rejected"].size(), 1u) << r.body;
  EXPECT_EQ(j["rejected"][0].value("messageId", ""), "nul-1");
  EXPECT_NE(j["rejected"][0].value("reason", "").find("control character"), std::string::npos) << r.body;
  EXPECT_EQ(Queued(*agent), 2 + kDefaultRecords);
}

}  // namespace
