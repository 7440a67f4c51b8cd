// The Agent's answers with a real encrypted buffer (read back with its key after shutdown), and its HTTP front in
// process: token, Unix socket, zstd bodies, limits, consent from the socket.
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/http_front.h"
#include "lib/base/clock.h"
#include "lib/base/time.h"
#include "lib/wire/codec.h"
#include "sdk/core/buffer.h"
#include "tests/support/power_cut_vfs.h"

namespace {

using ferry::agent::Agent;
using ferry::agent::AgentConfig;
using Json = nlohmann::json;

// The one error body ({"error", "code"}) and the local API's own members ("result", "reason" = "error").
void ExpectErrorBody(const std::string& body, const std::string& code, const std::string& result) {
  Json j = Json::parse(body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << body;
  EXPECT_EQ(j.value("code", ""), code) << body;
  EXPECT_EQ(j.value("result", ""), result) << body;
  EXPECT_FALSE(j.value("error", "").empty()) << body;
  EXPECT_EQ(j.value("error", ""), j.value("reason", "?")) << body;
}

class AgentApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-agent-unit-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)std::system(("rm -rf " + dir_).c_str()); }

  // Config() sets two defaults (analytics granted, marketing denied): the agent records each at its first start as a
  // consent record (method "default", issue 12), kept in the buffer like any event.
  static constexpr size_t kDefaultRecords = 2;
  AgentConfig Config(const std::string& extra = "") {
    std::string text = R"({"listen": "127.0.0.1:0", "storage": {"path": "buffer.db"},
        "consent": {"analytics": "granted", "marketing": "denied"}, "threads": 4)" +
                       extra + "}";
    auto r = ferry::agent::ParseConfig(text, dir_ + "/agent.json");
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r.value() : AgentConfig();
  }
  std::unique_ptr<Agent> Open(const AgentConfig& cfg) {
    auto a = Agent::Open(cfg, ferry::base::Logger());
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? std::move(a).value() : nullptr;
  }
  // Every event in the buffer (after the agent is shut down), parsed.
  std::vector<Json> Buffered(const AgentConfig& cfg) {
    auto key = ferry::agent::LoadBufferKey(cfg);
    EXPECT_TRUE(key.ok());
    auto store = ferry::core::Buffer::Open(cfg.storage_path, key.value(), ferry::base::Logger());
    EXPECT_TRUE(store.ok());
    std::vector<Json> out;
    auto batch = (*store)->NextBatch({"analytics", "marketing", "personalization", "necessary"}, 10000, 1u << 30);
    EXPECT_TRUE(batch.ok());
    for (const auto& e : batch.value()) out.push_back(Json::parse(e.body, nullptr, false));
    return out;
  }
  static Json Find(const std::vector<Json>& evs, const std::string& message_id) {
    for (const auto& e : evs) {
      if (e.value("messageId", "") == message_id) return e;
    }
    return Json();
  }

  std::string dir_;
};

TEST_F(AgentApiTest, EventAnswersSayWhatHappenedAndTheBufferHoldsMaskedEvents) {
  // personalization is pending: its events are held only because this config opts in (issue 12 item 7).
  AgentConfig cfg = Config(R"(, "hold_pending_ms": {"personalization": 86400000})");
  auto agent = Open(cfg);
  ASSERT_NE(agent, nullptr);
  auto a = agent->Event("track", R"({"event": "signup", "messageId": "m-1", "userId": "u-7",
      "timestamp": "2026-01-02T03:04:05.678Z",
      "properties": {"email": "li.wei@example.com", "password": "hunter2", "plan": "pro"}})");
  EXPECT_EQ(a.status, 200) << a.body;
  Json j = Json::parse(a.body);
  EXPECT_EQ(j["result"], "accepted");
  EXPECT_EQ(j["messageId"], "m-1");
  EXPECT_EQ(j["consent"], "granted");

  a = agent->Event("track", R"({"event": "ad_click", "purpose": "marketing"})");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(Json::parse(a.body)["result"], "dropped");
  a = agent->Event("track", R"({"event": "suggestion", "purpose": "personalization", "messageId": "m-p"})");
  EXPECT_EQ(Json::parse(a.body)["consent"], "pending");
  a = agent->Event("screen", R"({"name": "Checkout", "messageId": "m-s"})");
  EXPECT_EQ(a.status, 200) << a.body;
  a = agent->Event("identify", R"({"userId": "u-7", "traits": {"phone": "13812345678"}, "messageId": "m-i"})");
  EXPECT_EQ(a.status, 200) << a.body;

  struct Case {
    const char* type;
    const char* body;
    const char* reason_part;
  };
  for (const Case& c :
       {Case{"track", R"({"evnt": "x"})", "unknown key 'evnt'"},
        Case{"track", R"({"properties": {}})", "event is required"},
        Case{"track", R"({"event": "x", "properties": [1]})", "properties must be a JSON object"},
        Case{"track", R"({"event": "x", "timestamp": "yesterday"})", "timestamp is not ISO 8601"},
        Case{"track", R"({"event": "x", "purpose": "Ads!"})", "invalid purpose"},
        Case{"track", R"({"event": ""})", "event must be 1-200 bytes"}, Case{"track", "[1,2]", "must be a JSON object"},
        Case{"track", "{\"event\": \"x\"", "not valid JSON"},
        Case{"identify", R"({"traits": {}})", "userId is required"},
        Case{"screen", R"({"name": "x", "purpose": "marketing"})", "unknown key 'purpose'"}}) {
    a = agent->Event(c.type, c.body);
    EXPECT_EQ(a.status, 400) << c.body;
    EXPECT_NE(a.body.find(c.reason_part), std::string::npos) << c.body << " -> " << a.body;
  }
  std::string deep(100, '[');
  a = agent->Event("track", "{\"event\": \"x\", \"properties\": {\"a\": " + deep + "}}");
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(a.body.find("nests deeper"), std::string::npos) << a.body;

  ASSERT_TRUE(agent->Shutdown(1000).ok());
  auto evs = Buffered(cfg);
  EXPECT_EQ(evs.size(), 4u + kDefaultRecords);  // signup, suggestion (pending), screen, identify
  Json signup = Find(evs, "m-1");
  ASSERT_TRUE(signup.is_object());
  EXPECT_EQ(signup["properties"]["email"], "[email]");
  EXPECT_FALSE(signup["properties"].contains("password"));
  EXPECT_EQ(signup["properties"]["plan"], "pro");
  EXPECT_EQ(signup["userId"], "u-7");
  EXPECT_FALSE(signup.contains("anonymousId")) << "per-call ids only";
  EXPECT_EQ(signup["timestamp"], "2026-01-02T03:04:05.678Z");
  EXPECT_EQ(signup["context"]["app"]["name"], "ferry-agent") << signup.dump();
  Json screen = Find(evs, "m-s");
  EXPECT_TRUE(screen.contains("anonymousId")) << "no caller ids: the device's anonymousId";
  EXPECT_EQ(Find(evs, "m-i")["traits"]["phone"], "[phone]");
  EXPECT_EQ(Find(evs, "m-p")["purpose"], "personalization");
}

// A 200 means the event is on the disk: the power goes right after the answers (four callers at once, their events
// committed together), and every answered event is in the buffer the disk kept.
TEST_F(AgentApiTest, AnsweredEventsSurviveAPowerCut) {
  AgentConfig cfg = Config();
  constexpr int kCallers = 4, kEach = 15;
  {
    ferry::testsupport::PowerCutVfs vfs;
    ASSERT_TRUE(vfs.installed());
    auto agent = Open(cfg);
    ASSERT_NE(agent, nullptr);
    std::vector<std::thread> callers;
    std::atomic<int> answered{0};
    for (int t = 0; t < kCallers; ++t) {
      callers.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          std::string id = "p-" + std::to_string(t) + "-" + std::to_string(i);
          auto a = agent->Event("track", R"({"event": "paid", "messageId": ")" + id + R"("})");
          if (a.status == 200) ++answered;
        }
      });
    }
    for (std::thread& c : callers) c.join();
    ASSERT_EQ(answered.load(), kCallers * kEach);
    vfs.Cut();
    (void)agent->Shutdown(1000);  // with the power off: nothing it writes now reaches the file
    agent.reset();
    ASSERT_GT(vfs.files_opened(), 0u) << "the agent's buffer did not run on the power-cut VFS";
    ASSERT_EQ(vfs.Revert(), "");
  }
  auto evs = Buffered(cfg);
  for (int t = 0; t < kCallers; ++t) {
    for (int i = 0; i < kEach; ++i) {
      std::string id = "p-" + std::to_string(t) + "-" + std::to_string(i);
      EXPECT_TRUE(Find(evs, id).is_object()) << id << " was answered 200 and lost";
    }
  }
}

TEST_F(AgentApiTest, BatchForwardingKeepsIdsCorrectsClockAndReportsEachRejection) {
  AgentConfig cfg = Config();
  auto agent = Open(cfg);
  ASSERT_NE(agent, nullptr);
  int64_t now = ferry::base::NowMs();
  std::string sent_at = ferry::base::FormatIso8601(now - 3600 * 1000);  // the sender's clock is 1 h behind
  std::string ts = ferry::base::FormatIso8601(now - 3600 * 1000 - 5000);
  Json batch = {{"sentAt", sent_at},
                {"dropped", {{"evicted", 3}}},
                {"batch",
                 {{{"messageId", "b-0"},
                   {"type", "track"},
                   {"event", "a"},
                   {"anonymousId", "dev-1"},
                   {"timestamp", ts},
                   {"purpose", "analytics"},
                   {"properties", {{"mail", "zhang.san@example.com"}}}},
                  {{"messageId", "b-1"}, {"type", "track"}, {"anonymousId", "dev-1"}, {"timestamp", ts}},
                  {{"messageId", "b-2"},
                   {"type", "track"},
                   {"event", "ad"},
                   {"anonymousId", "dev-1"},
                   {"timestamp", ts},
                   {"purpose", "marketing"}},
                  {{"messageId", "b-3"},
                   {"type", "consent"},
                   {"anonymousId", "dev-1"},
                   {"timestamp", ts},
                   {"purpose", "necessary"},
                   {"properties", {{"purpose", "analytics"}, {"state", "granted"}, {"previous", "pending"}}}}}}};
  auto a = agent->Batch(batch.dump(), now);
  ASSERT_EQ(a.status, 200) << a.body;
  Json j = Json::parse(a.body);
  EXPECT_EQ(j["accepted"], 2);
  ASSERT_EQ(j["rejected"].size(), 2u) << a.body;
  EXPECT_EQ(j["rejected"][0]["index"], 1);
  EXPECT_EQ(j["rejected"][0]["messageId"], "b-1");
  EXPECT_EQ(j["rejected"][1]["index"], 2);
  EXPECT_NE(j["rejected"][1]["reason"].get<std::string>().find("consent_denied"), std::string::npos);

  EXPECT_EQ(agent->Batch(R"({"batch": 5})", now).status, 400);
  Json big = {{"batch", Json::array()}};
  for (int i = 0; i < 1001; ++i) big["batch"].push_back(Json::object());
  EXPECT_EQ(agent->Batch(big.dump(), now).status, 413);

  ASSERT_TRUE(agent->Shutdown(1000).ok());
  auto evs = Buffered(cfg);
  ASSERT_EQ(evs.size(), 2u + kDefaultRecords);
  Json b0 = Find(evs, "b-0");
  EXPECT_EQ(b0["anonymousId"], "dev-1");
  EXPECT_EQ(b0["properties"]["mail"], "[email]");
  EXPECT_EQ(b0["timestamp"], ferry::base::FormatIso8601(now - 5000)) << "corrected by the sender's clock skew";
  EXPECT_EQ(Find(evs, "b-3")["properties"]["state"], "granted") << "consent records are kept as sent";
}

TEST_F(AgentApiTest, DeviceConsentIsRecordedAndPersisted) {
  AgentConfig cfg = Config();
  {
    auto agent = Open(cfg);
    ASSERT_NE(agent, nullptr);
    auto a = agent->PutConsent("marketing", R"({"state": "granted"})");
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(Json::parse(a.body)["previous"], "denied");
    EXPECT_EQ(agent->PutConsent("marketing", R"({"state": "maybe"})").status, 400);
    EXPECT_EQ(agent->PutConsent("necessary", R"({"state": "denied"})").status, 400);
    EXPECT_EQ(agent->PutConsent("Bad Purpose", R"({"state": "granted"})").status, 400);
    EXPECT_EQ(Json::parse(agent->Event("track", R"({"event": "ad", "purpose": "marketing"})").body)["result"],
              "accepted");
    ASSERT_TRUE(agent->Shutdown(1000).ok());
  }
  auto evs = Buffered(cfg);
  bool record = false;
  for (const auto& e : evs) {
    if (e.value("type", "") == "consent" && e["properties"]["purpose"] == "marketing" &&
        e["properties"]["state"] == "granted" && e["properties"]["previous"] == "denied") {
      record = e["purpose"] == "necessary";
    }
  }
  EXPECT_TRUE(record);
  auto agent = Open(cfg);
  ASSERT_NE(agent, nullptr);
  Json c = Json::parse(agent->GetConsent().body)["consent"];
  EXPECT_EQ(c["marketing"], "granted");
  EXPECT_EQ(c["analytics"], "granted");
  EXPECT_EQ(c["sensitive"], "pending");
  EXPECT_EQ(c["necessary"], "granted");
}

// Issue 12 item 7: a pending purpose's events are dropped unless hold_pending_ms holds that purpose; a reload turns
// the hold on or off at once, and off drops what was held.
TEST_F(AgentApiTest, APendingPurposesEventsAreDroppedUnlessTheConfigHoldsThem) {
  AgentConfig cfg = Config();
  auto agent = Open(cfg);
  ASSERT_NE(agent, nullptr);
  auto a = agent->Event("track", R"({"event": "suggestion", "purpose": "personalization", "messageId": "m-1"})");
  EXPECT_EQ(a.status, 200) << a.body;
  Json j = Json::parse(a.body);
  EXPECT_EQ(j["result"], "dropped");
  EXPECT_NE(j["reason"].get<std::string>().find("pending"), std::string::npos) << a.body;
  // Forwarded (POST /v1/batch): rejected the same way.
  Json batch = {{"sentAt", ferry::base::FormatIso8601(ferry::base::NowMs())},
                {"batch",
                 {{{"messageId", "m-2"},
                   {"type", "track"},
                   {"event", "suggestion"},
                   {"anonymousId", "anon-1"},
                   {"purpose", "personalization"},
                   {"timestamp", ferry::base::FormatIso8601(ferry::base::NowMs())}}}}};
  a = agent->Batch(batch.dump(), ferry::base::NowMs());
  EXPECT_EQ(a.status, 200) << a.body;
  j = Json::parse(a.body);
  EXPECT_EQ(j["accepted"], 0) << a.body;
  ASSERT_EQ(j["rejected"].size(), 1u) << a.body;
  EXPECT_EQ(j["rejected"][0]["reason"].get<std::string>().rfind("consent_denied: ", 0), 0u) << a.body;
  std::string metrics = agent->Metrics();
  EXPECT_NE(metrics.find("ferry_agent_pipeline_dropped_pending_total 2\n"), std::string::npos) << metrics;

  // Held from a reload on: accepted while pending.
  AgentConfig held = Config(R"(, "hold_pending_ms": {"personalization": 86400000})");
  ASSERT_TRUE(agent->Reload(held).ok());
  a = agent->Event("track", R"({"event": "suggestion", "purpose": "personalization", "messageId": "m-3"})");
  j = Json::parse(a.body);
  EXPECT_EQ(j["result"], "accepted") << a.body;
  EXPECT_EQ(j["consent"], "pending") << a.body;
  // A sensitive event is refused whatever the config says (the config cannot hold it: agent_config_test).
  a = agent->Event("track", R"({"event": "glucose", "purpose": "sensitive"})");
  EXPECT_EQ(Json::parse(a.body)["result"], "dropped") << a.body;
  ASSERT_TRUE(agent->Shutdown(1000).ok());
  EXPECT_TRUE(Find(Buffered(cfg), "m-3").is_object());
  EXPECT_FALSE(Find(Buffered(cfg), "m-1").is_object());

  // Opened again without the hold: what was held is dropped at once.
  agent = Open(cfg);
  ASSERT_NE(agent, nullptr);
  EXPECT_NE(agent->Metrics().find("ferry_agent_pipeline_dropped_pending_total 1\n"), std::string::npos);
  ASSERT_TRUE(agent->Shutdown(1000).ok());
  EXPECT_FALSE(Find(Buffered(cfg), "m-3").is_object());
}

TEST_F(AgentApiTest, ReloadAppliesPipelineSettingsAndKeepsTheBufferPath) {
  AgentConfig cfg = Config(R"(, "hold_pending_ms": {"personalization": 86400000})");  // held while pending
  auto agent = Open(cfg);
  ASSERT_NE(agent, nullptr);
  EXPECT_EQ(Json::parse(agent->Event("track", R"({"event": "p", "purpose": "personalization"})").body)["consent"],
            "pending");
  AgentConfig next = Config(R"(, "pii_rules": {"detectors": {"email": "mask"}})");
  next.default_consent["personalization"] = ferry::core::Consent::kGranted;
  next.storage_path = dir_ + "/elsewhere.db";
  ASSERT_TRUE(agent->Reload(next).ok());
  EXPECT_EQ(agent->config().storage_path, cfg.storage_path);
  EXPECT_EQ(Json::parse(agent->Event("track", R"({"event": "p", "purpose": "personalization"})").body)["consent"],
            "granted");
  agent->Event("track", R"({"event": "m", "messageId": "after", "properties": {"e": "li.wei@example.com"}})");
  EXPECT_NE(agent->Metrics().find("ferry_agent_reloads_total{result=\"ok\"} 1"), std::string::npos);
  ASSERT_TRUE(agent->Shutdown(1000).ok());
  EXPECT_EQ(Find(Buffered(cfg), "after")["properties"]["e"], "l***@example.com");
}

TEST_F(AgentApiTest, HttpFrontTokenUnixSocketEncodingsAndLimits) {
  // The test's own uid may change consent over the socket (SO_PEERCRED).
  AgentConfig cfg =
      Config(R"(, "local_token": "tok-0123456789abcdef", "unix_socket": {"path": "a.sock", "consent_uids": [)" +
             std::to_string(getuid()) + R"(]}, "limits": {"max_body_bytes": 4096})");
  auto agent = Open(cfg);
  ASSERT_NE(agent, nullptr);
  ferry::agent::HttpFront front(agent.get(), ferry::base::Logger());
  ASSERT_TRUE(front.Bind(cfg).ok());

  httplib::Client tcp("127.0.0.1", front.tcp_port());
  auto r = tcp.Post("/v1/track", R"({"event": "x"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  ExpectErrorBody(r->body, "unauthenticated", "unauthorized");
  httplib::Headers auth = {{"Authorization", "Bearer tok-0123456789abcdef"}};
  r = tcp.Post("/v1/track", auth, R"({"event": "x"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = tcp.Get("/healthz");  // loopback: no token needed
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  httplib::Headers zstd = auth;
  zstd.emplace("Content-Encoding", "zstd");
  r = tcp.Post("/v1/track", zstd, ferry::wire::ZstdCompress(R"({"event": "compressed"})"), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  std::string bomb = ferry::wire::ZstdCompress("{\"event\": \"x\", \"p\": \"" + std::string(6u << 20, 'a') + "\"}");
  ASSERT_LT(bomb.size(), 4096u);
  r = tcp.Post("/v1/track", zstd, bomb, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << "decoding stops at limits.max_decoded_bytes";
  httplib::Headers br = auth;
  br.emplace("Content-Encoding", "compress");
  r = tcp.Post("/v1/track", br, "xx", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 415);
  ExpectErrorBody(r->body, "invalid_argument", "invalid");
  httplib::Headers page = auth;
  page.emplace("Origin", "https://ads.example");
  r = tcp.Post("/v1/track", page, R"({"event": "x"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  ExpectErrorBody(r->body, "permission_denied", "forbidden");
  httplib::Client tcp2("127.0.0.1", front.tcp_port());
  r = tcp2.Post("/v1/track", auth, "{\"event\": \"" + std::string(8000, 'a') + "\"}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);

  // The socket: trusted by its file mode (no token), and consent may be changed from it by an allowed uid.
  httplib::Client sock(dir_ + "/a.sock");
  sock.set_address_family(AF_UNIX);
  r = sock.Post("/v1/screen", R"({"name": "Home"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = sock.Put("/v1/consent/marketing", R"({"state": "granted"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = sock.Get("/v1/consent");
  ASSERT_TRUE(r);
  EXPECT_EQ(Json::parse(r->body)["consent"]["marketing"], "granted");
  r = sock.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("ferry_agent_requests_total{route=\"track\",code=\"401\"} 1"), std::string::npos) << r->body;
  front.Stop();
  EXPECT_TRUE(agent->Shutdown(1000).ok());
}

// Every error answer carries the one error body of the collector and the agent ({"error", "code"}, docs/PROTOCOL.md)
// next to the members the local API always had ("result", "reason"; "status" on /healthz).
TEST_F(AgentApiTest, ErrorAnswersCarryTheOneErrorBody) {
  AgentConfig cfg = Config();
  auto agent = Open(cfg);
  ASSERT_NE(agent, nullptr);
  auto body = [](const ferry::agent::Answer& a) { return Json::parse(a.body, nullptr, false); };

  auto a = agent->Event("track", R"({"evnt": "x"})");
  EXPECT_EQ(a.status, 400);
  ExpectErrorBody(a.body, "invalid_argument", "invalid");
  EXPECT_NE(body(a)["error"].get<std::string>().find("unknown key 'evnt'"), std::string::npos) << a.body;

  a = agent->Batch(R"({"batch": 5})", 0);
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(body(a)["code"], "invalid_argument");
  EXPECT_EQ(body(a)["error"], "batch must be a list of events");
  Json big = {{"batch", Json::array()}};
  for (int i = 0; i < 1001; ++i) big["batch"].push_back(Json::object());
  a = agent->Batch(big.dump(), 0);
  EXPECT_EQ(a.status, 413);
  EXPECT_EQ(body(a)["code"], "resource_exhausted");

  a = agent->PutConsent("marketing", R"({"state": "maybe"})");
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(body(a)["code"], "invalid_argument");

  // Stopped: 503 with Retry-After, the code says why.
  ASSERT_TRUE(agent->Shutdown(1000).ok());
  a = agent->Event("track", R"({"event": "late"})");
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.retry_after_s, 1);
  EXPECT_EQ(body(a)["code"], "unavailable");
  EXPECT_EQ(body(a)["result"], "error");
  a = agent->Health();
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(body(a)["status"], "stopping");
  EXPECT_EQ(body(a)["code"], "closed");
}

// The agent's times come from its clock: the start time in /metrics, and the receive time that corrects a forwarded
// batch for the sender's clock (taken by the HTTP front when the request arrives).
TEST_F(AgentApiTest, TimesComeFromTheInjectedClock) {
  AgentConfig cfg = Config(R"(, "forward_token": "fwd-0123456789abcdef")");
  // Today on a manual clock (events far in the past would meet the buffer's age limit).
  ferry::base::ManualClock clock((ferry::base::NowMs() / 1000) * 1000);
  auto opened = Agent::Open(cfg, ferry::base::Logger(), &clock);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto agent = std::move(opened).value();
  const int64_t start = clock.NowMs();
  EXPECT_NE(agent->Metrics().find("ferry_agent_start_time_seconds " + std::to_string(start / 1000) + "\n"),
            std::string::npos)
      << agent->Metrics();

  ferry::agent::HttpFront front(agent.get(), ferry::base::Logger());
  ASSERT_TRUE(front.Bind(cfg).ok());
  httplib::Client tcp("127.0.0.1", front.tcp_port());
  // The sender's clock is 1 h behind; its event happened 5 s before it sent.
  auto forward = [&](const std::string& id) {
    int64_t sender_now = clock.NowMs() - 3600 * 1000;
    Json b = {{"sentAt", ferry::base::FormatIso8601(sender_now)},
              {"batch",
               {{{"messageId", id},
                 {"type", "track"},
                 {"event", "e"},
                 {"anonymousId", "dev-1"},
                 {"purpose", "analytics"},
                 {"timestamp", ferry::base::FormatIso8601(sender_now - 5000)}}}}};
    auto r = tcp.Post("/v1/batch", {{"Authorization", "Bearer fwd-0123456789abcdef"}}, b.dump(), "application/json");
    return r ? r->status : 0;
  };
  ASSERT_EQ(forward("t-1"), 200);
  // An event sent without a messageId gets a UUIDv7 of the agent's clock (its first 48 bits the time in ms), as the
  // SDK makes them: later ids sort after earlier ones, one through POST /v1/events too.
  auto made_id = [&](const std::string& route) {
    const std::string ev = R"("event": "e", "anonymousId": "dev-1", "purpose": "analytics"})";
    auto r = tcp.Post(route, route == "/v1/events" ? R"({"events": [{"type": "track", )" + ev + "]}" : "{" + ev,
                      "application/json");
    if (!r || r->status != 200) return std::string("status ") + std::to_string(r ? r->status : 0);
    Json j = Json::parse(r->body, nullptr, false);
    if (j.is_object() && j.contains("results") && j["results"].is_array() && !j["results"].empty()) j = j["results"][0];
    return j.is_object() ? j.value("messageId", std::string("no messageId: ") + r->body) : "not JSON: " + r->body;
  };
  auto v7_ms = [](const std::string& id) {
    if (id.size() != 36 || id[14] != '7') return int64_t{-1};
    return static_cast<int64_t>(std::stoll(id.substr(0, 8) + id.substr(9, 4), nullptr, 16));
  };
  const std::string id1 = made_id("/v1/track");
  EXPECT_EQ(v7_ms(id1), clock.NowMs()) << id1;
  clock.Advance(90 * 1000);
  ASSERT_EQ(forward("t-2"), 200);
  const std::string id2 = made_id("/v1/events");
  EXPECT_EQ(v7_ms(id2), clock.NowMs()) << id2;
  EXPECT_LT(id1, id2);
  front.Stop();
  ASSERT_TRUE(agent->Shutdown(1000).ok());
  auto evs = Buffered(cfg);
  EXPECT_EQ(Find(evs, "t-1")["timestamp"], ferry::base::FormatIso8601(start - 5000));
  EXPECT_EQ(Find(evs, "t-2")["timestamp"], ferry::base::FormatIso8601(start + 90 * 1000 - 5000));
}

}  // namespace
