// A real ferry-agent process under the attacks of issue 11 (items 3, 4 and 5), with raw sockets writing the exact
// bytes an attacker would (the collector attack test's drivers, tests/unit/collector/attack.h):
//   - 2,000 idle and 200 trickling TCP connections open: a legitimate track is still answered, over TCP and over the
//     Unix socket (the latency is printed, never asserted);
//   - the connection cap: the connection over it gets 503 with Retry-After; requests that do not arrive whole within
//     their deadline get 408;
//   - 16 connections flooding header lines: 431 before any token is looked at, and the agent's RSS stays below 100 MB
//     above its baseline during the flood and after it;
//   - every body route (track, screen, identify, PUT /v1/consent, /v1/batch) refuses a body nested 100,000 deep (400,
//     by the bounded parser, before anything is built) and an oversized one (413); the agent keeps serving.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/agent_process.h"
#include "tests/support/collector_process.h"
#include "tests/unit/collector/attack.h"
#include "tests/unit/httpd/test_util.h"

namespace ferry::testsupport {
namespace {

using httpd::testing::Conn;
using httpd::testing::RawResponse;
using httpd::testing::WaitUntil;
using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

const char kLocalToken[] = "local-token-0123456789abcdef";
const char kForwardToken[] = "forward-token-0123456789abcdef";

// Each agent here starts with one default in its config (analytics granted): the agent records it at start as a
// consent record (method "default", issue 12), queued to be sent like any event, so every queued count holds it.
constexpr int kDefaultRecords = 1;

constexpr int kIdle = 2000;
constexpr int kTrickling = 200;

std::string Track(const std::string& event, const std::string& auth = "") {
  std::string body = Json{{"event", event}}.dump();
  return "POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth +
         "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// One request on a fresh connection (TCP when unix_path is empty), its answer and the time from connect to answer.
struct Timed {
  std::optional<RawResponse> r;
  double ms = 0;
};
Timed Exchange(int port, const std::string& unix_path, const std::string& request) {
  Timed t;
  auto start = SteadyClock::now();
  auto c = unix_path.empty() ? Conn::Tcp(port, "127.0.0.1", 30000) : Conn::Unix(unix_path, 30000);
  if (c && c->Send(request)) t.r = c->Read();
  t.ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
  return t;
}

double Metric(const AgentProcess& a, const std::string& sample) {
  auto m = AgentHttp("GET", a.url() + "/metrics");
  return m.status == 200 ? CollectorProcess::MetricValue(m.body, sample) : -1;
}

double Queued(const AgentProcess& a) { return Metric(a, "ferry_agent_buffer_events{state=\"queued\"}"); }

TEST(AgentAttack, IdleAndTricklingConnectionsDoNotDelayATrackOverTcpOrTheSocket) {
  if (httpd::testing::RaiseFileLimit() < 2 * (kIdle + kTrickling) + 500) {
    GTEST_SKIP() << "the file descriptor limit is too low for this test";
  }
  std::string err;
  // Deadlines stretched so that no attack connection goes away while the track is sent: the worst case.
  auto agent = AgentProcess::Start({{"consent", {{"analytics", "granted"}}},
                                    {"unix_socket", {{"path", "agent.sock"}}},
                                    {"limits", {{"request_timeout_s", 300}, {"idle_timeout_s", 300}}}},
                                   &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string sock = agent->dir() + "/agent.sock";
  {
    attack::Siege siege(agent->port(), nullptr, kIdle, kTrickling);
    ASSERT_TRUE(siege.ok()) << siege.error();
    // The agent says how many connections it holds: wait until it holds them all.
    EXPECT_TRUE(
        WaitUntil([&] { return Metric(*agent, "ferry_agent_http_connections_open") >= kIdle + kTrickling; }, 60000));
    for (int i = 0; i < 5; ++i) {
      for (const std::string& via : {std::string(), sock}) {
        Timed t = Exchange(agent->port(), via, Track("under-attack"));
        ASSERT_TRUE(t.r) << "the track was not answered (" << (via.empty() ? "tcp" : "unix") << ")";
        EXPECT_EQ(t.r->status, 200) << t.r->body;
        EXPECT_EQ(Json::parse(t.r->body, nullptr, false).value("result", ""), "accepted") << t.r->body;
        std::printf("[agent %s] a track with %d idle and %d trickling connections open: %.1f ms (load average %.2f)\n",
                    via.empty() ? "tcp" : "unix", kIdle, kTrickling, t.ms, attack::LoadAverage());
      }
    }
  }
  EXPECT_EQ(Queued(*agent), 10 + kDefaultRecords);
  // And the agent lets the connections go (the /metrics request itself is one).
  EXPECT_TRUE(WaitUntil([&] { return Metric(*agent, "ferry_agent_http_connections_open") <= 1; }, 30000));
  EXPECT_EQ(agent->Stop(), 0);
}

TEST(AgentAttack, ConnectionCapRefusesClearlyAndRequestsHaveADeadline) {
  std::string err;
  auto agent =
      AgentProcess::Start({{"consent", {{"analytics", "granted"}}},
                           {"limits", {{"max_connections", 40}, {"request_timeout_s", 1}, {"idle_timeout_s", 300}}}},
                          &err);
  ASSERT_NE(agent, nullptr) << err;
  const int port = agent->port();
  // 40 connections, each in the middle of a request (never reclaimed to make room), hold every slot: each sends a
  // whole request and the start of the next in one write, so once the first is answered the agent has read the start
  // of the second.
  std::vector<std::unique_ptr<Conn>> held;
  for (int i = 0; i < 40; ++i) {
    held.push_back(Conn::Tcp(port, "127.0.0.1", 10000));
    ASSERT_NE(held.back(), nullptr);
    ASSERT_TRUE(held.back()->Send(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nPOST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    auto first = held.back()->Read();
    ASSERT_TRUE(first) << "connection " << i;
    ASSERT_EQ(first->status, 200) << "connection " << i;
  }
  auto over = Conn::Tcp(port, "127.0.0.1", 10000);
  ASSERT_NE(over, nullptr);
  auto refused = over->Read();
  ASSERT_TRUE(refused) << "no refusal";
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_FALSE(refused->Header("Retry-After").empty());
  // The held requests do not arrive whole within their deadline: 408, and the connection closes.
  for (auto& h : held) {
    auto r = h->Read();
    ASSERT_TRUE(r) << "no answer to an unfinished request";
    EXPECT_EQ(r->status, 408) << r->body;
    EXPECT_TRUE(h->WaitClosed());
  }
  held.clear();
  std::optional<RawResponse> r;
  ASSERT_TRUE(WaitUntil(
      [&] {
        r = Exchange(port, "", Track("after-cap")).r;
        return r && r->status == 200;
      },
      10000))
      << (r ? r->body : "no answer");
  EXPECT_GE(Metric(*agent, "ferry_agent_http_refusals_total{reason=\"timeout\"}"), 40);
}

// The flood of issue 11: 16 connections sending 120 MB of header lines each, with no token (the agent has one).
TEST(AgentAttack, HeaderFloodIsRefusedBeforeTheTokenWithBoundedMemory) {
  std::string err;
  auto agent = AgentProcess::Start({{"consent", {{"analytics", "granted"}}}, {"local_token", kLocalToken}}, &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string auth = std::string("Authorization: Bearer ") + kLocalToken + "\r\n";
  for (int i = 0; i < 20; ++i) {
    auto r = Exchange(agent->port(), "", Track("warm", auth)).r;
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  attack::FloodResult f = attack::HeaderFlood(agent->port(), agent->pid(), 16, 120LL * 1000 * 1000);
  std::printf("[agent flood] sent %.0f MB of header lines over %lld connections in %.1f s; %lld answers 431\n",
              f.sent_bytes / 1e6, static_cast<long long>(f.connections), f.seconds,
              static_cast<long long>(f.answers_431));
  std::printf("[agent flood] agent RSS: baseline %.1f MB, peak %.1f MB, at the end %.1f MB, after %.1f MB\n",
              f.baseline_kb / 1024.0, f.peak_kb / 1024.0, f.end_kb / 1024.0, f.after_kb / 1024.0);
  ASSERT_GT(f.baseline_kb, 0);
  EXPECT_GT(f.answers_431, 0);
  EXPECT_EQ(f.other_answers, 0) << "every flooding connection is refused with 431 (never 401)";
  EXPECT_LT(f.peak_kb - f.baseline_kb, 100 * 1024) << "RSS under the flood";
  EXPECT_LT(f.after_kb - f.baseline_kb, 100 * 1024) << "RSS after the flood";
  auto r = Exchange(agent->port(), "", Track("after-flood", auth)).r;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  auto m = AgentHttp("GET", agent->url() + "/metrics");
  EXPECT_GE(CollectorProcess::MetricValue(m.body, "ferry_agent_http_refusals_total{reason=\"header_too_large\"}"),
            f.answers_431);
}

TEST(AgentAttack, DeepAndOversizedBodiesAreRefusedOnEveryRoute) {
  std::string err;
  auto agent = AgentProcess::Start(
      {{"consent", {{"analytics", "granted"}}}, {"local_token", kLocalToken}, {"forward_token", kForwardToken}}, &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string local = std::string("Authorization: Bearer ") + kLocalToken;
  const std::string forward = std::string("Authorization: Bearer ") + kForwardToken;
  const std::string open(100000, '['), close(100000, ']');
  struct Case {
    std::string method, path, auth, deep;
  };
  std::vector<Case> cases = {
      {"POST", "/v1/track", local, "{\"event\": \"x\", \"properties\": {\"a\": " + open + close + "}}"},
      {"POST", "/v1/screen", local, "{\"name\": \"x\", \"properties\": {\"a\": " + open + close + "}}"},
      {"POST", "/v1/identify", local, "{\"userId\": \"u\", \"traits\": {\"a\": " + open + close + "}}"},
      {"PUT", "/v1/consent/marketing", local, "{\"state\": " + open + close + "}"},
      {"POST", "/v1/batch", forward, "{\"batch\": " + open + close + "}"},
  };
  const std::string oversized = "{\"p\": \"" + std::string(2u << 20, 'a') + "\"}";  // over limits.max_body_bytes
  for (const auto& k : cases) {
    auto deep = AgentHttp(k.method, agent->url() + k.path, k.deep, {k.auth});
    EXPECT_EQ(deep.status, 400) << k.path << ": " << deep.body;
    EXPECT_NE(deep.body.find("nests deeper"), std::string::npos) << k.path << ": " << deep.body;
    auto big = AgentHttp(k.method, agent->url() + k.path, oversized, {k.auth});
    EXPECT_EQ(big.status, 413) << k.path << ": " << big.body;
    EXPECT_TRUE(big.Json().contains("error")) << k.path << ": " << big.body;
  }
  // Nothing was recorded, consent did not move, and the agent still serves.
  EXPECT_EQ(Queued(*agent), 0 + kDefaultRecords);
  auto consent = AgentHttp("GET", agent->url() + "/v1/consent", "", {local});
  ASSERT_EQ(consent.status, 200) << consent.body;
  EXPECT_NE(consent.Json()["consent"].value("marketing", ""), "granted");
  auto ok = AgentHttp("POST", agent->url() + "/v1/track", R"({"event": "after"})", {local});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(agent->Stop(), 0);
}

}  // namespace
}  // namespace ferry::testsupport
