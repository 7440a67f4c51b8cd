// Data-subject rights at scale: a store of 1,000,000 events (written through the Store API in big transactions)
// holding two subjects of 10,000 events each, served by a real ferry-collector over TLS. Prints:
//   - export time of one subject (GET /v1/subjects/{id}/export, whole document received) and its size, as JSON and
//     as the readable HTML copy in English and Chinese (?format=html), with the load average,
//   - erase time of that subject (POST /v1/subjects/{id}/erase, receipt received),
//   - ingest throughput (concurrent clients posting batches of 100) without and while the other subject is erased.
// Usage: ferry_bench_rights [--events N] [--subject-events K] [--clients C] [--keep DIR]
#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "collector/engines/sqlite/sqlite_store.h"
#include "tests/bench/bench_args.h"
#include "tests/support/collector_process.h"

namespace {

using Clock = std::chrono::steady_clock;
using ferry::collector::InsertRequest;
using ferry::collector::SqliteStore;
using ferry::collector::StoredEvent;
using ferry::testsupport::CollectorOptions;
using ferry::testsupport::CollectorProcess;
using ferry::testsupport::HttpRequest;

double Secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

StoredEvent Make(int64_t n, const std::string& user, const std::string& anon) {
  StoredEvent e;
  e.message_id = "m-" + std::to_string(n);
  e.type = "track";
  e.user_id = user;
  e.anonymous_id = anon;
  e.name = "Product Viewed";
  e.purpose = "analytics";
  e.timestamp_ms = 1790000000000 + n;  // recent enough for the default retention
  e.received_ms = e.timestamp_ms + 5;
  e.body = "{\"messageId\":\"" + e.message_id + "\",\"type\":\"track\",\"event\":\"Product Viewed\",\"userId\":\"" +
           user + "\",\"anonymousId\":\"" + anon +
           "\",\"purpose\":\"analytics\",\"properties\":{\"sku\":\"SKU-12345\",\"price\":19.99,\"currency\":\"EUR\"},"
           "\"context\":{\"app\":{\"name\":\"shop\",\"version\":\"1.2.3\"},\"os\":{\"name\":\"Android\",\"version\":"
           "\"14\"},\"locale\":\"de-DE\",\"sessionId\":\"3f1c2a9e-1b2c-4d5e-8f90-123456789abc\"},"
           "\"timestamp\":\"2026-09-21T10:00:00.000Z\",\"receivedAt\":\"2026-09-21T10:00:00.005Z\"}";
  return e;
}

std::string BatchBody(int client, int64_t seq, int n) {
  std::string b = "{\"batch\":[";
  for (int i = 0; i < n; ++i) {
    if (i) b += ',';
    b += "{\"messageId\":\"live-" + std::to_string(client) + "-" + std::to_string(seq) + "-" + std::to_string(i) +
         "\",\"type\":\"track\",\"event\":\"Live\",\"anonymousId\":\"live-anon-" + std::to_string(client) +
         "\",\"purpose\":\"analytics\",\"timestamp\":\"2026-09-21T10:00:00.000Z\",\"properties\":{\"i\":" +
         std::to_string(i) + "}}";
  }
  return b + "]}";
}

// Concurrent ingest for `seconds`; returns events accepted. `during` runs on this thread meanwhile (may be empty).
int64_t Ingest(const CollectorProcess& col, int clients, double seconds, const std::function<void()>& during,
               double* max_latency_s) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> accepted{0};
  std::atomic<int64_t> max_us{0};
  std::vector<std::thread> ts;
  static std::atomic<int64_t> seq{0};
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&, c] {
      while (!stop.load()) {
        auto t0 = Clock::now();
        auto r = HttpRequest("POST", col.batch_url(), BatchBody(c, seq++, 100),
                             {"Authorization: Bearer " + col.write_key()}, col.ca_file());
        int64_t us = static_cast<int64_t>(Secs(t0, Clock::now()) * 1e6);
        int64_t prev = max_us.load();
        while (us > prev && !max_us.compare_exchange_weak(prev, us)) {
        }
        if (r.status == 200) accepted += 100;
      }
    });
  }
  auto start = Clock::now();
  if (during) during();
  while (Secs(start, Clock::now()) < seconds) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop = true;
  for (auto& t : ts) t.join();
  *max_latency_s = static_cast<double>(max_us.load()) / 1e6;
  return accepted.load();
}

}  // namespace

constexpr const char* kUsage =
    "usage: ferry_bench_rights [--events N] [--subject-events K] [--clients C] [--keep DIR]\n"
    "  A subject's export and erasure in a store of N events, and ingest without and during an erasure.\n";

int main(int argc, char** argv) {
  ferry::bench::CheckArgs(argc, argv, kUsage, {}, {"--events", "--subject-events", "--clients", "--keep"});
  int64_t total = 1000000, per_subject = 10000;
  int clients = 4;
  std::string keep;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--events")) total = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--subject-events")) per_subject = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--clients")) clients = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--keep")) keep = argv[i + 1];
  }
  char tmpl[] = "/tmp/ferry-bench-rights-XXXXXX";
  std::string dir = keep.empty() ? std::string(mkdtemp(tmpl)) : keep;

  // 1. The store: `total` events of 50,000 other users, with subjects A and B (3 devices each) spread through it.
  {
    auto store = SqliteStore::Open(dir);
    if (!store.ok()) {
      std::fprintf(stderr, "cannot open the store: %s\n", store.status().ToString().c_str());
      return 1;
    }
    auto key = (*store)->CreateWriteKey("bench");
    int64_t pid = (*(*store)->LookupWriteKey(*key))->project_id;
    auto t0 = Clock::now();
    const int64_t kTx = 20000;
    int64_t every = total / (2 * per_subject);  // one subject event every `every` events
    int64_t a = 0, b = 0;
    for (int64_t n = 0; n < total;) {
      InsertRequest req;
      req.project_id = pid;
      for (int64_t i = 0; i < kTx && n < total; ++i, ++n) {
        if (n % every == 0 && a < per_subject) {
          req.events.push_back(Make(n, "subject-A", "anon-A-" + std::to_string(a % 3)));
          ++a;
        } else if (n % every == 1 && b < per_subject) {
          req.events.push_back(Make(n, "subject-B", "anon-B-" + std::to_string(b % 3)));
          ++b;
        } else {
          int64_t u = n % 50000;
          req.events.push_back(Make(n, "user-" + std::to_string(u), "anon-" + std::to_string(u)));
        }
      }
      std::vector<InsertRequest*> reqs = {&req};
      (*store)->Prepare(&req);  // as the ingest path does (the embedded store compresses the bodies)
      ferry::base::Status s = (*store)->Insert(reqs);
      if (!s.ok()) {
        std::fprintf(stderr, "insert failed: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    std::printf("store: %lld events (subject A %lld, subject B %lld) written in %.1f s\n",
                static_cast<long long>(total), static_cast<long long>(a), static_cast<long long>(b),
                Secs(t0, Clock::now()));
  }

  // 2. A real collector over TLS on that store.
  CollectorOptions opts;
  opts.data_dir = dir;
  opts.project = "bench";
  std::string err;
  auto col = CollectorProcess::Start(opts, &err);
  if (!col) {
    std::fprintf(stderr, "collector: %s\n", err.c_str());
    return 1;
  }
  std::string token = col->CreateAdminToken("compliance", "bench");
  std::vector<std::string> auth = {"Authorization: Bearer " + token};

  auto t0 = Clock::now();
  auto exp = HttpRequest("GET", col->url() + "/v1/subjects/subject-A/export", "", auth, col->ca_file(), 120000);
  double export_s = Secs(t0, Clock::now());
  size_t events = 0;
  for (size_t at = exp.body.find("\"messageId\":\"m-"); at != std::string::npos;
       at = exp.body.find("\"messageId\":\"m-", at + 1)) {
    ++events;
  }
  std::printf("export subject A: HTTP %d, %zu events, %.1f MB, %.3f s\n", exp.status, events,
              static_cast<double>(exp.body.size()) / 1e6, export_s);
  // The same subject as the readable HTML copy (a cover, then one table row per event; issue 13).
  for (const char* lang : {"en", "zh-CN"}) {
    t0 = Clock::now();
    auto html = HttpRequest("GET", col->url() + "/v1/subjects/subject-A/export?format=html&lang=" + lang, "", auth,
                            col->ca_file(), 120000);
    double html_s = Secs(t0, Clock::now());
    size_t rows = 0;
    for (size_t at = html.body.find("<td class=\"props\">"); at != std::string::npos;
         at = html.body.find("<td class=\"props\">", at + 1)) {
      ++rows;
    }
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) < 1) load[0] = -1;
    std::printf("export subject A as HTML (%s): HTTP %d, %zu event rows, %.1f MB, %.3f s (load average %.2f)\n", lang,
                html.status, rows, static_cast<double>(html.body.size()) / 1e6, html_s, load[0]);
  }

  t0 = Clock::now();
  auto er = HttpRequest("POST", col->url() + "/v1/subjects/subject-A/erase", "{}", auth, col->ca_file(), 120000);
  double erase_s = Secs(t0, Clock::now());
  std::printf("erase subject A: HTTP %d, %.3f s, receipt %s\n", er.status, erase_s, er.body.substr(0, 200).c_str());

  double max_lat = 0;
  int64_t base = Ingest(*col, clients, 3.0, nullptr, &max_lat);
  std::printf("ingest, %d clients, no erase: %.0f events/s (slowest batch %.3f s)\n", clients, base / 3.0, max_lat);
  double erase_b_s = 0;
  int erase_b_status = 0;
  int64_t during = Ingest(
      *col, clients, 3.0,
      [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        auto t = Clock::now();
        auto r = HttpRequest("POST", col->url() + "/v1/subjects/subject-B/erase", "{}", auth, col->ca_file(), 120000);
        erase_b_s = Secs(t, Clock::now());
        erase_b_status = r.status;
      },
      &max_lat);
  std::printf(
      "ingest, %d clients, while subject B (%lld events) is erased: %.0f events/s over 3 s "
      "(erase HTTP %d in %.3f s; slowest batch %.3f s)\n",
      clients, static_cast<long long>(per_subject), during / 3.0, erase_b_status, erase_b_s, max_lat);
  col->Stop();
  if (keep.empty()) (void)std::system(("rm -rf '" + dir + "'").c_str());
  return exp.status == 200 && er.status == 200 ? 0 : 1;
}
