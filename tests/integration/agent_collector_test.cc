// ferry-agent as a process in front of a real ferry-collector over TLS: several local clients over HTTP and the
// Unix socket, consent and masking, the collector down for a while, the agent killed with SIGKILL, signals.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/agent_process.h"
#include "tests/support/collector_process.h"
#include "tests/support/wait.h"

namespace {

// The agents here start with three defaults (analytics granted, marketing denied, personalization pending): the two
// that change a purpose's state are recorded once each as a consent record (method "default", issue 12) that reaches
// the collector beside the events (pending is where a purpose starts: nothing to record).
constexpr size_t kDefaultRecords = 2;

using ferry::testsupport::AgentHttp;
using ferry::testsupport::AgentHttpClient;
using ferry::testsupport::AgentProcess;
using ferry::testsupport::CollectorProcess;
using ferry::testsupport::WaitFor;
using ferry::testsupport::Watch;
using Json = nlohmann::json;

Json AgentConfigFor(const CollectorProcess& c) {
  return {{"upstream", {{"url", c.url()}, {"write_key", c.write_key()}, {"ca_file", c.ca_file()}}},
          // The test's own uid may change device consent over the socket (SO_PEERCRED).
          {"unix_socket", {{"path", "agent.sock"}, {"mode", "0600"}, {"consent_uids", {getuid()}}}},
          {"consent", {{"analytics", "granted"}, {"marketing", "denied"}, {"personalization", "pending"}}},
          // personalization's events wait for the grant only because the config holds them (issue 12 item 7).
          {"hold_pending_ms", {{"personalization", 86400000}}},
          {"batch", {{"size", 50}, {"flush_interval_ms", 200}}},
          {"shutdown_timeout_ms", 5000}};
}

// messageId -> how many times the collector stored it (only ids for which keep(e) holds).
std::map<std::string, int> StoredIds(const CollectorProcess& c) {
  std::map<std::string, int> out;
  for (const auto& e : c.DumpEvents()) out[e.value("messageId", std::string())]++;
  return out;
}

// Waits until the collector holds every id in `want`, checking whenever its store changes (or the time is up).
// Returns the last view.
std::map<std::string, int> WaitForIds(const CollectorProcess& c, const std::set<std::string>& want,
                                      int timeout_s = 120) {
  std::map<std::string, int> got;
  Watch store;
  store.Path(c.data_dir());
  WaitFor(
      [&] {
        got = StoredIds(c);
        size_t have = 0;
        for (const auto& id : want) have += got.count(id);
        return have == want.size();
      },
      &store, {timeout_s * 1000, 1000, 250});
  return got;
}

// Waits until the agent's log holds `text` (woken by each write to it).
bool WaitForLog(const AgentProcess& a, const std::string& text) {
  Watch log;
  log.Path(a.dir() + "/agent.log");
  return WaitFor([&] { return a.Log().find(text) != std::string::npos; }, &log);
}

std::string Body(const CollectorProcess& c, const std::string& message_id) {
  for (const auto& e : c.DumpEvents()) {
    if (e.value("messageId", std::string()) == message_id) return e.contains("body") ? e["body"].dump() : e.dump();
  }
  return "";
}

TEST(AgentCollector, LocalClientsOverHttpAndUnixSocketArriveExactlyOnceWithConsentAndMasking) {
  std::string err;
  auto collector = CollectorProcess::Start({}, &err);
  ASSERT_NE(collector, nullptr) << err;
  auto agent = AgentProcess::Start(AgentConfigFor(*collector), &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string sock = agent->dir() + "/agent.sock";

  constexpr int kThreads = 5, kPerThread = 120;
  std::set<std::string> analytics_ids, pending_ids, denied_ids;
  std::mutex mu;
  std::atomic<int> bad_answers{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      bool via_socket = t >= 3;
      AgentHttpClient http(via_socket ? sock : "");
      std::string base = via_socket ? "http://agent" : agent->url();
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = "c" + std::to_string(t) + "-" + std::to_string(i);
        std::string purpose = i % 10 == 0 ? "marketing" : i % 10 == 1 ? "personalization" : "analytics";
        Json ev = {{"event", "item_viewed"},
                   {"messageId", id},
                   {"purpose", purpose},
                   {"properties",
                    {{"seq", i}, {"email", "user" + std::to_string(t) + "x@example.com"}, {"password", "hunter2"}}}};
        auto r = http.Request("POST", base + "/v1/track", ev.dump());
        Json a = r.Json();
        bool ok = r.status == 200 && a.is_object();
        if (ok && purpose == "marketing") ok = a.value("result", "") == "dropped";
        if (ok && purpose == "personalization")
          ok = a.value("result", "") == "accepted" && a.value("consent", "") == "pending";
        if (ok && purpose == "analytics") ok = a.value("result", "") == "accepted" && a.value("messageId", "") == id;
        if (!ok) bad_answers++;
        std::lock_guard<std::mutex> l(mu);
        (purpose == "marketing" ? denied_ids : purpose == "personalization" ? pending_ids : analytics_ids).insert(id);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad_answers.load(), 0);

  // identify over the socket, with per-call ids only.
  auto ident =
      AgentHttp("POST", "http://agent/v1/identify",
                R"({"userId":"kiosk-user-1","messageId":"ident-1","traits":{"phone":"13812345678"}})", {}, sock);
  ASSERT_EQ(ident.status, 200) << ident.body;
  // an invalid one is answered with the reason.
  auto invalid = AgentHttp("POST", agent->url() + "/v1/track", R"({"event":"x","properties":[1]})");
  EXPECT_EQ(invalid.status, 400);
  EXPECT_EQ(invalid.Json().value("result", ""), "invalid");
  EXPECT_NE(invalid.body.find("properties"), std::string::npos) << invalid.body;

  std::set<std::string> want = analytics_ids;
  want.insert("ident-1");
  auto got = WaitForIds(*collector, want);
  for (const auto& id : want) EXPECT_EQ(got[id], 1) << id;
  for (const auto& id : denied_ids) EXPECT_EQ(got.count(id), 0u) << "denied purpose stored: " << id;
  for (const auto& id : pending_ids) EXPECT_EQ(got.count(id), 0u) << "pending purpose sent: " << id;
  for (const auto& [id, n] : got) EXPECT_EQ(n, 1) << id;
  std::string sample = Body(*collector, "c0-5");
  EXPECT_NE(sample.find("[email]"), std::string::npos) << sample;
  EXPECT_EQ(sample.find("example.com"), std::string::npos) << sample;
  EXPECT_EQ(sample.find("hunter2"), std::string::npos) << sample;
  std::string ident_body = Body(*collector, "ident-1");
  EXPECT_NE(ident_body.find("[phone]"), std::string::npos) << ident_body;
  EXPECT_NE(ident_body.find("kiosk-user-1"), std::string::npos) << ident_body;
  EXPECT_EQ(ident_body.find("anonymousId"), std::string::npos)
      << "a per-call identity must not be linked to the device";

  // Device consent: granting the pending purpose sends what waited, and a consent record arrives.
  auto put = AgentHttp("PUT", "http://agent/v1/consent/personalization", R"({"state":"granted"})", {}, sock);
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.Json().value("previous", ""), "pending");
  got = WaitForIds(*collector, pending_ids);
  for (const auto& id : pending_ids) EXPECT_EQ(got[id], 1) << id;
  bool consent_record = false;
  for (const auto& e : collector->DumpEvents()) {
    if (e.value("type", "") != "consent") continue;
    Json body = e["body"].is_string() ? Json::parse(e["body"].get<std::string>(), nullptr, false) : e["body"];
    Json props = body.value("properties", Json::object());
    if (props.value("purpose", "") == "personalization" && props.value("state", "") == "granted" &&
        props.value("previous", "") == "pending") {
      consent_record = true;
    }
  }
  EXPECT_TRUE(consent_record);

  // Persisted across a restart.
  EXPECT_EQ(agent->Stop(), 0) << agent->Log();
  ASSERT_TRUE(agent->Restart(&err)) << err;
  auto consent = AgentHttp("GET", agent->url() + "/v1/consent");
  ASSERT_EQ(consent.status, 200);
  EXPECT_EQ(consent.Json()["consent"].value("personalization", ""), "granted") << consent.body;
  EXPECT_EQ(consent.Json()["consent"].value("marketing", ""), "denied") << consent.body;
}

TEST(AgentCollector, ManyEventsInOneRequestAreCheckedEachCommittedTogetherAndArriveOnce) {
  std::string err;
  auto collector = CollectorProcess::Start({}, &err);
  ASSERT_NE(collector, nullptr) << err;
  auto agent = AgentProcess::Start(AgentConfigFor(*collector), &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string sock = agent->dir() + "/agent.sock";

  Json events = Json::array();
  std::set<std::string> want;
  for (int i = 0; i < 200; ++i) {
    std::string id = "ev-" + std::to_string(i);
    events.push_back({{"type", "track"},
                      {"event", "item_viewed"},
                      {"messageId", id},
                      {"properties", {{"seq", i}, {"email", "buyer" + std::to_string(i) + "@example.com"}}}});
    want.insert(id);
  }
  events.push_back({{"type", "screen"}, {"name", "Cart"}, {"messageId", "ev-screen"}});
  events.push_back({{"type", "identify"},
                    {"userId", "kiosk-user-2"},
                    {"messageId", "ev-ident"},
                    {"traits", {{"phone", "13812345678"}}}});
  want.insert("ev-screen");
  want.insert("ev-ident");
  const size_t denied_at = events.size();
  events.push_back({{"type", "track"}, {"event", "promo_seen"}, {"messageId", "ev-denied"}, {"purpose", "marketing"}});
  const size_t pending_at = events.size();
  events.push_back(
      {{"type", "track"}, {"event", "recs_seen"}, {"messageId", "ev-pending"}, {"purpose", "personalization"}});
  const size_t bad_type_at = events.size();
  events.push_back({{"type", "alias"}, {"messageId", "ev-alias"}});
  const size_t no_name_at = events.size();
  events.push_back({{"type", "track"}, {"messageId", "ev-noname"}});
  const size_t unknown_at = events.size();
  events.push_back({{"type", "track"}, {"event", "x"}, {"messageId", "ev-typo"}, {"propertes", Json::object()}});
  const size_t necessary_at = events.size();
  events.push_back({{"type", "track"}, {"event", "x"}, {"messageId", "ev-nec"}, {"purpose", "necessary"}});

  // Over TCP and over the socket: the same answer shape.
  auto r = AgentHttp("POST", agent->url() + "/v1/events", Json{{"events", events}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  Json a = r.Json();
  EXPECT_EQ(a.value("accepted", -1), 203) << r.body;  // 202 granted + 1 pending (held)
  EXPECT_EQ(a.value("dropped", -1), 1);
  EXPECT_EQ(a.value("refused", -1), 4);
  ASSERT_EQ(a["results"].size(), events.size());
  EXPECT_EQ(a["results"][0].value("result", ""), "accepted");
  EXPECT_EQ(a["results"][0].value("messageId", ""), "ev-0");
  EXPECT_EQ(a["results"][0].value("consent", ""), "granted");
  EXPECT_EQ(a["results"][denied_at].value("result", ""), "dropped");
  EXPECT_EQ(a["results"][pending_at].value("consent", ""), "pending");
  EXPECT_EQ(a["results"][bad_type_at].value("result", ""), "invalid");
  EXPECT_NE(a["results"][bad_type_at].value("reason", "").find("alias"), std::string::npos);
  EXPECT_NE(a["results"][no_name_at].value("reason", "").find("event is required"), std::string::npos);
  EXPECT_NE(a["results"][unknown_at].value("reason", "").find("propertes"), std::string::npos);
  EXPECT_EQ(a["results"][necessary_at].value("result", ""), "forbidden");
  EXPECT_NE(a["results"][necessary_at].value("reason", "").find("necessary_events"), std::string::npos);

  auto viasock = AgentHttp("POST", "http://agent/v1/events",
                           R"({"events":[{"type":"track","event":"s","messageId":"ev-sock"}]})", {}, sock);
  ASSERT_EQ(viasock.status, 200) << viasock.body;
  EXPECT_EQ(viasock.Json().value("accepted", -1), 1);
  want.insert("ev-sock");

  // A body that is not a list of events is refused as a whole, and nothing of it is stored.
  EXPECT_EQ(AgentHttp("POST", agent->url() + "/v1/events", R"({"events":[]})").status, 400);
  EXPECT_EQ(AgentHttp("POST", agent->url() + "/v1/events", R"({"batch":[{"type":"track","event":"b"}]})").status, 400);
  Json many = Json::array();
  for (int i = 0; i < 1001; ++i)
    many.push_back({{"type", "track"}, {"event", "m"}, {"messageId", "many-" + std::to_string(i)}});
  auto over = AgentHttp("POST", agent->url() + "/v1/events", Json{{"events", many}}.dump());
  EXPECT_EQ(over.status, 413) << over.body;

  auto got = WaitForIds(*collector, want);
  for (const auto& id : want) EXPECT_EQ(got[id], 1) << id;
  for (const char* id : {"ev-denied", "ev-pending", "ev-alias", "ev-noname", "ev-typo", "ev-nec", "many-0"}) {
    EXPECT_EQ(got.count(id), 0u) << id;
  }
  std::string sample = Body(*collector, "ev-7");
  EXPECT_NE(sample.find("[email]"), std::string::npos) << sample;
  EXPECT_EQ(sample.find("example.com"), std::string::npos) << sample;
  EXPECT_EQ(Body(*collector, "ev-ident").find("13812345678"), std::string::npos);
}

TEST(AgentCollector, CollectorDownForAWhileThenBackLosesNothing) {
  std::string err;
  auto collector = CollectorProcess::Start({}, &err);
  ASSERT_NE(collector, nullptr) << err;
  auto agent = AgentProcess::Start(AgentConfigFor(*collector), &err);
  ASSERT_NE(agent, nullptr) << err;
  ASSERT_EQ(collector->Stop(), 0);

  std::set<std::string> ids;
  AgentHttpClient http;
  for (int i = 0; i < 200; ++i) {
    std::string id = "down-" + std::to_string(i);
    auto r = http.Request("POST", agent->url() + "/v1/track",
                          Json({{"event", "offline_sale"}, {"messageId", id}, {"properties", {{"n", i}}}}).dump());
    ASSERT_EQ(r.status, 200) << r.body;
    ids.insert(id);
  }
  // The agent retries against the closed port meanwhile: each failed attempt is logged, then counted.
  Watch log;
  log.Path(agent->dir() + "/agent.log");
  std::string metrics;
  WaitFor(
      [&] {
        metrics = AgentHttp("GET", agent->url() + "/metrics").body;
        return CollectorProcess::MetricValue(metrics, "ferry_agent_pipeline_retries_total") > 0;
      },
      &log);
  EXPECT_GT(CollectorProcess::MetricValue(metrics, "ferry_agent_pipeline_retries_total"), 0) << metrics;
  ASSERT_TRUE(collector->Restart(&err)) << err;
  auto got = WaitForIds(*collector, ids, 120);
  for (const auto& id : ids) EXPECT_EQ(got[id], 1) << id;
  EXPECT_EQ(got.size(), ids.size() + kDefaultRecords);
}

TEST(AgentCollector, KilledWithSigkillAndRestartedLosesNothingAndDoublesNothing) {
  std::string err;
  auto collector = CollectorProcess::Start({}, &err);
  ASSERT_NE(collector, nullptr) << err;
  auto agent = AgentProcess::Start(AgentConfigFor(*collector), &err);
  ASSERT_NE(agent, nullptr) << err;
  const std::string url = agent->url();

  constexpr int kThreads = 3, kPerThread = 300;
  // What the callers saw, for the test to wait on: answers, refused attempts, and the agent's generation (a caller
  // refused by a dead agent waits for the next one instead of spinning).
  std::mutex mu;
  std::condition_variable changed;
  int accepted = 0, retried = 0, generation = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AgentHttpClient http;
      for (int i = 0; i < kPerThread; ++i) {
        std::string body = Json({{"event", "tap"},
                                 {"messageId", "k" + std::to_string(t) + "-" + std::to_string(i)},
                                 {"properties", {{"i", i}}}})
                               .dump();
        // A caller that keeps its messageId and retries until the agent answers 200.
        for (int attempt = 0; attempt < 600; ++attempt) {
          std::unique_lock<std::mutex> l(mu);
          int seen = generation;
          l.unlock();
          auto r = http.Request("POST", url + "/v1/track", body);
          if (r.status == 200) break;
          l.lock();
          retried++;
          changed.notify_all();
          changed.wait_for(l, std::chrono::seconds(1), [&] { return generation != seen; });
        }
        std::lock_guard<std::mutex> l(mu);
        accepted++;
        changed.notify_all();
      }
    });
  }
  auto until = [&](const std::function<bool()>& done) {
    std::unique_lock<std::mutex> l(mu);
    return changed.wait_for(l, std::chrono::minutes(2), done);
  };
  EXPECT_TRUE(until([&] { return accepted >= kThreads * kPerThread / 3; }));
  agent->Kill();
  // Restarted once a caller has been refused by the dead agent.
  EXPECT_TRUE(until([&] { return retried > 0; })) << "the kill should have interrupted some callers";
  ASSERT_TRUE(agent->Restart(&err)) << err;
  {
    std::lock_guard<std::mutex> l(mu);
    generation++;
    changed.notify_all();
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(retried, 0) << "the kill should have interrupted some callers";

  std::set<std::string> ids;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) ids.insert("k" + std::to_string(t) + "-" + std::to_string(i));
  }
  auto got = WaitForIds(*collector, ids, 120);
  for (const auto& id : ids) EXPECT_EQ(got[id], 1) << id;
  EXPECT_EQ(got.size(), ids.size() + kDefaultRecords);
  EXPECT_EQ(collector->DumpEvents().size(), ids.size() + kDefaultRecords);
}

TEST(AgentCollector, SighupReloadsAGoodConfigKeepsTheOldOnABadOneAndSigtermExitsZero) {
  std::string err;
  auto collector = CollectorProcess::Start({}, &err);
  ASSERT_NE(collector, nullptr) << err;
  Json cfg = AgentConfigFor(*collector);
  auto agent = AgentProcess::Start(cfg, &err);
  ASSERT_NE(agent, nullptr) << err;

  auto track = [&](const std::string& purpose) {
    return AgentHttp("POST", agent->url() + "/v1/track", Json({{"event", "e"}, {"purpose", purpose}}).dump())
        .Json()
        .value("result", "");
  };
  EXPECT_EQ(track("marketing"), "dropped");

  agent->WriteConfig("{\"storage\": ");  // broken
  agent->Signal(SIGHUP);
  WaitForLog(*agent, "reload refused");
  EXPECT_NE(agent->Log().find("reload refused"), std::string::npos) << agent->Log();
  EXPECT_NE(agent->Log().find("agent.json: not valid JSON"), std::string::npos) << agent->Log();
  EXPECT_EQ(track("marketing"), "dropped") << "the running config must stay";

  cfg["consent"]["marketing"] = "granted";
  cfg["listen"] = "127.0.0.1:" + std::to_string(agent->port());
  cfg["port_file"] = agent->dir() + "/agent.port";
  cfg["storage"] = {{"path", agent->dir() + "/buffer.db"}};
  agent->WriteConfig(cfg.dump());
  agent->Signal(SIGHUP);
  WaitForLog(*agent, "config reloaded");
  ASSERT_NE(agent->Log().find("config reloaded"), std::string::npos) << agent->Log();
  EXPECT_EQ(track("marketing"), "accepted");
  auto metrics = AgentHttp("GET", agent->url() + "/metrics");
  EXPECT_EQ(CollectorProcess::MetricValue(metrics.body, "ferry_agent_reloads_total{result=\"ok\"}"), 1);

  EXPECT_EQ(agent->Stop(), 0);
  EXPECT_NE(agent->Log().find("SIGTERM"), std::string::npos);
  // The shutdown flush delivered the marketing event.
  bool found = false;
  for (const auto& e : collector->DumpEvents()) found |= e.value("purpose", "") == "marketing";
  EXPECT_TRUE(found);
}

TEST(AgentCollector, BadConfigIsRefusedAtStartWithFileKeyAndReason) {
  char tmpl[] = "/tmp/ferry-agent-bad-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string out;
  {
    std::ofstream(dir + "/agent.json")
        << R"({"listen": "127.0.0.1:0", "batch": {"size": 0}, "storage": {"path": "b.db"}})";
  }
  int rc =
      ferry::testsupport::RunCommand(ferry::testsupport::AgentBinary() + " --config " + dir + "/agent.json 2>&1", &out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find(dir + "/agent.json: batch.size: must be between 1 and 1000"), std::string::npos) << out;
  { std::ofstream(dir + "/agent.json") << R"({"listen": "0.0.0.0:8787", "storage": {"path": "b.db"}})"; }
  rc =
      ferry::testsupport::RunCommand(ferry::testsupport::AgentBinary() + " --config " + dir + "/agent.json 2>&1", &out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("listen: a non-loopback address (0.0.0.0) needs tls.cert and tls.key"), std::string::npos) << out;
  rc = ferry::testsupport::RunCommand(ferry::testsupport::AgentBinary() + " --help", &out);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("--config"), std::string::npos) << out;
  (void)std::system(("rm -rf " + dir).c_str());
}

}  // namespace
