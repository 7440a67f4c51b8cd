// A writer-preferring shared mutex. std::shared_mutex on glibc prefers readers, so a steady stream of event calls
// (shared) can starve a consent change (exclusive) forever; here a waiting writer stops new readers.
#ifndef FERRY_LIB_BASE_RWLOCK_H_
#define FERRY_LIB_BASE_RWLOCK_H_

#include <condition_variable>
#include <mutex>

namespace ferry::base {

// Meets the SharedMutex requirements used by std::shared_lock and std::unique_lock.
class SharedMutex {
 public:
  void lock_shared() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !writer_ && waiting_writers_ == 0; });
    ++readers_;
  }
  void unlock_shared() {
    std::lock_guard<std::mutex> l(mu_);
    if (--readers_ == 0 && waiting_writers_ > 0) cv_.notify_all();
  }
  void lock() {
    std::unique_lock<std::mutex> l(mu_);
    ++waiting_writers_;
    cv_.wait(l, [&] { return !writer_ && readers_ == 0; });
    --waiting_writers_;
    writer_ = true;
  }
  void unlock() {
    std::lock_guard<std::mutex> l(mu_);
    writer_ = false;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int readers_ = 0;
  int waiting_writers_ = 0;
  bool writer_ = false;
};

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_RWLOCK_H_
