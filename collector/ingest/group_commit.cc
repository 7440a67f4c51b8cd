#include "collector/ingest/group_commit.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace ferry::collector {

namespace {
// The bucket of kDurationBuckets that `seconds` falls in (the last: longer than all).
size_t Bucket(double seconds) {
  size_t i = 0;
  while (i < GroupCommitter::kDurationBuckets.size() && seconds > GroupCommitter::kDurationBuckets[i]) ++i;
  return i;
}
}  // namespace

GroupCommitter::GroupCommitter(IngestSink* sink, size_t max_events, int writers)
    : sink_(sink), max_events_(max_events) {
  for (int i = 0; i < std::max(writers, 1); ++i) writers_.emplace_back([this] { Run(); });
}

GroupCommitter::~GroupCommitter() { Stop(); }

base::Status GroupCommitter::Submit(InsertRequest* req) {
  Pending p{req, base::Status::Ok(), false, {}};
  const auto start = std::chrono::steady_clock::now();
  sink_->Prepare(req);
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return base::Status::Closed("the collector is stopping");
  queue_.push_back(&p);
  work_cv_.notify_one();
  p.cv.wait(lock, [&p] { return p.done; });
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ++stats_.waits[Bucket(waited)];
  stats_.wait_seconds += waited;
  return p.status;
}

void GroupCommitter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  std::lock_guard<std::mutex> joining(join_mu_);
  for (std::thread& t : writers_) {
    if (t.joinable()) t.join();
  }
  writers_.clear();
}

size_t GroupCommitter::Queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

GroupCommitter::Stats GroupCommitter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.queued = queue_.size();
  return s;
}

void GroupCommitter::Run() {
  std::vector<Pending*> taken;
  std::vector<InsertRequest*> reqs;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      size_t events = 0;
      while (!queue_.empty() && (taken.empty() || events + queue_.front()->req->events.size() <= max_events_)) {
        events += queue_.front()->req->events.size();
        taken.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    reqs.clear();
    for (Pending* p : taken) reqs.push_back(p->req);
    const auto start = std::chrono::steady_clock::now();
    base::Status s = sink_->Insert(reqs);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.transactions;
      if (!s.ok()) ++stats_.failed_transactions;
      stats_.requests += static_cast<int64_t>(reqs.size());
      for (const InsertRequest* r : reqs) stats_.events += static_cast<int64_t>(r->events.size());
      stats_.busy_seconds += took;
      ++stats_.durations[Bucket(took)];
      stats_.longest_seconds = std::max(stats_.longest_seconds, took);
      // Notified under the lock: once it sees done, the submitter returns and its Pending (and cv) is gone.
      for (Pending* p : taken) {
        p->status = s;
        p->done = true;
        p->cv.notify_one();
      }
    }
    taken.clear();
  }
}

}  // namespace ferry::collector
