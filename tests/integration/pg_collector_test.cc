// ferry-collector processes on one PostgreSQL database (a throwaway cluster started here and stopped at the end):
// two collectors receiving the same and different batches concurrently, one killed mid-ingest with clients failing
// over to the other, the database restarted under load, and an exhausted connection pool. Each step waits for what
// it depends on (an answer, a lock the server shows as waiting, the database back up), never for a guessed time.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "collector/engines/postgres/pg_store.h"
#include "lib/base/time.h"
#include "tests/support/collector_process.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/wait.h"

namespace ferry::testsupport {
namespace {

using Json = nlohmann::json;

class PgCollectorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!PgCluster::Available()) return;
    std::string error;
    cluster_ = PgCluster::Start(&error).release();
    if (cluster_ == nullptr) start_error_ = new std::string(error);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    if (!PgCluster::Available()) {
      GTEST_SKIP() << "\n*** SKIPPED: PostgreSQL binaries not found — the collector-on-PostgreSQL tests did NOT run. "
                      "***\n";
    }
    ASSERT_NE(cluster_, nullptr) << (start_error_ ? *start_error_ : "");
    static int n = 0;
    std::string error;
    uri_ = cluster_->CreateDatabase("it_" + std::to_string(++n), &error);
    ASSERT_FALSE(uri_.empty()) << error;
    collector::PgOptions o;
    o.conninfo = uri_;
    auto s = collector::PgStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    auto key = store_->CreateWriteKey("shop");
    ASSERT_TRUE(key.ok());
    key_ = *key;
  }

  std::unique_ptr<CollectorProcess> StartCollector(std::vector<std::string> extra = {}) {
    CollectorOptions o;
    o.extra_args = {"--storage", uri_, "--rate-limit", "0"};
    o.extra_args.insert(o.extra_args.end(), extra.begin(), extra.end());
    std::string error;
    auto c = CollectorProcess::Start(o, &error);
    EXPECT_NE(c, nullptr) << error;
    return c;
  }

  static std::string Batch(const std::vector<std::string>& ids) {
    Json events = Json::array();
    std::string ts = base::FormatIso8601(base::NowMs());
    for (const auto& id : ids) {
      events.push_back({{"messageId", id},
                        {"type", "track"},
                        {"event", "Signed Up"},
                        {"anonymousId", "anon-" + id.substr(0, id.find('-'))},
                        {"timestamp", ts},
                        {"purpose", "analytics"},
                        {"properties", {{"plan", "pro"}}}});
    }
    return Json{{"sentAt", ts}, {"batch", events}}.dump();
  }

  HttpResult Post(const CollectorProcess& c, const std::string& body, long timeout_ms = 30000) {
    return HttpRequest("POST", c.batch_url(), body, {"Authorization: Bearer " + key_, "Content-Type: application/json"},
                       c.ca_file(), timeout_ms);
  }

  // messageId -> how many times it is stored.
  std::map<std::string, int> Stored() {
    std::map<std::string, int> out;
    auto rows = store_->DumpEvents("shop");
    EXPECT_TRUE(rows.ok());
    if (rows.ok()) {
      for (const auto& r : *rows) ++out[r.message_id];
    }
    return out;
  }

  static PgCluster* cluster_;
  static std::string* start_error_;
  std::string uri_, key_;
  std::unique_ptr<collector::PgStore> store_;
};

PgCluster* PgCollectorTest::cluster_ = nullptr;
std::string* PgCollectorTest::start_error_ = nullptr;

std::vector<std::string> Ids(const std::string& prefix, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(prefix + "-" + std::to_string(i));
  return out;
}

TEST_F(PgCollectorTest, TwoCollectorsReceivingTheSameAndDifferentBatchesStoreEveryEventExactlyOnce) {
  auto a = StartCollector();
  auto b = StartCollector();
  ASSERT_TRUE(a && b);
  CollectorProcess* cs[2] = {a.get(), b.get()};
  std::atomic<int64_t> accepted{0}, failures{0};
  std::vector<std::thread> threads;
  // 4 clients; client t sends 30 batches of 50: "shared" batches go to BOTH collectors at once (a resend racing
  // the original), "own" batches to one of them.
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < 30; ++b) {
        bool shared = b % 2 == 0;
        std::string prefix = shared ? "s" + std::to_string(b) : "o" + std::to_string(t) + "x" + std::to_string(b);
        std::string body = Batch(Ids(prefix, 0, 50));
        std::vector<std::thread> senders;
        for (int k = 0; k < (shared ? 2 : 1); ++k) {
          senders.emplace_back([&, k] {
            HttpResult r = Post(*cs[(t + k) % 2], body);
            if (r.status != 200) {
              ++failures;
              return;
            }
            Json j = Json::parse(r.body, nullptr, false);
            if (j.is_object() && j.contains("accepted")) accepted += j["accepted"].get<int64_t>();
          });
        }
        for (auto& s : senders) s.join();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  // Shared: 15 batch numbers x 50 ids (the same for all clients); own: 4 x 15 x 50.
  constexpr int64_t kUnique = 15 * 50 + 4 * 15 * 50;
  EXPECT_EQ(accepted.load(), kUnique);
  auto stored = Stored();
  EXPECT_EQ(static_cast<int64_t>(stored.size()), kUnique);
  for (const auto& [id, n] : stored) ASSERT_EQ(n, 1) << id;
  EXPECT_EQ(a->Stop(), 0);
  EXPECT_EQ(b->Stop(), 0);
}

TEST_F(PgCollectorTest, OneCollectorKilledMidIngestClientsFailOverAndNothingIsLost) {
  auto a = StartCollector();
  auto b = StartCollector();
  ASSERT_TRUE(a && b);
  CollectorProcess* cs[2] = {a.get(), b.get()};
  std::atomic<bool> a_dead{false};
  std::atomic<int> sent{0}, failovers{0}, gave_up{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < 40; ++b) {
        std::string body = Batch(Ids("k" + std::to_string(t) + "x" + std::to_string(b), 0, 25));
        // The client's retry loop: the same batch again, on the other collector after a failure.
        int target = (t + b) % 2;
        bool done = false;
        for (int attempt = 0; attempt < 20 && !done; ++attempt) {
          if (target == 0 && a_dead) target = 1;
          HttpResult r = Post(*cs[target], body, 5000);
          if (r.status == 200) {
            done = true;
          } else {
            ++failovers;
            target = 1 - target;  // at once, on the other collector
          }
        }
        if (!done) ++gave_up;
        if (++sent == 60) {
          a->Kill();  // SIGKILL in the middle of the load: batches in flight on it are lost or half-answered
          a_dead = true;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(gave_up.load(), 0);
  EXPECT_TRUE(a_dead.load());
  auto stored = Stored();
  EXPECT_EQ(stored.size(), 4u * 40 * 25);
  for (const auto& [id, n] : stored) ASSERT_EQ(n, 1) << id;
  EXPECT_EQ(b->Stop(), 0);
}

TEST_F(PgCollectorTest, DatabaseRestartedUnderLoadAnswers503WithRetryAfterAndRecoversWithoutACollectorRestart) {
  auto c = StartCollector({"--pg-acquire-timeout-ms", "500"});
  ASSERT_TRUE(c);
  pid_t pid = c->pid();
  // What the clients saw, and whether the database is back; every change is announced on `cv`.
  std::mutex mu;
  std::condition_variable cv;
  int ok = 0, unavailable = 0, with_retry_after = 0, other = 0;
  bool down = false, back = false;
  auto count = [&](int* n) {
    std::lock_guard<std::mutex> l(mu);
    ++*n;
    cv.notify_all();
  };
  std::vector<std::string> bodies;
  for (int b = 0; b < 400; ++b) bodies.push_back(Batch(Ids("r" + std::to_string(b), 0, 20)));
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < bodies.size(); i = next++) {
        for (;;) {
          HttpResult r = Post(*c, bodies[i], 10000);
          if (r.status == 200) {
            count(&ok);
            // After the first 50 batches the clients wait until the database is down, so the outage meets them.
            std::unique_lock<std::mutex> l(mu);
            cv.wait(l, [&] { return ok < 50 || down; });
            break;
          }
          if (r.status != 503) {
            count(&other);
            continue;
          }
          count(&unavailable);
          if (!r.retry_after.empty()) count(&with_retry_after);
          // The client retries once the database is back (the event it waits for), not after a guessed pause.
          std::unique_lock<std::mutex> l(mu);
          cv.wait(l, [&] { return back; });
        }
      }
    });
  }
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return ok >= 50; });
  }
  std::string error;
  ASSERT_TRUE(cluster_->Stop("fast", &error)) << error;
  // While the database is down the collector stays up and says so.
  HttpResult health = HttpRequest("GET", c->url() + "/healthz", "", {}, c->ca_file(), 5000);
  EXPECT_EQ(health.status, 503);
  {
    std::lock_guard<std::mutex> l(mu);
    down = true;
  }
  cv.notify_all();
  {
    // Every client has met the outage (each one waits for the database now).
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return unavailable >= 3; });
  }
  ASSERT_TRUE(cluster_->StartAgain(&error)) << error;
  {
    std::lock_guard<std::mutex> l(mu);
    back = true;
  }
  cv.notify_all();
  for (auto& th : threads) th.join();
  EXPECT_EQ(c->pid(), pid);
  EXPECT_TRUE(c->running());
  EXPECT_EQ(ok, 400);
  EXPECT_GT(unavailable, 0);
  EXPECT_EQ(with_retry_after, unavailable);
  EXPECT_EQ(other, 0);
  health = HttpRequest("GET", c->url() + "/healthz", "", {}, c->ca_file(), 5000);
  EXPECT_EQ(health.status, 200);
  auto stored = Stored();
  EXPECT_EQ(stored.size(), 400u * 20);
  for (const auto& [id, n] : stored) ASSERT_EQ(n, 1) << id;
  EXPECT_EQ(c->Stop(), 0);
}

TEST_F(PgCollectorTest, AnExhaustedConnectionPoolAnswers503InsteadOfHanging) {
  auto c = StartCollector({"--pg-pool-size", "1", "--pg-acquire-timeout-ms", "300", "--pg-lock-timeout-ms", "2000"});
  ASSERT_TRUE(c);
  ASSERT_EQ(Post(*c, Batch({"warm-1"})).status, 200);
  // Another session holds a lock the ingest transaction needs, from here until the test lets it go.
  std::unique_ptr<PGconn, decltype(&PQfinish)> locker(PQconnectdb(uri_.c_str()), &PQfinish);
  ASSERT_EQ(PQstatus(locker.get()), CONNECTION_OK) << PQerrorMessage(locker.get());
  auto exec = [&](const char* sql) {
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(locker.get(), sql), &PQclear);
    ExecStatusType st = PQresultStatus(r.get());
    EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) << sql << ": " << PQerrorMessage(locker.get());
    return st == PGRES_TUPLES_OK && PQntuples(r.get()) > 0 ? std::string(PQgetvalue(r.get(), 0, 0)) : std::string();
  };
  exec("BEGIN");
  exec("LOCK TABLE event_ids IN ACCESS EXCLUSIVE MODE");
  HttpResult held;
  std::thread batch([&] { held = Post(*c, Batch({"held-1"}), 15000); });
  // The collector's only connection now waits on that lock (the server shows the waiting lock request).
  for (;;) {
    std::string waiting = exec(
        "SELECT count(*) FROM pg_locks l JOIN pg_class r ON r.oid = l.relation "
        "WHERE r.relname = 'event_ids' AND NOT l.granted");
    if (waiting.empty() || waiting != "0") break;
  }
  // The pool's one connection is busy: the health check waits at most 300 ms for it, then answers 503.
  HttpResult health = HttpRequest("GET", c->url() + "/healthz", "", {}, c->ca_file(), 3000);
  EXPECT_EQ(health.status, 503);
  batch.join();
  // The held batch gave up at the lock timeout with a 503 the client retries.
  EXPECT_EQ(held.status, 503);
  EXPECT_FALSE(held.retry_after.empty());
  exec("COMMIT");
  EXPECT_EQ(Post(*c, Batch({"held-1"})).status, 200);
  EXPECT_EQ(HttpRequest("GET", c->url() + "/healthz", "", {}, c->ca_file(), 3000).status, 200);
  auto stored = Stored();
  EXPECT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored["held-1"], 1);
  EXPECT_EQ(c->Stop(), 0);
}

// Issue 11, item 12: a write key or admin token revoked through one collector is refused by that collector at once
// and by every other collector on the same database within seconds (write keys are cached for kWriteKeyCacheMs;
// admin tokens are read on every call).
TEST_F(PgCollectorTest, ARevocationThroughOneCollectorHoldsOnEveryCollectorOfTheDatabase) {
  auto a = StartCollector();
  auto b = StartCollector();
  ASSERT_TRUE(a && b);
  auto ops = store_->CreateAdminToken("ops", {"operator"});
  auto officer = store_->CreateAdminToken("officer", {"compliance"});
  ASSERT_TRUE(ops.ok() && officer.ok());
  auto admin = [&](const CollectorProcess& c, const std::string& method, const std::string& path,
                   const std::string& token, const std::string& body = "") {
    return HttpRequest(method, c.url() + path, body,
                       {"Authorization: Bearer " + token, "Content-Type: application/json"}, c.ca_file());
  };
  ASSERT_EQ(Post(*a, Batch({"r-1"})).status, 200);
  ASSERT_EQ(Post(*b, Batch({"r-2"})).status, 200);  // b holds the key in its cache now
  ASSERT_EQ(admin(*b, "GET", "/v1/requests", *officer).status, 200);

  HttpResult list = admin(*a, "GET", "/v1/keys", *ops);
  ASSERT_EQ(list.status, 200) << list.body;
  Json doc = Json::parse(list.body);
  int64_t key_id = 0, officer_id = 0;
  for (const Json& k : doc["writeKeys"]) {
    if (k["prefix"] == key_.substr(0, 7)) key_id = k["id"].get<int64_t>();
  }
  for (const Json& t : doc["adminTokens"]) {
    if (t["name"] == "officer") officer_id = t["id"].get<int64_t>();
  }
  ASSERT_GT(key_id, 0);
  ASSERT_GT(officer_id, 0);
  EXPECT_EQ(list.body.find(key_), std::string::npos);  // never a secret in the list

  ASSERT_EQ(admin(*a, "POST", "/v1/keys/write-keys/" + std::to_string(key_id) + "/revoke", *ops, "{}").status, 200);
  ASSERT_EQ(admin(*a, "POST", "/v1/keys/admin-tokens/" + std::to_string(officer_id) + "/revoke", *ops, "{}").status,
            200);
  // At once on a; the admin token at once on b too.
  EXPECT_EQ(Post(*a, Batch({"r-3"})).status, 401);
  EXPECT_EQ(admin(*b, "GET", "/v1/requests", *officer).status, 401);
  EXPECT_EQ(admin(*a, "GET", "/v1/requests", *officer).status, 401);
  // The write key on b once its short cache aged (the wait ends on the refusal; it only bounds a broken build).
  EXPECT_TRUE(WaitFor([&] { return Post(*b, Batch({"r-4"})).status == 401; }, nullptr, {30000, 250, 0}));
  EXPECT_EQ(Stored().count("r-3"), 0u);
  // Both revocations are in the audit log.
  HttpResult audit = admin(*b, "GET", "/v1/audit?limit=1000", *ops);
  ASSERT_EQ(audit.status, 200);
  int revocations = 0;
  const Json entries = Json::parse(audit.body)["entries"];
  for (const Json& e : entries) revocations += e["action"] == "keys.revoke";
  EXPECT_EQ(revocations, 2);
}

}  // namespace
}  // namespace ferry::testsupport
