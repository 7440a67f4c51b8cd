// PostgreSQL store figures (a throwaway cluster with durable defaults, started and stopped here):
//  1. ingest events/s through one and through two ferry-collector processes on one database (HTTP, batches of 100
//     events, N concurrent clients spread over the collectors);
//  2. subject find/export/erase times on a table of 1,000,000 events (bulk-loaded with SQL; the subject holds 500).
// Usage: ferry_bench_pg [seconds per ingest run, default 10] [clients, default 8] [events in the table, default 1e6]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

#include "collector/engines/postgres/pg_store.h"
#include "lib/base/time.h"
#include "tests/support/collector_process.h"
#include "tests/support/pg_cluster.h"

using ferry::testsupport::CollectorOptions;
using ferry::testsupport::CollectorProcess;
using ferry::testsupport::HttpRequest;
using ferry::testsupport::PgCluster;
using Json = nlohmann::json;

namespace {

double Seconds(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

std::string Batch(int client, int64_t seq) {
  Json events = Json::array();
  std::string ts = ferry::base::FormatIso8601(ferry::base::NowMs());
  for (int i = 0; i < 100; ++i) {
    std::string id = "b" + std::to_string(client) + "-" + std::to_string(seq) + "-" + std::to_string(i);
    events.push_back({{"messageId", id},
                      {"type", "track"},
                      {"event", "Product Viewed"},
                      {"anonymousId", "anon-" + std::to_string((seq * 7 + i) % 5000)},
                      {"timestamp", ts},
                      {"purpose", "analytics"},
                      {"properties", {{"sku", "SKU-" + std::to_string(i)}, {"price", 19.99}, {"currency", "EUR"}}}});
  }
  return Json{{"sentAt", ts}, {"batch", events}}.dump();
}

// Events/s stored through `collectors` processes.
double Ingest(const std::string& uri, const std::string& key, int collectors, int clients, double seconds) {
  std::vector<std::unique_ptr<CollectorProcess>> cs;
  for (int i = 0; i < collectors; ++i) {
    CollectorOptions o;
    o.tls = false;
    o.extra_args = {"--storage", uri, "--rate-limit", "0", "--pg-pool-size", "4"};
    std::string error;
    auto c = CollectorProcess::Start(o, &error);
    if (!c) {
      std::fprintf(stderr, "collector did not start: %s\n", error.c_str());
      std::exit(1);
    }
    cs.push_back(std::move(c));
  }
  std::atomic<int64_t> stored{0}, errors{0};
  std::atomic<bool> stop{false};
  static std::atomic<int> run{0};
  int this_run = ++run;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t seq = 0; !stop; ++seq) {
        std::string body = Batch(this_run * 1000 + t, seq);
        auto r = HttpRequest("POST", cs[t % collectors]->batch_url(), body,
                             {"Authorization: Bearer " + key, "Content-Type: application/json"});
        if (r.status == 200) {
          stored += Json::parse(r.body, nullptr, false).value("accepted", 0);
        } else {
          ++errors;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  double s = Seconds(t0);
  if (errors > 0) std::printf("  (%lld failed batches)\n", static_cast<long long>(errors.load()));
  for (auto& c : cs) c->Stop();
  return static_cast<double>(stored.load()) / s;
}

struct Counter : ferry::collector::ExportVisitor {
  int64_t events = 0, consent = 0;
  bool BeginProject(const ferry::collector::SubjectSummary&) override { return true; }
  bool Consent(const ferry::collector::ConsentRecord&) override { return ++consent > 0; }
  bool Event(const ferry::collector::EventRow&) override { return ++events > 0; }
  bool EndProject() override { return true; }
};

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 10;
  int clients = argc > 2 ? std::atoi(argv[2]) : 8;
  int64_t table_events = argc > 3 ? std::atoll(argv[3]) : 1000000;
  std::string error;
  auto cluster = PgCluster::Start(&error);
  if (!cluster) {
    std::fprintf(stderr, "PostgreSQL did not start: %s\n", error.c_str());
    return 1;
  }
  std::printf("PostgreSQL %s, data in %s (fsync on, synchronous_commit on)\n", PgCluster::BinDir().c_str(),
              cluster->data_dir().c_str());

  // ---- Ingest ----
  for (int collectors : {1, 2}) {
    std::string db = "ingest_" + std::to_string(collectors);
    std::string uri = cluster->CreateDatabase(db, &error);
    ferry::collector::PgOptions o;
    o.conninfo = uri;
    auto store = ferry::collector::PgStore::Open(o);
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
      return 1;
    }
    std::string key = *(*store)->CreateWriteKey("shop");
    double eps = Ingest(uri, key, collectors, clients, seconds);
    std::printf("ingest, %d collector%s, %d clients, batches of 100, %.0f s: %.0f events/s\n", collectors,
                collectors > 1 ? "s" : "", clients, seconds, eps);
    std::fflush(stdout);
  }

  // ---- Subject export / erase on a large table ----
  std::string uri = cluster->CreateDatabase("subjects", &error);
  ferry::collector::PgOptions o;
  o.conninfo = uri;
  auto opened = ferry::collector::PgStore::Open(o);
  if (!opened.ok()) return 1;
  auto& store = *opened;
  (void)store->CreateWriteKey("shop");
  {
    // The monthly partitions of the last 60 days, made the way ingest makes them.
    ferry::collector::InsertRequest r;
    r.project_id = 1;
    for (int d = 0; d < 60; ++d) {
      ferry::collector::StoredEvent e;
      e.message_id = "seed-" + std::to_string(d);
      e.type = "track";
      e.anonymous_id = "seed";
      e.timestamp_ms = ferry::base::NowMs() - d * 86400000LL;
      e.body = "{}";
      r.events.push_back(e);
    }
    std::vector<ferry::collector::InsertRequest*> reqs = {&r};
    if (!store->Insert(reqs).ok()) return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  // Every event in the last 60 days; half of them by 1,000 users (500 each, linked anonymousIds), half anonymous.
  std::string n = std::to_string(table_events);
  std::string load =
      "INSERT INTO events(project_id, message_id, type, user_id, anonymous_id, name, purpose, timestamp_ms, "
      "received_ms, body) SELECT 1, 'm' || g, 'track', CASE WHEN g % 2 = 0 THEN 'user-' || (g / 2 % 1000) END, "
      "'anon-' || (g % 2000), 'Product Viewed', 'analytics', "
      "(extract(epoch from now()) * 1000)::bigint - (g % 60)::bigint * 86400000, (extract(epoch from now()) * "
      "1000)::bigint, "
      "'{\"messageId\":\"m' || g || '\",\"type\":\"track\",\"properties\":{\"sku\":\"SKU-1\",\"price\":19.99}}' "
      "FROM generate_series(1, " +
      n +
      ") g;"
      "INSERT INTO event_ids SELECT 1, 'm' || g, 0 FROM generate_series(1, " +
      n +
      ") g;"
      "INSERT INTO identity_links(project_id, from_kind, from_id, user_id, source, first_seen_ms) "
      "SELECT 1, 'anonymousId', 'anon-' || (u * 2 % 2000), 'user-' || u, 'identify', 0 FROM generate_series(0, 999) u;"
      "ANALYZE;";
  std::string out;
  if (cluster->Psql("subjects", load, &out) != 0) {
    std::fprintf(stderr, "bulk load failed: %s\n", out.c_str());
    return 1;
  }
  std::printf("bulk load of %lld events: %.1f s\n", static_cast<long long>(table_events), Seconds(t0));
  cluster->Psql("subjects",
                "SELECT count(*) FROM events WHERE user_id = 'user-42' OR anonymous_id IN "
                "(SELECT from_id FROM identity_links WHERE user_id = 'user-42')",
                &out);
  std::printf("subject user-42 holds %s events\n", out.substr(0, out.find('\n')).c_str());

  t0 = std::chrono::steady_clock::now();
  auto found = store->FindSubject({"shop", "user-42"});
  double find_s = Seconds(t0);
  Counter c;
  t0 = std::chrono::steady_clock::now();
  auto exported = store->ExportSubject({"shop", "user-42"}, c);
  double export_s = Seconds(t0);
  t0 = std::chrono::steady_clock::now();
  auto erased = store->EraseSubject({"shop", "user-42"}, "req_bench");
  double erase_s = Seconds(t0);
  if (!found.ok() || !exported.ok() || !erased.ok()) {
    std::fprintf(stderr, "subject calls failed\n");
    return 1;
  }
  std::printf("on %lld events: find %.1f ms, export %.1f ms (%lld events streamed), erase %.1f ms (%lld events)\n",
              static_cast<long long>(table_events), find_s * 1000, export_s * 1000, static_cast<long long>(c.events),
              erase_s * 1000, static_cast<long long>(erased->erased.count("events") ? erased->erased.at("events") : 0));
  return 0;
}
