// Waiting in tests for what can be observed, never for a fixed time. A test states the condition it expects (the
// port file is written, the log has a line, the process exited, the collector holds the rows) and WaitFor checks it
// when something that could make it true happens: a change in a watched file or directory (inotify) or the exit of a
// watched process (pidfd). Conditions nothing can be watched for (an HTTP endpoint) are checked again every
// recheck_ms. The deadline only bounds a broken build: a slow machine makes a wait longer, never a test fail.
#ifndef FERRY_TESTS_SUPPORT_WAIT_H_
#define FERRY_TESTS_SUPPORT_WAIT_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace ferry::testsupport {

// What wakes a wait. Not thread-safe; one per wait.
class Watch {
 public:
  Watch();
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Any change to a file, or to a directory's entries and the files in it (written, created, moved in, removed).
  // A path that does not exist yet: its directory is watched instead.
  Watch& Path(const std::string& path);
  // The exit of a process (a child or any other).
  Watch& Process(pid_t pid);
  // Blocks until a watched thing changes or timeout_ms passes; drains the notifications.
  void Next(int timeout_ms);

 private:
  int inotify_ = -1;
  std::vector<int> pidfds_;
};

struct WaitOptions {
  int timeout_ms = 120000;  // gives up then (the condition is checked once more at the deadline)
  int recheck_ms = 1000;    // checks again at least this often when nothing watched changed
  int min_gap_ms = 0;       // checks at most this often (for conditions that are costly to check)
};

// Checks done() at once and again on every wake-up until it returns true (true) or the deadline passes (false).
bool WaitFor(const std::function<bool()>& done, Watch* watch = nullptr, const WaitOptions& options = {});

}  // namespace ferry::testsupport

#endif  // FERRY_TESTS_SUPPORT_WAIT_H_
