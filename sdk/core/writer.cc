#include "sdk/core/writer.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <utility>

#include "lib/base/secret.h"

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
// The compressing thread is woken when the committing thread falls behind: kCompressChunk events queued and not taken
// yet while a commit is in flight, or kWakeAt queued. It takes this many at a time (copies of them, so that nothing
// waits for it), and waits kCompressLinger for the next before it sleeps again. Below that load it does not run: a
// third busy thread on two cores costs the callers more (p99 of a paced 20,000/s: 58-62 µs with it woken at 32
// queued whatever the committing thread did, 12.5-15 µs without).
constexpr size_t kCompressChunk = 32;
constexpr std::chrono::microseconds kCompressLinger{500};

}  // namespace

Writer::Writer(const ClientOptions& opts, Buffer* buffer, Uploader* uploader, Stats* stats, base::Logger log)
    : opts_(opts), buffer_(buffer), uploader_(uploader), stats_(stats), log_(std::move(log)), clock_(opts.clock) {}

Writer::~Writer() { Stop(); }

void Writer::Start() {
  // SYNC callers wait for each commit (the compression is not what holds them up); one core gains nothing.
  compressing_ = opts_.durability != Durability::kSync && std::thread::hardware_concurrency() > 1;
  thread_ = std::thread([this] { Run(); });
  if (compressing_) compress_thread_ = std::thread([this] { RunCompressor(); });
}

void Writer::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  queue_cv_.notify_all();
  commit_cv_.notify_all();
  compress_cv_.notify_all();
  if (compress_thread_.joinable()) compress_thread_.join();
  if (thread_.joinable()) thread_.join();
}

size_t Writer::UncompressedLocked() const {
  if (queue_.empty()) return 0;
  uint64_t done = std::max(compressed_through_, queue_.front().ticket - 1);
  return queue_.back().ticket > done ? static_cast<size_t>(queue_.back().ticket - done) : 0;
}

bool Writer::BehindLocked() const {
  return (committing_ || queue_.size() >= kWakeAt) && UncompressedLocked() >= kCompressChunk;
}

void Writer::RunCompressor() {
  EventCodec::Precompressor with;
  std::vector<NewEvent> work;
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    // Woken by a caller, it may find the queue taken by the committing thread meanwhile: then it asks to be woken
    // again.
    while (!stop_ && !BehindLocked()) {
      compress_idle_ = true;
      compress_cv_.wait(l);
    }
    compress_idle_ = false;
    // While events keep coming, take them a chunk at a time; after kCompressLinger without a chunk, sleep again.
    const auto chunk_waits = [&] { return stop_ || UncompressedLocked() >= kCompressChunk; };
    while (chunk_waits() || compress_cv_.wait_for(l, kCompressLinger, chunk_waits)) {
      if (stop_) break;
      const uint64_t front = queue_.front().ticket;
      const uint64_t first = std::max(compressed_through_ + 1, front);
      const size_t at = static_cast<size_t>(first - front);
      const size_t n = std::min(kCompressChunk, queue_.size() - at);
      work.resize(n);
      for (size_t i = 0; i < n; ++i) {
        const NewEvent& q = queue_[at + i].ev;
        work[i].user_id = q.user_id;
        work[i].anonymous_id = q.anonymous_id;
        work[i].body = q.body;
      }
      compressed_through_ = first + n - 1;
      l.unlock();
      buffer_->Precompress(&with, work);
      l.lock();
      // The committing thread may have taken some or all of them meanwhile (and compressed them itself).
      int64_t handed = 0;
      for (size_t i = 0; i < n; ++i) {
        if (work[i].stored.empty() || queue_.empty()) continue;
        const uint64_t ticket = first + i;
        if (ticket < queue_.front().ticket || ticket > queue_.back().ticket) continue;
        Pending& p = queue_[static_cast<size_t>(ticket - queue_.front().ticket)];
        if (p.ticket != ticket) continue;
        p.ev.stored = std::move(work[i].stored);
        p.ev.stored_generation = work[i].stored_generation;
        ++handed;
      }
      stats_->compressed_ahead.fetch_add(handed, std::memory_order_relaxed);
      // Copies of the events do not outlive their turn here (an erasure may come next).
      for (NewEvent& w : work) {
        base::WipeString(w.body);
        base::WipeString(w.stored);
      }
    }
  }
}

Status Writer::Enqueue(NewEvent ev, bool sendable, uint64_t* ticket_out) {
  size_t bytes = ev.body.size();
  uint64_t ticket;
  bool was_empty = false;
  bool wake_group = false;
  bool wake_compressor = false;
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
    if (compressing_ && compress_idle_ && BehindLocked()) {
      compress_idle_ = false;  // one wake
      wake_compressor = true;
    }
  }
  if (wake_compressor) compress_cv_.notify_one();
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
  committing_ = true;
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
  committing_ = false;
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
