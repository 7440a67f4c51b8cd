// On-device pipeline benchmark, through the public C ABI (libferry.so) only.
//
// Every figure comes from a fresh child process (this program re-executes itself), so memory, open time and caches
// of one measurement never leak into the next. `all` runs each measurement --runs times and prints the median, min
// and max of every figure; the other modes run one measurement and print `key=value` lines on stdout (human-readable
// notes go to stderr).
//
// Usage: ferry_bench_sdk all [--runs K] [--events N] [--previous FILE]
//                                     ends with the issue-16 targets beside the measured medians, the load average
//                                     and the previous figures (FILE: key=value lines, as run.sh extracts them from
//                                     docs/PERFORMANCE.md)
//        ferry_bench_sdk latency [--events N] [--threads T] [--rate R]   per-call ferry_track latency
//        ferry_bench_sdk throughput [--events N] [--threads T] [--durability sync|batched] [--dir D]
//                                                                        events/s committed to the buffer (in a new
//                                                                        directory under D, else the temp dir)
//        ferry_bench_sdk fill --path P [--events N]                      a buffer with N events; bytes on disk
//        ferry_bench_sdk open --path P                                   ferry_open time and RSS on a full buffer
//        ferry_bench_sdk rss [--events N]                                RSS with N queued events (new buffer)
//        ferry_bench_sdk wire [--events N] [--batch B]                   zstd wire bytes per event (SDK uploader)
//        ferry_bench_sdk fsync [--events N]                              the disk's flush: N writes of 4 KiB, each
//                                                                        followed by fdatasync, in the temp dir
//
// Events: "Product Viewed" with 5 string and 2 numeric properties, default PII rules, purpose "analytics" granted,
// BATCHED durability, no endpoint (nothing leaves the buffer) except in `wire`.
#include <fcntl.h>
#include <ferry/ferry.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr uint64_t kHugeStorage = 4ull << 30;  // nothing is evicted
const uint8_t kKey[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                          17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

struct Args {
  std::string mode;
  int64_t events = -1;
  int threads = 1;
  double rate = 0;  // events/s per thread; 0 = as fast as possible
  int runs = 5;
  int batch = 100;
  std::string path;
  std::string dir;       // --dir D: the throughput run's buffer under D (e.g. /dev/shm: no disk flush)
  std::string previous;  // --previous FILE (all)
  bool sync = false;     // --durability sync: FERRY_DURABILITY_SYNC (throughput, latency)
};

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "ferry_bench_sdk: %s\n", why.c_str());
  std::exit(1);
}

void Check(ferry_status s, const char* what) {
  if (s != FERRY_OK) Die(std::string(what) + ": " + ferry_status_str(s));
}

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// A pool of distinct property objects: 5 strings, 2 numbers, no PII (the detectors still scan every string).
std::vector<std::string> PropertyPool(size_t n) {
  static const char* const kNames[] = {"Cotton T-Shirt", "Running Shoes", "Rain Jacket", "Wool Socks", "Canvas Bag"};
  static const char* const kCategories[] = {"apparel/tops", "shoes/running", "apparel/outerwear", "accessories"};
  static const char* const kLists[] = {"search results", "home carousel", "category page", "recommendations"};
  std::vector<std::string> out;
  out.reserve(n);
  char buf[512];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf,
                  "{\"sku\":\"SKU-%05zu\",\"name\":\"%s %zu\",\"category\":\"%s\",\"currency\":\"EUR\","
                  "\"list\":\"%s\",\"price\":%zu.%02zu,\"quantity\":%zu}",
                  (i * 7919) % 100000, kNames[i % 5], i % 40, kCategories[i % 4], kLists[(i / 3) % 4], 5 + i % 195,
                  (i * 37) % 100, 1 + i % 4);
    out.emplace_back(buf);
  }
  return out;
}

std::string MakeTempDir(const std::string& parent = "") {
  std::string t = ((parent.empty() ? fs::temp_directory_path() : fs::path(parent)) / "ferry-bench-XXXXXX").string();
  if (mkdtemp(t.data()) == nullptr) Die("mkdtemp failed");
  return t;
}

ferry_options* BaseOptions(const std::string& db_path) {
  ferry_options* o = ferry_options_new();
  if (o == nullptr) Die("ferry_options_new");
  Check(ferry_options_set_storage_path(o, db_path.c_str()), "storage path");
  Check(ferry_options_set_encryption_key(o, kKey, sizeof kKey), "encryption key");
  Check(ferry_options_set_max_storage_bytes(o, kHugeStorage), "max storage");
  Check(ferry_options_set_default_consent(o, FERRY_PURPOSE_ANALYTICS, FERRY_CONSENT_GRANTED), "consent");
  Check(ferry_options_set_app(o, "bench", "1.0.0"), "app");
  return o;
}

Json Stats(ferry_client* c) {
  char* s = nullptr;
  Check(ferry_stats_json(c, &s), "ferry_stats_json");
  Json j = Json::parse(s, nullptr, false);
  ferry_free(s);
  if (!j.is_object()) Die("stats are not a JSON object");
  return j;
}

// Events in the encrypted buffer (committed), whatever their consent state.
int64_t Committed(ferry_client* c) {
  Json j = Stats(c);
  return j.value("queued", int64_t{0}) + j.value("pending_consent", int64_t{0});
}

// Polls until `n` events are committed; returns the moment it saw them.
Clock::time_point WaitCommitted(ferry_client* c, int64_t n) {
  auto give_up = Clock::now() + std::chrono::seconds(120);
  for (;;) {
    if (Committed(c) >= n) return Clock::now();
    if (Clock::now() > give_up) Die("events were not committed within 120 s");
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

struct Mem {
  long rss_kb = -1, hwm_kb = -1;
};
Mem ReadMem() {
  Mem m;
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) m.rss_kb = std::strtol(line.c_str() + 6, nullptr, 10);
    if (line.rfind("VmHWM:", 0) == 0) m.hwm_kb = std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return m;
}

int64_t FileSize(const std::string& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

void Emit(const char* key, double v) { std::printf("%s=%.6g\n", key, v); }

// The machine's 1-minute load average (the machine is shared: a figure means little without it).
void EmitLoad(const char* key) {
  double load[1] = {-1};
  if (getloadavg(load, 1) == 1) Emit(key, load[0]);
}

// CPU time (user + system) of the whole process, and of the calling thread, in µs.
double ProcessCpuUs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}
double ThreadCpuUs() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

// Tracks `per_thread` events from each of `threads` threads (after a common start). Per-call latencies in ns go
// to *lat when given. rate: events/s per thread (0 = flat out).
// *producer_cpu_us (when given) gets the CPU time the producer threads used, summed.
void RunProducers(ferry_client* c, int threads, int64_t per_thread, double rate, const std::vector<std::string>& pool,
                  std::vector<uint32_t>* lat, Clock::time_point* start, Clock::time_point* end,
                  double* producer_cpu_us = nullptr) {
  std::atomic<int> ready{0};
  std::atomic<int64_t> cpu_ns{0};
  std::atomic<int64_t> preempted{0};
  std::atomic<bool> go{false};
  std::atomic<int64_t> failures{0};
  std::mutex lat_mu;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<uint32_t> mine;
      if (lat) mine.reserve(static_cast<size_t>(per_thread));
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      double cpu0 = ThreadCpuUs();
      rusage ru0{};
      getrusage(RUSAGE_THREAD, &ru0);
      auto next = Clock::now();
      auto step = rate > 0 ? std::chrono::nanoseconds(static_cast<int64_t>(1e9 / rate)) : std::chrono::nanoseconds(0);
      for (int64_t i = 0; i < per_thread; ++i) {
        const std::string& props = pool[static_cast<size_t>(i * threads + t) % pool.size()];
        if (rate > 0) {
          next += step;
          std::this_thread::sleep_until(next);
        }
        auto a = Clock::now();
        ferry_status s = ferry_track(c, "Product Viewed", props.c_str(), nullptr);
        auto b = Clock::now();
        if (s != FERRY_OK) failures.fetch_add(1);
        if (lat)
          mine.push_back(static_cast<uint32_t>(
              std::min<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count(), UINT32_MAX)));
      }
      cpu_ns.fetch_add(static_cast<int64_t>((ThreadCpuUs() - cpu0) * 1000));
      rusage ru1{};
      getrusage(RUSAGE_THREAD, &ru1);
      preempted.fetch_add(ru1.ru_nivcsw - ru0.ru_nivcsw);
      if (lat) {
        std::lock_guard<std::mutex> l(lat_mu);
        lat->insert(lat->end(), mine.begin(), mine.end());
      }
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  *start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  *end = Clock::now();
  if (producer_cpu_us) *producer_cpu_us = static_cast<double>(cpu_ns.load()) / 1000;
  // Times the scheduler took a CPU away from a producer (the machine's other load), against calls_over_1ms.
  if (lat) Emit("producer_preemptions", static_cast<double>(preempted.load()));
  if (failures.load() > 0) Die(std::to_string(failures.load()) + " ferry_track calls failed");
}

double Percentile(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

// ---- modes ---------------------------------------------------------------------------------------------------------

int Latency(const Args& a) {
  int64_t n = a.events > 0 ? a.events : 200000;
  auto pool = PropertyPool(4096);
  std::string dir = MakeTempDir();
  ferry_client* c = nullptr;
  Check(ferry_open(BaseOptions(dir + "/buffer.db"), &c), "ferry_open");
  // Warm-up (page faults, first allocations, the first commits), not recorded.
  Clock::time_point s, e;
  RunProducers(c, 1, 2000, 0, pool, nullptr, &s, &e);
  WaitCommitted(c, 2000);
  std::vector<uint32_t> lat;
  double producer_cpu = 0;
  double cpu0 = ProcessCpuUs();
  RunProducers(c, a.threads, n / a.threads, a.rate, pool, &lat, &s, &e, &producer_cpu);
  WaitCommitted(c, 2000 + static_cast<int64_t>(lat.size()));
  double cpu = ProcessCpuUs() - cpu0;
  std::sort(lat.begin(), lat.end());
  double sum = 0;
  for (uint32_t v : lat) sum += v;
  EmitLoad("loadavg_1m");
  Emit("calls", static_cast<double>(lat.size()));
  Emit("mean_us", sum / static_cast<double>(lat.size()) / 1000);
  Emit("p50_us", Percentile(lat, 0.50) / 1000);
  Emit("p90_us", Percentile(lat, 0.90) / 1000);
  Emit("p99_us", Percentile(lat, 0.99) / 1000);
  Emit("p999_us", Percentile(lat, 0.999) / 1000);
  Emit("max_us", static_cast<double>(lat.back()) / 1000);
  Emit("calls_per_s", static_cast<double>(lat.size()) / Seconds(s, e));
  Emit("producer_cpu_us_per_call", producer_cpu / static_cast<double>(lat.size()));
  Emit("writer_cpu_us_per_event", (cpu - producer_cpu) / static_cast<double>(lat.size()));
  // Share of calls that waited for room in the writer queue (>= 1 ms is far above the call's own cost).
  size_t slow = static_cast<size_t>(lat.end() - std::lower_bound(lat.begin(), lat.end(), 1000000u));
  Emit("calls_over_1ms", static_cast<double>(slow));
  Check(ferry_close(c, 0), "ferry_close");
  fs::remove_all(dir);
  return 0;
}

int Throughput(const Args& a) {
  int64_t n = a.events > 0 ? a.events : 200000;
  int64_t per = n / a.threads;
  n = per * a.threads;
  auto pool = PropertyPool(4096);
  std::string dir = MakeTempDir(a.dir);
  ferry_client* c = nullptr;
  ferry_options* o = BaseOptions(dir + "/buffer.db");
  if (a.sync) Check(ferry_options_set_durability(o, FERRY_DURABILITY_SYNC), "durability");
  Check(ferry_open(o, &c), "ferry_open");
  Clock::time_point s, e;
  double producer_cpu = 0;
  EmitLoad("loadavg_1m_before");
  double cpu0 = ProcessCpuUs();
  RunProducers(c, a.threads, per, 0, pool, nullptr, &s, &e, &producer_cpu);
  Clock::time_point done = WaitCommitted(c, n);
  double cpu = ProcessCpuUs() - cpu0;
  Emit("events", static_cast<double>(n));
  Emit("tracked_per_s", static_cast<double>(n) / Seconds(s, e));
  Emit("committed_per_s", static_cast<double>(n) / Seconds(s, done));
  Emit("drain_after_last_track_ms", Seconds(e, done) * 1000);
  // Where the CPU went: the producers (ferry_track on the calling threads) and the rest of the process (the writer
  // thread committing to SQLCipher, the compressing thread under load, plus this program's completion polling). On
  // an otherwise idle 2-core machine the pipeline cannot beat 2e6 / cpu_us_per_event events/s.
  Emit("producer_cpu_us_per_event", producer_cpu / static_cast<double>(n));
  Emit("writer_cpu_us_per_event", (cpu - producer_cpu) / static_cast<double>(n));
  Emit("cpu_us_per_event", cpu / static_cast<double>(n));
  // The share of the events the compressing thread compressed ahead of their commit (0 under SYNC, or one core).
  Emit("compressed_ahead_share",
       static_cast<double>(Stats(c).value("compressed_ahead", int64_t{0})) / static_cast<double>(n));
  EmitLoad("loadavg_1m_after");
  Check(ferry_close(c, 0), "ferry_close");
  fs::remove_all(dir);
  return 0;
}

int Fill(const Args& a) {
  int64_t n = a.events > 0 ? a.events : 100000;
  if (a.path.empty()) Die("fill needs --path");
  auto pool = PropertyPool(4096);
  ferry_client* c = nullptr;
  Check(ferry_open(BaseOptions(a.path), &c), "ferry_open");
  Clock::time_point s, e;
  RunProducers(c, 1, n, 0, pool, nullptr, &s, &e);
  WaitCommitted(c, n);
  Json st = Stats(c);
  int64_t accounted = st.value("storage_bytes", int64_t{0});
  int64_t open_bytes = FileSize(a.path) + FileSize(a.path + "-wal") + FileSize(a.path + "-shm");
  Check(ferry_close(c, 0), "ferry_close");
  int64_t closed_bytes = FileSize(a.path) + FileSize(a.path + "-wal") + FileSize(a.path + "-shm");
  // storage_bytes counts body + 64 bytes per row (Store::kRowOverhead).
  double json_bytes = static_cast<double>(accounted) / static_cast<double>(n) - 64;
  EmitLoad("loadavg_1m");
  Emit("events", static_cast<double>(n));
  Emit("event_json_bytes", json_bytes);
  Emit("disk_bytes_per_event_open", static_cast<double>(open_bytes) / static_cast<double>(n));
  Emit("disk_bytes_per_event_closed", static_cast<double>(closed_bytes) / static_cast<double>(n));
  Emit("file_bytes_closed", static_cast<double>(FileSize(a.path)));
  Emit("wal_bytes_closed", static_cast<double>(FileSize(a.path + "-wal")));
  return 0;
}

int Open(const Args& a) {
  if (a.path.empty()) Die("open needs --path");
  Mem base = ReadMem();
  double cpu0 = ThreadCpuUs();
  auto t0 = Clock::now();
  ferry_client* c = nullptr;
  Check(ferry_open(BaseOptions(a.path), &c), "ferry_open");
  auto t1 = Clock::now();
  double open_cpu_us = ThreadCpuUs() - cpu0;
  Mem opened = ReadMem();
  int64_t n = Committed(c);
  auto t2 = Clock::now();
  Check(ferry_close(c, 0), "ferry_close");
  auto t3 = Clock::now();
  EmitLoad("loadavg_1m");
  Emit("events", static_cast<double>(n));
  Emit("open_ms", Seconds(t0, t1) * 1000);
  Emit("open_cpu_ms", open_cpu_us / 1000);  // the calling thread's CPU time inside ferry_open
  Emit("close_ms", Seconds(t2, t3) * 1000);
  Emit("rss_after_open_mib", static_cast<double>(opened.rss_kb - base.rss_kb) / 1024);
  Emit("hwm_after_open_mib", static_cast<double>(opened.hwm_kb - base.hwm_kb) / 1024);
  return 0;
}

int Rss(const Args& a) {
  int64_t n = a.events > 0 ? a.events : 100000;
  auto pool = PropertyPool(4096);
  std::string dir = MakeTempDir();
  Mem base = ReadMem();
  ferry_client* c = nullptr;
  Check(ferry_open(BaseOptions(dir + "/buffer.db"), &c), "ferry_open");
  Mem opened = ReadMem();
  Clock::time_point s, e;
  RunProducers(c, 1, n, 0, pool, nullptr, &s, &e);
  WaitCommitted(c, n);
  Mem full = ReadMem();
  Check(ferry_close(c, 0), "ferry_close");
  Mem closed = ReadMem();
  EmitLoad("loadavg_1m");
  Emit("events", static_cast<double>(n));
  Emit("baseline_rss_mib", static_cast<double>(base.rss_kb) / 1024);
  Emit("rss_open_empty_mib", static_cast<double>(opened.rss_kb - base.rss_kb) / 1024);
  Emit("rss_queued_mib", static_cast<double>(full.rss_kb - base.rss_kb) / 1024);
  Emit("hwm_queued_mib", static_cast<double>(full.hwm_kb - base.hwm_kb) / 1024);
  Emit("rss_after_close_mib", static_cast<double>(closed.rss_kb - base.rss_kb) / 1024);
  fs::remove_all(dir);
  return 0;
}

// The SDK's own uploader builds and compresses the batches; a transport callback records what would go on the wire.
struct WireLog {
  std::mutex mu;
  int64_t requests = 0, events = 0, tracks = 0, wire_bytes = 0, json_bytes = 0, event_bytes = 0;
};

ferry_status RecordingSend(const ferry_http_request* req, ferry_http_response* resp, void* user) {
  auto* w = static_cast<WireLog*>(user);
  unsigned long long raw_size = ZSTD_getFrameContentSize(req->body, req->body_len);
  std::string raw;
  if (raw_size != ZSTD_CONTENTSIZE_ERROR && raw_size != ZSTD_CONTENTSIZE_UNKNOWN) {
    raw.resize(raw_size);
    size_t got = ZSTD_decompress(raw.data(), raw.size(), req->body, req->body_len);
    if (ZSTD_isError(got)) raw.clear();
  }
  Json batch = Json::parse(raw, nullptr, false);
  int64_t n = 0, tracks = 0, ev_bytes = 0;
  if (batch.is_object() && batch.contains("batch") && batch["batch"].is_array()) {
    n = static_cast<int64_t>(batch["batch"].size());
    for (const auto& e : batch["batch"]) {
      ev_bytes += static_cast<int64_t>(e.dump().size());
      tracks += e.is_object() && e.value("type", "") == "track" ? 1 : 0;
    }
  }
  {
    std::lock_guard<std::mutex> l(w->mu);
    w->requests++;
    w->events += n;
    w->tracks += tracks;
    w->wire_bytes += static_cast<int64_t>(req->body_len);
    w->json_bytes += static_cast<int64_t>(raw.size());
    w->event_bytes += ev_bytes;
  }
  std::string answer = "{\"accepted\":" + std::to_string(n) + ",\"duplicate\":0,\"rejected\":[]}";
  resp->status = 200;
  resp->retry_after_s = 0;
  resp->body = static_cast<uint8_t*>(std::malloc(answer.size()));
  if (resp->body == nullptr) return FERRY_ERR_INTERNAL;
  std::memcpy(resp->body, answer.data(), answer.size());
  resp->body_len = answer.size();
  return FERRY_OK;
}

// What one fdatasync costs on the disk the buffers are on (the temp dir): N writes of 4 KiB into the same 64 KiB of
// one file, each made durable before the next. A SYNC caller waits for one such flush at least, and a group commit
// shares one flush among the callers waiting: with T producers, T / this time bounds SYNC's events/s.
int Fsync(const Args& a) {
  int64_t n = a.events > 0 ? a.events : 2000;
  std::string dir = MakeTempDir();
  std::string path = dir + "/flush.bin";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) Die("open " + path);
  std::vector<char> page(4096, 'x');
  std::vector<double> us;
  us.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    auto s = Clock::now();
    if (::pwrite(fd, page.data(), page.size(), static_cast<off_t>((i % 16) * 4096)) != 4096) Die("pwrite");
    if (::fdatasync(fd) != 0) Die("fdatasync");
    us.push_back(Seconds(s, Clock::now()) * 1e6);
  }
  ::close(fd);
  fs::remove_all(dir);
  std::sort(us.begin(), us.end());
  Emit("fdatasync_p50_us", us[us.size() / 2]);
  Emit("fdatasync_p90_us", us[us.size() * 9 / 10]);
  Emit("sync_ceiling_4", 4e6 / us[us.size() / 2]);
  EmitLoad("loadavg_1m");
  return 0;
}

int Wire(const Args& a) {
  int64_t n = a.events > 0 ? a.events : 10000;
  auto pool = PropertyPool(4096);
  std::string dir = MakeTempDir();
  WireLog log;
  ferry_options* o = BaseOptions(dir + "/buffer.db");
  Check(ferry_options_set_endpoint(o, "https://collector.invalid"), "endpoint");
  Check(ferry_options_set_write_key(o, "bench-write-key"), "write key");
  Check(ferry_options_set_batch_size(o, static_cast<uint32_t>(a.batch)), "batch size");
  Check(ferry_options_set_flush_interval_ms(o, 24u * 3600 * 1000), "flush interval");
  Check(ferry_options_set_transport(o, RecordingSend, &log, nullptr), "transport");
  ferry_client* c = nullptr;
  Check(ferry_open(o, &c), "ferry_open");
  Clock::time_point s, e;
  RunProducers(c, 1, n, 0, pool, nullptr, &s, &e);
  Check(ferry_flush(c, 60000), "ferry_flush");
  Check(ferry_close(c, 0), "ferry_close");
  std::lock_guard<std::mutex> l(log.mu);
  // Besides the tracks, the batches carry the consent record of the default grant (BaseOptions).
  if (log.tracks != n)
    Die("the transport saw " + std::to_string(log.tracks) + " track events, expected " + std::to_string(n));
  Emit("events", static_cast<double>(log.events));
  Emit("requests", static_cast<double>(log.requests));
  Emit("events_per_request", static_cast<double>(log.events) / static_cast<double>(log.requests));
  Emit("event_json_bytes", static_cast<double>(log.event_bytes) / static_cast<double>(log.events));
  Emit("batch_json_bytes_per_event", static_cast<double>(log.json_bytes) / static_cast<double>(log.events));
  Emit("wire_bytes_per_event", static_cast<double>(log.wire_bytes) / static_cast<double>(log.events));
  Emit("compression_ratio", static_cast<double>(log.json_bytes) / static_cast<double>(log.wire_bytes));
  fs::remove_all(dir);
  return 0;
}

// ---- all: children, repeated, summarised
// -----------------------------------------------------------------------------

std::string Self() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) Die("cannot read /proc/self/exe");
  return p.string();
}

std::map<std::string, double> RunChild(const std::string& args) {
  std::string cmd = "'" + Self() + "' " + args;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) Die("popen failed: " + cmd);
  std::map<std::string, double> out;
  char line[512];
  while (std::fgets(line, sizeof line, p) != nullptr) {
    char* eq = std::strchr(line, '=');
    if (eq == nullptr) continue;
    *eq = '\0';
    out[line] = std::strtod(eq + 1, nullptr);
  }
  int rc = pclose(p);
  if (rc != 0) Die("child failed (" + std::to_string(rc) + "): " + cmd);
  return out;
}

// Every figure of every Repeat in this run: figures[key][name] = the values of its runs, sorted.
std::map<std::string, std::map<std::string, std::vector<double>>> figures;

// Runs `args` `runs` times and prints every figure as median [min .. max]; key names them in `figures`.
void Repeat(const std::string& key, const std::string& title, const std::string& args, int runs,
            const std::string& setup = "") {
  std::map<std::string, std::vector<double>> all;
  std::vector<std::string> order;
  for (int r = 0; r < runs; ++r) {
    if (!setup.empty()) RunChild(setup);
    for (auto& [k, v] : RunChild(args)) {
      if (!all.count(k)) order.push_back(k);
      all[k].push_back(v);
    }
  }
  std::printf("\n== %s (%d runs): ferry_bench_sdk %s\n", title.c_str(), runs, args.c_str());
  for (const auto& k : order) {
    auto v = all[k];
    std::sort(v.begin(), v.end());
    std::printf("  %-30s median %12.4g   [min %10.4g .. max %10.4g]\n", k.c_str(), v[v.size() / 2], v.front(),
                v.back());
    figures[key][k] = v;
  }
  std::fflush(stdout);
}

// The issue-16 targets: which figure each one reads, and the bound.
struct Target {
  const char* id;      // the key in the --previous file
  const char* label;   // what is measured
  const char* run;     // the Repeat key ...
  const char* figure;  // ... and the figure
  bool at_most;        // true: measured <= bound; false: measured >= bound
  double bound;
  const char* unit;
};
constexpr Target kTargets[] = {
    {"track_p50_us", "ferry_track p50, 1 producer", "lat1", "p50_us", true, 1.5, "us"},
    {"track_p99_us", "ferry_track p99, 1 producer", "lat1", "p99_us", true, 10, "us"},
    {"track_p99_paced_us", "ferry_track p99, 20,000/s", "lat1paced", "p99_us", true, 10, "us"},
    {"committed_1", "committed events/s, 1 producer", "thr1", "committed_per_s", false, 150000, "/s"},
    {"committed_4", "committed events/s, 4 producers", "thr4", "committed_per_s", false, 200000, "/s"},
    {"sync_4", "SYNC committed events/s, 4 producers", "sync4", "committed_per_s", false, 20000, "/s"},
    {"disk_bytes", "bytes on disk per event", "fill", "disk_bytes_per_event_closed", true, 300, "B"},
    {"open_ms", "ferry_open with 100,000 queued", "open", "open_ms", true, 20, "ms"},
    {"rss_mib", "RSS with 100,000 queued (high water)", "rss", "hwm_queued_mib", true, 20, "MiB"},
};

std::map<std::string, double> ReadPrevious(const std::string& path) {
  std::map<std::string, double> out;
  if (path.empty()) return out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    size_t eq = line.find('=');
    if (eq == std::string::npos || line[0] == '#') continue;
    out[line.substr(0, eq)] = std::strtod(line.c_str() + eq + 1, nullptr);
  }
  return out;
}

void PrintTargets(const std::string& previous_file) {
  std::map<std::string, double> prev = ReadPrevious(previous_file);
  std::printf(
      "\n== issue 16 targets: median [min .. max] of the runs, 1-minute load average of those runs, previous "
      "figure (%s)\n",
      previous_file.empty() ? "none given" : "docs/PERFORMANCE.md");
  std::printf("  %-38s %-13s %-36s %-6s %-10s %s\n", "target", "bound", "measured", "load", "previous", "verdict");
  for (const Target& t : kTargets) {
    auto run = figures.find(t.run);
    if (run == figures.end() || !run->second.count(t.figure)) continue;
    const std::vector<double>& v = run->second.at(t.figure);
    double med = v[v.size() / 2];
    std::string load = "-";
    if (run->second.count("loadavg_1m")) {
      const auto& l = run->second.at("loadavg_1m");
      char b[32];
      std::snprintf(b, sizeof b, "%.2f", l[l.size() / 2]);
      load = b;
    } else if (run->second.count("loadavg_1m_before")) {
      const auto& l = run->second.at("loadavg_1m_before");
      char b[32];
      std::snprintf(b, sizeof b, "%.2f", l[l.size() / 2]);
      load = b;
    }
    // Rates as whole numbers, the rest with 3 significant digits.
    const char* f = t.at_most ? "%.3g" : "%.0f";
    auto num = [&](double x) {
      char b[32];
      std::snprintf(b, sizeof b, f, x);
      return std::string(b);
    };
    std::string bound = std::string(t.at_most ? "<= " : ">= ") + num(t.bound) + " " + t.unit;
    std::string measured = num(med) + " " + t.unit + " [" + num(v.front()) + " .. " + num(v.back()) + "]";
    std::string before = prev.count(t.id) ? num(prev.at(t.id)) : "-";
    bool met = t.at_most ? med <= t.bound : med >= t.bound;
    std::printf("  %-38s %-13s %-36s %-6s %-10s %s\n", t.label, bound.c_str(), measured.c_str(), load.c_str(),
                before.c_str(), met ? "met" : "MISSED");
    auto flush = figures.find("fsync");
    if (std::strcmp(t.id, "sync_4") == 0 && flush != figures.end() && flush->second.count("sync_ceiling_4")) {
      // Four SYNC callers share one flush at best: what this disk allows, whatever the code.
      const auto& c = flush->second.at("sync_ceiling_4");
      const auto& f = flush->second.at("fdatasync_p50_us");
      std::printf(
          "  %-38s %-13s %-36s\n", "  this disk's ceiling: 4 / fdatasync", "",
          (num(c[c.size() / 2]) + " /s (fdatasync " + std::to_string(static_cast<int>(f[f.size() / 2])) + " us)")
              .c_str());
    }
    auto mem = figures.find("sync4mem");
    if (std::strcmp(t.id, "sync_4") == 0 && mem != figures.end() && mem->second.count("committed_per_s")) {
      // The code's own cycle: what SYNC would give on a disk whose flush cost nothing.
      const auto& m = mem->second.at("committed_per_s");
      std::printf("  %-38s %-13s %-36s\n", "  the same without a flush (/dev/shm)", "",
                  (num(m[m.size() / 2]) + " /s [" + num(m.front()) + " .. " + num(m.back()) + "]").c_str());
    }
  }
  std::fflush(stdout);
}

int All(const Args& a) {
  int runs = a.runs;
  std::string n = a.events > 0 ? std::to_string(a.events) : "100000";
  std::printf("ferry_bench_sdk: libferry %s, %u CPUs, median [min .. max] of %d fresh processes each\n",
              ferry_version(), std::thread::hardware_concurrency(), runs);
  Repeat("lat1", "ferry_track latency, 1 producer, flat out", "latency --events 200000 --threads 1", runs);
  Repeat("lat1paced", "ferry_track latency, 1 producer, paced at 20,000/s",
         "latency --events 100000 --threads 1 --rate 20000", runs);
  Repeat("lat4", "ferry_track latency, 4 producers, flat out", "latency --events 200000 --threads 4", runs);
  Repeat("thr1", "committed to the buffer, 1 producer", "throughput --events 200000 --threads 1", runs);
  Repeat("thr4", "committed to the buffer, 4 producers", "throughput --events 200000 --threads 4", runs);
  Repeat("sync1", "committed to the buffer, SYNC (fsync'd commits), 1 producer",
         "throughput --events 3000 --threads 1 --durability sync", runs);
  Repeat("sync4", "committed to the buffer, SYNC (fsync'd commits), 4 producers",
         "throughput --events 12000 --threads 4 --durability sync", runs);
  Repeat("fsync", "the disk's flush (4 KiB write + fdatasync), beside SYNC", "fsync --events 2000", runs);
  // The same SYNC run with the buffer in memory (tmpfs: fdatasync costs nothing): the commit cycle of the code alone,
  // so that the disk's share of a SYNC miss is measured, not guessed.
  if (fs::is_directory("/dev/shm")) {
    Repeat("sync4mem", "committed to the buffer, SYNC, 4 producers, the buffer in /dev/shm (no disk flush)",
           "throughput --events 12000 --threads 4 --durability sync --dir /dev/shm", runs);
  }
  Repeat("rss", "RSS with queued events (new buffer)", "rss --events " + n, runs);
  std::string dir = MakeTempDir();
  std::string db = dir + "/full.db";
  Repeat("fill", "bytes on disk", "fill --path '" + db + "' --events " + n, 1);
  Repeat("open", "ferry_open on the full buffer", "open --path '" + db + "'", runs);
  fs::remove_all(dir);
  Repeat("wire", "wire bytes, batches of 100, zstd level 3", "wire --events 10000 --batch 100", runs);
  PrintTargets(a.previous);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  const bool help = argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
  if (argc < 2 || help) {
    std::fprintf(help ? stdout : stderr,
                 "usage: %s all|latency|throughput|fill|open|rss|wire|fsync [--events N] [--threads T] [--rate R] "
                 "[--runs K] [--batch B] [--path P] [--dir D] [--durability sync|batched] [--previous FILE]\n",
                 argv[0]);
    return help ? 0 : 2;
  }
  a.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) Die("missing value for " + k);
    const char* v = argv[++i];
    if (k == "--events") {
      a.events = std::strtoll(v, nullptr, 10);
    } else if (k == "--threads") {
      a.threads = std::max(1, std::atoi(v));
    } else if (k == "--rate") {
      a.rate = std::strtod(v, nullptr);
    } else if (k == "--runs") {
      a.runs = std::max(1, std::atoi(v));
    } else if (k == "--batch") {
      a.batch = std::max(1, std::atoi(v));
    } else if (k == "--path") {
      a.path = v;
    } else if (k == "--dir") {
      a.dir = v;
    } else if (k == "--previous") {
      a.previous = v;
    } else if (k == "--durability") {
      if (std::strcmp(v, "sync") != 0 && std::strcmp(v, "batched") != 0) Die("--durability: sync or batched");
      a.sync = std::strcmp(v, "sync") == 0;
    } else {
      Die("unknown option " + k);
    }
  }
  if (a.mode == "all") return All(a);
  if (a.mode == "latency") return Latency(a);
  if (a.mode == "throughput") return Throughput(a);
  if (a.mode == "fill") return Fill(a);
  if (a.mode == "open") return Open(a);
  if (a.mode == "rss") return Rss(a);
  if (a.mode == "wire") return Wire(a);
  if (a.mode == "fsync") return Fsync(a);
  Die("unknown mode " + a.mode);
}
