// Erasure figures on both stores (issue 13), with ingest running: a store of 1,000,000 events (written through the
// Store API) holding subject A (10,000 events on 3 devices, spread through the store) and 1,000 small subjects
// (bulk-0 .. bulk-999, 10 events each), served by a real ferry-collector over TLS while `clients` concurrent clients
// post batches of 100 events. Prints, each with the 1-minute load average beside it:
//   - the erase time of subject A (POST /v1/subjects/subject-A/erase, receipt received) and the longest ingest pause
//     a client saw meanwhile (the slowest batch that overlapped the erasure; the slowest batch before it, for
//     comparison),
//   - the bulk erasure of the 1,000 small subjects (one POST /v1/erasures of 1,000 ids) and the pause meanwhile.
// Usage: ferry_bench_erasure [--store sqlite|postgres|both] [--events N] [--subject-events K] [--bulk B]
//                            [--clients C] [--no-vacuum (PostgreSQL: no VACUUM ANALYZE after the load)]
//                            [--erase-chunk-rows N (embedded store: passed to the collector)]
//                            [--store-page-size 4096|16384 (embedded store: the page size it is made with)]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/engines/open_store.h"
#include "lib/base/time.h"
#include "tests/support/collector_process.h"
#include "tests/support/pg_cluster.h"

namespace {

using Clock = std::chrono::steady_clock;
using ferry::collector::InsertRequest;
using ferry::collector::StoredEvent;
using ferry::testsupport::CollectorOptions;
using ferry::testsupport::CollectorProcess;
using ferry::testsupport::HttpRequest;
using ferry::testsupport::PgCluster;
using Json = nlohmann::json;

double Secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double Load() {
  double l[3] = {0, 0, 0};
  return getloadavg(l, 3) < 1 ? -1 : l[0];
}

StoredEvent Make(int64_t n, const std::string& user, const std::string& anon, int64_t now_ms) {
  StoredEvent e;
  e.message_id = "m-" + std::to_string(n);
  e.type = "track";
  e.user_id = user;
  e.anonymous_id = anon;
  e.name = "Product Viewed";
  e.purpose = "analytics";
  e.timestamp_ms = now_ms - 86400000 + n;  // within the default retention
  e.received_ms = e.timestamp_ms + 5;
  e.body = "{\"messageId\":\"" + e.message_id + "\",\"type\":\"track\",\"event\":\"Product Viewed\",\"userId\":\"" +
           user + "\",\"anonymousId\":\"" + anon +
           "\",\"purpose\":\"analytics\",\"properties\":{\"sku\":\"SKU-12345\",\"price\":19.99,\"currency\":\"EUR\"},"
           "\"context\":{\"app\":{\"name\":\"shop\",\"version\":\"1.2.3\"},\"os\":{\"name\":\"Android\",\"version\":"
           "\"14\"},\"locale\":\"de-DE\"}}";
  return e;
}

std::string BatchBody(int client, int64_t seq) {
  std::string ts = ferry::base::FormatIso8601(ferry::base::NowMs());
  std::string b = "{\"batch\":[";
  for (int i = 0; i < 100; ++i) {
    if (i) b += ',';
    b += "{\"messageId\":\"live-" + std::to_string(client) + "-" + std::to_string(seq) + "-" + std::to_string(i) +
         "\",\"type\":\"track\",\"event\":\"Live\",\"anonymousId\":\"live-anon-" + std::to_string(client) +
         "\",\"purpose\":\"analytics\",\"timestamp\":\"" + ts + "\",\"properties\":{\"i\":" + std::to_string(i) + "}}";
  }
  return b + "]}";
}

// Concurrent ingest clients recording every batch's [start, end].
class Ingest {
 public:
  Ingest(const CollectorProcess& col, const std::string& key, int clients) {
    for (int c = 0; c < clients; ++c) {
      ts_.emplace_back([this, &col, key, c] {
        for (int64_t seq = 0; !stop_.load(); ++seq) {
          auto t0 = Clock::now();
          auto r = HttpRequest("POST", col.batch_url(), BatchBody(c, seq),
                               {"Authorization: Bearer " + key, "Content-Type: application/json"}, col.ca_file());
          auto t1 = Clock::now();
          std::lock_guard<std::mutex> l(mu_);
          spans_.push_back({t0, t1});
          if (r.status != 200) ++errors_;
        }
      });
    }
  }
  ~Ingest() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : ts_) {
      if (t.joinable()) t.join();
    }
  }
  // The slowest batch that overlapped [a, b]; *began: when it started, in seconds after a (negative: before a).
  double LongestDuring(Clock::time_point a, Clock::time_point b, double* began = nullptr) {
    std::lock_guard<std::mutex> l(mu_);
    double worst = 0;
    for (const auto& [s, e] : spans_) {
      if (e >= a && s <= b && Secs(s, e) > worst) {
        worst = Secs(s, e);
        if (began != nullptr) *began = Secs(a, s);
      }
    }
    return worst;
  }
  int64_t errors() {
    std::lock_guard<std::mutex> l(mu_);
    return errors_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::pair<Clock::time_point, Clock::time_point>> spans_;
  int64_t errors_ = 0;
  std::vector<std::thread> ts_;
};

// One store's run; false on a failure.
std::vector<std::string> g_collector_args;  // passed to the collector as they are
int g_page_size = 4096;                     // the embedded store's cipher page size (--store-page-size)

bool Run(const std::string& store_name, int64_t total, int64_t per_subject, int bulk, int clients, bool vacuum_first) {
  char tmpl[] = "/tmp/ferry-bench-erasure-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::unique_ptr<PgCluster> cluster;
  ferry::collector::StoreConfig cfg;
  cfg.data_dir = dir;
  cfg.sqlite_page_size = g_page_size;
  if (store_name == "postgres") {
    std::string err;
    cluster = PgCluster::Start(&err);
    if (!cluster) return std::fprintf(stderr, "postgres: %s\n", err.c_str()), false;
    cfg.storage = cluster->CreateDatabase("ferry", &err);
    if (cfg.storage.empty()) return std::fprintf(stderr, "postgres: %s\n", err.c_str()), false;
  }
  std::string key;
  {
    auto store = ferry::collector::MakeStore(cfg);
    if (!store.ok()) return std::fprintf(stderr, "store: %s\n", store.status().ToString().c_str()), false;
    auto k = (*store)->CreateWriteKey("bench");
    if (!k.ok()) return false;
    key = *k;
    int64_t pid = (*(*store)->LookupWriteKey(key))->project_id;
    auto t0 = Clock::now();
    int64_t now = ferry::base::NowMs();
    int64_t every = total / per_subject;  // one of subject A's events every `every` events
    int64_t a = 0, small = 0;
    const int64_t kSmallEvents = 10;
    for (int64_t n = 0; n < total;) {
      InsertRequest req;
      req.project_id = pid;
      for (int64_t i = 0; i < 20000 && n < total; ++i, ++n) {
        if (n % every == 0 && a < per_subject) {
          req.events.push_back(Make(n, "subject-A", "anon-A-" + std::to_string(a % 3), now));
          ++a;
        } else if (n % every == 1 && small < bulk * kSmallEvents) {
          std::string who = "bulk-" + std::to_string(small % bulk);
          req.events.push_back(Make(n, who, "dev-" + who, now));
          ++small;
        } else {
          int64_t u = n % 50000;
          req.events.push_back(Make(n, "user-" + std::to_string(u), "anon-" + std::to_string(u), now));
        }
      }
      std::vector<InsertRequest*> reqs = {&req};
      (*store)->Prepare(&req);  // as the ingest path does (the embedded store compresses the bodies)
      ferry::base::Status s = (*store)->Insert(reqs);
      if (!s.ok()) return std::fprintf(stderr, "insert: %s\n", s.ToString().c_str()), false;
    }
    std::printf("[%s] store: %lld events (subject A %lld, %d small subjects of %lld) written in %.1f s\n",
                store_name.c_str(), static_cast<long long>(total), static_cast<long long>(a), bulk,
                static_cast<long long>(kSmallEvents), Secs(t0, Clock::now()));
  }
  if (cluster) {
    // A table in use has been visited by autovacuum long before; a freshly loaded one has not, and the first
    // erasure's VACUUM would visit every page once (measured separately: --no-vacuum).
    if (vacuum_first) {
      auto t0 = Clock::now();
      std::string out;
      if (cluster->Psql("ferry", "VACUUM ANALYZE", &out) != 0) {
        return std::fprintf(stderr, "vacuum: %s\n", out.c_str()), false;
      }
      std::printf("[%s] VACUUM ANALYZE after the load (as autovacuum would): %.1f s\n", store_name.c_str(),
                  Secs(t0, Clock::now()));
    } else {
      std::printf("[%s] no VACUUM after the load (--no-vacuum)\n", store_name.c_str());
    }
  }

  CollectorOptions opts;
  opts.project = "bench";
  if (store_name == "postgres") {
    opts.extra_args = {"--storage", cfg.storage};
  } else {
    opts.data_dir = dir;
  }
  opts.extra_args.insert(opts.extra_args.end(), {"--rate-limit", "0"});
  opts.extra_args.insert(opts.extra_args.end(), g_collector_args.begin(), g_collector_args.end());
  std::string err;
  auto col = CollectorProcess::Start(opts, &err);
  if (!col) return std::fprintf(stderr, "collector: %s\n", err.c_str()), false;
  std::string token;
  if (store_name == "postgres") {
    auto store = ferry::collector::MakeStore(cfg);
    if (!store.ok()) return false;
    auto t = (*store)->CreateAdminToken("bench", {"compliance"});
    if (!t.ok()) return false;
    token = *t;
  } else {
    token = col->CreateAdminToken("compliance", "bench");
  }
  std::vector<std::string> auth = {"Authorization: Bearer " + token, "Content-Type: application/json"};

  bool ok = true;
  {
    Ingest ingest(*col, key, clients);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    auto quiet_from = Clock::now() - std::chrono::seconds(1);
    auto t0 = Clock::now();
    double before = ingest.LongestDuring(quiet_from, t0);
    auto er = HttpRequest("POST", col->url() + "/v1/subjects/subject-A/erase", "{}", auth, col->ca_file(), 120000);
    auto t1 = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // batches that started during it end
    double began = 0;
    double pause = ingest.LongestDuring(t0, t1, &began);
    Json receipt = Json::parse(er.body, nullptr, false);
    long long events =
        receipt.is_object() && receipt.contains("erased") ? receipt["erased"].value("events", -1LL) : -1LL;
    std::printf(
        "[%s] erase subject A (%lld events) among %lld, %d ingest clients: HTTP %d, %.3f s; longest ingest pause "
        "%.3f s, from %+.3f s into the call (slowest batch in the second before: %.3f s) (load average %.2f)\n",
        store_name.c_str(), events, static_cast<long long>(total), clients, er.status, Secs(t0, t1), pause, began,
        before, Load());
    ok = ok && er.status == 200;

    Json ids = Json::array();
    for (int i = 0; i < bulk; ++i) ids.push_back("bulk-" + std::to_string(i));
    t0 = Clock::now();
    auto br = HttpRequest("POST", col->url() + "/v1/erasures", Json{{"ids", ids}}.dump(), auth, col->ca_file(), 600000);
    t1 = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    pause = ingest.LongestDuring(t0, t1);
    Json bulk_doc = Json::parse(br.body, nullptr, false);
    std::string summary = bulk_doc.is_object() && bulk_doc.contains("summary") ? bulk_doc["summary"].dump() : br.body;
    std::printf(
        "[%s] bulk erasure of %d subjects (one POST /v1/erasures): HTTP %d, %.3f s (%.1f ms a subject); longest "
        "ingest pause %.3f s; %s (load average %.2f)\n",
        store_name.c_str(), bulk, br.status, Secs(t0, t1), Secs(t0, t1) * 1000 / bulk, pause, summary.c_str(), Load());
    ok = ok && br.status == 200;
    ingest.Stop();
    if (ingest.errors() > 0) {
      std::printf("[%s] %lld ingest batches failed\n", store_name.c_str(), static_cast<long long>(ingest.errors()));
    }
  }
  // What the collector says about its erasures (chunks, the longest, the last transaction; PostgreSQL: the VACUUM
  // after the answer).
  {
    const std::string log = col->Log();
    size_t shown = 0;
    for (size_t b = 0; b < log.size() && shown < 8;) {
      size_t e = log.find('\n', b);
      if (e == std::string::npos) e = log.size();
      const std::string line = log.substr(b, e - b);
      if (line.find("erasure req_") != std::string::npos || line.find("erasure scrub:") != std::string::npos) {
        std::printf("[%s] collector: %s\n", store_name.c_str(), line.c_str());
        ++shown;
      }
      b = e + 1;
    }
  }
  col->Stop();
  col.reset();
  cluster.reset();
  (void)std::system(("rm -rf '" + dir + "'").c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t total = 1000000, per_subject = 10000;
  int bulk = 1000, clients = 4;
  std::string which = "both";
  bool vacuum_first = true;
  static const char kUsage[] =
      "Usage: ferry_bench_erasure [--store sqlite|postgres|both] [--events N] [--subject-events K] [--bulk B]\n"
      "                           [--clients C] [--no-vacuum] [--erase-chunk-rows N] [--store-page-size 4096|16384]\n"
      "Erases a subject of K events among N (and B small subjects in one bulk request) from a real collector while C\n"
      "clients ingest, and prints the erase time and the longest ingest pause beside the load average.\n"
      "  --no-vacuum          PostgreSQL: no VACUUM ANALYZE after the load\n"
      "  --erase-chunk-rows N embedded store: passed to the collector\n"
      "  --store-page-size P  embedded store: the cipher page size the store is made with (default 4096)\n";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--no-vacuum") {
      vacuum_first = false;
      continue;
    }
    const bool known = arg == "--store" || arg == "--events" || arg == "--subject-events" || arg == "--bulk" ||
                       arg == "--clients" || arg == "--erase-chunk-rows" || arg == "--store-page-size";
    if (!known || i + 1 >= argc) {
      std::fprintf(stderr, "ferry_bench_erasure: %s %s\n%s", known ? "missing the value of" : "unknown option",
                   arg.c_str(), kUsage);
      return 2;
    }
    const char* v = argv[++i];
    if (arg == "--store") which = v;
    if (arg == "--events") total = std::atoll(v);
    if (arg == "--subject-events") per_subject = std::atoll(v);
    if (arg == "--bulk") bulk = std::atoi(v);
    if (arg == "--clients") clients = std::atoi(v);
    if (arg == "--erase-chunk-rows") g_collector_args = {"--erase-chunk-rows", v};
    if (arg == "--store-page-size") g_page_size = std::atoi(v);
  }
  bool ok = true;
  for (const char* s : {"sqlite", "postgres"}) {
    if (which != "both" && which != s) continue;
    if (std::string(s) == "postgres" && !PgCluster::Available()) {
      std::printf("[postgres] skipped: PostgreSQL binaries not found\n");
      continue;
    }
    ok = Run(s, total, per_subject, bulk, clients, vacuum_first) && ok;
    std::fflush(stdout);
  }
  return ok ? 0 : 1;
}
