// The real ferry-collector binary as a child process, over real TLS on loopback, with real libcurl requests.
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "lib/base/time.h"
#include "lib/wire/codec.h"
#include "tests/support/collector_process.h"

namespace ferry::testsupport {
namespace {

using Json = nlohmann::json;

Json Event(const std::string& id, const char* type = "track") {
  Json e = {{"messageId", id},
            {"type", type},
            {"anonymousId", "anon-42"},
            {"timestamp", "2026-01-01T00:00:00.000Z"},
            {"purpose", "analytics"},
            {"properties", {{"plan", "pro"}}},
            {"context", {{"library", {{"name", "ferry-test"}}}}}};
  if (std::string(type) == "track") e["event"] = "Signed Up";
  return e;
}

std::string Batch(const Json& events) {
  return Json{{"sentAt", base::FormatIso8601(base::NowMs())}, {"batch", events}, {"dropped", {{"evicted", 2}}}}.dump();
}

std::string Gzip(const std::string& in) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? out : std::string();
}

class CollectorProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    c_ = CollectorProcess::Start(CollectorOptions(), &err);
    ASSERT_TRUE(c_) << err;
    ASSERT_EQ(c_->url().rfind("https://127.0.0.1:", 0), 0u) << c_->url();
  }
  HttpResult Post(const std::string& body, const std::string& encoding = "zstd", const std::string& key = "") {
    std::vector<std::string> h = {"Authorization: Bearer " + (key.empty() ? c_->write_key() : key),
                                  "Content-Type: application/json"};
    if (!encoding.empty()) h.push_back("Content-Encoding: " + encoding);
    return HttpRequest("POST", c_->batch_url(), body, h, c_->ca_file());
  }
  std::unique_ptr<CollectorProcess> c_;
};

TEST_F(CollectorProcessTest, AcceptsDeduplicatesAndRejectsOverTls) {
  Json bad = Event("m-bad");
  bad.erase("timestamp");
  std::string body = wire::ZstdCompress(Batch(Json::array({Event("m-1"), Event("m-2", "identify"), bad})));
  HttpResult r = Post(body);
  ASSERT_EQ(r.status, 200) << r.body << " curl=" << r.curl_code;
  Json a = Json::parse(r.body);
  EXPECT_EQ(a["accepted"], 2);
  EXPECT_EQ(a["duplicate"], 0);
  EXPECT_EQ(a["suppressed"], 0);
  ASSERT_EQ(a["rejected"].size(), 1u);
  EXPECT_EQ(a["rejected"][0]["index"], 2);
  EXPECT_EQ(a["rejected"][0]["messageId"], "m-bad");
  EXPECT_EQ(a["rejected"][0]["reason"], "missing timestamp");

  // The resend is harmless.
  r = Post(body);
  ASSERT_EQ(r.status, 200);
  a = Json::parse(r.body);
  EXPECT_EQ(a["accepted"], 0);
  EXPECT_EQ(a["duplicate"], 2);

  auto rows = c_->DumpEvents();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["messageId"], "m-1");
  EXPECT_EQ(rows[0]["project"], "test");
  EXPECT_EQ(rows[0]["body"]["properties"]["plan"], "pro");
  EXPECT_TRUE(rows[0]["body"].contains("receivedAt"));
  EXPECT_EQ(rows[1]["type"], "identify");
}

TEST_F(CollectorProcessTest, GzipAndIdentityBodies) {
  std::string json = Batch(Json::array({Event("g-1")}));
  HttpResult r = Post(json, "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json::parse(r.body)["accepted"], 1);
  std::string bytes = Gzip(Batch(Json::array({Event("g-2")})));
  r = Post(bytes, "gzip");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json::parse(r.body)["accepted"], 1);
}

TEST_F(CollectorProcessTest, AuthEncodingAndGarbage) {
  std::string body = wire::ZstdCompress(Batch(Json::array({Event("a-1")})));
  HttpResult r = HttpRequest("POST", c_->batch_url(), body, {"Content-Encoding: zstd"}, c_->ca_file());
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Post(body, "zstd", "fw_0000").status, 401);
  EXPECT_EQ(Post(body, "br").status, 415);
  EXPECT_EQ(Post("this is not zstd", "zstd").status, 400);
  EXPECT_EQ(Post("{\"batch\": [", "").status, 400);
  EXPECT_TRUE(c_->DumpEvents().empty());
  // A second key of another project works alongside.
  std::string other = c_->CreateWriteKey("other");
  ASSERT_FALSE(other.empty());
  EXPECT_EQ(Post(body, "zstd", other).status, 200);
  EXPECT_EQ(c_->DumpEvents("other").size(), 1u);
}

// 1 GiB of zeros, streamed through a zstd compressor (never held in memory).
std::string ZstdBombOfZeros(size_t total) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 19);
  std::string zeros(1 << 20, '\0');
  std::string out;
  char buf[1 << 16];
  for (size_t left = total; left > 0;) {
    size_t n = std::min(left, zeros.size());
    left -= n;
    ZSTD_inBuffer ib{zeros.data(), n, 0};
    ZSTD_EndDirective mode = left == 0 ? ZSTD_e_end : ZSTD_e_continue;
    size_t rem;
    do {
      ZSTD_outBuffer ob{buf, sizeof buf, 0};
      rem = ZSTD_compressStream2(cctx.get(), &ob, &ib, mode);
      out.append(buf, ob.pos);
    } while (mode == ZSTD_e_end ? rem != 0 : ib.pos < ib.size);
  }
  return out;
}

TEST_F(CollectorProcessTest, RefusesZstdBombWithBoundedMemoryAndLargeBodies) {
  std::string bomb = ZstdBombOfZeros(size_t{1} << 30);
  ASSERT_LT(bomb.size(), size_t{1} << 20);  // passes the compressed limit: the decoder must stop it
  long rss_before = c_->RssKb();
  ASSERT_GT(rss_before, 0);
  for (int i = 0; i < 3; ++i) {
    HttpResult r = Post(bomb);
    EXPECT_EQ(r.status, 413) << r.body;
  }
  long rss_after = c_->RssKb();
  EXPECT_LT(rss_after - rss_before, 64 * 1024) << "RSS grew from " << rss_before << " to " << rss_after << " KiB";

  // Over 1 MiB as sent: refused by the compressed-size limit.
  std::string big(size_t{1} << 20 | 1, 'x');
  EXPECT_EQ(Post(big, "zstd").status, 413);
  // And the collector still works.
  EXPECT_EQ(Post(wire::ZstdCompress(Batch(Json::array({Event("after-bomb")})))).status, 200);
  // More than 1000 events: 413 (the client splits the batch).
  Json many = Json::array();
  for (int i = 0; i < 1001; ++i) many.push_back(Event("many-" + std::to_string(i)));
  EXPECT_EQ(Post(wire::ZstdCompress(Batch(many))).status, 413);
}

TEST_F(CollectorProcessTest, HealthMetricsAndCleanShutdown) {
  HttpResult h = HttpRequest("GET", c_->url() + "/healthz", "", {}, c_->ca_file());
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok\n");
  Json bad = Event("x-2");
  bad["purpose"] = "NOT VALID";
  ASSERT_EQ(Post(wire::ZstdCompress(Batch(Json::array({Event("x-1"), bad})))).status, 200);
  ASSERT_EQ(Post(wire::ZstdCompress(Batch(Json::array({Event("x-1")})))).status, 200);
  ASSERT_EQ(Post("nope", "zstd").status, 400);
  HttpResult m = HttpRequest("GET", c_->url() + "/metrics", "", {}, c_->ca_file());
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_events_accepted_total"), 1);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_events_duplicate_total"), 1);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_events_rejected_total"), 1);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_batches_total{code=\"200\"}"), 2);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_batches_total{code=\"400\"}"), 1);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_request_duration_seconds_count"), 3);
  // The group-commit writer: the two stored batches' events (the valid one, then its duplicate), none failed.
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_store_commit_requests_total"), 2);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_store_commit_events_total"), 2);
  double commits = CollectorProcess::MetricValue(m.body, "ferry_store_commits_total");
  EXPECT_GE(commits, 1);
  EXPECT_LE(commits, 2);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_store_commit_failures_total"), 0);
  EXPECT_GT(CollectorProcess::MetricValue(m.body, "ferry_store_commit_seconds_total"), 0);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_store_commit_queue"), 0);
  // How long each transaction took and each stored batch waited for it.
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_store_commit_duration_seconds_count"), commits);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_store_commit_duration_seconds_bucket{le=\"+Inf\"}"), commits);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_store_commit_wait_seconds_count"), 2);
  EXPECT_GT(CollectorProcess::MetricValue(m.body, "ferry_store_commit_longest_seconds"), 0);
  // Two small batches: the embedded store's log is far from a checkpoint.
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_store_checkpoints_total{by=\"checkpointer\"}"), 0);
  EXPECT_EQ(CollectorProcess::MetricValue(m.body, "ferry_store_checkpoints_total{by=\"writer\"}"), 0);

  EXPECT_EQ(c_->Stop(), 0);
  EXPECT_NE(c_->Log().find("stopped"), std::string::npos);
  // The data survives a restart on the same port and data directory.
  ASSERT_TRUE(c_->Restart());
  EXPECT_EQ(Json::parse(Post(wire::ZstdCompress(Batch(Json::array({Event("x-1")})))).body)["duplicate"], 1);
  EXPECT_EQ(c_->DumpEvents().size(), 1u);
}

// Past a thousand pages of log, the embedded store's checkpointer copies them into the database file, and GET
// /metrics counts it.
TEST_F(CollectorProcessTest, CountsTheEmbeddedStoresCheckpoints) {
  // Random text (the store compresses event bodies: ~6 bits a character stay ~2,100 bytes), new in every event.
  std::mt19937 rng(42);
  auto filler = [&rng] {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string s(2800, ' ');
    for (char& c : s) c = kAlphabet[rng() % 64];
    return s;
  };
  auto checkpoints = [&] {
    HttpResult m = HttpRequest("GET", c_->url() + "/metrics", "", {}, c_->ca_file());
    return std::make_pair(
        CollectorProcess::MetricValue(m.body, "ferry_store_checkpoints_total{by=\"checkpointer\"}"),
        CollectorProcess::MetricValue(m.body, "ferry_store_checkpoint_seconds_total{by=\"checkpointer\"}"));
  };
  ASSERT_EQ(checkpoints().first, 0);
  // 3,000 events of ~2.2 KB stored: about 6.6 MB of rows, some 1,600 pages of log.
  for (int b = 0; b < 30; ++b) {
    Json events = Json::array();
    for (int i = 0; i < 100; ++i) {
      Json e = Event("ck-" + std::to_string(b) + "-" + std::to_string(i));
      e["properties"]["note"] = filler();
      events.push_back(e);
    }
    HttpResult r = Post(wire::ZstdCompress(Batch(events)));
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(Json::parse(r.body)["accepted"], 100);
  }
  // The checkpointer runs beside the writer: it is waited for.
  std::pair<double, double> seen{0, 0};
  for (int i = 0; i < 100 && seen.first < 1; ++i) {
    seen = checkpoints();
    if (seen.first < 1) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(seen.first, 1);
  EXPECT_GT(seen.second, 0);
}

TEST(CollectorProcess, FaultPlanAnswers) {
  CollectorOptions o;
  o.fault_plan_json = R"([{"status":503,"retry_after":7}, "reset", {"status":500,"after_store":true}])";
  std::string err;
  auto c = CollectorProcess::Start(o, &err);
  ASSERT_TRUE(c) << err;
  std::string body = wire::ZstdCompress(Batch(Json::array({Event("f-1")})));
  std::vector<std::string> h = {"Authorization: Bearer " + c->write_key(), "Content-Encoding: zstd"};
  HttpResult r = HttpRequest("POST", c->batch_url(), body, h, c->ca_file());
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.retry_after, "7");
  r = HttpRequest("POST", c->batch_url(), body, h, c->ca_file());
  EXPECT_EQ(r.status, 0);  // transport error
  EXPECT_NE(r.curl_code, 0);
  EXPECT_TRUE(c->DumpEvents().empty());
  r = HttpRequest("POST", c->batch_url(), body, h, c->ca_file());
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(c->DumpEvents().size(), 1u);  // stored, answer lost
  r = HttpRequest("POST", c->batch_url(), body, h, c->ca_file());
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Json::parse(r.body)["duplicate"], 1);
}

TEST(CollectorProcess, RateLimitAnswers429WithRetryAfter) {
  CollectorOptions o;
  o.tls = false;
  o.extra_args = {"--rate-limit", "1", "--rate-burst", "2"};
  std::string err;
  auto c = CollectorProcess::Start(o, &err);
  ASSERT_TRUE(c) << err;
  EXPECT_EQ(c->url().rfind("http://127.0.0.1:", 0), 0u);
  EXPECT_NE(c->Log().find("plain HTTP"), std::string::npos);
  std::string body = wire::ZstdCompress(Batch(Json::array({Event("r-1")})));
  std::vector<std::string> h = {"Authorization: Bearer " + c->write_key(), "Content-Encoding: zstd"};
  int ok = 0, limited = 0;
  std::string retry;
  for (int i = 0; i < 5; ++i) {
    HttpResult r = HttpRequest("POST", c->batch_url(), body, h);
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      retry = r.retry_after;
    }
  }
  EXPECT_GE(ok, 2);
  EXPECT_GE(limited, 1);
  EXPECT_GE(std::atoi(retry.c_str()), 1);
}

TEST(CollectorProcess, RefusesPlainHttpOffLoopback) {
  std::string out;
  int rc = RunCommand(CollectorBinary() + " --listen 0.0.0.0:0 --data-dir /tmp/ferry-never-created-dir 2>&1", &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("refusing plain HTTP"), std::string::npos) << out;
  std::string help;
  EXPECT_EQ(RunCommand(CollectorBinary() + " --help", &help), 0);
  EXPECT_NE(help.find("--fault-plan"), std::string::npos);
  EXPECT_NE(help.find("TEST ONLY"), std::string::npos);
}

}  // namespace
}  // namespace ferry::testsupport
