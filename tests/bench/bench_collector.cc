// Load generator for ferry-collector: starts a real collector process (TLS by default), then many concurrent
// keep-alive clients POST pre-built zstd batches of 100 unique events to /v1/batch for a fixed time.
// Prints events/s accepted, requests/s and latency percentiles.
// Usage: ferry_bench_collector [--clients N] [--seconds S] [--events-per-batch K] [--plain] [--threads T]
//                              [--insight off|embedded|clickhouse] [--rate EVENTS_PER_S] [--keys sdk|v4|random|legacy]
//                              [--warmup S]
// --warmup S: the clients send for S seconds first (at the same pace), and only what follows is measured: the
// clients' TLS handshakes and the store's log growing to its working size are the collector's start, not its service.
// --rate paces the clients to that many events/s in all (each client sends on a fixed schedule), and each request's
// latency is taken from the moment it was due, not the moment it went (a request that waits for a late one counts
// its wait too: no coordinated omission). Without it every client sends as fast as it is answered.
// --insight runs the collector with the operations insight (docs/INSIGHT.md): embedded, or streaming to a throwaway
// ClickHouse server the benchmark starts (tests/support/clickhouse_server.h) on the same machine.
// --keys: the events' messageIds and timestamps as the SDK makes them (sdk, the default), v4 (UUIDv4 ids, times in
// order), random (UUIDv4 ids, times anywhere in the last day), or legacy (the shape of this benchmark's figures before
// 2026-12-03 21:00 UTC).
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "lib/wire/codec.h"
#include "tests/support/clickhouse_server.h"
#include "tests/support/collector_process.h"

namespace {

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

// How a batch's messageIds and timestamps are laid out (--keys). They decide where the collector's indexes on them
// (event_ids by (project, messageId) and by time, events by time) take each new entry: at their end, or at a page of
// their own per event.
enum class Keys {
  kSdk,     // as the SDK sends: UUIDv7 ids (time-ordered) and the times the events were made, in order
  kV4,      // UUIDv4 ids and the times the events were made, in order: a server-side sender with random ids
  kRandom,  // UUIDv4 ids and times anywhere in the last 24 hours: random ids, and devices back online after a day
  kLegacy,  // the shape of the figures before 2026-12-03 21:00 UTC: ids "b<batch>-e<event>-7f3a9c" and a batch's i-th
            // event at .i ms of one old second, which the collector's skew correction (sentAt of that second) puts i ms
            // after the batch's receipt: the events of the batches received together interleave in the time indexes
};

// A batch of `n` unique events as the SDK sends it (≈350 bytes an event), zstd level 3. `made_ms` is when the batch's
// events were made (all but Keys::kLegacy).
std::string MakeBatch(int batch_no, int n, Keys keys, int64_t made_ms, std::mt19937_64* rng) {
  // The collector moves each timestamp by its receipt time minus sentAt (a device's clock skew): sent as soon as made.
  std::string json =
      "{\"sentAt\":\"" +
      (keys == Keys::kLegacy ? std::string("2026-01-01T00:00:00.000Z") : ferry::base::FormatIso8601(made_ms)) +
      "\",\"batch\":[";
  char buf[1024];
  std::string id, ts;
  for (int i = 0; i < n; ++i) {
    char legacy_ts[40];
    switch (keys) {
      case Keys::kSdk:
        id.clear();
        ferry::base::AppendUuidV7(&id, made_ms);
        ts = ferry::base::FormatIso8601(made_ms);
        break;
      case Keys::kV4:
        id = ferry::base::NewUuidV4();
        ts = ferry::base::FormatIso8601(made_ms);
        break;
      case Keys::kRandom:
        id = ferry::base::NewUuidV4();
        ts = ferry::base::FormatIso8601(made_ms - static_cast<int64_t>((*rng)() % 86400000));
        break;
      case Keys::kLegacy:
        std::snprintf(buf, sizeof buf, "b%d-e%d-7f3a9c", batch_no, i);
        id = buf;
        std::snprintf(legacy_ts, sizeof legacy_ts, "2026-01-01T00:00:00.%03dZ", i % 1000);
        ts = legacy_ts;
        break;
    }
    std::snprintf(buf, sizeof buf,
                  "%s{\"messageId\":\"%s\",\"type\":\"track\",\"event\":\"Product Viewed\","
                  "\"anonymousId\":\"anon-%d\",\"timestamp\":\"%s\",\"purpose\":\"analytics\","
                  "\"properties\":{\"sku\":\"SKU-%d\",\"price\":%d.99,\"currency\":\"EUR\",\"list\":\"search\"},"
                  "\"context\":{\"app\":{\"name\":\"shop\",\"version\":\"4.2.0\"},\"os\":{\"name\":\"Linux\"},"
                  "\"locale\":\"de-DE\",\"timezone\":\"Europe/Berlin\",\"library\":{\"name\":\"ferry\","
                  "\"version\":\"1.0.0\"}}}",
                  i == 0 ? "" : ",", id.c_str(), batch_no % 5000, ts.c_str(), (batch_no * 7 + i) % 9973, i % 90 + 10);
    json += buf;
  }
  json += "]}";
  return ferry::wire::ZstdCompress(json, 3);
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 32, seconds = 10, per_batch = 100, threads = 0;
  double rate = 0;    // events/s in all; 0: as fast as answered
  double warmup = 0;  // seconds sent before the measured window
  bool tls = true;
  std::string insight = "off";
  Keys keys = Keys::kSdk;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--clients")
      clients = next();
    else if (a == "--seconds")
      seconds = next();
    else if (a == "--events-per-batch")
      per_batch = next();
    else if (a == "--threads")
      threads = next();
    else if (a == "--plain")
      tls = false;
    else if (a == "--insight" && i + 1 < argc)
      insight = argv[++i];
    else if (a == "--rate" && i + 1 < argc)
      rate = std::atof(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc)
      warmup = std::max(0.0, std::min(60.0, std::atof(argv[++i])));
    else if (a == "--keys" && i + 1 < argc && std::strcmp(argv[i + 1], "sdk") == 0 && ++i)
      keys = Keys::kSdk;
    else if (a == "--keys" && i + 1 < argc && std::strcmp(argv[i + 1], "v4") == 0 && ++i)
      keys = Keys::kV4;
    else if (a == "--keys" && i + 1 < argc && std::strcmp(argv[i + 1], "random") == 0 && ++i)
      keys = Keys::kRandom;
    else if (a == "--keys" && i + 1 < argc && std::strcmp(argv[i + 1], "legacy") == 0 && ++i)
      keys = Keys::kLegacy;
    else {
      std::fprintf(stderr,
                   "usage: %s [--clients N] [--seconds S] [--events-per-batch K] [--plain] [--threads T] "
                   "[--insight off|embedded|clickhouse] [--rate EVENTS_PER_S] [--keys sdk|v4|random|legacy] "
                   "[--warmup S]\n",
                   argv[0]);
      return 2;
    }
  }
  if (threads <= 0) threads = clients + 8;
  curl_global_init(CURL_GLOBAL_DEFAULT);

  ferry::testsupport::CollectorOptions o;
  o.tls = tls;
  o.extra_args = {"--threads", std::to_string(threads), "--rate-limit", "0"};
  std::string err;
  std::unique_ptr<ferry::testsupport::ClickHouseServer> ch;
  if (insight == "clickhouse") {
    ch = ferry::testsupport::ClickHouseServer::Start(&err);
    if (!ch) {
      std::fprintf(stderr, "cannot start ClickHouse: %s\n", err.c_str());
      return 1;
    }
    o.extra_args.insert(o.extra_args.end(), {"--insight", "clickhouse://127.0.0.1:" + std::to_string(ch->http_port())});
  } else if (insight == "embedded") {
    o.extra_args.insert(o.extra_args.end(), {"--insight", "embedded"});
  } else if (insight != "off") {
    std::fprintf(stderr, "--insight: off, embedded or clickhouse\n");
    return 2;
  }
  auto c = ferry::testsupport::CollectorProcess::Start(o, &err);
  if (!c) {
    std::fprintf(stderr, "cannot start the collector: %s\n", err.c_str());
    return 1;
  }

  // Enough unique batches for 200,000 events/s over the run (twice the target): once they run out the clients send
  // them again, as duplicates, and the accepted rate would stop at the pool's size (it did at 80,000/s).
  size_t n_batches = static_cast<size_t>(std::max(1000.0, 200000.0 / per_batch * (seconds + warmup)));
  std::vector<std::string> batches(n_batches);
  auto t_build = std::chrono::steady_clock::now();
  // Keys::kSdk: the batches were made one a millisecond up to now, and are sent in that order.
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::mt19937_64 rng(20261203);
  for (size_t i = 0; i < n_batches; ++i) {
    batches[i] = MakeBatch(static_cast<int>(i), per_batch, keys,
                           now_ms - static_cast<int64_t>(n_batches) + static_cast<int64_t>(i), &rng);
  }
  double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_build).count();
  size_t zbytes = 0;
  for (auto& b : batches) zbytes += b.size();
  std::fprintf(stderr, "built %zu batches of %d events (avg %zu bytes zstd) in %.1f s\n", n_batches, per_batch,
               zbytes / n_batches, build_s);

  std::atomic<size_t> next_batch{0};
  std::atomic<long> ok_requests{0}, failed_requests{0}, accepted{0}, duplicate{0};
  std::vector<std::vector<double>> lat(static_cast<size_t>(clients));
  ferry::testsupport::ProcessCpu cpu0, cpu1;
  bool have_cpu = false;
  std::string metrics0;
  long long disk0 = -1;
  using Duration = std::chrono::steady_clock::duration;
  // The clients start at `start`; what is measured is [measured, deadline): the warm-up before it is sent, not counted.
  auto start = std::chrono::steady_clock::now();
  auto measured = start + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(warmup));
  auto deadline = measured + std::chrono::seconds(seconds);
  auto snapshot = [&] {
    have_cpu = ferry::testsupport::ReadProcessCpu(c->pid(), &cpu0);
    metrics0 = c->Metrics();
    disk0 = ferry::testsupport::ProcessWriteBytes(c->pid());
  };
  if (warmup <= 0) snapshot();
  std::vector<std::thread> workers;
  for (int t = 0; t < clients; ++t) {
    workers.emplace_back([&, t] {
      std::unique_ptr<CURL, CurlDeleter> h(curl_easy_init());
      std::unique_ptr<curl_slist, SlistDeleter> hdrs;
      std::string auth = "Authorization: Bearer " + c->write_key();
      hdrs.reset(curl_slist_append(hdrs.release(), auth.c_str()));
      hdrs.reset(curl_slist_append(hdrs.release(), "Content-Encoding: zstd"));
      hdrs.reset(curl_slist_append(hdrs.release(), "Content-Type: application/json"));
      hdrs.reset(curl_slist_append(hdrs.release(), "Expect:"));
      std::string url = c->batch_url(), answer;
      curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
      curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, hdrs.get());
      curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(h.get(), CURLOPT_TCP_NODELAY, 1L);
      if (!c->ca_file().empty()) curl_easy_setopt(h.get(), CURLOPT_CAINFO, c->ca_file().c_str());
      curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, Collect);
      curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &answer);
      // Paced: this client's k-th request is due at start + (k + t / clients) * period.
      const double period_s = rate > 0 ? static_cast<double>(clients) * per_batch / rate : 0;
      for (long k = 0;; ++k) {
        auto due =
            start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(
                        period_s * (static_cast<double>(k) + static_cast<double>(t) / clients)));
        if (rate > 0) {
          if (due >= deadline) break;
          std::this_thread::sleep_until(due);
        } else if (std::chrono::steady_clock::now() >= deadline) {
          break;
        }
        const std::string& body = batches[next_batch++ % batches.size()];
        curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(h.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        answer.clear();
        auto t0 = rate > 0 ? due : std::chrono::steady_clock::now();
        CURLcode rc = curl_easy_perform(h.get());
        long code = 0;
        curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &code);
        if (t0 < measured) continue;  // warm-up
        lat[static_cast<size_t>(t)].push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        if (rc != CURLE_OK || code != 200) {
          ++failed_requests;
          continue;
        }
        ++ok_requests;
        auto j = nlohmann::json::parse(answer, nullptr, false);
        if (!j.is_discarded()) {
          accepted += j.value("accepted", 0L);
          duplicate += j.value("duplicate", 0L);
        }
      }
    });
  }
  if (warmup > 0) {
    std::this_thread::sleep_until(measured);
    snapshot();
  }
  for (auto& w : workers) w.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - measured).count();
  have_cpu = have_cpu && ferry::testsupport::ReadProcessCpu(c->pid(), &cpu1);
  const std::string metrics1 = c->Metrics();
  const long long disk1 = ferry::testsupport::ProcessWriteBytes(c->pid());
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, size_t(p * all.size()))]; };
  long stored = c->CountEvents();
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 1) load[0] = -1;
  std::printf(
      "collector ingest (%s, %d clients, %d server threads, %d events/batch, keys %s, %.1f s%s, insight %s, %s; "
      "load averages %.2f %.2f %.2f):\n",
      tls ? "TLS" : "plain HTTP", clients, threads, per_batch,
      keys == Keys::kSdk      ? "sdk"
      : keys == Keys::kV4     ? "v4"
      : keys == Keys::kRandom ? "random"
                              : "legacy",
      elapsed, warmup > 0 ? (" after a " + std::to_string(static_cast<int>(warmup)) + " s warm-up").c_str() : "",
      insight.c_str(),
      rate > 0 ? ("paced at " + std::to_string(static_cast<long>(rate)) + " events/s").c_str() : "unpaced", load[0],
      load[1], load[2]);
  std::printf("  accepted events/s: %.0f   (accepted %ld, duplicate %ld, stored rows %ld)\n", accepted / elapsed,
              accepted.load(), duplicate.load(), stored);
  if (duplicate.load() > 0) {
    std::printf("  (the %zu pre-built batches ran out and were sent again: the figure is capped at %.0f events/s)\n",
                n_batches, static_cast<double>(n_batches) * per_batch / elapsed);
  }
  std::printf("  requests/s: %.0f   failed requests: %ld\n", ok_requests / elapsed, failed_requests.load());
  // CPU per event depends far less on the machine's other load than the rate does: the figure to compare builds by.
  // The busiest thread is the group-commit writer (the one thread every event goes through).
  if (have_cpu && accepted.load() > 0) {
    const double n = static_cast<double>(accepted.load() + duplicate.load());
    std::printf("  collector CPU per event: %.1f us, of it the busiest thread (the writer) %.1f us\n",
                cpu1.AllSince(cpu0) / n * 1e6, cpu1.BusiestThreadSince(cpu0) / n * 1e6);
  }
  // What the store's pages cost the disk: the events rows, every index entry, the log, the checkpoints.
  if (disk0 >= 0 && disk1 >= disk0 && accepted.load() > 0) {
    std::printf("  written to disk by the collector: %.0f bytes per stored event (%.1f MiB/s)\n",
                static_cast<double>(disk1 - disk0) / static_cast<double>(accepted.load()),
                static_cast<double>(disk1 - disk0) / elapsed / (1 << 20));
  }
  if (have_cpu && cpu0.minor_faults >= 0 && cpu1.minor_faults >= cpu0.minor_faults && accepted.load() > 0) {
    std::printf("  the collector's minor page faults: %.3f per stored event\n",
                static_cast<double>(cpu1.minor_faults - cpu0.minor_faults) / static_cast<double>(accepted.load()));
  }
  // The group-commit writer over the run (GET /metrics): how many transactions, how large, how long, how busy.
  auto delta = [&](const char* name) {
    using ferry::testsupport::CollectorProcess;
    return CollectorProcess::MetricValue(metrics1, name) - CollectorProcess::MetricValue(metrics0, name);
  };
  const double commits = delta("ferry_store_commits_total");
  if (commits > 0) {
    std::printf("  group commits: %.0f/s, %.0f events each, %.2f ms each; the writer busy %.0f %% of the time\n",
                commits / elapsed, delta("ferry_store_commit_events_total") / commits,
                delta("ferry_store_commit_seconds_total") / commits * 1e3,
                delta("ferry_store_commit_seconds_total") / elapsed * 100);
    // A batch waits for the whole of its transaction: the slow ones are where the latency's tail comes from.
    const double slow = commits - delta("ferry_store_commit_duration_seconds_bucket{le=\"0.025\"}");
    std::printf(
        "  group commits over 25 ms: %.0f (%.1f %%), the longest %.1f ms\n", slow, slow / commits * 100,
        ferry::testsupport::CollectorProcess::MetricValue(metrics1, "ferry_store_commit_longest_seconds") * 1e3);
  }
  // The collector's own view of the same requests (from the handler's start to its answer; GET /metrics): what the
  // latency above has beyond it is the clients', TLS's and the scheduler's.
  const double answered = delta("ferry_request_duration_seconds_count");
  if (answered > 0) {
    const double slow = answered - delta("ferry_request_duration_seconds_bucket{le=\"0.025\"}");
    const double waited = answered - delta("ferry_store_commit_wait_seconds_bucket{le=\"0.025\"}");
    std::printf(
        "  requests over 25 ms: %.2f %% in the collector, %.2f %% waiting for the writer; the clients measured "
        "%.2f %%\n",
        slow / answered * 100, waited / answered * 100,
        100.0 * static_cast<double>(all.end() - std::upper_bound(all.begin(), all.end(), 0.025)) /
            static_cast<double>(std::max<size_t>(all.size(), 1)));
  }
  // The embedded store's checkpoints (their writes and flushes share the disk with the commits').
  const std::string by_checkpointer = "ferry_store_checkpoints_total{by=\"checkpointer\"}";
  if (ferry::testsupport::CollectorProcess::MetricValue(metrics1, by_checkpointer) >= 0) {
    std::printf(
        "  checkpoints: %.0f/s by the checkpointer, busy %.0f %% of the time; %.0f by the writer, %.1f ms in all\n",
        delta(by_checkpointer.c_str()) / elapsed,
        delta("ferry_store_checkpoint_seconds_total{by=\"checkpointer\"}") / elapsed * 100,
        delta("ferry_store_checkpoints_total{by=\"writer\"}"),
        delta("ferry_store_checkpoint_seconds_total{by=\"writer\"}") * 1e3);
  }
  std::printf("  latency p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", pct(0.5) * 1e3, pct(0.9) * 1e3,
              pct(0.99) * 1e3, all.empty() ? 0.0 : all.back() * 1e3);
  // The target's workload is the SDK's events (issue 16), so its line is printed for --keys sdk only.
  if (insight == "off" && per_batch == 100 && keys == Keys::kSdk) {
    if (rate > 0) {
      std::printf(
          "== issue 16 target: collector ingest p99 < 20 ms at half of 100000 events/s: paced at %.0f%s, p99 "
          "%.1f ms, load %.2f: %s\n",
          rate, warmup > 0 ? " after a warm-up" : " from the collector's start", pct(0.99) * 1e3, load[0],
          rate >= 50000 && pct(0.99) < 0.020 ? "met" : "MISSED");
    } else {
      std::printf(
          "== issue 16 target: collector ingest (embedded store) >= 100000 events/s: measured %.0f, load "
          "%.2f: %s\n",
          accepted / elapsed, load[0], accepted / elapsed >= 100000 ? "met" : "MISSED");
    }
  }
  int rc = c->Stop();
  std::printf("  collector exit status after SIGTERM: %d\n", rc);
  if (ch) {
    std::string rows;
    ch->Query("SELECT count() FROM ferry_insight.events", &rows);
    std::printf("  rows in ClickHouse after the collector stopped: %s", rows.c_str());
  }
  curl_global_cleanup();
  return failed_requests > 0 ? 1 : 0;
}
