// PostgreSQL store figures (a throwaway cluster with durable defaults, started and stopped here):
//  1. ingest through one and through two ferry-collector processes on one database: keep-alive clients POST
//     pre-built zstd batches of 100 track events, each event from one of 5,000 devices (anonymousIds), so a batch
//     carries ~100 devices (as an agent forwards them; an SDK's batch is one device's); events/s stored, requests/s,
//     request latency percentiles, the load average beside them. --rate caps the load offered (events/s over all
//     clients, each client pacing its requests) to read the latency at a given load, each request's from the
//     moment it was due.
//  2. subject find/export/erase times on a table of N events (bulk-loaded with SQL; the subject holds 500).
// Usage: ferry_bench_pg [seconds per ingest run, default 10] [clients, default 8] [events in the table, default 1e6]
//                       [--tls] [--rate EVENTS_PER_S] [--collectors 1|2|both] [--no-subjects] [--keys ordered|v4]
//                       [--months N] [--warmup S] [--wal-in-service]
// --months: N earlier monthly partitions of `events` made (empty) before the ingest, as a store that keeps a year of
// events has them: every partition's indexes are probed by the gate's identity lookups.
// --warmup S: the clients send for S seconds first, at the same pace, and only what follows is measured (the
// collector's connections, plans and caches warm, as on a server in service).
// --wal-in-service: before the ingest, ~640 MiB of WAL written and a checkpoint taken, so that the WAL segments the
// runs fill are recycled ones, as on a server in service; a fresh cluster creates each 16 MiB segment as it fills
// the one before, writing it with zeros and flushing it first (wal_init_zero), a stall of one commit each time.
// --keys: the messageIds "b<batch>-<event>" (ordered, the default: near the end of the index, as the SDK's UUIDv7) or
// random UUIDv4 (other senders: each at a page of its own; docs/PERFORMANCE.md, "what the events' keys cost").
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/engines/postgres/pg_store.h"
#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "lib/wire/codec.h"
#include "tests/support/collector_process.h"
#include "tests/support/pg_cluster.h"

using ferry::testsupport::CollectorOptions;
using ferry::testsupport::CollectorProcess;
using ferry::testsupport::PgCluster;
using Json = nlohmann::json;

namespace {

constexpr int kPerBatch = 100;

double Seconds(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

size_t Collect(char* p, size_t size, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, size * n);
  return size * n;
}

// Batch `no`: 100 track events (~330 bytes stored), each from device (no * 7 + i) % 5000; zstd level 3 as the SDK
// sends it.
std::string Batch(int64_t no, const std::string& ts, bool v4) {
  std::string json = "{\"sentAt\":\"" + ts + "\",\"batch\":[";
  char buf[512];
  for (int i = 0; i < kPerBatch; ++i) {
    const std::string id = v4 ? ferry::base::NewUuidV4() : "b" + std::to_string(no) + "-" + std::to_string(i);
    std::snprintf(buf, sizeof buf,
                  "%s{\"messageId\":\"%s\",\"type\":\"track\",\"event\":\"Product Viewed\","
                  "\"anonymousId\":\"anon-%lld\",\"timestamp\":\"%s\",\"purpose\":\"analytics\","
                  "\"properties\":{\"sku\":\"SKU-%d\",\"price\":19.99,\"currency\":\"EUR\"}}",
                  i == 0 ? "" : ",", id.c_str(), static_cast<long long>((no * 7 + i) % 5000), ts.c_str(), i);
    json += buf;
  }
  json += "]}";
  return ferry::wire::ZstdCompress(json, 3);
}

struct IngestResult {
  double events_per_s = 0, requests_per_s = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
  int64_t failed = 0, duplicate = 0;
  double load1 = 0;
};

// Through `collectors` processes on `uri`, `clients` keep-alive clients spread over them, for `seconds` after
// `warmup` seconds not measured; `rate` > 0 paces the clients to that many events/s in all (latency then from each
// request's due time).
IngestResult Ingest(const std::string& uri, const std::string& key, int collectors, int clients, double seconds,
                    double warmup, bool tls, double rate, const std::vector<std::string>& batches) {
  std::vector<std::unique_ptr<CollectorProcess>> cs;
  for (int i = 0; i < collectors; ++i) {
    CollectorOptions o;
    o.tls = tls;
    o.extra_args = {"--storage", uri, "--rate-limit", "0", "--pg-pool-size", "4"};
    std::string error;
    auto c = CollectorProcess::Start(o, &error);
    if (!c) {
      std::fprintf(stderr, "collector did not start: %s\n", error.c_str());
      std::exit(1);
    }
    cs.push_back(std::move(c));
  }
  std::atomic<size_t> next_batch{0};
  std::atomic<int64_t> stored{0}, duplicate{0}, failed{0}, requests{0};
  std::vector<std::vector<double>> lat(static_cast<size_t>(clients));
  // Each client's interval between requests when paced.
  const double interval = rate > 0 ? clients * kPerBatch / rate : 0;
  using Duration = std::chrono::steady_clock::duration;
  auto start = std::chrono::steady_clock::now();
  // The measured window: [t0, deadline).
  auto t0 = start + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(warmup));
  auto deadline = t0 + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      const CollectorProcess& c = *cs[static_cast<size_t>(t % collectors)];
      std::unique_ptr<CURL, CurlDeleter> h(curl_easy_init());
      std::unique_ptr<curl_slist, SlistDeleter> hdrs;
      std::string auth = "Authorization: Bearer " + key;
      for (const char* line : {auth.c_str(), "Content-Encoding: zstd", "Content-Type: application/json", "Expect:"}) {
        hdrs.reset(curl_slist_append(hdrs.release(), line));
      }
      std::string url = c.batch_url(), answer;
      curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
      curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, hdrs.get());
      curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(h.get(), CURLOPT_TCP_NODELAY, 1L);
      if (!c.ca_file().empty()) curl_easy_setopt(h.get(), CURLOPT_CAINFO, c.ca_file().c_str());
      curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, Collect);
      curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &answer);
      auto due = start + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(interval * t / clients));
      while (std::chrono::steady_clock::now() < deadline) {
        // Paced, a request's latency counts from the moment it was due: one that waited for a late answer before it
        // counts that wait too (no coordinated omission).
        auto scheduled = due;
        if (interval > 0) {
          std::this_thread::sleep_until(due);
          due += std::chrono::duration_cast<Duration>(std::chrono::duration<double>(interval));
          if (std::chrono::steady_clock::now() >= deadline) break;
        }
        const std::string& body = batches[next_batch++ % batches.size()];
        curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(h.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        answer.clear();
        auto sent = interval > 0 ? scheduled : std::chrono::steady_clock::now();
        CURLcode rc = curl_easy_perform(h.get());
        long code = 0;
        curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &code);
        if (sent < t0) continue;  // warm-up
        lat[static_cast<size_t>(t)].push_back(Seconds(sent));
        ++requests;
        if (rc != CURLE_OK || code != 200) {
          ++failed;
          continue;
        }
        Json a = Json::parse(answer, nullptr, false);
        stored += a.value("accepted", 0);
        duplicate += a.value("duplicate", 0);
      }
    });
  }
  for (auto& th : threads) th.join();
  double s = Seconds(t0);
  IngestResult r;
  double load[3] = {0, 0, 0};
  r.load1 = getloadavg(load, 3) < 1 ? -1 : load[0];
  for (auto& c : cs) c->Stop();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : 1e3 * all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))];
  };
  r.events_per_s = static_cast<double>(stored.load()) / s;
  r.requests_per_s = static_cast<double>(requests.load()) / s;
  r.p50_ms = pct(0.5);
  r.p90_ms = pct(0.9);
  r.p99_ms = pct(0.99);
  r.max_ms = all.empty() ? 0.0 : 1e3 * all.back();
  r.failed = failed.load();
  r.duplicate = duplicate.load();
  return r;
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
  double seconds = 10, rate = 0, warmup = 0;
  int clients = 8;
  int64_t table_events = 1000000;
  bool tls = false, subjects = true, v4 = false, wal_in_service = false;
  int months = 0;
  std::vector<int> collector_counts = {1, 2};
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--tls") {
      tls = true;
    } else if (a == "--rate" && i + 1 < argc) {
      rate = std::atof(argv[++i]);
    } else if (a == "--collectors" && i + 1 < argc) {
      std::string v = argv[++i];
      collector_counts = v == "both" ? std::vector<int>{1, 2} : std::vector<int>{std::atoi(v.c_str())};
    } else if (a == "--no-subjects") {
      subjects = false;
    } else if (a == "--keys" && i + 1 < argc &&
               (std::string(argv[i + 1]) == "v4" || std::string(argv[i + 1]) == "ordered")) {
      v4 = std::string(argv[++i]) == "v4";
    } else if (a == "--months" && i + 1 < argc) {
      months = std::max(0, std::min(120, std::atoi(argv[++i])));
    } else if (a == "--wal-in-service") {
      wal_in_service = true;
    } else if (a == "--warmup" && i + 1 < argc) {
      warmup = std::max(0.0, std::min(60.0, std::atof(argv[++i])));
    } else if (a[0] != '-' && positional < 3) {
      if (positional == 0) seconds = std::atof(a.c_str());
      if (positional == 1) clients = std::atoi(a.c_str());
      if (positional == 2) table_events = std::atoll(a.c_str());
      ++positional;
    } else {
      std::fprintf(stderr,
                   "usage: %s [seconds] [clients] [table events] [--tls] [--rate EVENTS_PER_S] "
                   "[--collectors 1|2|both] [--no-subjects] [--keys ordered|v4] [--months N] [--warmup S] "
                   "[--wal-in-service]\n",
                   argv[0]);
      return 2;
    }
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::string error;
  auto cluster = PgCluster::Start(&error);
  if (!cluster) {
    std::fprintf(stderr, "PostgreSQL did not start: %s\n", error.c_str());
    return 1;
  }
  // The databases' collation (FERRY_PG_LOCALE): every id the store indexes compares through it (docs/POSTGRES.md).
  std::string collation;
  if (cluster->Psql("postgres", "SELECT datcollate FROM pg_database WHERE datname = 'template1'", &collation) != 0) {
    collation = "?";
  }
  while (!collation.empty() && (collation.back() == '\n' || collation.back() == ' ')) collation.pop_back();
  std::printf("PostgreSQL %s, data in %s (fsync on, synchronous_commit on, collation %s)\n",
              PgCluster::BinDir().c_str(), cluster->data_dir().c_str(), collation.c_str());

  if (wal_in_service) {
    std::string out;
    if (cluster->Psql("postgres",
                      "CREATE TABLE wal_fill AS SELECT repeat('x', 1800) AS pad FROM generate_series(1, 350000); "
                      "DROP TABLE wal_fill; CHECKPOINT",
                      &out) != 0) {
      std::fprintf(stderr, "cannot fill the WAL: %s\n", out.c_str());
      return 1;
    }
    out.clear();
    cluster->Psql("postgres", "SELECT count(*) FROM pg_ls_waldir()", &out);
    std::printf("WAL segments in pg_wal after a fill and a checkpoint: %s\n", out.substr(0, out.find('\n')).c_str());
  }

  // ---- Ingest ----
  // Unique batches for ~100,000 events/s over the run (each run has a database of its own).
  std::vector<std::string> batches(static_cast<size_t>(std::max(1000.0, 1000 * (seconds + warmup))));
  const std::string ts = ferry::base::FormatIso8601(ferry::base::NowMs());
  for (size_t i = 0; i < batches.size(); ++i) batches[i] = Batch(static_cast<int64_t>(i), ts, v4);
  for (int collectors : collector_counts) {
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
    if (months > 0) {
      // The months before this one, each a partition listed as the store lists its own (retention drops them).
      std::string sql =
          "DO $$ DECLARE m timestamp := date_trunc('month', now() AT TIME ZONE 'UTC'); lo bigint; hi bigint; "
          "n text; BEGIN FOR i IN 1.." +
          std::to_string(months) +
          " LOOP hi := (extract(epoch FROM m) * 1000)::bigint; m := m - interval '1 month'; "
          "lo := (extract(epoch FROM m) * 1000)::bigint; n := 'events_' || to_char(m, 'YYYYMM'); "
          "EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%s) TO (%s)', n, lo, hi); "
          "INSERT INTO event_partitions(name, lo_ms, hi_ms) VALUES (n, lo, hi); END LOOP; END $$";
      std::string out;
      if (cluster->Psql(db, sql, &out) != 0) {
        std::fprintf(stderr, "cannot make the earlier months' partitions: %s\n", out.c_str());
        return 1;
      }
    }
    IngestResult r = Ingest(uri, key, collectors, clients, seconds, warmup, tls, rate, batches);
    std::string rows;
    cluster->Psql(db, "SELECT count(*) FROM events", &rows);
    std::printf(
        "ingest, %d collector%s, %s, %d clients%s, batches of %d from ~100 devices, %s ids, %d earlier months, %.0f s "
        "after a %.0f s warm-up (load %.2f): "
        "%.0f events/s, %.0f requests/s, latency p50 %.1f ms p90 %.1f ms p99 %.1f ms max %.1f ms; "
        "%lld failed requests, %lld duplicates, %s rows stored\n",
        collectors, collectors > 1 ? "s" : "", tls ? "TLS" : "plain HTTP", clients,
        rate > 0 ? (" paced to " + std::to_string(static_cast<int64_t>(rate)) + " events/s").c_str() : "", kPerBatch,
        v4 ? "UUIDv4" : "ordered", months, seconds, warmup, r.load1, r.events_per_s, r.requests_per_s, r.p50_ms,
        r.p90_ms, r.p99_ms, r.max_ms, static_cast<long long>(r.failed), static_cast<long long>(r.duplicate),
        rows.substr(0, rows.find('\n')).c_str());
    // The target's configuration (issue 16): TLS, one collector, the SDK's time-ordered ids, no earlier months.
    if (tls && collectors == 1 && !v4 && months == 0) {
      if (rate > 0) {
        std::printf(
            "== issue 16 target: collector ingest, PostgreSQL, p99 < 20 ms at half of 50000 events/s: paced at %.0f, "
            "p99 %.1f ms, load %.2f: %s\n",
            rate, r.p99_ms, r.load1, rate >= 25000 && r.p99_ms < 20 ? "met" : "MISSED");
      } else {
        std::printf(
            "== issue 16 target: collector ingest, PostgreSQL >= 50000 events/s: measured %.0f, load %.2f: %s\n",
            r.events_per_s, r.load1, r.events_per_s >= 50000 ? "met" : "MISSED");
      }
    }
    std::fflush(stdout);
  }
  curl_global_cleanup();
  if (!subjects) return 0;

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
  // As autovacuum leaves an insert-only table (PostgreSQL 13+ vacuums after inserts): the visibility map set, so an
  // erasure's VACUUM reads the pages it changed, not every page of a table no VACUUM has seen.
  if (cluster->Psql("subjects", "VACUUM (ANALYZE) events", &out) != 0) {
    std::fprintf(stderr, "VACUUM failed: %s\n", out.c_str());
    return 1;
  }
  std::printf("bulk load of %lld events (and a VACUUM): %.1f s\n", static_cast<long long>(table_events), Seconds(t0));
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
