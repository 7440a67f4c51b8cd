#include "tests/support/wait.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace ferry::testsupport {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Parent(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Watch::Watch() : inotify_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {}

Watch::~Watch() {
  if (inotify_ >= 0) close(inotify_);
  for (int fd : pidfds_) close(fd);
}

Watch& Watch::Path(const std::string& path) {
  if (inotify_ < 0) return *this;
  constexpr uint32_t kMask =
      IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_ATTRIB;
  struct stat st {};
  inotify_add_watch(inotify_, (stat(path.c_str(), &st) == 0 ? path : Parent(path)).c_str(), kMask);
  return *this;
}

Watch& Watch::Process(pid_t pid) {
  // The syscall itself: glibc 2.36's <sys/pidfd.h> declares pidfd_open without C linkage.
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) pidfds_.push_back(fd);
  return *this;
}

void Watch::Next(int timeout_ms) {
  std::vector<pollfd> fds;
  if (inotify_ >= 0) fds.push_back({inotify_, POLLIN, 0});
  for (int fd : pidfds_) fds.push_back({fd, POLLIN, 0});
  // An exited process stays readable: it wakes every wait, so it is watched until it first wakes one.
  int n = poll(fds.data(), fds.size(), std::max(timeout_ms, 0));
  if (n <= 0) return;
  if (inotify_ >= 0 && (fds[0].revents & POLLIN)) {
    alignas(inotify_event) char buf[16384];
    while (read(inotify_, buf, sizeof buf) > 0) {
    }
  }
  for (size_t i = inotify_ >= 0 ? 1 : 0; i < fds.size(); ++i) {
    if (fds[i].revents & (POLLIN | POLLHUP)) {
      auto it = std::find(pidfds_.begin(), pidfds_.end(), fds[i].fd);
      if (it != pidfds_.end()) {
        close(*it);
        pidfds_.erase(it);
      }
    }
  }
}

bool WaitFor(const std::function<bool()>& done, Watch* watch, const WaitOptions& o) {
  const int64_t deadline = NowMs() + o.timeout_ms;
  for (;;) {
    int64_t checked = NowMs();
    if (done()) return true;
    int64_t now = NowMs();
    if (now >= deadline) return false;
    // Costly checks keep a gap; nothing can make the condition true faster than the watched things change.
    if (o.min_gap_ms > 0 && now < checked + o.min_gap_ms) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(checked + o.min_gap_ms, deadline) - now));
      now = NowMs();
    }
    int wait = static_cast<int>(std::min<int64_t>(o.recheck_ms, deadline - now));
    if (watch != nullptr) {
      watch->Next(wait);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::max(wait, 0)));
    }
  }
}

}  // namespace ferry::testsupport
