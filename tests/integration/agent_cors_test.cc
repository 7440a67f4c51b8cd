// CORS over plain HTTP against a ferry-agent process: a kiosk page on a configured origin may post (preflight and
// actual request carry the headers a browser checks); any other origin is refused and nothing is stored.
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/agent_process.h"
#include "tests/support/collector_process.h"

namespace {

// Each agent here starts with one default in its config (analytics granted): the agent records it at start as a
// consent record (method "default", issue 12), queued to be sent like any event, so every queued count holds it.
constexpr int kDefaultRecords = 1;

using ferry::testsupport::AgentHttp;
using ferry::testsupport::AgentProcess;
using ferry::testsupport::CollectorProcess;

TEST(AgentCors, PreflightAndActualRequestFromAConfiguredOriginOthersRefused) {
  std::string err;
  auto agent = AgentProcess::Start({{"cors", {{"origins", {"http://localhost:3000", "https://kiosk.local"}}}},
                                    {"consent", {{"analytics", "granted"}}}},
                                   &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string track = agent->url() + "/v1/track";

  auto pre =
      AgentHttp("OPTIONS", track, "",
                {"Origin: http://localhost:3000", "Access-Control-Request-Method: POST",
                 "Access-Control-Request-Headers: content-type", "Access-Control-Request-Private-Network: true"});
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.Header("Access-Control-Allow-Origin"), "http://localhost:3000");
  EXPECT_NE(pre.Header("Access-Control-Allow-Methods").find("POST"), std::string::npos);
  EXPECT_NE(pre.Header("Access-Control-Allow-Headers").find("Content-Type"), std::string::npos);
  EXPECT_EQ(pre.Header("Access-Control-Allow-Private-Network"), "true");
  EXPECT_EQ(pre.Header("Vary"), "Origin");

  auto pre_bad =
      AgentHttp("OPTIONS", track, "", {"Origin: https://ads.example", "Access-Control-Request-Method: POST"});
  EXPECT_EQ(pre_bad.status, 403);
  EXPECT_EQ(pre_bad.Header("Access-Control-Allow-Origin"), "");

  auto post = AgentHttp("POST", track, R"({"event":"page_view"})", {"Origin: https://kiosk.local"});
  EXPECT_EQ(post.status, 200) << post.body;
  EXPECT_EQ(post.Header("Access-Control-Allow-Origin"), "https://kiosk.local");
  EXPECT_EQ(post.Json().value("result", ""), "accepted");

  // A page elsewhere cannot post, even as a "simple" request that a browser sends without a preflight.
  auto evil =
      AgentHttp("POST", track, R"({"event":"forged"})", {"Origin: https://ads.example", "Content-Type: text/plain"});
  EXPECT_EQ(evil.status, 403) << evil.body;
  EXPECT_EQ(evil.Header("Access-Control-Allow-Origin"), "");

  // Local programs send no Origin and need no CORS headers.
  auto local = AgentHttp("POST", track, R"({"event":"app_open"})");
  EXPECT_EQ(local.status, 200) << local.body;
  EXPECT_EQ(local.Header("Access-Control-Allow-Origin"), "");

  auto metrics = AgentHttp("GET", agent->url() + "/metrics").body;
  EXPECT_EQ(CollectorProcess::MetricValue(metrics, "ferry_agent_events_total{result=\"accepted\"}"), 2) << metrics;
  EXPECT_EQ(CollectorProcess::MetricValue(metrics, "ferry_agent_buffer_events{state=\"queued\"}"), 2 + kDefaultRecords)
      << metrics;
  EXPECT_EQ(CollectorProcess::MetricValue(metrics, "ferry_agent_requests_total{route=\"track\",code=\"403\"}"), 1);
}

}  // namespace
