#include "platform/heap.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ferry::platform {

base::Status KeepFreedHeapForReuse() {
#if defined(__GLIBC__)
  // mallopt returns 1 on success. Setting either one also ends glibc's own adjustment of both.
  if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(kHeapMapThreshold)) != 1 ||
      mallopt(M_TRIM_THRESHOLD, static_cast<int>(kHeapTrimThreshold)) != 1) {
    return base::Status::Internal("mallopt refused the heap thresholds");
  }
  return base::Status::Ok();
#else
  return base::Status::FailedPrecondition("the heap thresholds are set on glibc only");
#endif
}

}  // namespace ferry::platform
