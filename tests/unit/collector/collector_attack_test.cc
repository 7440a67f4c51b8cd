// The real ferry-collector under the connection and framing attacks of issue 11 (items 3, 4 and 13), each with real
// processes and raw sockets that write the exact bytes an attacker would:
//   - 2,000 idle and 200 trickling connections open (plain and TLS): a real batch is still stored and answered;
//   - 16 connections flooding header lines: 431 before authentication, the collector's RSS stays below 100 MB above
//     its baseline during the flood and comes back near it afterwards;
//   - two, negative or huge Content-Length fields, "Transfer-Encoding: identity, chunked" and a gzip body with a cut
//     trailer: 400, nothing stored; too many header fields: 431 without a write key;
//   - the connection cap: the connection over it gets 503 with Retry-After; a request that does not arrive whole
//     within its deadline gets 408;
//   - /metrics on a loopback listener of its own (--metrics-listen); the main listener then wants an operator token.
// Latencies are printed, never asserted (speed is measured in tests/bench).
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "lib/base/time.h"
#include "tests/support/collector_process.h"
#include "tests/support/gzip.h"
#include "tests/unit/collector/attack.h"
#include "tests/unit/httpd/test_util.h"

namespace ferry::testsupport {
namespace {

using attack::BatchRequest;
using httpd::testing::Conn;
using httpd::testing::RawResponse;
using httpd::testing::WaitUntil;
using Json = nlohmann::json;

std::string Batch(const std::string& message_id) {
  Json e = {{"messageId", message_id},
            {"type", "track"},
            {"event", "Signed Up"},
            {"anonymousId", "anon-attack"},
            {"timestamp", base::FormatIso8601(base::NowMs())},
            {"purpose", "analytics"}};
  return Json{{"sentAt", base::FormatIso8601(base::NowMs())}, {"batch", Json::array({e})}}.dump();
}

bool Stored(const CollectorProcess& c, const std::string& message_id) {
  for (const auto& e : c.DumpEvents()) {
    if (e.value("messageId", "") == message_id) return true;
  }
  return false;
}

std::unique_ptr<CollectorProcess> StartCollector(bool tls, std::vector<std::string> args = {}) {
  CollectorOptions o;
  o.tls = tls;
  o.extra_args = std::move(args);
  std::string err;
  auto c = CollectorProcess::Start(o, &err);
  EXPECT_TRUE(c) << err;
  return c;
}

// One request on a fresh connection, its answer (nullopt: none came).
std::optional<RawResponse> Exchange(int port, const std::string& request) {
  auto c = Conn::Tcp(port, "127.0.0.1", 10000);
  if (!c || !c->Send(request)) return std::nullopt;
  return c->Read();
}

constexpr int kIdle = 2000;
constexpr int kTrickling = 200;

void IdleAndTricklingThenABatch(bool tls) {
  if (httpd::testing::RaiseFileLimit() < 2 * (kIdle + kTrickling) + 500) {
    GTEST_SKIP() << "the file descriptor limit is too low for this test";
  }
  // Deadlines stretched so that no attack connection goes away while the batch is sent: the worst case.
  auto c = StartCollector(tls, {"--idle-timeout-s", "300", "--request-timeout-s", "300"});
  ASSERT_TRUE(c);
  SSL_CTX* ctx = tls ? attack::TlsContext(*c) : nullptr;
  if (tls) {
    ASSERT_NE(ctx, nullptr);
  }
  {
    attack::Siege siege(c->port(), ctx, kIdle, kTrickling);
    ASSERT_TRUE(siege.ok()) << siege.error();
    // The collector says how many connections it holds: wait until it holds them all.
    EXPECT_TRUE(WaitUntil([&] { return attack::OpenConnections(*c) >= kIdle + kTrickling; }, 60000));
    for (int i = 0; i < 5; ++i) {
      std::string id = std::string(tls ? "tls" : "plain") + "-under-attack-" + std::to_string(i);
      attack::TimedBatch b = attack::SendBatch(c->port(), ctx, c->write_key(), id);
      ASSERT_TRUE(b.answered) << "the batch was not answered";
      EXPECT_EQ(b.status, 200) << b.body;
      EXPECT_EQ(Json::parse(b.body)["accepted"], 1) << b.body;
      EXPECT_TRUE(Stored(*c, id));
      std::printf("[%s] a batch with %d idle and %d trickling connections open: %.1f ms (load average %.2f)\n",
                  tls ? "tls" : "plain", kIdle, kTrickling, b.ms, attack::LoadAverage());
    }
  }
  // And the collector lets the connections go (the /metrics request itself is one).
  EXPECT_TRUE(WaitUntil([&] { return attack::OpenConnections(*c) <= 1; }, 30000));
  if (ctx) SSL_CTX_free(ctx);
  EXPECT_EQ(c->Stop(), 0);
}

TEST(CollectorAttackTest, IdleAndTricklingConnectionsDoNotDelayABatchPlain) { IdleAndTricklingThenABatch(false); }

TEST(CollectorAttackTest, IdleAndTricklingConnectionsDoNotDelayABatchTls) { IdleAndTricklingThenABatch(true); }

// The flood of issue 11: 16 connections sending 120 MB of header lines each.
TEST(CollectorAttackTest, HeaderFloodIsRefusedBeforeAuthWithBoundedMemory) {
  auto c = StartCollector(false);
  ASSERT_TRUE(c);
  for (int i = 0; i < 20; ++i) {
    auto r = Exchange(c->port(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  attack::FloodResult f = attack::HeaderFlood(*c, 16, 120LL * 1000 * 1000);
  std::printf("[flood] sent %.0f MB of header lines over %lld connections in %.1f s; %lld answers 431\n",
              f.sent_bytes / 1e6, static_cast<long long>(f.connections), f.seconds,
              static_cast<long long>(f.answers_431));
  std::printf("[flood] collector RSS: baseline %.1f MB, peak %.1f MB, at the end %.1f MB, after %.1f MB\n",
              f.baseline_kb / 1024.0, f.peak_kb / 1024.0, f.end_kb / 1024.0, f.after_kb / 1024.0);
  ASSERT_GT(f.baseline_kb, 0);
  EXPECT_GT(f.answers_431, 0);
  EXPECT_EQ(f.other_answers, 0);
  EXPECT_LT(f.peak_kb - f.baseline_kb, 100 * 1024) << "RSS under the flood";
  EXPECT_LT(f.after_kb - f.baseline_kb, 10 * 1024) << "RSS after the flood";
  // Still serving, and counting what it refused.
  auto r = Exchange(c->port(), BatchRequest(c->write_key(), "after-flood"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  auto m = HttpRequest("GET", c->url() + "/metrics");
  EXPECT_GE(CollectorProcess::MetricValue(m.body, "ferry_collector_http_refusals_total{reason=\"header_too_large\"}"),
            f.answers_431);
}

TEST(CollectorAttackTest, BadFramingIs400AndNothingIsStored) {
  auto c = StartCollector(false);
  ASSERT_TRUE(c);
  const int port = c->port();
  const std::string head = "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + c->write_key() +
                           "\r\nContent-Type: application/json\r\n";
  std::string body = Batch("framing-0");
  std::string len = std::to_string(body.size());
  struct Case {
    const char* what;
    std::string request;
  };
  std::vector<Case> cases = {
      {"two equal Content-Length", head + "Content-Length: " + len + "\r\nContent-Length: " + len + "\r\n\r\n" + body},
      {"two different Content-Length", head + "Content-Length: " + len + "\r\nContent-Length: 5\r\n\r\n" + body},
      {"negative Content-Length", head + "Content-Length: -" + len + "\r\n\r\n" + body},
      {"huge Content-Length", head + "Content-Length: 99999999999999999999999\r\n\r\n" + body},
      {"Content-Length with a sign", head + "Content-Length: +" + len + "\r\n\r\n" + body},
      {"Transfer-Encoding: identity, chunked", head + "Transfer-Encoding: identity, chunked\r\n\r\n" +
                                                   [&] {
                                                     char hex[32];
                                                     std::snprintf(hex, sizeof hex, "%zx", body.size());
                                                     return std::string(hex) + "\r\n" + body + "\r\n0\r\n\r\n";
                                                   }()},
      {"Transfer-Encoding with Content-Length",
       head + "Transfer-Encoding: chunked\r\nContent-Length: " + len + "\r\n\r\n" + body},
  };
  for (const auto& k : cases) {
    auto r = Exchange(port, k.request);
    ASSERT_TRUE(r) << k.what << ": no answer";
    EXPECT_EQ(r->status, 400) << k.what << ": " << r->body;
    EXPECT_TRUE(Json::parse(r->body, nullptr, false).contains("error")) << k.what << ": " << r->body;
  }
  // A gzip body whose trailer (CRC and length) is cut off.
  std::string gz = Gzip(Batch("framing-gzip"));
  gz.resize(gz.size() - 8);
  auto r =
      Exchange(port, head + "Content-Encoding: gzip\r\nContent-Length: " + std::to_string(gz.size()) + "\r\n\r\n" + gz);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_FALSE(Stored(*c, "framing-0"));
  EXPECT_FALSE(Stored(*c, "framing-gzip"));
  // Too many header fields, and no write key: 431, not 401.
  std::string many = "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (int i = 0; i < 200; ++i) many += "X-" + std::to_string(i) + ": x\r\n";
  r = Exchange(port, many + "Content-Length: 0\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431) << r->body;
  // The same batch, framed properly, is taken.
  r = Exchange(port, head + "Content-Length: " + len + "\r\n\r\n" + body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(Stored(*c, "framing-0"));
}

TEST(CollectorAttackTest, ConnectionCapRefusesClearlyAndRequestsHaveADeadline) {
  auto c = StartCollector(false, {"--max-connections", "40", "--request-timeout-s", "1", "--idle-timeout-s", "300"});
  ASSERT_TRUE(c);
  const int port = c->port();
  // 40 connections, each in the middle of a request (never reclaimed to make room), hold every slot. Each sends a
  // whole request and the start of the next in one write: once the first is answered, the server has read the start
  // of the second (the collector shows nothing else a client could wait on).
  std::vector<std::unique_ptr<Conn>> held;
  for (int i = 0; i < 40; ++i) {
    held.push_back(Conn::Tcp(port, "127.0.0.1", 10000));
    ASSERT_NE(held.back(), nullptr);
    ASSERT_TRUE(
        held.back()->Send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                          "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    auto first = held.back()->Read();
    ASSERT_TRUE(first) << "connection " << i;
    ASSERT_EQ(first->status, 200) << "connection " << i;
  }
  // The next one is told why it is refused.
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
  // With the slots free again, a batch is taken.
  std::optional<RawResponse> r;
  ASSERT_TRUE(WaitUntil(
      [&] {
        r = Exchange(port, BatchRequest(c->write_key(), "after-cap"));
        return r && r->status == 200;
      },
      10000))
      << (r ? r->body : "no answer");
}

TEST(CollectorAttackTest, MetricsOnALoopbackListenerOfItsOwn) {
  auto c = StartCollector(true, {"--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(c);
  int metrics_port = 0;
  std::ifstream(c->data_dir() + "/collector.metrics-port") >> metrics_port;
  ASSERT_GT(metrics_port, 0);
  auto m = HttpRequest("GET", "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_GE(CollectorProcess::MetricValue(m.body, "ferry_events_accepted_total"), 0);
  // The metrics listener serves nothing else.
  EXPECT_EQ(HttpRequest("POST", "http://127.0.0.1:" + std::to_string(metrics_port) + "/v1/batch", "{}").status, 404);
  // On the main listener /metrics wants an operator token, loopback or not.
  EXPECT_EQ(HttpRequest("GET", c->url() + "/metrics", "", {}, c->ca_file()).status, 401);
  std::string token = c->CreateAdminToken("operator");
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(HttpRequest("GET", c->url() + "/metrics", "", {"Authorization: Bearer " + token}, c->ca_file()).status,
            200);
  // A metrics listener off loopback is refused at start.
  CollectorOptions o;
  o.extra_args = {"--metrics-listen", "0.0.0.0:0"};
  std::string err;
  EXPECT_FALSE(CollectorProcess::Start(o, &err));
}

}  // namespace
}  // namespace ferry::testsupport
