// agent -> agent -> collector: the upstream agent takes the collector's batch format (POST /v1/batch) from a
// downstream agent, authenticated by its forward token (the route's own credential, not the local token), applies
// its own consent, and forwards to a real collector over TLS. Every event arrives exactly once.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "tests/integration/agent_process.h"
#include "tests/support/collector_process.h"
#include "tests/support/wait.h"

namespace {

using ferry::testsupport::AgentHttp;
using ferry::testsupport::AgentHttpClient;
using ferry::testsupport::AgentProcess;
using ferry::testsupport::CollectorProcess;
using ferry::testsupport::WaitFor;
using ferry::testsupport::Watch;
using Json = nlohmann::json;

TEST(AgentChain, AgentToAgentToCollectorDeliversExactlyOnceUnderTheUpstreamConsent) {
  std::string err;
  auto collector = CollectorProcess::Start({}, &err);
  ASSERT_NE(collector, nullptr) << err;
  const std::string token = "upstream-token-0123456789";
  const std::string local_token = "site-local-token-0123456789";
  // The upstream (site) agent: denies marketing for the whole site.
  auto site = AgentProcess::Start(
      {{"upstream",
        {{"url", collector->url()}, {"write_key", collector->write_key()}, {"ca_file", collector->ca_file()}}},
       {"local_token", local_token},
       {"forward_token", token},
       {"consent", {{"analytics", "granted"}, {"marketing", "denied"}}},
       {"batch", {{"size", 50}, {"flush_interval_ms", 200}}}},
      &err);
  ASSERT_NE(site, nullptr) << err;
  // The downstream (device) agent: its write key is the site agent's forward token.
  auto device = AgentProcess::Start({{"upstream", {{"url", site->url()}, {"write_key", token}}},
                                     {"consent", {{"analytics", "granted"}, {"marketing", "granted"}}},
                                     {"pii_rules", {{"detectors", {{"email", "mask"}}}}},
                                     {"batch", {{"size", 40}, {"flush_interval_ms", 200}}}},
                                    &err);
  ASSERT_NE(device, nullptr) << err;

  // Without the token the site agent refuses a batch.
  auto anon = AgentHttp("POST", site->url() + "/v1/batch", R"({"batch":[]})");
  EXPECT_EQ(anon.status, 401) << anon.body;
  // Nor with the local token: /v1/batch takes the forward token only.
  auto local =
      AgentHttp("POST", site->url() + "/v1/batch", R"({"batch":[]})", {"Authorization: Bearer " + local_token});
  EXPECT_EQ(local.status, 401) << local.body;

  std::set<std::string> analytics, marketing;
  AgentHttpClient http;
  for (int i = 0; i < 150; ++i) {
    std::string id = "chain-" + std::to_string(i);
    bool mk = i % 15 == 0;
    auto r = http.Request("POST", device->url() + "/v1/track",
                          Json({{"event", "scan"},
                                {"messageId", id},
                                {"purpose", mk ? "marketing" : "analytics"},
                                {"properties", {{"i", i}, {"contact", "wang.fang@example.com"}}}})
                              .dump());
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(r.Json().value("result", ""), "accepted") << r.body;
    (mk ? marketing : analytics).insert(id);
  }

  // Checked whenever the collector's store changes.
  std::map<std::string, int> got;
  Watch store;
  store.Path(collector->data_dir());
  WaitFor(
      [&] {
        got.clear();
        for (const auto& e : collector->DumpEvents()) got[e.value("messageId", std::string())]++;
        size_t have = 0;
        for (const auto& id : analytics) have += got.count(id);
        return have == analytics.size();
      },
      &store, {120000, 1000, 250});
  for (const auto& id : analytics) EXPECT_EQ(got[id], 1) << id;
  for (const auto& id : marketing) EXPECT_EQ(got.count(id), 0u) << "denied at the site agent: " << id;
  // Beside them, the consent records of both agents' two defaults (issue 12: method "default"), once each.
  EXPECT_EQ(got.size(), analytics.size() + 4);
  for (const auto& e : collector->DumpEvents()) {
    if (e["type"] == "consent") continue;
    std::string body = e["body"].dump();
    EXPECT_EQ(body.find("wang.fang@"), std::string::npos) << body;
    EXPECT_NE(body.find("w***@example.com"), std::string::npos) << body;  // masked once, on the device
  }
  // The device learns that the site agent refused the marketing events (rejected), and keeps nothing.
  // Checked whenever the device agent's buffer (or log) changes: sent events are deleted from it.
  std::string dm;
  Watch buffer;
  buffer.Path(device->dir());
  WaitFor(
      [&] {
        dm = AgentHttp("GET", device->url() + "/metrics").body;
        return CollectorProcess::MetricValue(dm, "ferry_agent_buffer_events{state=\"queued\"}") == 0 &&
               CollectorProcess::MetricValue(dm, "ferry_agent_pipeline_rejected_total") ==
                   static_cast<double>(marketing.size());
      },
      &buffer);
  EXPECT_EQ(CollectorProcess::MetricValue(dm, "ferry_agent_pipeline_rejected_total"),
            static_cast<double>(marketing.size()))
      << dm;
  EXPECT_EQ(CollectorProcess::MetricValue(dm, "ferry_agent_buffer_events{state=\"queued\"}"), 0) << dm;
  std::string sm = AgentHttp("GET", site->url() + "/metrics").body;  // loopback: no token needed
  EXPECT_EQ(CollectorProcess::MetricValue(sm, "ferry_agent_events_total{result=\"dropped_consent\"}"),
            static_cast<double>(marketing.size()))
      << sm;
}

}  // namespace
