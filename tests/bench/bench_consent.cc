// Consent enforcement at ingest, on and off (issue 12): in one run, on each store (the embedded one and, when the
// PostgreSQL binaries are installed, a throwaway PostgreSQL cluster), a fresh real ferry-collector over TLS with
// --consent-default report-only and then enforce; the load generator first sends every installation's analytics
// grant (with its receipt), then concurrent keep-alive clients POST zstd batches of 100 events naming that receipt
// for a fixed time. Events admitted per second are counted from the rows stored (the batch's answer counts refused
// events as accepted), so enforcement that refused them would show. Prints the ratio enforce / report-only per store
// and the load averages.
// Figures: docs/PERFORMANCE.md "Consent enforcement at ingest, on and off".
// Usage: ferry_bench_consent [--clients N] [--seconds S] [--installations K]
#include <curl/curl.h>

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
#include "lib/wire/codec.h"
#include "tests/support/collector_process.h"
#include "tests/support/pg_cluster.h"

namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

// Batch `no` of `n` events of one installation (anon-<no % installations>), each naming its grant's receipt.
std::string EventBatch(int no, int n, int installations) {
  const int anon = no % installations;
  std::string json = "{\"sentAt\":\"2026-01-01T00:00:00.000Z\",\"batch\":[";
  char buf[1024];
  for (int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf,
                  "%s{\"messageId\":\"b%d-e%d\",\"type\":\"track\",\"event\":\"Product Viewed\",\"anonymousId\":"
                  "\"anon-%d\",\"timestamp\":\"2026-01-01T00:00:01.%03dZ\",\"purpose\":\"analytics\","
                  "\"consentReceipt\":\"r-%d\",\"properties\":{\"sku\":\"SKU-%d\",\"price\":%d.99}}",
                  i == 0 ? "" : ",", no, i, anon, i % 1000, anon, (no * 7 + i) % 9973, i % 90 + 10);
    json += buf;
  }
  return ferry::wire::ZstdCompress(json + "]}", 3);
}

// Every installation's analytics grant, 100 a batch.
std::vector<std::string> GrantBatches(int installations) {
  std::vector<std::string> out;
  for (int first = 0; first < installations; first += 100) {
    std::string json = "{\"sentAt\":\"2026-01-01T00:00:00.000Z\",\"batch\":[";
    char buf[512];
    for (int a = first; a < std::min(installations, first + 100); ++a) {
      std::snprintf(buf, sizeof buf,
                    "%s{\"messageId\":\"grant-%d\",\"type\":\"consent\",\"anonymousId\":\"anon-%d\",\"timestamp\":"
                    "\"2026-01-01T00:00:00.000Z\",\"purpose\":\"necessary\",\"properties\":{\"purpose\":\"analytics\","
                    "\"state\":\"granted\",\"previous\":\"pending\",\"method\":\"explicit\",\"receiptId\":\"r-%d\"}}",
                    a == first ? "" : ",", a, a, a);
      json += buf;
    }
    out.push_back(ferry::wire::ZstdCompress(json + "]}", 3));
  }
  return out;
}

struct Run {
  double events_per_s = 0;
  long stored = 0, failed = 0;
};

// One collector (fresh store), grants first, then the load; events stored per second.
bool Measure(const std::string& storage, const std::string& mode, int clients, int seconds, int installations,
             Run* out) {
  ferry::testsupport::CollectorOptions o;
  o.extra_args = {"--threads", std::to_string(clients + 8), "--rate-limit", "0", "--consent-default", mode};
  std::unique_ptr<ferry::testsupport::PgCluster> cluster;
  std::string uri, key, err;
  if (storage == "postgres") {
    cluster = ferry::testsupport::PgCluster::Start(&err);
    if (!cluster) return std::fprintf(stderr, "PostgreSQL: %s\n", err.c_str()), false;
    uri = cluster->CreateDatabase("bench", &err);
    ferry::collector::PgOptions po;
    po.conninfo = uri;
    auto s = ferry::collector::PgStore::Open(po);
    if (!s.ok()) return false;
    auto k = (*s)->CreateWriteKey("shop");
    if (!k.ok()) return false;
    key = *k;
    o.extra_args.insert(o.extra_args.end(), {"--storage", uri});
  }
  o.project = "shop";
  auto c = ferry::testsupport::CollectorProcess::Start(o, &err);
  if (!c) return std::fprintf(stderr, "cannot start the collector: %s\n", err.c_str()), false;
  if (key.empty()) key = c->write_key();

  auto post = [&](CURL* h, const std::string& body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    long code = 0;
    bool ok = curl_easy_perform(h) == CURLE_OK;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return ok && code == 200;
  };
  auto handle = [&](std::unique_ptr<curl_slist, SlistDeleter>* hdrs) {
    std::unique_ptr<CURL, CurlDeleter> h(curl_easy_init());
    const std::string auth = "Authorization: Bearer " + key;
    for (const char* hd : {auth.c_str(), "Content-Encoding: zstd", "Content-Type: application/json", "Expect:"}) {
      hdrs->reset(curl_slist_append(hdrs->release(), hd));
    }
    const std::string url = c->batch_url();
    curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, hdrs->get());
    curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h.get(), CURLOPT_CAINFO, c->ca_file().c_str());
    curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, Discard);
    return h;
  };
  {
    std::unique_ptr<curl_slist, SlistDeleter> hdrs;
    auto h = handle(&hdrs);
    for (const std::string& b : GrantBatches(installations)) {
      if (!post(h.get(), b)) return std::fprintf(stderr, "a grant batch failed\n"), false;
    }
  }
  const size_t n_batches = static_cast<size_t>(std::max(1000, 800 * seconds));
  std::vector<std::string> batches(n_batches);
  for (size_t i = 0; i < n_batches; ++i) batches[i] = EventBatch(static_cast<int>(i), 100, installations);
  std::atomic<size_t> next{0};
  std::atomic<long> failed{0};
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::seconds(seconds);
  std::vector<std::thread> workers;
  for (int t = 0; t < clients; ++t) {
    workers.emplace_back([&] {
      std::unique_ptr<curl_slist, SlistDeleter> hdrs;
      auto h = handle(&hdrs);
      while (std::chrono::steady_clock::now() < deadline) {
        size_t i = next++;
        if (i >= batches.size()) break;  // every batch once: each stored row is one admitted event
        if (!post(h.get(), batches[i])) ++failed;
      }
    });
  }
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  long stored = 0;
  if (uri.empty()) {
    stored = static_cast<long>(c->DumpEvents().size());
  } else {
    ferry::collector::PgOptions po;
    po.conninfo = uri;
    auto s = ferry::collector::PgStore::Open(po);
    if (!s.ok()) return false;
    auto rows = (*s)->DumpEvents("shop");
    if (!rows.ok()) return false;
    stored = static_cast<long>(rows->size());
  }
  stored -= installations;  // the grants
  out->stored = stored;
  out->failed = failed;
  out->events_per_s = stored / elapsed;
  c->Stop();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 32, seconds = 10, installations = 2000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    int v = i + 1 < argc ? std::atoi(argv[i + 1]) : 0;
    if (a == "--clients" && v > 0) {
      clients = v;
    } else if (a == "--seconds" && v > 0) {
      seconds = v;
    } else if (a == "--installations" && v > 0) {
      installations = v;
    } else {
      std::fprintf(stderr, "usage: %s [--clients N] [--seconds S] [--installations K]\n", argv[0]);
      return 2;
    }
    ++i;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::vector<std::string> stores = {"sqlite"};
  if (ferry::testsupport::PgCluster::Available()) stores.push_back("postgres");
  int rc = 0;
  for (const std::string& store : stores) {
    Run off, on;
    if (!Measure(store, "report-only", clients, seconds, installations, &off) ||
        !Measure(store, "enforce", clients, seconds, installations, &on)) {
      rc = 1;
      continue;
    }
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) < 1) load[0] = -1;
    std::printf(
        "%s (TLS, %d clients, %d installations, %d s each; load averages %.2f %.2f %.2f):\n"
        "  report-only: %.0f events/s stored (%ld, failed requests %ld)\n"
        "  enforce:     %.0f events/s stored (%ld, failed requests %ld)\n"
        "  enforce / report-only: %.1f %%\n",
        store.c_str(), clients, installations, seconds, load[0], load[1], load[2], off.events_per_s, off.stored,
        off.failed, on.events_per_s, on.stored, on.failed,
        off.events_per_s > 0 ? 100.0 * on.events_per_s / off.events_per_s : 0.0);
    if (off.failed > 0 || on.failed > 0) rc = 1;
  }
  curl_global_cleanup();
  return rc;
}
