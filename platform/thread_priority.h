// The calling thread's scheduling priority (its nice value), for background work that should use only the CPU time
// the latency-bound threads leave (the collector's insight feed, docs/INSIGHT.md "Ingest cost").
#ifndef FERRY_PLATFORM_THREAD_PRIORITY_H_
#define FERRY_PLATFORM_THREAD_PRIORITY_H_

#include "lib/base/status.h"

namespace ferry::platform {

// Sets the calling thread's nice value (0 = normal, up to 19 = lowest), this thread only. Raising it (lower priority)
// needs no privilege. Linux and Android; kFailedPrecondition elsewhere (the thread keeps its priority).
base::Status SetThreadNice(int nice);

}  // namespace ferry::platform

#endif  // FERRY_PLATFORM_THREAD_PRIORITY_H_
