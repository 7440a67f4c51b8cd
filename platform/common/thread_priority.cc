#include "platform/thread_priority.h"

#if defined(__linux__)
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#endif

#include <string>

namespace ferry::platform {

base::Status SetThreadNice(int nice) {
  if (nice < 0 || nice > 19) return base::Status::InvalidArgument("thread nice value: want 0..19");
#if defined(__linux__)
  // On Linux the nice value belongs to the thread (the kernel task), so PRIO_PROCESS with the thread id changes
  // this thread alone.
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  if (setpriority(PRIO_PROCESS, tid, nice) != 0) {
    return base::Status::Internal(std::string("setpriority: ") + std::strerror(errno));
  }
  return base::Status::Ok();
#else
  return base::Status::FailedPrecondition("thread priorities are set on Linux only");
#endif
}

}  // namespace ferry::platform
