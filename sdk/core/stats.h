// Counters behind ferry_stats_json(). Lock-free except last_error.
#ifndef FERRY_SDK_CORE_STATS_H_
#define FERRY_SDK_CORE_STATS_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

namespace ferry::core {

struct Stats {
  std::atomic<int64_t> tracked{0};           // events accepted by track/screen/identify/consent calls
  std::atomic<int64_t> sent{0};              // events the collector accepted (or already had)
  std::atomic<int64_t> duplicate{0};         // of which the collector already had
  std::atomic<int64_t> suppressed{0};        // events the collector dropped for an erased subject
  std::atomic<int64_t> dropped_consent{0};   // calls refused because the purpose was denied
  std::atomic<int64_t> purged_consent{0};    // buffered events purged when their purpose was denied
  std::atomic<int64_t> evicted{0};           // events evicted by the size or age limit
  std::atomic<int64_t> rejected{0};          // events the collector rejected (or a batch it could not decode)
  std::atomic<int64_t> invalid{0};           // calls refused for bad input
  std::atomic<int64_t> retries{0};           // upload attempts that failed and will be retried
  std::atomic<int64_t> batches{0};           // batches the collector answered with 200
  std::atomic<int64_t> storage_errors{0};    // failed commits to the buffer
  std::atomic<int64_t> forgets_sent{0};      // erasure requests the collector confirmed
  std::atomic<int64_t> buffer_resets{0};     // unreadable buffers set aside at open (reset option), this process
  std::atomic<int64_t> salvaged{0};          // events recovered at open from a damaged buffer, this process
  std::atomic<int64_t> dropped_pending{0};   // events of a pending purpose not held (no hold, or held too long)
  std::atomic<int64_t> commits{0};           // the writer's transactions that committed events to the buffer
  std::atomic<int64_t> compressed_ahead{0};  // events the compressing thread compressed ahead of their commit

  // Calls f(name, value) for every counter above, named as ferry_stats_json() reports it. A new counter: declare it
  // above and add it here.
  template <typename F>
  void ForEachCounter(F&& f) const {
    using Counter = std::atomic<int64_t> Stats::*;
    static constexpr std::pair<const char*, Counter> kCounters[] = {{"tracked", &Stats::tracked},
                                                                    {"sent", &Stats::sent},
                                                                    {"duplicate", &Stats::duplicate},
                                                                    {"suppressed", &Stats::suppressed},
                                                                    {"dropped_consent", &Stats::dropped_consent},
                                                                    {"purged_consent", &Stats::purged_consent},
                                                                    {"evicted", &Stats::evicted},
                                                                    {"rejected", &Stats::rejected},
                                                                    {"invalid", &Stats::invalid},
                                                                    {"retries", &Stats::retries},
                                                                    {"batches", &Stats::batches},
                                                                    {"storage_errors", &Stats::storage_errors},
                                                                    {"forgets_sent", &Stats::forgets_sent},
                                                                    {"buffer_resets", &Stats::buffer_resets},
                                                                    {"salvaged", &Stats::salvaged},
                                                                    {"dropped_pending", &Stats::dropped_pending},
                                                                    {"commits", &Stats::commits},
                                                                    {"compressed_ahead", &Stats::compressed_ahead}};
    for (const auto& [name, counter] : kCounters) f(name, (this->*counter).load());
  }

  void SetLastError(const std::string& e) {
    std::lock_guard<std::mutex> l(mu_);
    last_error_ = e;
  }
  std::string LastError() const {
    std::lock_guard<std::mutex> l(mu_);
    return last_error_;
  }

 private:
  mutable std::mutex mu_;
  std::string last_error_;
};

}  // namespace ferry::core

#endif  // FERRY_SDK_CORE_STATS_H_
