// Group commit: one writer thread takes the insert requests of all concurrent /v1/batch handlers and stores them
// together in one transaction, so the per-transaction cost (fsync, index pages) is shared.
#ifndef FERRY_COLLECTOR_INGEST_GROUP_COMMIT_H_
#define FERRY_COLLECTOR_INGEST_GROUP_COMMIT_H_

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "collector/store/interfaces.h"

namespace ferry::collector {

// Thread-safe. Submit() may be called from any number of threads; Stop() drains the queue then joins the writers.
class GroupCommitter {
 public:
  // `sink` must outlive this object. A transaction takes queued requests until max_events is reached. `writers`
  // threads take them, each its own transactions: one where the store runs one write transaction at a time (more
  // would only wait for each other), more where transactions run side by side (PostgreSQL), so that one's round
  // trips and commit flush overlap another's work.
  static constexpr size_t kMaxEvents = 20000;
  explicit GroupCommitter(IngestSink* sink, size_t max_events = kMaxEvents, int writers = 1);
  ~GroupCommitter();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Stores `req` (fills req->outcomes); blocks until its transaction committed or failed.
  base::Status Submit(InsertRequest* req);

  // Finishes what is queued, then stops; later Submit calls fail with kClosed.
  void Stop();

  // Requests waiting for the writer right now (not counting those in the transaction under way): what a test waits
  // on to know that requests queued up, and what an operator would graph.
  size_t Queued();

  // Upper bounds (seconds) of the buckets of Stats::durations; a last bucket holds what took longer.
  static constexpr std::array<double, 12> kDurationBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                              0.1,   0.25,   0.5,   1,    2.5,   5};
  // What the writer did since it started (GET /metrics): transactions, the requests and events they carried, those
  // that failed, and the time spent in them (its rate is the writers' utilisation: near their number, requests queue
  // up); how long each took, by kDurationBuckets (a request waits for the whole of its transaction: a slow one, a
  // stalled disk under it, shows here before it shows in the requests' latency).
  struct Stats {
    int64_t transactions = 0;
    int64_t failed_transactions = 0;
    int64_t requests = 0;
    int64_t events = 0;
    double busy_seconds = 0;
    std::array<int64_t, kDurationBuckets.size() + 1> durations{};
    double longest_seconds = 0;
    // How long each request waited in Submit (the queue and its transaction), by kDurationBuckets, and in all.
    std::array<int64_t, kDurationBuckets.size() + 1> waits{};
    double wait_seconds = 0;
    size_t queued = 0;
  };
  Stats stats() const;

 private:
  // A submitter's request, on its stack. Each has its own wake-up: a finished transaction wakes only the submitters
  // it carried, not every one still queued (with dozens of clients that was a futile context switch per waiting
  // handler per transaction).
  struct Pending {
    InsertRequest* req;
    base::Status status;
    bool done = false;
    std::condition_variable cv;
  };
  void Run();

  IngestSink* sink_;
  size_t max_events_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // the writers wait for requests
  std::deque<Pending*> queue_;        // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  Stats stats_;                       // guarded by mu_ (queued is filled in by stats())
  std::mutex join_mu_;                // Stop() from two threads: one joins
  std::vector<std::thread> writers_;  // guarded by join_mu_ once constructed
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_INGEST_GROUP_COMMIT_H_
