// ferry-agent throughput: local HTTP clients (keep-alive, one per thread) post track events to a real ferry-agent
// process, which forwards them to a real ferry-collector over TLS on loopback.
// Prints: events/s accepted by the agent (each answer given after the event is committed to the encrypted buffer)
// and events/s delivered (from the first post until the collector has stored them all).
//   ferry_bench_agent [threads=8] [events=40000] [unix=0] [per_request=1]
// per_request > 1: each request is POST /v1/events with that many events (one grouped commit per request);
// 1: POST /v1/track, one event per request.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/bench/bench_args.h"
#include "tests/integration/agent_process.h"
#include "tests/support/collector_process.h"

using ferry::testsupport::AgentHttpClient;
using ferry::testsupport::AgentProcess;
using ferry::testsupport::CollectorProcess;
using Json = nlohmann::json;

namespace {

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double StoredCount(const CollectorProcess& c) {
  return CollectorProcess::MetricValue(c.Metrics(), "ferry_events_accepted_total");
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string one;
  f >> one;
  return one.empty() ? "?" : one;
}

}  // namespace

constexpr const char* kUsage =
    "usage: ferry_bench_agent [threads=8] [events=40000] [unix=0] [per_request=1]\n"
    "  per_request > 1: POST /v1/events with that many events a request; 1: POST /v1/track, one event a request.\n";

int main(int argc, char** argv) {
  ferry::bench::CheckArgs(argc, argv, kUsage, {}, {}, 4);
  int threads = argc > 1 ? std::atoi(argv[1]) : 8;
  int events = argc > 2 ? std::atoi(argv[2]) : 40000;
  bool via_socket = argc > 3 && std::atoi(argv[3]) != 0;
  int per_request = argc > 4 ? std::max(1, std::atoi(argv[4])) : 1;
  std::string err;
  auto collector = CollectorProcess::Start({}, &err);
  if (!collector) {
    std::fprintf(stderr, "collector: %s\n", err.c_str());
    return 1;
  }
  auto agent = AgentProcess::Start(
      {{"upstream",
        {{"url", collector->url()}, {"write_key", collector->write_key()}, {"ca_file", collector->ca_file()}}},
       {"unix_socket", {{"path", "agent.sock"}}},
       {"consent", {{"analytics", "granted"}}},
       {"threads", threads + 4},
       {"storage", {{"path", "buffer.db"}, {"max_bytes", 1ull << 30}}},
       {"batch", {{"size", 500}, {"flush_interval_ms", 200}}},
       {"log_level", "warn"}},
      &err);
  if (!agent) {
    std::fprintf(stderr, "agent: %s\n", err.c_str());
    return 1;
  }
  const std::string sock = agent->dir() + "/agent.sock";
  const std::string base = via_socket ? "http://agent" : agent->url();
  // The request bodies are built before the clock starts: the figure is the agent's, not the client's JSON work.
  std::vector<std::string> bodies;
  for (int first = 0; first < events; first += per_request) {
    int last = std::min(events, first + per_request);
    Json list = Json::array();
    for (int i = first; i < last; ++i) {
      // ~360 bytes, the size the collector's figures use.
      Json ev = {{"event", "product_viewed"},
                 {"messageId", "bench-" + std::to_string(i)},
                 {"properties",
                  {{"sku", "SKU-" + std::to_string(i % 977)},
                   {"price", 129.5},
                   {"currency", "CNY"},
                   {"category", "household/kitchen/appliances"},
                   {"position", i % 40},
                   {"search", "rice cooker 3L stainless steel inner pot"},
                   {"email", "shopper@example.com"}}}};
      if (per_request > 1) ev["type"] = "track";
      list.push_back(std::move(ev));
    }
    bodies.push_back(per_request > 1 ? Json{{"events", list}}.dump() : list[0].dump());
  }
  const std::string path = base + (per_request > 1 ? "/v1/events" : "/v1/track");
  std::atomic<int> next{0}, failed{0};
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      AgentHttpClient http(via_socket ? sock : "");
      for (;;) {
        int k = next.fetch_add(1);
        if (k >= static_cast<int>(bodies.size())) return;
        int first = k * per_request;
        int last = std::min(events, first + per_request);
        auto r = http.Request("POST", path, bodies[static_cast<size_t>(k)]);
        bool ok = r.status == 200;
        if (ok && per_request > 1) {
          Json a = Json::parse(r.body, nullptr, false);
          ok = a.is_object() && a.value("accepted", -1) == last - first;
        }
        if (!ok) {
          failed += last - first;
          std::fprintf(stderr, "answer %d at #%d: %s\n", r.status, first, r.body.substr(0, 200).c_str());
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  auto t1 = std::chrono::steady_clock::now();
  double stored = 0;
  while (Seconds(t1, std::chrono::steady_clock::now()) < 300) {
    stored = StoredCount(*collector);
    if (stored >= events - failed.load()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto t2 = std::chrono::steady_clock::now();
  std::printf(
      "ferry_bench_agent: %d events, %d local %s clients (keep-alive), %d event(s) per request (%s), "
      "agent -> collector over TLS, load %s\n",
      events, threads, via_socket ? "Unix-socket" : "HTTP", per_request, per_request > 1 ? "/v1/events" : "/v1/track",
      LoadAverage().c_str());
  std::printf("  accepted by the agent : %8.0f events/s  (%.2f s, %d failed answers)\n", events / Seconds(t0, t1),
              Seconds(t0, t1), failed.load());
  std::printf("  delivered to collector: %8.0f events/s  (%.2f s from the first post to %0.f stored)\n",
              stored / Seconds(t0, t2), Seconds(t0, t2), stored);
  if (per_request > 1) {
    double rate = events / Seconds(t0, t1);
    std::printf("== issue 16 target: agent from local clients >= 30000 events/s: measured %.0f, load %s: %s\n", rate,
                LoadAverage().c_str(), rate >= 30000 ? "met" : "MISSED");
  }
  long agent_rss = -1;
  {
    std::ifstream st("/proc/" + std::to_string(agent->pid()) + "/status");
    std::string line;
    while (std::getline(st, line)) {
      if (line.rfind("VmRSS:", 0) == 0) agent_rss = std::atol(line.c_str() + 6);
    }
  }
  std::printf("  RSS after the run     : agent %ld KiB, collector %ld KiB\n", agent_rss, collector->RssKb());
  return failed.load() == 0 && stored >= events ? 0 : 1;
}
