// The daemons' heap: freed memory kept for reuse instead of handed back to the operating system at each free.
#ifndef FERRY_PLATFORM_HEAP_H_
#define FERRY_PLATFORM_HEAP_H_

#include <cstddef>

#include "lib/base/status.h"

namespace ferry::platform {

// Allocations below this come from malloc's arenas (glibc's default: 128 KiB, then the size of the largest mapped
// block freed so far, per size).
constexpr size_t kHeapMapThreshold = size_t{32} << 20;
// An arena keeps up to this much free memory at its top (glibc's default: 128 KiB, then twice the map threshold).
constexpr size_t kHeapTrimThreshold = size_t{64} << 20;

// Sets both. With glibc's defaults, a collector request of 500 events (a few hundred KiB decoded, then each event's
// strings) got fresh pages from the kernel every time: each free of a large block unmapped it or handed the arena's
// top back, and the next request faulted the pages in again, zeroed, 0.83 page faults a stored event
// (docs/PERFORMANCE.md, "freed memory kept for reuse"). The cost: the daemon's resident memory stays near its
// high-water mark after a burst. Process-wide: ferry-collector calls it first thing in main; ferry-agent does not (it
// took 0.09 faults an event, and a device's memory is worth more than no gain), the SDK never (it lives in an app's
// process). glibc only; kFailedPrecondition elsewhere (nothing changed).
base::Status KeepFreedHeapForReuse();

}  // namespace ferry::platform

#endif  // FERRY_PLATFORM_HEAP_H_
