// The machine's speed now, for reading the other benchmarks' figures beside it. On a shared virtual machine the load
// average does not show what the host takes (this one reports no steal time), so the same binary can run 1.5x slower
// from one window to the next. Three fixed probes, each the median of --repeat rounds, interleaved:
//   - SHA-256 (libsodium) over a 64 KiB buffer on one thread: the speed of one core;
//   - the same on two threads at once: whether both cores are there (2.0x of one when they are);
//   - a round trip between two threads through a mutex and condition variable: what waking a thread costs, which the
//     SDK's writer and the collector's group commit pay for every commit.
// tests/bench/run.sh prints it before each benchmark; compare figures from windows with like speeds, or as ratios.
//
// Usage: ferry_bench_speed [--repeat K] [--ms M]
#include <sodium.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/bench/bench_args.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: ferry_bench_speed [--repeat K] [--ms M]\n"
    "  Prints the machine's speed now: SHA-256 MB/s on one thread and on two at once, and the round trip between two\n"
    "  threads woken through a condition variable (microseconds), each the median of K rounds (default 3) of about M\n"
    "  milliseconds a probe (default 200), with the 1-minute load average.\n";

// MB/s of SHA-256 over a 64 KiB buffer for about `ms` milliseconds on the calling thread.
double Sha256MBps(int ms) {
  std::vector<unsigned char> buf(64 * 1024);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<unsigned char>(i * 131u);
  unsigned char out[crypto_hash_sha256_BYTES];
  const auto start = Clock::now();
  const auto until = start + std::chrono::milliseconds(ms);
  int64_t bytes = 0;
  Clock::time_point now;
  do {
    for (int i = 0; i < 8; ++i) {
      crypto_hash_sha256(out, buf.data(), buf.size());
      buf[0] = out[0];  // each hash depends on the one before: nothing to hoist
      bytes += static_cast<int64_t>(buf.size());
    }
    now = Clock::now();
  } while (now < until);
  return static_cast<double>(bytes) / std::chrono::duration<double>(now - start).count() / 1e6;
}

// The sum of two threads' SHA-256 MB/s, both running at once.
double Sha256MBpsTwoThreads(int ms) {
  double a = 0, b = 0;
  std::thread t([&] { a = Sha256MBps(ms); });
  b = Sha256MBps(ms);
  t.join();
  return a + b;
}

// Microseconds of a round trip: one thread wakes the other through a condition variable and waits to be woken back.
double WakeRoundTripUs(int ms) {
  std::mutex mu;
  std::condition_variable cv;
  int64_t turn = 0;  // even: the pinger's turn, odd: the ponger's
  bool stop = false;
  std::thread ponger([&] {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stop || turn % 2 == 1; });
      if (stop) return;
      ++turn;
      cv.notify_all();
    }
  });
  const auto start = Clock::now();
  const auto until = start + std::chrono::milliseconds(ms);
  int64_t trips = 0;
  Clock::time_point now;
  {
    std::unique_lock<std::mutex> lock(mu);
    do {
      ++turn;
      cv.notify_all();
      cv.wait(lock, [&] { return turn % 2 == 0; });
      ++trips;
      now = Clock::now();
    } while (now < until);
    stop = true;
    cv.notify_all();
  }
  ponger.join();
  return std::chrono::duration<double, std::micro>(now - start).count() / static_cast<double>(trips);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  ferry::bench::CheckArgs(argc, argv, kUsage, {}, {"--repeat", "--ms"});
  int repeat = 3, ms = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const int v = std::atoi(argv[i + 1]);
    if (v <= 0) {
      std::fprintf(stderr, "ferry_bench_speed: %s needs a positive number\n", argv[i]);
      return 2;
    }
    (std::strcmp(argv[i], "--repeat") == 0 ? repeat : ms) = v;
  }
  if (sodium_init() < 0) {
    std::fputs("ferry_bench_speed: libsodium failed to initialise\n", stderr);
    return 1;
  }
  double load[1] = {0};
  getloadavg(load, 1);
  std::vector<double> one, two, trip;
  for (int r = 0; r < repeat; ++r) {
    one.push_back(Sha256MBps(ms));
    two.push_back(Sha256MBpsTwoThreads(ms));
    trip.push_back(WakeRoundTripUs(ms / 2));
  }
  const double m1 = Median(one), m2 = Median(two), mt = Median(trip);
  std::printf(
      "machine speed (median of %d, load %.2f): SHA-256 %.0f MB/s on one thread, %.0f MB/s on two (%.2fx), "
      "a thread woken and back %.1f us\n",
      repeat, load[0], m1, m2, m2 / m1, mt);
  std::printf("speed_sha256_1=%.0f\nspeed_sha256_2=%.0f\nspeed_wake_round_trip_us=%.2f\n", m1, m2, mt);
  return 0;
}
