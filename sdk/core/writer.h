// Writer: the queue between the calling threads and the encrypted buffer, and the one thread that commits it.
//
// Callers queue serialised events (Enqueue). The thread commits everything queued (at most 750 events) in one buffer
// transaction, so the deeper the queue the fewer commits per event; then it
// applies the buffer's size limit (and, once a minute, its age limit) and tells the uploader how many sendable events
// arrived.
// - BATCHED durability: a caller returns once its event is queued. A failed commit keeps the events queued, refuses
//   new ones (kStorage) and is retried every 200 ms until one succeeds (the callers were told OK).
// - SYNC durability: a caller returns once its event is committed; kStorage if that commit failed.
// - Back-pressure: with 750 events or 1 MiB queued, a caller waits up to 2 s for room, then gets kStorage. A kill
//   loses at most the commit in flight and the queue behind it: 1,500 events (BATCHED).
// - Under load (BATCHED, two or more cores), a second thread compresses queued events ahead of their commit
//   (Buffer::Precompress), so that the committing thread only inserts them: it wakes when 32 events queue up behind
//   a commit in flight (or 256 at all) and stays while more come. Nothing waits for it: the committing thread takes the
//   queue as it is and compresses what is not done yet; an app that tracks a few events at a time never wakes it.
// Every method is thread-safe. The writer's mutex comes after the client's locks and before the buffer's and the
// uploader's (the lock order in client.h).
#ifndef FERRY_SDK_CORE_WRITER_H_
#define FERRY_SDK_CORE_WRITER_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/status.h"
#include "sdk/core/buffer.h"
#include "sdk/core/options.h"
#include "sdk/core/stats.h"
#include "sdk/core/uploader.h"

namespace ferry::core {

class Writer {
 public:
  // opts (durability, storage limits, clock), buffer, uploader and stats must outlive the writer.
  Writer(const ClientOptions& opts, Buffer* buffer, Uploader* uploader, Stats* stats, base::Logger log);
  ~Writer();  // Stop()

  void Start();
  // Commits what is queued (one attempt) and stops the thread. Callers still waiting for a commit get kClosed.
  void Stop();

  // Queues an event (counted as tracked); sendable: its purpose may be sent now. SYNC: waits for the commit unless
  // ticket_out is given (then the caller waits with WaitCommitted, after queueing more).
  base::Status Enqueue(NewEvent ev, bool sendable, uint64_t* ticket_out = nullptr);
  // SYNC: waits until the event with this ticket is committed. BATCHED: returns OK at once.
  base::Status WaitCommitted(uint64_t ticket);
  // Waits until everything queued so far is committed (or the buffer is failing), until deadline_ms (the clock's
  // monotonic time).
  base::Status Drain(int64_t deadline_ms);
  // Evicts the oldest events over the size limit, and (sweep_age) those older than the age limit.
  void Evict(bool sweep_age);
  // Events queued and not yet committed.
  size_t Queued();

 private:
  struct Pending {
    NewEvent ev;
    uint64_t ticket;
    bool sendable;
  };

  void Run();
  // The compressing thread's loop (compress_thread_).
  void RunCompressor();
  // Queued events the compressing thread has not taken yet (mu_ held).
  size_t UncompressedLocked() const;
  // Whether the committing thread is behind, with a chunk for the compressing thread (mu_ held).
  bool BehindLocked() const;
  // Takes up to 750 events off the queue (mu_ held), commits them (mu_ released meanwhile) and records the outcome.
  void CommitBatch(std::unique_lock<std::mutex>& l, int64_t* last_age_sweep);

  const ClientOptions& opts_;
  Buffer* buffer_;
  Uploader* uploader_;
  Stats* stats_;
  base::Logger log_;
  base::Clock* clock_;

  std::mutex mu_;
  std::condition_variable queue_cv_;   // the thread wakes
  std::condition_variable commit_cv_;  // callers wait (SYNC, back-pressure, Drain)
  // The queue and the writer's batch are two vectors that trade places at each commit and keep their capacity, so
  // that queuing an event allocates nothing once they have grown (a deque allocated a node every third event).
  std::vector<Pending> queue_;     // guarded by mu_
  std::vector<Pending> batch_;     // the writer thread's only: empty between commits
  size_t queue_bytes_ = 0;         // guarded by mu_
  uint64_t next_ticket_ = 1;       // guarded by mu_
  uint64_t committed_ticket_ = 0;  // highest ticket committed or failed (SYNC)
  uint64_t failed_ticket_ = 0;     // highest ticket whose commit failed (SYNC)
  bool storage_failing_ = false;   // BATCHED: the last commit failed; new events refused until one succeeds
  bool stop_ = false;
  // SYNC group commit: callers waiting in WaitCommitted, and how many queued events the thread waits for (briefly)
  // before its next commit: those callers, whose events are committed or queued, usually send the next at once.
  size_t sync_waiters_ = 0;  // guarded by mu_
  size_t group_target_ = 0;  // guarded by mu_
  // BATCHED: the thread sleeps on an empty queue (idle_, a caller's first event wakes it), and after a wake gathers
  // what arrives within kLinger before it commits, unwoken unless the queue reaches kWakeAt or a drain asks.
  bool idle_ = true;              // guarded by mu_
  bool drain_requested_ = false;  // guarded by mu_
  std::thread thread_;
  // The compressing thread (BATCHED, 2+ cores): it has taken every queued event up to compressed_through_ (a
  // ticket), and sleeps until woken while compress_idle_.
  bool compressing_ = false;
  std::condition_variable compress_cv_;
  bool compress_idle_ = true;        // guarded by mu_
  bool committing_ = false;          // guarded by mu_: a commit is in flight
  uint64_t compressed_through_ = 0;  // guarded by mu_
  std::thread compress_thread_;
};

}  // namespace ferry::core

#endif  // FERRY_SDK_CORE_WRITER_H_
