// Nothing accepted is lost on the way to the insight (docs/INSIGHT.md "Wiring"): a real ferry-collector killed with
// SIGKILL while its feed still holds events (embedded engine; ClickHouse down) replays them from its store after a
// restart, on both stores; ClickHouse stopped during ingest and started again misses nothing; every event is counted
// once. The list of persons whose analytics consent is denied comes from the store's consent ledger, so it holds
// across a restart.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "collector/engines/postgres/pg_store.h"
#include "lib/base/time.h"
#include "tests/support/clickhouse_server.h"
#include "tests/support/collector_process.h"
#include "tests/support/pg_cluster.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::ClickHouseServer;
using testsupport::CollectorProcess;
using testsupport::HttpRequest;
using testsupport::HttpResult;

constexpr int64_t kDayMs = 86400000;

std::string Iso(int64_t ms) { return base::FormatIso8601(ms); }
std::string Date(int64_t ms) { return Iso(ms).substr(0, 10); }
int64_t NowMs() { return base::NowMs(); }

// A collector with the insight on, on SQLite (its data dir) or on a throwaway PostgreSQL cluster.
class InsightCollector {
 public:
  // storage: "sqlite" or "postgres"; insight: the --insight value.
  void Start(const std::string& storage, const std::string& insight, const std::vector<std::string>& extra = {}) {
    std::string err;
    testsupport::CollectorOptions o;
    o.extra_args = {"--insight", insight};
    o.extra_args.insert(o.extra_args.end(), extra.begin(), extra.end());
    if (storage == "postgres") {
      cluster_ = testsupport::PgCluster::Start(&err);
      ASSERT_NE(cluster_, nullptr) << err;
      std::string uri = cluster_->CreateDatabase("insight", &err);
      ASSERT_FALSE(uri.empty()) << err;
      collector::PgOptions po;
      po.conninfo = uri;
      auto s = collector::PgStore::Open(po);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      auto k = (*s)->CreateWriteKey("test");
      auto t = (*s)->CreateAdminToken("ana", {"analyst"});
      ASSERT_TRUE(k.ok() && t.ok());
      key_ = *k;
      analyst_ = *t;
      o.extra_args.push_back("--storage");
      o.extra_args.push_back(uri);
    }
    col_ = CollectorProcess::Start(o, &err);
    ASSERT_NE(col_, nullptr) << err;
    if (key_.empty()) {
      key_ = col_->write_key();
      analyst_ = col_->CreateAdminToken("analyst", "ana");
    }
    ASSERT_FALSE(analyst_.empty());
  }

  json Event(const std::string& user, const std::string& name, int64_t ts) {
    return {{"messageId", "m" + std::to_string(++seq_)},
            {"type", "track"},
            {"event", name},
            {"userId", user},
            {"timestamp", Iso(ts)},
            {"purpose", "analytics"},
            {"context", {{"app", {{"name", "shop"}}}}}};
  }
  json Consent(const std::string& user, const std::string& purpose, const std::string& state, int64_t ts) {
    return {{"messageId", "m" + std::to_string(++seq_)},
            {"type", "consent"},
            {"userId", user},
            {"timestamp", Iso(ts)},
            {"purpose", "necessary"},
            {"properties", {{"purpose", purpose}, {"state", state}}}};
  }
  void Post(const json& batch) {
    HttpResult r = HttpRequest("POST", col_->batch_url(), json{{"batch", batch}}.dump(),
                               {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(json::parse(r.body).value("accepted", -1), static_cast<int>(batch.size())) << r.body;
  }
  json Retention(int64_t day_ms) {
    HttpResult r =
        HttpRequest("GET",
                    col_->url() + "/v1/insight/retention?project=test&granularity=day&periods=1&from=" + Date(day_ms) +
                        "&to=" + Date(day_ms),
                    "", {"Authorization: Bearer " + analyst_}, col_->ca_file());
    EXPECT_EQ(r.status, 200) << r.body;
    json t = json::parse(r.body, nullptr, false);
    if (!t.is_object() || !t["rows"].is_array() || t["rows"].empty()) return json();
    return t["rows"][0];
  }

  std::unique_ptr<testsupport::PgCluster> cluster_;
  std::unique_ptr<CollectorProcess> col_;
  std::string key_, analyst_;
  int seq_ = 0;
};

class InsightDurabilityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres" && !testsupport::PgCluster::Available()) {
      GTEST_SKIP() << "*** SKIPPED: PostgreSQL binaries not found ***";
    }
  }
};

// Embedded engine: events still queued in the feed when the collector is killed are in the insight after the
// restart (replayed from the store), each once; a person whose analytics consent is denied stays excluded across
// the restart (the list comes from the consent ledger).
TEST_P(InsightDurabilityTest, EmbeddedReplaysAfterSigkillAndKeepsTheAnalyticsDenial) {
  InsightCollector c;
  ASSERT_NO_FATAL_FAILURE(c.Start(GetParam(), "embedded"));
  const int64_t day = NowMs() / kDayMs * kDayMs - 3 * kDayMs + 3600000;
  json first = json::array();
  for (int u = 0; u < 8; ++u) first.push_back(c.Event("u" + std::to_string(u), "app_opened", day));
  first.push_back(c.Consent("u7", "analytics", "denied", day));
  ASSERT_NO_FATAL_FAILURE(c.Post(first));
  json row = c.Retention(day);
  EXPECT_EQ(row.value("size", -1), 7) << row.dump();  // u7 objects to analytics

  // 400 more events of 40 persons, then SIGKILL at once: many are still in the feed's queue.
  json second = json::array();
  for (int i = 0; i < 400; ++i) second.push_back(c.Event("v" + std::to_string(i % 40), "app_opened", day + i));
  ASSERT_NO_FATAL_FAILURE(c.Post(second));
  c.col_->Kill();
  std::string err;
  ASSERT_TRUE(c.col_->Restart(&err)) << err;
  row = c.Retention(day);
  EXPECT_EQ(row.value("size", -1), 47) << row.dump();  // 7 + 40; u7 still excluded after the restart
  // Each event once: v3's 10 events count 10, although the replay after the restart may have handed some of them to
  // the engine a second time.
  HttpResult p = HttpRequest("GET", c.col_->url() + "/v1/insight/profile?project=test&person=v3", "",
                             {"Authorization: Bearer " + c.analyst_}, c.col_->ca_file());
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(json::parse(p.body)["events"], 10) << p.body;

  // A grant after the denial lifts the exclusion, also from the ledger.
  ASSERT_NO_FATAL_FAILURE(c.Post(json::array({c.Consent("u7", "analytics", "granted", day + kDayMs)})));
  EXPECT_EQ(c.Retention(day).value("size", -1), 48);
}

// A retention purge of the store reaches the insight: once the project's maximum age is set to 2 days, the store
// deletes the event 4 days old and the insight the days that held it.
TEST(InsightRetentionTest, PurgeOfTheStoreReachesTheInsight) {
  InsightCollector c;
  std::string err;
  testsupport::CollectorOptions o;
  o.extra_args = {"--insight", "embedded", "--retention-interval-s", "1"};
  c.col_ = CollectorProcess::Start(o, &err);
  ASSERT_NE(c.col_, nullptr) << err;
  c.key_ = c.col_->write_key();
  c.analyst_ = c.col_->CreateAdminToken("analyst", "ana");
  const int64_t now = NowMs();
  ASSERT_NO_FATAL_FAILURE(
      c.Post(json::array({c.Event("old", "app_opened", now - 4 * kDayMs), c.Event("new", "app_opened", now - 60000)})));
  auto profile = [&](const std::string& person) {
    return HttpRequest("GET", c.col_->url() + "/v1/insight/profile?project=test&person=" + person, "",
                       {"Authorization: Bearer " + c.analyst_}, c.col_->ca_file());
  };
  ASSERT_EQ(profile("old").status, 200);  // in the insight before the purge
  std::string out;
  ASSERT_EQ(testsupport::RunCommand("'" + testsupport::FerryctlBinary() + "' --data-dir '" + c.col_->data_dir() +
                                        "' projects set-retention --project test --days 2",
                                    &out),
            0)
      << out;
  ASSERT_TRUE(c.col_->WaitForLog("retention: deleted 1 expired events")) << c.col_->Log();
  ASSERT_TRUE(c.col_->WaitForLog("insight: retention purge done")) << c.col_->Log();
  EXPECT_EQ(profile("old").status, 404) << profile("old").body;
  HttpResult fresh = profile("new");
  ASSERT_EQ(fresh.status, 200) << fresh.body;
  EXPECT_EQ(json::parse(fresh.body)["events"], 1);
}

INSTANTIATE_TEST_SUITE_P(Stores, InsightDurabilityTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// ClickHouse: the number of distinct messageIds and of rows FINAL in the events table.
std::pair<int64_t, int64_t> ClickHouseCounts(const ClickHouseServer& ch) {
  std::string out;
  if (ch.Query("SELECT uniqExact(message_id), count() FROM ferry_insight.events FINAL FORMAT TSV", &out) != 200) {
    return {-1, -1};
  }
  long long distinct = -1, rows = -1;
  if (std::sscanf(out.c_str(), "%lld\t%lld", &distinct, &rows) != 2) return {-1, -1};
  return {distinct, rows};
}

// Waits (polling ClickHouse, at most timeout_ms of real time as a safety net) until `want` distinct events are there.
bool WaitForEvents(const ClickHouseServer& ch, int64_t want, int timeout_ms = 60000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ClickHouseCounts(ch).first >= want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(InsightDurabilityClickHouseTest, NothingLostWhenTheCollectorIsKilledOrClickHouseStops) {
  if (!ClickHouseServer::Available()) GTEST_SKIP() << "*** SKIPPED: clickhouse-server not installed ***";
  std::string err;
  auto ch = ClickHouseServer::Start(&err);
  ASSERT_NE(ch, nullptr) << err;
  InsightCollector c;
  ASSERT_NO_FATAL_FAILURE(c.Start("sqlite", "clickhouse://127.0.0.1:" + std::to_string(ch->http_port())));
  const int64_t day = NowMs() / kDayMs * kDayMs - 2 * kDayMs + 3600000;
  auto post = [&](int n) {
    json batch = json::array();
    for (int i = 0; i < n; ++i) batch.push_back(c.Event("p" + std::to_string(c.seq_ % 50), "app_opened", day + i));
    c.Post(batch);
  };
  ASSERT_NO_FATAL_FAILURE(post(300));
  ASSERT_TRUE(WaitForEvents(*ch, 300)) << c.col_->Log();

  // ClickHouse down: 500 more are accepted and queued; the collector is killed before any could be sent.
  ch->Kill();
  ASSERT_NO_FATAL_FAILURE(post(500));
  c.col_->Kill();
  ASSERT_TRUE(ch->Restart(&err)) << err;
  ASSERT_TRUE(c.col_->Restart(&err)) << err;
  ASSERT_TRUE(WaitForEvents(*ch, 800)) << c.col_->Log();

  // ClickHouse stopped during ingest and started again: the sink retries, nothing is missing.
  ASSERT_NO_FATAL_FAILURE(post(200));
  ch->Stop();
  ASSERT_NO_FATAL_FAILURE(post(200));
  ASSERT_TRUE(ch->Restart(&err)) << err;
  ASSERT_NO_FATAL_FAILURE(post(100));
  ASSERT_TRUE(WaitForEvents(*ch, 1300)) << c.col_->Log();

  // Every accepted event exactly once in query answers (FINAL collapses the redelivered copies), and the insight
  // counts the 50 persons' activity once.
  const std::pair<int64_t, int64_t> once{1300, 1300};
  EXPECT_EQ(ClickHouseCounts(*ch), once);
  HttpResult p = HttpRequest("GET", c.col_->url() + "/v1/insight/profile?project=test&person=p7", "",
                             {"Authorization: Bearer " + c.analyst_}, c.col_->ca_file());
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(json::parse(p.body)["events"], 26) << p.body;  // the events posted as the 8th, 58th, ..., 1258th
  // A clean stop saves the position: the next start replays nothing already delivered.
  EXPECT_EQ(c.col_->Stop(), 0);
  ASSERT_TRUE(c.col_->Restart(&err)) << err;
  ASSERT_TRUE(c.col_->WaitForLog("insight: feed replays the store's events after 1300")) << c.col_->Log();
}

// The nice value of each thread of process `pid` (/proc/PID/task/TID/stat, the 19th field).
std::vector<int> ThreadNiceValues(pid_t pid) {
  std::vector<int> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t paren = stat.rfind(')');  // the thread's name (field 2) may hold spaces
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 1));
    std::string f;
    for (int i = 3; i <= 19 && fields >> f; ++i) {
      if (i == 19) out.push_back(std::stoi(f));
    }
  }
  return out;
}

// The feed thread's priority is a collector flag (--insight-feed-nice): with 7 the one thread that hands accepted
// events to the insight runs at nice 7 and every other thread at the collector's own value; with 0 the feed keeps the
// collector's own. The events reach the insight either way. A value outside 0-19 is refused at start.
TEST(InsightFeedPriorityTest, TheFlagSetsTheFeedThreadsNiceValue) {
  const int own = getpriority(PRIO_PROCESS, 0);  // the collector inherits the test's own value
  if (own >= 7) GTEST_SKIP() << "*** SKIPPED: the test runs at nice " << own << " (needs < 7) ***";
  for (int nice : {7, 0}) {
    SCOPED_TRACE("--insight-feed-nice " + std::to_string(nice));
    InsightCollector c;
    ASSERT_NO_FATAL_FAILURE(c.Start("sqlite", "embedded", {"--insight-feed-nice", std::to_string(nice)}));
    const int64_t day = NowMs() / kDayMs * kDayMs - 2 * kDayMs + 3600000;
    json batch = json::array();
    for (int u = 0; u < 6; ++u) batch.push_back(c.Event("u" + std::to_string(u), "app_opened", day));
    ASSERT_NO_FATAL_FAILURE(c.Post(batch));
    EXPECT_EQ(c.Retention(day).value("size", -1), 6);  // handed over by the feed thread, which has run by now
    std::vector<int> values = ThreadNiceValues(c.col_->pid());
    ASSERT_GT(values.size(), 2u);
    const auto at = [&](int v) { return std::count(values.begin(), values.end(), v); };
    EXPECT_EQ(at(7), nice == 7 ? 1 : 0);
    EXPECT_EQ(at(own), static_cast<long>(values.size()) - at(7));
  }
  testsupport::CollectorOptions o;
  o.extra_args = {"--insight", "embedded", "--insight-feed-nice", "20"};
  std::string err;
  EXPECT_EQ(CollectorProcess::Start(o, &err), nullptr);
  EXPECT_NE(err.find("--insight-feed-nice"), std::string::npos) << err;
}

}  // namespace
}  // namespace ferry::testing
