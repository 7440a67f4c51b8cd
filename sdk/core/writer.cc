#include "sdk/core/writer.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <utility>

namespace ferry::core {

using base::Status;

namespace {

// BATCHED loses at most the events of the commit in flight and those queued behind it: kQueueMaxEvents +
// kMaxCommitEvents = 1,500 (docs/SDK.md, the kill -9 test's bound). Within that, a commit takes everything queued.
constexpr size_t kQueueMaxEvents = 750;  // back-pressure bound of the queue
constexpr size_t kQueueMaxBytes = 1u << 20;
constexpr size_t kMaxCommitEvents = 750;       // events per buffer transaction: all that is queued, up to this many
constexpr int64_t kBackPressureWaitMs = 2000;  // a caller waits this long for room, then gets kStorage
constexpr int64_t kAgeSweepIntervalMs = 60000;
constexpr int64_t kIdleWakeMs = 1000;  // the thread looks at the queue at least this often
constexpr int64_t kRetryWakeMs = 200;  // BATCHED: a failed commit is retried this often
// SYNC: how long the thread waits for the callers it just answered to queue their next events before it commits what
// is queued (a fraction of an fsync; PostgreSQL's commit_delay does the same).
constexpr std::chrono::microseconds kGroupWait{200};
// BATCHED: once woken by an event, the thread gathers for this long (or until kWakeAt are queued) before it commits.
// Events come in bursts: one commit (and one wake-up of the thread) for the burst instead of one for each event, and
// the callers do not pay for waking the thread again and again.
constexpr std::chrono::microseconds kLinger{1000};
constexpr size_t kWakeAt = 256;

}  // namespace

Writer::Writer(const ClientOptions& opts, Buffer* buffer, Uploader* uploader, Stats* stats, base::Logger log)
    : opts_(opts), buffer_(buffer), uploader_(uploader), stats_(stats), log_(std::move(log)), clock_(opts.clock) {}

Writer::~Writer() { Stop(); }

void Writer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Writer::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  queue_cv_.notify_all();
  commit_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status Writer::Enqueue(NewEvent ev, bool sendable, uint64_t* ticket_out) {
  size_t bytes = ev.body.size();
  uint64_t ticket;
  bool was_empty = false;
  bool wake_group = false;
  {
    std::unique_lock<std::mutex> l(mu_);
    if (storage_failing_) {
      stats_->storage_errors.fetch_add(1, std::memory_order_relaxed);
      return Status::Storage("the buffer cannot be written: " + stats_->LastError());
    }
    if (queue_.size() >= kQueueMaxEvents || queue_bytes_ + bytes > kQueueMaxBytes) {
      bool room = clock_->WaitFor(l, commit_cv_, kBackPressureWaitMs, [&] {
        return stop_ || storage_failing_ || (queue_.size() < kQueueMaxEvents && queue_bytes_ + bytes <= kQueueMaxBytes);
      });
      if (!room || stop_ || storage_failing_) {
        stats_->storage_errors.fetch_add(1, std::memory_order_relaxed);
        return Status::Storage("the buffer is not keeping up (writer queue full)");
      }
    }
    ticket = next_ticket_++;
    queue_bytes_ += bytes;
    was_empty = queue_.empty() && (idle_ || opts_.durability == Durability::kSync);
    queue_.push_back(Pending{std::move(ev), ticket, sendable});
    wake_group = (group_target_ > 0 && queue_.size() == group_target_) || queue_.size() == kWakeAt;
  }
  // The thread sleeps only on an empty queue (it takes everything queued before it waits again): waking it for the
  // first event is enough, and the calls after it skip the futex wake; under SYNC it may also be waiting for a group,
  // under BATCHED gathering (kLinger) until kWakeAt are queued.
  if (was_empty || wake_group) queue_cv_.notify_one();
  stats_->tracked.fetch_add(1, std::memory_order_relaxed);
  if (ticket_out != nullptr) {
    *ticket_out = ticket;
    return Status::Ok();
  }
  return WaitCommitted(ticket);
}

Status Writer::WaitCommitted(uint64_t ticket) {
  if (opts_.durability != Durability::kSync) return Status::Ok();
  std::unique_lock<std::mutex> l(mu_);
  ++sync_waiters_;
  commit_cv_.wait(l, [&] { return committed_ticket_ >= ticket || stop_; });
  --sync_waiters_;
  if (committed_ticket_ < ticket) return Status::Closed("the client closed before the event was committed");
  if (failed_ticket_ >= ticket) {
    stats_->tracked.fetch_sub(1, std::memory_order_relaxed);
    return Status::Storage("the buffer cannot be written: " + stats_->LastError());
  }
  return Status::Ok();
}

Status Writer::Drain(int64_t deadline_ms) {
  std::unique_lock<std::mutex> l(mu_);
  uint64_t target = next_ticket_ - 1;
  drain_requested_ = true;
  queue_cv_.notify_one();
  bool done = clock_->WaitUntil(l, commit_cv_, deadline_ms,
                                [&] { return committed_ticket_ >= target || storage_failing_ || stop_; });
  if (committed_ticket_ >= target) return Status::Ok();
  if (storage_failing_) return Status::Storage("the buffer cannot be written: " + stats_->LastError());
  if (!done) return Status::Timeout("events are still being committed");
  return Status::Closed("the client is closed");
}

size_t Writer::Queued() {
  std::lock_guard<std::mutex> l(mu_);
  return queue_.size();
}

void Writer::Run() {
  int64_t last_age_sweep = clock_->MonotonicMs();
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    idle_ = true;
    clock_->WaitFor(l, queue_cv_, storage_failing_ ? kRetryWakeMs : kIdleWakeMs,
                    [&] { return stop_ || (!queue_.empty() && !storage_failing_); });
    idle_ = false;
    if (queue_.empty()) {
      if (stop_) break;
      continue;
    }
    if (group_target_ > queue_.size() && !stop_ && !storage_failing_) {
      // SYNC: the callers just answered are about to queue their next events; one commit for all of them.
      queue_cv_.wait_for(l, kGroupWait, [&] { return stop_ || queue_.size() >= group_target_; });
    } else if (opts_.durability != Durability::kSync && queue_.size() < kWakeAt && !stop_ && !storage_failing_ &&
               !drain_requested_) {
      queue_cv_.wait_for(l, kLinger, [&] { return stop_ || drain_requested_ || queue_.size() >= kWakeAt; });
    }
    drain_requested_ = false;
    CommitBatch(l, &last_age_sweep);
  }
}

void Writer::CommitBatch(std::unique_lock<std::mutex>& l, int64_t* last_age_sweep) {
  // At most kMaxCommitEvents per transaction, so the oldest queued event is durable soon even after a burst.
  std::vector<Pending>& batch = batch_;  // empty, with the capacity of an earlier queue
  size_t batch_bytes = 0;
  if (queue_.size() <= kMaxCommitEvents) {
    batch.swap(queue_);
    batch_bytes = queue_bytes_;
  } else {
    batch.reserve(kMaxCommitEvents);
    for (size_t i = 0; i < kMaxCommitEvents; ++i) {
      batch_bytes += queue_[i].ev.body.size();
      batch.push_back(std::move(queue_[i]));
    }
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(kMaxCommitEvents));
  }
  queue_bytes_ -= batch_bytes;
  l.unlock();
  std::vector<NewEvent> evs;
  evs.reserve(batch.size());
  int64_t sendable = 0;
  for (Pending& p : batch) {
    sendable += p.sendable ? 1 : 0;
    evs.push_back(std::move(p.ev));
  }
  Status s = buffer_->Append(evs);
  if (s.ok()) {
    // Evict before the commit is announced, so that a caller that waited for it sees the limits applied.
    int64_t now = clock_->MonotonicMs();
    bool age = now - *last_age_sweep > kAgeSweepIntervalMs;
    if (age) *last_age_sweep = now;
    Evict(age);
  }
  l.lock();
  uint64_t last = batch.back().ticket;
  if (s.ok()) {
    committed_ticket_ = last;
    storage_failing_ = false;
    stats_->commits.fetch_add(1, std::memory_order_relaxed);
  } else {
    stats_->storage_errors.fetch_add(1, std::memory_order_relaxed);
    stats_->SetLastError("buffer commit failed: " + s.message());
    if (opts_.durability == Durability::kSync || stop_) {
      committed_ticket_ = last;  // callers learn it failed
      failed_ticket_ = last;
      if (!storage_failing_) log_.Error("buffer commit failed: " + s.message());
    } else {
      // BATCHED: the callers were told OK, so keep the events and retry; refuse new ones meanwhile.
      if (!storage_failing_) log_.Error("buffer commit failed, will retry: " + s.message());
      storage_failing_ = true;
      for (size_t i = 0; i < batch.size(); ++i) batch[i].ev = std::move(evs[i]);
      queue_bytes_ += batch_bytes;
      for (Pending& p : queue_) batch.push_back(std::move(p));
      queue_.swap(batch);
    }
  }
  batch.clear();  // what is left are moved-from entries; the capacity stays for the next commit
  // Every caller still waiting has an event committed now (and about to send its next) or queued.
  group_target_ = opts_.durability == Durability::kSync ? std::min(sync_waiters_, kMaxCommitEvents) : 0;
  commit_cv_.notify_all();
  if (s.ok() && sendable > 0) {
    l.unlock();
    uploader_->Notify(sendable);
    l.lock();
  }
}

void Writer::Evict(bool sweep_age) {
  auto max_bytes = static_cast<int64_t>(opts_.max_storage_bytes);
  if (!sweep_age && buffer_->TotalBytes() <= max_bytes) return;
  int64_t min_created = sweep_age ? clock_->NowMs() - static_cast<int64_t>(opts_.max_event_age_ms) : INT64_MIN;
  auto ev = buffer_->Evict(max_bytes, min_created);
  if (!ev.ok()) {
    stats_->SetLastError("eviction failed: " + ev.status().message());
    log_.Warn("eviction failed: " + ev.status().message());
    return;
  }
  if (ev->events > 0) {
    stats_->evicted.fetch_add(ev->events, std::memory_order_relaxed);
    uploader_->unreported_evicted_add(ev->events);
    log_.Warn("evicted " + std::to_string(ev->events) + " events (" + std::to_string(ev->bytes) +
              " bytes) over the buffer's size or age limit");
  }
}

}  // namespace ferry::core
