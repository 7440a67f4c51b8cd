// A token bucket per write key (requests per second).
#ifndef FERRY_COLLECTOR_HTTP_RATE_LIMIT_H_
#define FERRY_COLLECTOR_HTTP_RATE_LIMIT_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ferry::collector {

// Thread-safe. rate <= 0 disables limiting.
class RateLimiter {
 public:
  RateLimiter(double rate_per_s, double burst) : rate_(rate_per_s), burst_(burst > 0 ? burst : rate_per_s) {}
  // Takes one token for `key` at time now_ms. Returns 0 when allowed, else the seconds to wait (>= 1).
  int64_t Take(const std::string& key, int64_t now_ms);

 private:
  struct Bucket {
    double tokens;
    int64_t last_ms;
  };
  double rate_, burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_RATE_LIMIT_H_
